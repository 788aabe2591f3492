//! The DuckDB file unwritable (issue 22). The test marks the file, its WAL
//! and their directory immutable (`chattr +i`, ext4): every write then fails
//! with EPERM, through file descriptors already open too. File permissions
//! would not do (the tests run as root, who may write anything), nor a
//! read-only remount (refused while the server has the file open for
//! writing).
//!
//! - At start-up, `serve` and `sync` stop with an error naming the file.
//! - While `serve` runs, requests are still acknowledged (the inbox is on
//!   another directory), `/health` names the file in its sync error, and
//!   once the file is writable again every acknowledged event lands once.
//!
//! `chattr +i` needs root and a file system with the flag (ext4, xfs); the
//! test fails (never skips) without them.

use crate::outage::{landed, wait_landed};
use crate::serve::{post, Serve, ADMIN};
use crate::util::{golden_dir, Env};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A directory whose entries and itself can be made immutable; made
/// mutable again on drop, so it can be removed.
struct Immutable(PathBuf);

impl Immutable {
    fn set(&self, on: bool) {
        let flag = if on { "+i" } else { "-i" };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // The directory last when setting (its entries must still be
        // changeable), first when clearing.
        if on {
            paths.push(self.0.clone());
        } else {
            paths.insert(0, self.0.clone());
        }
        for p in paths {
            let out = Command::new("chattr").arg(flag).arg(&p).output().unwrap();
            assert!(
                out.status.success(),
                "chattr {flag} {} (this test needs root and ext4): {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

fn dir_of(file: &Path) -> PathBuf {
    file.parent().unwrap().to_owned()
}

fn send(c: &mut ps_ingest::client::Client, request: usize) {
    let batch: Vec<_> = (0..20)
        .map(|j| {
            json!({"type": "track", "event": "Order Completed", "userId": format!("user-{}", j % 7),
                   "messageId": format!("ro-{request}-{j}"), "timestamp": "2024-05-01T12:00:00.000Z"})
        })
        .collect();
    let r = post(
        c,
        "/v1/batch",
        Some("wk_source_1"),
        &json!({ "batch": batch }).to_string(),
    );
    assert_eq!(r.status, 200, "request {request}: {}", r.text());
}

#[test]
fn an_unwritable_duckdb_file_is_named_and_loses_nothing() {
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let holder = tempfile::tempdir().unwrap();
    let file = holder.path().join("warehouse/wh.duckdb");
    std::fs::create_dir_all(dir_of(&file)).unwrap();
    let frozen = Immutable(dir_of(&file));
    let env = Env::with_url(
        &format!("{base}\n[server]\nsync_interval = \"100ms\"\nadmin_token = \"{ADMIN}\"\n"),
        &format!("duckdb://{}", file.display()),
    );
    let events = env.write(
        "events.jsonl",
        r#"{"type":"track","event":"E","userId":"u","messageId":"f-1","writeKey":"wk_source_1"}"#,
    );
    env.ok(&["sync", events.to_str().unwrap()]);

    // Unwritable before start-up: both commands name the file.
    frozen.set(true);
    let out = env.run(&["sync", events.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    let data = env.dir.path().join("data");
    let out = env.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    frozen.set(false);

    // Unwritable while serving.
    let srv = Serve::start(&env);
    let mut c = srv.client();
    let mut sent = 0;
    for _ in 0..3 {
        send(&mut c, sent);
        sent += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while landed(&mut c) != Some(1 + 20 * sent as i64) {
        assert!(Instant::now() < deadline, "the first events never landed");
        std::thread::sleep(Duration::from_millis(100));
    }
    frozen.set(true);
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        send(&mut c, sent);
        sent += 1;
        let h = c.request("GET", "/health", &[], b"").unwrap();
        assert_eq!(h.status, 200, "still accepting: {}", h.text());
        if h.json()["sync_error"].is_string() {
            break h.json();
        }
        assert!(Instant::now() < deadline, "no sync error: {}", h.text());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health["status"], "degraded", "{health}");
    let why = health["sync_error"].as_str().unwrap();
    assert!(why.contains("wh.duckdb"), "the error names the file: {why}");
    for _ in 0..5 {
        send(&mut c, sent);
        sent += 1;
    }
    frozen.set(false);
    let want = 1 + 20 * sent as i64;
    wait_landed(&mut c, want, Duration::from_secs(90));
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("sync failed"), "{log}");
    eprintln!("unwritable: {why}");
}
