// The real @segment/analytics-next in headless Chromium against
// `profiles-sync serve`, driven by crates/profiles-sync/tests/integration/browser.rs.
//
//   node tests/browser/run.mjs <serve URL> <writeKey>
//
// Serves a page and analytics-next's browser bundle (dist/umd, from
// node_modules) on 127.0.0.1, opens it in Chromium, and on it loads
// analytics-next with `cdnURL` = serve (so the settings document, and through
// it the Segment.io integration's apiHost, come from serve), then calls
// page(), identify() and track(). Waits until serve has answered 200 to each
// of the three calls (200 means durable), then prints one JSON line:
// {"anonymousId": ..., "userId": ..., "library": {...}, "requests": [...]}.
// Anything else (a failed request, a page error, a timeout) exits non-zero
// with what the page saw.

import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const bundleDir = path.join(here, "node_modules/@segment/analytics-next/dist/umd");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT_MS = 60_000;

const [serveUrl, writeKey] = process.argv.slice(2);
if (!serveUrl || !writeKey) {
  console.error("usage: node run.mjs <serve URL> <writeKey>");
  process.exit(2);
}
for (const [what, p] of [["chromium", chromiumPath], ["analytics-next", bundleDir]]) {
  if (!fs.existsSync(p)) {
    console.error(`${what} is missing (${p}): run scripts/setup`);
    process.exit(3);
  }
}

// The page: analytics-next's UMD build defines `AnalyticsNext`; its lazy
// chunks load relative to the page, so they come from this server too.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>profiles-sync browser test</title>
<script src="/index.js"></script></head>
<body><script>
window.runCalls = async (cdnURL, writeKey) => {
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load({ writeKey, cdnURL });
  await analytics.page();
  await analytics.identify("user-1", { email: "user-1@example.com" });
  await analytics.track("Order Completed", { revenue: 10 });
  return { anonymousId: analytics.user().anonymousId(), userId: analytics.user().id() };
};
</script></body></html>`;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname === "/") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
    return;
  }
  if (url.pathname === "/favicon.ico") {
    res.writeHead(204);
    res.end();
    return;
  }
  const name = path.basename(url.pathname);
  const file = path.join(bundleDir, name);
  if (name.endsWith(".js") && fs.existsSync(file)) {
    res.writeHead(200, { "content-type": "text/javascript" });
    fs.createReadStream(file).pipe(res);
    return;
  }
  res.writeHead(404);
  res.end();
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ps-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: chromiumPath,
  headless: true,
  chromiumSandbox: false,
  timeout: TIMEOUT_MS,
  // The network is closed: without these Chromium waits on outbound
  // connections (updates, sync, field trials) and can hang.
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const seen = []; // what the page asked of serve, and the answers
const problems = [];
let exitCode = 0;
try {
  const tab = context.pages()[0] ?? (await context.newPage());
  tab.on("console", (m) => seen.push(`console.${m.type()}: ${m.text()}`));
  tab.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  tab.on("requestfailed", (r) =>
    problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`),
  );
  const sent = new Map(); // serve path -> status
  tab.on("response", (r) => {
    if (r.url().startsWith(serveUrl)) {
      const p = new URL(r.url()).pathname;
      seen.push(`${r.request().method()} ${p} -> ${r.status()}`);
      sent.set(p, r.status());
    }
  });
  await tab.goto(pageUrl, { timeout: TIMEOUT_MS });
  const user = await Promise.race([
    tab.evaluate(([u, k]) => window.runCalls(u, k), [serveUrl, writeKey]),
    new Promise((_, fail) =>
      setTimeout(() => fail(new Error("the analytics calls did not resolve")), TIMEOUT_MS),
    ),
  ]);
  // The calls resolve once handed to the Segment.io plugin; wait for serve's
  // answers to the page, identify and track requests.
  const deadline = Date.now() + TIMEOUT_MS;
  const calls = ["/v1/p", "/v1/i", "/v1/t"];
  while (!calls.every((c) => sent.has(c)) && problems.length === 0) {
    if (Date.now() > deadline) {
      problems.push(`timed out waiting for ${calls.filter((c) => !sent.has(c)).join(", ")}`);
      break;
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
  for (const c of calls) {
    if (sent.has(c) && sent.get(c) !== 200) problems.push(`${c} answered ${sent.get(c)}`);
  }
  if (problems.length > 0) {
    exitCode = 1;
  } else {
    console.log(JSON.stringify({ ...user, requests: seen }));
  }
} catch (e) {
  problems.push(String(e?.stack ?? e));
  exitCode = 1;
} finally {
  await context.close();
  server.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
if (exitCode !== 0) {
  console.error(problems.join("\n"));
  console.error("what the page saw:\n" + seen.join("\n"));
}
process.exit(exitCode);
