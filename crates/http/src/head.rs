//! How a connection reads request heads: hyper's HTTP/1.1 parser with a
//! clock for `header_timeout` and a cap on a head's size ([`MAX_HEAD`]).
//! `serve`'s connection loop (`ps-ingest`'s `http`) and the fuzz target
//! `http` build their connections with [`builder`], so the fuzzer parses
//! heads exactly as the server does.
//!
//! - **time**: hyper closes a connection whose request head is not complete
//!   within `header_timeout`; the same clock runs while a kept-alive
//!   connection waits for its next request, so idle connections go too;
//! - **size**: hyper's read buffer is capped at [`MAX_HEAD`], so a head
//!   larger than that is answered 431 and costs no more memory.

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use std::time::Duration;

/// Largest request head (request line and headers). Segment's SDKs send a
/// few hundred bytes; nginx's default allows 32 KiB.
pub const MAX_HEAD: usize = 64 * 1024;

/// The HTTP/1.1 connection settings of `serve`.
pub fn builder(header_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD);
    builder
}
