//! PostgreSQL restarted in the middle of a sync: the sync retries with backoff
//! and every event lands exactly once.

use crate::util::{dump_url, gen_config, repo_root, Env};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A private PostgreSQL cluster this test may stop and start.
pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    pub(crate) url: String,
}

impl Cluster {
    pub(crate) fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("ps-pgfault")
            .tempdir_in("/tmp")
            .unwrap();
        let out = Command::new(repo_root().join("scripts/pg-test-cluster"))
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot start a PostgreSQL cluster (scripts/setup installs the server): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Cluster { dir, url }
    }

    /// `pause` (stop, keeping the data) or `resume`.
    pub(crate) fn script(&self, cmd: &str) {
        let out = Command::new(repo_root().join("scripts/pg-test-cluster"))
            .arg(cmd)
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/pg-test-cluster"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

#[test]
fn postgres_restart_mid_sync_lands_everything_once() {
    // Reference: the same stream into DuckDB, uninterrupted.
    let reference = Env::new(&gen_config("duckdb://x.duckdb"));
    let file = reference.dir.path().join("events.jsonl");
    let g = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .args([
            "gen",
            "--events",
            "6000",
            "--seed",
            "5",
            "--sources",
            "3",
            "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(g.status.success());
    reference.ok(&["sync", "--batch-events", "200", file.to_str().unwrap()]);

    let cluster = Cluster::start();
    let cfg_path = reference.dir.path().join("pg.toml");
    std::fs::write(&cfg_path, gen_config(&cluster.url)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .arg("--config")
        .arg(&cfg_path)
        .args(["sync", "--batch-events", "200"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    cluster.script("pause");
    std::thread::sleep(Duration::from_millis(1500));
    cluster.script("resume");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sync did not survive the restart:\n{stderr}"
    );
    assert!(
        stderr.contains("retrying"),
        "the restart happened during the sync (make the stream longer if not):\n{stderr}"
    );

    // Same rows as the uninterrupted DuckDB run (cross-warehouse dumps are
    // equal, as golden::duckdb_and_postgres_hold_the_same_rows shows).
    assert_eq!(dump_url(&cluster.url, "gen"), reference.dump("gen"));
}
