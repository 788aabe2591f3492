//! The connection loop: accepts TCP connections and serves HTTP/1.1 on them
//! with the router, under the limits that keep slow or abusive clients from
//! holding the server (`[server] header_timeout`, `body_timeout`,
//! `max_connections`).
//!
//! `axum::serve` has no timeouts, so a client that opens a connection and
//! then sends nothing, or a header a byte at a time, would hold a task and a
//! file descriptor for ever. Here:
//! - **heads**: [`ps_http::head::builder`] closes a connection whose request
//!   head is not complete within `header_timeout` (idle kept-alive
//!   connections too) and answers 431 to a head over its size cap;
//! - **bodies**: [`ps_http::deadline`] makes a request body fail once
//!   `body_timeout` has passed since its head arrived; the handlers answer
//!   408 `body_timeout` and the connection is closed;
//! - **connections**: past `max_connections` open ones, a new connection
//!   is closed at once (logged at most once a minute), so the process keeps
//!   file descriptors for its inbox and warehouse.
//!
//! A stop lets the requests in flight finish (hyper's graceful shutdown)
//! and closes idle connections.

use crate::config::ServerConfig;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

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
    let builder = ps_http::head::builder(cfg.header_timeout);
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
