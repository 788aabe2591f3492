//! The admin API (`/admin/*`, behind `[server] admin_token`): read-only
//! queries (`/admin/query`, on the warehouse's read-only connection, not the
//! sync thread) and privacy requests (`/admin/regulations`, carried out by the
//! sync thread), and one profile at a time (`/admin/profile`, the Profile
//! API's lookups for `profiles-sync profile`, on the read-only connection
//! too). Routed by [`crate::routes`], without CORS: the admin API is for
//! operators' tools, not for pages in a browser.

use crate::control::Control;
use crate::edge::{error, json_response, AppState};
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use ps_pipeline::{RegulationKind, Subject};
use serde_json::Value as Json;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The admin API needs `Authorization: Bearer <admin_token>`; write keys
/// never open it. `Some` is the refusal to send.
fn admin_refusal(st: &AppState, req: &Request) -> Option<Response> {
    let Some(token) = &st.cfg.admin_token else {
        return Some(error(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "the admin API is off; set [server] admin_token to enable it",
        ));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant time in the token's bytes; only its length may show.
    if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        st.shared.metrics.request_refused("bad_admin_token");
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "bad_admin_token",
            "Authorization: Bearer <admin_token> is required",
        ));
    }
    None
}

/// `POST /admin/regulations {"type": "delete|suppress|unsuppress",
/// "subject": "TYPE:VALUE"}` answers `{"regulation": {...}}`: 200 when
/// carried out, 404 when the subject is unknown (recorded all the same).
/// `GET` lists them: `{"regulations": [...]}`.
pub(crate) async fn admin_regulations(State(st): State<Arc<AppState>>, req: Request) -> Response {
    if let Some(r) = admin_refusal(&st, &req) {
        return r;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let control = if req.method() == Method::GET {
        Control::Regulations { reply: tx }
    } else {
        let body = match body_within(req, 64 << 10, "too_large", "the body is over 64 KB").await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let parsed: Option<(RegulationKind, Result<Subject, String>)> =
            serde_json::from_slice::<Json>(&body).ok().and_then(|j| {
                let kind = RegulationKind::parse(j.get("type")?.as_str()?)?;
                Some((kind, j.get("subject")?.as_str()?.parse()))
            });
        match parsed {
            Some((kind, Ok(subject))) => Control::Regulate {
                kind,
                subject,
                reply: tx,
            },
            Some((_, Err(e))) => return error(StatusCode::BAD_REQUEST, "bad_subject", e),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    r#"expected {"type": "delete" | "suppress" | "unsuppress", "subject": "TYPE:VALUE"}"#,
                )
            }
        }
    };
    let listing = matches!(control, Control::Regulations { .. });
    if st.control.send(control).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is stopping",
        );
    }
    match rx.await {
        Ok(Ok(v)) if listing => {
            json_response(StatusCode::OK, &serde_json::json!({ "regulations": v }))
        }
        Ok(Ok(v)) => {
            let status = if v.get("status").and_then(Json::as_str) == Some("finished") {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            json_response(status, &serde_json::json!({ "regulation": v }))
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "regulation_failed", e),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is stopping",
        ),
    }
}

/// `POST /admin/query` with plain SQL or `{"sql": "..."}` answers a
/// [`crate::QueryResult`] as JSON; refusals, timeouts and failures are 400.
pub(crate) async fn admin_query(State(st): State<Arc<AppState>>, req: Request) -> Response {
    if let Some(r) = admin_refusal(&st, &req) {
        return r;
    }
    let body = match body_within(req, 1 << 20, "query_too_large", "the query is over 1 MB").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    // Plain SQL, or {"sql": "..."}.
    let sql = match serde_json::from_str::<Json>(&text) {
        Ok(Json::Object(o)) => match o.get("sql").and_then(Json::as_str) {
            Some(s) => s.to_owned(),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "missing_sql",
                    "a JSON body needs a `sql` string",
                )
            }
        },
        _ => text,
    };
    let Some(reader) = st.shared.reader() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "warehouse_unavailable",
            "the warehouse is not open; see /health",
        );
    };
    let Ok(_slot) = st.query_slots.try_acquire() else {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_queries",
            format!(
                "{} queries are already running; retry shortly",
                crate::edge::QUERY_SLOTS
            ),
        );
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return r;
    };
    let limits = st.cfg.query;
    let answer =
        tokio::task::spawn_blocking(move || crate::query::run_query(&reader, &sql, &limits)).await;
    match answer {
        Ok(Ok(result)) => json_response(StatusCode::OK, &result.to_json()),
        Ok(Err(e)) => {
            let code = match e.kind() {
                ps_warehouse::ErrorKind::Refused => "query_refused",
                ps_warehouse::ErrorKind::Timeout => "query_timeout",
                _ => "query_failed",
            };
            error(StatusCode::BAD_REQUEST, code, e.to_string())
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "query_failed",
            "the query stopped unexpectedly",
        ),
    }
}

/// `POST /admin/profile {"id": "TYPE:VALUE", "traits": true,
/// "external_ids": true, "events": true, "metadata": true, "events_limit":
/// 20}` answers [`crate::profile_api::lookup::Profiles::profile`]'s JSON;
/// 404 `not_found` when no profile holds the identifier.
pub(crate) async fn admin_profile(st: &AppState, req: Request) -> Response {
    use crate::profile_api::lookup::{Identifier, LookupError, Profiles, Sections};
    if let Some(r) = admin_refusal(st, &req) {
        return r;
    }
    let body = match body_within(req, 64 << 10, "too_large", "the body is over 64 KB").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let j: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    let flag = |k: &str| j.get(k).and_then(Json::as_bool).unwrap_or(false);
    let id: Identifier = match j.get("id").and_then(Json::as_str).map(str::parse) {
        Some(Ok(id)) => id,
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, "bad_subject", e),
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                r#"expected {"id": "TYPE:VALUE", "traits": bool, "external_ids": bool, "events": bool, "metadata": bool, "events_limit": n}"#,
            )
        }
    };
    let sections = Sections {
        traits: flag("traits"),
        external_ids: flag("external_ids"),
        events: flag("events"),
        metadata: flag("metadata"),
        events_limit: j
            .get("events_limit")
            .and_then(Json::as_u64)
            .map_or(20, |n| n.clamp(1, 10_000) as usize),
    };
    let Some(reader) = st.shared.reader() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "warehouse_unavailable",
            "the warehouse is not open; see /health",
        );
    };
    let Ok(_slot) = st.profile_slots.acquire().await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is stopping",
        );
    };
    let (space, limits) = (st.space.clone(), st.cfg.query);
    let answer = tokio::task::spawn_blocking(move || {
        Profiles::new(&reader, &space, limits).profile(&id, &sections)
    })
    .await;
    match answer {
        Ok(Ok(v)) => json_response(StatusCode::OK, &v),
        Ok(Err(LookupError::NotFound)) => {
            error(StatusCode::NOT_FOUND, "not_found", "Profile was not found.")
        }
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "lookup_failed",
            e.to_string(),
        ),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "lookup_failed",
            "the lookup stopped unexpectedly",
        ),
    }
}

/// The request's body, or 400 `code` with `message` when it is over
/// `limit` bytes.
async fn body_within(
    req: Request,
    limit: usize,
    code: &str,
    message: &str,
) -> Result<axum::body::Bytes, Response> {
    to_bytes(req.into_body(), limit).await.map_err(|e| {
        if ps_http::deadline::is_timeout(&e) {
            ps_http::deadline::timeout_response()
        } else {
            error(StatusCode::BAD_REQUEST, code, message)
        }
    })
}
