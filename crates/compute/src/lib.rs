//! # ps-compute: computed traits and audiences
//!
//! The profile Segment Unify sells is more than identify traits: it holds
//! *computed traits* (counts, sums, firsts and lasts over a profile's
//! events, optionally in a sliding window and filtered on properties) and
//! *audiences* (boolean conditions over traits, event counts and other
//! audiences). This crate is where they are defined and what they mean:
//!
//! - [`definition`]: the `[compute]`, `[[computed_traits]]`,
//!   `[[audiences]]` and `[[sql_traits]]` sections of a space's config,
//!   checked into [`Definitions`]. A bad definition is refused naming its
//!   key and field.
//! - [`condition`]: the operators (`equals`, `gte`, `within_last`, …) and the
//!   paths into an event (`properties.…`, `context.…`, `timestamp`).
//! - [`evaluate`]: the exact value of a computed trait, and audience
//!   membership, over all of a profile's events at a given `as_of`. It is
//!   the reference every faster path (incremental state, SQL) must equal.
//! - [`expiry`]: when a profile's values can next change with time alone,
//!   so a tick re-evaluates only the profiles whose time has come.
//!
//! Like `ps-identity`, the crate is pure: no IO, no clock, no threads.
//! Time comes in as `as_of` and with each event's `timestamp`, so the same
//! events at the same `as_of` always give the same values, whatever their
//! order and however a profile's events were merged.
//!
//! Where it sits in the flow: events → `ps-spec` (validate) → `ps-identity`
//! (which profile) → **`ps-compute`** (what the profile's computed values
//! are) → `ps-pipeline` (rows) → `ps-warehouse`.

#![warn(missing_docs, unreachable_pub)]

pub mod condition;
pub mod definition;
pub mod evaluate;
pub mod expiry;
pub mod raw;

pub use condition::{Op, Path};
pub use definition::{
    Audience, ComputeSettings, ComputedTrait, Condition, DefinitionError, Definitions, EventFilter,
    EventMatch, Kind, RawDefinitions, SqlTrait,
};
pub use evaluate::{audience_members, computed_value, explain, fact_name, Fact, Profile};
pub use expiry::Expiry;
