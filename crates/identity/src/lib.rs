//! # ps-identity: identity resolution
//!
//! Segment Unify's identity resolution as a pure state machine. In the flow
//! events → spec (validate, normalize) → **identity** → pipeline →
//! warehouse → materialize, the pipeline hands the [`Engine`] parsed
//! [`ps_spec::Event`]s in processing order, each carrying its own timestamp;
//! [`Effect`]s come out: profiles created, merged and re-pointed,
//! identifiers attached, trait snapshots due, and every refused merge as a
//! [`Conflict`] naming the [`Rule`] it would have broken. The pipeline turns
//! effects into landed rows and stores each changed profile's
//! [`ProfileRecord`] (with the [`EngineMeta`]) so that [`Engine::restore`]
//! can pick up where it left off.
//!
//! ## Main types
//! - [`Engine`]: the state machine; [`Engine::process`] returns an
//!   [`Outcome`] per event and appends its [`Effect`]s.
//! - [`Settings`], read from an [`IdentityConfig`]: identifier types, their
//!   priorities, limits, [`Window`]s and blocked values.
//! - [`extract::extract`]: which fields of an event are identifiers.
//!
//! ## Modules, lowest first
//! `bytes` (inlined byte comparisons) → [`settings`] → [`extract`] →
//! [`engine`] (with its index, hash, trait names and key layouts below it,
//! and its snapshot and privacy methods beside it).
//!
//! ## Invariants
//! - **No IO, no clock, no threads.** Time is the event's timestamp. This is what
//!   makes the engine deterministic, property-testable against a simple model,
//!   and restorable from stored state ([`Engine::restore`]).
//! - Every identifier belongs to exactly one live profile, forever (until a
//!   privacy deletion removes it).
//! - Each profile's canonical pointer is one hop: it names a live profile.

#![warn(missing_docs, unreachable_pub)]

mod bytes;
pub mod engine;
pub mod extract;
pub mod settings;
#[cfg(test)]
mod testgen;

pub use engine::{
    newest_cover, Conflict, Effect, Engine, EngineMeta, Forgotten, IdentIdx, Outcome, ProfileIdx,
    ProfileRecord, RestoreError, Rule,
};
pub use settings::{IdScheme, IdentifierConfig, IdentityConfig, Settings, SettingsError, Window};
