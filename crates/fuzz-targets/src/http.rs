//! The fuzz target `http`: bytes sent to a connection served like `serve`'s
//! tracking routes, through the very code `serve` runs before it stores
//! anything ([`ps_http`]: hyper with `serve`'s head settings, the body
//! deadline, gzip decoding under the limits, the write key, the batch
//! scanner, each event prepared and validated).
//!
//! Input: the first byte chooses the form. Even: the rest is written to
//! the connection as it is (heads, pipelined requests, chunked bodies,
//! anything). Odd: the rest is a request head, an empty line, then a body;
//! the harness adds a correct `Content-Length`, and with bit 1 set gzips
//! the body first and says so in `Content-Encoding`, so the fuzzer reaches
//! the JSON behind gzip without having to write valid deflate streams.
//!
//! What must hold, besides no panic, hang or unbounded allocation: a
//! refused request has a 4xx answer and a code; an accepted one holds at
//! most the limits' events, and every event the edge accepted is accepted
//! again by the pipeline's parser after the sync loop's preparation (the
//! edge's 200 promises the event lands, not that it lands in
//! `rejected_events`).

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ps_config::Limits;
use ps_http::prepare::{prepare, unchanged};
use ps_http::request::{receive, Endpoint, Received, Rules};
use ps_spec::event::parse_doc;
use ps_spec::tape::Doc;
use ps_spec::{Arrival, EventType};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// When every fuzzed request arrives (µs since the epoch).
const RECEIVED_AT: i64 = 1_700_000_000_000_000;

/// The write keys the golden data and the generator use.
fn sources() -> &'static HashMap<String, String> {
    static S: OnceLock<HashMap<String, String>> = OnceLock::new();
    S.get_or_init(|| {
        (1..=3)
            .map(|i| (format!("wk_source_{i}"), format!("source_{i}")))
            .collect()
    })
}

fn limits() -> &'static Limits {
    static L: OnceLock<Limits> = OnceLock::new();
    L.get_or_init(Limits::default)
}

/// One tracking request: `receive`'s verdict, checked.
async fn handle(ep: Endpoint, req: Request) -> Response {
    let rules = Rules {
        sources: sources(),
        limits: limits(),
    };
    match receive(req, ep, rules, RECEIVED_AT).await {
        Ok(got) => {
            check_received(ep, &got);
            got.answer(ep)
        }
        Err(refused) => {
            assert!(!refused.code.is_empty(), "a refusal without a code");
            assert!(
                refused.response.status().is_client_error(),
                "refusal {} answered {}",
                refused.code,
                refused.response.status()
            );
            refused.response
        }
    }
}

/// An accepted request keeps to the limits, and each event the edge
/// accepted is accepted by the pipeline after the sync loop's preparation
/// (the same steps as `ps-ingest`'s sync: `unchanged`, else `prepare`).
fn check_received(ep: Endpoint, got: &Received) {
    let l = limits();
    match ep {
        Endpoint::Single(_) => assert_eq!(got.events.len(), 1, "a single call is one event"),
        Endpoint::Batch => assert!(got.events.len() <= l.max_batch_events),
    }
    assert!(
        sources().contains_key(&got.write_key),
        "an unknown write key got in"
    );
    let arrival = Arrival {
        received_at: Some(RECEIVED_AT),
        batch_sent_at: got.sent_at,
        load_time: RECEIVED_AT,
    };
    let shared = (!got.shared.is_empty()).then_some(&got.shared);
    let kind = got.kind.map(EventType::as_str);
    for (i, c) in got.events.iter().enumerate() {
        if c.too_large {
            assert!(c.refusal.is_some(), "event {i}: too large yet accepted");
        }
        if c.refusal.is_some() {
            continue;
        }
        let landed = match unchanged(&c.bytes, kind, shared, got.peer_ip.as_deref()) {
            Some(doc) => parse_doc(doc, &arrival, Some(&c.bytes)).map(|_| ()),
            None => {
                let mut j: Json =
                    serde_json::from_slice(&c.bytes).expect("accepted bytes are JSON");
                if let Json::Object(o) = &mut j {
                    prepare(o, kind, shared, got.peer_ip.as_deref());
                }
                let doc = Doc::parse(j.to_string()).expect("serde_json writes JSON");
                parse_doc(doc, &arrival, Some(&c.bytes)).map(|_| ())
            }
        };
        if let Err((r, _)) = landed {
            panic!(
                "event {i}: accepted at the edge, refused at the sync: {}",
                r.code()
            );
        }
    }
}

/// `serve`'s tracking routes with `serve`'s body layers, in front of
/// [`handle`].
fn router() -> Router {
    let routes: [(&str, Endpoint); 8] = [
        ("/v1/track", Endpoint::Single(EventType::Track)),
        ("/v1/identify", Endpoint::Single(EventType::Identify)),
        ("/v1/page", Endpoint::Single(EventType::Page)),
        ("/v1/screen", Endpoint::Single(EventType::Screen)),
        ("/v1/group", Endpoint::Single(EventType::Group)),
        ("/v1/alias", Endpoint::Single(EventType::Alias)),
        ("/v1/batch", Endpoint::Batch),
        ("/v1/import", Endpoint::Batch),
    ];
    let router = routes.iter().fold(Router::new(), |r, &(path, ep)| {
        let (limit, _) = ep.limit(limits());
        let route = ps_http::body::decoded(post(move |req: Request| handle(ep, req)), limit);
        r.route(path, route)
    });
    router.layer(axum::middleware::from_fn(|req, next| {
        ps_http::deadline::deadline(Duration::from_secs(5), req, next)
    }))
}

/// What the fuzzer's bytes become on the wire (see the module's doc).
fn wire(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    if mode & 1 == 0 {
        return rest.to_vec();
    }
    let split = rest
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or((rest, &[][..]), |at| (&rest[..at], &rest[at + 2..]));
    let (head, body) = split;
    let head = head.strip_suffix(b"\r").unwrap_or(head);
    let mut body = body.to_vec();
    let mut out = Vec::with_capacity(head.len() + body.len() + 64);
    out.extend_from_slice(head);
    out.extend_from_slice(b"\r\n");
    if mode & 2 != 0 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).expect("gzip into memory");
        body = gz.finish().expect("gzip into memory");
        out.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Serves one connection over an in-memory pipe with `serve`'s settings,
/// writes `data` into it as the client, closes its side, and reads the
/// answers until the server closes.
pub fn http(data: &[u8]) {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        static APP: Arc<Router> = Arc::new(router());
    }
    let bytes = wire(data);
    let app = APP.with(Arc::clone);
    RT.with(|rt| {
        rt.block_on(async move {
            let (client, server) = tokio::io::duplex(1 << 16);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                (*app).clone().oneshot(req.map(Body::new))
            });
            let conn = ps_http::head::builder(Duration::from_secs(5))
                .serve_connection(TokioIo::new(server), service);
            let (mut rd, mut wr) = tokio::io::split(client);
            let send = async move {
                // The server may close first (a refused head): not a failure.
                let _ = wr.write_all(&bytes).await;
                let _ = wr.shutdown().await;
            };
            let answers = async move {
                let mut out = Vec::new();
                let _ = rd.read_to_end(&mut out).await;
                out
            };
            let (_, _, out) = tokio::join!(
                async move {
                    let _ = conn.await;
                },
                send,
                answers
            );
            if !out.is_empty() {
                // hyper answers a request in the version it came in.
                assert!(
                    out.starts_with(b"HTTP/1.1 ") || out.starts_with(b"HTTP/1.0 "),
                    "an answer that is not HTTP"
                );
            }
        })
    });
}
