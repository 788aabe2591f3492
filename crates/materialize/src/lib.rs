//! # ps-materialize: the current-state tables
//!
//! `id_graph`, `external_id_mapping` and `profile_traits` (SPEC §6) are pure
//! functions of the landed tables. This crate writes that function once, as SQL
//! both DuckDB and PostgreSQL run (`DISTINCT ON`, joins, `CASE`), with a
//! *scope*:
//!
//! - [`Scope::Touched`]: only the segment ids listed in the `_ps_keys` scratch
//!   table — those with a landed row in the batch being committed. Everything
//!   else is left alone, which is what makes a sync of a thousand events into a
//!   space of a million profiles cheap.
//! - [`Scope::Full`]: every segment id (`materialize --full`).
//!
//! Because both scopes run the same statements, an incremental refresh equals a
//! full rebuild as long as the touched set is complete. It is, by construction
//! of the landed tables: a segment id whose canonical id changes gets an
//! `id_graph_updates` row (merges write one per member, recursively), a
//! profile whose traits change gets a `profile_traits_updates` row, and an
//! identifier's mapping only changes when its first `segment_id` is re-pointed.
//!
//! Materialized rows are derived only from landed rows, never from engine
//! memory, so a rebuild after a crash or a privacy deletion needs nothing else.

#![warn(missing_docs, unreachable_pub)]

use ps_warehouse::contract::{
    EXTERNAL_ID_MAPPING, EXTERNAL_ID_MAPPING_UPDATES, ID_GRAPH, ID_GRAPH_UPDATES, PROFILE_TRAITS,
    PROFILE_TRAITS_UPDATES, STATE_KEYS,
};
use ps_warehouse::{quote, Dialect};

/// Which profiles a refresh recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The segment ids in the `_ps_keys` table.
    Touched,
    /// All of them.
    Full,
}

/// The statements that bring the three tables up to date, in order.
/// `traits` are the trait columns of `profile_traits_updates`, which
/// `profile_traits` must also have.
pub fn statements(d: &Dialect, schema: &str, traits: &[String], scope: Scope) -> Vec<String> {
    let t = |name: &str| d.table(schema, name);
    let keys = format!("(SELECT k FROM {})", t(STATE_KEYS));
    let filter = |col: &str| match scope {
        Scope::Touched => format!(" WHERE {col} IN {keys}"),
        Scope::Full => String::new(),
    };
    let mut out = Vec::new();

    out.push(format!(
        "DELETE FROM {}{}",
        t(ID_GRAPH),
        filter("segment_id")
    ));
    out.push(format!(
        "INSERT INTO {} (segment_id, canonical_segment_id, \"timestamp\", seq, uuid_ts) \
         SELECT DISTINCT ON (segment_id) segment_id, canonical_segment_id, \"timestamp\", seq, uuid_ts \
         FROM {}{} ORDER BY segment_id, seq DESC",
        t(ID_GRAPH),
        t(ID_GRAPH_UPDATES),
        filter("segment_id")
    ));

    out.push(match scope {
        Scope::Touched => format!(
            "DELETE FROM {} WHERE external_id_hash IN (SELECT external_id_hash FROM {}{})",
            t(EXTERNAL_ID_MAPPING),
            t(EXTERNAL_ID_MAPPING_UPDATES),
            filter("segment_id")
        ),
        Scope::Full => format!("DELETE FROM {}", t(EXTERNAL_ID_MAPPING)),
    });
    out.push(format!(
        "INSERT INTO {} (canonical_segment_id, external_id_type, external_id_value, external_id_hash, \"timestamp\", uuid_ts) \
         SELECT g.canonical_segment_id, u.external_id_type, u.external_id_value, u.external_id_hash, u.\"timestamp\", u.uuid_ts \
         FROM {} u JOIN {} g ON g.segment_id = u.segment_id{}",
        t(EXTERNAL_ID_MAPPING),
        t(EXTERNAL_ID_MAPPING_UPDATES),
        t(ID_GRAPH),
        filter("u.segment_id")
    ));

    out.push(format!(
        "DELETE FROM {}{}",
        t(PROFILE_TRAITS),
        filter("canonical_segment_id")
    ));
    let mut cols = vec!["canonical_segment_id".to_owned(), "merged_to".to_owned()];
    let mut sel = vec![
        "g.segment_id".to_owned(),
        "CASE WHEN g.canonical_segment_id <> g.segment_id THEN g.canonical_segment_id END"
            .to_owned(),
    ];
    for c in traits {
        cols.push(quote(c));
        sel.push(format!(
            "CASE WHEN g.canonical_segment_id = g.segment_id THEN p.{} END",
            quote(c)
        ));
    }
    out.push(format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} g LEFT JOIN \
         (SELECT DISTINCT ON (segment_id) * FROM {}{} ORDER BY segment_id, seq DESC) p \
         ON p.segment_id = g.segment_id{}",
        t(PROFILE_TRAITS),
        cols.join(", "),
        sel.join(", "),
        t(ID_GRAPH),
        t(PROFILE_TRAITS_UPDATES),
        filter("segment_id"),
        filter("g.segment_id")
    ));
    out
}
