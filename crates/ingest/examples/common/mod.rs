//! What the `serve` benchmarks share: request bodies from the generator and
//! clients that post them.

use ps_ingest::client::Client;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (bodies, next, auth) = (bodies.clone(), next.clone(), auth.to_owned());
            std::thread::spawn(move || {
                let mut c = Client::new(addr);
                while let Some(b) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                    post_batch(&mut c, &auth, b);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
}
