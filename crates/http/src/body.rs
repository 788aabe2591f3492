//! Request bodies of the Tracking API: gzip decoding and the size limits.
//!
//! Segment's limits (32 KB an event, 500 KB a batch) are about what the
//! events weigh, so they apply to the *decoded* body; a small gzip body that
//! inflates past them (a "gzip bomb") is refused like a large plain one, and
//! memory stays bounded whatever the compression ratio. Decoding is
//! tower-http's `RequestDecompressionLayer`, which inflates while the handler
//! reads, 4 KB at a time; three pieces around it keep our limits and answers:
//!
//! 1. Before it, [`decoded`]'s first step caps the *raw* body at the same
//!    limit (a stream of empty deflate blocks inflates to nothing and would
//!    otherwise be read for ever) and writes `x-gzip` or `GZIP` as `gzip`,
//!    the one spelling the layer knows. It marks a gzip body ([`Gzip`]).
//! 2. The layer passes an encoding it does not know through unchanged, so
//!    [`read`] answers 400 `unsupported_encoding` like every other refusal
//!    instead of the layer's bare 415.
//! 3. [`read`] collects the decoded body up to the limit and tells a body
//!    over a limit (either one: 400 `event_too_large`/`batch_too_large`)
//!    from one that does not inflate (400 `bad_gzip`).
//!
//! A plain body with a `Content-Length` over the limit is refused before any
//! of it is read.

use crate::answer::error;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::MethodRouter;
use http_body_util::{LengthLimitError, Limited};
use std::error::Error;
use tower_http::decompression::RequestDecompressionLayer;

/// Marks a request whose body was sent gzip-encoded.
#[derive(Debug, Clone, Copy)]
pub struct Gzip;

/// `route` with its request bodies decoded, raw bytes capped at `limit`.
pub fn decoded<S>(route: MethodRouter<S>, limit: usize) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route
        .layer(RequestDecompressionLayer::new().pass_through_unaccepted(true))
        .layer(middleware::map_request(move |req: Request| async move {
            cap_raw(req, limit)
        }))
}

/// The step before decoding: the raw body capped at `limit`, gzip spelled
/// `gzip` and marked.
fn cap_raw(req: Request, limit: usize) -> Request {
    let (mut parts, body) = req.into_parts();
    let gzip = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip"));
    if gzip {
        parts
            .headers
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        parts.extensions.insert(Gzip);
    }
    Request::from_parts(parts, Body::new(Limited::new(body, limit)))
}

/// The decoded body of `req` (a request through [`decoded`]), refused when
/// it is over `limit`; `what` ("event" or "batch") names it in the refusal,
/// whose code is the one [`too_large_code`] gives.
pub async fn read(req: Request, limit: usize, what: &str) -> Result<Vec<u8>, Response> {
    let too_large = || {
        error(
            StatusCode::BAD_REQUEST,
            too_large_code(what),
            format!("the {what} is over the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Gzip was taken off by the decoder; what is left is not decoded.
    if let Some(e) = req.headers().get(header::CONTENT_ENCODING) {
        let e = e.to_str().unwrap_or("?").trim().to_ascii_lowercase();
        if !(e.is_empty() || e == "identity") {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "unsupported_encoding",
                format!("Content-Encoding {e:?} is not supported (use gzip or none)"),
            ));
        }
    }
    let gzip = req.extensions().get::<Gzip>().is_some();
    match to_bytes(req.into_body(), limit).await {
        Ok(b) => Ok(b.to_vec()),
        Err(e) if crate::deadline::is_timeout(&e) => Err(crate::deadline::timeout_response()),
        Err(e) if over_limit(&e) => Err(too_large()),
        Err(e) if gzip => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_gzip",
            format!("the gzip body cannot be decoded: {e}"),
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the body cannot be read: {e}"),
        )),
    }
}

/// The refusal code of a body over its limit.
pub fn too_large_code(what: &str) -> &'static str {
    if what == "event" {
        "event_too_large"
    } else {
        "batch_too_large"
    }
}

/// Whether a body error is a limit's (raw or decoded), however deep the
/// body wrappers nested it.
fn over_limit(e: &(dyn Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<LengthLimitError>() {
            return true;
        }
        cur = e.source();
    }
    false
}
