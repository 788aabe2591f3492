//! Benchmark of the Profile API: `/traits` latency (p50, p99, max) on a
//! space built from a generated stream, while `serve` ingests a steady rate.
//!
//! ```sh
//! cargo run --profile quick-release -p ps-ingest --example bench_profile_api -- \
//!     [--events 3000000 | --users 1000000] [--rate 1000] [--requests 5000] \
//!     [--dir DIR] [--warehouse postgres://…]
//! ```
//!
//! Phase 1 builds the space: the generated stream (`ps-gen`, seed 42) sent
//! as `/v1/batch` bodies by 4 clients, then waits until it has landed (with
//! `--dir` pointing at a space built before, pass `--events 0` to reuse it).
//! `--users N` sends N users instead, each an identify (user id, anonymous
//! id, email and five traits) and a track: N profiles from 2N events, where
//! the generator's realistic stream needs about 20 events a profile. The
//! warehouse is a DuckDB file in the directory unless `--warehouse` names
//! another (a PostgreSQL URL; its schema `bench` is the space's).
//! Phase 2: one thread sends `--rate` events/s (batches of 10, evenly
//! spaced, from another seed) while the main thread asks `/traits` of identifiers
//! sampled from `external_id_mapping`, one request after the other, and
//! times each answer at the client. The server runs in this process (same
//! code as `profiles-sync serve`) and shares the machine with the clients.

mod common;

use ps_ingest::client::Client;
use ps_ingest::{Options, ProfileApiConfig, Server, ServerConfig};
use ps_pipeline::SpaceConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN: &str = "bench-admin-token";
const TOKEN: &str = "bench-profile-token";

/// The value after `name` on the command line.
fn text(name: &str) -> Option<String> {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

fn arg(name: &str, default: u64) -> u64 {
    text(name).map_or(default, |v| v.parse().expect("a number"))
}

fn admin(c: &mut Client, sql: &str) -> serde_json::Value {
    let auth = format!("Bearer {ADMIN}");
    let r = c
        .request(
            "POST",
            "/admin/query",
            &[("Authorization", &auth)],
            sql.as_bytes(),
        )
        .expect("admin query");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// `users` users as `/v1/batch` bodies of 500 users (1,000 events) each.
fn user_bodies(users: u64) -> Vec<String> {
    let plans = ["free", "team", "business", "enterprise"];
    let mut bodies = Vec::new();
    let mut cur = Vec::with_capacity(1000);
    for i in 0..users {
        let (day, ms) = (1 + i % 28, i % 86_400_000);
        let ts = format!(
            "2024-03-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        );
        cur.push(
            serde_json::json!({
                "type": "identify", "userId": format!("u{i}"), "anonymousId": format!("a{i}"),
                "messageId": format!("bench-id-{i}"), "timestamp": ts,
                "traits": {
                    "email": format!("user{i}@example.com"), "name": format!("User {i}"),
                    "plan": plans[(i % 4) as usize], "seats": i % 50, "company": format!("Company {}", i % 9973),
                    "country": if i % 3 == 0 { "US" } else { "DE" },
                },
            })
            .to_string(),
        );
        cur.push(
            serde_json::json!({
                "type": "track", "event": "Signed Up", "userId": format!("u{i}"),
                "messageId": format!("bench-tr-{i}"), "timestamp": ts,
                "properties": { "plan": plans[(i % 4) as usize] },
            })
            .to_string(),
        );
        if cur.len() == 1000 {
            bodies.push(format!("{{\"batch\":[{}]}}", cur.join(",")));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        bodies.push(format!("{{\"batch\":[{}]}}", cur.join(",")));
    }
    bodies
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    sorted[(((sorted.len() as f64) * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let (events, rate, requests) = (
        arg("--events", 3_000_000),
        arg("--rate", 1000),
        arg("--requests", 5000),
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = text("--dir").map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);
    std::fs::create_dir_all(&dir).expect("dir");
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.join("data"),
        max_inbox_bytes: 16 << 30,
        admin_token: Some(ADMIN.into()),
        profile_api: ProfileApiConfig {
            tokens: vec![TOKEN.into()],
            rate_limit: 1_000_000,
            ..ProfileApiConfig::default()
        },
        ..ServerConfig::default()
    };
    let space = SpaceConfig {
        space: "bench".into(),
        sources: ps_gen::sources(3)
            .into_iter()
            .map(ps_pipeline::Source::from)
            .collect(),
        identity: ps_identity::IdentityConfig::default(),
        compute: None,
    };
    let srv = Server::start(Options {
        server,
        space,
        warehouse_url: text("--warehouse")
            .unwrap_or_else(|| format!("duckdb://{}", dir.join("wh.duckdb").display())),
        log: None,
    })
    .expect("server starts");
    let addr = srv.local_addr();
    let write = ps_ingest::client::basic_auth("wk_source_1");

    let users = arg("--users", 0);
    assert!(
        users == 0 || text("--events").is_none(),
        "--users and --events: choose one"
    );
    let events = if users > 0 { 0 } else { events };
    if events > 0 || users > 0 {
        let bodies = if users > 0 {
            eprintln!("phase 1: building the space from {users} users…");
            Arc::new(user_bodies(users))
        } else {
            eprintln!("phase 1: building the space from {events} events…");
            Arc::new(common::batch_bodies(events, 42, 500).0)
        };
        let t0 = Instant::now();
        common::post_all(addr, bodies, &write, 4);
        while srv.shared().inbox_events.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("  landed in {:.1?}", t0.elapsed());
    }
    let mut c = Client::new(addr).with_timeout(Duration::from_secs(60));
    let profiles = admin(
        &mut c,
        "SELECT count(*) FROM bench.profile_traits WHERE merged_to IS NULL",
    )["rows"][0][0]
        .clone();
    let ids: Vec<(String, String)> = admin(
        &mut c,
        "SELECT external_id_type, external_id_value FROM bench.external_id_mapping ORDER BY external_id_hash LIMIT 2000",
    )["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r[0].as_str().unwrap_or("").to_owned(), r[1].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(!ids.is_empty(), "the space has no identifiers");

    eprintln!("phase 2: /traits while ingesting {rate} events/s…");
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, write) = (stop.clone(), write.clone());
        let bodies = common::batch_bodies(rate * 600, 7, 10).0;
        std::thread::spawn(move || {
            let mut c = Client::new(addr);
            let every = Duration::from_secs_f64(10.0 / rate as f64);
            let start = Instant::now();
            for (i, b) in bodies.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let due = start + every * i as u32;
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
                common::post_batch(&mut c, &write, b);
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let auth = ps_ingest::client::basic_auth(TOKEN);
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut times = Vec::with_capacity(requests as usize);
    for i in 0..requests as usize {
        let (t, v) = &ids[i % ids.len()];
        let path = format!(
            "/v1/spaces/bench/collections/users/profiles/{}:{}/traits",
            enc(t),
            enc(v)
        );
        let t0 = Instant::now();
        let r = c
            .request("GET", &path, &[("Authorization", &auth)], b"")
            .expect("request");
        times.push(t0.elapsed());
        assert!(
            r.status == 200 || r.status == 404,
            "{path}: {} {}",
            r.status,
            r.text()
        );
    }
    stop.store(true, Ordering::Relaxed);
    feeder.join().expect("feeder");
    times.sort();
    println!(
        "profiles {profiles}, /traits x{requests} while ingesting {rate} events/s: p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        pct(&times, 0.5),
        pct(&times, 0.99),
        times[times.len() - 1]
    );
    srv.shutdown();
}
