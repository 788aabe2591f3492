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
pub fn prepare(
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

/// The stored bytes of an event as the pipeline's parsed document, when
/// [`prepare`] would not change the event: it has a `type` (or the record
/// has no endpoint type to give), the batch shares no fields, and no
/// `context.ip` is due (no peer address, not a client-side library, or an
/// ip already there). Most server-side traffic is like this, and it then
/// goes from bytes to the pipeline's tape once, without a `serde_json`
/// value and its re-serialization. `None`: prepare it the long way (which
/// also words the refusal of bytes that are not JSON).
pub fn unchanged(
    bytes: &[u8],
    kind: Option<&str>,
    shared: Option<&Map<String, Json>>,
    peer_ip: Option<&str>,
) -> Option<ps_spec::tape::Doc> {
    use ps_spec::tape::Kind;
    if shared.is_some_and(|m| !m.is_empty()) {
        return None;
    }
    let doc = ps_spec::tape::Doc::parse(std::str::from_utf8(bytes).ok()?.to_owned()).ok()?;
    let root = doc.root();
    if !root.is_object() {
        return None;
    }
    let present = |v: Option<ps_spec::tape::JsonRef<'_>>| v.is_some_and(|v| v.kind() != Kind::Null);
    if kind.is_some() && !present(root.get("type")) {
        return None;
    }
    if peer_ip.is_some() {
        if let Some(ctx) = root.get("context").filter(|c| c.is_object()) {
            let client = ctx
                .get("library")
                .and_then(|l| l.get("name"))
                .and_then(|n| n.as_str())
                .is_some_and(|n| CLIENT_LIBRARIES.contains(&n));
            if client && !present(ctx.get("ip")) {
                return None;
            }
        }
    }
    Some(doc)
}

/// A unique id for events that came without a `messageId` (and for inbox
/// ids): a random UUID v4. HTTP events have no stable bytes to hash (a
/// retried request is a new request), unlike file lines.
pub fn unique_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `unchanged` answers only where `prepare` changes nothing, and then
    /// with the same event.
    #[test]
    fn unchanged_only_where_prepare_changes_nothing() {
        let shared_some = json!({"context": {"app": {"name": "x"}}});
        let shared_some = shared_some.as_object();
        let empty = Map::new();
        // (event, endpoint type, the batch's shared fields, peer address)
        type Case<'a> = (
            Json,
            Option<&'a str>,
            Option<&'a Map<String, Json>>,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                json!({"type": "track", "event": "A", "userId": "u"}),
                Some("track"),
                None,
                None,
            ),
            (
                json!({"event": "A", "userId": "u"}),
                Some("track"),
                None,
                None,
            ),
            (
                json!({"type": null, "event": "A"}),
                Some("track"),
                None,
                None,
            ),
            (json!({"event": "A", "userId": "u"}), None, None, None),
            (
                json!({"type": "track", "userId": "u"}),
                None,
                shared_some,
                None,
            ),
            (
                json!({"type": "track", "userId": "u"}),
                None,
                Some(&empty),
                None,
            ),
            (
                json!({"type": "page", "context": {"library": {"name": "analytics.js"}}}),
                None,
                None,
                Some("10.0.0.1"),
            ),
            (
                json!({"type": "page", "context": {"library": {"name": "analytics.js"}, "ip": "1.2.3.4"}}),
                None,
                None,
                Some("10.0.0.1"),
            ),
            (
                json!({"type": "page", "context": {"library": {"name": "analytics-python"}}}),
                None,
                None,
                Some("10.0.0.1"),
            ),
            (
                json!({"type": "page", "context": "text"}),
                None,
                None,
                Some("10.0.0.1"),
            ),
            (json!(["not", "an", "object"]), None, None, None),
        ];
        let mut fast = 0;
        for (i, (ev, kind, shared, ip)) in cases.into_iter().enumerate() {
            let bytes = ev.to_string().into_bytes();
            let mut prepared = ev.clone();
            if let Json::Object(o) = &mut prepared {
                prepare(o, kind, shared, ip);
            }
            match unchanged(&bytes, kind, shared, ip) {
                Some(doc) => {
                    fast += 1;
                    assert_eq!(prepared, ev, "case {i}: prepare changed it");
                    assert_eq!(doc.root().to_json(), ev, "case {i}");
                }
                None => assert!(
                    prepared != ev || !ev.is_object() || shared.is_some_and(|m| !m.is_empty()),
                    "case {i}: prepare changes nothing, yet no fast path"
                ),
            }
        }
        assert_eq!(fast, 6);
        assert!(unchanged(b"{not json", None, None, None).is_none());
    }
}
