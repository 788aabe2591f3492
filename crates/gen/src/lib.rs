//! # ps-gen: a deterministic, realistic Segment event-stream generator
//!
//! Produces newline-delimited Segment-spec payloads (`identify`, `track`,
//! `page`, `screen`, `group`, `alias`) that look like the traffic of a real
//! product: an online shop ("ShopWave") with a website, iOS and Android apps
//! and a backend. It feeds tests, benchmarks and demos of profiles-sync
//! (`profiles-sync gen`): it stands before the flow events → spec (validate,
//! normalize) → identity → pipeline → warehouse → materialize, producing
//! the events, and depends on none of those crates.
//!
//! ## Main types
//! - [`GenConfig`]: how many lines, the seed and the number of sources.
//! - [`Generator`]: the stream as an iterator of payloads;
//!   [`generate`] writes it as JSON lines.
//! - [`Shape`]: statistics of what was generated (counts per type,
//!   distinct ids, duplicates, late events, the merges identity resolution
//!   should find); [`sources`] names the sources the stream's write keys
//!   belong to.
//!
//! Inside, lowest first: `rng` (the seeded PRNG) and `catalog` (the shop's
//! products, pages, devices, places and campaigns) feed `sim` (the simulated
//! population),
//! which writes each payload with `json`.
//!
//! ## Determinism
//!
//! The same ([`GenConfig::events`], [`GenConfig::seed`],
//! [`GenConfig::sources`]) always yields byte-identical output, on any
//! machine and with any future build: randomness comes from
//! `rand_xoshiro`'s xoshiro256** (seeded by SplitMix64) through draws
//! written in this crate, no hash-map order is ever observed,
//! and every number is written from integers (money is kept in cents). Any
//! change to this crate that alters the output for a given config is a
//! breaking change for recorded fixtures.
//!
//! ## The simulated population
//!
//! Time runs from 2024-01-01T00:00:00Z over 30 days whatever the number of
//! events; line *i* gets its own slice of the period, so timestamps are
//! monotone apart from deliberately late events.
//!
//! * **Visitors** (people) arrive over time: 45% of sessions come from a
//!   visitor never seen before (more at the very start, while the audience
//!   builds up), the rest from returning ones, known users being three times
//!   as likely to return as anonymous visitors. 40% of visitors are inclined
//!   to sign up and do so in a later session (50% chance per session, certain
//!   from their third), so about 75% of visitors never identify.
//! * **Devices.** A visitor uses a browser (web) and/or a phone (iOS 55%,
//!   Android 45%); each device has an `anonymousId` (a v4-looking UUID).
//!   85% of sessions reuse the visitor's last device of that kind, the rest
//!   start on a new one. Browsers lose their cookie at the start of 7% of
//!   sessions and apps are reinstalled in 2%: the device gets a new
//!   `anonymousId` and is logged out.
//! * **Sessions** are runs of events (geometric length, mean ≈ 8) from one
//!   device, interleaved with many concurrent sessions. Web sessions land on
//!   a page (with an external referrer and, in 22% of sessions, a UTM
//!   campaign) and then alternate page views and shopping tracks that follow
//!   a funnel (`Product Viewed` → `Product Added` → `Cart Viewed` →
//!   `Checkout Started` → `Order Completed`, plus searches, list views,
//!   videos, clicks, coupons). App sessions open with `Application
//!   Installed`/`Opened` (sometimes from a push notification), alternate
//!   screens and tracks, and sometimes end with `Application Backgrounded`.
//! * **Sign-up**: a signup page/screen, sometimes an `alias` (previousId =
//!   the device's anonymousId; 35% of app sign-ups, 8% of web ones), an
//!   `identify` with the new `userId` and traits (`email`, `name`, `plan`,
//!   `createdAt`, `address{city,country}`, …), `Signed Up`, and for the 45%
//!   of users who work at a company (B2B accounts shared by several users),
//!   a `group` call with firmographic traits. The device stays logged in:
//!   later events carry the `userId`.
//! * **Log-in**: a known user on a device where they are not logged in
//!   (new device, cleared cookie) logs in during 80% of sessions, usually
//!   after browsing anonymously for a few events: `identify` with the same
//!   `userId` on that device's `anonymousId`, then `Signed In`.
//! * **Returning logged-in users** re-identify at the start of 70% of
//!   sessions (and on 12% of web route changes), sometimes with a `group`
//!   call, and 3% of their sessions change their e-mail address (a later
//!   `identify` with a different `traits.email`). A device runs one session
//!   at a time.
//! * **Shared devices**: 6% of known users' new web devices are another
//!   user's browser (a family computer): both users identify on the same
//!   `anonymousId`.
//! * **Channels**: of the human events, about 63% come from browsers, 28%
//!   from the apps and 9% from the backend.
//! * **Backend**: `identify` with computed traits (orders count, lifetime
//!   value, tags), `group` for company users, and billing/fulfilment tracks
//!   (`Subscription Renewed`, `Invoice Paid`, `Order Shipped`) for known
//!   users, keyed by `userId` and carrying the `anonymousId` only 35% of the
//!   time.
//! * **Bots**: 0.5% of events come from three crawlers (one anonymousId
//!   each, page calls only, crawler user agents).
//! * **Delivery noise**: 0.5% of lines are duplicates (a recent line
//!   re-emitted verbatim, same `messageId`), and 1% of events are late
//!   (timestamp from a second to three days older than the newest timestamp
//!   already emitted; `sentAt` is the delivery time).
//!
//! With [`GenConfig::sources`] > 1, web traffic (and the bots) goes to
//! `source_1`, mobile to `source_2` and the backend to `source_3`; further
//! sources are dealt round-robin to the three channels (4 → web, 5 → mobile,
//! …) and a device or user sticks to one of its channel's sources. A channel
//! without a source of its own uses `source_{channel mod sources + 1}`.
//!
//! The overall mix is roughly track 42%, page 35%, screen 12%, identify 7-8%,
//! group 2.5-3%, alias 0.15%, with payloads of 0.4-2.2 KB (about 1 KB on
//! average). Generation streams: memory grows only with the simulated
//! population, not with the lines written (`examples/gen_speed.rs` times
//! it; figures belong in `BENCHMARKS.md`).
//!
//! ## Usage
//!
//! ```
//! use ps_gen::{generate, GenConfig, Generator};
//!
//! let cfg = GenConfig { events: 500, seed: 7, sources: 3 };
//! let mut out = Vec::new();
//! let shape = generate(&cfg, &mut out).unwrap();
//! assert_eq!(shape.events, 500);
//! assert_eq!(shape.bytes, out.len() as u64);
//!
//! // The same stream, one payload at a time.
//! let mut g = Generator::new(&cfg);
//! let first: String = g.next().unwrap();
//! assert!(out.starts_with(first.as_bytes()));
//! assert_eq!(g.shape().events, 1);
//! ```

#![warn(missing_docs, unreachable_pub)]

mod catalog;
mod json;
mod rng;
mod shape;
mod sim;

use std::io::{self, Write};

use json::Json;
use sim::{EventType, Sim, DUPLICATE_SHARE};

pub use shape::Shape;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenConfig {
    /// Number of lines (events, duplicates included).
    pub events: u64,
    /// PRNG seed: different seeds give different streams.
    pub seed: u64,
    /// Number of sources (≥ 1; 0 is treated as 1). See the crate docs.
    pub sources: u32,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            events: 10_000,
            seed: 42,
            sources: 1,
        }
    }
}

/// How many recent lines are kept as candidates for duplicates.
const RECENT: usize = 32;

/// The event stream of a [`GenConfig`]: an iterator of JSON payloads (one
/// per item, no trailing newline), `cfg.events` of them.
#[derive(Debug)]
pub struct Generator {
    sim: Sim,
    json: Json,
    recent: Vec<(String, EventType)>,
    recent_next: usize,
    produced: u64,
    events: u64,
}

impl Generator {
    /// The stream of `cfg`, from its first line.
    pub fn new(cfg: &GenConfig) -> Generator {
        Generator {
            sim: Sim::new(cfg.events, cfg.seed, cfg.sources),
            json: Json::with_capacity(4096),
            recent: Vec::with_capacity(RECENT),
            recent_next: 0,
            produced: 0,
            events: cfg.events,
        }
    }

    /// Statistics of what was yielded so far.
    pub fn shape(&self) -> &Shape {
        &self.sim.shape
    }

    /// The next line, borrowed from an internal buffer (no allocation);
    /// the same sequence as the [`Iterator`] implementation.
    pub fn next_line(&mut self) -> Option<&str> {
        if self.produced >= self.events {
            return None;
        }
        let i = self.produced;
        self.produced += 1;
        self.json.clear();
        self.sim.set_clock(i);
        let ty = if !self.recent.is_empty() && self.sim.rng.chance(DUPLICATE_SHARE) {
            let k = self.sim.rng.index(self.recent.len());
            let (line, ty) = &self.recent[k];
            self.json.buf.push_str(line);
            self.sim.shape.duplicates += 1;
            *ty
        } else {
            let ty = self.sim.step(&mut self.json);
            if self.recent.len() < RECENT {
                self.recent.push((self.json.buf.clone(), ty));
            } else {
                let slot = &mut self.recent[self.recent_next];
                slot.0.clear();
                slot.0.push_str(&self.json.buf);
                slot.1 = ty;
                self.recent_next = (self.recent_next + 1) % RECENT;
            }
            ty
        };
        let shape = &mut self.sim.shape;
        shape.events += 1;
        shape.bytes += self.json.buf.len() as u64 + 1;
        match shape.by_type.get_mut(ty.as_str()) {
            Some(n) => *n += 1,
            None => {
                shape.by_type.insert(ty.as_str().to_owned(), 1);
            }
        }
        Some(&self.json.buf)
    }
}

impl Iterator for Generator {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.next_line().map(str::to_owned)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.events - self.produced).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

/// Writes `cfg.events` JSON lines (each ending in '\n') to `out`, returns the shape.
///
/// Output is buffered internally and flushed before returning.
pub fn generate<W: Write>(cfg: &GenConfig, out: W) -> io::Result<Shape> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    let mut g = Generator::new(cfg);
    while let Some(line) = g.next_line() {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(g.sim.shape)
}

/// Sources of a generated stream: (id, name, slug, write_key) = ("source_N", "Source N", "source-n", "wk_source_N") for N in 1..=sources.
pub fn sources(n: u32) -> Vec<(String, String, String, String)> {
    (1..=n)
        .map(|i| {
            (
                format!("source_{i}"),
                format!("Source {i}"),
                format!("source-{i}"),
                format!("wk_source_{i}"),
            )
        })
        .collect()
}
