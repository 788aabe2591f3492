//! One pass of the identity engine over the benchmark's realistic mix, for
//! instruction counts (wall-clock figures are noisy on a shared machine):
//!
//! ```text
//! cargo build --release -p ps-identity --example profile_engine
//! valgrind --tool=callgrind --toggle-collect='*process_all*' \
//!     target/release/examples/profile_engine [events]
//! callgrind_annotate --inclusive=yes callgrind.out.<pid>
//! ```
//!
//! Only `process_all` is counted (parsing is outside it), so the collected
//! total divided by the number of events is the engine's instructions per
//! event. A second argument `known` processes the stream twice and counts only
//! the second pass (every identifier already known).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use ps_identity::{Effect, Engine};
use ps_spec::Event;
use std::hint::black_box;

#[inline(never)]
fn warm_up(e: &mut Engine, events: &[Event], fx: &mut Vec<Effect>) -> u64 {
    let mut n = 0u64;
    for ev in events {
        fx.clear();
        n += e.process(ev, fx).merges as u64;
    }
    n
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(100_000, |a| a.parse().expect("event count"));
    let known = args.next().as_deref() == Some("known");
    let events: Vec<Event> = realistic_mix(42, n)
        .iter()
        .map(|v| ps_spec::parse_event_str(&v.to_string(), &Default::default()).unwrap())
        .collect();
    let mut e = default_engine();
    let mut fx = Vec::with_capacity(64);
    if known {
        black_box(warm_up(&mut e, &events, &mut fx));
    }
    let out = black_box(process_all(&mut e, &events, &mut fx));
    println!(
        "{n} events: {} profiles, {} identifiers, checksum {out}",
        e.profile_count(),
        e.identifier_count()
    );
}
