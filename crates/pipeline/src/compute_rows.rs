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
use crate::compute::{cores, on_cores, Change, Compute};
use crate::space::Space;
use ps_identity::{Engine, ProfileIdx};
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
    /// last) and adds the rows of every change to it. The events a change
    /// emits are built on the machine's cores (each from its own change
    /// alone; the end of a transaction is serial work the landing thread
    /// waits for), then written into the batch in profile order.
    pub(crate) fn compute_rows(&mut self, batch: &mut Batch) {
        let Some(mut c) = self.compute.take() else {
            return;
        };
        let as_of = c.as_of.unwrap_or(batch.load_time);
        let changes = c.evaluate(&self.engine, as_of);
        let (engine, space, load_time) = (&self.engine, self.cfg.space.as_str(), batch.load_time);
        let built = on_cores(changes, cores(), |part| {
            part.into_iter()
                .map(|ch| Emitted::of(engine, space, &c, ch, as_of, load_time))
                .collect()
        });
        for e in built {
            self.change_rows(batch, &c, e);
        }
        batch.stats.computed_evaluated += c.evaluated;
        self.compute = Some(c);
    }

    fn change_rows(&mut self, batch: &mut Batch, c: &Compute, e: Emitted) {
        let src = c.source.clone();
        self.traits_row(batch, &e.identify, &src, e.profile, &e.cells);
        if c.defs.settings.emit_identifies {
            self.event_rows(batch, &e.identify, Some(&e.seg), &src);
        }
        for ev in &e.tracks {
            self.event_rows(batch, ev, Some(&e.seg), &src);
        }
        batch.stats.computed_changes += 1;
    }
}

/// The events one change emits, built apart from the batch so that many
/// can be built at once: the `identify` (the snapshot row's common columns,
/// and the `identifies` row with `emit_identifies`), the profile's computed
/// values as cells, and a track per audience transition.
struct Emitted {
    profile: ProfileIdx,
    seg: String,
    identify: Event,
    cells: Vec<(String, ps_spec::Value)>,
    tracks: Vec<Event>,
}

impl Emitted {
    fn of(
        engine: &Engine,
        space: &str,
        c: &Compute,
        ch: Change,
        as_of: i64,
        load_time: i64,
    ) -> Emitted {
        let seg = engine.segment_id(ch.profile).to_owned();
        let ids = engine.identifiers_of(ch.profile);
        let id = |ty: &str| ids.iter().find(|(t, _)| t == ty).map(|(_, v)| v.as_str());
        let (user, anon) = (id("user_id"), id("anonymous_id"));
        let at = format_iso(as_of);
        let traits: Map<String, Json> = ch.changed.into_iter().collect();
        let identify = emitted(
            json!({
                "type": "identify",
                "messageId": message_id(&[space, "identify", &seg, &ch.number.to_string()]),
                "timestamp": at,
                "traits": traits,
            }),
            user,
            anon,
            load_time,
        );
        let cells = c
            .profiles
            .get(&ch.profile)
            .into_iter()
            .flat_map(|st| &st.values)
            .map(|(k, v)| (k.clone(), c.cell(k, v)))
            .collect();
        let tracks = ch
            .transitions
            .into_iter()
            .map(|(key, entered, n, reason)| {
                let mut props = Map::new();
                props.insert("audience_key".into(), Json::from(key.as_str()));
                props.insert(key.clone(), Json::Bool(entered));
                props.insert("reason".into(), Json::from(reason.to_string()));
                emitted(
                    json!({
                        "type": "track",
                        "event": if entered { "Audience Entered" } else { "Audience Exited" },
                        "messageId": message_id(&[space, &key, &seg, &n.to_string()]),
                        "timestamp": at,
                        "properties": props,
                    }),
                    user,
                    anon,
                    load_time,
                )
            })
            .collect();
        Emitted {
            profile: ch.profile,
            seg,
            identify,
            cells,
            tracks,
        }
    }
}
