//! Cross-origin requests to the public endpoints: analytics.js runs on the
//! customer's site and posts to this server from there.
//!
//! Any origin is allowed, because the write key, not the origin, is the
//! credential. A request with an `Origin` gets it echoed back with
//! `Access-Control-Allow-Credentials: true`, so credentialed requests
//! (`fetch(.., {credentials: "include"})`, `sendBeacon`) work too; one
//! without gets `Access-Control-Allow-Origin: *`. A preflight (`OPTIONS`)
//! allows `GET, POST, OPTIONS` and the headers it asks for, for a day.
//!
//! tower-http's `CorsLayer` does the work; [`fill_in`] adds the two things
//! it leaves out on purpose: the `*` for requests without an `Origin`
//! (tower-http sends no `Access-Control-Allow-Origin` when it mirrors and
//! there is nothing to mirror) and `204 No Content` as the preflight's
//! status (tower-http answers 200 with an empty body).

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::time::Duration;
use tower_http::cors::{AllowCredentials, AllowHeaders, AllowOrigin, CorsLayer};

/// `router` answering browsers from any origin.
pub(crate) fn allow_browsers<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_credentials(AllowCredentials::predicate(|_, _| true))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(Duration::from_secs(86_400));
    router.layer(cors).layer(middleware::from_fn(fill_in))
}

/// What `CorsLayer` leaves out: `*` without an `Origin`, 204 for a
/// preflight.
async fn fill_in(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = next.run(req).await;
    if preflight && resp.status() == StatusCode::OK {
        *resp.status_mut() = StatusCode::NO_CONTENT;
    }
    resp.headers_mut()
        .entry(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .or_insert(HeaderValue::from_static("*"));
    resp
}
