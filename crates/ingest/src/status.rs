//! How the server is doing: `GET /health` (JSON, for load balancers and
//! orchestrators) and `GET /metrics` (Prometheus text, from
//! [`crate::metrics::Metrics`]).

use crate::edge::{json_response, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// `GET /health`: 200 `ok`, or `degraded` while the warehouse fails (the
/// inbox still accepts); 503 when the inbox itself cannot write (failed, or
/// its disk full).
pub(crate) async fn health(State(st): State<Arc<AppState>>) -> Response {
    let writer = st
        .shared
        .writer_failed()
        .or_else(|| st.shared.writer_stalled());
    let sync = st.shared.sync_failed();
    let ok = writer.is_none();
    let body = json!({
        "status": if ok && sync.is_none() { "ok" } else { "degraded" },
        "inbox_events": st.shared.inbox_events.load(Ordering::Relaxed),
        "inbox_bytes": st.shared.inbox_bytes.load(Ordering::Relaxed),
        "inbox_error": writer,
        "sync_error": sync,
    });
    json_response(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}

/// `GET /metrics`: every counter, in Prometheus' text format 0.0.4.
pub(crate) async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let text = st.shared.metrics.render(
        st.shared.inbox_events.load(Ordering::Relaxed),
        st.shared.inbox_bytes.load(Ordering::Relaxed),
    );
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}
