//! The connection loop: accepts TCP connections and serves HTTP/1.1 on them
//! with the router, under the limits that keep slow or abusive clients from
//! holding the server (`[server] header_timeout`, `body_timeout`,
//! `max_connections`).
//!
//! `axum::serve` has no timeouts, so a client that opens a connection and
//! then sends nothing, or a header a byte at a time, would hold a task and a
//! file descriptor for ever. Here:
//! - **headers**: hyper closes a connection whose request head is not
//!   complete within `header_timeout`; the same clock runs while a kept-alive
//!   connection waits for its next request, so idle connections go too;
//! - **bodies**: [`deadline`] makes a request body fail once `body_timeout`
//!   has passed since its head arrived; the handlers answer 408
//!   `body_timeout` ([`is_timeout`]) and the connection is closed;
//! - **size of a head**: hyper's read buffer is capped at [`MAX_HEAD`], so a
//!   head larger than that is answered 431 and costs no more memory;
//! - **connections**: past `max_connections` open ones, a new connection
//!   is closed at once (logged at most once a minute), so the process keeps
//!   file descriptors for its inbox and warehouse.
//!
//! A stop lets the requests in flight finish (hyper's graceful shutdown)
//! and closes idle connections.

use crate::config::ServerConfig;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Largest request head (request line and headers). Segment's SDKs send a
/// few hundred bytes; nginx's default allows 32 KiB.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Serves `app` on `listener` until `stop` resolves, then lets in-flight
/// requests finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &ServerConfig,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        .max_buf_size(MAX_HEAD);
    let mut stop = std::pin::pin!(stop);
    // At most one line a minute about refused connections: under a flood,
    // a line per connection would be a flood of its own.
    let mut last_refusal_log: Option<tokio::time::Instant> = None;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors, most likely: waiting gives
                        // the open connections time to close.
                        tracing::warn!(error = %e, "cannot accept a connection; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                tracing::warn!(
                    max = cfg.max_connections,
                    "too many open connections; closing new ones (server.max_connections)"
                );
                last_refusal_log = Some(tokio::time::Instant::now());
            }
            drop(tcp);
            continue;
        };
        // Small requests and answers: Nagle's algorithm would only add delay.
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(Body::new))
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            // A client that goes away or breaks the protocol ends only its
            // own connection; hyper has answered what could be answered.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one incoming connection (it was reset before we took it), as
/// opposed to the listener's own.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Middleware: the request's body fails with [`BodyTimeout`] once
/// `timeout` has passed.
pub(crate) async fn deadline(timeout: Duration, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = Body::new(Deadline {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(timeout)),
    });
    next.run(Request::from_parts(parts, body)).await
}

struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for Deadline {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(r) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(r.map(|f| f.map_err(Into::into)));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that took longer than `server.body_timeout`.
#[derive(Debug)]
pub(crate) struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body did not arrive in time (server.body_timeout)")
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether a body error is [`BodyTimeout`], however deep the body wrappers
/// nested it.
pub(crate) fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The answer to a body that timed out: 408, and the connection closed, as
/// the rest of the body may still be on its way.
pub(crate) fn timeout_response() -> Response {
    let mut r = crate::edge::error(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        BodyTimeout.to_string(),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
