//! A profile's traits: its `profile_traits` row, and for verbose answers
//! the `profile_traits_updates` rows that explain each value.

use super::resolve::segments_of;
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
