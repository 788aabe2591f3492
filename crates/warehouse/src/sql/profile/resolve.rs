//! From an identifier to its profile.

use crate::contract::{EXTERNAL_ID_MAPPING, ID_GRAPH};
use crate::dialect::{literal, Dialect};
use sha1::{Digest, Sha1};

/// `external_id_hash` of an identifier: lower-case hex SHA-1 of
/// `type || value` (SPEC §4.2), the column PostgreSQL indexes.
pub fn external_id_hash(id_type: &str, value: &str) -> String {
    let mut h = Sha1::new();
    h.update(id_type.as_bytes());
    h.update(value.as_bytes());
    hex::encode(h.finalize())
}

/// `WITH r AS MATERIALIZED (…)`: the `external_id_mapping` rows whose
/// hash is `id_type:value`'s (one, or a few on a SHA-1 collision), as a
/// CTE named `r` for a statement to filter by type and value.
///
/// The hash is the CTE's only filter on purpose: DuckDB looks a value up in
/// its ART index only when the indexed column's equality is the scan's sole
/// filter, and pushes the type and value filters into the scan unless the
/// CTE is materialized; with all three in one scan it reads every row.
/// PostgreSQL uses its index either way.
pub(super) fn by_hash(d: &Dialect, schema: &str, id_type: &str, value: &str) -> String {
    format!(
        "WITH r AS MATERIALIZED (SELECT canonical_segment_id, external_id_type, external_id_value \
         FROM {} WHERE external_id_hash = {})",
        d.table(schema, EXTERNAL_ID_MAPPING),
        literal(&external_id_hash(id_type, value)),
    )
}

/// `SELECT canonical_segment_id FROM r WHERE …`: the row of [`by_hash`]'s
/// CTE that is `id_type:value` itself.
pub(super) fn pick(id_type: &str, value: &str) -> String {
    format!(
        "SELECT canonical_segment_id FROM r WHERE external_id_type = {} AND external_id_value = {}",
        literal(id_type),
        literal(value)
    )
}

/// `SELECT canonical_segment_id`: at most one row, the surviving profile
/// holding `id_type:value`. Looked up by hash (indexed), then checked by
/// type and value.
pub fn resolve(d: &Dialect, schema: &str, id_type: &str, value: &str) -> String {
    format!(
        "{} {}",
        by_hash(d, schema, id_type, value),
        pick(id_type, value)
    )
}

/// `SELECT segment_id`: every segment id that resolves to `canonical`
/// (itself and the profiles merged into it), for `IN (…)`.
pub fn segments_of(d: &Dialect, schema: &str, canonical: &str) -> String {
    format!(
        "SELECT segment_id FROM {} WHERE canonical_segment_id = {}",
        d.table(schema, ID_GRAPH),
        literal(canonical)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_the_landed_one_and_values_are_literals() {
        // The case study's email (golden external_id_mapping_updates).
        assert_eq!(external_id_hash("email", "jane.kim@segment.com").len(), 40);
        let sql = resolve(&Dialect::postgres(), "s", "user_id", "o'neil");
        assert!(sql.contains("external_id_value = 'o''neil'"), "{sql}");
        assert!(!sql.contains(';'));
    }
}
