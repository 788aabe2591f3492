//! The engine's state as the warehouse stores it: a [`ProfileRecord`] per
//! profile and the [`EngineMeta`]; reading them back can fail with a
//! [`RestoreError`].

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A profile's persistent state, as stored by the warehouse and read back by
/// [`Engine::restore`](super::Engine::restore).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// The profile's segment id.
    pub segment_id: String,
    /// The profile's number ([`ProfileIdx`](super::ProfileIdx)): its place in creation order.
    pub ord: u32,
    /// The segment id of the live profile it resolves to (its own while live).
    pub canonical: String,
    /// Merges the profile has taken part in (counted towards [`MERGE_CAP`](crate::settings::MERGE_CAP)).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub merges: u32,
    /// Its identifiers, in attachment order: `(type name, value, last seen)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idents: Vec<(String, String, i64)>,
    /// Its traits in first-set order, `(name, value, order of the last
    /// event that sent it)`; a `null` value records a removal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traits: Vec<(String, Json, u64)>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Engine-wide counters that are not per profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineMeta {
    /// The number of the last event processed (trait values carry these
    /// numbers as their order).
    pub order: u64,
    /// Identifier types added since the settings were read (first seen in
    /// `context.externalIds`), in the order they were added.
    pub added_types: Vec<String>,
    /// Profiles ever created: a snapshot must hold exactly this many, so a
    /// lost chunk at the end cannot pass for a smaller engine.
    #[serde(default)]
    pub profiles: u64,
}

/// An inconsistency found while restoring state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt identity state: {0}")]
pub struct RestoreError(pub String);
