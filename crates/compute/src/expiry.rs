//! When a profile's values can next change with time alone: the earliest
//! instant after `as_of` at which [`crate::computed_value`] or
//! [`crate::audience_members`] over the same events and traits may give a
//! different answer. A tick re-evaluates only the profiles whose instant has
//! come, so it costs what ages out, not what is stored.
//!
//! Time enters the values in three places, and each gives instants:
//!
//! - a window `within = W` counts an event at `t` while `t <= as_of < t +
//!   W`: it enters at `t` (an event from the future) and leaves at `t + W`;
//! - a filter with a relative-date operator (`within_last`, …) on an event's
//!   value flips where [`Op::change_points`] says;
//! - an audience condition with a relative-date operator on a trait flips
//!   likewise, on the trait's current value.
//!
//! The answer may be early (a filter that excludes the event is not looked
//! at, for instance): an early instant costs one re-evaluation that finds
//! nothing changed, a late one would leave a wrong value, so every instant
//! that can matter is counted.

use crate::condition::Op;
use crate::definition::{Condition, Definitions, EventFilter, EventMatch};
use crate::evaluate::Fact;
use serde_json::{Map, Value as Json};

/// Events a definition counts, where their time matters.
#[derive(Debug, Clone)]
struct Clock {
    events: EventMatch,
    within: Option<i64>,
    /// Filters with a relative-date operator.
    relative: Vec<EventFilter>,
}

/// The time-dependent parts of a space's definitions, to find each
/// profile's next instant of change ([`Expiry::next_change`]).
#[derive(Debug, Clone, Default)]
pub struct Expiry {
    clocks: Vec<Clock>,
    /// Audience conditions on a trait with a relative-date operator: key,
    /// operator, duration.
    traits: Vec<(String, Op, Option<i64>)>,
}

fn clock(events: &EventMatch, within: Option<i64>, filters: &[EventFilter]) -> Option<Clock> {
    let relative: Vec<EventFilter> = filters
        .iter()
        .filter(|f| f.op.takes_duration())
        .cloned()
        .collect();
    (within.is_some() || !relative.is_empty()).then(|| Clock {
        events: events.clone(),
        within,
        relative,
    })
}

impl Expiry {
    /// The time-dependent parts of `defs`.
    pub fn new(defs: &Definitions) -> Expiry {
        fn walk(c: &Condition, out: &mut Expiry) {
            match c {
                Condition::Trait {
                    key, op, duration, ..
                } if op.takes_duration() => out.traits.push((key.clone(), *op, *duration)),
                Condition::Trait { .. } | Condition::Audience(_) => {}
                Condition::Event {
                    events,
                    within,
                    filters,
                    ..
                } => out.clocks.extend(clock(events, *within, filters)),
                Condition::All(v) | Condition::Any(v) | Condition::None(v) => {
                    v.iter().for_each(|c| walk(c, out))
                }
            }
        }
        let mut out = Expiry::default();
        for t in &defs.traits {
            out.clocks.extend(clock(&t.events, t.within, &t.filters));
        }
        for a in &defs.audiences {
            walk(&a.condition, &mut out);
        }
        out
    }

    /// Whether no value of these definitions depends on time.
    pub fn timeless(&self) -> bool {
        self.clocks.is_empty() && self.traits.is_empty()
    }

    /// Whether the definitions read traits through relative-date operators
    /// (so a profile without events can change with time).
    pub fn reads_trait_times(&self) -> bool {
        !self.traits.is_empty()
    }

    /// The keys of the traits read through relative-date operators.
    pub fn trait_keys(&self) -> impl Iterator<Item = &str> {
        self.traits.iter().map(|(k, _, _)| k.as_str())
    }

    /// The earliest instant after `as_of` at which the values of a profile
    /// with these `traits` (custom and computed, by key; only
    /// [`Expiry::trait_keys`] are read) and `facts` may differ from its
    /// values at `as_of`; `None` if they never change with time alone.
    pub fn next_change(
        &self,
        traits: &Map<String, Json>,
        facts: &[Fact],
        as_of: i64,
    ) -> Option<i64> {
        let mut next: Option<i64> = None;
        let mut see = |t: i64| {
            if t > as_of && next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        for (key, op, duration) in &self.traits {
            op.change_points(traits.get(key), *duration)
                .into_iter()
                .for_each(&mut see);
        }
        for f in facts {
            for c in &self.clocks {
                if !c.events.matches(&f.name) {
                    continue;
                }
                if let Some(w) = c.within {
                    see(f.timestamp);
                    see(f.timestamp.saturating_add(w));
                }
                for r in &c.relative {
                    r.op.change_points(f.read(&r.path).as_deref(), r.duration)
                        .into_iter()
                        .for_each(&mut see);
                }
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::RawDefinitions;
    use crate::evaluate::{audience_members, computed_value, Profile};
    use ps_spec::time::parse_timestamp;
    use serde_json::json;

    const HOUR: i64 = 3_600_000_000;

    fn defs(text: &str) -> Definitions {
        let raw: RawDefinitions = toml::from_str(text).unwrap();
        Definitions::check(&raw, &[]).unwrap()
    }

    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    /// Every value of `d` over `p` at `as_of`.
    fn values(d: &Definitions, p: &Profile, as_of: i64) -> Vec<serde_json::Value> {
        let mut out: Vec<serde_json::Value> = d
            .traits
            .iter()
            .map(|t| computed_value(t, &p.facts, as_of))
            .collect();
        out.extend(
            audience_members(&d.audiences, p, as_of)
                .into_values()
                .map(serde_json::Value::Bool),
        );
        out
    }

    /// Between `as_of` and the next instant of change the values stay;
    /// at that instant (checked hour by hour around it) they may change.
    fn assert_exact_until_next(d: &Definitions, p: &Profile, as_of: i64) {
        let e = Expiry::new(d);
        let at = values(d, p, as_of);
        let next = e.next_change(&p.traits, &p.facts, as_of);
        let end = next.unwrap_or(as_of + 400 * 24 * HOUR);
        let mut t = as_of;
        while t < end {
            assert_eq!(values(d, p, t), at, "changed at {t} before {next:?}");
            t += HOUR / 4;
        }
        assert_eq!(values(d, p, end - 1), at);
    }

    #[test]
    fn windows_relative_filters_and_trait_times_give_the_next_instant() {
        let d = defs(
            r#"
            [[computed_traits]]
            key = "orders_2d"
            kind = "count"
            event = "Order Completed"
            within = "2d"
            [[computed_traits]]
            key = "revenue"
            kind = "sum"
            event = "Order Completed"
            property = "revenue"
            [[computed_traits]]
            key = "due_soon"
            kind = "count"
            event = "Invoice"
            where = [ { property = "due", op = "within_next", value = "1d" } ]
            [[audiences]]
            key = "trial_ending"
            all = [ { trait = "trial_end", op = "within_next", value = "3d" } ]
            "#,
        );
        let e = Expiry::new(&d);
        assert!(!e.timeless() && e.reads_trait_times());
        let mut p = Profile {
            identified: true,
            ..Profile::default()
        };
        let as_of = ts("2024-01-10T00:00:00Z");
        // Nothing stored: nothing ages.
        assert_eq!(e.next_change(&p.traits, &p.facts, as_of), None);
        p.facts.push(Fact::new(
            "Order Completed",
            ts("2024-01-09T00:00:00Z"),
            "m1",
            json!({"properties": {"revenue": 5}}),
        ));
        // Leaves the 2-day window at its time + 2 days.
        assert_eq!(
            e.next_change(&p.traits, &p.facts, as_of),
            Some(ts("2024-01-11T00:00:00Z"))
        );
        assert_exact_until_next(&d, &p, as_of);
        // An order from the future enters the window at its own time.
        p.facts.push(Fact::new(
            "Order Completed",
            ts("2024-01-10T06:00:00Z"),
            "m2",
            json!({}),
        ));
        assert_eq!(
            e.next_change(&p.traits, &p.facts, as_of),
            Some(ts("2024-01-10T06:00:00Z"))
        );
        assert_exact_until_next(&d, &p, as_of);
        // A due date one day ahead becomes "within the next day" one day
        // before it.
        p.facts.push(Fact::new(
            "Invoice",
            ts("2024-01-01T00:00:00Z"),
            "i1",
            json!({"properties": {"due": "2024-01-10T03:00:00Z"}}),
        ));
        assert_eq!(
            e.next_change(&p.traits, &p.facts, as_of),
            Some(ts("2024-01-10T03:00:00Z") + 1)
        );
        assert_exact_until_next(&d, &p, as_of);
        // A trait date: enters the audience 3 days before it.
        p.facts.clear();
        p.traits
            .insert("trial_end".into(), json!("2024-01-14T00:00:00Z"));
        assert_eq!(
            e.next_change(&p.traits, &p.facts, as_of),
            Some(ts("2024-01-11T00:00:00Z"))
        );
        assert_exact_until_next(&d, &p, as_of);
        // All-time kinds alone never age.
        let plain = defs("[[computed_traits]]\nkey = \"n\"\nkind = \"count\"\nevent = \"*\"");
        assert!(Expiry::new(&plain).timeless());
    }
}
