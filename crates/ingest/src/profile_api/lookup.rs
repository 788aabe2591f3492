//! The lookup layer: one profile, found by one of its identifiers, read from
//! the warehouse through a [`ReadOnly`] handle (so it never waits for the
//! sync thread, and never writes), answered in the Profile API's JSON
//! shapes. The HTTP routes ([`super`]) and `profiles-sync profile` both use
//! it; the SQL is [`ps_warehouse::sql::profile`]'s.
//!
//! Paging: `/traits` and `/external_ids` read the whole (small: at most
//! 1,000 identifiers, one row of traits) answer and cut a page from it;
//! `/events` pages in SQL, by a keyset on `(timestamp, message id)`. Every
//! `next` is an opaque token (base64url of `kind:position`), refused when it
//! is not one of ours or belongs to another route.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ps_spec::time::{format_iso, Micros};
use ps_spec::Value;
use ps_warehouse::contract::event_standard_columns;
use ps_warehouse::sql::profile as sql;
use ps_warehouse::{Dialect, QueryAnswer, QueryLimits, ReadOnly};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, HashMap};

/// `id_type:value` from the path, already URL-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    /// The identifier type (`user_id`, `email`, …), lower-cased as the
    /// identity engine keeps types.
    pub id_type: String,
    /// The value, verbatim.
    pub value: String,
}

impl std::str::FromStr for Identifier {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Identifier, String> {
        match s.split_once(':') {
            Some((t, v)) if !t.is_empty() && !v.is_empty() => Ok(Identifier {
                id_type: t.to_ascii_lowercase(),
                value: v.to_owned(),
            }),
            _ => Err(format!(
                "the profile id {s:?} must be <id_type>:<value>, e.g. user_id:u1234 (URL-encode the value)"
            )),
        }
    }
}

/// Why a lookup has no answer.
#[derive(Debug)]
pub enum LookupError {
    /// No profile holds the identifier.
    NotFound,
    /// A `next` token that is not one this route gave out.
    BadCursor,
    /// The warehouse failed (or the query ran past its time limit).
    Warehouse(ps_warehouse::Error),
}

impl From<ps_warehouse::Error> for LookupError {
    fn from(e: ps_warehouse::Error) -> LookupError {
        LookupError::Warehouse(e)
    }
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NotFound => f.write_str("Profile was not found."),
            LookupError::BadCursor => f.write_str("the `next` cursor is not valid for this route"),
            LookupError::Warehouse(e) => write!(f, "the warehouse failed: {e}"),
        }
    }
}

type Result<T> = std::result::Result<T, LookupError>;

/// Which traits `/traits` lists.
#[derive(Debug, Clone, Default)]
pub struct TraitsQuery {
    /// Only these keys (empty: all).
    pub include: Vec<String>,
    /// `audience` or `computed_trait`: only the traits of that class.
    pub class: Option<String>,
    /// The keys of `class` in the space's definitions (filled by the
    /// caller, which knows them).
    pub class_keys: Vec<String>,
    /// Page size.
    pub limit: usize,
    /// `{value, source_id, updated_at}` per trait.
    pub verbose: bool,
    /// The `next` token of the previous page.
    pub next: Option<String>,
}

/// Which identifiers `/external_ids` lists.
#[derive(Debug, Clone, Default)]
pub struct ExternalIdsQuery {
    /// Only these types (empty: all).
    pub include: Vec<String>,
    /// Page size.
    pub limit: usize,
    /// The `next` token of the previous page.
    pub next: Option<String>,
}

/// Which events `/events` lists.
#[derive(Debug, Clone, Default)]
pub struct EventsQuery {
    /// Time range, names and order (its `after` and `limit` are set here).
    pub filter: sql::EventQuery,
    /// Page size.
    pub limit: usize,
    /// The `next` token of the previous page.
    pub next: Option<String>,
}

/// Lookups on one space.
#[derive(Debug)]
pub struct Profiles<'a> {
    reader: &'a ReadOnly,
    dialect: Dialect,
    space: &'a str,
    limits: QueryLimits,
}

fn cursor(kind: &str, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

fn uncursor(kind: &str, token: &str) -> Result<String> {
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| LookupError::BadCursor)?;
    let text = String::from_utf8(raw).map_err(|_| LookupError::BadCursor)?;
    text.strip_prefix(kind)
        .and_then(|r| r.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or(LookupError::BadCursor)
}

/// `{"has_more", "next", "limit"}` (the route adds `url`).
fn cursor_json(next: Option<String>, limit: usize) -> Json {
    json!({ "has_more": next.is_some(), "next": next.unwrap_or_default(), "limit": limit })
}

/// A cell as the Profile API writes it: timestamps in ISO-8601.
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Ts(t) => Json::String(format_iso(*t)),
        other => crate::query::cell(other),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

fn ts(v: Option<&Value>) -> Option<Micros> {
    match v {
        Some(Value::Ts(t)) => Some(*t),
        _ => None,
    }
}

fn iso(v: Option<&Value>) -> Json {
    ts(v).map_or(Json::Null, |t| Json::String(format_iso(t)))
}

/// The call table of an event type.
fn call_table(kind: &str) -> &'static str {
    match kind {
        "identify" => "identifies",
        "track" => "tracks",
        "page" => "pages",
        "screen" => "screens",
        "group" => "groups",
        _ => "aliases",
    }
}

impl<'a> Profiles<'a> {
    /// Lookups in `space` through `reader`, each query within `limits`'
    /// time (row limits are the lookups' own).
    pub fn new(reader: &'a ReadOnly, space: &'a str, limits: QueryLimits) -> Profiles<'a> {
        Profiles {
            reader,
            dialect: reader.dialect(),
            space,
            limits,
        }
    }

    fn query(&self, sql: &str, max_rows: usize) -> Result<QueryAnswer> {
        let limits = QueryLimits {
            timeout: self.limits.timeout,
            max_rows,
        };
        Ok(self.reader.query(sql, &limits)?)
    }

    /// The surviving profile (canonical segment id) holding `id`.
    pub fn resolve(&self, id: &Identifier) -> Result<String> {
        let a = self.query(
            &sql::resolve(&self.dialect, self.space, &id.id_type, &id.value),
            1,
        )?;
        a.rows
            .first()
            .and_then(|r| text(r.first()))
            .ok_or(LookupError::NotFound)
    }

    /// `{"traits": {...}, "cursor": {...}}`, keys in byte order.
    pub fn traits(&self, id: &Identifier, q: &TraitsQuery) -> Result<Json> {
        let start = q.next.as_deref().map(|t| uncursor("t", t)).transpose()?;
        let a = self.query(
            &sql::traits_of(&self.dialect, self.space, &id.id_type, &id.value),
            1,
        )?;
        let row = a.rows.first().ok_or(LookupError::NotFound)?;
        let canonical = a
            .columns
            .iter()
            .position(|c| c == "canonical_segment_id")
            .and_then(|p| text(row.get(p)))
            .ok_or(LookupError::NotFound)?;
        let mut all: BTreeMap<&str, &Value> = BTreeMap::new();
        for (c, v) in a.columns.iter().zip(row) {
            if c == "canonical_segment_id" || c == "merged_to" || v.is_null() {
                continue;
            }
            if q.class.is_some() && !q.class_keys.iter().any(|k| k == c) {
                continue;
            }
            if q.include.is_empty() || q.include.iter().any(|k| k == c) {
                all.insert(c, v);
            }
        }
        let mut keys = all
            .keys()
            .copied()
            .filter(|k| start.as_deref().is_none_or(|s| *k >= s));
        let page: Vec<&str> = keys.by_ref().take(q.limit).collect();
        let next = keys.next().map(|k| cursor("t", k));
        let provenance = if q.verbose && !page.is_empty() {
            self.trait_provenance(&canonical, &page, &all)?
        } else {
            HashMap::new()
        };
        let mut traits = Map::new();
        for k in page {
            let v = value_json(all[k]);
            let v = if q.verbose {
                let (source, at) = provenance.get(k).cloned().unwrap_or_default();
                json!({ "value": v, "source_id": source, "updated_at": at })
            } else {
                v
            };
            traits.insert(k.to_owned(), v);
        }
        Ok(json!({ "traits": traits, "cursor": cursor_json(next, q.limit) }))
    }

    /// Per trait: the source and time of the latest snapshot (of any of the
    /// profile's segments) that changed it to its current value.
    fn trait_provenance(
        &self,
        canonical: &str,
        keys: &[&str],
        current: &BTreeMap<&str, &Value>,
    ) -> Result<HashMap<String, (Option<String>, Json)>> {
        let a = self.query(
            &sql::trait_history(&self.dialect, self.space, canonical),
            1_000_000,
        )?;
        let pos = |name: &str| a.columns.iter().position(|c| c == name);
        let (Some(seg), Some(at), Some(src)) = (
            pos("segment_id"),
            pos("timestamp"),
            pos("triggering_event_source_id"),
        ) else {
            return Ok(HashMap::new());
        };
        let cols: Vec<(&str, usize)> = keys
            .iter()
            .filter_map(|k| pos(k).map(|p| (*k, p)))
            .collect();
        let mut last: HashMap<(String, &str), &Value> = HashMap::new();
        let mut out = HashMap::new();
        for row in &a.rows {
            let segment = text(row.get(seg)).unwrap_or_default();
            for (k, p) in &cols {
                let v = &row[*p];
                let changed = last
                    .get(&(segment.clone(), *k))
                    .is_none_or(|prev| *prev != v);
                if changed && Some(&v) == current.get(k) {
                    out.insert((*k).to_owned(), (text(row.get(src)), iso(row.get(at))));
                }
                last.insert((segment.clone(), *k), v);
            }
        }
        Ok(out)
    }

    /// `{"data": [{source_id, collection, id, type, created_at, encoding,
    /// first_message_id}], "cursor": {...}}`, in the order the identifiers
    /// were first seen.
    pub fn external_ids(&self, id: &Identifier, q: &ExternalIdsQuery) -> Result<Json> {
        let canonical = self.resolve(id)?;
        let start: Option<i64> = match &q.next {
            Some(t) => Some(
                uncursor("x", t)?
                    .parse()
                    .map_err(|_| LookupError::BadCursor)?,
            ),
            None => None,
        };
        let a = self.query(
            &sql::external_ids(&self.dialect, self.space, &canonical),
            100_000,
        )?;
        let mut rows = a.rows.iter().filter(|r| {
            let seq = match r.get(5) {
                Some(Value::Int(i)) => *i,
                _ => 0,
            };
            let ty = text(r.first()).unwrap_or_default();
            start.is_none_or(|s| seq >= s) && (q.include.is_empty() || q.include.contains(&ty))
        });
        let data: Vec<Json> = rows
            .by_ref()
            .take(q.limit)
            .map(|r| {
                json!({
                    "source_id": text(r.get(3)),
                    "collection": "users",
                    "id": text(r.get(1)),
                    "type": text(r.first()),
                    "created_at": iso(r.get(2)),
                    "encoding": "none",
                    "first_message_id": text(r.get(4)),
                })
            })
            .collect();
        let next = rows.next().and_then(|r| match r.get(5) {
            Some(Value::Int(i)) => Some(cursor("x", &i.to_string())),
            _ => None,
        });
        Ok(json!({ "data": data, "cursor": cursor_json(next, q.limit) }))
    }

    /// `{"data": [...events...], "cursor": {...}}`.
    pub fn events(&self, id: &Identifier, q: &EventsQuery) -> Result<Json> {
        let canonical = self.resolve(id)?;
        let mut filter = q.filter.clone();
        if let Some(t) = &q.next {
            let pos = uncursor("e", t)?;
            let (at, msg) = pos.split_once(':').ok_or(LookupError::BadCursor)?;
            filter.after = Some((
                at.parse().map_err(|_| LookupError::BadCursor)?,
                msg.to_owned(),
            ));
        }
        filter.limit = q.limit + 1;
        let (mut page, tables) = self.event_page(&canonical, &filter)?;
        let next = if page.len() > q.limit {
            page.truncate(q.limit);
            page.last()
                .map(|e| cursor("e", &format!("{}:{}", e.at, e.id)))
        } else {
            None
        };
        let data = self.event_items(&canonical, &page, &tables)?;
        Ok(json!({ "data": data, "cursor": cursor_json(next, q.limit) }))
    }

    /// One page of the profile's events (keys only), and the schema's tables.
    fn event_page(
        &self,
        canonical: &str,
        filter: &sql::EventQuery,
    ) -> Result<(Vec<EventKey>, Vec<String>)> {
        let tables: Vec<String> = self
            .query(&sql::existing_tables(&self.dialect, self.space), 1_000_000)?
            .rows
            .iter()
            .filter_map(|r| text(r.first()))
            .collect();
        let Some(page_sql) =
            sql::events_page(&self.dialect, self.space, &tables, canonical, filter)
        else {
            return Ok((Vec::new(), tables));
        };
        let a = self.query(&page_sql, filter.limit)?;
        let page = a
            .rows
            .iter()
            .map(|r| EventKey {
                kind: text(r.first()).unwrap_or_default(),
                id: text(r.get(1)).unwrap_or_default(),
                at: ts(r.get(2)).unwrap_or_default(),
                event_table: text(r.get(5)),
                source: text(r.get(3)),
            })
            .collect();
        Ok((page, tables))
    }

    /// The page's events in full: each read from its per-event table (a
    /// track's properties) or its call table.
    fn event_items(
        &self,
        canonical: &str,
        page: &[EventKey],
        tables: &[String],
    ) -> Result<Vec<Json>> {
        let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in page {
            by_table
                .entry(e.table(tables))
                .or_default()
                .push(e.id.clone());
        }
        let mut rows: HashMap<(String, String), Json> = HashMap::new();
        for (table, ids) in &by_table {
            let Some(q) = sql::event_rows(&self.dialect, self.space, table, ids) else {
                continue;
            };
            let a = self.query(&q, ids.len())?;
            for r in &a.rows {
                let id = a
                    .columns
                    .iter()
                    .position(|c| c == "id")
                    .and_then(|p| text(r.get(p)))
                    .unwrap_or_default();
                rows.insert(
                    (table.clone(), id),
                    event_item(table, &a.columns, r, canonical),
                );
            }
        }
        Ok(page
            .iter()
            .filter_map(|e| rows.remove(&(e.table(tables), e.id.clone())))
            .collect())
    }

    /// `{"metadata": {created_at, updated_at, expires_at, first_message_id,
    /// first_source_id, last_message_id, last_source_id}}`.
    pub fn metadata(&self, id: &Identifier) -> Result<Json> {
        let canonical = self.resolve(id)?;
        let created = self.query(&sql::creation(&self.dialect, self.space, &canonical), 1)?;
        let first = created.rows.first();
        let newest = sql::EventQuery {
            limit: 1,
            ..sql::EventQuery::default()
        };
        let (last, _) = self.event_page(&canonical, &newest)?;
        let last = last.first();
        Ok(json!({ "metadata": {
            "created_at": iso(first.and_then(|r| r.first())),
            "updated_at": last.map_or(Json::Null, |e| Json::String(format_iso(e.at))),
            "expires_at": Json::Null,
            "first_message_id": text(first.and_then(|r| r.get(1))),
            "first_source_id": text(first.and_then(|r| r.get(2))),
            "last_message_id": last.map(|e| e.id.clone()),
            "last_source_id": last.and_then(|e| e.source.clone()),
        }}))
    }
}

/// What `profiles-sync profile` (and `POST /admin/profile`) shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    /// Every trait.
    pub traits: bool,
    /// Every identifier.
    pub external_ids: bool,
    /// The newest events (up to `events_limit`).
    pub events: bool,
    /// Creation and last event.
    pub metadata: bool,
    /// How many events, newest first.
    pub events_limit: usize,
}

impl Profiles<'_> {
    /// One profile in one answer: `{"segment_id", "traits", "external_ids",
    /// "events", "metadata"}`, each section only when asked for, traits
    /// and identifiers whole (a profile holds at most 1,000 identifiers).
    pub fn profile(&self, id: &Identifier, s: &Sections) -> Result<Json> {
        let mut out = Map::new();
        out.insert("segment_id".into(), Json::String(self.resolve(id)?));
        if s.traits {
            let q = TraitsQuery {
                limit: usize::MAX,
                ..TraitsQuery::default()
            };
            out.insert("traits".into(), self.traits(id, &q)?["traits"].take());
        }
        if s.external_ids {
            let q = ExternalIdsQuery {
                limit: usize::MAX,
                ..ExternalIdsQuery::default()
            };
            out.insert(
                "external_ids".into(),
                self.external_ids(id, &q)?["data"].take(),
            );
        }
        if s.events {
            let q = EventsQuery {
                limit: s.events_limit,
                ..EventsQuery::default()
            };
            let mut page = self.events(id, &q)?;
            out.insert("events".into(), page["data"].take());
            out.insert("more_events".into(), page["cursor"]["has_more"].take());
        }
        if s.metadata {
            out.insert("metadata".into(), self.metadata(id)?["metadata"].take());
        }
        Ok(Json::Object(out))
    }
}

/// An event of a page, before its full row is read.
#[derive(Debug)]
struct EventKey {
    kind: String,
    id: String,
    at: Micros,
    /// A track's per-event table.
    event_table: Option<String>,
    source: Option<String>,
}

impl EventKey {
    /// Where its full row is: a track's per-event table when it exists.
    fn table(&self, tables: &[String]) -> String {
        match &self.event_table {
            Some(t) if tables.contains(t) => t.clone(),
            _ => call_table(&self.kind).to_owned(),
        }
    }
}

/// One event as the Profile API lists it, from its row in `table`:
/// `context` holds the `context_*` columns (flattened names without the
/// prefix: the warehouse keeps no nested payload), `properties` (track,
/// page, screen) or `traits` (identify, group) the event's own columns.
fn event_item(table: &str, columns: &[String], row: &[Value], canonical: &str) -> Json {
    let standard: Vec<&str> = event_standard_columns(table)
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let get = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .and_then(|p| row.get(p))
    };
    let mut context = Map::new();
    let mut own = Map::new();
    for (c, v) in columns.iter().zip(row) {
        if v.is_null() || standard.contains(&c.as_str()) {
            continue;
        }
        match c.strip_prefix("context_") {
            Some(k) => context.insert(k.to_owned(), value_json(v)),
            None => own.insert(c.clone(), value_json(v)),
        };
    }
    let kind = match table {
        "identifies" => "identify",
        "pages" => "page",
        "screens" => "screen",
        "groups" => "group",
        "aliases" => "alias",
        _ => "track",
    };
    let mut external_ids = Vec::new();
    let email = if kind == "identify" {
        get("email")
    } else {
        None
    };
    for (ty, v) in [
        ("user_id", get("user_id")),
        ("anonymous_id", get("anonymous_id")),
        ("email", email.or_else(|| get("context_traits_email"))),
    ] {
        if let Some(v) = text(v) {
            external_ids
                .push(json!({ "collection": "users", "type": ty, "id": v, "encoding": "none" }));
        }
    }
    let event = match kind {
        "track" => text(get("event_text")),
        "page" | "screen" => text(get("name")),
        _ => None,
    };
    let mut item = json!({
        "external_ids": external_ids,
        "context": context,
        "type": kind,
        "message_id": text(get("id")),
        "source_id": text(get("event_source_id")),
        "timestamp": iso(get("timestamp")),
        "properties": {},
        "event": event,
        "related": { "users": canonical },
    });
    let key = if matches!(kind, "identify" | "group") {
        "traits"
    } else {
        "properties"
    };
    item[key] = Json::Object(own);
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_need_a_type_and_a_value() {
        let id: Identifier = "Phone:+1555:0".parse().unwrap();
        assert_eq!(
            (id.id_type.as_str(), id.value.as_str()),
            ("phone", "+1555:0")
        );
        for bad in ["user_id", ":x", "user_id:", ""] {
            assert!(bad.parse::<Identifier>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_route() {
        let c = cursor("e", "1651500060000000:event_1");
        assert_eq!(uncursor("e", &c).unwrap(), "1651500060000000:event_1");
        assert!(matches!(uncursor("t", &c), Err(LookupError::BadCursor)));
        assert!(matches!(uncursor("t", "!!"), Err(LookupError::BadCursor)));
    }
}
