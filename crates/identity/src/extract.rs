//! Promoting identifiers from an event (SPEC §3.1).
//!
//! Which fields count as identifiers is a product decision with consequences:
//! properties are *not* a source of `email` (the case study's page call carries
//! an email and still starts a new profile), advertising ids only count when ad
//! tracking is on, and `groupId` identifies an account, never a person.

use crate::settings::{Settings, TypeId};
use ps_spec::{Event, EventType};
use serde_json::{Map, Value as Json};
use std::borrow::Cow;

/// An identifier candidate: its type and verbatim value, borrowed from the
/// event where possible (most identifiers are already known, and copying
/// their values for a lookup would be wasted work).
pub type Candidate<'e> = (TypeId, Cow<'e, str>);

/// An event's candidates, on the stack for the usual handful.
pub type Candidates<'e> = smallvec::SmallVec<[Candidate<'e>; 6]>;

/// Appends the event's identifiers to `out` in event order (the order that
/// breaks demotion ties), blocked values and exact repeats left out. Returns
/// the names of identifier types first seen here (from `context.externalIds`).
pub fn extract<'e>(
    settings: &mut Settings,
    ev: &'e Event,
    out: &mut Candidates<'e>,
) -> Vec<String> {
    let mut added = Vec::new();
    let b = settings.builtin;
    let push = |settings: &Settings, t: TypeId, v: Cow<'e, str>, out: &mut Candidates<'e>| {
        if v.is_empty()
            || settings.is_blocked(t, &v)
            || out.iter().any(|(ot, ov)| *ot == t && *ov == v)
        {
            return;
        }
        out.push((t, v));
    };
    if let Some(u) = &ev.user_id {
        push(settings, b.user_id, Cow::Borrowed(u), out);
    }
    if let Some(a) = &ev.anonymous_id {
        push(settings, b.anonymous_id, Cow::Borrowed(a), out);
    }
    let context = ev.context();
    let traits = match ev.kind {
        EventType::Identify | EventType::Group => ev.body(),
        _ => None,
    };
    let context_traits = context
        .and_then(|c| c.get("traits"))
        .and_then(Json::as_object);
    for src in [traits, context_traits].into_iter().flatten() {
        if let Some(v) = src.get("email").and_then(scalar) {
            push(settings, b.email, v, out);
        }
    }
    if let Some(device) = context
        .and_then(|c| c.get("device"))
        .and_then(Json::as_object)
    {
        let kind = device
            .get("type")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let ids = if kind.eq_ignore_ascii_case("android") {
            Some(b.android)
        } else if kind.eq_ignore_ascii_case("ios") {
            Some(b.ios)
        } else {
            None
        };
        if let Some([id_t, idfa_t, token_t]) = ids {
            if let Some(id) = device.get("id").and_then(scalar) {
                push(settings, id_t, id, out);
            }
            if device.get("adTrackingEnabled").and_then(Json::as_bool) == Some(true) {
                if let Some(id) = device.get("advertisingId").and_then(scalar) {
                    push(settings, idfa_t, id, out);
                }
            }
            if let Some(tok) = device.get("token").and_then(scalar) {
                push(settings, token_t, tok, out);
            }
        }
    }
    let ga = |m: Option<&'e Map<String, Json>>| {
        m.and_then(|i| i.get("integrations"))
            .and_then(|i| i.get("Google Analytics"))
            .and_then(|g| g.get("clientId"))
            .and_then(scalar)
    };
    if let Some(cid) = ga(Some(&ev.payload)).or_else(|| ga(context)) {
        push(settings, b.ga_client_id, cid, out);
    }
    // Custom identifiers read from traits (identify, group), properties (track,
    // page, screen) and context.traits (any call).
    if !settings.custom.is_empty() {
        let body = ev.body();
        for ci in 0..settings.custom.len() {
            let t = settings.custom[ci].0;
            for src in [body, context_traits].into_iter().flatten() {
                for ki in 0..settings.custom[ci].1.len() {
                    if let Some(v) = src.get(&settings.custom[ci].1[ki]).and_then(scalar) {
                        push(settings, t, v, out);
                    }
                }
            }
        }
    }
    if let Some(ext) = context
        .and_then(|c| c.get("externalIds"))
        .and_then(Json::as_array)
    {
        for e in ext {
            let (Some(id), Some(ty)) = (
                e.get("id").and_then(scalar),
                e.get("type").and_then(Json::as_str),
            ) else {
                continue;
            };
            let collection = e
                .get("collection")
                .and_then(Json::as_str)
                .unwrap_or("users");
            if collection != "users" {
                continue;
            }
            let ty = ty.to_ascii_lowercase();
            let (t, new) = settings.type_id_or_add(&ty);
            if new {
                added.push(ty);
            }
            push(settings, t, id, out);
        }
    }
    added
}

/// Identifier values are strings; numbers are accepted as their decimal text.
fn scalar(v: &Json) -> Option<Cow<'_, str>> {
    match v {
        Json::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}
