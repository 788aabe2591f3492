//! A space's live state and the batch that turns events into rows.
//!
//! [`Space::open`] brings back everything a sync needs from the warehouse —
//! the catalog of tables and columns, the identity engine's state, the
//! sequence counter and the set of message ids already landed — so a sync that
//! follows another continues it exactly. [`Space::add`] runs one event through
//! validation, deduplication and the identity engine and appends its rows to a
//! [`Batch`]; [`Space::commit`] lands the batch in one warehouse transaction
//! together with the engine state and the materialized tables.
//!
//! If a commit fails the in-memory state is ahead of the warehouse, so the
//! `Space` must be dropped and opened again; [`Space::commit`] consumes the
//! batch and callers treat any error as fatal for this `Space`.

use crate::batch::Batch;
use crate::config::{Source, SpaceConfig};
use crate::state::RecoveryTimings;
use hashbrown::HashSet;
use ps_identity::{Engine, IdScheme};
use ps_warehouse::contract::{self as c, Catalog, Layout};
use std::collections::BTreeMap;

/// Where a sync's time went, for `profiles-sync bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Validating and normalizing events.
    pub parse: std::time::Duration,
    /// The identity engine.
    pub identity: std::time::Duration,
    /// Building rows.
    pub rows: std::time::Duration,
    /// Landing batches in the warehouse, without the materialization.
    pub load: std::time::Duration,
    /// Materializing what the landed rows changed.
    pub materialize: std::time::Duration,
    /// Computed traits and audiences: each event's facts, and at the end
    /// of a transaction the re-evaluation, the change rows and the
    /// `_ps_compute` rows (not part of `rows`).
    pub compute: std::time::Duration,
}

impl Timings {
    /// Adds `o` to these timings.
    pub fn add(&mut self, o: &Timings) {
        self.parse += o.parse;
        self.identity += o.identity;
        self.rows += o.rows;
        self.load += o.load;
        self.materialize += o.materialize;
        self.compute += o.compute;
    }
}

/// Where an event came from, for refusal reports and `rejected_events`.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `file.jsonl:12`, `http`, …
    pub place: &'a str,
    /// Source for events without a write key (`--source`).
    pub default_source: Option<usize>,
    /// Write key of the enclosing batch body or HTTP request.
    pub batch_write_key: Option<&'a str>,
}

/// Where the named columns of the tables a [`Space`] builds rows for sit
/// ([`Layout`]), resolved from the contract once, at open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layouts {
    pub(crate) id_graph_updates: Layout,
    pub(crate) external_id_mapping_updates: Layout,
    pub(crate) profile_traits_updates: Layout,
    pub(crate) identity_conflicts: Layout,
    pub(crate) rejected_events: Layout,
}

impl Layouts {
    pub(crate) fn new() -> Layouts {
        Layouts {
            id_graph_updates: Layout::of(c::ID_GRAPH_UPDATES),
            external_id_mapping_updates: Layout::of(c::EXTERNAL_ID_MAPPING_UPDATES),
            profile_traits_updates: Layout::of(c::PROFILE_TRAITS_UPDATES),
            identity_conflicts: Layout::of(c::IDENTITY_CONFLICTS),
            rejected_events: Layout::of(c::REJECTED_EVENTS),
        }
    }
}

/// The live state of one space.
#[derive(Debug)]
pub struct Space {
    pub(crate) cfg: SpaceConfig,
    pub(crate) engine: Engine,
    pub(crate) catalog: Catalog,
    pub(crate) seen: crate::dedupe::Seen,
    pub(crate) next_seq: i64,
    pub(crate) last_load: i64,
    pub(crate) reserved_event: HashSet<&'static str>,
    pub(crate) reserved_traits: HashSet<&'static str>,
    /// Shared so each event can hold its source while rows are built.
    pub(crate) sources: Vec<std::sync::Arc<Source>>,
    /// Accumulated since open.
    pub timings: Timings,
    /// `_ps_meta` as of the last commit (checkpoints included).
    pub(crate) meta: BTreeMap<String, String>,
    /// The engine-state log: the newest layer's number and the profile
    /// records it holds (`state::LAYER_META`, `state::LOG_META`).
    pub(crate) state_layer: i64,
    pub(crate) state_log: u64,
    /// The next commit compacts the engine-state log, so that no older
    /// layer keeps what a privacy deletion removed.
    pub(crate) compact_state: bool,
    /// Reused per event body: which columns it has written.
    pub(crate) scratch_written: Vec<bool>,
    /// Text of array/object leaves while they are written (`Cell::from_ref`).
    pub(crate) scratch_text: String,
    /// Column positions of the landed tables' rows.
    pub(crate) layouts: Layouts,
    /// How long [`Space::open`] took, by part.
    pub recovery: RecoveryTimings,
    /// Computed traits and audiences: definitions and per-profile state
    /// (`None` without definitions).
    pub(crate) compute: Option<crate::compute::Compute>,
    /// The keys of computed traits and audiences (they shadow custom traits
    /// of the same name in `profile_traits`).
    pub(crate) compute_keys: HashSet<String>,
}

impl Space {
    /// A checkpoint committed with an earlier batch ([`Batch::set_checkpoint`]).
    pub fn checkpoint(&self, key: &str) -> Option<&str> {
        self.meta.get(&format!("cp:{key}")).map(String::as_str)
    }

    /// The space's configuration.
    pub fn config(&self) -> &SpaceConfig {
        &self.cfg
    }

    /// The identity engine, as of the last event added.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The space's tables and columns, including those the open batch adds.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Starts a batch whose rows carry `load_time` as `uuid_ts`, kept
    /// non-decreasing across batches even if the clock steps back.
    pub fn begin_batch(&mut self, load_time: i64) -> Batch {
        let load_time = load_time.max(self.last_load);
        Batch {
            load_time,
            ..Batch::default()
        }
    }

    /// The scheme profile ids are made with.
    pub fn id_scheme(&self) -> IdScheme {
        self.cfg.identity.id_scheme
    }
}
