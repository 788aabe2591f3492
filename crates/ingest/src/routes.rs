//! Every path `serve` answers, in one place: [`router`] builds the
//! `axum::Router` and is the only code that knows which handler sits on
//! which path and method.
//!
//! The router has two halves. The *public* half is what browsers and SDKs
//! call: Segment's Tracking API (`POST /v1/{identify,i,track,t,page,p,
//! screen,s,group,g,alias,a,batch,b,import}`, each also with a trailing
//! slash), the settings document analytics.js loads first
//! (`GET /v1/projects/{write_key}/settings`), `/health` and `/metrics`. It
//! answers cross-origin requests ([`crate::cors`]), and its tracking routes
//! decode gzip bodies under the request limits ([`ps_http::body`]). The *admin*
//! half (`/admin/query`, `/admin/regulations`, in [`crate::admin`]) is for
//! operators with the admin token; it sends no CORS headers, so a page on
//! another origin cannot read its answers.
//!
//! What routing answers itself is JSON like every other refusal: an unknown
//! path is 404 `not_found` (with CORS, since a browser may well ask), a
//! known path with another method 405 `method_not_allowed` (with `Allow`).
//! Every answer is counted in `/metrics` under its route's pattern
//! ([`label`]): one series per route, `other` for every unknown path, so
//! neither scanners nor write keys in settings paths can grow the series set.
//!
//! Every request body, on every route, fails once `server.body_timeout`
//! has passed since its head arrived ([`ps_http::deadline`]); the
//! handlers answer that with 408 `body_timeout`.
//!
//! More public routes (the Profile API) join with one `.merge(..)` in
//! [`router`], before the 405 fallback and the layers, so they get both.

use crate::admin::{admin_profile, admin_query, admin_regulations};

use crate::cors;
use crate::edge::{error, AppState};
use crate::settings::source_settings;
use crate::status::{health, metrics};
use crate::tracking::track;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use ps_http::request::Endpoint;
use ps_spec::EventType;
use std::sync::Arc;

/// The Tracking API's paths: Segment's names, their one-letter forms, and
/// `/v1/import` (a batch, as Segment accepts it).
const TRACKING: [(&str, Endpoint); 15] = [
    ("/v1/identify", Endpoint::Single(EventType::Identify)),
    ("/v1/i", Endpoint::Single(EventType::Identify)),
    ("/v1/track", Endpoint::Single(EventType::Track)),
    ("/v1/t", Endpoint::Single(EventType::Track)),
    ("/v1/page", Endpoint::Single(EventType::Page)),
    ("/v1/p", Endpoint::Single(EventType::Page)),
    ("/v1/screen", Endpoint::Single(EventType::Screen)),
    ("/v1/s", Endpoint::Single(EventType::Screen)),
    ("/v1/group", Endpoint::Single(EventType::Group)),
    ("/v1/g", Endpoint::Single(EventType::Group)),
    ("/v1/alias", Endpoint::Single(EventType::Alias)),
    ("/v1/a", Endpoint::Single(EventType::Alias)),
    ("/v1/batch", Endpoint::Batch),
    ("/v1/b", Endpoint::Batch),
    ("/v1/import", Endpoint::Batch),
];

/// The settings route; its write key stays out of the metrics label.
const SETTINGS: &str = "/v1/projects/{write_key}/settings";

type AppRouter = Router<Arc<AppState>>;

/// The whole HTTP surface of `serve`, with `state` for its handlers.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let public = tracking(&state)
        .route(SETTINGS, get(source_settings))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found);
    let admin = Router::new()
        .route("/admin/query", post(admin_query))
        .route(
            "/admin/profile",
            post(|State(st): State<Arc<AppState>>, req: Request| async move {
                admin_profile(&st, req).await
            }),
        )
        .route(
            "/admin/regulations",
            get(admin_regulations).post(admin_regulations),
        )
        .method_not_allowed_fallback(method_not_allowed);
    let body_timeout = state.cfg.body_timeout;
    cors::allow_browsers(public)
        .merge(admin)
        .merge(crate::profile_api::router())
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            ps_http::deadline::deadline(body_timeout, req, next)
        }))
        .with_state(state)
}

/// `POST` on every tracking path, its body decoded under the endpoint's
/// limit.
fn tracking(state: &AppState) -> AppRouter {
    let limits = state.cfg.limits;
    TRACKING.iter().fold(Router::new(), |r, &(path, ep)| {
        let (limit, _) = ep.limit(&limits);
        let handler = ps_http::body::decoded(
            post(
                move |State(st): State<Arc<AppState>>, req: Request| async move {
                    track(&st, ep, req).await
                },
            ),
            limit,
        );
        r.route(path, handler.clone())
            .route(&format!("{path}/"), handler)
    })
}

/// The `/metrics` label of a request: its route's pattern, `other` when no
/// route matched.
fn label(matched: Option<&MatchedPath>) -> &str {
    match matched.map(MatchedPath::as_str) {
        Some(SETTINGS) => "/v1/projects/settings",
        Some(pattern) => pattern,
        None => "other",
    }
}

/// Counts every answer under its route's [`label`] and status.
async fn count(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    st.shared
        .metrics
        .request(label(matched.as_ref()), resp.status().as_u16());
    resp
}

async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::inbox::Position;
    use crate::state::Shared;
    use crate::writer::Append;
    use axum::body::{to_bytes, Body};
    use axum::http::HeaderMap;
    use serde_json::Value as Json;
    use std::io::Write;
    use tower::ServiceExt;

    /// The router over a state whose inbox writer acknowledges every record
    /// at once; source `src_1` has write key `wk_1`.
    fn app() -> Router {
        let (writer, appends) = std::sync::mpsc::channel::<Append>();
        std::thread::spawn(move || {
            for a in appends {
                if let Append::Record { done, .. } = a {
                    let _ = done.send(Ok(()));
                }
            }
        });
        let cfg = ServerConfig {
            admin_token: Some("tok".into()),
            ..ServerConfig::default()
        };
        let state = Arc::new(AppState {
            cfg,
            sources: [("wk_1".to_owned(), "src_1".to_owned())].into(),
            shared: Arc::new(Shared::new(
                Position {
                    segment: 0,
                    offset: 0,
                },
                0,
                0,
                1 << 20,
            )),
            writer,
            control: std::sync::mpsc::channel().0,
            log: None,
            log_ack_timeout: std::time::Duration::ZERO,
            query_slots: tokio::sync::Semaphore::new(1),
            space: "s".into(),
            class_keys: crate::edge::ClassKeys::default(),
            profile_rate: crate::profile_api::rate::RateLimit::new(100),
            profile_slots: tokio::sync::Semaphore::new(1),
        });
        router(state)
    }

    struct Answer {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }

        fn code(&self) -> String {
            let j: Json = serde_json::from_slice(&self.body).unwrap();
            j["code"].as_str().unwrap_or_default().to_owned()
        }
    }

    fn call(
        app: &Router,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(body)).unwrap();
        // The router times request bodies (server.body_timeout).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    const AUTH: (&str, &str) = ("Authorization", "Basic d2tfMTo="); // wk_1:

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn public_routes_answer_any_origin_and_admin_routes_none() {
        let app = app();
        let r = call(&app, "GET", "/health", &[], vec![]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("access-control-allow-credentials"), None);
        let shop = ("Origin", "https://shop.example");
        let r = call(&app, "GET", "/health", &[shop], vec![]);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://shop.example")
        );
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        let preflight = [
            shop,
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type,authorization",
            ),
        ];
        for path in ["/v1/t", "/v1/batch", "/nowhere"] {
            let r = call(&app, "OPTIONS", path, &preflight, vec![]);
            assert_eq!(r.status, 204, "{path}");
            assert_eq!(
                r.header("access-control-allow-origin"),
                Some("https://shop.example")
            );
            assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
            assert_eq!(
                r.header("access-control-allow-headers"),
                Some("content-type,authorization")
            );
            assert!(r
                .header("access-control-allow-methods")
                .unwrap()
                .contains("POST"));
            assert_eq!(r.header("access-control-max-age"), Some("86400"));
        }
        // Refusals of public routes carry CORS too, so a page can read them.
        let r = call(&app, "POST", "/v1/t", &[shop], b"{}".to_vec());
        assert_eq!((r.status, r.code().as_str()), (401, "missing_write_key"));
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://shop.example")
        );
        for (method, path) in [
            ("POST", "/admin/query"),
            ("GET", "/admin/regulations"),
            ("OPTIONS", "/admin/query"),
            ("GET", "/admin/query"),
        ] {
            let r = call(&app, method, path, &preflight, vec![]);
            assert!(
                r.headers
                    .keys()
                    .all(|k| !k.as_str().starts_with("access-control-")),
                "{method} {path}: {:?}",
                r.headers
            );
        }
    }

    #[test]
    fn unknown_paths_are_404_and_other_methods_405_in_json() {
        let app = app();
        for (method, path, allow) in [
            ("GET", "/v1/track", "POST"),
            ("PUT", "/v1/batch/", "POST"),
            ("POST", "/v1/projects/wk_1/settings", "GET,HEAD"),
            ("POST", "/health", "GET,HEAD"),
            ("GET", "/admin/query", "POST"),
            ("DELETE", "/admin/regulations", "GET,HEAD,POST"),
        ] {
            let r = call(&app, method, path, &[], vec![]);
            assert_eq!(
                (r.status, r.code().as_str()),
                (405, "method_not_allowed"),
                "{method} {path}"
            );
            assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
        for (method, path) in [
            ("POST", "/v2/track"),
            ("GET", "/"),
            ("GET", "/v1/projects/a/b/settings"),
            ("POST", "/admin/nothing"),
        ] {
            let r = call(&app, method, path, &[], vec![]);
            assert_eq!(
                (r.status, r.code().as_str()),
                (404, "not_found"),
                "{method} {path}"
            );
        }
        for key in ["wk_nobody", ""] {
            let r = call(
                &app,
                "GET",
                &format!("/v1/projects/{key}/settings"),
                &[],
                vec![],
            );
            assert_eq!((r.status, r.code().as_str()), (404, "unknown_write_key"));
        }
        let r = call(&app, "HEAD", "/v1/projects/wk_1/settings", &[], vec![]);
        assert_eq!(r.status, 200);
    }

    #[test]
    fn metrics_count_each_route_once_and_unknown_paths_together() {
        let app = app();
        let event = br#"{"userId":"u","event":"E"}"#.to_vec();
        for path in ["/v1/track", "/v1/t", "/v1/t/"] {
            let r = call(&app, "POST", path, &[AUTH], event.clone());
            assert_eq!(r.status, 200, "{path}");
        }
        call(&app, "GET", "/v1/track", &[], vec![]);
        for key in ["wk_1", "wk_secret_1", "wk_secret_2"] {
            call(
                &app,
                "GET",
                &format!("/v1/projects/{key}/settings"),
                &[],
                vec![],
            );
        }
        for path in ["/a", "/b/c", "/.env"] {
            call(&app, "GET", path, &[], vec![]);
        }
        call(
            &app,
            "OPTIONS",
            "/v1/t",
            &[("Origin", "https://x.example")],
            vec![],
        );
        let m = String::from_utf8(call(&app, "GET", "/metrics", &[], vec![]).body).unwrap();
        for series in [
            r#"{path="/v1/track",status="200"} 1"#,
            r#"{path="/v1/t",status="200"} 1"#,
            r#"{path="/v1/t/",status="200"} 1"#,
            r#"{path="/v1/t",status="204"} 1"#,
            r#"{path="/v1/track",status="405"} 1"#,
            r#"{path="/v1/projects/settings",status="200"} 1"#,
            r#"{path="/v1/projects/settings",status="404"} 2"#,
            r#"{path="other",status="404"} 3"#,
        ] {
            assert!(m.contains(series), "{series} in\n{m}");
        }
        assert!(!m.contains("secret") && !m.contains("{write_key}"), "{m}");
    }

    #[test]
    fn gzip_bodies_are_decoded_under_the_limits() {
        let app = app();
        let batch = br#"{"batch":[{"type":"track","userId":"u","event":"Zipped"}]}"#;
        for encoding in ["gzip", "x-gzip", "GZIP"] {
            let r = call(
                &app,
                "POST",
                "/v1/batch",
                &[AUTH, ("Content-Encoding", encoding)],
                gzip(batch),
            );
            assert_eq!(
                r.status,
                200,
                "{encoding}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
        let r = call(
            &app,
            "POST",
            "/v1/b",
            &[AUTH, ("Content-Encoding", "identity")],
            batch.to_vec(),
        );
        assert_eq!(r.status, 200);
        // A bomb: 20 KB inflating to 20 MB stops at the limit.
        let bomb = gzip(&vec![b' '; 20 << 20]);
        assert!(bomb.len() < 32 << 10, "{}", bomb.len());
        for (path, code) in [
            ("/v1/batch", "batch_too_large"),
            ("/v1/track", "event_too_large"),
        ] {
            let r = call(
                &app,
                "POST",
                path,
                &[AUTH, ("Content-Encoding", "gzip")],
                bomb.clone(),
            );
            assert_eq!((r.status, r.code().as_str()), (400, code), "{path}");
        }
        // Empty deflate blocks inflate to nothing: the raw bytes are capped
        // too, so such a stream is not read for ever.
        let mut endless = gzip(b"")[..10].to_vec();
        for _ in 0..(600 << 10) / 5 {
            endless.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
        }
        let r = call(
            &app,
            "POST",
            "/v1/batch",
            &[AUTH, ("Content-Encoding", "gzip")],
            endless,
        );
        assert_eq!((r.status, r.code().as_str()), (400, "batch_too_large"));
        let r = call(
            &app,
            "POST",
            "/v1/batch",
            &[AUTH, ("Content-Encoding", "gzip")],
            b"not gzip".to_vec(),
        );
        assert_eq!((r.status, r.code().as_str()), (400, "bad_gzip"));
        let r = call(
            &app,
            "POST",
            "/v1/batch",
            &[AUTH, ("Content-Encoding", "br")],
            batch.to_vec(),
        );
        assert_eq!((r.status, r.code().as_str()), (400, "unsupported_encoding"));
        let big = format!(
            r#"{{"userId":"u","event":"E","properties":{{"p":"{}"}}}}"#,
            "x".repeat(40 << 10)
        );
        let len = big.len().to_string();
        let r = call(
            &app,
            "POST",
            "/v1/t",
            &[AUTH, ("Content-Length", &len)],
            big.into_bytes(),
        );
        assert_eq!((r.status, r.code().as_str()), (400, "event_too_large"));
    }
}
