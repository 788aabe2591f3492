//! Operators and paths: how a condition reads a value and compares it.
//!
//! A missing value (no such path, or JSON `null`) satisfies only
//! `not_exists`, as a SQL `NULL` would: `not_equals "USD"` does not select
//! events without a currency.

use ps_spec::time::parse_timestamp;
use serde_json::Value as Json;
use std::cmp::Ordering;

/// Where a value is read in an event: under `properties` (the default, dots
/// nest: `product.category`), under `context` (`context.…`), or the event's
/// `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// The event's timestamp, as an ISO-8601 string.
    Timestamp,
    /// Keys from the event's root (`["properties", "product", "category"]`).
    Keys(Vec<String>),
}

impl Path {
    /// Parses a definition's path; `None` for an empty one or an empty step.
    pub fn parse(s: &str) -> Option<Path> {
        if s == "timestamp" {
            return Some(Path::Timestamp);
        }
        let steps: Vec<String> = s.split('.').map(str::to_owned).collect();
        if steps.iter().any(String::is_empty) {
            return None;
        }
        Some(Path::Keys(if steps[0] == "context" {
            steps
        } else {
            std::iter::once("properties".to_owned())
                .chain(steps)
                .collect()
        }))
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal (numbers by value: `1` equals `1.0`).
    Equals,
    /// Present and not equal.
    NotEquals,
    /// Numbers (or two strings) less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// A string containing the operand, or an array with an equal element.
    Contains,
    /// Present and not containing.
    NotContains,
    /// A string starting with the operand.
    StartsWith,
    /// A string ending with the operand.
    EndsWith,
    /// Present (not missing, not `null`).
    Exists,
    /// Missing or `null`.
    NotExists,
    /// Equal to one of the operand's elements.
    OneOf,
    /// Present and equal to none of the operand's elements.
    NoneOf,
    /// A timestamp before the operand's.
    BeforeDate,
    /// A timestamp after the operand's.
    AfterDate,
    /// A timestamp within the duration before `as_of`.
    WithinLast,
    /// A timestamp within the duration after `as_of`.
    WithinNext,
    /// A timestamp earlier than the duration before `as_of`.
    BeforeLast,
    /// A timestamp later than the duration after `as_of`.
    AfterNext,
}

/// Every operator with its name in definitions.
pub const OPS: [(&str, Op); 20] = [
    ("equals", Op::Equals),
    ("not_equals", Op::NotEquals),
    ("lt", Op::Lt),
    ("lte", Op::Lte),
    ("gt", Op::Gt),
    ("gte", Op::Gte),
    ("contains", Op::Contains),
    ("not_contains", Op::NotContains),
    ("starts_with", Op::StartsWith),
    ("ends_with", Op::EndsWith),
    ("exists", Op::Exists),
    ("not_exists", Op::NotExists),
    ("one_of", Op::OneOf),
    ("none_of", Op::NoneOf),
    ("before_date", Op::BeforeDate),
    ("after_date", Op::AfterDate),
    ("within_last", Op::WithinLast),
    ("within_next", Op::WithinNext),
    ("before_last", Op::BeforeLast),
    ("after_next", Op::AfterNext),
];

impl Op {
    /// The operator named `s`.
    pub fn parse(s: &str) -> Option<Op> {
        OPS.iter().find(|(n, _)| *n == s).map(|(_, op)| *op)
    }

    /// Its name in definitions.
    pub fn name(self) -> &'static str {
        OPS.iter()
            .find(|(_, op)| *op == self)
            .map(|(n, _)| *n)
            .expect("every op is named")
    }

    /// Whether the operand is a duration (`"30d"`) compared with `as_of`.
    pub fn takes_duration(self) -> bool {
        matches!(
            self,
            Op::WithinLast | Op::WithinNext | Op::BeforeLast | Op::AfterNext
        )
    }

    /// Whether the operator needs no operand.
    pub fn takes_no_value(self) -> bool {
        matches!(self, Op::Exists | Op::NotExists)
    }

    /// The instants at which [`Op::test`] of `value` may give a different
    /// answer than just before: for the operators that compare a time with
    /// `as_of` (the others do not depend on it, and give none). With `t` the
    /// value's time and `d` the duration: `within_last` holds on `[t, t+d]`,
    /// `within_next` on `[t-d, t]`, `before_last` after `t+d`, `after_next`
    /// before `t-d`.
    pub fn change_points(self, value: Option<&Json>, duration: Option<i64>) -> Vec<i64> {
        let (Some(t), Some(d)) = (value.and_then(time_of), duration) else {
            return Vec::new();
        };
        match self {
            Op::WithinLast => vec![t, t.saturating_add(d).saturating_add(1)],
            Op::WithinNext => vec![t.saturating_sub(d), t.saturating_add(1)],
            Op::BeforeLast => vec![t.saturating_add(d).saturating_add(1)],
            Op::AfterNext => vec![t.saturating_sub(d)],
            _ => Vec::new(),
        }
    }

    /// Whether `value` (`None`: missing) passes `self operand` at `as_of`
    /// (microseconds). `duration` is the operand parsed as a duration, for
    /// the operators that take one.
    pub fn test(
        self,
        value: Option<&Json>,
        operand: &Json,
        duration: Option<i64>,
        as_of: i64,
    ) -> bool {
        let Some(v) = value.filter(|v| !v.is_null()) else {
            return self == Op::NotExists;
        };
        match self {
            Op::Exists => true,
            Op::NotExists => false,
            Op::Equals => json_eq(v, operand),
            Op::NotEquals => !json_eq(v, operand),
            Op::Lt | Op::Lte | Op::Gt | Op::Gte => match compare(v, operand) {
                Some(o) => match self {
                    Op::Lt => o == Ordering::Less,
                    Op::Lte => o != Ordering::Greater,
                    Op::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                },
                None => false,
            },
            Op::Contains => contains(v, operand),
            Op::NotContains => !contains(v, operand),
            Op::StartsWith => str_pair(v, operand).is_some_and(|(a, b)| a.starts_with(b)),
            Op::EndsWith => str_pair(v, operand).is_some_and(|(a, b)| a.ends_with(b)),
            Op::OneOf => operand
                .as_array()
                .is_some_and(|a| a.iter().any(|o| json_eq(v, o))),
            Op::NoneOf => operand
                .as_array()
                .is_some_and(|a| !a.iter().any(|o| json_eq(v, o))),
            Op::BeforeDate | Op::AfterDate => match (time_of(v), time_of(operand)) {
                (Some(t), Some(o)) if self == Op::BeforeDate => t < o,
                (Some(t), Some(o)) => t > o,
                _ => false,
            },
            Op::WithinLast | Op::WithinNext | Op::BeforeLast | Op::AfterNext => {
                match (time_of(v), duration) {
                    (Some(t), Some(d)) => match self {
                        Op::WithinLast => as_of - d <= t && t <= as_of,
                        Op::WithinNext => as_of <= t && t <= as_of + d,
                        Op::BeforeLast => t < as_of - d,
                        _ => t > as_of + d,
                    },
                    _ => false,
                }
            }
        }
    }
}

/// JSON equality, numbers by value.
pub fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Numbers by value, or two strings by bytes; anything else is not ordered.
fn compare(a: &Json, b: &Json) -> Option<Ordering> {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Json::String(x), Json::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn contains(v: &Json, operand: &Json) -> bool {
    match v {
        Json::String(s) => operand.as_str().is_some_and(|o| s.contains(o)),
        Json::Array(items) => items.iter().any(|i| json_eq(i, operand)),
        _ => false,
    }
}

fn str_pair<'a>(a: &'a Json, b: &'a Json) -> Option<(&'a str, &'a str)> {
    Some((a.as_str()?, b.as_str()?))
}

/// A value as a time in microseconds: an ISO-8601 timestamp, or a date
/// (`2024-02-01`, midnight UTC).
fn time_of(v: &Json) -> Option<i64> {
    let s = v.as_str()?;
    parse_timestamp(s).or_else(|| {
        let date = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
        date.then(|| parse_timestamp(&format!("{s}T00:00:00Z")))
            .flatten()
    })
}

/// A total order over JSON values, for "the smallest value" (ties of
/// `most_frequent`, `unique_list`): null < booleans < numbers < strings <
/// arrays < objects, numbers by value, strings by bytes, the rest by their
/// JSON text.
pub fn total_cmp(a: &Json, b: &Json) -> Ordering {
    fn rank(v: &Json) -> u8 {
        match v {
            Json::Null => 0,
            Json::Bool(_) => 1,
            Json::Number(_) => 2,
            Json::String(_) => 3,
            Json::Array(_) => 4,
            Json::Object(_) => 5,
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Json::String(x), Json::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn paths_read_properties_context_and_the_timestamp() {
        let e = json!({"properties": {"product": {"category": "shoes"}, "n": null}, "context": {"locale": "en"}});
        let ts = json!("2024-01-01T00:00:00.000Z");
        let fact = crate::Fact::new("Order Completed", 1_704_067_200_000_000, "m1", e);
        let read = |p: &str| fact.read(&Path::parse(p).unwrap()).map(|v| v.into_owned());
        assert_eq!(read("product.category"), Some(json!("shoes")));
        assert_eq!(read("context.locale"), Some(json!("en")));
        assert_eq!(read("timestamp"), Some(ts.clone()));
        assert_eq!(read("n"), None);
        assert_eq!(read("missing.deep"), None);
        assert!(Path::parse("a..b").is_none() && Path::parse("").is_none());
    }

    #[test]
    fn operators() {
        let t = |op: &str, v: Json, o: Json| Op::parse(op).unwrap().test(Some(&v), &o, None, 0);
        assert!(t("equals", json!(1), json!(1.0)));
        assert!(t("not_equals", json!("EUR"), json!("USD")));
        assert!(t("gte", json!(500), json!(500)) && !t("gt", json!(500), json!(500)));
        assert!(!t("lt", json!("5"), json!(6)), "a string is not a number");
        assert!(t("contains", json!("big order"), json!("order")));
        assert!(t("contains", json!(["a", "b"]), json!("b")));
        assert!(t("not_contains", json!("abc"), json!("x")));
        assert!(
            t("starts_with", json!("abc"), json!("ab"))
                && t("ends_with", json!("abc"), json!("bc"))
        );
        assert!(
            t("one_of", json!("b"), json!(["a", "b"]))
                && t("none_of", json!("c"), json!(["a", "b"]))
        );
        assert!(t(
            "before_date",
            json!("2024-01-01T00:00:00Z"),
            json!("2024-02-01")
        ));
        assert!(t(
            "after_date",
            json!("2024-03-01T00:00:00Z"),
            json!("2024-02-01")
        ));
        // A missing value passes only not_exists.
        for op in OPS.iter().map(|(_, op)| *op) {
            assert_eq!(
                op.test(None, &json!(1), Some(DAY), 0),
                op == Op::NotExists,
                "{op:?}"
            );
            assert_eq!(
                op.test(Some(&Json::Null), &json!(1), Some(DAY), 0),
                op == Op::NotExists
            );
        }
        let as_of = parse_timestamp("2024-01-10T00:00:00Z").unwrap();
        let d = |op: &str, v: &str| {
            Op::parse(op)
                .unwrap()
                .test(Some(&json!(v)), &json!("3d"), Some(3 * DAY), as_of)
        };
        assert!(
            d("within_last", "2024-01-08T00:00:00Z") && !d("within_last", "2024-01-06T00:00:00Z")
        );
        assert!(
            d("within_next", "2024-01-12T00:00:00Z") && !d("within_next", "2024-01-14T00:00:00Z")
        );
        assert!(
            d("before_last", "2024-01-06T00:00:00Z") && !d("before_last", "2024-01-08T00:00:00Z")
        );
        assert!(
            d("after_next", "2024-01-14T00:00:00Z") && !d("after_next", "2024-01-12T00:00:00Z")
        );
        assert!(OPS
            .iter()
            .all(|(n, op)| Op::parse(n) == Some(*op) && op.name() == *n));
    }

    #[test]
    fn the_total_order_puts_types_then_values() {
        let mut v = vec![
            json!("b"),
            json!(2),
            json!("a"),
            json!(10),
            json!(true),
            json!(null),
        ];
        v.sort_by(total_cmp);
        assert_eq!(
            v,
            vec![
                json!(null),
                json!(true),
                json!(2),
                json!(10),
                json!("a"),
                json!("b")
            ]
        );
    }
}
