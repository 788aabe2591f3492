//! What the edge adds to an event before validating or landing it, shared by
//! the HTTP handlers and the sync loop (which prepares the stored bytes
//! again): `type` from the endpoint, the batch's shared fields
//! ([`ps_spec::batch`]), `context.ip` for client-side libraries, and
//! message ids for events that came without one.

use serde_json::{Map, Value as Json};

/// `context.library.name` values of Segment's client-side libraries: events
/// from these get `context.ip` from the connection, as Segment does (a
/// server-side library's connection is the customer's server, not the user).
const CLIENT_LIBRARIES: &[&str] = &[
    "analytics.js",
    "analytics-next",
    "@segment/analytics-next",
    "analytics-ios",
    "analytics-android",
    "analytics-swift",
    "analytics-kotlin",
    "analytics-kotlin-android",
    "analytics-react-native",
    "@segment/analytics-react-native",
    "analytics-flutter",
    "analytics-xamarin",
];

/// What the server adds to an event before validating or landing it: `type`
/// from a single-call endpoint, the batch's top-level `context` and
/// `integrations` (Segment merges them into each event; the event's own keys
/// win), and `context.ip` from the connection for client-side libraries.
///
/// The edge validates the prepared event but stores the bytes the client
/// sent; the sync loop prepares them again before `Space::add`. Preparing is
/// idempotent, so both see the same event, and storing original bytes spares
/// the edge a serialization per event.
pub(crate) fn prepare(
    o: &mut Map<String, Json>,
    kind: Option<&str>,
    shared: Option<&Map<String, Json>>,
    peer_ip: Option<&str>,
) {
    if let Some(k) = kind {
        if matches!(o.get("type"), None | Some(Json::Null)) {
            o.insert("type".into(), Json::String(k.to_owned()));
        }
    }
    if let Some(shared) = shared {
        ps_spec::batch::merge_shared(o, shared);
    }
    if let (Some(ip), Some(Json::Object(ctx))) = (peer_ip, o.get_mut("context")) {
        let client = ctx
            .get("library")
            .and_then(|l| l.get("name"))
            .and_then(Json::as_str)
            .is_some_and(|n| CLIENT_LIBRARIES.contains(&n));
        if client && matches!(ctx.get("ip"), None | Some(Json::Null)) {
            ctx.insert("ip".into(), Json::String(ip.to_owned()));
        }
    }
}

/// A unique id for events that came without a `messageId` (and for inbox
/// ids): a random UUID v4. HTTP events have no stable bytes to hash (a
/// retried request is a new request), unlike file lines.
pub(crate) fn unique_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
