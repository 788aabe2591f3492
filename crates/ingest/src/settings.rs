//! The settings document analytics.js asks for before it sends anything:
//! `GET /v1/projects/<writeKey>/settings`.
//!
//! Segment's CDN answers it with the source's destinations and options; here
//! it holds only the `Segment.io` integration, pointed at this server, so a
//! page can load analytics.js with `cdnURL` set to profiles-sync and send
//! its events here with nothing else configured.

use crate::edge::{error, json_response, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// `GET /v1/projects/<writeKey>/settings`: the [`document`] for a known
/// write key, 404 for one no source has. It points analytics.js at the
/// `Host` the request came to, over `https` when a proxy in front says so
/// (`X-Forwarded-Proto`).
pub(crate) async fn source_settings(
    State(st): State<Arc<AppState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !st.sources.contains_key(&key) {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_write_key",
            "no source has this write key",
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| st.cfg.listen.to_string(), str::to_owned);
    let protocol = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    json_response(StatusCode::OK, &document(&key, &host, protocol))
}

/// The settings for a source with `write_key`, served at `host` (the
/// request's `Host`) over `protocol` (`http` or `https`).
pub(crate) fn document(write_key: &str, host: &str, protocol: &str) -> Json {
    json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": format!("{host}/v1"),
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": true,
                "maybeBundledConfigIds": {},
                "versionSettings": { "version": "4.4.7", "componentTypes": ["browser"] }
            }
        },
        "plan": {
            "track": { "__default": { "enabled": true, "integrations": {} } },
            "identify": { "__default": { "enabled": true } },
            "group": { "__default": { "enabled": true } }
        },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": { "sampleRate": 0 },
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": []
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_points_analytics_js_here() {
        let d = document("wk_1", "127.0.0.1:8088", "http");
        let s = &d["integrations"]["Segment.io"];
        assert_eq!(s["apiKey"], "wk_1");
        assert_eq!(s["apiHost"], "127.0.0.1:8088/v1");
        assert_eq!(s["protocol"], "http");
    }
}
