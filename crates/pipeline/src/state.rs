//! The identity engine's persistent state in the warehouse (`_ps_profiles`).

use std::time::Duration;

/// Where [`crate::Space::open`]'s time went, for `profiles-sync bench --incremental`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecoveryTimings {
    /// Fetching the engine state rows from the warehouse.
    pub fetch: Duration,
    /// Decoding them into profile records.
    pub decode: Duration,
    /// `Engine::restore`: rebuilding profiles and the identifier index.
    pub restore: Duration,
    /// Reading the landed message ids (the dedupe set).
    pub dedupe: Duration,
    /// All of `Space::open`.
    pub total: Duration,
}
