//! The warehouse down while `serve` ingests (issue 22): PostgreSQL stopped
//! while clients keep sending. Every request is still acknowledged (the
//! inbox holds the events), `/health` and the metrics say the warehouse is
//! failing, the sync retries with backoff, and once PostgreSQL is back every
//! acknowledged event lands exactly once.
//!
//! The outage lasts 3 s by default; `PS_OUTAGE_SECS=30` gives the issue's
//! long form.

use crate::pg_fault::Cluster;
use crate::serve::{admin_post, post, Serve, ADMIN};
use crate::util::{golden_dir, Env};
use ps_ingest::client::Client;
use serde_json::{json, Value as Json};
use std::time::{Duration, Instant};

const PER_REQUEST: usize = 20;

fn send(c: &mut Client, request: usize) {
    let batch: Vec<Json> = (0..PER_REQUEST)
        .map(|j| {
            json!({
                "type": "track",
                "event": "Order Completed",
                "userId": format!("user-{}", (request * PER_REQUEST + j) % 13),
                "messageId": format!("outage-{request}-{j}"),
                "timestamp": "2024-05-01T12:00:00.000Z",
                "properties": { "revenue": j },
            })
        })
        .collect();
    let r = post(
        c,
        "/v1/batch",
        Some("wk_source_1"),
        &json!({ "batch": batch }).to_string(),
    );
    assert_eq!(
        r.status,
        200,
        "request {request} not acknowledged: {}",
        r.text()
    );
}

/// Polls until `check` holds, or fails naming `what`.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Tracks landed in the case-study space (every one once), or `None` while
/// the warehouse cannot answer.
pub(crate) fn landed(c: &mut Client) -> Option<i64> {
    let (status, j) = admin_post(
        c,
        ADMIN,
        "SELECT count(*), count(DISTINCT id) FROM case_study.tracks",
    );
    if status != 200 {
        return None;
    }
    let (n, distinct) = (j["rows"][0][0].as_i64()?, j["rows"][0][1].as_i64()?);
    assert_eq!(n, distinct, "an event landed twice");
    Some(n)
}

/// Waits up to `limit` until exactly `want` tracks landed, each once.
pub(crate) fn wait_landed(c: &mut Client, want: i64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while landed(c) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "acknowledged events did not all land: {:?} of {want}",
            landed(c)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn health(c: &mut Client) -> (u16, Json) {
    let r = c.request("GET", "/health", &[], b"").unwrap();
    (r.status, r.json())
}

#[test]
fn postgres_outage_while_serving_acknowledges_and_lands_everything_once() {
    let outage = Duration::from_secs(
        std::env::var("PS_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    let cluster = Cluster::start();
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let env = Env::with_url(
        &format!("{base}\n[server]\nsync_interval = \"100ms\"\nadmin_token = \"{ADMIN}\"\n"),
        &cluster.url,
    );
    let srv = Serve::start(&env);
    let mut c = srv.client();

    for i in 0..5 {
        send(&mut c, i);
    }
    wait_until("the first events land", Duration::from_secs(30), || {
        landed(&mut c) == Some(5 * PER_REQUEST as i64)
    });

    cluster.script("pause");
    let down = Instant::now();
    let mut sent = 5;
    // Requests during the outage are acknowledged: they wait in the inbox.
    while down.elapsed() < outage {
        send(&mut c, sent);
        sent += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, h) = health(&mut c);
    assert_eq!(
        status, 200,
        "still accepting while the warehouse is down: {h}"
    );
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(
        h["sync_error"].is_string(),
        "/health names the failure: {h}"
    );
    assert!(h["inbox_events"].as_u64().unwrap() > 0, "{h}");
    let metrics = c.request("GET", "/metrics", &[], b"").unwrap().text();
    let failed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("profiles_sync_syncs_total{result=\"failed\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(failed >= 1.0, "the failed syncs are counted:\n{metrics}");
    let (_, answer) = admin_post(&mut c, ADMIN, "SELECT 1");
    assert!(
        !answer.to_string().contains("user-"),
        "an error shows no identifier: {answer}"
    );

    cluster.script("resume");
    // The backoff is at most 30 s, so everything lands within that and a
    // sync interval or so of the restart.
    let want = (sent * PER_REQUEST) as i64;
    wait_until(
        "every acknowledged event lands once",
        Duration::from_secs(90),
        || landed(&mut c) == Some(want),
    );
    wait_until("/health is ok again", Duration::from_secs(30), || {
        health(&mut c).1["status"] == "ok"
    });
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("sync failed"), "the outage was logged:\n{log}");
    for leaked in ["user-1", "outage-"] {
        assert!(
            !log.contains(leaked),
            "the log carries an identifier ({leaked}):\n{log}"
        );
    }
}
