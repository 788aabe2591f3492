//! Several machines (issue 23): stateless `serve` nodes publishing to a
//! 3-node NATS JetStream cluster, `resolve` processes competing for the
//! space's lease and landing the log in PostgreSQL, fenced. All on
//! 127.0.0.1, every process stopped by its pid.
//!
//! Needs nats-server (`scripts/setup`) and `PROFILES_SYNC_TEST_PG_URL`.

use crate::nats::{signal, NatsCluster};
use crate::serve::{post, Serve};
use crate::util::{gen_config, generated, pg_fresh_database, wait_dump_equal, Env};
use ps_ingest::client::Client;
use serde_json::{json, Value as Json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lease's TTL in these tests: failover waits about this long.
pub(crate) const LEASE_TTL: &str = "3s";

/// A `gen`-space config on a fresh PostgreSQL database, with `[log]` on
/// `cluster`.
pub(crate) fn log_env(cluster: &NatsCluster) -> Env {
    let url = pg_fresh_database();
    let text = format!(
        "{}\n[log]\nurl = {:?}\nlease_ttl = {LEASE_TTL:?}\nack_timeout = \"2s\"\n",
        gen_config(&url),
        cluster.url()
    );
    Env::with_url(&text, &url)
}

/// A `profiles-sync resolve` child process and what it logged.
pub(crate) struct Resolver {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Resolver {
    pub(crate) fn start(env: &Env) -> Resolver {
        let mut child = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
            .arg("--config")
            .arg(&env.config)
            .args(["--log", "info,async_nats=warn", "resolve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Resolver { child, log }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// What it logs, shared: readable after it was dropped.
    pub(crate) fn log_handle(&self) -> Arc<Mutex<String>> {
        self.log.clone()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until its log has `what`.
    pub(crate) fn wait_log(&self, what: &str, limit: Duration) {
        wait_until(&format!("resolver logs {what:?}"), limit, || {
            self.log().contains(what)
        });
    }

    pub(crate) fn kill_9(&mut self) {
        signal(self.pid(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // A stopped process must be continued to die of SIGKILL cleanly.
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls until `check` holds, or fails naming `what`.
pub(crate) fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Request `request`'s 20 tracks (merging anonymous ids into 13 users).
fn tracks(request: usize) -> String {
    let batch: Vec<Json> = (0..20)
        .map(|j| {
            let n = request * 20 + j;
            json!({
                "type": "track",
                "event": "Order Completed",
                "userId": format!("user-{}", n % 13),
                "anonymousId": format!("anon-{}", n % 29),
                "messageId": format!("mn-{request}-{j}"),
                "timestamp": "2024-05-01T12:00:00.000Z",
                "properties": { "revenue": j },
            })
        })
        .collect();
    json!({ "batch": batch }).to_string()
}

/// Posts `body` until it is acknowledged (a 503 is retried with the same
/// messageIds, as SDKs do), at most `limit`.
fn send_acked(c: &mut Client, body: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let r = post(c, "/v1/batch", Some("wk_source_1"), body);
        if r.status == 200 {
            return;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "not acknowledged within {limit:?}: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Tracks landed, asserting none landed twice; `None` before the
/// resolver's first commit made the table.
fn landed(env: &Env) -> Option<i64> {
    let made = env.query("SELECT to_regclass('gen.tracks') IS NOT NULL");
    if made[0][0] != "true" {
        return None;
    }
    let rows = env.query("SELECT count(*), count(DISTINCT id) FROM gen.tracks");
    let (n, distinct): (i64, i64) = (rows[0][0].parse().unwrap(), rows[0][1].parse().unwrap());
    assert_eq!(n, distinct, "an event landed twice");
    Some(n)
}

/// Waits until exactly `want` tracks landed, each once; on failure shows
/// what the resolvers logged.
fn wait_landed(env: &Env, want: i64, limit: Duration, resolvers: &[&Resolver]) {
    let deadline = Instant::now() + limit;
    loop {
        let n = landed(env);
        if n == Some(want) {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = resolvers.iter().map(|r| r.log()).collect();
            panic!(
                "acknowledged events did not all land: {n:?} of {want}\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The events of a generated JSON-lines file without `sentAt`, so an
/// event's timestamp does not depend on when it was received (clock-skew
/// correction) and serve and a file replay agree.
pub(crate) fn events_without_sent_at(file: &std::path::Path) -> Vec<Json> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| {
            let mut e: Json = serde_json::from_str(l).unwrap();
            e.as_object_mut().unwrap().remove("sentAt");
            e
        })
        .collect()
}

#[test]
fn two_serve_nodes_and_one_resolver_equal_a_single_node_sync() {
    let cluster = NatsCluster::start(3);
    let env = log_env(&cluster);
    let stream = generated(&env, 3000, 23);
    let (s1, s2) = (Serve::start(&env), Serve::start(&env));
    let resolver = Resolver::start(&env);
    // Posted one batch at a time, alternating between the nodes: the
    // stream's order is then the file's order.
    let lines = events_without_sent_at(&stream);
    let stream = env.write(
        "stream.jsonl",
        &lines.iter().map(|e| format!("{e}\n")).collect::<String>(),
    );
    let (mut c1, mut c2) = (s1.client(), s2.client());
    for (i, chunk) in lines.chunks(50).enumerate() {
        let c = if i % 2 == 0 { &mut c1 } else { &mut c2 };
        let r = post(
            c,
            "/v1/batch",
            Some("wk_source_1"),
            &json!({ "batch": chunk }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let reference_url = pg_fresh_database();
    let reference = Env::with_url(&gen_config(&reference_url), &reference_url);
    reference.ok(&["sync", stream.to_str().unwrap()]);
    let want = reference.dump("gen");
    wait_dump_equal(&env.url(), "gen", &want, Duration::from_secs(120), || {
        resolver.log()
    });
    assert!(
        resolver.log().contains("took the lease"),
        "{}",
        resolver.log()
    );
}

#[test]
fn kill_9_of_the_active_resolver_loses_and_repeats_nothing() {
    let cluster = NatsCluster::start(3);
    let env = log_env(&cluster);
    let (s1, s2) = (Serve::start(&env), Serve::start(&env));
    let mut r1 = Resolver::start(&env);
    r1.wait_log("took the lease", Duration::from_secs(30));
    let r2 = Resolver::start(&env);
    let (mut c1, mut c2) = (s1.client(), s2.client());
    let requests = 60;
    let mut killed_at = None;
    for i in 0..requests {
        let c = if i % 2 == 0 { &mut c1 } else { &mut c2 };
        send_acked(c, &tracks(i), Duration::from_secs(30));
        if i == requests / 3 {
            r1.kill_9();
            killed_at = Some(Instant::now());
        }
    }
    wait_landed(&env, requests as i64 * 20, Duration::from_secs(60), &[&r2]);
    r2.wait_log("took the lease", Duration::from_secs(1));
    eprintln!(
        "failover: every acknowledged event landed {:?} after the kill (lease TTL {LEASE_TTL})",
        killed_at.unwrap().elapsed()
    );
}

#[test]
/// SIGSTOP of the holder past its TTL: the standby takes over; once
/// continued, the old holder sees its lease lapsed and steps down without
/// committing (its commits would also be refused by the warehouse's fence,
/// which this pause does not reach: the process was idle, not inside a
/// commit).
fn a_paused_resolver_steps_down_and_never_commits_after_the_takeover() {
    let cluster = NatsCluster::start(3);
    let env = log_env(&cluster);
    let s1 = Serve::start(&env);
    let r1 = Resolver::start(&env);
    r1.wait_log("took the lease", Duration::from_secs(30));
    let r2 = Resolver::start(&env);
    let mut c = s1.client();
    for i in 0..10 {
        send_acked(&mut c, &tracks(i), Duration::from_secs(30));
    }
    wait_landed(&env, 200, Duration::from_secs(30), &[&r1, &r2]);
    // Idle (nothing left to read), so not inside a commit when stopped.
    std::thread::sleep(Duration::from_millis(500));
    signal(r1.pid(), "STOP");
    let stopped = Instant::now();
    for i in 10..20 {
        send_acked(&mut c, &tracks(i), Duration::from_secs(30));
    }
    wait_landed(&env, 400, Duration::from_secs(30), &[&r1, &r2]);
    r2.wait_log("took the lease", Duration::from_secs(1));
    let takeover = stopped.elapsed();
    let before = r1.log().len();
    signal(r1.pid(), "CONT");
    for i in 20..30 {
        send_acked(&mut c, &tracks(i), Duration::from_secs(30));
    }
    wait_landed(&env, 600, Duration::from_secs(30), &[&r1, &r2]);
    std::thread::sleep(Duration::from_secs(1));
    let after = r1.log()[before..].to_owned();
    assert!(
        after.contains("stepping down without committing"),
        "{after}"
    );
    assert!(
        !after.contains(" landed"),
        "the paused resolver committed after the takeover:\n{after}"
    );
    assert!(
        env.meta("gen", "fence").is_some(),
        "no fence token committed"
    );
    eprintln!("takeover after SIGSTOP: {takeover:?}; the old holder logged:\n{after}");
}

#[test]
fn serve_answers_503_without_a_quorum_and_200_once_it_is_back() {
    let mut cluster = NatsCluster::start(3);
    let env = log_env(&cluster);
    let s1 = Serve::start(&env);
    let mut c = s1.client();
    send_acked(&mut c, &tracks(0), Duration::from_secs(30));
    cluster.kill(1);
    cluster.kill(2);
    let t0 = Instant::now();
    let r = post(&mut c, "/v1/batch", Some("wk_source_1"), &tracks(1));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "503 without Retry-After");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    cluster.restart(1);
    cluster.restart(2);
    // The client retries with the same messageIds until the log is back.
    send_acked(&mut c, &tracks(1), Duration::from_secs(60));
    let r = Resolver::start(&env);
    wait_landed(&env, 40, Duration::from_secs(60), &[&r]);
}
