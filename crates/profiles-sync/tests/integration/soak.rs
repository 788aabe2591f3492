//! Soak (issue 22): `serve` under a bounded, steady load for a while, with
//! syncs every 200 ms (each one refreshes the materialized tables), computed
//! traits re-evaluated every tick, and privacy requests and profile lookups
//! every few seconds. Every 5 s it prints the server's resident memory, its
//! open files, the inbox's segment files, and the p99 time from a probe
//! event's acknowledgement to its row being queryable.
//!
//! `scripts/soak MINUTES` runs it for that long (`PS_SOAK_SECS`); CI runs
//! 30 s. The warehouse is DuckDB, or PostgreSQL with
//! `PS_SOAK_WAREHOUSE=postgres`. What must hold: after the first third (warm-up: DuckDB's caches,
//! the allocator's arenas), memory and open files stay within a bound of
//! their level then — a leak of a connection, a file or a buffer per
//! request or per sync would cross it — and landed segments are deleted.
//! The bounds are generous because only "no growth with the load" is
//! checked, on a machine that may be busy with other work.
//!
//! Some state grows with the *data* by design: the dedupe keys (one per
//! distinct message id), the computed traits' facts (one per matching
//! event a profile ever had: `first_seen_at` matches every event), the
//! profiles. To tell that from a leak, `PS_SOAK_DISTINCT=N` cycles the
//! load's message ids over N (resent ids are duplicates: acknowledged,
//! stored, read and skipped by the sync, so every part of the path still
//! runs but the data stops growing), and `PS_SOAK_COMPUTE=0` runs without
//! computed traits. Each sample prints the distinct events sent so far,
//! and the end prints RSS growth per new distinct event after warm-up.

use crate::abuse::rss_kib;
use crate::serve::{admin_post, post, Serve, ADMIN};
use crate::util::{gen_config, repo_root, Backend, Env};
use ps_ingest::client::Client;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests per second of the steady load, and events per request.
const RATE: u64 = 20;
const PER_REQUEST: usize = 10;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn segments(env: &Env) -> usize {
    std::fs::read_dir(env.dir.path().join("data/inbox"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn p99(v: &mut [Duration]) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[(v.len() * 99).div_ceil(100) - 1]
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    sent: u64,
    distinct: u64,
    rss_kib: u64,
    fds: usize,
    segments: usize,
    p99: Duration,
}

#[test]
fn soak_keeps_memory_files_and_segments_flat() {
    let secs: u64 = std::env::var("PS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let defs = std::fs::read_to_string(repo_root().join("examples/computed-traits.toml"))
        .unwrap_or_else(|e| panic!("examples/computed-traits.toml: {e}"));
    // PS_SOAK_WAREHOUSE=postgres takes DuckDB out of the server's process,
    // to tell its buffer pool from the server's own memory.
    let backend = match std::env::var("PS_SOAK_WAREHOUSE").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("duckdb") | Err(_) => Backend::DuckDb,
        Ok(other) => panic!("PS_SOAK_WAREHOUSE={other:?}: duckdb or postgres"),
    };
    // Message ids cycle over this many (PS_SOAK_DISTINCT); a multiple of
    // the 500 users, so an id always names the same user and body.
    let distinct: u64 = std::env::var("PS_SOAK_DISTINCT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(u64::MAX, |n| n.div_ceil(500).max(1) * 500);
    let defs = if std::env::var("PS_SOAK_COMPUTE").as_deref() == Ok("0") {
        String::new()
    } else {
        defs
    };
    let env = Env::with_backend(&format!(
        "{}{defs}\n[server]\nsync_interval = \"200ms\"\nadmin_token = \"{ADMIN}\"\nsegment_bytes = \"256KiB\"\n",
        gen_config("duckdb://x.duckdb")
    ), backend);
    let srv = Serve::start(&env);
    let pid = srv.pid();
    let (space, write_key) = ("gen", "wk_source_1".to_owned());

    // The steady load: RATE requests a second, users cycling over 500.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, sent, mut c, key) =
            (stop.clone(), sent.clone(), srv.client(), write_key.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (0..PER_REQUEST as u64)
                    .map(|j| {
                        let i = (n * PER_REQUEST as u64 + j) % distinct;
                        let user = format!("soak-user-{}", i % 500);
                        if i.is_multiple_of(10) {
                            json!({"type": "identify", "userId": user, "messageId": format!("soak-{i}"),
                                   "traits": {"plan": if i.is_multiple_of(20) { "pro" } else { "free" }}})
                        } else {
                            json!({"type": "track", "userId": user, "event": "Order Completed",
                                   "messageId": format!("soak-{i}"), "properties": {"revenue": i % 100}})
                        }
                    })
                    .collect();
                let r = post(
                    &mut c,
                    "/v1/batch",
                    Some(&key),
                    &json!({ "batch": batch }).to_string(),
                );
                assert_eq!(r.status, 200, "{}", r.text());
                sent.fetch_add(PER_REQUEST as u64, Ordering::Relaxed);
                n += 1;
                // Paced from the start, so a slow answer is caught up on
                // rather than lowering the rate.
                let due = start + Duration::from_millis(n * 1000 / RATE);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };

    let mut c = srv.client();
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut probe = 0u64;
    let mut next_sample = Duration::from_secs(5);
    println!(
        "    t  rss_MiB  fds  segments  p99_event_to_queryable_ms  events_sent  distinct_events"
    );
    // Distinct message ids sent so far: the data's size.
    let distinct_sent = |sent: u64, probes: u64| sent.min(distinct) + probes;
    while started.elapsed() < Duration::from_secs(secs) {
        // A probe event: acknowledged, then polled until queryable.
        probe += 1;
        let id = format!("probe-{probe}");
        let r = post(
            &mut c,
            "/v1/track",
            Some(&write_key),
            &json!({"userId": "soak-probe", "event": "Probe", "messageId": id}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let acked = Instant::now();
        let sql = format!("SELECT count(*) FROM {space}.tracks WHERE id = '{id}'");
        loop {
            let (status, j) = admin_post(&mut c, ADMIN, &sql);
            if status == 200 && j["rows"][0][0] == 1 {
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(60),
                "probe {id} not queryable after 60 s: {j}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        latencies.push(acked.elapsed());
        // Privacy requests and lookups, a few every few seconds.
        if probe.is_multiple_of(5) {
            regulate(
                &mut c,
                "delete",
                &format!("user_id:soak-user-{}", probe % 500),
            );
            regulate(&mut c, "suppress", "user_id:soak-user-499");
            regulate(&mut c, "unsuppress", "user_id:soak-user-499");
            let auth = format!("Bearer {ADMIN}");
            let r = c
                .request(
                    "POST",
                    "/admin/profile",
                    &[("Authorization", &auth)],
                    json!({"id": "user_id:soak-user-1", "traits": true, "events": true})
                        .to_string()
                        .as_bytes(),
                )
                .unwrap();
            assert!(matches!(r.status, 200 | 404), "{}", r.text());
        }
        if started.elapsed() >= next_sample {
            let s = Sample {
                at: started.elapsed(),
                sent: sent.load(Ordering::Relaxed),
                distinct: distinct_sent(sent.load(Ordering::Relaxed), probe),
                rss_kib: rss_kib(pid),
                fds: open_fds(pid),
                segments: segments(&env),
                p99: p99(&mut latencies),
            };
            latencies.clear();
            println!(
                "{:>5.0}  {:>7.1}  {:>3}  {:>8}  {:>25}  {:>11}  {:>15}",
                s.at.as_secs_f64(),
                s.rss_kib as f64 / 1024.0,
                s.fds,
                s.segments,
                s.p99.as_millis(),
                s.sent,
                s.distinct
            );
            samples.push(s);
            next_sample += Duration::from_secs(5);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");

    assert!(samples.len() >= 3, "too few samples: {samples:?}");
    let warm = samples[samples.len() / 3];
    let last = samples.last().unwrap();
    let max_rss = samples[samples.len() / 3..]
        .iter()
        .map(|s| s.rss_kib)
        .max()
        .unwrap();
    let max_fds = samples[samples.len() / 3..]
        .iter()
        .map(|s| s.fds)
        .max()
        .unwrap();
    let max_segments = samples.iter().map(|s| s.segments).max().unwrap();
    println!(
        "soak {secs} s: {} events; RSS {:.1} -> {:.1} MiB (max {:.1}), fds {} -> {} (max {max_fds}), segments at most {max_segments}",
        sent.load(Ordering::Relaxed),
        warm.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        max_rss as f64 / 1024.0,
        warm.fds,
        last.fds
    );
    let new_data = last.distinct.saturating_sub(warm.distinct);
    let grown = last.rss_kib as f64 - warm.rss_kib as f64;
    println!(
        "after warm-up: RSS {:+.1} MiB for {new_data} new distinct events ({}), {} requests",
        grown / 1024.0,
        if new_data > 0 {
            format!("{:.0} bytes per event", grown * 1024.0 / new_data as f64)
        } else {
            "no new data".into()
        },
        (last.sent - warm.sent) / PER_REQUEST as u64
    );
    // A leak of one fd per request or sync would be thousands by now.
    assert!(max_fds <= warm.fds + 16, "open files grew: {samples:?}");
    // Landed segments are deleted: a handful at most are ever waiting.
    assert!(max_segments <= 8, "inbox segments pile up: {samples:?}");
    // A leak of a few KiB per request would be tens of MiB by the end.
    assert!(
        max_rss <= warm.rss_kib + 256 * 1024,
        "memory grew: {samples:?}"
    );
}

fn regulate(c: &mut Client, kind: &str, subject: &str) {
    let auth = format!("Bearer {ADMIN}");
    let r = c
        .request(
            "POST",
            "/admin/regulations",
            &[("Authorization", &auth)],
            json!({"type": kind, "subject": subject})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert!(matches!(r.status, 200 | 404), "{kind}: {}", r.text());
}
