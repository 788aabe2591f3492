//! When a profile was created, and by which event.

use super::resolve::segments_of;
use crate::contract::ID_GRAPH_UPDATES;
use crate::dialect::Dialect;

/// `timestamp, triggering_event_id, triggering_event_source_id` of the
/// earliest creation (an `id_graph_updates` row `(P, P)`) among the
/// profile's segments: a profile that absorbed older ones was created when
/// the oldest of them was.
pub fn creation(d: &Dialect, schema: &str, canonical: &str) -> String {
    format!(
        "SELECT \"timestamp\", triggering_event_id, triggering_event_source_id FROM {} \
         WHERE segment_id = canonical_segment_id AND segment_id IN ({}) \
         ORDER BY \"timestamp\", seq LIMIT 1",
        d.table(schema, ID_GRAPH_UPDATES),
        segments_of(d, schema, canonical)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement() {
        let sql = creation(&Dialect::duckdb("db"), "s", "p1");
        assert!(sql.contains(r#""db"."s"."id_graph""#), "{sql}");
        assert!(!sql.contains(';'));
    }
}
