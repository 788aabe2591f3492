//! Promoting identifiers from an event (SPEC §3.1).
//!
//! Which fields count as identifiers is a product decision with consequences:
//! properties are *not* a source of `email` (the case study's page call carries
//! an email and still starts a new profile), advertising ids only count when ad
//! tracking is on, and `groupId` identifies an account, never a person.
//!
//! ## Speed
//! This runs for every event, and `serde_json`'s maps are B-trees of heap
//! strings: a `get` compares the wanted key with several stored keys, each a
//! `memcmp` behind a pointer. Parsing notes which sources an event has
//! ([`ps_spec::IdentitySources`]), so the usual event (no `context.traits`,
//! device, integrations or external ids) is not looked into at all; when
//! `context` is needed it is walked once, every key dispatched by a `match`
//! (lengths first), rather than looked up once per field. Either way the
//! result is what looking each field up gives (`reference` in the tests).

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

/// The parts of an event identifiers are read from.
#[derive(Default)]
struct Sources<'e> {
    /// `traits` of identify/group calls (a source of `email` and custom keys).
    traits: Option<&'e Map<String, Json>>,
    /// Top-level `integrations`.
    integrations: Option<&'e Json>,
    context_traits: Option<&'e Map<String, Json>>,
    device: Option<&'e Map<String, Json>>,
    context_integrations: Option<&'e Json>,
    external_ids: Option<&'e Vec<Json>>,
}

impl<'e> Sources<'e> {
    fn of(ev: &'e Event) -> Sources<'e> {
        let has = ev.identity_sources;
        let mut s = Sources {
            traits: match ev.kind {
                EventType::Identify | EventType::Group => ev.body(),
                _ => None,
            },
            integrations: has
                .integrations
                .then(|| ev.payload().get("integrations"))
                .flatten(),
            ..Sources::default()
        };
        if let Some(c) = has.in_context().then(|| ev.context()).flatten() {
            for (k, v) in c {
                match k.as_str() {
                    "traits" => s.context_traits = v.as_object(),
                    "device" => s.device = v.as_object(),
                    "integrations" => s.context_integrations = Some(v),
                    "externalIds" => s.external_ids = v.as_array(),
                    _ => {}
                }
            }
        }
        s
    }
}

/// What [`extract`] found besides the candidates.
#[derive(Debug, Default)]
pub struct Extracted<'e> {
    /// Names of identifier types first seen here (from `context.externalIds`).
    pub new_types: Vec<String>,
    /// The `traits` object of an identify or group call.
    pub traits: Option<&'e Map<String, Json>>,
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
    if let Some(device) = src.device {
        let (mut kind, mut id, mut ad_id, mut ad_tracking, mut token) =
            ("", None, None, false, None);
        for (k, v) in device {
            match k.as_str() {
                "type" => kind = v.as_str().unwrap_or_default(),
                "id" => id = Some(v),
                "advertisingId" => ad_id = Some(v),
                "adTrackingEnabled" => ad_tracking = v.as_bool() == Some(true),
                "token" => token = Some(v),
                _ => {}
            }
        }
        let ids = if kind.eq_ignore_ascii_case("android") {
            Some(b.android)
        } else if kind.eq_ignore_ascii_case("ios") {
            Some(b.ios)
        } else {
            None
        };
        if let Some([id_t, idfa_t, token_t]) = ids {
            if let Some(id) = id.and_then(scalar) {
                push(settings, id_t, id, out);
            }
            if ad_tracking {
                if let Some(id) = ad_id.and_then(scalar) {
                    push(settings, idfa_t, id, out);
                }
            }
            if let Some(tok) = token.and_then(scalar) {
                push(settings, token_t, tok, out);
            }
        }
    }
    let ga = |i: Option<&'e Json>| {
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
        let body = ev.body();
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
        for e in ext {
            let Some(e) = e.as_object() else { continue };
            let (mut id, mut ty, mut collection) = (None, None, "users");
            for (k, v) in e {
                match k.as_str() {
                    "id" => id = scalar(v),
                    "type" => ty = v.as_str(),
                    "collection" => collection = v.as_str().unwrap_or("users"),
                    _ => {}
                }
            }
            let (Some(id), Some(ty)) = (id, ty) else {
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

/// Adds a candidate unless it is empty, blocked or already there.
#[inline]
fn push<'e>(settings: &Settings, t: TypeId, v: Cow<'e, str>, out: &mut Candidates<'e>) {
    if v.is_empty() || settings.is_blocked(t, &v) || out.iter().any(|(ot, ov)| *ot == t && *ov == v)
    {
        return;
    }
    out.push((t, v));
}

/// Identifier values are strings; numbers are accepted as their decimal text.
fn scalar(v: &Json) -> Option<Cow<'_, str>> {
    match v {
        Json::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{IdentifierConfig, IdentityConfig};
    use serde_json::json;

    /// The straightforward version, one `get` per field: the single-pass
    /// [`extract`] must give exactly what it gives.
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
        if let Some(cid) = ga(Some(ev.payload())).or_else(|| ga(context)) {
            push(settings, b.ga_client_id, cid, out);
        }
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

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len() as u64) as usize]
        }
    }

    const KEYS: [&str; 22] = [
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
    ];
    const STRINGS: [&str; 13] = [
        "Android", "", "x", "y", "android", "iOS", "ios", "users", "accounts", "CRM", "crm",
        "null", "blocked",
    ];

    /// A random JSON value over the keys and strings extraction cares about.
    fn value(r: &mut Rng, depth: u32) -> Json {
        match r.below(if depth == 0 { 5 } else { 8 }) {
            0 => Json::Null,
            1 => json!(r.below(2) == 0),
            2 => json!(r.below(3) as i64 - 1),
            3 | 4 => json!(r.pick(&STRINGS)),
            5 => Json::Array((0..r.below(3)).map(|_| value(r, depth - 1)).collect()),
            _ => Json::Object(object(r, depth - 1)),
        }
    }

    fn object(r: &mut Rng, depth: u32) -> Map<String, Json> {
        (0..r.below(6))
            .map(|_| (r.pick(&KEYS).to_owned(), value(r, depth)))
            .collect()
    }

    #[test]
    fn single_pass_equals_field_lookups() {
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
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut a, mut b) = (Settings::new(&cfg).unwrap(), Settings::new(&cfg).unwrap());
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..20_000 {
            let mut p = object(&mut r, 4);
            // The parts extraction reads, more often than chance would give them.
            for key in ["context", "traits", "properties", "integrations"] {
                if r.below(3) > 0 {
                    p.insert(key.into(), Json::Object(object(&mut r, 3)));
                }
            }
            let ga = |r: &mut Rng| json!({"Google Analytics": {"clientId": value(r, 0)}});
            if r.below(3) == 0 {
                p.insert("integrations".into(), ga(&mut r));
            }
            if let Some(Json::Object(c)) = p.get_mut("context") {
                if r.below(3) == 0 {
                    c.insert("integrations".into(), ga(&mut r));
                }
                for key in ["traits", "device", "integrations", "externalIds"] {
                    if r.below(2) > 0 {
                        let v = if key == "externalIds" {
                            Json::Array((0..3).map(|_| Json::Object(object(&mut r, 1))).collect())
                        } else {
                            let mut m = object(&mut r, 2);
                            if key == "device" {
                                for k in ["type", "adTrackingEnabled", "advertisingId"] {
                                    if r.below(2) > 0 {
                                        m.insert(k.into(), value(&mut r, 0));
                                    }
                                }
                            }
                            Json::Object(m)
                        };
                        c.insert(key.into(), v);
                    }
                }
            }
            let kind = ["identify", "track", "page", "screen", "group", "alias"][i % 6];
            p.insert("type".into(), json!(kind));
            p.insert("userId".into(), json!(r.pick(&STRINGS)));
            p.insert("anonymousId".into(), json!("anon"));
            p.insert("event".into(), json!("E"));
            p.insert("groupId".into(), json!("g"));
            let ev = ps_spec::parse_event(Json::Object(p), &Default::default(), None).unwrap();
            let (mut got, mut want) = (Candidates::new(), Candidates::new());
            let got_added = extract(&mut a, &ev, &mut got).new_types;
            let want_added = reference(&mut b, &ev, &mut want);
            assert_eq!(
                (&got, &got_added),
                (&want, &want_added),
                "{:?}",
                ev.payload()
            );
            seen.extend(got.iter().map(|(t, _)| a.name(*t).to_owned()));
        }
        // The generator reaches every source.
        for t in [
            "email",
            "android.id",
            "ios.idfa",
            "ios.push_token",
            "ga_client_id",
            "app",
        ] {
            assert!(seen.contains(t), "{t} never extracted: {seen:?}");
        }
        assert!(
            !a.added_types().is_empty(),
            "no type added from externalIds"
        );
    }
}
