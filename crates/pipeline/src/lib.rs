//! # ps-pipeline: from events to landed tables
//!
//! The middle of the flow:
//!
//! ```text
//! input (files) ─▶ ps_spec (validate, normalize) ─▶ ps_identity (resolve)
//!     ─▶ Space::add (rows for event and profile tables) ─▶ Space::commit
//!     ─▶ ps_warehouse (one transaction: DDL, rows, engine state, ps_materialize)
//! ```
//!
//! [`Space`] owns a space's live state; [`sync_files`] drives it over files.
//! The HTTP server drives the same `Space` from its inbox.

mod add;
mod batch;
mod commit;
pub mod config;
mod effects;
pub mod error;
mod events;
pub mod input;
mod open;
pub mod privacy;
pub mod space;
pub mod state;
pub mod stats;
pub mod sync;

pub use batch::Batch;
pub use commit::{Landed, Prepared};
pub use config::{Source, SpaceConfig};
pub use error::{Error, Result};
pub use privacy::{Regulation, RegulationKind, Subject};
pub use space::{Origin, Space, Timings};
pub use state::RecoveryTimings;
pub use stats::SyncStats;
pub use sync::{sync_files, Progress, SyncOptions};
