//! The chaos run of issue 23: every fault of the multi-node mode in one run,
//! under a client load. Three nats-server nodes, PostgreSQL, three `serve`
//! nodes and three `resolve` processes, all on 127.0.0.1, every process
//! stopped by its pid (on a panic too: the helpers' drop guards).
//!
//! Two client threads post generated events (tracks, pages, identifies,
//! aliases…: profiles merge) in `/v1/batch` bodies to random serve nodes,
//! and retry a request that got anything but a 200 (a 503, a connection
//! refused or cut) with the same body, so the same messageIds, until it is
//! acknowledged. Meanwhile, in this order:
//!
//! 1. `kill -9` of a serve node (the clients go to the other two);
//! 2. `kill -9` of the nats node leading the event stream (an election);
//! 3. `kill -9` of the active resolver (the lease holder): the failover
//!    time, from the kill to the next commit by another resolver, is
//!    printed;
//! 4. SIGSTOP of the resolver that took over while it is inside a commit
//!    (holding the space's fence lock), until the third one has taken the
//!    lease (past the TTL) and committed; then SIGCONT.
//!
//! What must hold: every acknowledged messageId landed exactly once; the
//! space's tables (events, identity graph, traits, engine state, dedupe
//! keys) equal a single-node `sync` of the log's events in the log's
//! order; no stretch of the log was committed twice (each commit's logged
//! range of stream sequences; the dedupe dropped only what the log holds
//! twice) and the last checkpoint is the log's end; the third resolver
//! ended the paused one's warehouse session instead of waiting on its
//! locks; the paused resolver, once continued, logged that it stepped down
//! and committed nothing more.
//!
//! Needs nats-server (`scripts/setup`) and `PROFILES_SYNC_TEST_PG_URL`:
//! without either it fails, never skips.

use crate::multi_node::{events_without_sent_at, log_env, wait_until, Resolver, LEASE_TTL};
use crate::nats::{signal, NatsCluster};
use crate::serve::{basic, Lcg, Serve};
use crate::util::{gen_config, generated, pg_fresh_database, wait_dump_equal, Env};
use ps_ingest::client::Client;
use ps_warehouse::contract::CALL_TABLES;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events posted (`profiles-sync gen`, with duplicates and merges).
const EVENTS: u64 = 24_000;
/// Events per request.
const BATCH: usize = 100;
/// Client threads.
const CLIENTS: u64 = 2;
/// How long the load lasts at least: requests are spread over it, so that
/// every fault happens while the clients are still posting (unpaced, they
/// post the whole load in about 10 s).
const LOAD_FOR: Duration = Duration::from_secs(45);
/// The longest one request may take to be acknowledged, retries included.
const REQUEST_DEADLINE: Duration = Duration::from_secs(60);

/// The client load: the request bodies, which serve nodes are up, and how
/// far the clients got.
struct Load {
    bodies: Vec<String>,
    started: Instant,
    nodes: Vec<SocketAddr>,
    up: Vec<AtomicBool>,
    next: AtomicUsize,
    acked: Vec<AtomicBool>,
    acked_count: AtomicUsize,
    retries: AtomicUsize,
    /// Set when the test ends (or fails): the clients stop.
    halt: AtomicBool,
}

impl Load {
    fn acked(&self) -> usize {
        self.acked_count.load(SeqCst)
    }

    /// Waits until `fraction` of the requests were acknowledged.
    fn wait_acked(&self, fraction: f64) {
        let want = (self.bodies.len() as f64 * fraction) as usize;
        wait_until(
            &format!("{want} requests acknowledged"),
            Duration::from_secs(90),
            || self.acked() >= want,
        );
    }

    /// One client thread: takes the next request, posts it to a random
    /// serve node that is up, and retries with the same body on any other
    /// answer than 200 or a connection error.
    fn client(&self, seed: u64) {
        let mut rng = Lcg(seed);
        let mut conns: Vec<Client> = self
            .nodes
            .iter()
            .map(|a| Client::new(*a).with_timeout(Duration::from_secs(15)))
            .collect();
        let auth = basic("wk_source_1");
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", auth.as_str()),
        ];
        loop {
            let i = self.next.fetch_add(1, SeqCst);
            let Some(body) = self.bodies.get(i) else {
                return;
            };
            if self.halt.load(SeqCst) {
                return;
            }
            // Request i is not sent before its share of the load's time.
            let due = self.started + LOAD_FOR.mul_f64(i as f64 / self.bodies.len() as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let deadline = Instant::now() + REQUEST_DEADLINE;
            loop {
                let up: Vec<usize> = (0..self.nodes.len())
                    .filter(|k| self.up[*k].load(SeqCst))
                    .collect();
                let k = up[rng.next(up.len() as u64) as usize];
                let why = match conns[k].request("POST", "/v1/batch", &headers, body.as_bytes()) {
                    Ok(r) if r.status == 200 => break,
                    Ok(r) => format!("{} {}", r.status, r.text()),
                    Err(e) => format!("node {k}: {e}"),
                };
                self.retries.fetch_add(1, SeqCst);
                if self.halt.load(SeqCst) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "request {i} not acknowledged within {REQUEST_DEADLINE:?}: {why}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            self.acked[i].store(true, SeqCst);
            self.acked_count.fetch_add(1, SeqCst);
        }
    }
}

/// A commit a resolver logged (`landed token=… events=… duplicates=…
/// position=…`): the stream sequences `position - events + 1 ..= position`
/// (one space, so its sequences have no gaps), and how many of its events
/// the messageId dedupe dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Commit {
    first: u64,
    last: u64,
    token: u64,
    duplicates: u64,
    resolver: usize,
}

/// The value of ` name=` in a log line, unquoted.
fn field(line: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=");
    let at = line.find(&key)? + key.len();
    let v = line[at..].split(' ').next()?;
    Some(v.trim_matches('"').to_owned())
}

fn num(line: &str, name: &str) -> u64 {
    field(line, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {name}= in {line:?}"))
}

/// The commits in resolver `resolver`'s log `log`.
fn commits(resolver: usize, log: &str) -> Vec<Commit> {
    log.lines()
        .filter(|l| l.contains("ps_ingest::resolve: landed "))
        .map(|l| {
            let (events, last) = (num(l, "events"), num(l, "position"));
            Commit {
                first: last + 1 - events,
                last,
                token: num(l, "token"),
                duplicates: num(l, "duplicates"),
                resolver,
            }
        })
        .collect()
}

/// The token of the term `log` is in: its last "took the lease" if no step
/// down followed it.
fn current_term(log: &str) -> Option<u64> {
    let mut term = None;
    for l in log.lines() {
        if l.contains("took the lease") {
            term = Some(num(l, "token"));
        } else if l.contains("stepping down") || l.contains("giving the lease up") {
            term = None;
        }
    }
    term
}

/// The resolver holding the lease and committing: the greatest token of a
/// current term, once it committed with it (all are alive when this is
/// asked).
fn active(rs: &[Resolver]) -> Option<(usize, u64)> {
    let (i, token) = (0..rs.len())
        .filter_map(|i| current_term(&rs[i].log()).map(|t| (i, t)))
        .max_by_key(|(_, t)| *t)?;
    commits(i, &rs[i].log())
        .iter()
        .any(|c| c.token == token)
        .then_some((i, token))
}

/// Waits until a resolver other than those in `not` commits with a token
/// above `above`: its index and token.
fn next_commit(rs: &[Resolver], not: &[usize], above: u64, limit: Duration) -> (usize, u64) {
    let deadline = Instant::now() + limit;
    loop {
        for (i, r) in rs.iter().enumerate() {
            if not.contains(&i) {
                continue;
            }
            if let Some(c) = commits(i, &r.log()).iter().find(|c| c.token > above) {
                return (i, c.token);
            }
        }
        if Instant::now() > deadline {
            panic!(
                "no other resolver committed within {limit:?} (token above {above}):\n{}",
                logs(rs)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn logs(rs: &[Resolver]) -> String {
    rs.iter()
        .enumerate()
        .map(|(i, r)| format!("---- resolver {i}:\n{}", r.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// SIGSTOPs `r`, the lease holder, while it is inside a commit: while a
/// session holds the space's fence lock (only the holder commits, and it
/// holds the lock from the start of its transaction to its end). A stop
/// that came after the transaction ended is undone at once (SIGCONT) and
/// tried again. When it was stopped, and after how many tries.
fn stop_inside_commit(env: &Env, r: &Resolver) -> (Instant, usize) {
    let mut wh = ps_warehouse::open(&env.url()).unwrap();
    let mut holders = || ps_warehouse::fence_holders(wh.as_mut(), "gen").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tries = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "resolver not caught inside a commit in {tries} tries"
        );
        if holders().is_empty() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        tries += 1;
        signal(r.pid(), "STOP");
        let at = Instant::now();
        // A stopped client cannot end its transaction: a holder seen now
        // is it, stopped inside.
        std::thread::sleep(Duration::from_millis(100));
        if !holders().is_empty() {
            return (at, tries);
        }
        signal(r.pid(), "CONT");
    }
}

/// Every landed event id of the type tables, with how often it landed.
fn landed_ids(env: &Env) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    // Every event lands once in its call's table (`tracks` also has a table
    // per event name, checked for duplicates separately).
    for t in CALL_TABLES {
        let made = env.query(&format!("SELECT to_regclass('gen.{t}') IS NOT NULL"));
        if made[0][0] != "true" {
            continue;
        }
        for r in env.query(&format!("SELECT id FROM gen.{t}")) {
            *out.entry(r[0].clone()).or_insert(0) += 1;
        }
    }
    out
}

/// Stops the clients when dropped (a failed assertion must not leave them
/// posting).
struct Halt(Arc<Load>);

impl Drop for Halt {
    fn drop(&mut self) {
        self.0.halt.store(true, SeqCst);
    }
}

/// On a panic, prints what every resolver logged.
struct ShowLogs(Vec<Arc<Mutex<String>>>);

impl Drop for ShowLogs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, l) in self.0.iter().enumerate() {
                let l = l.lock().map(|l| l.clone()).unwrap_or_default();
                eprintln!("---- resolver {i} logged:\n{l}");
            }
        }
    }
}

#[test]
fn chaos_every_fault_under_load_loses_and_repeats_nothing() {
    let t0 = Instant::now();
    let mut cluster = NatsCluster::start(3);
    let env = log_env(&cluster);
    let ttl = secs(LEASE_TTL);

    // The load: generated events, which a file replay must agree with.
    let file = generated(&env, EVENTS, 2323);
    let events = events_without_sent_at(&file);
    let bodies: Vec<String> = events
        .chunks(BATCH)
        .map(|c| json!({ "batch": c }).to_string())
        .collect();

    let serves: Vec<Serve> = (0..3).map(|_| Serve::start(&env)).collect();
    let mut rs: Vec<Resolver> = vec![Resolver::start(&env)];
    rs[0].wait_log("took the lease", Duration::from_secs(30));
    rs.push(Resolver::start(&env));
    rs.push(Resolver::start(&env));
    let _show = ShowLogs(rs.iter().map(Resolver::log_handle).collect());

    let n = bodies.len();
    let load = Arc::new(Load {
        bodies,
        started: Instant::now(),
        nodes: serves.iter().map(Serve::addr).collect(),
        up: (0..3).map(|_| AtomicBool::new(true)).collect(),
        next: AtomicUsize::new(0),
        acked: (0..n).map(|_| AtomicBool::new(false)).collect(),
        acked_count: AtomicUsize::new(0),
        retries: AtomicUsize::new(0),
        halt: AtomicBool::new(false),
    });
    let _halt = Halt(load.clone());
    let started = load.started;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let load = load.clone();
            std::thread::spawn(move || load.client(c + 7))
        })
        .collect();
    let progress = |what: &str| {
        eprintln!(
            "chaos: {what} at {:.1?}, {} of {n} requests acknowledged",
            started.elapsed(),
            load.acked()
        );
    };

    // 1. A serve node dies: the clients go to the others; what it had in
    // flight got no answer and is retried there.
    load.wait_acked(0.1);
    load.up[2].store(false, SeqCst);
    signal(serves[2].pid(), "KILL");
    progress("kill -9 of serve node 2");

    // 2. The stream's leader dies: an election; publishes 503 meanwhile
    // and are retried.
    load.wait_acked(0.2);
    let leader = cluster.stream_leader(ps_log::STREAM, Duration::from_secs(10));
    cluster.kill(leader);
    progress(&format!(
        "kill -9 of nats node n{leader}, the stream leader"
    ));

    // 3. The active resolver dies once the log is back (a commit after the
    // election).
    load.wait_acked(0.3);
    let mut holder = None;
    wait_until(
        "a resolver holds the lease and commits",
        Duration::from_secs(60),
        || {
            holder = active(&rs);
            holder.is_some()
        },
    );
    let (a, a_token) = holder.unwrap();
    let before = commits(a, &rs[a].log()).len();
    wait_until(
        "the holder commits once more",
        Duration::from_secs(30),
        || commits(a, &rs[a].log()).len() > before,
    );
    assert!(
        load.acked() < n,
        "the load ended before the resolver faults"
    );
    rs[a].kill_9();
    let killed = Instant::now();
    progress(&format!(
        "kill -9 of resolver {a}, the lease holder (token {a_token})"
    ));
    let (b, b_token) = next_commit(&rs, &[a], a_token, Duration::from_secs(30));
    let failover = killed.elapsed();
    progress(&format!(
        "resolver {b} took over (token {b_token}) and committed {failover:.2?} after the kill"
    ));

    // 4. The new holder pauses inside a commit, past its TTL (a GC pause,
    // a VM freeze): the third resolver must take over and commit while it
    // is stopped; then it is continued.
    assert!(load.acked() < n, "the load ended before the SIGSTOP");
    let (stopped, tries) = stop_inside_commit(&env, &rs[b]);
    progress(&format!(
        "SIGSTOP of resolver {b} inside a commit (holding the fence lock; try {tries})"
    ));
    let (c, c_token) = next_commit(&rs, &[a, b], b_token, Duration::from_secs(30));
    let takeover = stopped.elapsed();
    progress(&format!(
        "resolver {c} took over (token {c_token}) and committed {takeover:.2?} after the SIGSTOP"
    ));
    // The new holder did not wait for the paused one's transaction: it
    // ended its session.
    assert!(
        rs[c]
            .log()
            .contains("ended the warehouse sessions of an older lease holder"),
        "{}",
        rs[c].log()
    );
    let paused_log = rs[b].log().len();
    signal(rs[b].pid(), "CONT");
    progress(&format!("SIGCONT of resolver {b}"));
    wait_until(
        "the continued resolver steps down",
        Duration::from_secs(30),
        || rs[b].log()[paused_log..].contains("stepping down without committing"),
    );

    for h in clients {
        h.join().expect("a client thread failed");
    }
    progress(&format!(
        "load done ({} retries)",
        load.retries.load(SeqCst)
    ));
    assert!(load.acked.iter().all(|a| a.load(SeqCst)));

    // Every acknowledged messageId lands, exactly once.
    let want: BTreeSet<String> = events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let ids = loop {
        let ids = landed_ids(&env);
        if ids.len() >= want.len() || Instant::now() > deadline {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    progress(&format!("{} distinct ids landed", ids.len()));
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(twice.is_empty(), "events landed twice: {twice:?}");
    let missing: Vec<_> = want
        .iter()
        .filter(|m| !ids.contains_key(*m))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events never landed, e.g. {missing:?}\n{}",
        want.iter().filter(|m| !ids.contains_key(*m)).count(),
        logs(&rs)
    );
    let extra: Vec<_> = ids.keys().filter(|m| !want.contains(*m)).take(10).collect();
    assert!(extra.is_empty(), "ids landed that no one sent: {extra:?}");
    for t in env.query(
        "SELECT table_name FROM information_schema.columns \
         WHERE table_schema = 'gen' AND column_name = 'event' ORDER BY 1",
    ) {
        let dup = env.query(&format!(
            "SELECT count(*) - count(DISTINCT id) FROM gen.{}",
            t[0]
        ));
        assert_eq!(dup[0][0], "0", "gen.{} holds an event twice", t[0]);
    }

    // No stretch of the log was committed twice, and the last checkpoint
    // is the log's end.
    let last_seq = cluster.last_seq(ps_log::STREAM);
    let mut all: Vec<Commit> = rs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| commits(i, &r.log()))
        .collect();
    all.sort();
    for w in all.windows(2) {
        assert!(
            w[0].last < w[1].first,
            "log sequences committed twice: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    assert_eq!(
        env.meta("gen", "cp:log").as_deref(),
        Some(last_seq.to_string().as_str()),
        "the checkpoint is not the log's end"
    );
    // The dedupe dropped only what the log itself holds twice (a retry
    // stored again): a stretch landed and then read again by another
    // holder would show up here even if no log line said so.
    let entries = cluster.read_space("gen", ttl);
    let dropped: u64 = all.iter().map(|c| c.duplicates).sum();
    assert_eq!(
        dropped,
        (entries.len() - want.len()) as u64,
        "the resolvers dropped {dropped} duplicates; the log holds {} messages for {} ids",
        entries.len(),
        want.len()
    );
    let covered: u64 = all.iter().map(|c| c.last - c.first + 1).sum();
    eprintln!(
        "chaos: {} commits by {} resolvers covered {covered} of {last_seq} log messages",
        all.len(),
        all.iter()
            .map(|c| c.resolver)
            .collect::<BTreeSet<_>>()
            .len()
    );

    // The paused resolver stepped down and committed nothing after it was
    // continued; the fence holds the newest holder's token.
    let after = rs[b].log()[paused_log..].to_owned();
    assert!(
        commits(b, &after).is_empty(),
        "the paused resolver committed after it was continued:\n{after}"
    );
    let fence: u64 = env.meta("gen", "fence").unwrap().parse().unwrap();
    assert!(fence >= c_token, "fence {fence}, newest holder {c_token}");
    let stepped = after
        .lines()
        .find(|l| l.contains("stepping down"))
        .unwrap_or_default()
        .to_owned();

    // The tables equal a single-node sync of the log's events in the
    // log's order.
    let mut stream = String::new();
    for e in &entries {
        let rec = ps_ingest::inbox::Record::decode(&e.body).unwrap();
        for entry in rec.entries {
            stream.push_str(std::str::from_utf8(&entry.bytes).unwrap());
            stream.push('\n');
        }
    }
    let stream = env.write("stream.jsonl", &stream);
    let reference_url = pg_fresh_database();
    let reference = Env::with_url(&gen_config(&reference_url), &reference_url);
    reference.ok(&["sync", stream.to_str().unwrap()]);
    wait_dump_equal(
        &env.url(),
        "gen",
        &reference.dump("gen"),
        Duration::from_secs(30),
        || logs(&rs),
    );

    // A reader that stalled (its consumer on the nats node killed) and was
    // made again, if one did: that depends on where the consumer was.
    let stalls = logs(&rs).matches("the log's reader gives nothing").count();
    // What the resolvers did, but for their commits and restores.
    for (i, r) in rs.iter().enumerate() {
        for l in r
            .log()
            .lines()
            .filter(|l| l.contains("ps_ingest::resolve:") && !l.contains("resolve: landed "))
        {
            eprintln!(
                "chaos: resolver {i}: {}",
                l.chars().take(220).collect::<String>()
            );
        }
    }
    eprintln!(
        "chaos: {} events in {n} requests, {} log messages; failover after kill -9 of the \
         holder: {failover:.2?}; takeover after SIGSTOP: {takeover:.2?} (lease TTL {LEASE_TTL}); \
         the paused resolver logged: {stepped:?}; stalled readers made again: {stalls}; \
         whole run {:.1?}",
        events.len(),
        entries.len(),
        t0.elapsed()
    );
}

/// `"3s"` as a duration.
fn secs(s: &str) -> Duration {
    Duration::from_secs(s.trim_end_matches('s').parse().unwrap())
}
