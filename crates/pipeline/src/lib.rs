//! # ps-pipeline: from events to landed tables
//!
//! The middle of the flow, between the event model (`ps_spec`), identity
//! resolution (`ps_identity`) and the warehouse (`ps_warehouse`):
//!
//! ```text
//! input (files) ─▶ ps_spec (validate, normalize) ─▶ ps_identity (resolve)
//!     ─▶ Space::add (rows for event and profile tables) ─▶ Space::commit
//!     ─▶ ps_warehouse (one transaction: DDL, rows, engine state, ps_materialize)
//! ```
//!
//! [`Space`] is a space's live state: the identity engine, the catalog of
//! tables and columns, the dedupe keys and the sequence, restored from the
//! warehouse by [`Space::open`] so that a sync continues the one before it
//! exactly. [`Space::add`] admits one event into a [`Batch`] (validation,
//! source, dedupe, identity) and turns the engine's effects and the event
//! itself into rows; [`Space::commit`] lands the batch — or
//! [`Space::prepare`] then [`Prepared::land`] on another thread — in one
//! warehouse transaction with the engine state, the checkpoints and the
//! materialization of the profiles it touched. Privacy requests
//! ([`Space::regulate`]) are one more commit. Every event source goes
//! through one [`Driver`] (batching, commit order, checkpoints): event
//! files with [`sync_files`], and the HTTP server's inbox (`ps-ingest`), each
//! an [`EventSource`].
//!
//! The files follow the phases, top-down: `sync` and `input` (files),
//! `driver` (one driver for every source),
//! `open` (restore), `add` (admit), `effects` and `events` (rows), `commit`,
//! `privacy`; below them `space` (the state), `batch`, `state` (the engine's
//! stored form and the dedupe keys), `stats`, `config`, `error`, and
//! `process` (what it asks of the process).

#![warn(missing_docs, unreachable_pub)]

mod add;
mod batch;
mod commit;
mod compute;
mod compute_backfill;
mod compute_fact;
mod compute_rows;
mod compute_state;
pub mod config;
mod dedupe;
pub mod driver;
mod effects;
pub mod error;
mod events;
pub mod input;
mod open;
pub mod privacy;
pub mod process;
pub mod space;
mod sql_traits;
pub mod state;
pub mod stats;
pub mod sync;

pub use batch::Batch;
pub use commit::{Landed, Pending, Prepared};
pub use compute_backfill::ComputeCheck;
pub use config::{Source, SpaceConfig};
pub use driver::{Driver, EventSource};
pub use error::{Error, Result};
pub use privacy::{Regulation, RegulationKind, Subject};
pub use space::{Origin, Space, Timings};
pub use sql_traits::SqlTraitRun;
pub use state::RecoveryTimings;
pub use stats::SyncStats;
pub use sync::{sync_files, Progress, SyncOptions, DEFAULT_COMMIT_EVENTS};
