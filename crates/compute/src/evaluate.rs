//! The exact values: a computed trait, and audience membership, over all of
//! one profile's events at a given `as_of`.
//!
//! This is the definition every faster path must equal, written to be
//! obviously right rather than fast: each call looks at every event. The
//! rules (from issue 19, which users and tests rely on):
//!
//! - A window `within = W` counts an event when `as_of - W < timestamp <=
//!   as_of`; without a window every matching event counts.
//! - `first` / `last`: the property of the earliest / latest matching event
//!   by timestamp, ties broken by message id (then by the smaller value). `most_frequent`: the value
//!   seen in at least `min_count` matching events, the most often; ties go
//!   to the smallest value. `unique_list`: the distinct values sorted
//!   ascending, the `list_cap` smallest. `avg` = sum / count of the numeric
//!   values. Events without the property, or with `null`, do not count for
//!   the kinds that read one; `sum`, `avg`, `min` and `max` read numbers
//!   only.
//! - A profile that never had a matching event has `null`; `count` and
//!   `unique_count` of a windowed trait whose events all aged out are 0.
//! - An audience member needs a `user_id` or `email` identifier unless the
//!   audience includes anonymous profiles.

use crate::condition::{json_eq, total_cmp};
use crate::definition::{Audience, ComputedTrait, Condition, EventFilter, EventMatch, Kind};
use ps_spec::time::format_iso;
use serde_json::{Map, Value as Json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The name definitions match an event by: a track's `event`, `Page
/// Viewed` for pages, `Screen Viewed` for screens, the call type otherwise.
pub fn fact_name<'a>(event_type: &'a str, track_event: Option<&'a str>) -> &'a str {
    match event_type {
        "track" => track_event.unwrap_or_default(),
        "page" => "Page Viewed",
        "screen" => "Screen Viewed",
        other => other,
    }
}

/// The values an event had at some paths: each entry is a path's keys
/// from the event's root and the value there (never `null`).
pub type Values = Box<[(Arc<[String]>, Json)]>;

/// One event of a profile, as compute reads it.
///
/// A profile keeps one fact per matching event for as long as it lives
/// (`event = "*"` matches every event), so a fact is kept small: the name
/// is shared between facts (see [`Fact::reduced`]), and the values
/// definitions read are a flat list of (path, value) rather than a copy of
/// the event's nested objects, whose maps cost far more than the values.
#[derive(Debug, Clone)]
pub struct Fact {
    /// The name definitions match: a track's `event`, `Page Viewed` for
    /// pages, `Screen Viewed` for screens, the type for other calls.
    pub name: Arc<str>,
    /// The event's `timestamp`, microseconds since the epoch.
    pub timestamp: i64,
    /// Its message id (breaks ties of `first` / `last`).
    pub message_id: Box<str>,
    /// What the event held: (path, value) pairs, a path read from the
    /// value of the longest entry whose path starts it.
    values: Values,
}

impl PartialEq for Fact {
    fn eq(&self, o: &Fact) -> bool {
        (self.timestamp, &self.name, &self.message_id, &self.values)
            == (o.timestamp, &o.name, &o.message_id, &o.values)
    }
}

impl Fact {
    /// A fact from an event's name, time, message id and whole object
    /// (`properties`, `context`, …): every path reads from it.
    pub fn new(name: &str, timestamp: i64, message_id: &str, event: Json) -> Fact {
        let values: Values = match &event {
            Json::Object(m) if m.is_empty() => Box::new([]),
            _ => Box::new([(Arc::from(Vec::new()), event)]),
        };
        Fact::reduced(Arc::from(name), timestamp, message_id, values)
    }

    /// A fact holding only the values at some paths (`values`, see
    /// [`Values`]), with a name the caller may share between facts.
    pub fn reduced(name: Arc<str>, timestamp: i64, message_id: &str, values: Values) -> Fact {
        Fact {
            name,
            timestamp,
            message_id: message_id.into(),
            values,
        }
    }

    /// The order facts are kept and read in: (timestamp, message id), so
    /// neither a profile's state nor the order floats are summed in
    /// depends on arrival order.
    pub fn order(&self) -> (i64, &str) {
        (self.timestamp, &self.message_id)
    }

    /// The (path, value) pairs this fact holds.
    pub fn values(&self) -> &[(Arc<[String]>, Json)] {
        &self.values
    }

    /// The value at `keys` from the event's root, `None` when missing (a
    /// `null` is returned as such).
    pub fn get(&self, keys: &[String]) -> Option<&Json> {
        let (at, v) = self
            .values
            .iter()
            .filter(|(p, _)| keys.starts_with(p))
            .max_by_key(|(p, _)| p.len())?;
        keys[at.len()..].iter().try_fold(v, |v, k| v.get(k))
    }

    /// The value at `path` (a definition's property or filter): `None`
    /// when missing or `null`; `timestamp` is made as ISO-8601 text on each
    /// read.
    pub(crate) fn read(&self, path: &crate::Path) -> Option<Cow<'_, Json>> {
        match path {
            crate::Path::Timestamp => Some(Cow::Owned(Json::String(format_iso(self.timestamp)))),
            crate::Path::Keys(keys) => self.get(keys).filter(|v| !v.is_null()).map(Cow::Borrowed),
        }
    }

    fn passes(&self, filters: &[EventFilter], as_of: i64) -> bool {
        filters.iter().all(|f| {
            f.op.test(self.read(&f.path).as_deref(), &f.value, f.duration, as_of)
        })
    }
}

/// What audience conditions read of a profile besides its events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Custom and computed traits by key.
    pub traits: Map<String, Json>,
    /// Whether the profile has a `user_id` or `email` identifier.
    pub identified: bool,
    /// All of its events (merged profiles' included).
    pub facts: Vec<Fact>,
}

fn in_window(ts: i64, within: Option<i64>, as_of: i64) -> bool {
    within.is_none_or(|w| as_of.saturating_sub(w) < ts && ts <= as_of)
}

fn matching<'a>(
    facts: &'a [Fact],
    events: &'a EventMatch,
    filters: &'a [EventFilter],
    as_of: i64,
) -> impl Iterator<Item = &'a Fact> {
    facts
        .iter()
        .filter(move |f| events.matches(&f.name) && f.passes(filters, as_of))
}

fn number(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
}

/// The value of `def` over `facts` (one profile's events, in any order) at
/// `as_of` (microseconds); `Json::Null` is SQL `NULL`.
pub fn computed_value(def: &ComputedTrait, facts: &[Fact], as_of: i64) -> Json {
    let mut ever = matching(facts, &def.events, &def.filters, as_of).peekable();
    if ever.peek().is_none() {
        return Json::Null;
    }
    let window: Vec<&Fact> = ever
        .filter(|f| in_window(f.timestamp, def.within, as_of))
        .collect();
    if def.kind == Kind::Count {
        return Json::from(window.len() as u64);
    }
    let path = def
        .property
        .as_ref()
        .expect("checked: the kind reads a property");
    if *path == crate::Path::Timestamp && matches!(def.kind, Kind::First | Kind::Last) {
        // Every fact has a timestamp, and ordering by (timestamp, message
        // id) orders the values too: only the answer is made into text.
        let pick = match def.kind {
            Kind::First => window.iter().copied().min_by_key(|f| f.order()),
            _ => window.iter().copied().max_by_key(|f| f.order()),
        };
        return pick.map_or(Json::Null, |f| Json::String(format_iso(f.timestamp)));
    }
    let values: Vec<(&Fact, Cow<Json>)> = window
        .iter()
        .filter_map(|f| f.read(path).map(|v| (*f, v)))
        .collect();
    let numbers = || values.iter().filter_map(|(_, v)| v.as_f64());
    let distinct = || {
        let mut d: Vec<&Json> = Vec::new();
        for (_, v) in &values {
            if !d.iter().any(|x| json_eq(x, v)) {
                d.push(v);
            }
        }
        d.sort_by(|a, b| total_cmp(a, b));
        d
    };
    match def.kind {
        Kind::Count => unreachable!("answered above"),
        Kind::Sum => match numbers().count() {
            0 => Json::Null,
            _ => number(numbers().sum()),
        },
        Kind::Avg => match numbers().count() {
            0 => Json::Null,
            n => number(numbers().sum::<f64>() / n as f64),
        },
        Kind::Min => numbers().reduce(f64::min).map_or(Json::Null, number),
        Kind::Max => numbers().reduce(f64::max).map_or(Json::Null, number),
        Kind::First | Kind::Last => {
            // Earliest (latest) by timestamp, then message id; an exact tie
            // (one message id twice) takes the smaller value, so the answer
            // never depends on arrival order.
            let by_time =
                |a: &(&Fact, Cow<Json>), b: &(&Fact, Cow<Json>)| a.0.order().cmp(&b.0.order());
            let pick = values.iter().min_by(|a, b| {
                let t = by_time(a, b);
                let t = if def.kind == Kind::First {
                    t
                } else {
                    t.reverse()
                };
                t.then_with(|| total_cmp(&a.1, &b.1))
            });
            pick.map_or(Json::Null, |(_, v)| v.clone().into_owned())
        }
        Kind::MostFrequent => {
            let mut counts: Vec<(&Json, u64)> = Vec::new();
            for (_, v) in &values {
                match counts.iter_mut().find(|(x, _)| json_eq(x, v)) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((v, 1)),
                }
            }
            counts
                .into_iter()
                .filter(|(_, n)| *n >= def.min_count)
                .min_by(|(a, na), (b, nb)| nb.cmp(na).then_with(|| total_cmp(a, b)))
                .map_or(Json::Null, |(v, _)| v.clone())
        }
        Kind::UniqueList => {
            Json::Array(distinct().into_iter().take(def.list_cap).cloned().collect())
        }
        Kind::UniqueCount => Json::from(distinct().len() as u64),
    }
}

/// Membership of each audience (given in reference order, as
/// [`crate::Definitions::audiences`] holds them) for `profile` at `as_of`.
pub fn audience_members(
    audiences: &[Audience],
    profile: &Profile,
    as_of: i64,
) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for a in audiences {
        let member = (a.include_anonymous || profile.identified)
            && holds(&a.condition, profile, &out, as_of);
        out.insert(a.key.clone(), member);
    }
    out
}

/// Why `audience` holds or not for `profile` at `as_of`, as the `reason`
/// of an audience transition: whether the profile is identified, and each
/// top-level condition with the value it read and its result. `members` are
/// the memberships [`audience_members`] gave the audiences before it.
pub fn explain(
    audience: &Audience,
    profile: &Profile,
    members: &BTreeMap<String, bool>,
    as_of: i64,
) -> Json {
    let top: Vec<&Condition> = match &audience.condition {
        Condition::All(v) => v.iter().collect(),
        c => vec![c],
    };
    let conditions: Vec<Json> = top
        .into_iter()
        .map(|c| {
            let value = match c {
                Condition::Trait { key, .. } => {
                    profile.traits.get(key).cloned().unwrap_or(Json::Null)
                }
                Condition::Event {
                    events,
                    within,
                    filters,
                    ..
                } => Json::from(
                    matching(&profile.facts, events, filters, as_of)
                        .filter(|f| in_window(f.timestamp, *within, as_of))
                        .count() as u64,
                ),
                Condition::Audience(k) => Json::Bool(members.get(k).copied().unwrap_or(false)),
                _ => Json::Null,
            };
            serde_json::json!({
                "condition": describe(c),
                "value": value,
                "result": holds(c, profile, members, as_of),
            })
        })
        .collect();
    serde_json::json!({
        "identified": profile.identified,
        "include_anonymous": audience.include_anonymous,
        "conditions": conditions,
    })
}

/// A condition as JSON, for [`explain`].
fn describe(c: &Condition) -> Json {
    let events = |e: &EventMatch| match e {
        EventMatch::All => Json::from("*"),
        EventMatch::Names(n) => Json::from(n.iter().cloned().collect::<Vec<_>>()),
    };
    match c {
        Condition::Trait { key, op, value, .. } => {
            serde_json::json!({ "trait": key, "op": op.name(), "value": value })
        }
        Condition::Event {
            events: e,
            within,
            op,
            count,
            ..
        } => serde_json::json!({
            "event": events(e),
            "within_seconds": within.map(|w| w / 1_000_000),
            "count": { "op": op.name(), "value": count },
        }),
        Condition::Audience(k) => serde_json::json!({ "audience": k }),
        Condition::All(v) => {
            serde_json::json!({ "all": v.iter().map(describe).collect::<Vec<_>>() })
        }
        Condition::Any(v) => {
            serde_json::json!({ "any": v.iter().map(describe).collect::<Vec<_>>() })
        }
        Condition::None(v) => {
            serde_json::json!({ "none": v.iter().map(describe).collect::<Vec<_>>() })
        }
    }
}

fn holds(c: &Condition, p: &Profile, members: &BTreeMap<String, bool>, as_of: i64) -> bool {
    match c {
        Condition::Trait {
            key,
            op,
            value,
            duration,
        } => op.test(p.traits.get(key), value, *duration, as_of),
        Condition::Event {
            events,
            within,
            filters,
            op,
            count,
        } => {
            let n = matching(&p.facts, events, filters, as_of)
                .filter(|f| in_window(f.timestamp, *within, as_of))
                .count();
            op.test(Some(&Json::from(n as u64)), &number(*count), None, as_of)
        }
        Condition::Audience(k) => members.get(k).copied().unwrap_or(false),
        Condition::All(v) => v.iter().all(|c| holds(c, p, members, as_of)),
        Condition::Any(v) => v.iter().any(|c| holds(c, p, members, as_of)),
        Condition::None(v) => !v.iter().any(|c| holds(c, p, members, as_of)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Definitions, RawDefinitions};
    use ps_spec::time::parse_timestamp;
    use serde_json::json;

    fn defs(text: &str) -> Definitions {
        let raw: RawDefinitions = toml::from_str(text).unwrap();
        Definitions::check(&raw, &[]).unwrap()
    }

    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    fn order(id: &str, at: &str, props: Json) -> Fact {
        Fact::new(
            "Order Completed",
            ts(at),
            id,
            json!({ "properties": props }),
        )
    }

    fn value(def: &str, facts: &[Fact], as_of: &str) -> Json {
        let d = defs(&format!(
            "[[computed_traits]]\nkey = \"t\"\nevent = \"Order Completed\"\n{def}"
        ));
        computed_value(&d.traits[0], facts, ts(as_of))
    }

    #[test]
    fn every_kind_on_a_small_history() {
        let facts = vec![
            order(
                "m3",
                "2024-01-03T00:00:00Z",
                json!({"revenue": 30, "currency": "USD", "category": "b"}),
            ),
            order(
                "m1",
                "2024-01-01T00:00:00Z",
                json!({"revenue": 10, "currency": "EUR", "category": "a"}),
            ),
            order(
                "m2",
                "2024-01-02T00:00:00Z",
                json!({"revenue": 20.5, "currency": "USD", "category": "b"}),
            ),
            order(
                "m4",
                "2024-01-04T00:00:00Z",
                json!({"revenue": "n/a", "category": null}),
            ),
            Fact::new("Page Viewed", ts("2024-01-02T00:00:00Z"), "p1", json!({})),
        ];
        let at = "2024-01-05T00:00:00Z";
        assert_eq!(value("kind = \"count\"", &facts, at), json!(4));
        assert_eq!(
            value("kind = \"sum\"\nproperty = \"revenue\"", &facts, at),
            json!(60.5)
        );
        assert_eq!(
            value("kind = \"avg\"\nproperty = \"revenue\"", &facts, at),
            json!(60.5 / 3.0)
        );
        assert_eq!(
            value("kind = \"min\"\nproperty = \"revenue\"", &facts, at),
            json!(10.0)
        );
        assert_eq!(
            value("kind = \"max\"\nproperty = \"revenue\"", &facts, at),
            json!(30.0)
        );
        assert_eq!(
            value("kind = \"first\"\nproperty = \"currency\"", &facts, at),
            json!("EUR")
        );
        assert_eq!(
            value("kind = \"last\"\nproperty = \"category\"", &facts, at),
            json!("b")
        );
        assert_eq!(
            value(
                "kind = \"most_frequent\"\nproperty = \"category\"",
                &facts,
                at
            ),
            json!("b")
        );
        assert_eq!(
            value(
                "kind = \"most_frequent\"\nproperty = \"category\"\nmin_count = 3",
                &facts,
                at
            ),
            Json::Null
        );
        assert_eq!(
            value(
                "kind = \"unique_list\"\nproperty = \"category\"",
                &facts,
                at
            ),
            json!(["a", "b"])
        );
        assert_eq!(
            value(
                "kind = \"unique_list\"\nproperty = \"category\"\nlist_cap = 1",
                &facts,
                at
            ),
            json!(["a"])
        );
        assert_eq!(
            value(
                "kind = \"unique_count\"\nproperty = \"currency\"",
                &facts,
                at
            ),
            json!(2)
        );
        assert_eq!(
            value("kind = \"count\"\nwhere = [{ property = \"currency\", op = \"equals\", value = \"USD\" }]", &facts, at),
            json!(2)
        );
        // A window counts as_of - W < t <= as_of.
        assert_eq!(
            value(
                "kind = \"count\"\nwithin = \"2d\"",
                &facts,
                "2024-01-04T00:00:00Z"
            ),
            json!(2)
        );
        assert_eq!(
            value(
                "kind = \"count\"\nwithin = \"2d\"",
                &facts,
                "2024-01-10T00:00:00Z"
            ),
            json!(0)
        );
        assert_eq!(
            value(
                "kind = \"sum\"\nproperty = \"revenue\"\nwithin = \"2d\"",
                &facts,
                "2024-01-10T00:00:00Z"
            ),
            Json::Null
        );
        assert_eq!(value("kind = \"count\"", &[], at), Json::Null);
    }

    #[test]
    fn ties_go_to_the_message_id_and_the_smallest_value() {
        let facts = vec![
            order("b", "2024-01-01T00:00:00Z", json!({"c": "x"})),
            order("a", "2024-01-01T00:00:00Z", json!({"c": "y"})),
            order("c", "2024-01-02T00:00:00Z", json!({"c": "x"})),
            order("d", "2024-01-02T00:00:00Z", json!({"c": "y"})),
        ];
        let at = "2024-01-05T00:00:00Z";
        assert_eq!(
            value("kind = \"first\"\nproperty = \"c\"", &facts, at),
            json!("y")
        );
        assert_eq!(
            value("kind = \"last\"\nproperty = \"c\"", &facts, at),
            json!("y")
        );
        assert_eq!(
            value("kind = \"most_frequent\"\nproperty = \"c\"", &facts, at),
            json!("x")
        );
    }

    #[test]
    fn audiences_read_traits_events_and_other_audiences() {
        let d = defs(
            r#"
            [[audiences]]
            key = "big_spenders"
            all = [
              { trait = "lifetime_revenue", op = "gte", value = 500 },
              { event = "Order Completed", within = "30d", count = { op = "gte", value = 2 } },
              { audience = "vip" },
            ]
            [[audiences]]
            key = "vip"
            any = [ { trait = "plan", op = "one_of", value = ["gold"] } ]
            [[audiences]]
            key = "anyone_quiet"
            include_anonymous = true
            none = [ { event = "*" } ]
            "#,
        );
        let mut p = Profile {
            identified: true,
            ..Profile::default()
        };
        p.traits.insert("lifetime_revenue".into(), json!(600));
        p.traits.insert("plan".into(), json!("gold"));
        p.facts = vec![
            order("m1", "2024-01-01T00:00:00Z", json!({})),
            order("m2", "2024-01-20T00:00:00Z", json!({})),
        ];
        let at = ts("2024-01-25T00:00:00Z");
        let m = audience_members(&d.audiences, &p, at);
        assert!(m["big_spenders"]);
        assert!(m["vip"]);
        assert!(!m["anyone_quiet"]);
        // The first order ages out of the window: one order in 30 days.
        let m = audience_members(&d.audiences, &p, ts("2024-02-05T00:00:00Z"));
        assert!(!m["big_spenders"]);
        // Anonymous profiles are not members unless the audience says so.
        p.identified = false;
        p.facts.clear();
        let m = audience_members(&d.audiences, &p, at);
        assert_eq!((m["vip"], m["anyone_quiet"]), (false, true));
    }
}
