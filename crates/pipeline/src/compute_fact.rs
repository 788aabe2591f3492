//! How the pipeline makes compute's facts small: a profile keeps one
//! [`Fact`] per matching event for as long as it lives, and with `event =
//! "*"` every event matches, so the facts are most of compute's memory.
//!
//! An [`Interner`] holds what facts share: the event names (each fact
//! points at one copy) and the paths the definitions read (each value a
//! fact holds is paired with a pointer to its path). A fact then holds its
//! message id and a flat list of the values the definitions read, not a
//! copy of the event's nested objects.

use ps_compute::evaluate::Values;
use ps_compute::Fact;
use ps_spec::tape::JsonRef;
use serde_json::Value as Json;
use std::collections::HashSet;
use std::sync::Arc;

/// The names and paths facts share.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    names: HashSet<Arc<str>>,
    /// The paths (from the event's root) the definitions read, sorted.
    keys: Vec<Arc<[String]>>,
}

impl Interner {
    /// An interner for the definitions' `paths`.
    pub(crate) fn new(paths: &[Vec<String>]) -> Interner {
        let mut keys: Vec<Arc<[String]>> = paths.iter().map(|p| Arc::from(p.as_slice())).collect();
        keys.sort();
        keys.dedup();
        Interner {
            names: HashSet::new(),
            keys,
        }
    }

    /// The shared copy of `name`.
    pub(crate) fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.names.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.names.insert(n.clone());
        n
    }

    /// The definitions' paths, sorted.
    pub(crate) fn paths(&self) -> Vec<Vec<String>> {
        self.keys.iter().map(|k| k.to_vec()).collect()
    }

    /// The shared copy of `path` when a definition reads it.
    pub(crate) fn key(&self, path: &[String]) -> Arc<[String]> {
        self.keys
            .iter()
            .find(|k| k[..] == *path)
            .cloned()
            .unwrap_or_else(|| Arc::from(path))
    }

    /// A fact with a shared name.
    pub(crate) fn fact(&mut self, name: &str, timestamp: i64, id: &str, values: Values) -> Fact {
        Fact::reduced(self.name(name), timestamp, id, values)
    }

    /// The values of an event (on the tape) at the definitions' paths.
    /// This runs for every event a definition looks at, so the paths
    /// (sorted) that start with the same key find that key once: each
    /// lookup on the tape scans an object's members. A definition's path
    /// is never empty (`ps_compute::Path::parse`).
    pub(crate) fn values_on_tape(&self, root: JsonRef<'_>) -> Values {
        let mut out = Vec::new();
        let mut rest = &self.keys[..];
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
        out.into()
    }

    /// The values of an event (a JSON object) at the definitions' paths.
    pub(crate) fn values_of(&self, event: &Json) -> Values {
        self.values_by(|k| k.iter().try_fold(event, |v, s| v.get(s)).cloned())
    }

    /// `f` holding only the values at the definitions' paths.
    pub(crate) fn narrow(&mut self, f: &Fact) -> Fact {
        let values = self.values_by(|k| f.get(k).cloned());
        self.fact(&f.name, f.timestamp, &f.message_id, values)
    }

    /// The value `read` gives at each of the definitions' paths, missing
    /// and `null` ones left out.
    fn values_by(&self, read: impl Fn(&[String]) -> Option<Json>) -> Values {
        self.keys
            .iter()
            .filter_map(|k| {
                let v = read(k)?;
                (!v.is_null()).then(|| (k.clone(), v))
            })
            .collect()
    }
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
        let mut i = Interner::new(&[path("context.locale"), path("properties.total")]);
        let ev = json!({"properties": {"total": 5, "other": 1}, "context": {"locale": null}});
        let a = i.fact("Order Completed", 1, "m1", i.values_of(&ev));
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
    fn values_on_the_tape_are_the_values_of_the_json() {
        let i = Interner::new(&[
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
        let on_tape = i.values_on_tape(doc.root());
        assert_eq!(on_tape, i.values_of(&ev));
        assert_eq!(on_tape.len(), 4);
    }
}
