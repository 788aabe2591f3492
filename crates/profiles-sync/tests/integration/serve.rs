//! `serve`: the real binary on a loopback port, real HTTP, a real DuckDB file.
//! Endpoints, auth, limits and error bodies; the case study over HTTP; kill -9
//! at random points loses no acknowledged event; SIGTERM drains the inbox.
//!
//! One file over 800 lines on purpose: every test here shares the `Serve`
//! child-process harness and its helpers, which read best beside the tests.

use crate::util::{golden_dir, Backend, Env};
use ps_ingest::client::{Client, Response};
use serde_json::{json, Value as Json};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const ADMIN: &str = "test-admin-token";

/// A `profiles-sync serve` child process.
pub(crate) struct Serve {
    child: Arc<Mutex<Child>>,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Serve {
    /// Starts `serve` on a free loopback port and waits until it listens.
    pub(crate) fn start(env: &Env) -> Serve {
        Serve::start_logging(env, "info")
    }

    /// [`Serve::start`] with the log filter `log` (`--log`).
    pub(crate) fn start_logging(env: &Env, log: &str) -> Serve {
        let data = env.dir.path().join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
            .arg("--config")
            .arg(&env.config)
            .args([
                "--log",
                log,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr: SocketAddr =
                            rest.split_whitespace().next().unwrap().parse().unwrap();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start:\n{}", log.lock().unwrap());
            }
        };
        Serve {
            child: Arc::new(Mutex::new(child)),
            addr,
            log,
        }
    }

    /// What it has logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn client(&self) -> Client {
        Client::new(self.addr).with_timeout(Duration::from_secs(60))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// SIGTERM, and the exit status once it has landed the inbox.
    pub(crate) fn terminate(self) -> (ExitStatus, String) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = self.child.lock().unwrap().wait().unwrap();
        // Let the log reader catch the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

pub(crate) fn basic(key: &str) -> String {
    ps_ingest::client::basic_auth(key)
}

pub(crate) fn post(c: &mut Client, path: &str, auth: Option<&str>, body: &str) -> Response {
    let mut h = vec![("Content-Type", "application/json")];
    let a;
    if let Some(k) = auth {
        a = basic(k);
        h.push(("Authorization", a.as_str()));
    }
    c.request("POST", path, &h, body.as_bytes()).unwrap()
}

fn golden_env(server: &str) -> Env {
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    Env::new(&format!(
        "{base}\n[server]\nadmin_token = \"{ADMIN}\"\n{server}\n"
    ))
}

/// `POST /admin/query` with `token`: the status and the JSON answer.
pub(crate) fn admin_post(c: &mut Client, token: &str, sql: &str) -> (u16, Json) {
    let auth = format!("Bearer {token}");
    let r = c
        .request(
            "POST",
            "/admin/query",
            &[("Authorization", &auth)],
            sql.as_bytes(),
        )
        .unwrap();
    (r.status, r.json())
}

fn admin_query(c: &mut Client, sql: &str) -> Json {
    let (status, j) = admin_post(c, ADMIN, sql);
    assert_eq!(status, 200, "{j}");
    j
}

/// Polls through the admin API until `sql` returns `want` rows' first cell.
fn wait_for(c: &mut Client, sql: &str, want: &Json) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Until the first sync creates the table, the query fails: keep polling.
        let got = admin_post(c, ADMIN, sql).1["rows"][0][0].clone();
        if &got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: still {got} after 30 s, want {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn error_code(r: &Response) -> String {
    r.json()["code"].as_str().unwrap_or_default().to_owned()
}

/// The process runs with transparent huge pages off (`ps_pipeline::process`: the
/// pipeline's batches made the kernel zero whole 2 MB pages), read from the
/// kernel's own account of the running server.
#[test]
fn serve_runs_with_transparent_huge_pages_off() {
    let env = golden_env("sync_interval = \"100ms\"");
    let srv = Serve::start(&env);
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.pid())).unwrap();
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(str::trim);
    assert_eq!(thp, Some("0"), "{status}");
}

#[test]
fn endpoints_auth_limits_and_errors() {
    let env = golden_env("sync_interval = \"100ms\"");
    let srv = Serve::start(&env);
    let mut c = srv.client();
    let ok = |r: &Response| {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["success"], json!(true), "{}", r.text());
    };

    // Every single-call endpoint and its analytics.js alias; `type` comes from the path.
    let calls = [
        ("identify", "i", r#""traits":{"plan":"pro"}"#),
        ("track", "t", r#""event":"Clicked""#),
        ("page", "p", r#""name":"Home""#),
        ("screen", "s", r#""name":"Main""#),
        ("group", "g", r#""groupId":"acme""#),
        ("alias", "a", r#""previousId":"old-1""#),
    ];
    for (long, short, extra) in calls {
        for path in [long, short] {
            let body = format!(r#"{{"userId":"u-{path}","messageId":"m-{path}",{extra}}}"#);
            ok(&post(
                &mut c,
                &format!("/v1/{path}"),
                Some("wk_source_1"),
                &body,
            ));
        }
    }
    // Batch and its aliases.
    for (i, path) in ["/v1/batch", "/v1/b", "/v1/import"].iter().enumerate() {
        let body = format!(
            r#"{{"batch":[{{"type":"track","userId":"u-b{i}","event":"Batched","messageId":"mb-{i}"}}]}}"#
        );
        let r = post(&mut c, path, Some("wk_source_1"), &body);
        ok(&r);
        assert_eq!(r.json()["accepted"], json!(1));
    }

    // Auth: Basic user name, body writeKey, unknown and missing keys.
    let page = r#"{"anonymousId":"a-auth","messageId":"m-auth-1"}"#;
    let r = post(&mut c, "/v1/page", None, page);
    assert_eq!(
        (r.status, error_code(&r)),
        (401, "missing_write_key".into()),
        "{}",
        r.text()
    );
    let r = post(&mut c, "/v1/page", Some("nope"), page);
    assert_eq!(
        (r.status, error_code(&r)),
        (401, "unknown_write_key".into()),
        "{}",
        r.text()
    );
    assert!(r.json()["message"].as_str().unwrap().contains("nope"));
    let r = c
        .request(
            "POST",
            "/v1/page",
            &[("Authorization", "Bearer x")],
            page.as_bytes(),
        )
        .unwrap();
    assert_eq!(
        (r.status, error_code(&r)),
        (401, "bad_authorization".into())
    );
    ok(&post(
        &mut c,
        "/v1/page",
        None,
        r#"{"anonymousId":"a-auth","messageId":"m-auth-2","writeKey":"wk_source_2"}"#,
    ));
    let r = post(
        &mut c,
        "/v1/page",
        None,
        r#"{"anonymousId":"a","messageId":"m-auth-3","writeKey":"bad"}"#,
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (401, "unknown_write_key".into())
    );
    let r = post(
        &mut c,
        "/v1/batch",
        None,
        r#"{"writeKey":"wk_source_2","batch":[{"type":"page","anonymousId":"a","messageId":"m-auth-4"}]}"#,
    );
    ok(&r);

    // Limits, each named in the answer.
    let big = "x".repeat(33 * 1024);
    let r = post(
        &mut c,
        "/v1/track",
        Some("wk_source_1"),
        &format!(r#"{{"userId":"u","event":"E","properties":{{"p":"{big}"}}}}"#),
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "event_too_large".into()),
        "{}",
        r.text()
    );
    assert!(
        r.json()["message"].as_str().unwrap().contains("32768"),
        "{}",
        r.text()
    );
    let many: Vec<String> = (0..2501)
        .map(|i| format!(r#"{{"type":"page","userId":"u","messageId":"many-{i}"}}"#))
        .collect();
    let r = post(
        &mut c,
        "/v1/batch",
        Some("wk_source_1"),
        &format!(r#"{{"batch":[{}]}}"#, many.join(",")),
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "batch_too_many_events".into()),
        "{}",
        r.text()
    );
    assert!(r.json()["message"].as_str().unwrap().contains("2500"));
    let fat: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"type":"page","userId":"u","messageId":"fat-{i}","properties":{{"p":"{}"}}}}"#,
                "y".repeat(30_000)
            )
        })
        .collect();
    let r = post(
        &mut c,
        "/v1/batch",
        Some("wk_source_1"),
        &format!(r#"{{"batch":[{}]}}"#, fat.join(",")),
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "batch_too_large".into()),
        "{}",
        r.text()
    );
    assert!(r.json()["message"].as_str().unwrap().contains("512000"));

    // Bad bodies.
    let r = post(&mut c, "/v1/track", Some("wk_source_1"), "{not json");
    assert_eq!((r.status, error_code(&r)), (400, "malformed_json".into()));
    let r = post(&mut c, "/v1/batch", Some("wk_source_1"), r#"{"events":[]}"#);
    assert_eq!((r.status, error_code(&r)), (400, "invalid_batch".into()));
    let r = post(
        &mut c,
        "/v1/track",
        Some("wk_source_1"),
        r#"{"userId":"u","messageId":"m-noevent"}"#,
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "missing_event".into()),
        "{}",
        r.text()
    );
    assert!(r.json()["message"].as_str().unwrap().contains("event"));

    // A batch with invalid events: 200, the valid ones land, the refusals are listed.
    let mixed = json!({"batch": [
        {"type": "track", "userId": "u-mix", "event": "Good", "messageId": "mix-1"},
        {"type": "track", "userId": "u-mix", "messageId": "mix-2"},
        {"type": "page", "messageId": "mix-3"},
        {"type": "bogus", "userId": "u-mix", "messageId": "mix-4"},
        {"type": "page", "userId": "u-mix", "messageId": "mix-5", "writeKey": "stranger"},
        {"type": "page", "userId": "u-mix", "messageId": "mix-6", "properties": {"p": "z".repeat(33_000)}},
        {"type": "page", "userId": "u-mix", "messageId": "mix-7"}
    ]});
    let r = post(&mut c, "/v1/batch", Some("wk_source_1"), &mixed.to_string());
    ok(&r);
    let b = r.json();
    assert_eq!(
        (b["accepted"].clone(), b["rejected"].clone()),
        (json!(2), json!(5)),
        "{b}"
    );
    let codes: Vec<(u64, String)> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (1, "missing_event".into()),
            (2, "missing_identity".into()),
            (3, "unknown_type".into()),
            (4, "unknown_write_key".into()),
            (5, "event_too_large".into()),
        ]
    );

    // Gzip bodies.
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(
            br#"{"batch":[{"type":"track","userId":"u-gz","event":"Zipped","messageId":"gz-1"}]}"#,
        )
        .unwrap();
        e.finish().unwrap()
    };
    let auth = basic("wk_source_1");
    let r = c
        .request(
            "POST",
            "/v1/batch",
            &[("Authorization", &auth), ("Content-Encoding", "gzip")],
            &gz,
        )
        .unwrap();
    ok(&r);
    let r = c
        .request(
            "POST",
            "/v1/batch",
            &[("Authorization", &auth), ("Content-Encoding", "gzip")],
            b"not gzip",
        )
        .unwrap();
    assert_eq!((r.status, error_code(&r)), (400, "bad_gzip".into()));

    // Server-filled fields: messageId, context.ip for client libraries, clock skew from the batch's sentAt.
    let r = post(
        &mut c,
        "/v1/batch",
        Some("wk_source_1"),
        r#"{"sentAt":"2030-01-01T01:00:00Z","context":{"locale":"fr-FR"},"batch":[
            {"type":"track","userId":"u-filled","event":"No Id","timestamp":"2030-01-01T00:59:50Z",
             "context":{"library":{"name":"analytics.js","version":"2"}}},
            {"type":"track","userId":"u-filled","event":"Server Side","messageId":"srv-1",
             "context":{"library":{"name":"analytics-node"}}}]}"#,
    );
    ok(&r);

    // CORS: preflight and the header on answers.
    let r = c
        .request(
            "OPTIONS",
            "/v1/t",
            &[
                ("Origin", "https://shop.example"),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "content-type,authorization",
                ),
            ],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type,authorization")
    );
    let r = c
        .request(
            "POST",
            "/v1/t",
            &[("Origin", "https://shop.example"), ("Content-Type", "text/plain")],
            br#"{"writeKey":"wk_source_1","userId":"u-cors","event":"Beacon","messageId":"cors-1"}"#,
        )
        .unwrap();
    ok(&r);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );

    // Unknown paths and methods.
    let r = c.request("GET", "/v1/track", &[], b"").unwrap();
    assert_eq!(
        (r.status, error_code(&r)),
        (405, "method_not_allowed".into())
    );
    let r = c.request("POST", "/v2/track", &[], b"{}").unwrap();
    assert_eq!((r.status, error_code(&r)), (404, "not_found".into()));

    // Everything acknowledged lands; refusals are in rejected_events.
    wait_for(
        &mut c,
        "SELECT count(*) FROM case_study.tracks WHERE id IN ('srv-1', 'cors-1', 'gz-1', 'mix-1')",
        &json!(4),
    );
    let filled = admin_query(
        &mut c,
        "SELECT id, context_ip, timestamp, original_timestamp, context_locale FROM case_study.tracks WHERE user_id = 'u-filled' ORDER BY event",
    );
    let rows = filled["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{filled}");
    let no_id = &rows[0];
    assert_eq!(
        no_id[0].as_str().unwrap().len(),
        36,
        "a messageId was assigned: {no_id}"
    );
    assert_eq!(
        no_id[1],
        json!("127.0.0.1"),
        "context.ip from the peer for analytics.js"
    );
    assert_eq!(no_id[3], json!("2030-01-01 00:59:50"));
    // Device clock 10 s before its sentAt: the corrected timestamp is about 10 s before receipt (now).
    let ts = no_id[2].as_str().unwrap();
    assert!(
        ts.starts_with("20") && !ts.starts_with("2030"),
        "corrected from receivedAt, not the device clock: {ts}"
    );
    assert_eq!(
        rows[1][1],
        Json::Null,
        "no context.ip for server-side libraries"
    );
    // The batch's top-level context is merged into each event.
    assert_eq!(
        (rows[0][4].clone(), rows[1][4].clone()),
        (json!("fr-FR"), json!("fr-FR"))
    );
    let types = admin_query(
        &mut c,
        "SELECT count(*) FROM case_study.identifies WHERE user_id IN ('u-identify', 'u-i')",
    );
    assert_eq!(types["rows"][0][0], json!(2));
    for (table, n) in [("pages", 3), ("screens", 2), ("groups", 2), ("aliases", 2)] {
        let got = admin_query(
            &mut c,
            &format!("SELECT count(*) FROM case_study.{table} WHERE user_id LIKE 'u-%'"),
        );
        assert_eq!(got["rows"][0][0], json!(n), "{table}");
    }
    wait_for(
        &mut c,
        "SELECT count(*) FROM case_study.rejected_events",
        &json!(6),
    );
    let rej = admin_query(&mut c, "SELECT reason_code, origin, source_id FROM case_study.rejected_events ORDER BY reason_code");
    let rej: Vec<(String, String)> = rej["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_owned(),
                r[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let codes: Vec<&str> = rej.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "event_too_large",
            "missing_event",
            "missing_event",
            "missing_identity",
            "unknown_type",
            "unknown_write_key"
        ]
    );
    assert!(
        rej.iter()
            .all(|(_, o)| o.starts_with("http 127.0.0.1 /v1/")),
        "{rej:?}"
    );

    // Admin API: token required; `profiles-sync query` goes through the running server.
    let r = c
        .request(
            "POST",
            "/admin/query",
            &[("Authorization", "Bearer wrong")],
            b"SELECT 1",
        )
        .unwrap();
    assert_eq!(r.status, 401);
    let r = c
        .request(
            "POST",
            "/admin/query",
            &[("Authorization", &format!("Bearer {ADMIN}"))],
            b"SELECT nope",
        )
        .unwrap();
    assert_eq!((r.status, error_code(&r)), (400, "query_failed".into()));
    let mut cfg = std::fs::read_to_string(&env.config).unwrap();
    cfg.push_str(&format!("listen = \"{}\"\n", srv.addr));
    std::fs::write(&env.config, cfg).unwrap();
    let out = env.ok(&[
        "query",
        "SELECT id, event_text FROM case_study.tracks WHERE id = 'gz-1'",
    ]);
    assert_eq!(out, "id\tevent_text\ngz-1\tZipped\n");

    // Health and metrics.
    let r = c.request("GET", "/health", &[], b"").unwrap();
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("ok")),
        "{}",
        r.text()
    );
    let m = c.request("GET", "/metrics", &[], b"").unwrap().text();
    for want in [
        "profiles_sync_http_requests_total{path=\"/v1/batch\",status=\"200\"}",
        "profiles_sync_events_accepted_total{source=\"source_1\"}",
        "profiles_sync_events_rejected_total{source=\"source_1\",reason=\"missing_event\"} 2",
        "profiles_sync_requests_refused_total{reason=\"unknown_write_key\"} 2",
        "profiles_sync_inbox_events ",
        "profiles_sync_inbox_bytes ",
        "profiles_sync_sync_lag_seconds ",
        "profiles_sync_last_sync_duration_seconds ",
        "profiles_sync_rows_landed_total{table=\"tracks\"}",
        "profiles_sync_event_delay_seconds_bucket{le=\"+Inf\"}",
    ] {
        assert!(m.contains(want), "missing {want} in\n{m}");
    }

    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    // With the server gone, `query` opens the file.
    let out = env.ok(&[
        "query",
        "--json",
        "SELECT count(*) AS n FROM case_study.rejected_events",
    ]);
    assert_eq!(
        serde_json::from_str::<Json>(&out).unwrap(),
        json!({"columns": ["n"], "rows": [[6]], "truncated": false})
    );
}

#[test]
fn concurrent_clients_group_commit_and_sigterm_drains() {
    // A long interval: only the SIGTERM drain lands the events.
    let env = golden_env("sync_interval = \"1h\"");
    let srv = Serve::start(&env);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let mut c = srv.client();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let batch: Vec<Json> = (0..5)
                        .map(|j| json!({"type": "track", "userId": format!("u{t}"), "event": "Tick", "messageId": format!("c-{t}-{i}-{j}")}))
                        .collect();
                    let r = post(&mut c, "/v1/batch", Some("wk_source_1"), &json!({ "batch": batch }).to_string());
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = srv.client();
    let m = c.request("GET", "/metrics", &[], b"").unwrap().text();
    let val = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        val("profiles_sync_inbox_events "),
        1600.0,
        "nothing landed yet (interval 1h)"
    );
    let commits = val("profiles_sync_inbox_group_commits_total ");
    let requests = val("profiles_sync_inbox_group_requests_total ");
    assert_eq!(requests, 320.0);
    eprintln!("group commit: {requests} requests in {commits} fsyncs");
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("1600 events landed"), "{log}");
    let n = env.query("SELECT count(*), count(DISTINCT id) FROM wh.case_study.tracks");
    assert_eq!(n, vec![vec!["1600".to_owned(), "1600".to_owned()]]);
}

#[test]
fn back_pressure_answers_429() {
    let env = golden_env("sync_interval = \"1h\"\nmax_inbox_bytes = \"1MiB\"");
    let srv = Serve::start(&env);
    let mut c = srv.client();
    let mut acked = 0;
    let mut refused = None;
    for i in 0..10 {
        let batch: Vec<Json> = (0..100)
            .map(|j| json!({"type": "page", "userId": "u", "messageId": format!("bp-{i}-{j}"), "properties": {"pad": "p".repeat(3000)}}))
            .collect();
        let r = post(
            &mut c,
            "/v1/batch",
            Some("wk_source_1"),
            &json!({ "batch": batch }).to_string(),
        );
        match r.status {
            200 => acked += 100,
            429 => {
                refused = Some(r);
                break;
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    let r = refused.expect("the inbox filled up");
    assert_eq!(error_code(&r), "inbox_full");
    assert_eq!(r.header("retry-after"), Some("3600"));
    assert!(acked >= 300, "{acked}");
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    let n = env.query("SELECT count(*) FROM wh.case_study.pages");
    assert_eq!(n, vec![vec![acked.to_string()]]);
}

#[test]
fn case_study_over_http_gives_the_golden_tables() {
    let env = golden_env("sync_interval = \"100ms\"");
    let srv = Serve::start(&env);
    let mut c = srv.client();
    // One call per event on its own endpoint, the write key in the body.
    for line in std::fs::read_to_string(golden_dir().join("case-study.jsonl"))
        .unwrap()
        .lines()
    {
        let mut ev: Json = serde_json::from_str(line).unwrap();
        let kind = ev.as_object_mut().unwrap().remove("type").unwrap();
        let r = post(
            &mut c,
            &format!("/v1/{}", kind.as_str().unwrap()),
            None,
            &ev.to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    crate::util::assert_golden_tables(&env.url(), "over HTTP");
    // And every table equals a file replay of the same events.
    let reference = Env::golden();
    reference.ok(&[
        "sync",
        golden_dir().join("case-study.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(env.dump("case_study"), reference.dump("case_study"));
}

#[test]
fn case_study_over_http_on_postgres_equals_a_file_replay() {
    // The same server on the PostgreSQL warehouse: the sync loop commits
    // rows, engine state and inbox position in one PostgreSQL transaction.
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let env = Env::with_backend(
        &format!("{base}\n[server]\nsync_interval = \"100ms\"\n"),
        Backend::Postgres,
    );
    let srv = Serve::start(&env);
    let mut c = srv.client();
    let lines = std::fs::read_to_string(golden_dir().join("case-study.jsonl")).unwrap();
    let batch: Vec<Json> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r = post(
        &mut c,
        "/v1/batch",
        Some("wk_source_1"),
        &json!({ "batch": batch }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    let reference = Env::golden_on(Backend::Postgres);
    reference.ok(&[
        "sync",
        golden_dir().join("case-study.jsonl").to_str().unwrap(),
    ]);
    let got = env.dump("case_study");
    assert!(got.values().any(|rows| !rows.is_empty()));
    assert_eq!(got, reference.dump("case_study"));
}

/// A small deterministic generator for batch sizes and kill times.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn kill_9_at_random_points_loses_no_acknowledged_event() {
    kill_9_while_serving(Backend::DuckDb);
}

#[test]
fn kill_9_at_random_points_on_postgres_loses_no_acknowledged_event() {
    kill_9_while_serving(Backend::Postgres);
}

/// `serve` on `backend`, killed with SIGKILL at random points while a
/// client sends a stream (`PS_CRASH_KILLS` times, 4 by default), then
/// stopped cleanly: the tables equal a clean replay of the stream.
fn kill_9_while_serving(backend: Backend) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed} ({backend:?})");
    let max_kills: usize = std::env::var("PS_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let mut rng = Lcg(seed);
    // A realistic stream (merges, traits, duplicates), without sentAt and
    // library so a file replay of it is the exact reference.
    let mut g = ps_gen::Generator::new(&ps_gen::GenConfig {
        events: 2000,
        seed: 7,
        sources: 3,
    });
    let mut events: Vec<Json> = Vec::new();
    while let Some(line) = g.next_line() {
        let mut v: Json = serde_json::from_str(line).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("sentAt");
        if let Some(Json::Object(ctx)) = o.get_mut("context") {
            ctx.remove("library");
        }
        events.push(v);
    }
    let sources: String = ps_gen::sources(3)
        .into_iter()
        .map(|(id, name, slug, wk)| {
            format!(
                "[[sources]]\nid = {id:?}\nname = {name:?}\nslug = {slug:?}\nwrite_key = {wk:?}\n"
            )
        })
        .collect();
    let cfg = format!("space = \"crash\"\n[warehouse]\nurl = \"x\"\n{sources}[server]\nsync_interval = \"50ms\"\n");
    let env = Env::with_backend(&cfg, backend);
    let mut batches: Vec<Vec<Json>> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let n = (1 + rng.next(25) as usize).min(events.len() - i);
        batches.push(events[i..i + n].to_vec());
        i += n;
    }
    let started = Instant::now();
    let mut next = 0;
    let mut kills = 0;
    let mut unanswered = 0;
    let mut last_killed = false;
    while next < batches.len() || kills < max_kills {
        // A kill costs a start-up; the long form gets time in proportion.
        assert!(
            started.elapsed() < Duration::from_secs(120 + 5 * max_kills as u64),
            "crash test took too long"
        );
        let srv = Serve::start(&env);
        let killer = (kills < max_kills).then(|| {
            let child = srv.child.clone();
            let after = Duration::from_millis(50 + rng.next(300));
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let mut c = child.lock().unwrap();
                let _ = c.kill();
                let _ = c.wait();
            })
        });
        let mut c = srv.client().with_timeout(Duration::from_secs(10));
        while next < batches.len() {
            let body = json!({ "batch": batches[next] }).to_string();
            match c.request(
                "POST",
                "/v1/batch",
                &[("Authorization", &basic("wk_source_1"))],
                body.as_bytes(),
            ) {
                Ok(r) if r.status == 200 => next += 1,
                Ok(r) => panic!("unexpected answer {}: {}", r.status, r.text()),
                // Killed mid-request: unknown whether it was stored, so send it
                // again to the next server, as an SDK would.
                Err(_) => {
                    unanswered += 1;
                    break;
                }
            }
            // Spread the stream over several server lives.
            if rng.next(4) == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        match killer {
            Some(k) => {
                k.join().unwrap();
                kills += 1;
                last_killed = true;
                drop(srv);
            }
            None => {
                let (status, log) = srv.terminate();
                assert!(status.success(), "{log}");
                last_killed = false;
                break;
            }
        }
    }
    // The last life ended with a kill: one more start lands what the inbox holds.
    if last_killed {
        let srv = Serve::start(&env);
        let (status, log) = srv.terminate();
        assert!(status.success(), "{log}");
    }
    assert_eq!(
        next,
        batches.len(),
        "every batch was acknowledged eventually"
    );
    eprintln!(
        "{kills} kills, {unanswered} unanswered requests resent, {:?}",
        started.elapsed()
    );

    // Exactly once: no message id twice in any call table.
    for t in ps_warehouse::contract::CALL_TABLES {
        let dup = env.query(&format!(
            "SELECT id FROM {} GROUP BY id HAVING count(*) > 1",
            env.table("crash", t)
        ));
        assert!(dup.is_empty(), "{t}: {dup:?}");
    }
    // The tables equal a clean replay of the acknowledged events.
    let reference = Env::new(&cfg);
    let lines: Vec<String> = events.iter().map(Json::to_string).collect();
    let file = reference.write("events.jsonl", &lines.join("\n"));
    reference.ok(&["sync", file.to_str().unwrap()]);
    let (got, want) = (env.dump("crash"), reference.dump("crash"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        assert!(
            got[k] == *v,
            "table {k} differs from a clean replay (seed {seed})"
        );
    }
}

fn admin_regulate(c: &mut Client, kind: &str, subject: &str) -> Response {
    let auth = format!("Bearer {ADMIN}");
    c.request(
        "POST",
        "/admin/regulations",
        &[("Authorization", &auth)],
        json!({"type": kind, "subject": subject})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

#[test]
fn privacy_requests_while_serving() {
    let env = golden_env("sync_interval = \"50ms\"");
    let srv = Serve::start(&env);
    let mut c = srv.client();
    let count = |c: &mut Client, sql: &str| admin_query(c, sql)["rows"][0][0].clone();
    // Dave and Erin identify; their events land.
    for (u, a) in [("u_dave", "d1"), ("u_erin", "e1")] {
        let r = post(
            &mut c,
            "/v1/identify",
            Some("wk_source_1"),
            &json!({"userId": u, "anonymousId": a, "traits": {"email": format!("{u}@x.io")}, "messageId": format!("id-{u}")}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    wait_for(
        &mut c,
        "SELECT count(*) FROM wh.case_study.identifies",
        &json!(2),
    );
    // The admin API wants the admin token, never a write key.
    let r = c
        .request(
            "POST",
            "/admin/regulations",
            &[("Authorization", &basic("wk_source_1"))],
            br#"{"type":"delete","subject":"user_id:u_dave"}"#,
        )
        .unwrap();
    assert_eq!(r.status, 401);
    let r = admin_regulate(&mut c, "delete", "dave");
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "bad_subject");

    // Erin keeps sending while Dave is deleted.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        let mut c = srv.client();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = post(
                    &mut c,
                    "/v1/track",
                    Some("wk_source_1"),
                    &json!({"userId": "u_erin", "event": "Tick", "messageId": format!("tick-{n}")})
                        .to_string(),
                );
                assert_eq!(r.status, 200, "{}", r.text());
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let r = admin_regulate(&mut c, "delete", "email:u_dave@x.io");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["regulation"]["status"], "finished");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let ticks = sender.join().unwrap();
    wait_for(
        &mut c,
        "SELECT count(*) FROM wh.case_study.tracks",
        &json!(ticks),
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM wh.case_study.identifies WHERE user_id = 'u_dave'"
        ),
        json!(0)
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM wh.case_study.external_id_mapping WHERE external_id_value IN ('u_dave', 'd1', 'u_dave@x.io')"
        ),
        json!(0)
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM wh.case_study.external_id_mapping WHERE external_id_value = 'u_erin'"
        ),
        json!(1)
    );
    let r = admin_regulate(&mut c, "delete", "user_id:u_dave");
    assert_eq!(r.status, 404, "already deleted: {}", r.text());
    assert_eq!(r.json()["regulation"]["status"], "not_found");

    // Suppression over HTTP: accepted (as Segment does), never landed, counted.
    let r = admin_regulate(&mut c, "suppress", "user_id:u_erin");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        &mut c,
        "/v1/batch",
        Some("wk_source_1"),
        &json!({"batch": [
            {"type": "track", "anonymousId": "e1", "event": "Hidden", "messageId": "hidden-1"},
            {"type": "track", "userId": "u_frank", "event": "Shown", "messageId": "shown-1"}
        ]})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        &mut c,
        "SELECT count(*) FROM wh.case_study.tracks WHERE id = 'shown-1'",
        &json!(1),
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM wh.case_study.tracks WHERE id = 'hidden-1'"
        ),
        json!(0)
    );
    let m = c.request("GET", "/metrics", &[], b"").unwrap().text();
    assert!(
        m.lines().any(|l| l.contains("refused_at_sync")
            && l.contains("suppressed")
            && l.ends_with(" 1")),
        "{m}"
    );
    let auth = format!("Bearer {ADMIN}");
    let r = c
        .request(
            "GET",
            "/admin/regulations",
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let regs = r.json()["regulations"].as_array().unwrap().clone();
    let kinds: Vec<&str> = regs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["finished", "not_found", "finished"]);
    // The CLI goes through the running server (it holds the DuckDB file).
    let text = std::fs::read_to_string(&env.config).unwrap();
    let cfg = env.write("cli.toml", &format!("{text}listen = \"{}\"\n", srv.addr));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .arg("--config")
        .arg(&cfg)
        .args(["unsuppress", "user_id:u_erin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("finished"));
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
}

/// A batch body gives the same tables whether it is posted to `/v1/batch`
/// or replayed from a file: the batch's `context` and `integrations` reach
/// every event the same way (the event's own keys win). (A refused event
/// would differ in one thing by design: `rejected_events.origin` says where
/// it came from.)
#[test]
fn a_batch_body_lands_the_same_through_serve_and_through_a_file() {
    let body = json!({
        "writeKey": "wk_source_1",
        "context": {"ip": "1.2.3.4", "locale": "en-GB", "library": {"name": "analytics-python", "version": "2.3.0"}},
        "integrations": {"All": true},
        "batch": [
            {"type": "identify", "anonymousId": "anon-b", "messageId": "body-1",
             "timestamp": "2024-03-01T10:00:00Z", "traits": {"plan": "pro"}},
            {"type": "track", "userId": "user-b", "anonymousId": "anon-b", "messageId": "body-2",
             "timestamp": "2024-03-01T10:01:00Z", "event": "Order Completed",
             "context": {"locale": "fr-FR"}, "properties": {"revenue": 12.5}},
            {"type": "page", "userId": "user-b", "messageId": "body-3",
             "timestamp": "2024-03-01T10:02:00Z", "name": "Home", "context": null}
        ]
    });
    let file_env = golden_env("");
    let path = file_env.write("body.json", &body.to_string());
    file_env.ok(&["sync", path.to_str().unwrap()]);

    let http_env = golden_env("sync_interval = \"100ms\"");
    let srv = Serve::start(&http_env);
    let mut c = srv.client();
    let r = post(&mut c, "/v1/batch", None, &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");

    let (file, http) = (file_env.dump("case_study"), http_env.dump("case_study"));
    assert_eq!(
        file.keys().collect::<Vec<_>>(),
        http.keys().collect::<Vec<_>>()
    );
    for (table, rows) in &file {
        assert_eq!(Some(rows), http.get(table), "{table}");
    }
    // The batch's context reached the events, under their own values.
    let rows = |sql: &str| file_env.query(sql);
    assert_eq!(
        rows("SELECT id, context_locale, context_ip FROM case_study.tracks"),
        [["body-2", "fr-FR", "1.2.3.4"]]
    );
    assert_eq!(
        rows("SELECT id, context_locale, context_library_name FROM case_study.pages"),
        [["body-3", "en-GB", "analytics-python"]]
    );
}

/// analytics.js loads `GET /v1/projects/<writeKey>/settings` before it sends
/// anything: a known write key gets a settings document pointing its
/// `Segment.io` integration at this server, an unknown one 404. Logs going
/// to a pipe carry no colour codes.
#[test]
fn analytics_js_settings_and_plain_logs() {
    let env = golden_env("");
    let srv = Serve::start(&env);
    let mut c = srv.client();
    let host = srv.addr.to_string();
    let r = c
        .request(
            "GET",
            "/v1/projects/wk_source_1/settings",
            &[("Host", &host), ("Origin", "http://shop.example")],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let io = &r.json()["integrations"]["Segment.io"];
    assert_eq!(io["apiKey"], json!("wk_source_1"));
    assert_eq!(io["apiHost"], json!(format!("{host}/v1")));
    assert_eq!(io["protocol"], json!("http"));
    let r = c
        .request("GET", "/v1/projects/wk_nobody/settings", &[], b"")
        .unwrap();
    assert_eq!(
        (r.status, error_code(&r)),
        (404, "unknown_write_key".into())
    );
    let m = c.request("GET", "/metrics", &[], b"").unwrap().text();
    assert!(
        m.contains("path=\"/v1/projects/settings\",status=\"200\"") && !m.contains("wk_nobody"),
        "{m}"
    );
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log:\n{log}"
    );
}
