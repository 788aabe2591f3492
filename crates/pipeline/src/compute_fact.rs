//! How the pipeline makes compute's facts small: a profile keeps one
//! [`Fact`] per matching event for as long as it lives, and with `event =
//! "*"` every event matches, so the facts are most of compute's memory.
//!
//! An [`Interner`] holds what facts share: the event names (each fact
//! points at one copy) and the paths the definitions read (each value a
//! fact holds is paired with a pointer to its path). A fact then holds its
//! message id and a flat list of the values the definitions read, not a
//! copy of the event's nested objects.
//!
//! Only the values read *on events of its name*: a path is read on the
//! events of the definition that reads it (a `sum` of `revenue` over
//! `Order Completed` reads `properties.revenue` on orders only), so a page
//! view holds no `revenue` even when it has one, and most events (pages,
//! screens, identifies under `event = "*"`) need no lookup at all. Every
//! way a fact is made (on the tape as events arrive, from JSON read back
//! from the tables, a stored fact narrowed to new definitions) reads the
//! same paths per name, so the facts of one event are equal whichever way
//! they were made.

use ps_compute::evaluate::Values;
use ps_compute::{EventMatch, Fact};
use ps_spec::tape::JsonRef;
use serde_json::Value as Json;
use std::sync::Arc;

/// The paths read on events of one name, each a shared copy, sorted.
type Keys = Arc<[Arc<[String]>]>;

/// What facts share (names, paths), and which paths are read on events of
/// which name.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    /// Each name seen, with the paths read on its events. Looked up for
    /// every event a definition looks at: hashed with foldhash.
    names: hashbrown::HashMap<Arc<str>, Keys>,
    /// Every (events, path) a definition reads: a computed trait's
    /// `property` and filters on the events it counts, an audience event
    /// condition's filters on its events.
    reads: Vec<(EventMatch, Arc<[String]>)>,
    /// Every path read on some event, sorted.
    keys: Vec<Arc<[String]>>,
}

impl Interner {
    /// An interner for the definitions' `reads`: (events, path) pairs.
    pub(crate) fn new(reads: &[(EventMatch, Vec<String>)]) -> Interner {
        let mut keys: Vec<Arc<[String]>> =
            reads.iter().map(|(_, p)| Arc::from(p.as_slice())).collect();
        keys.sort();
        keys.dedup();
        let reads = reads
            .iter()
            .map(|(m, p)| {
                let k = keys
                    .iter()
                    .find(|k| k[..] == p[..])
                    .expect("listed")
                    .clone();
                (m.clone(), k)
            })
            .collect();
        Interner {
            names: hashbrown::HashMap::new(),
            reads,
            keys,
        }
    }

    /// An interner that reads every one of `paths` on every event (state
    /// written before facts were narrowed per name was reduced so).
    #[cfg(test)]
    pub(crate) fn reading_all(paths: &[Vec<String>]) -> Interner {
        let reads: Vec<(EventMatch, Vec<String>)> =
            paths.iter().map(|p| (EventMatch::All, p.clone())).collect();
        Interner::new(&reads)
    }

    /// The shared copy of `name`, and the paths read on its events.
    fn entry(&mut self, name: &str) -> (Arc<str>, Keys) {
        if let Some((n, k)) = self.names.get_key_value(name) {
            return (n.clone(), k.clone());
        }
        let n: Arc<str> = Arc::from(name);
        let mut keys: Vec<Arc<[String]>> = self
            .reads
            .iter()
            .filter(|(m, _)| m.matches(name))
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        keys.dedup();
        let keys: Keys = keys.into();
        self.names.insert(n.clone(), keys.clone());
        (n, keys)
    }

    /// The shared copy of `name`.
    pub(crate) fn name(&mut self, name: &str) -> Arc<str> {
        self.entry(name).0
    }

    /// Every path read on some event, sorted.
    pub(crate) fn paths(&self) -> Vec<Vec<String>> {
        self.keys.iter().map(|k| k.to_vec()).collect()
    }

    /// The paths read on events named `name`.
    pub(crate) fn paths_of(&mut self, name: &str) -> Keys {
        self.entry(name).1
    }

    /// The shared copy of `path` when a definition reads it.
    pub(crate) fn key(&self, path: &[String]) -> Arc<[String]> {
        self.keys
            .iter()
            .find(|k| k[..] == *path)
            .cloned()
            .unwrap_or_else(|| Arc::from(path))
    }

    /// A fact with a shared name and the `values` given (already reduced).
    pub(crate) fn fact(&mut self, name: &str, timestamp: i64, id: &str, values: Values) -> Fact {
        Fact::reduced(self.name(name), timestamp, id, values)
    }

    /// The fact of an event (on the tape): its values at the paths read on
    /// events of its name. This runs for every event a definition looks
    /// at; most events are of names no path is read on, and need no
    /// lookup at all. The paths (sorted) that start with the same key find
    /// that key once: each lookup on the tape scans an object's members. A
    /// definition's path is never empty (`ps_compute::Path::parse`).
    pub(crate) fn fact_on_tape(
        &mut self,
        name: &str,
        timestamp: i64,
        id: &str,
        root: JsonRef<'_>,
    ) -> Fact {
        let (name, keys) = self.entry(name);
        let mut out = Vec::new();
        let mut rest = &keys[..];
        while let Some(k) = rest.first() {
            let first = &k[0];
            let n = rest.iter().take_while(|p| p[0] == *first).count();
            let (group, tail) = rest.split_at(n);
            rest = tail;
            let Some(head) = root.get(first) else {
                continue;
            };
            for k in group {
                if let Some(v) = k[1..].iter().try_fold(head, |v, s| v.get(s)) {
                    let v = v.to_json();
                    if !v.is_null() {
                        out.push((k.clone(), v));
                    }
                }
            }
        }
        Fact::reduced(name, timestamp, id, out.into())
    }

    /// The fact of an event given as a JSON object (read back from the
    /// tables, or stored before facts were flat).
    pub(crate) fn fact_of(&mut self, name: &str, timestamp: i64, id: &str, event: &Json) -> Fact {
        let (name, keys) = self.entry(name);
        let values = values_by(&keys, |k| {
            k.iter().try_fold(event, |v, s| v.get(s)).cloned()
        });
        Fact::reduced(name, timestamp, id, values)
    }

    /// `f` holding only the values read on events of its name.
    pub(crate) fn narrow(&mut self, f: &Fact) -> Fact {
        let (name, keys) = self.entry(&f.name);
        let values = values_by(&keys, |k| f.get(k).cloned());
        Fact::reduced(name, f.timestamp, &f.message_id, values)
    }
}

/// The value `read` gives at each of `keys`, missing and `null` ones left
/// out.
fn values_by(keys: &[Arc<[String]>], read: impl Fn(&[String]) -> Option<Json>) -> Values {
    keys.iter()
        .filter_map(|k| {
            let v = read(k)?;
            (!v.is_null()).then(|| (k.clone(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(s: &str) -> Vec<String> {
        s.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn facts_share_names_and_keep_only_the_values_read() {
        let mut i = Interner::reading_all(&[path("context.locale"), path("properties.total")]);
        let ev = json!({"properties": {"total": 5, "other": 1}, "context": {"locale": null}});
        let a = i.fact_of("Order Completed", 1, "m1", &ev);
        let b = i.fact("Order Completed", 2, "m2", Box::new([]));
        assert!(Arc::ptr_eq(&a.name, &b.name));
        assert_eq!(a.values().len(), 1, "null and unread values are left out");
        assert_eq!(a.get(&path("properties.total")), Some(&json!(5)));
        assert_eq!(a.get(&path("properties.other")), None);
        // A whole-event fact narrows to the same values.
        let whole = Fact::new("Order Completed", 1, "m1", ev);
        assert_eq!(whole.get(&path("properties.other")), Some(&json!(1)));
        assert_eq!(i.narrow(&whole), a);
    }

    #[test]
    fn each_name_keeps_only_the_paths_read_on_its_events() {
        let names = |n: &[&str]| EventMatch::Names(n.iter().map(|s| s.to_string()).collect());
        let mut i = Interner::new(&[
            (names(&["Order Completed"]), path("properties.total")),
            (
                names(&["Order Completed", "Product Viewed"]),
                path("properties.currency"),
            ),
            (EventMatch::All, path("context.locale")),
        ]);
        let ev = json!({
            "properties": {"total": 5, "currency": "USD", "category": "shoes"},
            "context": {"locale": "en-GB"},
        });
        let doc = ps_spec::tape::Doc::parse(ev.to_string()).unwrap();
        let keys =
            |f: &Fact| -> Vec<String> { f.values().iter().map(|(k, _)| k.join(".")).collect() };
        for (name, want) in [
            (
                "Order Completed",
                vec!["context.locale", "properties.currency", "properties.total"],
            ),
            (
                "Product Viewed",
                vec!["context.locale", "properties.currency"],
            ),
            ("Page Viewed", vec!["context.locale"]),
        ] {
            let on_tape = i.fact_on_tape(name, 1, "m1", doc.root());
            assert_eq!(keys(&on_tape), want, "{name} on the tape");
            assert_eq!(on_tape, i.fact_of(name, 1, "m1", &ev), "{name} from JSON");
            let whole = Fact::new(name, 1, "m1", ev.clone());
            assert_eq!(i.narrow(&whole), on_tape, "{name} narrowed");
        }
        assert_eq!(i.paths().len(), 3, "every path read on some event");
    }

    #[test]
    fn values_on_the_tape_are_the_values_of_the_json() {
        let mut i = Interner::reading_all(&[
            path("properties.total"),
            path("context.locale"),
            path("properties.product.category"),
            path("properties.missing"),
            path("context.app.name"),
            path("event"),
        ]);
        let ev = json!({
            "event": "Order Completed",
            "properties": {"total": 5.5, "product": {"category": "shoes"}, "other": [1]},
            "context": {"locale": "en-GB", "app": null},
        });
        let doc = ps_spec::tape::Doc::parse(ev.to_string()).unwrap();
        let on_tape = i.fact_on_tape("Order Completed", 1, "m1", doc.root());
        assert_eq!(on_tape, i.fact_of("Order Completed", 1, "m1", &ev));
        assert_eq!(on_tape.values().len(), 4);
    }
}
