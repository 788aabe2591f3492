//! # ps-identity: identity resolution
//!
//! Segment Unify's identity resolution as a pure state machine. Events go in,
//! in processing order, each carrying its own timestamp; [`Effect`]s come out:
//! profiles created, merged and re-pointed, identifiers attached, trait
//! snapshots due, and every refused merge as a [`Conflict`].
//!
//! ## Invariants
//! - **No IO, no clock, no threads.** Time is the event's timestamp. This is what
//!   makes the engine deterministic, property-testable against a simple model,
//!   and restorable from stored state ([`Engine::restore`]).
//! - Every identifier belongs to exactly one live profile, forever (until a
//!   privacy deletion removes it).
//! - Each profile's canonical pointer is one hop: it names a live profile.
//!
//! See `settings` for the rules' configuration and `extract` for which fields of
//! an event are identifiers.

mod bytes;
pub mod engine;
pub mod extract;
pub mod settings;
#[cfg(test)]
mod testgen;

pub use engine::{
    Conflict, Effect, Engine, EngineMeta, Forgotten, IdentIdx, Outcome, ProfileIdx, ProfileRecord,
    RestoreError, Rule,
};
pub use settings::{IdScheme, IdentifierConfig, IdentityConfig, Settings, SettingsError, Window};
