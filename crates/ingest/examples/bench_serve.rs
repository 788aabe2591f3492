//! Benchmark of `serve`: accepted events/s through `/v1/batch` with
//! durability on, and the event→queryable delay at a steady rate.
//!
//! ```sh
//! cargo run --profile quick-release -p ps-ingest --example bench_serve -- [--events 300000] [--clients 8] \
//!     [--batch 100] [--rate 1000] [--seconds 20] [--realistic] [--dir DIR]
//! ```
//!
//! Phase 1 (throughput): `--clients` threads send the generated stream
//! (`ps-gen`, ~1 KB events, three sources) as `/v1/batch` bodies of
//! `--batch` events over kept-alive connections, as fast as the server
//! answers. Every 200 means the events were fsynced (group commit). Reports
//! accepted events/s, and how long the sync loop then took to land it all.
//!
//! Phase 2 (delay): a fresh server on the same warehouse; one client sends
//! `--rate` events/s (batches of 10 every 10 ms) for `--seconds`; with
//! `--realistic`, `--clients` threads send the generator's events (a new
//! seed) in bodies of `--batch` at that rate instead, so a rate of 50,000
//! asks the server to land what it accepts (issue 25). The server
//! measures each event's delay from receipt to committed (queryable) in 10 ms
//! buckets; a probe also times, once a second, one event from send until
//! `/admin/query` sees it — what a user polling the table observes.
//!
//! The server runs in this process (same code as `profiles-sync serve`); the
//! client threads share the machine's cores with it, so its figures are a
//! floor for a server with the machine to itself.

mod common;

use ps_ingest::client::Client;
use ps_ingest::{Options, Server, ServerConfig};
use ps_pipeline::SpaceConfig;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-admin-token";

/// Command line (see the module docs).
#[derive(clap::Parser)]
struct Args {
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long)]
    dir: Option<String>,
    /// Phase 2 sends the generator's events (another seed than phase 1's,
    /// so none is a duplicate) in bodies of `--batch` from `--clients`
    /// threads, instead of one client's small synthetic tracks: the delay
    /// of real-sized events at a rate the server must land, not only
    /// accept.
    #[arg(long)]
    realistic: bool,
}

fn options(dir: &std::path::Path) -> Options {
    let server = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.join("data"),
        max_inbox_bytes: 16 << 30,
        admin_token: Some(TOKEN.into()),
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
    Options {
        server,
        space,
        warehouse_url: format!("duckdb://{}", dir.join("wh.duckdb").display()),
        log: None,
    }
}

fn count_tracks(c: &mut Client, id: &str) -> u64 {
    let auth = format!("Bearer {TOKEN}");
    let sql = format!("SELECT count(*) FROM bench.tracks WHERE id = '{id}'");
    let r = c
        .request(
            "POST",
            "/admin/query",
            &[("Authorization", &auth)],
            sql.as_bytes(),
        )
        .expect("admin query");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["rows"][0][0].as_u64().unwrap_or(0)
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() as f64) * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

// The server runs with the allocator and the page settings of the
// `profiles-sync` binary (`crates/profiles-sync/src/main.rs`), so that its
// figures are the shipped server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    ps_pipeline::process::without_huge_pages();
    let a = <Args as clap::Parser>::parse();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = a
        .dir
        .as_ref()
        .map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);
    std::fs::create_dir_all(&dir).expect("dir");
    let auth = ps_ingest::client::basic_auth("wk_source_1");

    // Pre-build the request bodies, so the clients only send.
    eprintln!("generating {} events…", a.events);
    let (bodies, bytes) = common::batch_bodies(a.events, 42, a.batch);
    let bodies = Arc::new(bodies);

    // Phase 1: throughput.
    let server = Server::start(options(&dir)).expect("server starts");
    let addr = server.local_addr();
    let t0 = Instant::now();
    common::post_all(addr, bodies.clone(), &auth, a.clients);
    let accept = t0.elapsed();
    let shared = server.shared().clone();
    while shared.inbox_events.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let landed = t0.elapsed();
    let m = shared.metrics.render(0, 0);
    let metric = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let commits = metric("profiles_sync_inbox_group_commits_total ");
    let requests = metric("profiles_sync_inbox_group_requests_total ");
    server.shutdown();
    println!(
        "== phase 1: throughput ({} events, {:.0} MB of JSON, {} clients, batches of {})",
        a.events,
        bytes as f64 / 1e6,
        a.clients,
        a.batch
    );
    println!(
        "accepted (200 = fsynced):  {:>9.0} events/s  ({:.2} s)",
        a.events as f64 / accept.as_secs_f64(),
        accept.as_secs_f64()
    );
    println!(
        "landed in the warehouse:   {:>9.0} events/s  ({:.2} s from the first request)",
        a.events as f64 / landed.as_secs_f64(),
        landed.as_secs_f64()
    );
    println!("group commit:              {requests:.0} requests in {commits:.0} fsyncs ({:.1} per fsync)", requests / commits.max(1.0));

    if a.seconds == 0 {
        return;
    }
    // Phase 2: delay at a steady rate, on the warehouse phase 1 filled.
    let steady_events = a.seconds * a.rate;
    let steady = a.realistic.then(|| {
        eprintln!("generating {steady_events} events for phase 2…");
        Arc::new(common::batch_bodies(steady_events, 43, a.batch).0)
    });
    let server = Server::start(options(&dir)).expect("server restarts");
    let addr = server.local_addr();
    let per_tick = 10usize;
    let tick = Duration::from_nanos(1_000_000_000 * per_tick as u64 / a.rate.max(1));
    let ticks = a.seconds * a.rate / per_tick as u64;
    let sent_at = Instant::now();
    let sender = if let Some(bodies) = steady {
        let every = Duration::from_nanos(1_000_000_000 * a.batch as u64 / a.rate.max(1));
        let auth = auth.clone();
        std::thread::spawn(move || common::post_paced(addr, bodies, &auth, a.clients, every))
    } else {
        let auth = auth.clone();
        std::thread::spawn(move || {
            let mut c = Client::new(addr);
            let start = Instant::now();
            for k in 0..ticks {
                let due = start + tick * k as u32;
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
                let events: Vec<String> = (0..per_tick)
                    .map(|j| format!(r#"{{"type":"track","userId":"steady-{}","event":"Steady","messageId":"steady-{k}-{j}","properties":{{"k":{k}}}}}"#, j % 50))
                    .collect();
                let body = format!("{{\"batch\":[{}]}}", events.join(","));
                common::post_batch(&mut c, &auth, &body);
            }
        })
    };
    let mut probes = Vec::new();
    let mut c = Client::new(addr);
    let mut q = Client::new(addr);
    let t_end = Instant::now() + Duration::from_secs(a.seconds);
    let mut k = 0;
    while Instant::now() + Duration::from_secs(1) < t_end {
        let id = format!("probe-{k}");
        let body = format!(
            r#"{{"batch":[{{"type":"track","userId":"probe","event":"Probe","messageId":"{id}"}}]}}"#
        );
        let sent = Instant::now();
        common::post_batch(&mut c, &auth, &body);
        while count_tracks(&mut q, &id) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        probes.push(sent.elapsed());
        k += 1;
        if let Some(w) = (sent + Duration::from_secs(1)).checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
    }
    sender.join().expect("sender");
    let sending = sent_at.elapsed();
    while server.shared().inbox_events.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let landing = sent_at.elapsed();
    let d = server.shared().metrics.delay_summary();
    let m2 = server.shared().metrics.render(0, 0);
    let syncs: f64 = m2
        .lines()
        .find(|l| l.starts_with("profiles_sync_syncs_total{result=\"ok\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    server.shutdown();
    probes.sort();
    println!(
        "== phase 2: delay at {} events/s for {} s (sync_interval 1 s; {syncs:.0} syncs, {:.0} events each)",
        a.rate,
        a.seconds,
        d.count as f64 / syncs.max(1.0)
    );
    if a.realistic {
        let n = steady_events as f64;
        println!(
            "generated events, {} clients, batches of {}: sent at {:.0} events/s ({:.2} s), all landed at {:.0} events/s ({:.2} s)",
            a.clients,
            a.batch,
            n / sending.as_secs_f64(),
            sending.as_secs_f64(),
            n / landing.as_secs_f64(),
            landing.as_secs_f64()
        );
    }
    println!(
        "receipt → committed (server, every event, 10 ms buckets): p50 {:?}  p99 {:?}  max {:?}  mean {:?}  ({} events)",
        d.p50, d.p99, d.max, d.mean, d.count
    );
    println!(
        "send → visible to /admin/query (client probe, 1/s):       p50 {:?}  p99 {:?}  max {:?}  ({} probes)",
        pct(&probes, 0.5),
        pct(&probes, 0.99),
        probes.last().copied().unwrap_or_default(),
        probes.len()
    );
}
