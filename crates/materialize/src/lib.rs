//! # ps-materialize: the current-state tables
//!
//! `id_graph`, `external_id_mapping` and `profile_traits` (SPEC §6) are pure
//! functions of the landed tables. This crate writes that function as SQL
//! both DuckDB and PostgreSQL run (`DISTINCT ON`, joins, `CASE`), in two
//! forms:
//!
//! - [`Scope::Full`]: every table emptied and rebuilt from every landed row
//!   (`materialize --full`). This is the definition.
//! - [`Scope::Since`]: what one transaction's rows change, given the first
//!   `seq` it landed. `seq` is strictly increasing and never reused (SPEC §4),
//!   so the transaction's rows are exactly those with `seq` at least that;
//!   the landed tables are appended in `seq` order, so on DuckDB the filter
//!   skips every older row group by its zone map and on PostgreSQL it is an
//!   index range. Nothing else is read by a profile key: a refresh costs
//!   what the transaction landed plus scans of the current-state tables,
//!   not of the landed history.
//!
//! The incremental form follows from the landed tables' own rules (SPEC §4):
//!
//! - `id_graph` holds the latest `id_graph_updates` row per segment, and a
//!   transaction's rows are later than any before it: its rows replace
//!   those segments' rows.
//! - A merge writes an `id_graph_updates` row for *every* segment of the
//!   merged profile, so every identifier that resolved to the old canonical
//!   id now resolves to the new one: `external_id_mapping` rows move from
//!   old to new canonical id (read from `id_graph` before it changes),
//!   without reading `external_id_mapping_updates` by segment.
//! - An identifier is attached once (`external_id_mapping_updates` is never
//!   rewritten), so the transaction's new identifiers are inserted, resolved
//!   through the refreshed `id_graph`.
//! - A profile's `profile_traits` row changes only when its `id_graph` row
//!   does (created or merged away) or it gets a `profile_traits_updates`
//!   snapshot (every trait change, and the survivor of every merge): those
//!   segments' rows are rebuilt from the transaction's rows alone, since a
//!   live profile's newest snapshot is then one of them (or it has none: a
//!   profile created with no traits).
//!
//! Every test that compares incremental tables with a full rebuild after
//! runs cut at random points guards this (`incremental::*`,
//! `sync::full_rebuild_equals_incremental`, the crash tests).
//!
//! Materialized rows are derived only from landed rows, never from engine
//! memory, so a rebuild after a crash or a privacy deletion needs nothing
//! else.

#![warn(missing_docs, unreachable_pub)]

use ps_warehouse::contract::{
    EXTERNAL_ID_MAPPING, EXTERNAL_ID_MAPPING_UPDATES, ID_GRAPH, ID_GRAPH_UPDATES, PROFILE_TRAITS,
    PROFILE_TRAITS_UPDATES,
};
use ps_warehouse::{quote, Dialect};

/// Which rows a refresh recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// What the landed rows with `seq` at least this changed: the rows of
    /// the transaction being committed, whose first `seq` this is.
    Since(i64),
    /// All of them.
    Full,
}

/// The statements that bring the three tables up to date, in order.
/// `traits` are the trait columns of `profile_traits_updates`, which
/// `profile_traits` must also have.
pub fn statements(d: &Dialect, schema: &str, traits: &[String], scope: Scope) -> Vec<String> {
    match scope {
        Scope::Full => full(d, schema, traits),
        Scope::Since(seq) => since(d, schema, traits, seq),
    }
}

/// `profile_traits`' columns, and what each is selected as from `id_graph
/// g` joined to the newest `profile_traits_updates` row `p` of each segment.
fn profile_traits_columns(traits: &[String]) -> (String, String) {
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
    (cols.join(", "), sel.join(", "))
}

const ID_GRAPH_COLUMNS: &str = "segment_id, canonical_segment_id, \"timestamp\", seq, uuid_ts";
const MAPPING_COLUMNS: &str =
    "canonical_segment_id, external_id_type, external_id_value, external_id_hash, \"timestamp\", uuid_ts";
const MAPPING_SELECT: &str = "g.canonical_segment_id, u.external_id_type, u.external_id_value, \
     u.external_id_hash, u.\"timestamp\", u.uuid_ts";

/// The definition: every table rebuilt from every landed row.
fn full(d: &Dialect, schema: &str, traits: &[String]) -> Vec<String> {
    let t = |name: &str| d.table(schema, name);
    let (pt_cols, pt_sel) = profile_traits_columns(traits);
    vec![
        format!("DELETE FROM {}", t(ID_GRAPH)),
        format!(
            "INSERT INTO {} ({ID_GRAPH_COLUMNS}) SELECT DISTINCT ON (segment_id) {ID_GRAPH_COLUMNS} \
             FROM {} ORDER BY segment_id, seq DESC",
            t(ID_GRAPH),
            t(ID_GRAPH_UPDATES)
        ),
        format!("DELETE FROM {}", t(EXTERNAL_ID_MAPPING)),
        format!(
            "INSERT INTO {} ({MAPPING_COLUMNS}) SELECT {MAPPING_SELECT} \
             FROM {} u JOIN {} g ON g.segment_id = u.segment_id",
            t(EXTERNAL_ID_MAPPING),
            t(EXTERNAL_ID_MAPPING_UPDATES),
            t(ID_GRAPH)
        ),
        format!("DELETE FROM {}", t(PROFILE_TRAITS)),
        format!(
            "INSERT INTO {} ({pt_cols}) SELECT {pt_sel} FROM {} g LEFT JOIN \
             (SELECT DISTINCT ON (segment_id) * FROM {} ORDER BY segment_id, seq DESC) p \
             ON p.segment_id = g.segment_id",
            t(PROFILE_TRAITS),
            t(ID_GRAPH),
            t(PROFILE_TRAITS_UPDATES)
        ),
    ]
}

/// What the rows from `seq` on change (see the crate docs for why each
/// step is exact).
fn since(d: &Dialect, schema: &str, traits: &[String], seq: i64) -> Vec<String> {
    let t = |name: &str| d.table(schema, name);
    let (pt_cols, pt_sel) = profile_traits_columns(traits);
    // The transaction's newest id_graph row per segment.
    let graph = format!(
        "(SELECT DISTINCT ON (segment_id) {ID_GRAPH_COLUMNS} FROM {} WHERE seq >= {seq} \
         ORDER BY segment_id, seq DESC)",
        t(ID_GRAPH_UPDATES)
    );
    // Segments whose profile_traits row changes.
    let segments = format!(
        "(SELECT segment_id FROM {} WHERE seq >= {seq} UNION SELECT segment_id FROM {} WHERE seq >= {seq})",
        t(ID_GRAPH_UPDATES),
        t(PROFILE_TRAITS_UPDATES)
    );
    vec![
        // Identifiers of merged profiles follow them; `id_graph` still
        // holds each re-pointed segment's old canonical id. All segments
        // of an old profile move to the same new one; `DISTINCT ON` keeps
        // the statement one row per old id even if they did not.
        format!(
            "UPDATE {m} AS m SET canonical_segment_id = r.new_id FROM \
             (SELECT DISTINCT ON (o.canonical_segment_id) o.canonical_segment_id AS old_id, \
             n.canonical_segment_id AS new_id FROM {graph} n JOIN {g} o ON o.segment_id = n.segment_id \
             WHERE o.canonical_segment_id <> n.canonical_segment_id \
             ORDER BY o.canonical_segment_id, n.canonical_segment_id) r \
             WHERE m.canonical_segment_id = r.old_id",
            m = t(EXTERNAL_ID_MAPPING),
            g = t(ID_GRAPH),
        ),
        format!(
            "DELETE FROM {} WHERE segment_id IN (SELECT segment_id FROM {} WHERE seq >= {seq})",
            t(ID_GRAPH),
            t(ID_GRAPH_UPDATES)
        ),
        format!(
            "INSERT INTO {} ({ID_GRAPH_COLUMNS}) SELECT {ID_GRAPH_COLUMNS} FROM {graph} n",
            t(ID_GRAPH)
        ),
        format!(
            "INSERT INTO {} ({MAPPING_COLUMNS}) SELECT {MAPPING_SELECT} \
             FROM {} u JOIN {} g ON g.segment_id = u.segment_id WHERE u.seq >= {seq}",
            t(EXTERNAL_ID_MAPPING),
            t(EXTERNAL_ID_MAPPING_UPDATES),
            t(ID_GRAPH)
        ),
        format!(
            "DELETE FROM {} WHERE canonical_segment_id IN {segments}",
            t(PROFILE_TRAITS)
        ),
        format!(
            "INSERT INTO {} ({pt_cols}) SELECT {pt_sel} FROM {} g LEFT JOIN \
             (SELECT DISTINCT ON (segment_id) * FROM {} WHERE seq >= {seq} ORDER BY segment_id, seq DESC) p \
             ON p.segment_id = g.segment_id WHERE g.segment_id IN {segments}",
            t(PROFILE_TRAITS),
            t(ID_GRAPH),
            t(PROFILE_TRAITS_UPDATES)
        ),
    ]
}
