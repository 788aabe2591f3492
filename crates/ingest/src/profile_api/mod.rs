//! The Profile API (issue 20): Segment's routes for reading one profile,
//! served by `serve` beside the Tracking API.
//!
//! ```text
//! GET /v1/spaces/<space>/collections/users/profiles/<id_type>:<value>/traits
//!                                                                    /external_ids
//!                                                                    /events
//!                                                                    /metadata
//! ```
//!
//! Each request goes: `Request-Id` (on every answer) → GET only (405) →
//! access token, HTTP Basic (401 `authentication_error`) → the space is
//! this server's (404) → the space's rate limit (429 `rate_limit_error`,
//! `Retry-After`) → `users` collection and `<id_type>:<value>` (400
//! `invalid_request_error`) → the route's parameters (400
//! `validation_error`) → the lookup ([`lookup`]) on the warehouse's
//! read-only connection, on a blocking thread, like `/admin/query`: reads
//! never wait for the sync thread, and ingest never waits for them. An
//! unknown identifier is 404 `not_found` "Profile was not found.". Errors are
//! `{"error": {"code", "message"}}`; no CORS headers are ever sent (the API
//! is for servers: a token must not live in a browser).

mod auth;
pub mod lookup;
mod params;
pub(crate) mod rate;

use crate::edge::AppState;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use lookup::{Identifier, LookupError, Profiles};
use serde_json::{json, Value as Json};
use std::sync::Arc;
use std::time::Instant;

/// The route of every profile lookup; anything else under `/v1/spaces/`
/// is a 404 in the API's error shape.
const ROUTE: &str = "/{space}/collections/{collection}/profiles/{id}/{what}";

/// The Profile API's routes, merged into the server's router (without
/// CORS: the API is for backends, not pages).
pub(crate) fn router() -> axum::Router<Arc<AppState>> {
    // Nested, so any other path under `/v1/spaces/` gets the API's own 404.
    let api = axum::Router::new()
        .route(ROUTE, any(profile))
        .fallback(no_route);
    axum::Router::new().nest("/v1/spaces", api)
}

/// `{"error": {"code", "message"}}` with that status.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(body: &Json) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn with_request_id(mut r: Response) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("request-id", v);
    }
    r
}

/// The request's path as the client sent it (the router is nested under
/// `/v1/spaces`, which strips that prefix from `req.uri()`).
fn full_path(req: &Request) -> &str {
    req.extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path(), |o| o.0.path())
}

async fn no_route(req: Request) -> Response {
    with_request_id(error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}", full_path(&req)),
    ))
}

async fn profile(
    State(st): State<Arc<AppState>>,
    path: Result<Path<(String, String, String, String)>, axum::extract::rejection::PathRejection>,
    req: Request,
) -> Response {
    with_request_id(answer(st, path.ok().map(|p| p.0), req).await)
}

/// Which lookup a route is.
#[derive(Debug, Clone, Copy)]
enum What {
    Traits,
    ExternalIds,
    Events,
    Metadata,
}

async fn answer(
    st: Arc<AppState>,
    path: Option<(String, String, String, String)>,
    req: Request,
) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            format!(
                "{} is not allowed: the Profile API only reads (GET)",
                req.method()
            ),
        );
    }
    let cfg = &st.cfg.profile_api;
    if !auth::authorized(cfg, req.headers()) {
        st.shared.metrics.request_refused("profile_api_token");
        let why = if cfg.tokens.is_empty() && cfg.token_hashes.is_empty() {
            "The Profile API has no access tokens: set [profile_api] tokens (or token_hashes)"
        } else {
            "Send an access token as the HTTP Basic user name, with an empty password"
        };
        return error(StatusCode::UNAUTHORIZED, "authentication_error", why);
    }
    let Some((space, collection, id, what)) = path else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the path is not valid UTF-8 once decoded",
        );
    };
    if space != st.space {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Space {space:?} was not found."),
        );
    }
    if let Err(wait) = st.profile_rate.take(Instant::now()) {
        st.shared.metrics.request_refused("profile_api_rate_limit");
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!(
                "More than {} requests per second for this space ([profile_api] rate_limit); retry with backoff",
                cfg.rate_limit
            ),
        );
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let what = match what.as_str() {
        "traits" => What::Traits,
        "external_ids" => What::ExternalIds,
        "events" => What::Events,
        "metadata" => What::Metadata,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route {other:?}: use traits, external_ids, events or metadata"),
            )
        }
    };
    if collection != "users" {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Collection {collection:?} was not found: only users profiles are kept"),
        );
    }
    let id: Identifier = match id.parse() {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", e),
    };
    let query = req.uri().query().map(str::to_owned);
    let params = match what {
        What::Traits => params::traits(query.as_deref()).map(|mut q| {
            q.class_keys = match q.class.as_deref() {
                Some("audience") => st.class_keys.audiences.clone(),
                Some(_) => st.class_keys.computed.clone(),
                None => Vec::new(),
            };
            Lookup::Traits(q)
        }),
        What::ExternalIds => params::external_ids(query.as_deref()).map(Lookup::ExternalIds),
        What::Events => params::events(query.as_deref()).map(Lookup::Events),
        What::Metadata => params::metadata(query.as_deref()).map(|()| Lookup::Metadata),
    };
    let lookup = match params {
        Ok(l) => l,
        Err(e) => return error(StatusCode::BAD_REQUEST, "validation_error", e),
    };
    let Some(reader) = st.shared.reader() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the warehouse is not open; see /health",
        );
    };
    let Ok(_slot) = st.profile_slots.acquire().await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the server is stopping",
        );
    };
    let (space, limits) = (st.space.clone(), st.cfg.query);
    let answer = tokio::task::spawn_blocking(move || {
        let p = Profiles::new(&reader, &space, limits);
        match lookup {
            Lookup::Traits(q) => p.traits(&id, &q),
            Lookup::ExternalIds(q) => p.external_ids(&id, &q),
            Lookup::Events(q) => p.events(&id, &q),
            Lookup::Metadata => p.metadata(&id),
        }
    })
    .await;
    match answer {
        Ok(Ok(mut body)) => {
            if let Some(c) = body.get_mut("cursor") {
                let url = match &query {
                    Some(q) => format!("{}?{q}", full_path(&req)),
                    None => full_path(&req).to_owned(),
                };
                c["url"] = Json::String(url);
            }
            ok(&body)
        }
        Ok(Err(LookupError::NotFound)) => {
            error(StatusCode::NOT_FOUND, "not_found", "Profile was not found.")
        }
        Ok(Err(e @ LookupError::BadCursor)) => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            e.to_string(),
        ),
        Ok(Err(e @ LookupError::Warehouse(_))) => {
            tracing::warn!(error = %e, "profile lookup failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                e.to_string(),
            )
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the lookup stopped unexpectedly",
        ),
    }
}

/// A checked request, for the blocking thread.
enum Lookup {
    Traits(lookup::TraitsQuery),
    ExternalIds(lookup::ExternalIdsQuery),
    Events(lookup::EventsQuery),
    Metadata,
}
