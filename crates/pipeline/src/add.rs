//! Admitting one event: validation and normalization (`ps_spec`), its
//! source, deduplication, the identity engine, then its rows
//! (`crate::effects`, `crate::events`). A refused event is counted and kept
//! in `rejected_events`.

use crate::batch::Batch;
use crate::space::{Origin, Space};
use crate::state::seen::{message_key, rejected_key};
use ps_spec::{parse_doc, tape::Doc, Arrival, Event, Refusal, Value};
use ps_warehouse::contract::{self as c, Col};
use serde_json::Value as Json;
use std::time::Instant;

impl Space {
    /// [`Space::add`] of a payload held as a `serde_json` value (the HTTP
    /// server's, which it amends before the pipeline sees it).
    pub fn add_json(
        &mut self,
        batch: &mut Batch,
        payload: std::result::Result<Json, String>,
        raw: Option<&[u8]>,
        origin: Origin<'_>,
        arrival: Arrival,
    ) -> std::result::Result<(), Refusal> {
        let doc = payload.map(|j| Doc::parse(j.to_string()).expect("serde_json writes JSON"));
        self.add(batch, doc, raw, origin, arrival)
    }

    /// Validates, deduplicates and resolves one payload, adding its rows to
    /// `batch`. A refusal is counted in the batch, and also returned.
    pub fn add(
        &mut self,
        batch: &mut Batch,
        payload: std::result::Result<Doc, String>,
        raw: Option<&[u8]>,
        origin: Origin<'_>,
        arrival: Arrival,
    ) -> std::result::Result<(), Refusal> {
        batch.stats.read += 1;
        let t0 = Instant::now();
        let arrival = Arrival {
            load_time: batch.load_time,
            ..arrival
        };
        let parsed = match payload {
            Err(e) => Err((Refusal::MalformedJson(e), None)),
            Ok(doc) => parse_doc(doc, &arrival, raw).map_err(|(r, d)| (r, Some(d))),
        };
        let resolved = parsed.and_then(|ev| {
            let source = match ev.write_key.as_deref().or(origin.batch_write_key) {
                Some(k) => self
                    .cfg
                    .source_by_key(k)
                    .ok_or_else(|| Refusal::UnknownWriteKey(k.to_owned())),
                None => origin.default_source.ok_or(Refusal::NoSource),
            };
            match source {
                Ok(s) => Ok((ev, s)),
                Err(r) => Err((r, Some(ev.into_doc()))),
            }
        });
        self.timings.parse += t0.elapsed();
        let (ev, source) = match resolved {
            Ok(x) => x,
            Err((refusal, json)) => {
                batch
                    .stats
                    .refuse(refusal.code(), origin.place.to_owned(), refusal.to_string());
                let src = origin
                    .batch_write_key
                    .and_then(|k| self.cfg.source_by_key(k))
                    .or(origin.default_source)
                    .map(|i| self.cfg.sources[i].id.clone());
                let text = match (raw, json) {
                    (Some(r), _) => Some(String::from_utf8_lossy(r).into_owned()),
                    // As `serde_json` writes it (keys sorted), as always.
                    (None, Some(d)) => Some(d.root().to_json().to_string()),
                    (None, None) => None,
                };
                self.reject(batch, src, origin.place, &refusal, text);
                return Err(refusal);
            }
        };
        let key = message_key(&ev.message_id);
        if !self.seen.insert(key) {
            batch.stats.duplicates += 1;
            return Ok(());
        }
        batch.new_keys.push(key);
        self.land(batch, &ev, source, origin.place)
    }

    /// Records a refused event in `rejected_events`.
    pub fn reject(
        &mut self,
        batch: &mut Batch,
        source: Option<String>,
        place: &str,
        r: &Refusal,
        payload: Option<String>,
    ) {
        let key = rejected_key(place, payload.as_deref().unwrap_or(""));
        if !self.seen.insert(key) {
            return;
        }
        batch.new_keys.push(key);
        let mut row = self.layouts.rejected_events.row();
        row.set(Col::ReceivedAt, Value::Ts(batch.load_time))
            .set(Col::UuidTs, Value::Ts(batch.load_time))
            .set(Col::SourceId, source.map_or(Value::Null, Value::Str))
            .set(Col::Origin, Value::Str(place.to_owned()))
            .set(Col::ReasonCode, Value::Str(r.code().to_owned()))
            .set(Col::Reason, Value::Str(r.to_string()))
            .set(Col::Payload, payload.map_or(Value::Null, Value::Str));
        batch.push(c::REJECTED_EVENTS, row.into_cells());
        *batch
            .stats
            .rows
            .entry(c::REJECTED_EVENTS.to_owned())
            .or_default() += 1;
    }

    pub(crate) fn land(
        &mut self,
        batch: &mut Batch,
        ev: &Event,
        source: usize,
        place: &str,
    ) -> std::result::Result<(), Refusal> {
        let mut fx = Vec::new();
        let t0 = Instant::now();
        let outcome = self.engine.process(ev, &mut fx);
        let t1 = Instant::now();
        self.timings.identity += t1 - t0;
        if let Some((t, _)) = outcome.suppressed {
            // Refused and stored nowhere (not even in rejected_events, which
            // would keep the very data suppression is about). Forgetting its
            // message id lets a replay after `unsuppress` land it.
            let key = message_key(&ev.message_id);
            self.seen.remove(key);
            if batch.new_keys.last() == Some(&key) {
                batch.new_keys.pop();
            }
            let r = Refusal::Suppressed(t);
            batch
                .stats
                .refuse(r.code(), place.to_owned(), r.to_string());
            return Err(r);
        }
        // The rows stage starts after compute's facts (their own stage).
        let mut rows_from = t1;
        if let Some(c) = &mut self.compute {
            c.observe(&self.engine, ev, &outcome, &fx);
            rows_from = Instant::now();
            self.timings.compute += rows_from - t1;
        }
        batch.events += 1;
        batch.stats.landed += 1;
        batch.stats.merges += u64::from(outcome.merges);
        batch.stats.new_identifier_types.extend(outcome.new_types);
        // Cheap: sources are few; cloning keeps the borrow checker out of the
        // row builders, which need `&mut self`.
        let src = self.sources[source].clone();
        for e in &fx {
            self.effect_row(batch, ev, &src, e);
        }
        let seg = outcome
            .segment
            .map(|p| self.engine.segment_id(p).to_owned());
        self.event_rows(batch, ev, seg.as_deref(), &src);
        self.timings.rows += rows_from.elapsed();
        Ok(())
    }
}
