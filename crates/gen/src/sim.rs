//! The simulated population and the code that turns its behaviour into
//! Segment payloads. See the crate documentation for the model.
//!
//! Lower modules first: `model` (the world's types), `graph` (expected
//! merges), `salt` (attribute salts) and `fields` (shared field writers)
//! import nothing from here; `behaviour`, `calls`, `envelope` and `bodies`
//! are the methods of [`Sim`], split by what they decide or write.

mod fields;
mod graph;
mod model;
mod salt;

mod behaviour;
mod bodies;
mod calls;
mod envelope;

use crate::catalog::*;
use crate::json::Json;
use crate::rng::{attr, attr_pick, mix64, Rng};
use crate::shape::Shape;

use fields::*;
use graph::Graph;
use model::*;
use salt::*;

/// 2024-01-01T00:00:00.000Z
pub(crate) const START_MS: i64 = 1_704_067_200_000;
/// The simulated period: 30 days, whatever the number of events.
pub(crate) const PERIOD_MS: i64 = 30 * 86_400_000;

/// Share of lines that re-emit a recent line verbatim.
pub(crate) const DUPLICATE_SHARE: f64 = 0.005;
/// Share of events sent by the crawler bots.
const BOT_SHARE: f64 = 0.005;
/// Share of events delivered late (timestamp older than what was already sent).
const LATE_SHARE: f64 = 0.01;
/// Channel mix of the remaining (human) events.
const MOBILE_SHARE: f64 = 0.28;
const SERVER_SHARE: f64 = 0.09;
/// Share of sessions started by a visitor never seen before.
const NEW_VISITOR: f64 = 0.45;
/// How much more often a known (signed-up) user returns than a visitor.
const RETURNING_USER_WEIGHT: f64 = 3.0;
/// Share of visitors who will sign up if they come back often enough.
const WILL_SIGN_UP: f64 = 0.40;
/// Probability that a session reuses the visitor's existing device.
const SAME_DEVICE: f64 = 0.85;
/// Probability that a known user's new web device is someone else's.
const SHARED_DEVICE: f64 = 0.06;
/// Probability that a web session starts with a cleared cookie.
const COOKIE_CLEARED: f64 = 0.07;
/// Probability that an app session starts after a reinstall.
const APP_REINSTALLED: f64 = 0.02;

/// The six Segment call types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }
}

/// The whole simulation state.
#[derive(Debug)]
pub(crate) struct Sim {
    pub(crate) rng: Rng,
    events: u64,
    sources: u32,
    keys: [u64; 8],
    persons: Vec<Person>,
    /// Persons with a userId (for returning users, server calls, sharing).
    users: Vec<u32>,
    devices: Vec<Device>,
    companies: Vec<u64>,
    graph: Graph,
    web: Vec<Session>,
    mobile: Vec<Session>,
    bots: [u32; 3],
    bot_pages: [u32; 3],
    email_counter: u64,
    order_counter: u64,
    /// Simulated wall clock of the current line.
    now: i64,
    /// `timestamp` of the current event (older than `now` when late).
    ts: i64,
    max_ts: Option<i64>,
    /// Index of the current line (for messageIds).
    line: u64,
    pub(crate) shape: Shape,
}

impl Sim {
    pub(crate) fn new(events: u64, seed: u64, sources: u32) -> Sim {
        let mut rng = Rng::new(seed);
        let mut keys = [0u64; 8];
        for k in &mut keys {
            *k = rng.next_u64();
        }
        let slots = (events / 1500).clamp(12, 800) as usize;
        let mut graph = Graph::default();
        let bots = [graph.add(NONE), graph.add(NONE), graph.add(NONE)];
        Sim {
            rng,
            events,
            sources: sources.max(1),
            keys,
            persons: Vec::new(),
            users: Vec::new(),
            devices: Vec::new(),
            companies: Vec::new(),
            graph,
            web: (0..slots).map(|_| Session::idle()).collect(),
            mobile: (0..slots.div_ceil(2)).map(|_| Session::idle()).collect(),
            bots,
            bot_pages: [0; 3],
            email_counter: 0,
            order_counter: 0,
            now: START_MS,
            ts: START_MS,
            max_ts: None,
            line: 0,
            shape: Shape::default(),
        }
    }

    /// Sets the clock for line `i` (monotone: each line gets its own slice
    /// of the period).
    pub(crate) fn set_clock(&mut self, i: u64) {
        let n = i128::from(self.events.max(1));
        let base = |k: u64| START_MS + (i128::from(k) * i128::from(PERIOD_MS) / n) as i64;
        let (lo, hi) = (base(i), base(i + 1));
        self.now = lo + self.rng.below((hi - lo).max(1) as u64) as i64;
        self.line = i;
    }

    /// Generates one new (non-duplicate) event into `j`.
    pub(crate) fn step(&mut self, j: &mut Json) -> EventType {
        self.ts = self.now;
        if let Some(max) = self.max_ts {
            if self.rng.chance(LATE_SHARE) {
                // Offline queue flushed late / a slow retry: 60% within ten
                // minutes, 30% within six hours, the rest up to three days.
                let delta = match self.rng.below(10) {
                    0..=5 => self.rng.range(1_000, 600_000),
                    6..=8 => self.rng.range(600_000, 21_600_000),
                    _ => self.rng.range(21_600_000, 259_200_000),
                };
                self.ts = max.min(self.now) - delta as i64;
            }
        }
        if self.rng.chance(BOT_SHARE) {
            return self.bot_page(j);
        }
        // Backend calls need known users; before the first sign-up their
        // share goes to the apps.
        let mobile = self.rng.chance(SERVER_SHARE + MOBILE_SHARE);
        if mobile
            && !self.users.is_empty()
            && self
                .rng
                .chance(SERVER_SHARE / (SERVER_SHARE + MOBILE_SHARE))
        {
            return self.server_event(j);
        }
        let slot = if mobile {
            self.rng.index(self.mobile.len())
        } else {
            self.rng.index(self.web.len())
        };
        if !self.session(mobile, slot).active {
            self.start_session(mobile, slot);
        }
        let action = self.next_action(mobile, slot);
        let ty = self.perform(mobile, slot, action, j);
        let s = self.session(mobile, slot);
        if s.finished() {
            s.active = false;
            let d = s.device;
            self.devices[d as usize].busy = false;
        }
        self.shape.expected_merges = self.graph.merges;
        ty
    }
}
