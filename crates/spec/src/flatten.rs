//! Flattening nested payloads into columns.
//!
//! Segment's warehouses store `context.page.url` as `context_page_url` and
//! `traits.address.city` as `address_city`: nested objects join their path with
//! `_`, each key going through [`snake_case`](crate::naming::snake_case); arrays
//! are kept whole as JSON text. Two keys that name the same column in one payload
//! (`userId` and `user_id`) keep the last value, and the collision is counted.

use crate::naming::{is_snake_case, to_snake_case};
use crate::tape::JsonRef;
use crate::value::Value;
use serde_json::Map;

/// What flattening had to drop or overwrite, for the sync summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlattenStats {
    /// Keys whose name snake-cases to nothing (`"$$"`, `"Ü"`).
    pub empty_names: u64,
    /// Keys that landed on a column an earlier key of the same payload had filled.
    pub collisions: u64,
}

/// An ordered list of columns; the order is first appearance, which becomes the
/// order columns are added to a table.
pub type Columns = Vec<(String, Value)>;

/// Flattens `obj` into `out`, with every column name starting with `prefix`
/// (`"context"` gives `context_…`; an empty prefix gives bare names).
/// JSON nulls are kept as [`Value::Null`]: for traits an explicit null means
/// "remove", and for event columns it is simply a NULL cell.
pub fn flatten_object(obj: JsonRef<'_>, prefix: &str, out: &mut Columns, stats: &mut FlattenStats) {
    for_each_doc_leaf(obj, prefix, |path, leaf| {
        if path.is_empty() {
            stats.empty_names += 1;
        } else {
            insert(out, path, Value::from_json(&leaf.to_json()), stats);
        }
    });
}

/// Calls `f(column_name, leaf)` for every leaf of `obj`, keys of each object
/// in byte order (a repeated key once, with its last value: the order and
/// the values a `serde_json` map would give). The name is empty when the
/// whole path snake-cases to nothing.
pub fn for_each_doc_leaf<'a>(obj: JsonRef<'a>, prefix: &str, mut f: impl FnMut(&str, JsonRef<'a>)) {
    walk(obj, &mut start(prefix), &mut f);
}

/// [`for_each_doc_leaf`] of a `serde_json` map (the identity engine keeps
/// profile traits as maps).
pub fn for_each_leaf<'a>(
    obj: &'a Map<String, serde_json::Value>,
    prefix: &str,
    mut f: impl FnMut(&str, &'a serde_json::Value),
) {
    let mut path = start(prefix);
    for (key, value) in obj {
        member(key, value, &mut path, &mut f);
    }
}

/// The path buffer; allocated only when a name has to be built (see
/// `member`).
fn start(prefix: &str) -> String {
    let mut path = String::new();
    if !prefix.is_empty() {
        path.reserve(64);
        path.push_str(prefix);
    }
    path
}

/// A JSON value flattening walks: a tape node or a `serde_json` value.
trait Tree<'a>: Copy {
    fn is_object(self) -> bool;
    /// `f(key, value)` for each member of an object, in `serde_json`'s map
    /// order; nothing for anything else.
    fn for_each_member(self, f: impl FnMut(&'a str, Self));
}

impl<'a> Tree<'a> for JsonRef<'a> {
    fn is_object(self) -> bool {
        JsonRef::is_object(&self)
    }

    fn for_each_member(self, f: impl FnMut(&'a str, Self)) {
        self.for_each_sorted_member(f);
    }
}

impl<'a> Tree<'a> for &'a serde_json::Value {
    fn is_object(self) -> bool {
        serde_json::Value::is_object(self)
    }

    fn for_each_member(self, mut f: impl FnMut(&'a str, Self)) {
        if let serde_json::Value::Object(m) = self {
            m.iter().for_each(|(k, v)| f(k, v));
        }
    }
}

fn walk<'a, T: Tree<'a>>(obj: T, path: &mut String, f: &mut impl FnMut(&str, T)) {
    obj.for_each_member(|key, value| member(key, value, path, f));
}

fn member<'a, T: Tree<'a>>(key: &str, value: T, path: &mut String, f: &mut impl FnMut(&str, T)) {
    // The usual key of a flat object (`plan`, `email`): its name is the key.
    if path.is_empty() && !value.is_object() && is_snake_case(key) {
        f(key, value);
        return;
    }
    let len = path.len();
    push_segment(path, &to_snake_case(key));
    if value.is_object() {
        walk(value, path, f);
    } else {
        f(path, value);
    }
    path.truncate(len);
}

fn push_segment(path: &mut String, seg: &str) {
    if seg.is_empty() {
        return;
    }
    if !path.is_empty() {
        path.push('_');
    }
    path.push_str(seg);
}

/// Inserts or overwrites a column, keeping first-appearance order.
pub fn insert(out: &mut Columns, name: &str, value: Value, stats: &mut FlattenStats) {
    if let Some(slot) = out.iter_mut().find(|(n, _)| n == name) {
        stats.collisions += 1;
        slot.1 = value;
    } else {
        out.push((name.to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(v: serde_json::Value, prefix: &str) -> (Columns, FlattenStats) {
        let mut out = Vec::new();
        let mut stats = FlattenStats::default();
        let doc = crate::tape::Doc::parse(v.to_string()).unwrap();
        flatten_object(doc.root(), prefix, &mut out, &mut stats);
        (out, stats)
    }

    #[test]
    fn nested_paths_and_arrays() {
        let (cols, stats) = flat(
            json!({"page": {"url": "u", "Referrer URL": "r"}, "userAgent": "ua", "tags": [1, 2], "empty": {}}),
            "context",
        );
        assert_eq!(
            cols,
            // Keys of one object come in byte order (serde_json's map).
            vec![
                ("context_page_referrer_url".into(), Value::Str("r".into())),
                ("context_page_url".into(), Value::Str("u".into())),
                ("context_tags".into(), Value::Str("[1,2]".into())),
                ("context_user_agent".into(), Value::Str("ua".into())),
            ]
        );
        assert_eq!(stats, FlattenStats::default());
    }

    #[test]
    fn collisions_keep_last_and_empty_names_drop() {
        let (cols, stats) = flat(
            json!({"userId": 1, "user_id": 2, "$$": 3, "a": {"Ü": 4}}),
            "",
        );
        assert_eq!(
            cols,
            // `userId` sorts before `user_id`, so `user_id`'s value is the last.
            vec![
                ("a".into(), Value::Int(4)),
                ("user_id".into(), Value::Int(2))
            ]
        );
        assert_eq!(stats.collisions, 1);
        assert_eq!(stats.empty_names, 1);
    }

    #[test]
    fn document_and_map_walks_agree() {
        let v = json!({"b": {"Z z": 1, "a": [1]}, "A": null, "userId": "u", "user_id": 2, "n": {"m": {"k": "deep"}}});
        let mut from_map = Vec::new();
        for_each_leaf(v.as_object().unwrap(), "p", |n, l| {
            from_map.push((n.to_owned(), l.clone()))
        });
        // Unsorted and with a repeated key, as SDKs may send it.
        let text = r#"{"userId":"x","n":{"m":{"k":"deep"}},"b":{"a":[1],"Z z":1},"user_id":2,"A":null,"userId":"u"}"#;
        let doc = crate::tape::Doc::parse(text.to_owned()).unwrap();
        let mut from_doc = Vec::new();
        for_each_doc_leaf(doc.root(), "p", |n, l| {
            from_doc.push((n.to_owned(), l.to_json()))
        });
        assert_eq!(from_doc, from_map);
    }
}
