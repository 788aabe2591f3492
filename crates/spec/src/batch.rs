//! Batch bodies: what a `{"batch": [...], ...}` body gives each of its events.
//!
//! Segment's batch endpoint takes events under `batch` and, beside them, a
//! `writeKey`, a `sentAt` (for clock-skew correction) and objects that apply
//! to every event: `context` and `integrations`. An event's own keys win; a
//! key the event lacks (or has as `null`) comes from the batch. The HTTP
//! edge and the file reader both read batch bodies, and both apply these
//! rules through this module, so a body gives the same rows whichever way it
//! arrives.

use serde_json::{Map, Value as Json};

/// Top-level keys of a batch body whose objects apply to every event.
pub const SHARED_KEYS: [&str; 2] = ["context", "integrations"];

/// The shared objects of a batch body: the [`SHARED_KEYS`] whose values
/// are objects, read with `get` (a top-level member by name, its last value
/// if the name repeats), so only those members are ever copied.
pub fn shared_fields(get: impl Fn(&str) -> Option<Json>) -> Map<String, Json> {
    SHARED_KEYS
        .iter()
        .filter_map(|k| get(k).filter(Json::is_object).map(|v| ((*k).to_owned(), v)))
        .collect()
}

/// Merges a batch's shared objects into one event: a shared key the event
/// lacks (or has as `null`) is copied whole; when both are objects, the
/// batch's members fill in the ones the event lacks. The event's own values
/// always win, and a non-object value of the event is left alone.
pub fn merge_shared(event: &mut Map<String, Json>, shared: &Map<String, Json>) {
    for (key, add) in shared {
        let Json::Object(add) = add else { continue };
        match event.get_mut(key) {
            Some(Json::Object(own)) => {
                for (k, v) in add {
                    if !own.contains_key(k) {
                        own.insert(k.clone(), v.clone());
                    }
                }
            }
            None | Some(Json::Null) => {
                event.insert(key.clone(), Json::Object(add.clone()));
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn only_context_and_integrations_objects_are_shared() {
        let body = map(json!({
            "batch": [], "writeKey": "k", "sentAt": "2024-01-01T00:00:00Z",
            "context": {"ip": "1.2.3.4"}, "integrations": {"All": false}, "extra": {"a": 1}
        }));
        let shared = shared_fields(|k| body.get(k).cloned());
        assert_eq!(
            Json::Object(shared),
            json!({"context": {"ip": "1.2.3.4"}, "integrations": {"All": false}})
        );
        let odd = map(json!({"context": "text"}));
        assert!(shared_fields(|k| odd.get(k).cloned()).is_empty());
    }

    #[test]
    fn the_events_own_values_win_and_missing_ones_come_from_the_batch() {
        let shared = map(
            json!({"context": {"ip": "1.2.3.4", "locale": "en"}, "integrations": {"All": false}}),
        );
        let mut e = map(json!({"context": {"ip": "9.9.9.9"}, "integrations": null}));
        merge_shared(&mut e, &shared);
        assert_eq!(
            Json::Object(e),
            json!({"context": {"ip": "9.9.9.9", "locale": "en"}, "integrations": {"All": false}})
        );
        let mut e = map(json!({"context": 5}));
        merge_shared(&mut e, &shared);
        assert_eq!(e["context"], json!(5));
    }
}
