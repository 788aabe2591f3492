//! The real `@segment/analytics-next` in headless Chromium against `serve`
//! (issue 20): a page loads analytics-next with `cdnURL` pointed at serve,
//! so its settings document and, through it, the Segment.io integration's
//! `apiHost` come from serve; it calls `page()`, `identify()` and `track()`,
//! and the rows must land as one profile.
//!
//! `tests/browser/run.mjs` (Node, playwright-core driving the system's
//! Chromium) does the browser side; `scripts/setup` installs Chromium and
//! the pinned npm packages. Missing either is a failure, not a skip.

use crate::serve::Serve;
use crate::util::{repo_root, Env};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// `tests/browser`, after checking that what the test needs is installed.
fn browser_dir() -> PathBuf {
    let dir = repo_root().join("tests/browser");
    let modules = dir.join("node_modules");
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(CHROMIUM.to_owned());
    }
    for package in ["@segment/analytics-next", "playwright-core"] {
        if !modules.join(package).join("package.json").exists() {
            missing.push(format!("{}", modules.join(package).display()));
        }
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node".into());
    }
    assert!(
        missing.is_empty(),
        "the browser test needs {}: run scripts/setup (it installs chromium and `npm ci`s tests/browser)",
        missing.join(", ")
    );
    dir
}

/// The analytics-next version `tests/browser/package.json` pins.
fn pinned_version(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("package.json")).unwrap();
    let pkg: Json = serde_json::from_str(&text).unwrap();
    pkg["dependencies"]["@segment/analytics-next"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs `run.mjs` against `url`, killed after `limit`: its JSON line.
fn run_page(dir: &Path, url: &str, write_key: &str, limit: Duration) -> Json {
    let mut child = Command::new("node")
        .arg(dir.join("run.mjs"))
        .args([url, write_key])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "run.mjs failed ({}) after {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status,
        start.elapsed()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn analytics_next_in_chromium_lands_page_identify_and_track_as_one_profile() {
    let dir = browser_dir();
    let version = pinned_version(&dir);
    let env = Env::golden();
    let srv = Serve::start(&env);
    let url = format!("http://{}", srv.addr());
    let user = run_page(&dir, &url, "wk_source_1", Duration::from_secs(180));
    let anon = user["anonymousId"].as_str().unwrap().to_owned();
    assert_eq!(user["userId"], "user-1", "{user}");
    let requests: Vec<&str> = user["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert!(
        requests.contains(&"GET /v1/projects/wk_source_1/settings -> 200"),
        "analytics-next loaded its settings from serve: {requests:?}"
    );
    // SIGTERM lands the inbox before serve exits.
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");

    let t = |name: &str| env.table("case_study", name);
    let calls = env.query(&format!(
        "SELECT 'identify', anonymous_id, user_id, context_library_name, context_library_version, context_ip, email FROM {} \
         UNION ALL SELECT 'page', anonymous_id, user_id, context_library_name, context_library_version, context_ip, context_page_title FROM {} \
         UNION ALL SELECT 'track', anonymous_id, user_id, context_library_name, context_library_version, context_ip, event_text FROM {} \
         ORDER BY 1",
        t("identifies"),
        t("pages"),
        t("tracks"),
    ));
    let library = ["analytics.js".to_owned(), format!("next-{version}")];
    let row = |call: &str, user_id: &str, last: &str| {
        let mut r = vec![call.to_owned(), anon.clone(), user_id.to_owned()];
        r.extend(library.iter().cloned());
        r.extend(["127.0.0.1".to_owned(), last.to_owned()]);
        r
    };
    assert_eq!(
        calls,
        [
            row("identify", "user-1", "user-1@example.com"),
            // Sent before identify(): anonymous, as on Segment.
            row("page", "", "profiles-sync browser test"),
            row("track", "user-1", "Order Completed"),
        ]
    );
    let revenue = env.query(&format!("SELECT revenue FROM {}", t("order_completed")));
    assert_eq!(revenue.len(), 1, "{revenue:?}");
    assert_eq!(revenue[0][0].parse::<f64>().unwrap(), 10.0, "{revenue:?}");

    // One profile: every call's segment_id has the same canonical one, and
    // it holds the three identifiers and the email trait.
    let profiles = env.query(&format!(
        "SELECT DISTINCT g.canonical_segment_id FROM (\
           SELECT segment_id FROM {} UNION ALL SELECT segment_id FROM {} UNION ALL SELECT segment_id FROM {}\
         ) e JOIN {} g ON g.segment_id = e.segment_id",
        t("pages"),
        t("identifies"),
        t("tracks"),
        t("id_graph"),
    ));
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    let profile = &profiles[0][0];
    let ids = env.query(&format!(
        "SELECT external_id_type, external_id_value FROM {} WHERE canonical_segment_id = '{profile}' ORDER BY 1",
        t("external_id_mapping"),
    ));
    assert_eq!(
        ids,
        [
            ["anonymous_id", anon.as_str()],
            ["email", "user-1@example.com"],
            ["user_id", "user-1"],
        ]
    );
    let traits = env.query(&format!(
        "SELECT email, merged_to FROM {} WHERE canonical_segment_id = '{profile}'",
        t("profile_traits")
    ));
    assert_eq!(traits, [["user-1@example.com", ""]]);
}
