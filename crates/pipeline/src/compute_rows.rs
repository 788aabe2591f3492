//! Computed values to rows: when a transaction's last batch is prepared,
//! the profiles the transaction touched are re-evaluated
//! (`crate::compute`) and each change lands as
//!
//! - a `profile_traits_updates` snapshot row (the custom traits and every
//!   computed value, typed per kind), so `profile_traits` shows them;
//! - with `[compute] emit_identifies`, an `identifies` row carrying the
//!   changed keys;
//! - per audience transition, an `Audience Entered` / `Audience Exited`
//!   track (in `tracks` and `audience_entered` / `audience_exited`) with
//!   `audience_key`, `<key>` true/false and a `reason` JSON column.
//!
//! All of them have `event_source_id` = `[compute] source_id`, the canonical
//! profile as `segment_id`, the evaluation time as `timestamp`, and a
//! message id derived from (space, audience or `identify`, profile, number),
//! so the same history always lands the same rows.

use crate::batch::Batch;
use crate::compute::{Change, Compute};
use crate::space::Space;
use ps_spec::tape::Doc;
use ps_spec::time::format_iso;
use ps_spec::{parse_doc, Arrival, Event};
use serde_json::{json, Map, Value as Json};
use sha1::{Digest, Sha1};

/// A deterministic message id from its parts.
fn message_id(parts: &[&str]) -> String {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    format!("ps-compute-{}", hex::encode(h.finalize()))
}

/// An event compute emits, as if it had arrived: `payload` plus the
/// profile's `userId` / `anonymousId` (validation wants one; a profile
/// known only by other identifiers lands with neither).
fn emitted(mut payload: Json, user: Option<&str>, anon: Option<&str>, load_time: i64) -> Event {
    let o = payload.as_object_mut().expect("an object");
    if let Some(u) = user {
        o.insert("userId".into(), Json::from(u));
    }
    o.insert(
        "anonymousId".into(),
        Json::from(anon.unwrap_or("ps-compute")),
    );
    let doc = Doc::parse(payload.to_string()).expect("serde_json writes JSON");
    let arrival = Arrival {
        received_at: None,
        batch_sent_at: None,
        load_time,
    };
    let mut ev = parse_doc(doc, &arrival, None)
        .map_err(|(r, _)| r)
        .expect("compute emits valid events");
    ev.anonymous_id = anon.map(str::to_owned);
    ev
}

impl Space {
    /// Fixes the time computed traits are evaluated at (`--as-of`); `None`
    /// (the default) evaluates each batch at its load time, the wall clock
    /// when it started.
    pub fn set_as_of(&mut self, as_of: Option<i64>) {
        if let Some(c) = &mut self.compute {
            c.as_of = as_of;
        }
    }

    /// A tick: the next commit also re-evaluates every profile whose
    /// computed values can have changed with time alone since they were
    /// evaluated (windows, relative dates), at its `as_of` (`now` unless
    /// fixed), and lands what changed. Only those profiles: an index by
    /// the earliest such instant finds them (`compute::Clock`). Whether
    /// one is due, so the next batch must commit even with no events.
    pub fn compute_tick(&mut self, now: i64) -> bool {
        match &mut self.compute {
            Some(c) => c.request_tick(&self.engine, now),
            None => false,
        }
    }

    /// The computed values last emitted for `p`'s canonical profile (absent
    /// keys are NULL); `None` without definitions or values.
    pub fn computed_values(
        &self,
        p: ps_identity::ProfileIdx,
    ) -> Option<&std::collections::BTreeMap<String, Json>> {
        self.compute.as_ref()?.values(&self.engine, p)
    }

    /// How often a running server re-evaluates windows and relative dates
    /// with no new events (`[compute] tick`); `None` without definitions.
    pub fn compute_tick_every(&self) -> Option<std::time::Duration> {
        self.compute.as_ref().map(|c| c.tick())
    }

    /// Whether profiles wait for re-evaluation (a tick), so the next batch
    /// must commit even with no events.
    pub fn compute_pending(&self) -> bool {
        self.compute.as_ref().is_some_and(|c| c.pending())
    }

    /// Whether the space has computed traits or audiences.
    pub fn computes(&self) -> bool {
        self.compute.is_some()
    }

    /// Re-evaluates the profiles the transaction touched (this batch is its
    /// last) and adds the rows of every change to it.
    pub(crate) fn compute_rows(&mut self, batch: &mut Batch) {
        let Some(mut c) = self.compute.take() else {
            return;
        };
        let as_of = c.as_of.unwrap_or(batch.load_time);
        for ch in c.evaluate(&self.engine, as_of) {
            self.change_rows(batch, &c, ch, as_of);
        }
        batch.stats.computed_evaluated += c.evaluated;
        self.compute = Some(c);
    }

    fn change_rows(&mut self, batch: &mut Batch, c: &Compute, ch: Change, as_of: i64) {
        let seg = self.engine.segment_id(ch.profile).to_owned();
        let ids = self.engine.identifiers_of(ch.profile);
        let id = |ty: &str| ids.iter().find(|(t, _)| t == ty).map(|(_, v)| v.as_str());
        let (user, anon) = (id("user_id"), id("anonymous_id"));
        let space = self.cfg.space.clone();
        let src = c.source.clone();
        let at = format_iso(as_of);
        let traits: Map<String, Json> = ch.changed.iter().cloned().collect();
        let identify = emitted(
            json!({
                "type": "identify",
                "messageId": message_id(&[&space, "identify", &seg, &ch.number.to_string()]),
                "timestamp": at,
                "traits": traits,
            }),
            user,
            anon,
            batch.load_time,
        );
        let cells: Vec<(String, ps_spec::Value)> = c
            .profiles
            .get(&ch.profile)
            .into_iter()
            .flat_map(|st| &st.values)
            .map(|(k, v)| (k.clone(), c.cell(k, v)))
            .collect();
        self.traits_row(batch, &identify, &src, ch.profile, &cells);
        if c.defs.settings.emit_identifies {
            self.event_rows(batch, &identify, Some(&seg), &src);
        }
        for (key, entered, n, reason) in ch.transitions {
            let mut props = Map::new();
            props.insert("audience_key".into(), Json::from(key.as_str()));
            props.insert(key.clone(), Json::Bool(entered));
            props.insert("reason".into(), Json::from(reason.to_string()));
            let ev = emitted(
                json!({
                    "type": "track",
                    "event": if entered { "Audience Entered" } else { "Audience Exited" },
                    "messageId": message_id(&[&space, &key, &seg, &n.to_string()]),
                    "timestamp": at,
                    "properties": props,
                }),
                user,
                anon,
                batch.load_time,
            );
            self.event_rows(batch, &ev, Some(&seg), &src);
        }
        batch.touched.push(ch.profile);
        batch.stats.computed_changes += 1;
    }
}
