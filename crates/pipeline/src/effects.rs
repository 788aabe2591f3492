//! Engine effects to rows of the landed profile tables
//! (`id_graph_updates`, `external_id_mapping_updates`,
//! `profile_traits_updates`, `identity_conflicts`), each with the next `seq`.

use crate::batch::Batch;
use crate::config::Source;
use crate::space::Space;
use crate::stats::SyncStats;
use ps_identity::{Effect, ProfileIdx, Rule};
use ps_spec::{ColumnType, Event, Value};
use ps_warehouse::contract::{self as c, Col, Row};
use sha1::{Digest, Sha1};

impl Space {
    /// Takes the next `seq` and fills the provenance columns every landed
    /// profile table carries ([`c::COMMON`]); the materialized tables are
    /// built from these tables, so the batch notes the `seq` for them.
    fn common(&mut self, row: &mut Row, batch: &mut Batch, ev: &Event, src: &Source) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.materialize_from(seq);
        let opt = |s: Option<&str>| s.map_or(Value::Null, |s| Value::Str(s.to_owned()));
        row.set(Col::Seq, Value::Int(seq))
            .set(Col::UuidTs, Value::Ts(batch.load_time))
            .set(Col::Timestamp, Value::Ts(ev.timestamp))
            .set(Col::ReceivedAt, Value::Ts(ev.received_at))
            .set(Col::TriggeringEventId, Value::Str(ev.message_id.clone()))
            .set(
                Col::TriggeringEventType,
                Value::Str(ev.kind.as_str().to_owned()),
            )
            .set(Col::TriggeringEventName, opt(ev.display_name()))
            .set(Col::TriggeringEventSourceId, Value::Str(src.id.clone()))
            .set(Col::TriggeringEventSourceName, Value::Str(src.name.clone()))
            .set(Col::TriggeringEventSourceSlug, Value::Str(src.slug.clone()));
        seq
    }

    /// The row effect `e` of event `ev` lands.
    pub(crate) fn effect_row(&mut self, batch: &mut Batch, ev: &Event, src: &Source, e: &Effect) {
        let sid = |s: &Self, p: ProfileIdx| Value::Str(s.engine.segment_id(p).to_owned());
        match e {
            Effect::Created { profile }
            | Effect::Repointed {
                segment: profile, ..
            } => {
                let canonical = match e {
                    Effect::Repointed { canonical, .. } => *canonical,
                    _ => *profile,
                };
                if matches!(e, Effect::Created { .. }) {
                    batch.stats.profiles_created += 1;
                }
                let mut row = self.layouts.id_graph_updates.row();
                let seq = self.common(&mut row, batch, ev, src);
                row.set(Col::Id, Value::Str(seq.to_string()))
                    .set(Col::SegmentId, sid(self, *profile))
                    .set(Col::CanonicalSegmentId, sid(self, canonical));
                batch.push(c::ID_GRAPH_UPDATES, row.into_cells());
                *batch
                    .stats
                    .rows
                    .entry(c::ID_GRAPH_UPDATES.to_owned())
                    .or_default() += 1;
            }
            Effect::Attached { profile, ident } => {
                let mut row = self.layouts.external_id_mapping_updates.row();
                let seq = self.common(&mut row, batch, ev, src);
                let (ty, value) = self.engine.identifier(*ident);
                let mut h = Sha1::new();
                h.update(ty.as_bytes());
                h.update(value.as_bytes());
                row.set(Col::Id, Value::Str(seq.to_string()))
                    .set(Col::SegmentId, sid(self, *profile))
                    .set(Col::ExternalIdType, Value::Str(ty.to_owned()))
                    .set(Col::ExternalIdValue, Value::Str(value.to_owned()))
                    .set(Col::ExternalIdHash, Value::Str(hex::encode(h.finalize())));
                batch.push(c::EXTERNAL_ID_MAPPING_UPDATES, row.into_cells());
                *batch
                    .stats
                    .rows
                    .entry(c::EXTERNAL_ID_MAPPING_UPDATES.to_owned())
                    .or_default() += 1;
            }
            Effect::Traits { profile } => {
                let cells: Vec<(String, Value)> = match &self.compute {
                    Some(c) => c
                        .values(&self.engine, *profile)
                        .map(|vals| {
                            vals.iter()
                                .map(|(k, v)| (k.clone(), c.cell(k, v)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                self.traits_row(batch, ev, src, *profile, &cells);
            }
            Effect::Conflict(conflict) => {
                let rule = match conflict.rule {
                    Rule::Limit(t) => format!("limit:{}", self.engine.settings().name(t)),
                    Rule::MergeCap => "merge_cap".to_owned(),
                    Rule::IdentifierCap => "identifier_cap".to_owned(),
                };
                *batch.stats.conflicts.entry(rule.clone()).or_default() += 1;
                let seq = self.next_seq;
                self.next_seq += 1;
                let ids: Vec<&str> = conflict
                    .profiles
                    .iter()
                    .map(|p| self.engine.segment_id(*p))
                    .collect();
                let mut row = self.layouts.identity_conflicts.row();
                row.set(Col::Id, Value::Str(seq.to_string()))
                    .set(Col::Seq, Value::Int(seq))
                    .set(Col::UuidTs, Value::Ts(batch.load_time))
                    .set(Col::Timestamp, Value::Ts(ev.timestamp))
                    .set(Col::EventId, Value::Str(ev.message_id.clone()))
                    .set(Col::EventType, Value::Str(ev.kind.as_str().to_owned()))
                    .set(Col::EventSourceId, Value::Str(src.id.clone()))
                    .set(
                        Col::ExternalIdType,
                        Value::Str(self.engine.settings().name(conflict.ident_type).to_owned()),
                    )
                    .set(Col::ExternalIdValue, Value::Str(conflict.value.clone()))
                    .set(Col::Rule, Value::Str(rule))
                    .set(Col::SegmentIds, Value::Str(ids.join(",")));
                batch.push(c::IDENTITY_CONFLICTS, row.into_cells());
                *batch
                    .stats
                    .rows
                    .entry(c::IDENTITY_CONFLICTS.to_owned())
                    .or_default() += 1;
            }
        }
    }
}

impl Space {
    /// A `profile_traits_updates` snapshot row of `profile`: its custom
    /// traits (a computed key shadows a custom trait of the same name) and
    /// its computed values `computed`, as column cells.
    pub(crate) fn traits_row(
        &mut self,
        batch: &mut Batch,
        ev: &Event,
        src: &Source,
        profile: ProfileIdx,
        computed: &[(String, Value)],
    ) {
        let mut row = self.layouts.profile_traits_updates.row();
        let seq = self.common(&mut row, batch, ev, src);
        row.set(Col::Id, Value::Str(seq.to_string())).set(
            Col::SegmentId,
            Value::Str(self.engine.segment_id(profile).to_owned()),
        );
        let known = |t| self.catalog.id(t).expect("open checks the fixed tables");
        let (updates, current) = (known(c::PROFILE_TRAITS_UPDATES), known(c::PROFILE_TRAITS));
        let custom = self.engine.traits(profile).filter_map(|(name, v)| {
            if self.compute_keys.contains(name) {
                return None;
            }
            Some((name, Value::from_json(v), false))
        });
        let computed = computed.iter().map(|(k, v)| (k.as_str(), v.clone(), true));
        let all: Vec<(&str, Value, bool)> = custom.chain(computed).collect();
        for (name, value, is_computed) in all {
            if !is_computed && self.reserved_traits.contains(name) {
                *batch
                    .stats
                    .dropped
                    .entry("reserved_trait_name".into())
                    .or_default() += 1;
                continue;
            }
            let Some(ty) = value.column_type() else {
                continue;
            };
            let (pos, have) = self
                .catalog
                .ensure_column_in(updates, name, ty, &mut batch.ddl);
            self.catalog
                .ensure_column_in(current, name, have, &mut batch.ddl);
            put(
                &mut row,
                pos,
                value,
                have,
                c::PROFILE_TRAITS_UPDATES,
                name,
                &mut batch.stats,
            );
        }
        batch.push(c::PROFILE_TRAITS_UPDATES, row.into_cells());
        *batch
            .stats
            .rows
            .entry(c::PROFILE_TRAITS_UPDATES.to_owned())
            .or_default() += 1;
    }
}

/// Puts a value into its column (one added at run time), casting to the
/// column's type; a value that does not fit is stored as NULL and counted.
fn put(
    row: &mut Row,
    pos: usize,
    value: Value,
    have: ColumnType,
    table: &str,
    name: &str,
    stats: &mut SyncStats,
) {
    let value = match value.cast(have) {
        Some(v) => v,
        None => {
            *stats
                .type_conflicts
                .entry(format!("{table}.{name}"))
                .or_default() += 1;
            Value::Null
        }
    };
    row.set_at(pos, value);
}
