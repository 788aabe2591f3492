//! A profile's events: a page of the six call tables' rows (newest first by
//! default), then the full rows of that page.

use super::resolve::segments_of;
use crate::contract::{is_free_event_table_name, CALL_TABLES};
use crate::dialect::{literal, Dialect};
use crate::sql::literal_list;
use ps_spec::time::{format_sql, Micros};

/// Which events, in which order, after which one.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events at or after this time.
    pub start: Option<Micros>,
    /// Only events before this time.
    pub end: Option<Micros>,
    /// Only events with one of these names (a track's event name as sent;
    /// other calls have none, so a non-empty list leaves them out).
    pub include: Vec<String>,
    /// No events with one of these names.
    pub exclude: Vec<String>,
    /// Keyset cursor: only events strictly after this `(timestamp, id)` in
    /// the chosen order.
    pub after: Option<(Micros, String)>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    /// Most rows (ask one more to know whether there are more).
    pub limit: usize,
}

/// `SELECT table_name` of the tables `schema` holds now: event tables are
/// created by their first event, so a page only reads those that exist.
pub fn existing_tables(d: &Dialect, schema: &str) -> String {
    let mut sql = format!(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = {}",
        literal(schema)
    );
    if let Some(c) = &d.catalog {
        sql.push_str(&format!(" AND table_catalog = {}", literal(c)));
    }
    sql
}

/// A page of the profile's events: `type, id, timestamp, source_id, event,
/// event_table` (`event`: a track's name as sent, a page's or screen's
/// name; `event_table`: the per-event table of a track), ordered by
/// `(timestamp, id)`. `tables` are the schema's existing tables
/// ([`existing_tables`]); `None` when no call table exists yet.
pub fn events_page(
    d: &Dialect,
    schema: &str,
    tables: &[String],
    canonical: &str,
    q: &EventQuery,
) -> Option<String> {
    let text = d.varchar_type;
    let null = format!("CAST(NULL AS {text})");
    let mut branches = Vec::new();
    for t in CALL_TABLES {
        if !tables.iter().any(|x| x == t) {
            continue;
        }
        let (kind, event, table) = match t {
            "identifies" => ("identify", null.clone(), null.clone()),
            "tracks" => ("track", "event_text".to_owned(), "event".to_owned()),
            "pages" => ("page", "name".to_owned(), null.clone()),
            "screens" => ("screen", "name".to_owned(), null.clone()),
            "groups" => ("group", null.clone(), null.clone()),
            _ => ("alias", null.clone(), null.clone()),
        };
        branches.push(format!(
            "SELECT {} AS type, id, \"timestamp\", event_source_id AS source_id, \
             {event} AS event, {table} AS event_table, segment_id FROM {}",
            literal(kind),
            d.table(schema, t)
        ));
    }
    if branches.is_empty() {
        return None;
    }
    let ts = |t: Micros| format!("CAST({} AS TIMESTAMP)", literal(&format_sql(t)));
    let mut filters = vec![format!(
        "segment_id IN ({})",
        segments_of(d, schema, canonical)
    )];
    if let Some(s) = q.start {
        filters.push(format!("\"timestamp\" >= {}", ts(s)));
    }
    if let Some(e) = q.end {
        filters.push(format!("\"timestamp\" < {}", ts(e)));
    }
    if !q.include.is_empty() {
        filters.push(format!("event IN ({})", literal_list(&q.include)));
    }
    if !q.exclude.is_empty() {
        filters.push(format!(
            "(event IS NULL OR event NOT IN ({}))",
            literal_list(&q.exclude)
        ));
    }
    let (cmp, dir) = if q.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if let Some((t, id)) = &q.after {
        filters.push(format!(
            "(\"timestamp\" {cmp} {ts} OR (\"timestamp\" = {ts} AND id {cmp} {id}))",
            ts = ts(*t),
            id = literal(id)
        ));
    }
    Some(format!(
        "SELECT type, id, \"timestamp\", source_id, event, event_table FROM ({}) AS e \
         WHERE {} ORDER BY \"timestamp\" {dir}, id {dir} LIMIT {}",
        branches.join(" UNION ALL "),
        filters.join(" AND "),
        q.limit
    ))
}

/// `SELECT *` of the rows of `table` with these ids (a page's events of one
/// call table, or of one per-event table). `None` for a per-event table
/// name the product would never have created.
pub fn event_rows(d: &Dialect, schema: &str, table: &str, ids: &[String]) -> Option<String> {
    if ids.is_empty() || (!CALL_TABLES.contains(&table) && !is_free_event_table_name(table)) {
        return None;
    }
    Some(format!(
        "SELECT * FROM {} WHERE id IN ({})",
        d.table(schema, table),
        literal_list(ids)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_reads_only_existing_tables_with_a_keyset_cursor() {
        let d = Dialect::postgres();
        assert_eq!(
            events_page(&d, "s", &["id_graph".into()], "p1", &EventQuery::default()),
            None
        );
        let q = EventQuery {
            after: Some((0, "m'1".into())),
            include: vec!["Order Completed".into()],
            limit: 11,
            ..EventQuery::default()
        };
        let sql = events_page(&d, "s", &["tracks".into(), "pages".into()], "p1", &q).unwrap();
        assert!(sql.contains(r#"FROM "s"."tracks""#) && sql.contains(r#"FROM "s"."pages""#));
        assert!(!sql.contains("identifies"));
        assert!(sql.contains("id < 'm''1'"), "{sql}");
        assert!(
            sql.ends_with("ORDER BY \"timestamp\" DESC, id DESC LIMIT 11"),
            "{sql}"
        );
        assert!(!sql.contains(';'));
        assert_eq!(event_rows(&d, "s", "_ps_meta", &["a".into()]), None);
        assert!(event_rows(&d, "s", "order_completed", &["a".into()]).is_some());
    }
}
