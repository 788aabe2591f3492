//! Benchmark of the multi-node mode (issue 23): events/s accepted across
//! three `serve` nodes publishing to a 3-node NATS JetStream cluster and
//! landed in PostgreSQL by one `resolve`; and, with the same client and the
//! same PostgreSQL server, one `serve` with its local inbox, for comparison.
//!
//! ```sh
//! cargo build --profile quick-release -p profiles-sync --bin profiles-sync -p ps-ingest --example bench_cluster
//! target/quick-release/examples/bench_cluster [--events 200000] [--clients 8] [--batch 100] \
//!     [--mode both|single|cluster] [--resolve-after] [--pg URL] [--bin PATH] [--dir DIR]
//! ```
//!
//! Every process is the real binary (`--bin`; by default `profiles-sync` in
//! the directory above this example's, where cargo puts both), on
//! 127.0.0.1: three nats-server nodes (Debian's, installed by
//! `scripts/setup`), three `serve` nodes and one `resolve`. PostgreSQL is
//! `--pg` (a URL whose user may create databases: each phase gets a fresh
//! one, dropped at the end), else `PROFILES_SYNC_TEST_PG_URL`, else a
//! throwaway server started with `scripts/pg-test-cluster` and stopped at
//! the end.
//!
//! Each phase: `--clients` threads send the generated stream (`ps-gen`,
//! seed 42, three sources: the stream of `bench_serve`) as `/v1/batch`
//! bodies of `--batch` events, body i to node i mod 3 over kept-alive
//! connections, retrying a 503 with the same body. Reported: accepted
//! events/s (until the last 200: single-node, fsynced in the inbox;
//! multi-node, acknowledged by a majority of the stream's replicas); landed
//! events/s (from the first request until the warehouse's checkpoint
//! reaches the end of what was accepted: the inbox emptied, or `cp:log` at
//! the stream's last sequence), both over the events sent; request
//! latencies; each process's peak RSS (VmHWM) and CPU time; how busy the
//! machine's cores were.
//!
//! The resolver runs while the clients send, as serve's own sync loop does;
//! `--resolve-after` starts it only once everything was accepted, to
//! measure the publish path and the landing apart.
//!
//! Processes are stopped by their pid at the end of their phase, or when
//! this program panics (drop guards). Ctrl-C reaches them through the
//! terminal's process group; a PostgreSQL this program started is then
//! left running (its directory is printed: `scripts/pg-test-cluster stop
//! DIR`).

mod common;

use ps_ingest::client::Client;
use ps_spec::Value;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SPACE: &str = "bench";
/// The stream serve publishes to (`ps_log::jetstream::STREAM`).
const STREAM: &str = "PS_EVENTS";
/// How long landing may take before the benchmark gives up.
const LAND_LIMIT: Duration = Duration::from_secs(600);
/// `/proc` counts CPU time in USER_HZ ticks, 100 a second in Linux's ABI.
const TICKS: f64 = 100.0;

/// Command line (see the module docs).
#[derive(Debug, clap::Parser)]
struct Args {
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value = "both", value_parser = ["both", "single", "cluster"])]
    mode: String,
    #[arg(long)]
    resolve_after: bool,
    #[arg(long)]
    pg: Option<String>,
    #[arg(long)]
    bin: Option<PathBuf>,
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A process's peak resident memory and CPU time so far.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    peak_rss_kb: u64,
    cpu_s: f64,
}

/// Fields of `/proc/PID/stat` after the command name, from `state` on.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    // utime and stime are the stat file's fields 14 and 15.
    let cpu_s = stat_fields(pid).map_or(0.0, |f| (f[11] + f[12]) as f64 / TICKS);
    Usage { peak_rss_kb, cpu_s }
}

/// The machine's busy and total CPU ticks (`/proc/stat`), all cores.
fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// A child process of the benchmark, stopped by its pid when dropped.
struct Proc {
    name: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stderr = child.stderr.take().expect("piped");
        let log = Arc::new(Mutex::new(String::new()));
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = l2.lock().expect("not poisoned");
                l.push_str(&line);
                l.push('\n');
            }
        });
        Proc {
            name: name.into(),
            child,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().expect("not poisoned").clone()
    }

    /// The last lines it logged, for a failure's message.
    fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!(
            "---- {} (last lines):\n{}",
            self.name,
            lines[from..].join("\n")
        )
    }

    /// Waits until it logs a line containing `what`, and returns the line.
    fn wait_log(&mut self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self.log().lines().find(|l| l.contains(what)) {
                return l.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                panic!("{} exited ({status}):\n{}", self.name, self.tail());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log {what:?} within {limit:?}:\n{}",
                self.name,
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn usage(&self) -> Usage {
        usage(self.child.id())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Three nats-server nodes clustered on 127.0.0.1.
struct Nats {
    nodes: Vec<Proc>,
    client_ports: Vec<u16>,
    http_ports: Vec<u16>,
}

impl Nats {
    fn start(dir: &Path) -> Nats {
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, route, http)) in ports.iter().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("nats-route://127.0.0.1:{}", p.1))
                .collect();
            let conf = dir.join(format!("nats-n{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{http}\n\
                     jetstream {{ store_dir: \"{}\", max_file_store: 16GB, max_memory_store: 64MB }}\n\
                     cluster {{ name: ps, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                    dir.join(format!("nats-data-n{i}")).display(),
                    routes.join(", ")
                ),
            )
            .expect("write the nats config");
            // The wrapper of a linked build preloads libpython for our
            // binaries only.
            nodes.push(Proc::spawn(
                &format!("nats n{i}"),
                Command::new("nats-server")
                    .arg("-c")
                    .arg(&conf)
                    .env_remove("LD_PRELOAD"),
            ));
        }
        let nats = Nats {
            nodes,
            client_ports: ports.iter().map(|p| p.0).collect(),
            http_ports: ports.iter().map(|p| p.2).collect(),
        };
        for (i, port) in nats.http_ports.iter().enumerate() {
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !Client::new(addr)
                .with_timeout(Duration::from_secs(2))
                .request("GET", "/healthz", &[], b"")
                .is_ok_and(|r| r.status == 200)
            {
                assert!(
                    Instant::now() < deadline,
                    "nats node {i} not healthy:\n{}",
                    nats.nodes[i].tail()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        nats
    }

    fn url(&self) -> String {
        self.client_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The stream's last sequence, the highest any node reports (a
    /// follower may lag the leader).
    fn last_seq(&self) -> u64 {
        self.http_ports
            .iter()
            .filter_map(|port| {
                let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
                let r = Client::new(addr)
                    .with_timeout(Duration::from_secs(5))
                    .request("GET", "/jsz?accounts=true&streams=true", &[], b"")
                    .ok()?;
                let jsz: Json = serde_json::from_slice(&r.body).ok()?;
                jsz["account_details"]
                    .as_array()?
                    .iter()
                    .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
                    .find(|d| d["name"] == STREAM)?["state"]["last_seq"]
                    .as_u64()
            })
            .max()
            .expect("no nats node reports the event stream")
    }
}

/// The PostgreSQL server: given, or started here (and stopped on drop).
struct Pg {
    admin: String,
    owned: Option<(PathBuf, PathBuf)>,
}

impl Pg {
    fn get(given: Option<String>) -> Pg {
        if let Some(url) = given.or_else(|| std::env::var("PROFILES_SYNC_TEST_PG_URL").ok()) {
            return Pg {
                admin: url,
                owned: None,
            };
        }
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-cluster");
        // Not under this program's temp dir: the server runs as the
        // `postgres` user, which may not enter it.
        let dir = std::env::temp_dir().join(format!("bench-cluster-pg-{}", std::process::id()));
        eprintln!("starting PostgreSQL in {}…", dir.display());
        let out = Command::new(&script)
            .arg("start")
            .arg(&dir)
            .env_remove("LD_PRELOAD")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} start failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Pg {
            admin: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            owned: Some((script, dir)),
        }
    }

    /// A fresh database named `name`, and its URL.
    fn fresh(&self, name: &str) -> String {
        let mut wh = ps_warehouse::open(&self.admin).expect("connect to PostgreSQL");
        wh.execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .expect("drop database");
        wh.execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let base = self.admin.rsplit_once('/').expect("URL with a database").0;
        format!("{base}/{name}")
    }

    fn drop_db(&self, name: &str) {
        if let Ok(mut wh) = ps_warehouse::open(&self.admin) {
            let _ = wh.execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }

    /// The server's CPU time so far, when this program started it: the
    /// postmaster's, its reaped children's, and its live children's.
    fn cpu_s(&self) -> Option<f64> {
        let (_, dir) = self.owned.as_ref()?;
        let pid: u32 = std::fs::read_to_string(dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()?;
        let me = stat_fields(pid)?;
        let mut ticks = me[11] + me[12] + me[13] + me[14];
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(f) = stat_fields(p).filter(|f| f.get(1) == Some(&u64::from(pid))) {
                ticks += f[11] + f[12];
            }
        }
        Some(ticks as f64 / TICKS)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some((script, dir)) = &self.owned {
            let _ = Command::new(script)
                .arg("stop")
                .arg(dir)
                .env_remove("LD_PRELOAD")
                .status();
        }
    }
}

/// The config of one phase: the generated stream's sources, `url`'s
/// warehouse, and `[log]` on `log` in the multi-node phase.
fn config(dir: &Path, name: &str, url: &str, log: Option<&str>) -> PathBuf {
    let mut s = format!("space = \"{SPACE}\"\n[warehouse]\nurl = {url:?}\n");
    for (id, name, slug, key) in ps_gen::sources(3) {
        s.push_str(&format!(
            "[[sources]]\nid = {id:?}\nname = {name:?}\nslug = {slug:?}\nwrite_key = {key:?}\n"
        ));
    }
    // As bench_serve: the inbox may hold the whole run.
    s.push_str("[server]\nmax_inbox_bytes = \"16GB\"\n");
    if let Some(log) = log {
        s.push_str(&format!("[log]\nurl = {log:?}\n"));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, s).expect("write the config");
    path
}

/// Starts `serve` with `config` on a free port; its process and address.
fn serve(bin: &Path, config: &Path, data: &Path, name: &str) -> (Proc, SocketAddr) {
    let mut p = Proc::spawn(
        name,
        Command::new(bin)
            .arg("--config")
            .arg(config)
            .args(["--log", "info,async_nats=warn", "serve"])
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data),
    );
    let line = p.wait_log("listening on http://", Duration::from_secs(120));
    let addr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("serve prints its address");
    (p, addr)
}

fn resolver(bin: &Path, config: &Path) -> Proc {
    Proc::spawn(
        "resolve",
        Command::new(bin).arg("--config").arg(config).args([
            "--log",
            "info,async_nats=warn",
            "resolve",
        ]),
    )
}

/// The warehouse's checkpoint `cp:KEY` of the space, if committed, read
/// over `conn` (opened on first use, again after an error): PostgreSQL
/// forks a process per connection, which polling must not add.
fn checkpoint(
    conn: &mut Option<Box<dyn ps_warehouse::Warehouse>>,
    url: &str,
    key: &str,
) -> Option<u64> {
    if conn.is_none() {
        *conn = ps_warehouse::open(url).ok();
    }
    let wh = conn.as_mut()?;
    let table = wh.dialect().table(SPACE, "_ps_meta");
    // Before the first commit the table does not exist yet.
    let Ok(rows) = wh.query(&format!("SELECT value FROM {table} WHERE key = 'cp:{key}'")) else {
        *conn = None;
        return None;
    };
    match rows.first().and_then(|r| r.first()) {
        Some(Value::Str(s)) => s.parse().ok(),
        _ => None,
    }
}

/// Events landed in the space's event tables (one row per event each).
fn rows_landed(url: &str) -> u64 {
    let mut wh = ps_warehouse::open(url).expect("connect to the warehouse");
    let mut n = 0;
    for t in ps_warehouse::contract::CALL_TABLES {
        let table = wh.dialect().table(SPACE, t);
        if let Ok(rows) = wh.query(&format!("SELECT count(*) FROM {table}")) {
            if let Some(Value::Int(c)) = rows.first().and_then(|r| r.first()) {
                n += *c as u64;
            }
        }
    }
    n
}

/// serve's `profiles_sync_inbox_events` gauge: events not yet landed.
fn inbox_events(addr: SocketAddr) -> u64 {
    let r = Client::new(addr)
        .request("GET", "/metrics", &[], b"")
        .expect("GET /metrics");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix("profiles_sync_inbox_events "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("serve reports profiles_sync_inbox_events") as u64
}

/// Polls `done` every 100 ms until it holds; past [`LAND_LIMIT`] fails
/// with `procs`' last log lines.
fn wait_landed(procs: &[&Proc], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LAND_LIMIT;
    while !done() {
        if Instant::now() > deadline {
            let logs: Vec<String> = procs.iter().map(|p| p.tail()).collect();
            panic!("not landed within {LAND_LIMIT:?}:\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU counters at one moment of a phase: the machine's, this process's
/// (the clients), PostgreSQL's when this program started it, and each
/// child's by name.
struct Snap {
    machine: (u64, u64),
    me: f64,
    pg: Option<f64>,
    procs: HashMap<String, f64>,
}

impl Snap {
    fn now(pg: &Pg, procs: &[&Proc]) -> Snap {
        Snap {
            machine: machine_ticks(),
            me: usage(std::process::id()).cpu_s,
            pg: pg.cpu_s(),
            procs: procs
                .iter()
                .map(|p| (p.name.clone(), p.usage().cpu_s))
                .collect(),
        }
    }

    /// Cores busy on average from `self` to `later`.
    fn busy_cores(&self, later: &Snap) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let (busy0, total0) = self.machine;
        let (busy1, total1) = later.machine;
        cores * busy1.saturating_sub(busy0) as f64 / total1.saturating_sub(total0).max(1) as f64
    }

    /// CPU seconds the machine was busy from `self` to `later`.
    fn busy_s(&self, later: &Snap) -> f64 {
        later.machine.0.saturating_sub(self.machine.0) as f64 / TICKS
    }

    /// CPU seconds of this benchmark's processes from `self` to `later`.
    fn ours(&self, later: &Snap) -> f64 {
        let children: f64 = later.procs.keys().map(|n| self.cpu(later, n)).sum();
        let pg = later.pg.zip(self.pg).map_or(0.0, |(b, a)| b - a);
        children + pg + later.me - self.me
    }

    /// `name`'s CPU seconds from `self` to `later` (a process started in
    /// between counts from 0).
    fn cpu(&self, later: &Snap, name: &str) -> f64 {
        later.procs.get(name).copied().unwrap_or(0.0) - self.procs.get(name).copied().unwrap_or(0.0)
    }
}

/// What a phase measured. CPU is split in two windows: from the first
/// request to the last 200 (accepting), and from then until landed.
struct Report {
    name: &'static str,
    accepted: Duration,
    /// From the first request, or from the resolver's start with
    /// `--resolve-after`.
    landed: Duration,
    /// With `--resolve-after`: from the resolver's start until it logged
    /// that it reads the log (lease, fencing commit, space opened).
    resolver_ready: Option<Duration>,
    posted: common::Posted,
    /// Each process's name and peak RSS, in start order.
    procs: Vec<(String, u64)>,
    snaps: [Snap; 3],
    rows: u64,
}

impl Report {
    fn print(&self, events: u64, distinct: u64) {
        let pct = |q: f64| {
            let l = &self.posted.latencies;
            if l.is_empty() {
                return Duration::ZERO;
            }
            l[(((l.len() as f64) * q).ceil() as usize).clamp(1, l.len()) - 1]
        };
        println!("== {}", self.name);
        println!(
            "accepted:  {:>8.0} events/s  ({:.2} s; {} requests, {} retried; latency p50 {:.1} ms, p99 {:.1} ms)",
            events as f64 / self.accepted.as_secs_f64(),
            self.accepted.as_secs_f64(),
            self.posted.latencies.len(),
            self.posted.retries,
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        );
        println!(
            "landed:    {:>8.0} events/s  ({:.2} s from {}; {} event rows, {} distinct messageIds sent)",
            events as f64 / self.landed.as_secs_f64(),
            self.landed.as_secs_f64(),
            match self.resolver_ready {
                Some(r) => format!(
                    "the resolver's start, {:.2} s of it until it was reading the log",
                    r.as_secs_f64()
                ),
                None => "the first request".into(),
            },
            self.rows,
            distinct
        );
        let [s0, s1, s2] = &self.snaps;
        println!(
            "{:<16} {:>9} {:>15} {:>15}",
            "", "peak RSS", "CPU s accepting", "CPU s after"
        );
        println!(
            "{:<16} {:>9} {:>15.2} {:>15.2}",
            "machine (cores)",
            "",
            s0.busy_cores(s1),
            s1.busy_cores(s2)
        );
        for (name, rss_kb) in &self.procs {
            println!(
                "{:<16} {:>6} MB {:>15.2} {:>15.2}",
                name,
                rss_kb / 1024,
                s0.cpu(s1, name),
                s1.cpu(s2, name)
            );
        }
        println!(
            "{:<16} {:>9} {:>15.2} {:>15.2}",
            "clients (here)",
            "",
            s1.me - s0.me,
            s2.me - s1.me
        );
        if let (Some(a), Some(b), Some(c)) = (s0.pg, s1.pg, s2.pg) {
            println!(
                "{:<16} {:>9} {:>15.2} {:>15.2}",
                "postgres",
                "",
                b - a,
                c - b
            );
        }
        // What the machine did besides the processes above: kernel threads,
        // time the hypervisor stole, and load that is not this benchmark's
        // (the figures are then not of an idle machine).
        println!(
            "{:<16} {:>9} {:>15.2} {:>15.2}",
            "the rest",
            "",
            s0.busy_s(s1) - s0.ours(s1),
            s1.busy_s(s2) - s1.ours(s2)
        );
    }
}

fn single(a: &Args, bin: &Path, dir: &Path, pg: &Pg, bodies: &Arc<Vec<String>>) -> Report {
    let db = format!("bench_single_{}", std::process::id());
    let url = pg.fresh(&db);
    let conf = config(dir, "single", &url, None);
    let (s, addr) = serve(bin, &conf, &dir.join("single-data"), "serve");
    let auth = ps_ingest::client::basic_auth("wk_source_1");
    let s0 = Snap::now(pg, &[&s]);
    let t0 = Instant::now();
    let posted = common::post_spread(&[addr], bodies.clone(), &auth, a.clients);
    let accepted = t0.elapsed();
    let s1 = Snap::now(pg, &[&s]);
    wait_landed(&[&s], || inbox_events(addr) == 0);
    let landed = t0.elapsed();
    let s2 = Snap::now(pg, &[&s]);
    let report = Report {
        name: "single node: serve (local inbox) → PostgreSQL",
        accepted,
        landed,
        resolver_ready: None,
        posted,
        procs: vec![(s.name.clone(), s.usage().peak_rss_kb)],
        snaps: [s0, s1, s2],
        rows: rows_landed(&url),
    };
    drop(s);
    pg.drop_db(&db);
    report
}

fn cluster(a: &Args, bin: &Path, dir: &Path, pg: &Pg, bodies: &Arc<Vec<String>>) -> Report {
    let nats = Nats::start(dir);
    let db = format!("bench_cluster_{}", std::process::id());
    let url = pg.fresh(&db);
    let conf = config(dir, "cluster", &url, Some(&nats.url()));
    let mut serves = Vec::new();
    for i in 1..=3 {
        serves.push(serve(
            bin,
            &conf,
            &dir.join(format!("serve{i}-data")),
            &format!("serve {i}"),
        ));
    }
    let addrs: Vec<SocketAddr> = serves.iter().map(|s| s.1).collect();
    let mut res = None;
    if !a.resolve_after {
        let mut r = resolver(bin, &conf);
        r.wait_log("resolving from the log", Duration::from_secs(60));
        res = Some(r);
    }
    let auth = ps_ingest::client::basic_auth("wk_source_1");
    let s0 = Snap::now(pg, &all(&serves, &res, &nats));
    let t0 = Instant::now();
    let posted = common::post_spread(&addrs, bodies.clone(), &auth, a.clients);
    let accepted = t0.elapsed();
    let s1 = Snap::now(pg, &all(&serves, &res, &nats));
    let last = nats.last_seq();
    let t_land = if a.resolve_after { Instant::now() } else { t0 };
    if res.is_none() {
        res = Some(resolver(bin, &conf));
    }
    let mut conn = None;
    let mut ready = None;
    wait_landed(&all(&serves, &res, &nats), || {
        if ready.is_none()
            && res
                .as_ref()
                .is_some_and(|r| r.log().contains("resolving from the log"))
        {
            ready = Some(t_land.elapsed());
        }
        checkpoint(&mut conn, &url, "log").is_some_and(|p| p >= last)
    });
    let landed = t_land.elapsed();
    let s2 = Snap::now(pg, &all(&serves, &res, &nats));
    let report = Report {
        name: "multi-node: 3 × serve → NATS JetStream (3 nodes, R3) → 1 × resolve → PostgreSQL",
        accepted,
        landed,
        resolver_ready: ready.filter(|_| a.resolve_after),
        posted,
        procs: all(&serves, &res, &nats)
            .iter()
            .map(|p| (p.name.clone(), p.usage().peak_rss_kb))
            .collect(),
        snaps: [s0, s1, s2],
        rows: rows_landed(&url),
    };
    // Clients of the log first, then the log.
    drop(conn);
    drop(res);
    drop(serves);
    drop(nats);
    pg.drop_db(&db);
    report
}

/// Every process of the multi-node phase, in start order.
fn all<'a>(
    serves: &'a [(Proc, SocketAddr)],
    res: &'a Option<Proc>,
    nats: &'a Nats,
) -> Vec<&'a Proc> {
    let mut v: Vec<&Proc> = serves.iter().map(|s| &s.0).collect();
    v.extend(res.iter());
    v.extend(nats.nodes.iter());
    v
}

/// Distinct messageIds among the bodies' events (the stream has
/// duplicates, which land once).
fn distinct_ids(bodies: &[String]) -> u64 {
    let mut ids = std::collections::HashSet::new();
    for b in bodies {
        let v: Json = serde_json::from_str(b).expect("a batch body");
        for e in v["batch"].as_array().into_iter().flatten() {
            if let Some(id) = e["messageId"].as_str() {
                ids.insert(id.to_owned());
            }
        }
    }
    ids.len() as u64
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    let bin = a.bin.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().expect("own path");
        me.parent()
            .and_then(Path::parent)
            .expect("the example's directory has a parent")
            .join("profiles-sync")
    });
    assert!(
        bin.is_file(),
        "{} not found: build it with the example (cargo build -p profiles-sync --bin profiles-sync \
         -p ps-ingest --example bench_cluster) or pass --bin PATH",
        bin.display()
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    // A directory of this run's own under `--dir`: an earlier run's inbox
    // or stream there would be read again.
    let dir = a.dir.as_ref().map_or_else(
        || tmp.path().to_owned(),
        |d| d.join(format!("run-{}", std::process::id())),
    );
    std::fs::create_dir_all(&dir).expect("dir");
    let pg = Pg::get(a.pg.clone());

    eprintln!("generating {} events…", a.events);
    let (bodies, bytes) = common::batch_bodies(a.events, 42, a.batch);
    let distinct = distinct_ids(&bodies);
    let bodies = Arc::new(bodies);
    println!(
        "{} events ({:.0} MB of JSON, {distinct} distinct messageIds), {} clients, batches of {}; binary {}",
        a.events,
        bytes as f64 / 1e6,
        a.clients,
        a.batch,
        bin.display()
    );
    if a.mode != "cluster" {
        single(&a, &bin, &dir, &pg, &bodies).print(a.events, distinct);
    }
    if a.mode != "single" {
        cluster(&a, &bin, &dir, &pg, &bodies).print(a.events, distinct);
    }
}
