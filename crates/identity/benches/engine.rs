//! The identity engine alone, on pre-parsed events (parsing is outside the
//! timed loop). `cargo bench -p ps-identity --bench engine` reports events/s.
//!
//! Three figures:
//! - `hot_events`: events are parsed in chunks of 1,000 (untimed) and each chunk
//!   is processed right after, as the pipeline does: the event is still in
//!   cache, the engine's state is as large as the stream makes it.
//! - `cold_events`: all events parsed up front and then processed in one pass;
//!   every event's payload is a cache miss (pessimistic).
//! - `known_ids_cold`: the same pass again on an engine that already knows every
//!   identifier (lookups, last-seen updates, trait diffs; no new profiles).
//!
//! Every pass gets events that were never processed (clones of unprocessed
//! ones, cloned outside the timed part).

// The engine runs inside `profiles-sync`, on its allocator; glibc's malloc
// would make the figures those of a binary we do not ship.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ps_spec::Event;
use std::hint::black_box;
use std::time::{Duration, Instant};

const N: usize = 200_000;
const CHUNK: usize = 1_000;

fn bench(c: &mut Criterion) {
    let texts: Vec<String> = realistic_mix(42, N).iter().map(|v| v.to_string()).collect();
    let parse = |t: &String| ps_spec::parse_event_str(t, &Default::default()).unwrap();
    let mut g = c.benchmark_group("identity");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("hot_events", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut e = default_engine();
                let mut fx = Vec::with_capacity(64);
                for chunk in texts.chunks(CHUNK) {
                    let events: Vec<Event> = chunk.iter().map(parse).collect();
                    let start = Instant::now();
                    black_box(process_all(&mut e, &events, &mut fx));
                    total += start.elapsed();
                }
            }
            total
        })
    });
    // Never processed: each iteration gets a clone, because an event keeps
    // what it builds on first use (its lazily built `serde_json` maps) and a
    // second pass over the same events would not pay for it again.
    let events: Vec<Event> = texts.iter().map(parse).collect();
    g.bench_function("cold_events", |b| {
        b.iter_batched(
            || (default_engine(), events.clone()),
            |(mut e, events)| {
                let mut fx = Vec::with_capacity(64);
                black_box(process_all(&mut e, &events, &mut fx));
                (e, events)
            },
            BatchSize::PerIteration,
        )
    });
    let mut warm = default_engine();
    let mut fx = Vec::with_capacity(64);
    process_all(&mut warm, &events.clone(), &mut fx);
    g.bench_function("known_ids_cold", |b| {
        b.iter_batched(
            || events.clone(),
            |events| {
                black_box(process_all(&mut warm, &events, &mut fx));
                events
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
