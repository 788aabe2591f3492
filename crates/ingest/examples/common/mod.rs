//! What the `serve` benchmarks share: request bodies from the generator and
//! clients that post them.

// Each example compiles this module and uses only part of it.
#![allow(dead_code)]

use ps_ingest::client::Client;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The generated stream (`ps-gen`, three sources) as `/v1/batch` bodies of
/// `size` events, and the bytes of its events.
pub fn batch_bodies(events: u64, seed: u64, size: usize) -> (Vec<String>, usize) {
    let mut g = ps_gen::Generator::new(&ps_gen::GenConfig {
        events,
        seed,
        sources: 3,
    });
    let mut bodies = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut bytes = 0;
    while let Some(line) = g.next_line() {
        bytes += line.len();
        cur.push(line.to_owned());
        if cur.len() == size {
            bodies.push(format!("{{\"batch\":[{}]}}", cur.join(",")));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        bodies.push(format!("{{\"batch\":[{}]}}", cur.join(",")));
    }
    (bodies, bytes)
}

/// Posts one batch body with `auth`; anything but 200 stops the benchmark.
pub fn post_batch(c: &mut Client, auth: &str, body: &str) {
    let r = c
        .request(
            "POST",
            "/v1/batch",
            &[("Authorization", auth)],
            body.as_bytes(),
        )
        .expect("request");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Posts every body from `clients` threads, each taking the next unsent
/// one, and returns once all are acknowledged.
pub fn post_all(addr: SocketAddr, bodies: Arc<Vec<String>>, auth: &str, clients: usize) {
    post_paced(addr, bodies, auth, clients, Duration::ZERO);
}

/// Posts every body from `clients` threads at a steady pace: body `i` is
/// sent no earlier than `i * every` after the start (at once when the
/// server has fallen behind), so the rate is the sender's, not the
/// server's answers'.
pub fn post_paced(
    addr: SocketAddr,
    bodies: Arc<Vec<String>>,
    auth: &str,
    clients: usize,
    every: Duration,
) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (bodies, next, auth) = (bodies.clone(), next.clone(), auth.to_owned());
            std::thread::spawn(move || {
                let mut c = Client::new(addr);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = bodies.get(i) else { break };
                    let due = start + every * u32::try_from(i).expect("bodies fit in u32");
                    if let Some(w) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(w);
                    }
                    post_batch(&mut c, &auth, b);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
}

/// What [`post_spread`] saw: every request's time from send to its 200
/// (retries included), and how many answers were retried.
#[derive(Debug, Default)]
pub struct Posted {
    pub latencies: Vec<Duration>,
    pub retries: usize,
}

/// Posts every body from `clients` threads, each taking the next unsent
/// body `i` and sending it to `addrs[i % addrs.len()]` over a kept-alive
/// connection per server, so the load is spread evenly over the servers
/// whatever the number of threads. A 503 (the event log did not
/// acknowledge in time) or a 429 (the inbox is full) is retried with the
/// same body, as SDKs do: the messageIds make the retry land once.
/// Anything else stops the benchmark.
pub fn post_spread(
    addrs: &[SocketAddr],
    bodies: Arc<Vec<String>>,
    auth: &str,
    clients: usize,
) -> Posted {
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Posted::default()));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (bodies, next, out) = (bodies.clone(), next.clone(), out.clone());
            let (addrs, auth) = (addrs.to_vec(), auth.to_owned());
            std::thread::spawn(move || {
                let mut conns: Vec<Client> = addrs
                    .iter()
                    .map(|a| Client::new(*a).with_timeout(Duration::from_secs(60)))
                    .collect();
                let mut mine = Posted::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = bodies.get(i) else { break };
                    let c = &mut conns[i % addrs.len()];
                    let sent = Instant::now();
                    loop {
                        let r = c
                            .request(
                                "POST",
                                "/v1/batch",
                                &[("Authorization", &auth)],
                                b.as_bytes(),
                            )
                            .expect("request");
                        match r.status {
                            200 => break,
                            429 | 503 => {
                                mine.retries += 1;
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            _ => panic!("{} {}", r.status, r.text()),
                        }
                    }
                    mine.latencies.push(sent.elapsed());
                }
                let mut o = out.lock().expect("not poisoned");
                o.latencies.append(&mut mine.latencies);
                o.retries += mine.retries;
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    let mut posted = std::mem::take(&mut *out.lock().expect("not poisoned"));
    posted.latencies.sort();
    posted
}
