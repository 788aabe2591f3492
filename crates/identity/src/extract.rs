//! Promoting identifiers from an event (SPEC §3.1).
//!
//! Which fields count as identifiers is a product decision with consequences:
//! properties are *not* a source of `email` (the case study's page call carries
//! an email and still starts a new profile), advertising ids only count when ad
//! tracking is on, and `groupId` identifies an account, never a person.
//!
//! ## Speed
//! This runs for every event the engine's shortcut does not take, so it
//! reads the event where it is: the parsed tape ([`ps_spec::tape`]), not
//! `serde_json` maps (building the map of a real SDK's `context` — page,
//! user agent, library, campaign, device — was most of the engine's time
//! on a `profiles-sync gen` stream). Parsing already walks `context` once and
//! notes where each source is ([`Event::identity_refs`]), so nothing is
//! searched for here; a device's keys are matched by length and word
//! compares. The meaning is `serde_json`'s throughout: for a repeated key
//! the last value counts, strings count as they are and numbers as the
//! text `serde_json` writes for them. `reference` in the tests is the plain
//! version, a `get` per field on the `serde_json` maps of the same text,
//! and random texts with repeated keys, escapes and every number form must
//! give the same candidates.

use crate::bytes::same_bytes;
use crate::settings::{Builtin, Settings, TypeId};
use ps_spec::tape::{JsonRef, Kind};
use ps_spec::{Event, EventType};
use std::borrow::Cow;

/// An identifier candidate: its type and verbatim value, borrowed from the
/// event where possible (most identifiers are already known, and copying
/// their values for a lookup would be wasted work).
pub type Candidate<'e> = (TypeId, Cow<'e, str>);

/// An event's candidates, on the stack for the usual handful.
pub type Candidates<'e> = smallvec::SmallVec<[Candidate<'e>; 6]>;

/// The parts of an event identifiers are read from. Each is what a
/// `serde_json` map of the payload would hold: for a repeated key, its last
/// value (an earlier object under the same key is not looked into).
#[derive(Default)]
struct Sources<'e> {
    /// `traits` of identify/group calls (a source of `email` and custom keys).
    traits: Option<JsonRef<'e>>,
    /// Top-level `integrations`.
    integrations: Option<JsonRef<'e>>,
    /// The next four, when objects (or, for `externalIds`, an array).
    context_traits: Option<JsonRef<'e>>,
    device: Option<JsonRef<'e>>,
    context_integrations: Option<JsonRef<'e>>,
    external_ids: Option<JsonRef<'e>>,
}

/// `Some(v)` if `v` is an object.
fn object(v: JsonRef<'_>) -> Option<JsonRef<'_>> {
    v.is_object().then_some(v)
}

impl<'e> Sources<'e> {
    /// Parsing noted where the sources are ([`Event::identity_refs`]), so
    /// nothing is looked up here.
    #[inline]
    fn of(ev: &'e Event) -> Sources<'e> {
        let at = ev.identity_refs();
        Sources {
            traits: match ev.kind {
                EventType::Identify | EventType::Group => ev.body_ref(),
                _ => None,
            },
            integrations: at.integrations,
            context_traits: at.context_traits.and_then(object),
            device: at.context_device.and_then(object),
            context_integrations: at.context_integrations,
            external_ids: at
                .context_external_ids
                .filter(|v| matches!(v.kind(), Kind::Array)),
        }
    }
}

/// What [`extract`] found besides the candidates.
#[derive(Debug, Default)]
pub struct Extracted<'e> {
    /// Names of identifier types first seen here (from `context.externalIds`).
    pub new_types: Vec<String>,
    /// The `traits` object of an identify or group call.
    pub traits: Option<JsonRef<'e>>,
}

/// Appends the event's identifiers to `out` in event order (the order that
/// breaks demotion ties), blocked values and exact repeats left out.
pub fn extract<'e>(
    settings: &mut Settings,
    ev: &'e Event,
    out: &mut Candidates<'e>,
) -> Extracted<'e> {
    let mut added = Vec::new();
    let b = settings.builtin;
    if let Some(u) = &ev.user_id {
        push(settings, b.user_id, Cow::Borrowed(u), out);
    }
    if let Some(a) = &ev.anonymous_id {
        push(settings, b.anonymous_id, Cow::Borrowed(a), out);
    }
    let src = Sources::of(ev);
    for m in [src.traits, src.context_traits].into_iter().flatten() {
        if let Some(v) = m.get("email").and_then(scalar) {
            push(settings, b.email, v, out);
        }
    }
    if let Some(ids) = src.device.and_then(|d| device_ids(&b, d)) {
        for (t, v) in ids {
            if let Some(v) = v.and_then(scalar) {
                push(settings, t, v, out);
            }
        }
    }
    let ga = |i: Option<JsonRef<'e>>| {
        i.and_then(|i| i.get("Google Analytics"))
            .and_then(|g| g.get("clientId"))
            .and_then(scalar)
    };
    if let Some(cid) = ga(src.integrations).or_else(|| ga(src.context_integrations)) {
        push(settings, b.ga_client_id, cid, out);
    }
    // Custom identifiers read from traits (identify, group), properties (track,
    // page, screen) and context.traits (any call).
    if !settings.custom.is_empty() {
        let body = ev.body_ref();
        for ci in 0..settings.custom.len() {
            let t = settings.custom[ci].0;
            for m in [body, src.context_traits].into_iter().flatten() {
                for ki in 0..settings.custom[ci].1.len() {
                    if let Some(v) = m.get(&settings.custom[ci].1[ki]).and_then(scalar) {
                        push(settings, t, v, out);
                    }
                }
            }
        }
    }
    if let Some(ext) = src.external_ids {
        for e in ext.elements().filter(JsonRef::is_object) {
            let (mut id, mut ty, mut collection) = (None, None, "users");
            for (k, v) in e.members() {
                match k {
                    "id" => id = Some(v),
                    "type" => ty = v.as_str(),
                    "collection" => collection = v.as_str().unwrap_or("users"),
                    _ => {}
                }
            }
            let (Some(id), Some(ty)) = (id.and_then(scalar), ty) else {
                continue;
            };
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
    Extracted {
        new_types: added,
        traits: src.traits,
    }
}

/// The identifiers `context.device` may carry, in extraction order: the
/// device id, the advertising id (only when `adTrackingEnabled` is `true`)
/// and the push token, each with its type for the device's platform; `None`
/// unless `type` is android or ios (any case). Values are as sent: only
/// strings and numbers count ([`scalar`]).
#[inline]
pub(crate) fn device_ids<'e>(
    b: &Builtin,
    device: JsonRef<'e>,
) -> Option<[(TypeId, Option<JsonRef<'e>>); 3]> {
    let (mut kind, mut id, mut ad_id, mut ad_tracking, mut token) = ("", None, None, false, None);
    // Keys by length, then compared a word at a time (a `match` on the
    // strings compared each candidate with a call to `memcmp`).
    let mut members = device.members();
    while let Some((k, v)) = members.next_bytes() {
        match k.len() {
            2 if same_bytes(k, b"id") => id = Some(v),
            4 if same_bytes(k, b"type") => kind = v.as_str().unwrap_or_default(),
            5 if same_bytes(k, b"token") => token = Some(v),
            13 if same_bytes(k, b"advertisingId") => ad_id = Some(v),
            17 if same_bytes(k, b"adTrackingEnabled") => ad_tracking = v.as_bool() == Some(true),
            _ => {}
        }
    }
    let [id_t, idfa_t, token_t] = if kind.eq_ignore_ascii_case("android") {
        b.android
    } else if kind.eq_ignore_ascii_case("ios") {
        b.ios
    } else {
        return None;
    };
    Some([
        (id_t, id),
        (idfa_t, ad_id.filter(|_| ad_tracking)),
        (token_t, token),
    ])
}

/// Adds a candidate unless it is empty, blocked or already there.
#[inline]
fn push<'e>(settings: &Settings, t: TypeId, v: Cow<'e, str>, out: &mut Candidates<'e>) {
    if v.is_empty() || settings.is_blocked(t, &v) || out.iter().any(|(ot, ov)| *ot == t && *ov == v)
    {
        return;
    }
    out.push((t, v));
}

/// Identifier values are strings; numbers are accepted as their decimal text
/// (as `serde_json` writes the number it reads).
fn scalar(v: JsonRef<'_>) -> Option<Cow<'_, str>> {
    match v.kind() {
        Kind::Str(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        Kind::Int(i) => Some(Cow::Owned(i.to_string())),
        Kind::Number => v.number().map(|n| Cow::Owned(n.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{IdentifierConfig, IdentityConfig};
    use serde_json::{Map, Value as Json};

    /// The straightforward version on `serde_json` maps of the payload (as
    /// `serde_json` reads it), one `get` per field: [`extract`], which reads
    /// the tape in one pass per object, must give exactly what it gives.
    fn reference<'e>(
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
            if let Some(v) = src.get("email").and_then(scalar_json) {
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
                if let Some(id) = device.get("id").and_then(scalar_json) {
                    push(settings, id_t, id, out);
                }
                if device.get("adTrackingEnabled").and_then(Json::as_bool) == Some(true) {
                    if let Some(id) = device.get("advertisingId").and_then(scalar_json) {
                        push(settings, idfa_t, id, out);
                    }
                }
                if let Some(tok) = device.get("token").and_then(scalar_json) {
                    push(settings, token_t, tok, out);
                }
            }
        }
        let ga = |m: Option<&'e Map<String, Json>>| {
            m.and_then(|i| i.get("integrations"))
                .and_then(|i| i.get("Google Analytics"))
                .and_then(|g| g.get("clientId"))
                .and_then(scalar_json)
        };
        if let Some(cid) = ga(Some(ev.payload())).or_else(|| ga(context)) {
            push(settings, b.ga_client_id, cid, out);
        }
        if !settings.custom.is_empty() {
            let body = ev.body();
            for ci in 0..settings.custom.len() {
                let t = settings.custom[ci].0;
                for src in [body, context_traits].into_iter().flatten() {
                    for ki in 0..settings.custom[ci].1.len() {
                        if let Some(v) = src.get(&settings.custom[ci].1[ki]).and_then(scalar_json) {
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
                    e.get("id").and_then(scalar_json),
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

    /// `scalar` as it was on `serde_json` values.
    fn scalar_json(v: &Json) -> Option<Cow<'_, str>> {
        match v {
            Json::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
            Json::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }

    use crate::testgen::{object, value, Rng, Tree};

    const KEYS: [&str; 23] = [
        "email",
        "traits",
        "device",
        "integrations",
        "externalIds",
        "Google Analytics",
        "clientId",
        "type",
        "id",
        "advertisingId",
        "adTrackingEnabled",
        "token",
        "collection",
        "appId",
        "app_id",
        "context",
        "properties",
        "a",
        "zz",
        "Email",
        "ID",
        "",
        "é",
    ];
    const STRINGS: [&str; 13] = [
        "Android", "", "x", "y", "android", "iOS", "ios", "users", "accounts", "CRM", "crm",
        "null", "blocked",
    ];

    /// A random event text: the parts extraction reads, more often than
    /// chance would give them, with repeated keys (an object under a key
    /// that a later repeat replaces), any key order and escapes.
    fn event_text(r: &mut Rng, kind: &str) -> String {
        let obj = |r: &mut Rng, depth| object(r, &KEYS, &STRINGS, depth);
        let val = |r: &mut Rng, depth| value(r, &KEYS, &STRINGS, depth);
        let mut p = obj(r, 4);
        for key in ["context", "traits", "properties", "integrations"] {
            for _ in 0..r.below(3) {
                let v = if r.below(5) == 0 {
                    val(r, 1)
                } else {
                    obj(r, 3)
                };
                p.put(r, key, v);
            }
        }
        let ga = |r: &mut Rng| {
            let mut g = Tree::Object(Vec::new());
            let cid = val(r, 0);
            g.put(r, "clientId", cid);
            let mut i = Tree::Object(Vec::new());
            i.put(r, "Google Analytics", g);
            i
        };
        if r.below(3) == 0 {
            let i = ga(r);
            p.put(r, "integrations", i);
        }
        if let Some(c) = p.last_object("context") {
            if r.below(3) == 0 {
                let i = ga(r);
                c.put(r, "integrations", i);
            }
            for key in ["traits", "device", "integrations", "externalIds"] {
                for _ in 0..r.below(3) {
                    let v = if key == "externalIds" && r.below(4) > 0 {
                        Tree::Array((0..3).map(|_| obj(r, 1)).collect())
                    } else if r.below(6) == 0 {
                        val(r, 1)
                    } else {
                        let mut m = obj(r, 2);
                        if key == "device" {
                            for k in ["type", "adTrackingEnabled", "advertisingId"] {
                                for _ in 0..r.below(3) {
                                    let v = val(r, 0);
                                    m.put(r, k, v);
                                }
                            }
                        }
                        m
                    };
                    c.put(r, key, v);
                }
            }
        }
        let Tree::Object(ms) = &mut p else {
            unreachable!()
        };
        let user = serde_json::to_string(r.pick(&STRINGS)).unwrap();
        for (k, v) in [
            ("type", format!("{kind:?}")),
            ("userId", user),
            ("anonymousId", "\"anon\"".into()),
            ("event", "\"E\"".into()),
            ("groupId", "\"g\"".into()),
        ] {
            ms.push((format!("{k:?}"), Tree::Leaf(v)));
        }
        p.text()
    }

    #[test]
    fn tape_equals_field_lookups_on_maps() {
        let cfg = IdentityConfig {
            use_recommended_blocked_values: true,
            identifiers: vec![
                IdentifierConfig {
                    type_name: "app".into(),
                    key: Some("appId".into()),
                    priority: Some(30),
                    ..Default::default()
                },
                IdentifierConfig {
                    type_name: "email".into(),
                    blocked: vec!["blocked".into()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut r = Rng::new(0x9E37_79B9_7F4A_7C15);
        let (mut a, mut b) = (Settings::new(&cfg).unwrap(), Settings::new(&cfg).unwrap());
        let mut seen = std::collections::BTreeSet::new();
        let mut numeric = 0;
        for i in 0..30_000 {
            let kind = ["identify", "track", "page", "screen", "group", "alias"][i % 6];
            let text = event_text(&mut r, kind);
            let ev = ps_spec::parse_event_str(&text, &Default::default())
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            let (mut got, mut want) = (Candidates::new(), Candidates::new());
            let found = extract(&mut a, &ev, &mut got);
            let want_added = reference(&mut b, &ev, &mut want);
            assert_eq!((&got, &found.new_types), (&want, &want_added), "{text}");
            assert_eq!(
                found.traits.and_then(|t| t.to_map()).as_ref(),
                match ev.kind {
                    EventType::Identify | EventType::Group => ev.body(),
                    _ => None,
                },
                "{text}"
            );
            seen.extend(got.iter().map(|(t, _)| a.name(*t).to_owned()));
            numeric += got
                .iter()
                .filter(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit() || c == '-'))
                .count();
        }
        // The generator reaches every source, and numbers count.
        for t in [
            "email",
            "android.id",
            "android.idfa",
            "ios.idfa",
            "ios.push_token",
            "ga_client_id",
            "app",
        ] {
            assert!(seen.contains(t), "{t} never extracted: {seen:?}");
        }
        assert!(numeric > 100, "{numeric} numeric identifiers");
        assert!(
            !a.added_types().is_empty(),
            "no type added from externalIds"
        );
    }
}
