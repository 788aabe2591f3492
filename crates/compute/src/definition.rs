//! Definitions: the config sections, as written ([`RawDefinitions`]) and as
//! checked ([`Definitions`]).
//!
//! ```toml
//! [compute]
//! tick = "60s"
//! source_id = "ps-compute"
//! emit_identifies = true
//!
//! [[computed_traits]]
//! key = "orders_30d"
//! kind = "count"
//! event = "Order Completed"
//! within = "30d"
//! where = [ { property = "currency", op = "equals", value = "USD" } ]
//!
//! [[audiences]]
//! key = "big_spenders"
//! all = [ { trait = "lifetime_revenue", op = "gte", value = 500 } ]
//! ```
//!
//! Every refusal names the definition and the field at fault, e.g.
//! ``invalid definition `computed_traits.orders_30d.kind`: unknown kind "cnt"``.

use crate::condition::{Op, Path};
pub use crate::raw::{RawAudience, RawCompute, RawDefinitions, RawFilter, RawSqlTrait, RawTrait};
use ps_spec::naming::is_snake_case;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A definition that cannot be used, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid definition `{place}`: {message}")]
pub struct DefinitionError {
    /// `section.key.field`, e.g. `computed_traits.orders_30d.kind`.
    pub place: String,
    /// What is wrong with it.
    pub message: String,
}

fn err<T>(place: impl Into<String>, message: impl Into<String>) -> Result<T, DefinitionError> {
    Err(DefinitionError {
        place: place.into(),
        message: message.into(),
    })
}

/// `[compute]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeSettings {
    /// Re-evaluation interval without events (default 60 s).
    pub tick: Duration,
    /// `event_source_id` of emitted rows (default `ps-compute`).
    pub source_id: String,
    /// Each change also lands as an `identifies` row (default true).
    pub emit_identifies: bool,
}

/// What a computed trait computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Matching events.
    Count,
    /// Sum of a numeric property.
    Sum,
    /// Mean of a numeric property (sum / count of values).
    Avg,
    /// Smallest numeric value.
    Min,
    /// Largest numeric value.
    Max,
    /// The property of the earliest matching event.
    First,
    /// The property of the latest matching event.
    Last,
    /// The value seen most often, at least `min_count` times.
    MostFrequent,
    /// Distinct values, sorted, capped.
    UniqueList,
    /// Number of distinct values.
    UniqueCount,
}

const KINDS: [(&str, Kind); 10] = [
    ("count", Kind::Count),
    ("sum", Kind::Sum),
    ("avg", Kind::Avg),
    ("min", Kind::Min),
    ("max", Kind::Max),
    ("first", Kind::First),
    ("last", Kind::Last),
    ("most_frequent", Kind::MostFrequent),
    ("unique_list", Kind::UniqueList),
    ("unique_count", Kind::UniqueCount),
];

impl Kind {
    /// Its name in definitions.
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .expect("every kind is named")
    }

    /// Whether it reads a property of each event.
    pub fn needs_property(self) -> bool {
        self != Kind::Count
    }
}

/// Which events a definition looks at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventMatch {
    /// Every event (`"*"`).
    All,
    /// Events with one of these names (`Page Viewed` / `Screen Viewed` for
    /// pages and screens).
    Names(BTreeSet<String>),
}

impl EventMatch {
    /// Whether an event named `name` is looked at.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            EventMatch::All => true,
            EventMatch::Names(n) => n.contains(name),
        }
    }
}

/// A filter on an event's values.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    /// What is read.
    pub path: Path,
    /// How it is compared.
    pub op: Op,
    /// With what.
    pub value: Json,
    /// The operand as microseconds, for operators that take a duration.
    pub duration: Option<i64>,
}

/// A computed trait, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedTrait {
    /// The column name.
    pub key: String,
    /// What it computes.
    pub kind: Kind,
    /// Which events.
    pub events: EventMatch,
    /// The window in microseconds; `None` is all time.
    pub within: Option<i64>,
    /// Filters every counted event passes.
    pub filters: Vec<EventFilter>,
    /// The value read, for kinds that need one.
    pub property: Option<Path>,
    /// `most_frequent`'s threshold.
    pub min_count: u64,
    /// `unique_list`'s cap.
    pub list_cap: usize,
}

/// An audience condition, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A custom or computed trait of the profile.
    Trait {
        /// The trait's key.
        key: String,
        /// The operator.
        op: Op,
        /// The operand.
        value: Json,
        /// The operand as microseconds, for duration operators.
        duration: Option<i64>,
    },
    /// How many matching events the profile has.
    Event {
        /// Which events.
        events: EventMatch,
        /// The window in microseconds; `None` is all time.
        within: Option<i64>,
        /// Filters on the events.
        filters: Vec<EventFilter>,
        /// The count's operator (default `gte`).
        op: Op,
        /// The count's operand (default 1).
        count: f64,
    },
    /// Membership of another audience.
    Audience(String),
    /// All hold.
    All(Vec<Condition>),
    /// One holds.
    Any(Vec<Condition>),
    /// None holds.
    None(Vec<Condition>),
}

/// An audience, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Audience {
    /// The column name.
    pub key: String,
    /// Whether profiles without a `user_id` or `email` may be members.
    pub include_anonymous: bool,
    /// What a member satisfies (the `all`, `any` and `none` lists together).
    pub condition: Condition,
}

/// A SQL trait, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlTrait {
    /// Its name.
    pub key: String,
    /// The query.
    pub query: String,
    /// How often it runs.
    pub every: Duration,
}

/// Every definition of a space, checked; audiences in an order where each
/// comes after the audiences it references.
#[derive(Debug, Clone, PartialEq)]
pub struct Definitions {
    /// `[compute]`.
    pub settings: ComputeSettings,
    /// Computed traits, in config order.
    pub traits: Vec<ComputedTrait>,
    /// Audiences, referenced ones first.
    pub audiences: Vec<Audience>,
    /// SQL traits, in config order.
    pub sql_traits: Vec<SqlTrait>,
}

fn duration(place: &str, s: &str) -> Result<Duration, DefinitionError> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => err(place, "must be more than 0"),
        Err(e) => err(
            place,
            format!("{s:?} is not a duration ({e}; e.g. \"90m\", \"36h\", \"30d\")"),
        ),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Definitions {
    /// Checks the raw sections. `reserved` are column names a key may not
    /// take (the fixed columns of the profile trait tables).
    pub fn check(raw: &RawDefinitions, reserved: &[&str]) -> Result<Definitions, DefinitionError> {
        let c = &raw.compute;
        let settings = ComputeSettings {
            tick: match &c.tick {
                Some(t) => duration("compute.tick", t)?,
                None => Duration::from_secs(60),
            },
            source_id: match &c.source_id {
                Some(s) if s.trim().is_empty() => {
                    return err("compute.source_id", "must not be empty")
                }
                Some(s) => s.clone(),
                None => "ps-compute".to_owned(),
            },
            emit_identifies: c.emit_identifies.unwrap_or(true),
        };
        let mut keys = BTreeSet::new();
        let mut claim = |section: &str, key: &str| -> Result<(), DefinitionError> {
            let place = format!("{section}.{key}.key");
            if !is_snake_case(key) {
                return err(
                    place,
                    format!("{key:?} is not snake_case (lower-case letters, digits and _)"),
                );
            }
            if reserved.contains(&key) {
                return err(
                    place,
                    format!("{key:?} clashes with a column of the profile tables"),
                );
            }
            if !keys.insert(key.to_owned()) {
                return err(place, format!("{key:?} is the key of another definition"));
            }
            Ok(())
        };
        let mut traits = Vec::new();
        for t in &raw.computed_traits {
            claim("computed_traits", &t.key)?;
            traits.push(check_trait(t)?);
        }
        let mut audiences = Vec::new();
        for a in &raw.audiences {
            claim("audiences", &a.key)?;
            audiences.push(check_audience(a)?);
        }
        let mut sql_traits = Vec::new();
        for s in &raw.sql_traits {
            claim("sql_traits", &s.key)?;
            let place = |f: &str| format!("sql_traits.{}.{f}", s.key);
            if s.query.trim().is_empty() {
                return err(place("query"), "must not be empty");
            }
            sql_traits.push(SqlTrait {
                key: s.key.clone(),
                query: s.query.clone(),
                every: duration(&place("every"), &s.every)?,
            });
        }
        let audiences = in_reference_order(audiences)?;
        Ok(Definitions {
            settings,
            traits,
            audiences,
            sql_traits,
        })
    }
}

fn check_events(
    place: &str,
    event: &Option<String>,
    events: &Option<Vec<String>>,
) -> Result<EventMatch, DefinitionError> {
    let names: Vec<&String> = match (event, events) {
        (Some(e), None) => vec![e],
        (None, Some(es)) if !es.is_empty() => es.iter().collect(),
        (None, _) => {
            return err(
                format!("{place}.event"),
                "is missing (`event = \"Order Completed\"`, `events = [...]` or `\"*\"`)",
            )
        }
        (Some(_), Some(_)) => {
            return err(
                format!("{place}.events"),
                "give `event` or `events`, not both",
            )
        }
    };
    if names.iter().any(|n| n.as_str() == "*") {
        return Ok(EventMatch::All);
    }
    if names.iter().any(|n| n.trim().is_empty()) {
        return err(format!("{place}.event"), "an event name is empty");
    }
    Ok(EventMatch::Names(names.into_iter().cloned().collect()))
}

fn check_op(
    place: &str,
    op: &str,
    value: Option<&Json>,
) -> Result<(Op, Json, Option<i64>), DefinitionError> {
    let Some(op) = Op::parse(op) else {
        let names: Vec<&str> = crate::condition::OPS.iter().map(|(n, _)| *n).collect();
        return err(
            format!("{place}.op"),
            format!("unknown op {op:?} (expected one of {})", names.join(", ")),
        );
    };
    let value = match (value, op.takes_no_value()) {
        (_, true) => Json::Null,
        (Some(v), false) => v.clone(),
        (None, false) => {
            return err(
                format!("{place}.value"),
                format!("is missing (`{}` compares with a value)", op.name()),
            )
        }
    };
    let duration = if op.takes_duration() {
        match value.as_str() {
            Some(s) => Some(micros(self::duration(&format!("{place}.value"), s)?)),
            None => {
                return err(
                    format!("{place}.value"),
                    format!("`{}` takes a duration such as \"30d\"", op.name()),
                )
            }
        }
    } else {
        None
    };
    if matches!(op, Op::OneOf | Op::NoneOf) && !value.is_array() {
        return err(
            format!("{place}.value"),
            format!("`{}` takes a list of values", op.name()),
        );
    }
    Ok((op, value, duration))
}

fn check_filters(place: &str, filters: &[RawFilter]) -> Result<Vec<EventFilter>, DefinitionError> {
    filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let place = format!("{place}.where[{i}]");
            let path = Path::parse(&f.property).map_or_else(
                || {
                    err(
                        format!("{place}.property"),
                        format!("{:?} is not a path", f.property),
                    )
                },
                Ok,
            )?;
            let (op, value, duration) = check_op(&place, &f.op, f.value.as_ref())?;
            Ok(EventFilter {
                path,
                op,
                value,
                duration,
            })
        })
        .collect()
}

fn check_trait(t: &RawTrait) -> Result<ComputedTrait, DefinitionError> {
    let place = format!("computed_traits.{}", t.key);
    let Some(kind) = KINDS.iter().find(|(n, _)| *n == t.kind).map(|(_, k)| *k) else {
        let names: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
        return err(
            format!("{place}.kind"),
            format!(
                "unknown kind {:?} (expected one of {})",
                t.kind,
                names.join(", ")
            ),
        );
    };
    let property = match (&t.property, kind.needs_property()) {
        (Some(p), true) => Some(Path::parse(p).map_or_else(
            || err(format!("{place}.property"), format!("{p:?} is not a path")),
            Ok,
        )?),
        (None, true) => {
            return err(
                format!("{place}.property"),
                format!(
                    "is missing: `{}` reads a property of each event",
                    kind.name()
                ),
            )
        }
        (Some(_), false) => {
            return err(
                format!("{place}.property"),
                "`count` counts events and reads no property",
            )
        }
        (None, false) => None,
    };
    if t.min_count.is_some() && kind != Kind::MostFrequent {
        return err(
            format!("{place}.min_count"),
            "only `most_frequent` takes min_count",
        );
    }
    if t.list_cap.is_some() && kind != Kind::UniqueList {
        return err(
            format!("{place}.list_cap"),
            "only `unique_list` takes list_cap",
        );
    }
    let min_count = match t.min_count {
        Some(n) if n < 1 => return err(format!("{place}.min_count"), "must be at least 1"),
        Some(n) => n as u64,
        None => 2,
    };
    let list_cap = match t.list_cap {
        Some(n) if n < 1 => return err(format!("{place}.list_cap"), "must be at least 1"),
        Some(n) => n as usize,
        None => 1000,
    };
    Ok(ComputedTrait {
        key: t.key.clone(),
        kind,
        events: check_events(&place, &t.event, &t.events)?,
        within: t
            .within
            .as_deref()
            .map(|w| duration(&format!("{place}.within"), w).map(micros))
            .transpose()?,
        filters: check_filters(&place, t.filters.as_deref().unwrap_or_default())?,
        property,
        min_count,
        list_cap,
    })
}

fn check_audience(a: &RawAudience) -> Result<Audience, DefinitionError> {
    let place = format!("audiences.{}", a.key);
    let mut parts = Vec::new();
    for (name, list) in [("all", &a.all), ("any", &a.any), ("none", &a.none)] {
        if let Some(list) = list {
            let conds = check_list(&format!("{place}.{name}"), list)?;
            parts.push(match name {
                "all" => Condition::All(conds),
                "any" => Condition::Any(conds),
                _ => Condition::None(conds),
            });
        }
    }
    let condition = match parts.len() {
        0 => {
            return err(
                format!("{place}.all"),
                "an audience needs conditions (`all`, `any` or `none`)",
            )
        }
        1 => parts.pop().expect("one part"),
        _ => Condition::All(parts),
    };
    Ok(Audience {
        key: a.key.clone(),
        include_anonymous: a.include_anonymous.unwrap_or(false),
        condition,
    })
}

fn check_list(place: &str, list: &[Json]) -> Result<Vec<Condition>, DefinitionError> {
    if list.is_empty() {
        return err(place, "the list of conditions is empty");
    }
    list.iter()
        .enumerate()
        .map(|(i, c)| check_condition(&format!("{place}[{i}]"), c))
        .collect()
}

fn check_condition(place: &str, c: &Json) -> Result<Condition, DefinitionError> {
    let Some(o) = c.as_object() else {
        return err(
            place,
            "a condition is a table such as { trait = \"plan\", op = \"equals\", value = \"pro\" }",
        );
    };
    let allow = |fields: &[&str]| -> Result<(), DefinitionError> {
        match o.keys().find(|k| !fields.contains(&k.as_str())) {
            Some(k) => err(
                format!("{place}.{k}"),
                format!("unknown field (expected {})", fields.join(", ")),
            ),
            None => Ok(()),
        }
    };
    let text = |f: &str| -> Result<Option<String>, DefinitionError> {
        match o.get(f) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => err(format!("{place}.{f}"), "must be a string"),
        }
    };
    for nested in ["all", "any", "none"] {
        if let Some(list) = o.get(nested) {
            allow(&[nested])?;
            let Some(list) = list.as_array() else {
                return err(format!("{place}.{nested}"), "must be a list of conditions");
            };
            let conds = check_list(&format!("{place}.{nested}"), list)?;
            return Ok(match nested {
                "all" => Condition::All(conds),
                "any" => Condition::Any(conds),
                _ => Condition::None(conds),
            });
        }
    }
    if o.contains_key("trait") {
        allow(&["trait", "op", "value"])?;
        let key = text("trait")?.unwrap_or_default();
        let op = text("op")?.ok_or_else(|| DefinitionError {
            place: format!("{place}.op"),
            message: "is missing".into(),
        })?;
        let (op, value, duration) = check_op(place, &op, o.get("value"))?;
        return Ok(Condition::Trait {
            key,
            op,
            value,
            duration,
        });
    }
    if o.contains_key("event") || o.contains_key("events") {
        allow(&["event", "events", "within", "count", "where"])?;
        let events_list = match o.get("events") {
            None => None,
            Some(Json::Array(a)) => Some(
                a.iter()
                    .map(|e| e.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map_or_else(
                        || err(format!("{place}.events"), "must be a list of event names"),
                        Ok,
                    )?,
            ),
            Some(_) => return err(format!("{place}.events"), "must be a list of event names"),
        };
        let events = check_events(place, &text("event")?, &events_list)?;
        let within = text("within")?
            .map(|w| duration(&format!("{place}.within"), &w).map(micros))
            .transpose()?;
        let filters: Vec<RawFilter> = match o.get("where") {
            None => Vec::new(),
            Some(w) => serde_json::from_value(w.clone()).map_err(|e| DefinitionError {
                place: format!("{place}.where"),
                message: format!("must be a list of {{ property, op, value }}: {e}"),
            })?,
        };
        let filters = check_filters(place, &filters)?;
        let (op, count) = match o.get("count") {
            None => (Op::Gte, 1.0),
            Some(c) => {
                let cplace = format!("{place}.count");
                let op = c.get("op").and_then(Json::as_str).unwrap_or("");
                let (op, value, _) = check_op(&cplace, op, c.get("value"))?;
                if !matches!(
                    op,
                    Op::Equals | Op::NotEquals | Op::Lt | Op::Lte | Op::Gt | Op::Gte
                ) {
                    return err(
                        format!("{cplace}.op"),
                        "a count compares with equals, not_equals, lt, lte, gt or gte",
                    );
                }
                match value.as_f64() {
                    Some(n) => (op, n),
                    None => return err(format!("{cplace}.value"), "must be a number"),
                }
            }
        };
        return Ok(Condition::Event {
            events,
            within,
            filters,
            op,
            count,
        });
    }
    if o.contains_key("audience") {
        allow(&["audience"])?;
        return Ok(Condition::Audience(text("audience")?.unwrap_or_default()));
    }
    err(
        place,
        "a condition names a `trait`, an `event`, an `audience`, or nests `all` / `any` / `none`",
    )
}

/// The audiences each audience references.
fn references(c: &Condition, out: &mut Vec<String>) {
    match c {
        Condition::Audience(k) => out.push(k.clone()),
        Condition::All(v) | Condition::Any(v) | Condition::None(v) => {
            v.iter().for_each(|c| references(c, out))
        }
        Condition::Trait { .. } | Condition::Event { .. } => {}
    }
}

/// Orders audiences so each follows the ones it references; refuses unknown
/// references and cycles.
fn in_reference_order(audiences: Vec<Audience>) -> Result<Vec<Audience>, DefinitionError> {
    let refs: BTreeMap<String, Vec<String>> = audiences
        .iter()
        .map(|a| {
            let mut r = Vec::new();
            references(&a.condition, &mut r);
            (a.key.clone(), r)
        })
        .collect();
    for (key, rs) in &refs {
        if let Some(r) = rs.iter().find(|r| !refs.contains_key(*r)) {
            return err(
                format!("audiences.{key}.audience"),
                format!("no audience has the key {r:?}"),
            );
        }
    }
    // Depth-first, in config order; `path` is the chain being visited.
    fn visit(
        key: &str,
        refs: &BTreeMap<String, Vec<String>>,
        done: &mut Vec<String>,
        path: &mut Vec<String>,
    ) -> Result<(), DefinitionError> {
        if done.iter().any(|d| d == key) {
            return Ok(());
        }
        if path.iter().any(|p| p == key) {
            path.push(key.to_owned());
            return err(
                format!("audiences.{}.audience", path[0]),
                format!(
                    "would create a cycle by referencing another audience ({})",
                    path.join(" -> ")
                ),
            );
        }
        path.push(key.to_owned());
        for r in &refs[key] {
            visit(r, refs, done, path)?;
        }
        path.pop();
        done.push(key.to_owned());
        Ok(())
    }
    let mut done = Vec::new();
    for a in &audiences {
        visit(&a.key, &refs, &mut done, &mut Vec::new())?;
    }
    let mut by_key: BTreeMap<String, Audience> =
        audiences.into_iter().map(|a| (a.key.clone(), a)).collect();
    Ok(done.iter().filter_map(|k| by_key.remove(k)).collect())
}

#[cfg(test)]
mod tests;
