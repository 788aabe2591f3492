//! Privacy requests (SPEC §8): delete, suppress, unsuppress — and the
//! `<space>.regulations` record of every one of them.
//!
//! ## Delete
//! The subject identifier resolves to its canonical profile; the profile and
//! every segment merged into it (at any depth) form the set `S`. One commit
//! then removes, in one warehouse transaction:
//! - every event-table row (the six call tables and every per-event table)
//!   whose `segment_id` is in `S`;
//! - the landed profile rows of `S` (`id_graph_updates` on either column,
//!   `external_id_mapping_updates`, `profile_traits_updates`);
//! - `identity_conflicts` rows naming one of the profile's identifiers or a
//!   segment of `S`;
//! - `rejected_events` rows whose payload holds one of its identifier values
//!   as a JSON string;
//! - the materialized rows of `S`;
//! - and rewrites the engine state of `S` as empty shells
//!   ([`ps_identity::Engine::forget`]): the identifiers are released, so the
//!   same values later start a new profile with a new id.
//!
//! The dedupe keys of the deleted events (hashed message ids) stay in
//! `_ps_seen`, so replaying an old file cannot bring the events back;
//! rows are chosen by profile, so another profile's events are never touched
//! (an event of another profile that merely *mentions* the identifier — a
//! shared device's anonymous id, an email demoted by a conflict — stays: it is
//! that other person's record).
//!
//! ## Suppress
//! Stores the subject and every identifier of its profile at that moment in
//! `_ps_suppressions`; from then on the engine refuses events carrying any of
//! them (`suppressed` in the sync summary and metrics), storing them nowhere.
//! Unsuppress removes the suppressions whose identifiers include the subject.
//!
//! `regulations` records each request without the deleted personal data: a
//! delete's subject is kept as `type:sha256:<first 16 hex digits>`.

use crate::batch::Batch;
use crate::error::Result;
use crate::space::Space;
use ps_spec::Value;
use ps_warehouse::contract::{self as c, Col, Layout};
use ps_warehouse::{sql, Dialect, Warehouse};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegulationKind {
    /// Delete the profile's data everywhere and release its identifiers.
    Delete,
    /// Refuse, from now on, every event carrying one of the profile's identifiers.
    Suppress,
    /// Lift the suppressions that include the subject.
    Unsuppress,
}

impl RegulationKind {
    /// The kind as recorded in `regulations.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegulationKind::Delete => "delete",
            RegulationKind::Suppress => "suppress",
            RegulationKind::Unsuppress => "unsuppress",
        }
    }

    /// The kind named `s` (as [`RegulationKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<RegulationKind> {
        Some(match s {
            "delete" => RegulationKind::Delete,
            "suppress" => RegulationKind::Suppress,
            "unsuppress" => RegulationKind::Unsuppress,
            _ => return None,
        })
    }
}

/// `TYPE:VALUE`, e.g. `user_id:123` or `email:jane@example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// An identifier type (lowercase), e.g. `user_id`.
    pub type_name: String,
    /// The identifier's value.
    pub value: String,
}

impl std::str::FromStr for Subject {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Subject, String> {
        match s.split_once(':') {
            Some((t, v)) if !t.is_empty() && !v.is_empty() => Ok(Subject {
                type_name: t.to_ascii_lowercase(),
                value: v.to_owned(),
            }),
            _ => Err(format!(
                "{s:?} is not TYPE:VALUE (for example user_id:123 or email:jane@example.com)"
            )),
        }
    }
}

impl Subject {
    /// The subject as recorded: in clear, or pseudonymized for a delete.
    fn recorded(&self, kind: RegulationKind) -> String {
        match kind {
            RegulationKind::Delete => {
                let d = Sha256::digest(self.value.as_bytes());
                let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("{}:sha256:{hex}", self.type_name)
            }
            _ => format!("{}:{}", self.type_name, self.value),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Carried out.
    Finished,
    /// The identifier is not known (or, for unsuppress, not suppressed).
    NotFound,
}

impl Status {
    /// The status as recorded in `regulations.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Finished => "finished",
            Status::NotFound => "not_found",
        }
    }
}

/// One request as recorded in `regulations`.
#[derive(Debug, Clone, PartialEq)]
pub struct Regulation {
    /// `reg_<n>`, numbered in request order.
    pub id: String,
    /// `delete`, `suppress` or `unsuppress`.
    pub kind: String,
    /// The subject as recorded (a delete's value pseudonymized).
    pub subject: String,
    /// `finished` or `not_found`.
    pub status: String,
    /// When it was asked for (µs since the epoch).
    pub requested_at: i64,
    /// When it finished.
    pub finished_at: Option<i64>,
    /// Rows deleted per table (delete only).
    pub rows_deleted: BTreeMap<String, u64>,
    /// What happened, for people.
    pub message: String,
}

impl Regulation {
    /// Whether the request was carried out.
    pub fn is_finished(&self) -> bool {
        self.status == Status::Finished.as_str()
    }

    /// The record as the admin API and `profiles-sync regulations --json` show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "type": self.kind,
            "subject": self.subject,
            "status": self.status,
            "requested_at": ps_spec::time::format_iso(self.requested_at),
            "finished_at": self.finished_at.map(ps_spec::time::format_iso),
            "rows_deleted": self.rows_deleted,
            "message": self.message,
        })
    }
}

fn count(wh: &mut dyn Warehouse, sql: &str) -> Result<u64> {
    let rows = wh.query(sql)?;
    Ok(match rows.first().and_then(|r| r.first()) {
        Some(Value::Int(n)) => *n as u64,
        _ => 0,
    })
}

impl Space {
    /// Every request so far, oldest first.
    pub fn regulations(&self, wh: &mut dyn Warehouse) -> Result<Vec<Regulation>> {
        let d = wh.dialect().clone();
        let rows = wh.query(&sql::select_ordered(
            &d,
            &self.cfg.space,
            c::REGULATIONS,
            &[
                Col::Id,
                Col::Type,
                Col::Subject,
                Col::Status,
                Col::RequestedAt,
                Col::FinishedAt,
                Col::RowsDeleted,
                Col::Message,
            ],
            &[Col::RequestedAt, Col::Id],
        ))?;
        let s = |v: Option<&Value>| match v {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        };
        let ts = |v: Option<&Value>| match v {
            Some(Value::Ts(t)) => Some(*t),
            _ => None,
        };
        Ok(rows
            .iter()
            .map(|r| Regulation {
                id: s(r.first()),
                kind: s(r.get(1)),
                subject: s(r.get(2)),
                status: s(r.get(3)),
                requested_at: ts(r.get(4)).unwrap_or(0),
                finished_at: ts(r.get(5)),
                rows_deleted: serde_json::from_str(&s(r.get(6))).unwrap_or_default(),
                message: s(r.get(7)),
            })
            .collect())
    }

    /// Carries out one request and records it; `now` is its time (µs).
    /// A subject that is not found is recorded with status `not_found` and
    /// returned as such (not as an error). Like [`Space::commit`], an error
    /// leaves the in-memory state ahead of the warehouse: reopen the space.
    pub fn regulate(
        &mut self,
        wh: &mut dyn Warehouse,
        kind: RegulationKind,
        subject: &Subject,
        now: i64,
    ) -> Result<Regulation> {
        let d = wh.dialect().clone();
        let schema = self.cfg.space.clone();
        let n = count(wh, &sql::count(&d, &schema, c::REGULATIONS, None))?;
        let mut reg = Regulation {
            id: format!("reg_{}", n + 1),
            kind: kind.as_str().to_owned(),
            subject: subject.recorded(kind),
            status: Status::Finished.as_str().to_owned(),
            requested_at: now,
            finished_at: Some(now),
            rows_deleted: BTreeMap::new(),
            message: String::new(),
        };
        let mut batch = self.begin_batch(now);
        let known_type = self.engine.settings().type_id(&subject.type_name).is_some();
        let profile = if known_type {
            self.engine.lookup(&subject.type_name, &subject.value)
        } else {
            None
        };
        match (kind, profile) {
            (RegulationKind::Unsuppress, _) => {
                let mut all: Vec<(String, String, String)> = Vec::new();
                for r in wh.query(&sql::select(
                    &d,
                    &schema,
                    c::STATE_SUPPRESSIONS,
                    &[Col::RegulationId, Col::ExternalIdType, Col::ExternalIdValue],
                ))? {
                    if let (Some(Value::Str(a)), Some(Value::Str(b)), Some(Value::Str(c))) =
                        (r.first(), r.get(1), r.get(2))
                    {
                        all.push((a.clone(), b.clone(), c.clone()));
                    }
                }
                let lifted: Vec<String> = all
                    .iter()
                    .filter(|(_, t, v)| *t == subject.type_name && *v == subject.value)
                    .map(|(r, _, _)| r.clone())
                    .collect();
                if lifted.is_empty() {
                    reg.status = Status::NotFound.as_str().to_owned();
                    reg.message = format!("{} is not suppressed", subject.type_name);
                } else {
                    batch.statements.push(sql::delete_where(
                        &d,
                        &schema,
                        c::STATE_SUPPRESSIONS,
                        &sql::is_in(Col::RegulationId, &lifted),
                    ));
                    for (r, t, v) in &all {
                        if lifted.contains(r) {
                            self.engine.unsuppress(t, v);
                        }
                    }
                    // An identifier in two suppressions stays suppressed by
                    // the one not lifted.
                    for (r, t, v) in &all {
                        if !lifted.contains(r) {
                            self.engine.suppress(t, v);
                        }
                    }
                    reg.message = format!("lifted {}", lifted.join(", "));
                }
            }
            (_, None) => {
                reg.status = Status::NotFound.as_str().to_owned();
                reg.message = if known_type {
                    format!("no profile has this {}", subject.type_name)
                } else {
                    format!("{:?} is not an identifier type", subject.type_name)
                };
            }
            (RegulationKind::Suppress, Some(p)) => {
                let mut idents = self.engine.identifiers_of(p);
                idents.sort();
                let suppressions = Layout::of(c::STATE_SUPPRESSIONS);
                for (t, v) in &idents {
                    self.engine.suppress(t, v);
                    let mut row = suppressions.row();
                    row.set(Col::RegulationId, Value::Str(reg.id.clone()))
                        .set(Col::ExternalIdType, Value::Str(t.clone()))
                        .set(Col::ExternalIdValue, Value::Str(v.clone()));
                    batch.push(c::STATE_SUPPRESSIONS, row.into_cells());
                }
                reg.message = format!("{} identifiers suppressed", idents.len());
            }
            (RegulationKind::Delete, Some(p)) => {
                reg.rows_deleted = self.plan_delete(wh, &d, p, &mut batch)?;
                // Older layers of the engine-state log still hold the
                // profile: this commit rewrites the log without them.
                self.compact_state = true;
                let total: u64 = reg.rows_deleted.values().sum();
                reg.message = format!("{total} rows deleted");
            }
        }
        let mut row = Layout::of(c::REGULATIONS).row();
        row.set(Col::Id, Value::Str(reg.id.clone()))
            .set(Col::Type, Value::Str(reg.kind.clone()))
            .set(Col::Subject, Value::Str(reg.subject.clone()))
            .set(Col::Status, Value::Str(reg.status.clone()))
            .set(Col::RequestedAt, Value::Ts(reg.requested_at))
            .set(
                Col::FinishedAt,
                reg.finished_at.map_or(Value::Null, Value::Ts),
            )
            .set(
                Col::RowsDeleted,
                Value::Str(serde_json::to_string(&reg.rows_deleted).expect("map serializes")),
            )
            .set(Col::Message, Value::Str(reg.message.clone()));
        batch.push(c::REGULATIONS, row.into_cells());
        self.commit(wh, batch)?;
        tracing::info!(id = %reg.id, kind = %reg.kind, status = %reg.status, message = %reg.message, "regulation");
        Ok(reg)
    }

    /// Adds the deletes of profile `p` to `batch` and forgets it in the
    /// engine; returns the rows each table will lose.
    fn plan_delete(
        &mut self,
        wh: &mut dyn Warehouse,
        d: &Dialect,
        p: ps_identity::ProfileIdx,
        batch: &mut Batch,
    ) -> Result<BTreeMap<String, u64>> {
        let schema = self.cfg.space.clone();
        let segs: Vec<String> = self
            .engine
            .segments_of(p)
            .iter()
            .map(|&s| self.engine.segment_id(s).to_owned())
            .collect();
        let idents = self.engine.identifiers_of(p);
        let fixed: Vec<String> = c::fixed_tables().into_iter().map(|t| t.name).collect();
        // By name (`Catalog::tables` order), so the plan is deterministic.
        let event_tables: Vec<String> = self
            .catalog
            .tables()
            .filter(|t| !fixed.contains(&t.name) && t.position("segment_id").is_some())
            .map(|t| t.name.clone())
            .collect();
        let json_strings: Vec<String> = idents
            .iter()
            .map(|(_, v)| serde_json::to_string(v).expect("string serializes"))
            .collect();
        let plan = sql::profile_rows(&event_tables, &segs, &idents, &json_strings);
        // The deleted events' dedupe keys stay in `_ps_seen`, so a replay
        // of an old file cannot bring them back; only the count is needed.
        let mut rows = BTreeMap::new();
        for (table, cond) in &plan {
            let n = count(wh, &sql::count(d, &schema, table, Some(cond)))?;
            if n > 0 {
                batch
                    .statements
                    .push(sql::delete_where(d, &schema, table, cond));
                rows.insert(table.clone(), n);
            }
        }
        let forgotten = self.engine.forget(p);
        if let Some(c) = &mut self.compute {
            c.forget(&forgotten.segments);
        }
        Ok(rows)
    }
}
