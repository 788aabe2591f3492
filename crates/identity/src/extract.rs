//! Promoting identifiers from an event (SPEC §3.1).
//!
//! Which fields count as identifiers is a product decision with consequences:
//! properties are *not* a source of `email` (the case study's page call carries
//! an email and still starts a new profile), advertising ids only count when ad
//! tracking is on, and `groupId` identifies an account, never a person.

use crate::settings::{Settings, TypeId};
use ps_spec::{Event, EventType};
use serde_json::{Map, Value as Json};

/// An identifier candidate: its type and verbatim value.
pub type Candidate = (TypeId, String);

/// Appends the event's identifiers to `out` in event order (the order that
/// breaks demotion ties), blocked values and exact repeats left out. Returns
/// the names of identifier types first seen here (from `context.externalIds`).
pub fn extract(settings: &mut Settings, ev: &Event, out: &mut Vec<Candidate>) -> Vec<String> {
    let mut added = Vec::new();
    let push = |settings: &Settings, t: Option<TypeId>, v: &str, out: &mut Vec<Candidate>| {
        let Some(t) = t else { return };
        if v.is_empty()
            || settings.is_blocked(t, v)
            || out.iter().any(|(ot, ov)| *ot == t && ov == v)
        {
            return;
        }
        out.push((t, v.to_owned()));
    };
    if let Some(u) = &ev.user_id {
        push(settings, settings.type_id("user_id"), u, out);
    }
    if let Some(a) = &ev.anonymous_id {
        push(settings, settings.type_id("anonymous_id"), a, out);
    }
    let context = ev.context();
    let traits = match ev.kind {
        EventType::Identify | EventType::Group => ev.body(),
        _ => None,
    };
    let context_traits = context
        .and_then(|c| c.get("traits"))
        .and_then(Json::as_object);
    let email = settings.type_id("email");
    for src in [traits, context_traits].into_iter().flatten() {
        if let Some(v) = src.get("email").and_then(scalar) {
            push(settings, email, &v, out);
        }
    }
    if let Some(device) = context
        .and_then(|c| c.get("device"))
        .and_then(Json::as_object)
    {
        let kind = device
            .get("type")
            .and_then(Json::as_str)
            .map(str::to_ascii_lowercase);
        if let Some(kind @ ("ios" | "android")) = kind.as_deref() {
            if let Some(id) = device.get("id").and_then(scalar) {
                push(settings, settings.type_id(&format!("{kind}.id")), &id, out);
            }
            let tracking = device.get("adTrackingEnabled").and_then(Json::as_bool) == Some(true);
            if tracking {
                if let Some(id) = device.get("advertisingId").and_then(scalar) {
                    push(
                        settings,
                        settings.type_id(&format!("{kind}.idfa")),
                        &id,
                        out,
                    );
                }
            }
            if let Some(tok) = device.get("token").and_then(scalar) {
                push(
                    settings,
                    settings.type_id(&format!("{kind}.push_token")),
                    &tok,
                    out,
                );
            }
        }
    }
    let ga = |m: Option<&Map<String, Json>>| {
        m.and_then(|i| i.get("integrations"))
            .and_then(|i| i.get("Google Analytics"))
            .and_then(|g| g.get("clientId"))
            .and_then(scalar)
    };
    if let Some(cid) = ga(Some(&ev.payload)).or_else(|| ga(context)) {
        push(settings, settings.type_id("ga_client_id"), &cid, out);
    }
    // Custom identifiers read from traits (identify, group), properties (track,
    // page, screen) and context.traits (any call).
    let custom: Vec<(TypeId, Vec<String>)> = settings
        .types()
        .filter(|(_, t)| !t.keys.is_empty())
        .map(|(id, t)| (id, t.keys.clone()))
        .collect();
    if !custom.is_empty() {
        let body = ev.body();
        for (t, keys) in custom {
            for src in [body, context_traits].into_iter().flatten() {
                for k in &keys {
                    if let Some(v) = src.get(k).and_then(scalar) {
                        push(settings, Some(t), &v, out);
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
            push(settings, Some(t), &id, out);
        }
    }
    added
}

/// Identifier values are strings; numbers are accepted as their decimal text.
fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
