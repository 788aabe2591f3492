//! Random JSON *texts* for the differential tests of `extract` and the
//! engine's trait updates: keys repeat within an object (`serde_json` keeps
//! the last value), come in any order, and are sometimes written with
//! escapes; numbers come in every form `serde_json` reads differently
//! (integers, floats, `-0`, beyond `i64`). A `serde_json` map cannot hold
//! any of that, so these are built and written as text.

use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256StarStar;

/// A seeded xoshiro256** (value-stable, so a failing case reproduces), with
/// the few draws the generators make.
pub(crate) struct Rng(Xoshiro256StarStar);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(Xoshiro256StarStar::seed_from_u64(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(crate) fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// A JSON value whose objects are member lists (repeats allowed).
#[derive(Debug, Clone)]
pub(crate) enum Tree {
    /// A scalar's text.
    Leaf(String),
    Array(Vec<Tree>),
    /// Members: a key's text (quoted, maybe with escapes) and its value.
    Object(Vec<(String, Tree)>),
}

impl Tree {
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Tree::Leaf(s) => out.push_str(s),
            Tree::Array(xs) => {
                out.push('[');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out);
                }
                out.push(']');
            }
            Tree::Object(ms) => {
                out.push('{');
                for (i, (k, v)) in ms.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// Adds `key: v` to an object: usually last (so it is the value a map
    /// keeps), sometimes at a random place (an existing repeat after it then
    /// wins).
    pub(crate) fn put(&mut self, r: &mut Rng, key: &str, v: Tree) {
        let Tree::Object(ms) = self else { return };
        let k = key_text(r, key);
        if r.below(4) == 0 {
            let at = r.below(ms.len() as u64 + 1) as usize;
            ms.insert(at, (k, v));
        } else {
            ms.push((k, v));
        }
    }

    /// The value a `serde_json` map would keep for `key` (the last one), if
    /// it is an object, for adding to it.
    pub(crate) fn last_object(&mut self, key: &str) -> Option<&mut Tree> {
        let Tree::Object(ms) = self else { return None };
        let last = ms
            .iter_mut()
            .rev()
            .find(|(k, _)| serde_json::from_str::<String>(k).is_ok_and(|k| k == key))?;
        matches!(last.1, Tree::Object(_)).then_some(&mut last.1)
    }
}

/// A key as JSON text; one in eight has its first character escaped.
pub(crate) fn key_text(r: &mut Rng, key: &str) -> String {
    match key.chars().next() {
        Some(c) if c.is_ascii() && r.below(8) == 0 => {
            let rest = serde_json::to_string(&key[1..]).expect("a string");
            format!("\"\\u{:04x}{}", c as u32, &rest[1..])
        }
        _ => serde_json::to_string(key).expect("a string"),
    }
}

/// Scalars `serde_json` reads in different ways.
pub(crate) const NUMBERS: [&str; 11] = [
    "0",
    "0.0",
    "-1",
    "7",
    "1.5",
    "-0",
    "1e2",
    "100.0",
    "12345678901234567890",
    "-9223372036854775809",
    "9223372036854775807",
];

/// A random value: keys from `keys`, strings from `strings`.
pub(crate) fn value(r: &mut Rng, keys: &[&str], strings: &[&str], depth: u32) -> Tree {
    match r.below(if depth == 0 { 6 } else { 9 }) {
        0 => Tree::Leaf("null".into()),
        1 => Tree::Leaf(if r.below(2) == 0 { "true" } else { "false" }.into()),
        2 => Tree::Leaf(r.pick(&NUMBERS).into()),
        3..=5 => {
            let s = r.pick(strings);
            Tree::Leaf(key_text(r, s))
        }
        6 => Tree::Array(
            (0..r.below(3))
                .map(|_| value(r, keys, strings, depth - 1))
                .collect(),
        ),
        _ => object(r, keys, strings, depth - 1),
    }
}

/// A random object of up to 5 members (keys repeat often).
pub(crate) fn object(r: &mut Rng, keys: &[&str], strings: &[&str], depth: u32) -> Tree {
    let mut o = Tree::Object(Vec::new());
    for _ in 0..r.below(6) {
        let k = r.pick(keys);
        let v = value(r, keys, strings, depth);
        o.put(r, k, v);
    }
    o
}
