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
//!
//! A third argument repeats the counted pass that many times (a fresh engine
//! each time for `new`, the same warm one for `known`) and prints the wall
//! time per event, so that `perf stat -e cycles,instructions` of a run with
//! `0` passes subtracted from one with many gives cycles per event:
//!
//! ```text
//! perf stat -e cycles,instructions target/release/examples/profile_engine 100000 new 20
//! ```

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
    let passes: usize = args.next().map_or(1, |a| a.parse().expect("pass count"));
    let events: Vec<Event> = realistic_mix(42, n)
        .iter()
        .map(|v| ps_spec::parse_event_str(&v.to_string(), &Default::default()).unwrap())
        .collect();
    let mut e = default_engine();
    let mut fx = Vec::with_capacity(64);
    if known {
        black_box(warm_up(&mut e, &events, &mut fx));
    }
    let mut out = 0;
    let start = std::time::Instant::now();
    for pass in 0..passes {
        if !known && pass > 0 {
            e = default_engine();
        }
        out = black_box(process_all(&mut e, &events, &mut fx));
    }
    if passes > 1 {
        let ns = start.elapsed().as_nanos() as f64 / (passes * n) as f64;
        println!("{ns:.1} ns/event ({:.2}M events/s)", 1e3 / ns);
    }
    println!(
        "{n} events: {} profiles, {} identifiers, checksum {out}",
        e.profile_count(),
        e.identifier_count()
    );
}
