//! A computed value depends on a profile's events, not on the order they
//! arrived in or on how they were split between profiles before a merge:
//! every kind, over random histories, equals itself over any permutation,
//! and over the union of two halves.

use proptest::prelude::*;
use ps_compute::{computed_value, Definitions, Fact, RawDefinitions};
use serde_json::{json, Value as Json};

const KINDS: &str = r#"
[[computed_traits]]
key = "n"
kind = "count"
event = "Order Completed"
within = "3d"
[[computed_traits]]
key = "s"
kind = "sum"
event = "*"
property = "v"
[[computed_traits]]
key = "a"
kind = "avg"
events = ["Order Completed", "Page Viewed"]
property = "v"
[[computed_traits]]
key = "lo"
kind = "min"
event = "Order Completed"
property = "v"
[[computed_traits]]
key = "hi"
kind = "max"
event = "Order Completed"
property = "v"
where = [{ property = "c", op = "not_equals", value = "z" }]
[[computed_traits]]
key = "f"
kind = "first"
event = "Order Completed"
property = "c"
[[computed_traits]]
key = "l"
kind = "last"
event = "Order Completed"
property = "c"
within = "5d"
[[computed_traits]]
key = "m"
kind = "most_frequent"
event = "Order Completed"
property = "c"
[[computed_traits]]
key = "u"
kind = "unique_list"
event = "*"
property = "c"
list_cap = 2
[[computed_traits]]
key = "uc"
kind = "unique_count"
event = "Order Completed"
property = "c"
within = "2d"
"#;

const DAY: i64 = 86_400_000_000;

fn fact((name, day, id, v, c): (u8, i64, u8, Option<i64>, Option<u8>)) -> Fact {
    let mut props = serde_json::Map::new();
    if let Some(v) = v {
        props.insert("v".into(), json!(v));
    }
    if let Some(c) = c {
        props.insert("c".into(), json!(["x", "y", "z"][c as usize % 3]));
    }
    let name = ["Order Completed", "Page Viewed", "Signed Up"][name as usize % 3];
    // Several events share a day and some a message id: ties must not depend on order.
    Fact::new(
        name,
        1_700_000_000_000_000 + day * DAY,
        &format!("m{id}"),
        json!({ "properties": props }),
    )
}

fn values(defs: &Definitions, facts: &[Fact], as_of: i64) -> Vec<Json> {
    defs.traits
        .iter()
        .map(|t| computed_value(t, facts, as_of))
        .collect()
}

proptest! {
    #[test]
    fn order_and_merges_do_not_change_any_value(
        raw in prop::collection::vec(
            (0u8..3, 0i64..10, 0u8..20, prop::option::of(-5i64..50), prop::option::of(0u8..3)),
            0..40,
        ),
        seed in any::<u64>(),
        split in any::<prop::sample::Index>(),
        as_of_day in 0i64..12,
    ) {
        let defs = Definitions::check(&toml::from_str::<RawDefinitions>(KINDS).unwrap(), &[]).unwrap();
        let facts: Vec<Fact> = raw.into_iter().map(fact).collect();
        let as_of = 1_700_000_000_000_000 + as_of_day * DAY;
        let want = values(&defs, &facts, as_of);
        // A permutation (a deterministic shuffle from the seed).
        let mut shuffled = facts.clone();
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(&values(&defs, &shuffled, as_of), &want);
        // Two profiles' events, merged: the union in either order.
        let cut = if facts.is_empty() { 0 } else { split.index(facts.len() + 1) };
        let (a, b) = facts.split_at(cut);
        let merged: Vec<Fact> = b.iter().chain(a).cloned().collect();
        prop_assert_eq!(&values(&defs, &merged, as_of), &want);
    }
}
