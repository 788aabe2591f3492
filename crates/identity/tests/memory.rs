//! Heap bytes the engine holds per profile, measured with a counting global
//! allocator (`stats_alloc`: no `unsafe` here, which the workspace forbids).
//! Run with `--nocapture` to see the figures.

mod common;

use common::*;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn bytes_per_profile() {
    let events: Vec<_> = realistic_mix(7, 120_000).iter().map(event).collect();
    let region = Region::new(GLOBAL);
    let mut e = default_engine();
    let mut fx = Vec::with_capacity(64);
    let mut merges = 0u64;
    let mut conflicts = 0u64;
    for ev in &events {
        fx.clear();
        merges += e.process(ev, &mut fx).merges as u64;
        conflicts += fx
            .iter()
            .filter(|f| matches!(f, ps_identity::Effect::Conflict(_)))
            .count() as u64;
    }
    drop(fx);
    let dirty = e.take_dirty();
    drop(dirty);
    let s = region.change();
    let live = s.bytes_allocated as i64 - s.bytes_deallocated as i64;
    let profiles = e.profile_count() as i64;
    let live_profiles = (0..e.profile_count() as u32)
        .filter(|&p| e.canonical(p) == p)
        .count();
    let idents = e.identifier_count() as i64;
    println!(
        "{} events: {profiles} profiles ({live_profiles} live, {merges} merges, {conflicts} conflicts), {idents} identifiers; \
         engine heap {live} bytes = {} bytes/profile, {} bytes/identifier",
        events.len(),
        live / profiles,
        live / idents
    );
    // A loose guard: a profile with ~1.3 identifiers and a few traits should
    // stay well under a kilobyte.
    assert!(
        live / profiles < 1024,
        "{} bytes per profile",
        live / profiles
    );
}
