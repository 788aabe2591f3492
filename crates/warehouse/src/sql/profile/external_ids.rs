//! A profile's identifiers, with where each was first seen.

use crate::contract::{EXTERNAL_ID_MAPPING, EXTERNAL_ID_MAPPING_UPDATES};
use crate::dialect::{literal, Dialect};

/// `external_id_type, external_id_value, timestamp, source_id, message_id,
/// seq` of every identifier of `canonical`, in the order they were first
/// attached (`seq`). The mapping gives the current profile; its landed row
/// (one per identifier) gives the event that brought it.
pub fn external_ids(d: &Dialect, schema: &str, canonical: &str) -> String {
    format!(
        "SELECT u.external_id_type, u.external_id_value, u.\"timestamp\", \
         u.triggering_event_source_id, u.triggering_event_id, u.seq \
         FROM {} m JOIN {} u ON u.external_id_hash = m.external_id_hash \
         WHERE m.canonical_segment_id = {} ORDER BY u.seq",
        d.table(schema, EXTERNAL_ID_MAPPING),
        d.table(schema, EXTERNAL_ID_MAPPING_UPDATES),
        literal(canonical)
    )
}
