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
//! each time for `new`, the same warm one for `known`; freshly parsed events
//! each time, as events keep what they build on first use) and prints the
//! wall time of the passes per event:
//!
//! ```text
//! target/release/examples/profile_engine 200000 new 10
//! ```
//!
//! A fourth argument `-` reads the events from standard input (JSON lines,
//! the first `events` of them; refused ones are skipped) instead of the
//! benchmark's mix, e.g. a `profiles-sync gen` stream, whose events carry
//! the large `context` objects of real SDKs:
//!
//! ```text
//! zcat events.jsonl.gz | valgrind --tool=callgrind --toggle-collect='*process_all*' \
//!     target/release/examples/profile_engine 50000 new 1 -
//! ```

// The engine runs inside `profiles-sync`, on its allocator; glibc's malloc
// would make the figures those of a binary we do not ship.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let texts: Vec<String> = if args.next().as_deref() == Some("-") {
        use std::io::BufRead;
        let lines = std::io::stdin().lock().lines().take(n);
        lines.map(|l| l.expect("stdin")).collect()
    } else {
        realistic_mix(42, n).iter().map(|v| v.to_string()).collect()
    };
    // Fresh events for every pass: an event keeps what it built on first use
    // (its lazily built `serde_json` maps), and a second pass over the same
    // events would not pay for it again.
    let parse = || -> Vec<Event> {
        let parse = |t: &String| ps_spec::parse_event_str(t, &Default::default()).ok();
        texts.iter().filter_map(parse).collect()
    };
    let mut e = default_engine();
    let mut fx = Vec::with_capacity(64);
    if known {
        black_box(warm_up(&mut e, &parse(), &mut fx));
    }
    let (mut out, mut n) = (0, 0);
    let mut timed = std::time::Duration::ZERO;
    for pass in 0..passes {
        if !known && pass > 0 {
            e = default_engine();
        }
        let events = parse();
        n = events.len();
        let start = std::time::Instant::now();
        out = black_box(process_all(&mut e, &events, &mut fx));
        timed += start.elapsed();
    }
    if passes > 0 {
        let ns = timed.as_nanos() as f64 / (passes * n) as f64;
        println!("{ns:.1} ns/event ({:.2}M events/s)", 1e3 / ns);
    }
    println!(
        "{n} events: {} profiles, {} identifiers, checksum {out}",
        e.profile_count(),
        e.identifier_count()
    );
}
