//! Every answer is JSON, and every refusal says why:
//! `{"code": ..., "message": ...}`.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value as Json};

/// A JSON answer with that status.
pub fn json_response(status: StatusCode, body: &Json) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The error body of every refusal: `{"code": ..., "message": ...}`.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(status, &json!({ "code": code, "message": message.into() }))
}
