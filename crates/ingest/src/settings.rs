//! The settings document analytics.js asks for before it sends anything:
//! `GET /v1/projects/<writeKey>/settings`.
//!
//! Segment's CDN answers it with the source's destinations and options; here
//! it holds only the `Segment.io` integration, pointed at this server, so a
//! page can load analytics.js with `cdnURL` set to profiles-sync and send
//! its events here with nothing else configured.

use serde_json::{json, Value as Json};

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

/// The write key of a settings path, `/v1/projects/<writeKey>/settings`.
pub(crate) fn write_key_of(path: &str) -> Option<&str> {
    let key = path
        .strip_prefix("/v1/projects/")?
        .strip_suffix("/settings")?;
    (!key.is_empty() && !key.contains('/')).then_some(key)
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
        assert_eq!(write_key_of("/v1/projects/wk_1/settings"), Some("wk_1"));
        for bad in [
            "/v1/projects//settings",
            "/v1/projects/a/b/settings",
            "/v1/projects/wk_1",
        ] {
            assert_eq!(write_key_of(bad), None, "{bad}");
        }
    }
}
