//! The inbox's disk full while `serve` ingests (issue 22). The inbox lives on
//! a 2 MB tmpfs and the warehouse (PostgreSQL) is stopped, so the inbox
//! fills: requests are then refused with 503 and `Retry-After` — never
//! acknowledged and lost — and once PostgreSQL is back, the sync lands and
//! deletes segments, the server accepts again by itself, and every
//! acknowledged event lands exactly once.
//!
//! Mounting a tmpfs needs root; the test fails (never skips) without it.

use crate::outage::wait_landed;
use crate::pg_fault::Cluster;
use crate::serve::{Serve, ADMIN};
use crate::util::{golden_dir, Env};
use ps_ingest::client::{basic_auth, Client};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Sends one request of 50 events; its status and `Retry-After`.
fn send(c: &mut Client, request: usize) -> (u16, Option<String>) {
    let batch: Vec<Json> = (0..50)
        .map(|j| {
            json!({
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": format!("anon-{}", request % 17),
                "messageId": format!("full-{request}-{j}"),
                "timestamp": "2024-05-01T12:00:00.000Z",
                "properties": { "padding": "x".repeat(400) },
            })
        })
        .collect();
    let auth = basic_auth("wk_source_1");
    let r = c
        .request(
            "POST",
            "/v1/batch",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            json!({ "batch": batch }).to_string().as_bytes(),
        )
        .unwrap();
    (r.status, r.header("retry-after").map(str::to_owned))
}

#[test]
fn a_full_inbox_disk_refuses_with_retry_after_and_recovers() {
    let cluster = Cluster::start();
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let env = Env::with_url(
        &format!(
            "{base}\n[server]\nsync_interval = \"100ms\"\nadmin_token = \"{ADMIN}\"\nsegment_bytes = \"64KiB\"\n"
        ),
        &cluster.url,
    );
    // Serve::start puts the inbox in <dir>/data: make that the tmpfs.
    let _fs = Tmpfs::mount(&env.dir.path().join("data"), "2m");
    let srv = Serve::start(&env);
    let mut c = srv.client();

    cluster.script("pause");
    let mut acked = 0usize;
    let mut request = 0;
    let refused = loop {
        let (status, retry) = send(&mut c, request);
        request += 1;
        match status {
            200 => acked += 1,
            503 => break retry,
            other => panic!("request {request}: unexpected {other}"),
        }
        assert!(request < 2000, "2 MB never filled up");
    };
    assert!(acked > 0, "some requests fit before the disk filled");
    assert!(
        refused.is_some(),
        "a 503 for a full disk says when to retry"
    );
    let health = c.request("GET", "/health", &[], b"").unwrap();
    assert_eq!(health.status, 503, "{}", health.text());
    assert!(health.text().contains("inbox_error"), "{}", health.text());

    // The warehouse returns: the inbox drains, segments go, space returns.
    cluster.script("resume");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, _) = send(&mut c, request);
        request += 1;
        if status == 200 {
            acked += 1;
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "the inbox never accepted again");
        std::thread::sleep(Duration::from_millis(200));
    }
    let want = (acked * 50) as i64;
    wait_landed(&mut c, want, Duration::from_secs(60));
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("the inbox cannot write"), "{log}");
    assert!(log.contains("the inbox can write again"), "{log}");
}
