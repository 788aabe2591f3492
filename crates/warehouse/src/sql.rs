//! The statements the product runs on its own tables, spelled for a
//! [`Dialect`]. With [`crate::contract`] (names) and [`Dialect`] (DDL), this
//! is where SQL about the contract's tables is written; `ps-materialize`
//! writes the materialization's. Callers name tables and columns
//! ([`Col`]) and get statement text back; running it is theirs.

use crate::contract::{self as c, Col};
use crate::dialect::{literal, quote, Dialect};

pub mod profile;

/// `a, b, c`: columns quoted, in order.
fn column_list(cols: &[Col]) -> String {
    cols.iter()
        .map(|c| quote(c.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `'a', 'b'`: values as literals, for `IN (…)`.
pub fn literal_list(values: &[String]) -> String {
    values
        .iter()
        .map(|s| literal(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CREATE SCHEMA IF NOT EXISTS` for a space.
pub fn create_schema(d: &Dialect, schema: &str) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {}", d.schema(schema))
}

/// `SELECT cols FROM table`.
pub fn select(d: &Dialect, schema: &str, table: &str, cols: &[Col]) -> String {
    format!(
        "SELECT {} FROM {}",
        column_list(cols),
        d.table(schema, table)
    )
}

/// `SELECT cols FROM table ORDER BY order`.
pub fn select_ordered(
    d: &Dialect,
    schema: &str,
    table: &str,
    cols: &[Col],
    order: &[Col],
) -> String {
    format!(
        "{} ORDER BY {}",
        select(d, schema, table, cols),
        column_list(order)
    )
}

/// `SELECT cols FROM table WHERE key = 'value'`.
pub fn select_where_eq(
    d: &Dialect,
    schema: &str,
    table: &str,
    cols: &[Col],
    key: Col,
    value: &str,
) -> String {
    format!(
        "{} WHERE {} = {}",
        select(d, schema, table, cols),
        quote(key.name()),
        literal(value)
    )
}

/// `SELECT COUNT(*) FROM table [WHERE filter]`: one row, one integer.
pub fn count(d: &Dialect, schema: &str, table: &str, filter: Option<&str>) -> String {
    let t = d.table(schema, table);
    match filter {
        Some(f) => format!("SELECT COUNT(*) FROM {t} WHERE {f}"),
        None => format!("SELECT COUNT(*) FROM {t}"),
    }
}

/// `DELETE FROM table`.
pub fn delete_all(d: &Dialect, schema: &str, table: &str) -> String {
    format!("DELETE FROM {}", d.table(schema, table))
}

/// `DELETE FROM table WHERE filter`.
pub fn delete_where(d: &Dialect, schema: &str, table: &str, filter: &str) -> String {
    format!("DELETE FROM {} WHERE {filter}", d.table(schema, table))
}

/// The filter `col = 'value'`.
pub fn eq(col: Col, value: &str) -> String {
    format!("{} = {}", quote(col.name()), literal(value))
}

/// The filter `col IN ('a', 'b')` (`values` not empty).
pub fn is_in(col: Col, values: &[String]) -> String {
    format!("{} IN ({})", quote(col.name()), literal_list(values))
}

/// Turns every engine-state row (`_ps_profiles`) into layer 0: the
/// migration of a version-2 space, whose rows are one complete snapshot.
pub fn state_rows_to_layer_zero(d: &Dialect, schema: &str) -> String {
    format!(
        "UPDATE {} SET chunk = 0",
        d.table(schema, c::STATE_PROFILES)
    )
}

/// Where a profile's data is (SPEC §8, delete): `(table, filter)` for
/// every table holding rows of `segments` (the profile and the segments
/// merged into it) or naming one of its `identifiers` (`(type, value)`):
/// `event_tables` (by `segment_id`), the landed and materialized profile
/// tables, `identity_conflicts` (by identifier or segment) and
/// `rejected_events` (payloads holding an identifier value as a JSON
/// string, `json_strings`, the values already written as JSON).
pub fn profile_rows(
    event_tables: &[String],
    segments: &[String],
    identifiers: &[(String, String)],
    json_strings: &[String],
) -> Vec<(String, String)> {
    let segs_in = literal_list(segments);
    let mut plan: Vec<(String, String)> = Vec::new();
    for t in event_tables {
        plan.push((t.clone(), format!("segment_id IN ({segs_in})")));
    }
    plan.push((
        c::ID_GRAPH_UPDATES.into(),
        format!("segment_id IN ({segs_in}) OR canonical_segment_id IN ({segs_in})"),
    ));
    for t in [
        c::EXTERNAL_ID_MAPPING_UPDATES,
        c::PROFILE_TRAITS_UPDATES,
        c::ID_GRAPH,
    ] {
        plan.push((t.into(), format!("segment_id IN ({segs_in})")));
    }
    for t in [c::EXTERNAL_ID_MAPPING, c::PROFILE_TRAITS] {
        plan.push((t.into(), format!("canonical_segment_id IN ({segs_in})")));
    }
    let mut conflict = Vec::new();
    for (t, v) in identifiers {
        conflict.push(format!(
            "(external_id_type = {} AND external_id_value = {})",
            literal(t),
            literal(v)
        ));
    }
    for s in segments {
        conflict.push(format!(
            "strpos(',' || segment_ids || ',', {}) > 0",
            literal(&format!(",{s},"))
        ));
    }
    plan.push((c::IDENTITY_CONFLICTS.into(), conflict.join(" OR ")));
    let rejected: Vec<String> = json_strings
        .iter()
        .map(|quoted| format!("strpos(payload, {}) > 0", literal(quoted)))
        .collect();
    if !rejected.is_empty() {
        plan.push((c::REJECTED_EVENTS.into(), rejected.join(" OR ")));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_contract_s_tables_and_columns() {
        let d = Dialect::postgres();
        assert_eq!(
            select(&d, "s", c::STATE_META, &[Col::Key, Col::Value]),
            r#"SELECT "key", "value" FROM "s"."_ps_meta""#
        );
        assert_eq!(
            select_where_eq(&d, "s", c::STATE_META, &[Col::Value], Col::Key, "it's"),
            r#"SELECT "value" FROM "s"."_ps_meta" WHERE "key" = 'it''s'"#
        );
        assert_eq!(
            count(
                &d,
                "s",
                c::REGULATIONS,
                Some(&is_in(Col::Id, &["a".into(), "b".into()]))
            ),
            r#"SELECT COUNT(*) FROM "s"."regulations" WHERE "id" IN ('a', 'b')"#
        );
        let d = Dialect::duckdb("db");
        assert_eq!(
            delete_all(&d, "s", c::STATE_SEEN),
            r#"DELETE FROM "db"."s"."_ps_seen""#
        );
        let plan = profile_rows(
            &["tracks".into()],
            &["p1".into()],
            &[("email".into(), "a@b".into())],
            &["\"a@b\"".into()],
        );
        let tables: Vec<&str> = plan.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            tables,
            [
                "tracks",
                c::ID_GRAPH_UPDATES,
                c::EXTERNAL_ID_MAPPING_UPDATES,
                c::PROFILE_TRAITS_UPDATES,
                c::ID_GRAPH,
                c::EXTERNAL_ID_MAPPING,
                c::PROFILE_TRAITS,
                c::IDENTITY_CONFLICTS,
                c::REJECTED_EVENTS,
            ]
        );
        assert_eq!(plan[0].1, "segment_id IN ('p1')");
        assert_eq!(plan[8].1, r#"strpos(payload, '"a@b"') > 0"#);
    }
}
