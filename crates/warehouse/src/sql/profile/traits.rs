//! A profile's traits: its `profile_traits` row, and for verbose answers
//! the `profile_traits_updates` rows that explain each value.

use super::resolve::{by_hash, pick, segments_of};
use crate::contract::{PROFILE_TRAITS, PROFILE_TRAITS_UPDATES};
use crate::dialect::{literal, Dialect};

/// `SELECT *` of the profile's `profile_traits` row: `canonical_segment_id`,
/// `merged_to`, then one column per trait (NULL: the profile lacks it). No
/// row: no such profile.
pub fn traits(d: &Dialect, schema: &str, canonical: &str) -> String {
    format!(
        "SELECT * FROM {} WHERE canonical_segment_id = {}",
        d.table(schema, PROFILE_TRAITS),
        literal(canonical)
    )
}

/// [`traits`] of the profile holding `id_type:value`, in one statement (the
/// identifier resolved in a scalar subquery): `/traits` is the hot route,
/// and each statement costs a connection (PostgreSQL) or a cloned one
/// (DuckDB). No row: no profile holds the identifier.
pub fn traits_of(d: &Dialect, schema: &str, id_type: &str, value: &str) -> String {
    format!(
        "{} SELECT * FROM {} WHERE canonical_segment_id = ({})",
        by_hash(d, schema, id_type, value),
        d.table(schema, PROFILE_TRAITS),
        pick(id_type, value)
    )
}

/// Every `profile_traits_updates` row of the profile's segments (the
/// profile and those merged into it), in processing order: full snapshots,
/// from which the last change of each trait (its `timestamp` and
/// `triggering_event_source_id`) is read.
pub fn trait_history(d: &Dialect, schema: &str, canonical: &str) -> String {
    format!(
        "SELECT * FROM {} WHERE segment_id IN ({}) ORDER BY seq",
        d.table(schema, PROFILE_TRAITS_UPDATES),
        segments_of(d, schema, canonical)
    )
}
