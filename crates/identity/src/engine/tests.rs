//! Tests of the engine's internals: trait updates read from the tape
//! against the plain `serde_json` version.

use super::record::TraitRec;
use super::*;

/// `apply_traits` as it was, on the `serde_json` map of the traits (the
/// payload as `serde_json` reads it): names from `for_each_leaf`, values
/// compared and cloned as `serde_json` values.
fn apply_traits_reference(
    e: &mut Engine,
    p: ProfileIdx,
    body: Option<&serde_json::Map<String, Json>>,
) -> bool {
    let Some(body) = body else { return false };
    let order = e.order;
    let (names, hasher) = (&mut e.names, &e.hasher);
    let traits = &mut e.profiles[p as usize].traits;
    let mut changed = false;
    ps_spec::flatten::for_each_leaf(body, "", |name, leaf| {
        if name.is_empty() {
            return;
        }
        let id = names.id(hasher, name);
        match traits.iter_mut().find(|x| x.name == id) {
            Some(x) => {
                if x.value != *leaf {
                    changed = true;
                    x.value = leaf.clone();
                }
                x.order = order;
            }
            None => {
                changed |= !leaf.is_null();
                traits.push(TraitRec {
                    name: id,
                    value: leaf.clone(),
                    order,
                });
            }
        }
    });
    e.mark(p);
    changed
}

/// Trait updates read from the tape change exactly what the map version
/// changed, report the same `changed`, and leave the same snapshot
/// bytes: on traits with repeated and unsorted keys, keys that name the
/// same trait (`planName`, `plan_name`), nested objects, arrays holding
/// objects, and numbers `serde_json` tells apart (`1`, `1.0`, `-0`).
#[test]
fn tape_traits_equal_map_traits() {
    use crate::testgen::{key_text, Rng, Tree, NUMBERS};
    const KEYS: [&str; 16] = [
        "plan",
        "email",
        "planName",
        "plan_name",
        "a_b",
        "_x",
        "x_",
        "a__b",
        "",
        "$$",
        "Ü",
        "2fa",
        "n1",
        "A",
        "a",
        "address",
    ];
    const STRINGS: [&str; 5] = ["free", "pro", "", "Pro", "x"];
    fn value(r: &mut Rng, depth: u32) -> Tree {
        match r.below(if depth == 0 { 6 } else { 8 }) {
            0 => Tree::Leaf("null".into()),
            1 => Tree::Leaf(["true", "false"][r.below(2) as usize].into()),
            2 => Tree::Leaf(r.pick(&NUMBERS).into()),
            3 | 4 => {
                let s = r.pick(&STRINGS);
                Tree::Leaf(key_text(r, s))
            }
            5 => Tree::Array(
                (0..r.below(3))
                    .map(|_| value(r, depth.saturating_sub(1)))
                    .collect(),
            ),
            _ => object(r, depth - 1),
        }
    }
    fn object(r: &mut Rng, depth: u32) -> Tree {
        let mut o = Tree::Object(Vec::new());
        for _ in 0..r.below(7) {
            let k = r.pick(&KEYS);
            let v = value(r, depth);
            o.put(r, k, v);
        }
        o
    }
    let mut r = Rng::new(0x2545_F491_4F6C_DD1D);
    let mut hits = 0;
    for round in 0..300 {
        let settings = || Settings::new(&Default::default()).unwrap();
        let (mut a, mut b) = (
            Engine::new(settings(), IdScheme::Sequential, "t"),
            Engine::new(settings(), IdScheme::Sequential, "t"),
        );
        let (pa, pb) = (a.create(&mut Vec::new()), b.create(&mut Vec::new()));
        // Names a store could hold that no key gives: a member under
        // `planName` still names `plan_name`.
        if round % 3 == 0 {
            for (e, p) in [(&mut a, pa), (&mut b, pb)] {
                for n in ["planName", "A"] {
                    let name = e.names.id(&e.hasher, n);
                    e.profiles[p as usize].traits.push(TraitRec {
                        name,
                        value: Json::from("stored"),
                        order: 0,
                    });
                }
            }
        }
        // Half the steps replay an earlier step's traits, so that the
        // engine applies them from a remembered key layout.
        let mut seen: Vec<String> = Vec::new();
        for step in 0..40 {
            let text = if !seen.is_empty() && r.below(2) == 0 {
                seen[r.below(seen.len() as u64) as usize].clone()
            } else {
                let traits = object(&mut r, 2).text();
                format!(r#"{{"type":"identify","userId":"u","traits":{traits}}}"#)
            };
            seen.push(text.clone());
            let ev = ps_spec::parse_event_str(&text, &Default::default()).unwrap();
            a.order += 1;
            b.order += 1;
            let got = a.apply_traits(pa, ev.body_ref());
            let want = apply_traits_reference(&mut b, pb, ev.body());
            assert_eq!(got, want, "round {round}, step {step}: {text}");
            assert_eq!(
                a.record(pa),
                b.record(pb),
                "round {round}, step {step}: {text}"
            );
            let (mut sa, mut sb) = (Vec::new(), Vec::new());
            a.encode_snapshot(0..1, &mut sa);
            b.encode_snapshot(0..1, &mut sb);
            assert_eq!(sa, sb, "round {round}, step {step}: {text}");
        }
        hits += a.shapes.hits;
    }
    assert!(hits > 1000, "{hits} events applied from a key layout");
}
