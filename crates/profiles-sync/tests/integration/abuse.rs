//! Slow and abusive clients against a real `serve` on 127.0.0.1 (issue 22):
//! headers trickled byte by byte, a body trickled byte by byte, hundreds of
//! idle connections, more connections than `server.max_connections`, huge
//! headers, a gzip bomb. Each ends with a clear 4xx or a closed connection
//! after a bounded time, and meanwhile an ordinary client is served.
//!
//! The servers here use short timeouts (`header_timeout = "1s"`,
//! `body_timeout = "2s"`) so the test is quick; the bounds asserted are ten
//! times or more the configured ones, because the machine running the tests
//! may be loaded and only "bounded, not hung" is being checked.

use crate::serve::{post, Serve};
use crate::util::{golden_dir, Env};
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Far above the configured timeouts: only "it ends" is checked.
const BOUND: Duration = Duration::from_secs(30);

fn env(server: &str) -> Env {
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    Env::new(&format!(
        "{base}\n[server]\nsync_interval = \"100ms\"\n{server}\n"
    ))
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    s
}

/// Reads until the server closes the connection; what it sent, and how long
/// that took. Fails when the server keeps it open past [`BOUND`].
///
/// A server that closes a socket with unread bytes in it (the rest of an
/// oversized head) makes the kernel send a reset, which may overtake the
/// answer; such a close counts as a close, with what was read before it.
fn until_closed(s: &mut TcpStream) -> (String, Duration) {
    let (got, took, _) = until_closed_or_reset(s);
    (got, took)
}

/// [`until_closed`], also saying whether the close was a reset.
fn until_closed_or_reset(s: &mut TcpStream) -> (String, Duration, bool) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut reset = false;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                reset = true;
                break;
            }
            Err(e) => panic!(
                "the server kept the connection open for {:?} ({e}); got {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        start.elapsed(),
        reset,
    )
}

/// An ordinary request gets its 200 (the client's own timeout is 60 s; a
/// server held up by the abusive clients would show as a failure here).
fn served(srv: &Serve, n: usize) {
    let mut c = srv.client();
    let r = post(
        &mut c,
        "/v1/track",
        Some("wk_source_1"),
        &json!({"userId": "ok", "event": "Served", "messageId": format!("served-{n}")}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A thread writing `bytes` one at a time, `every` apart, until the server
/// closes the connection or they are all sent.
fn trickle(mut s: TcpStream, bytes: Vec<u8>, every: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for b in bytes {
            if s.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    })
}

#[test]
fn slow_headers_slow_bodies_and_idle_connections_are_cut_off() {
    let env = env("header_timeout = \"1s\"\nbody_timeout = \"2s\"");
    let srv = Serve::start(&env);

    // Slowloris: a head that never ends, a byte every 100 ms.
    let s = connect(srv.addr());
    let mut reader = s.try_clone().unwrap();
    let mut head = b"POST /v1/track HTTP/1.1\r\nHost: x\r\n".to_vec();
    head.extend(b"X-Slow: a\r\n".repeat(1000));
    let writer = trickle(s, head, Duration::from_millis(100));
    served(&srv, 0);
    let (got, took) = until_closed(&mut reader);
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 408"),
        "a head not finished in time gets no answer but a close: {got:?}"
    );
    eprintln!("slow head closed after {took:?}");
    writer.join().unwrap();

    // A body trickled a byte every 100 ms, then stalled: 408 once
    // body_timeout is up. (The trickle stops well before the timeout, so
    // no byte is in flight when the server closes, which would turn the
    // close into a reset that may overtake the answer.)
    let mut s = connect(srv.addr());
    let body = json!({"userId": "slow", "event": "Slow", "messageId": "slow-1", "properties": {"p": "x".repeat(500)}}).to_string();
    write!(
        s,
        "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        ps_ingest::client::basic_auth("wk_source_1"),
        body.len()
    )
    .unwrap();
    let mut reader = s.try_clone().unwrap();
    let writer = trickle(s, body.as_bytes()[..5].to_vec(), Duration::from_millis(100));
    served(&srv, 1);
    let (got, took) = until_closed(&mut reader);
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(got.contains("body_timeout"), "{got:?}");
    eprintln!("slow body answered 408 and closed after {took:?}");
    writer.join().unwrap();

    // Headers complete, body never sent.
    let mut s = connect(srv.addr());
    s.write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let (got, _) = until_closed(&mut s);
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");

    // Hundreds of idle connections: others are still served, and the idle
    // ones are closed once header_timeout is up.
    let mut idle: Vec<TcpStream> = (0..300).map(|_| connect(srv.addr())).collect();
    served(&srv, 2);
    // A kept-alive connection that goes quiet is idle too.
    let mut kept = connect(srv.addr());
    let body = json!({"userId": "k", "event": "Kept", "messageId": "kept-1"}).to_string();
    write!(
        kept,
        "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n{body}",
        ps_ingest::client::basic_auth("wk_source_1"),
        body.len()
    )
    .unwrap();
    let start = Instant::now();
    for s in &mut idle {
        let (got, _) = until_closed(s);
        assert!(got.is_empty(), "{got:?}");
    }
    let (got, _) = until_closed(&mut kept);
    assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
    eprintln!("300 idle connections closed within {:?}", start.elapsed());
    served(&srv, 3);

    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
}

#[test]
fn connections_past_the_limit_are_closed_at_once() {
    // A header timeout far longer than the bound below, so a close within
    // the bound is the limit's doing.
    let env = env("header_timeout = \"10m\"\nmax_connections = 8");
    let srv = Serve::start(&env);
    let held: Vec<TcpStream> = (0..8).map(|_| connect(srv.addr())).collect();
    // The listener may have accepted the 8 in any order: give the server
    // a moment to take all of them before the 9th.
    std::thread::sleep(Duration::from_millis(500));
    let mut ninth = connect(srv.addr());
    ninth.set_read_timeout(Some(BOUND)).unwrap();
    let (got, took) = until_closed(&mut ninth);
    assert!(got.is_empty(), "{got:?}");
    assert!(took < BOUND, "closed after {took:?}");
    drop(held);
    // Freed slots serve again (the close reaches the server asynchronously).
    let deadline = Instant::now() + BOUND;
    loop {
        let mut c = srv.client().with_timeout(Duration::from_secs(5));
        match c.request("GET", "/health", &[], b"") {
            Ok(r) if r.status == 200 => break,
            other => assert!(
                Instant::now() < deadline,
                "not served again: {:?}",
                other.map(|r| r.status)
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("server.max_connections"), "{log}");
}

#[test]
fn huge_heads_and_gzip_bombs_get_a_4xx_in_bounded_memory() {
    let env = env("");
    let srv = Serve::start(&env);

    // Heads over the 64 KiB limit, as one header of 1 MB or 10,000 small
    // ones: 431 and a close (or a reset: the server stops reading at the
    // limit), with the server's memory for the head capped at the limit.
    for head in [
        format!("X-Big: {}\r\n", "b".repeat(1 << 20)),
        (0..10_000).map(|i| format!("X-H{i}: v\r\n")).collect(),
    ] {
        let mut s = connect(srv.addr());
        // The server may close before all of it is written.
        let _ = s.write_all(format!("GET /health HTTP/1.1\r\nHost: x\r\n{head}\r\n").as_bytes());
        let (got, _, reset) = until_closed_or_reset(&mut s);
        assert!(
            got.starts_with("HTTP/1.1 431") || (reset && got.is_empty()),
            "{got:?}"
        );
    }
    // More headers than hyper's 100, in a small head read whole: a clean 431.
    let mut s = connect(srv.addr());
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    s.write_all(format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes())
        .unwrap();
    let (got, _) = until_closed(&mut s);
    assert!(got.starts_with("HTTP/1.1 431"), "{got:?}");
    served(&srv, 0);

    // A gzip body that inflates to 200 MB, sent 20 times.
    let bomb = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..200 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap()
    };
    let rss_before = rss_kib(srv.pid());
    let auth = ps_ingest::client::basic_auth("wk_source_1");
    let mut c = srv.client();
    for _ in 0..20 {
        let r = c
            .request(
                "POST",
                "/v1/batch",
                &[
                    ("Authorization", auth.as_str()),
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", "gzip"),
                ],
                &bomb,
            )
            .unwrap();
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["code"], "batch_too_large", "{}", r.text());
    }
    let rss_after = rss_kib(srv.pid());
    eprintln!(
        "gzip bomb ({} bytes, 200 MB inflated) x20: RSS {rss_before} -> {rss_after} KiB",
        bomb.len()
    );
    // The body is read under the 500 KB limit: 20 bombs must not have
    // inflated into memory (one would be 200 MB).
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    served(&srv, 1);
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
}

/// Resident memory of process `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}
