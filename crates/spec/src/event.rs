//! The Segment event model: validation and normalization of one payload.
//!
//! A payload is checked against the Segment spec (SPEC §2) and turned into an
//! [`Event`] whose timestamps are corrected for client clock skew. Anything that
//! fails is a [`Refusal`] with a stable machine code and a human message; the
//! caller reports it with its file and line (or in the HTTP response) and goes on
//! with the next event, so one bad payload never costs its neighbours.

use crate::tape::{Doc, JsonRef, Kind};
use crate::time::{parse_timestamp, Micros};
use serde_json::{Map, Value as Json};
use sha1::{Digest, Sha1};
use std::cell::OnceCell;
use std::fmt;

/// Longest `messageId` accepted, as Segment's API enforces.
pub const MAX_MESSAGE_ID_LEN: usize = 100;

/// The six Segment calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `identify`: who the user is, with traits.
    Identify,
    /// `track`: something the user did, named by `event`.
    Track,
    /// `page`: a web page view.
    Page,
    /// `screen`: a mobile app screen view.
    Screen,
    /// `group`: the user belongs to an account (`groupId`), with its traits.
    Group,
    /// `alias`: `previousId` is another name for the user.
    Alias,
}

impl EventType {
    /// Every call, in declaration order.
    pub const ALL: [EventType; 6] = [
        EventType::Identify,
        EventType::Track,
        EventType::Page,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
    ];

    /// The call named by a payload's `type` (`"identify"`, ...), if it is one.
    pub fn parse(s: &str) -> Option<EventType> {
        Some(match s {
            "identify" => EventType::Identify,
            "track" => EventType::Track,
            "page" => EventType::Page,
            "screen" => EventType::Screen,
            "group" => EventType::Group,
            "alias" => EventType::Alias,
            _ => return None,
        })
    }

    /// The name used in `triggering_event_type` and the `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    /// The event table this call lands in.
    pub fn table(self) -> &'static str {
        match self {
            EventType::Identify => "identifies",
            EventType::Track => "tracks",
            EventType::Page => "pages",
            EventType::Screen => "screens",
            EventType::Group => "groups",
            EventType::Alias => "aliases",
        }
    }

    /// Whether the call's payload object is `traits` (identify, group) rather
    /// than `properties`.
    pub fn payload_key(self) -> Option<&'static str> {
        match self {
            EventType::Identify | EventType::Group => Some("traits"),
            EventType::Track | EventType::Page | EventType::Screen => Some("properties"),
            EventType::Alias => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event was refused. [`Refusal::code`] is stable and is what summaries
/// group by; [`Display`](fmt::Display) is the message for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The text is not JSON; the parser's message.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The JSON is not an object.
    #[error("an event must be a JSON object")]
    NotAnObject,
    /// No `type` key.
    #[error("missing `type`")]
    MissingType,
    /// A `type` that is not one of the six calls.
    #[error("unknown event type {0:?} (expected identify, track, page, screen, group or alias)")]
    UnknownType(String),
    /// Neither `userId` nor `anonymousId` is a non-empty string or number.
    #[error("neither `userId` nor `anonymousId` is present and non-empty")]
    MissingIdentity,
    /// A track call without a non-empty `event`.
    #[error("track call without a non-empty `event`")]
    MissingEvent,
    /// A group call without a non-empty `groupId`.
    #[error("group call without a non-empty `groupId`")]
    MissingGroupId,
    /// A `messageId` longer than [`MAX_MESSAGE_ID_LEN`] characters (its length).
    #[error("`messageId` is {0} characters long; at most 100 are allowed")]
    MessageIdTooLong(usize),
    /// A field of the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    BadField {
        /// The payload key.
        field: &'static str,
        /// What it must be, for the message (`"a string"`, ...).
        expected: &'static str,
    },
    /// A timestamp field that is not ISO-8601.
    #[error("`{field}` is not an ISO-8601 timestamp: {value:?}")]
    BadTimestamp {
        /// The payload key.
        field: &'static str,
        /// The value as sent.
        value: String,
    },
    /// No configured source has the event's write key.
    #[error("no source has write key {0:?}")]
    UnknownWriteKey(String),
    /// Neither the event nor the caller names a source.
    #[error("no write key on the event and no --source given")]
    NoSource,
    /// The payload is over the size limit (its size in bytes).
    #[error("the event is {0} bytes; at most 32768 are allowed")]
    TooLarge(usize),
    /// An identifier of the event is on the suppression list (which one).
    #[error("an identifier of the event is suppressed ({0})")]
    Suppressed(String),
}

impl Refusal {
    /// A stable code for grouping and for HTTP error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::MalformedJson(_) => "malformed_json",
            Refusal::NotAnObject => "not_an_object",
            Refusal::MissingType => "missing_type",
            Refusal::UnknownType(_) => "unknown_type",
            Refusal::MissingIdentity => "missing_identity",
            Refusal::MissingEvent => "missing_event",
            Refusal::MissingGroupId => "missing_group_id",
            Refusal::MessageIdTooLong(_) => "message_id_too_long",
            Refusal::BadField { .. } => "bad_field",
            Refusal::BadTimestamp { .. } => "bad_timestamp",
            Refusal::UnknownWriteKey(_) => "unknown_write_key",
            Refusal::NoSource => "no_source",
            Refusal::TooLarge(_) => "event_too_large",
            Refusal::Suppressed(_) => "suppressed",
        }
    }
}

/// What the caller knows about an event beyond its payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arrival {
    /// When the server received it; `None` for file events, which then use the
    /// payload's own `receivedAt` if it has one.
    pub received_at: Option<Micros>,
    /// The `sentAt` of the enclosing batch, which applies to every event in it.
    pub batch_sent_at: Option<Micros>,
    /// When this load started: `received_at` of file events without one.
    pub load_time: Micros,
}

/// A valid, normalized event, with its payload.
#[derive(Debug, Clone)]
pub struct Event {
    /// The Segment call.
    pub kind: EventType,
    /// `messageId`, the deduplication key; derived from the payload when
    /// absent.
    pub message_id: String,
    /// `anonymousId`, when a non-empty string or number.
    pub anonymous_id: Option<String>,
    /// `userId`, when a non-empty string or number.
    pub user_id: Option<String>,
    /// Corrected timestamp (SPEC §2); never missing.
    pub timestamp: Micros,
    /// The device's own clock reading (`originalTimestamp`, or the caller's
    /// `timestamp`).
    pub original_timestamp: Option<Micros>,
    /// The payload's `sentAt`, else its batch's.
    pub sent_at: Option<Micros>,
    /// When the event was received: the server's time, else the payload's
    /// `receivedAt`, else the load's start.
    pub received_at: Micros,
    /// Track event name.
    pub event: Option<String>,
    /// Page or screen name.
    pub name: Option<String>,
    /// Page or screen category.
    pub category: Option<String>,
    /// `groupId` of a group call.
    pub group_id: Option<String>,
    /// `previousId` of an alias call.
    pub previous_id: Option<String>,
    /// `writeKey` carried by the payload, if any.
    pub write_key: Option<String>,
    /// The payload as parsed: later stages read `context`, `traits` and
    /// `properties` from it without copying them.
    doc: Doc,
    /// Nodes of `doc`: the payload's `context` and its call's `traits` or
    /// `properties`, when they are objects.
    context_at: Option<u32>,
    body_at: Option<u32>,
    /// Where else than `userId`/`anonymousId` the payload could carry
    /// identifiers: the nodes of [`IdentityRefs`], noted while parsing (the
    /// payload is not changed after).
    sources_at: SourceNodes,
    /// `serde_json` maps of the payload's parts, built the first time a
    /// caller asks ([`Event::context`], [`Event::body`], [`Event::payload`]);
    /// the pipeline and the identity engine read the tape and never do.
    payload_map: OnceCell<Map<String, Json>>,
    context_map: OnceCell<Option<Map<String, Json>>>,
    body_map: OnceCell<Option<Map<String, Json>>>,
}

/// Which of the places identity resolution reads identifiers from, beyond
/// `userId` and `anonymousId`, an event has (SPEC §3.1; `ps_identity::extract`
/// reads them). A flag means the key is present, whatever its value.
///
/// Most events have none of them, and then the identity engine reads nothing
/// else of the payload: looking these keys up in `serde_json`'s B-tree maps
/// for every event was most of the engine's time. The call's own `traits` or
/// `properties` are not noted: the engine knows from the call type whether
/// it needs them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentitySources {
    /// Top-level `integrations` (`Google Analytics.clientId`).
    pub integrations: bool,
    /// `context.traits`.
    pub context_traits: bool,
    /// `context.device`.
    pub context_device: bool,
    /// `context.integrations`.
    pub context_integrations: bool,
    /// `context.externalIds`.
    pub context_external_ids: bool,
}

/// The values of an event's identity sources, as [`Event::identity_refs`]
/// gives them: for a repeated key its last value (the one a `serde_json`
/// map keeps), of any kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityRefs<'a> {
    /// Top-level `integrations`.
    pub integrations: Option<JsonRef<'a>>,
    /// `context.traits` (this and the next three: when `context` is an
    /// object).
    pub context_traits: Option<JsonRef<'a>>,
    /// `context.device`.
    pub context_device: Option<JsonRef<'a>>,
    /// `context.integrations`.
    pub context_integrations: Option<JsonRef<'a>>,
    /// `context.externalIds`.
    pub context_external_ids: Option<JsonRef<'a>>,
}

/// [`IdentityRefs`] as node numbers, kept in the event.
#[derive(Debug, Clone, Copy, Default)]
struct SourceNodes {
    integrations: Option<u32>,
    context_traits: Option<u32>,
    context_device: Option<u32>,
    context_integrations: Option<u32>,
    context_external_ids: Option<u32>,
}

impl SourceNodes {
    /// The sources' nodes, from one pass over `context`'s members.
    fn of(integrations: Option<JsonRef<'_>>, context: Option<JsonRef<'_>>) -> SourceNodes {
        let mut at = SourceNodes {
            integrations: integrations.map(|v| v.index()),
            ..SourceNodes::default()
        };
        for (k, v) in context.iter().flat_map(JsonRef::members) {
            let node = match k {
                "traits" => &mut at.context_traits,
                "device" => &mut at.context_device,
                "integrations" => &mut at.context_integrations,
                "externalIds" => &mut at.context_external_ids,
                _ => continue,
            };
            *node = Some(v.index());
        }
        at
    }
}

impl Event {
    /// The payload's `context`, if it is an object.
    #[inline]
    pub fn context_ref(&self) -> Option<JsonRef<'_>> {
        self.context_at.map(|i| self.doc.at(i))
    }

    /// `traits` for identify/group, `properties` for track/page/screen, if
    /// it is an object.
    #[inline]
    pub fn body_ref(&self) -> Option<JsonRef<'_>> {
        self.body_at.map(|i| self.doc.at(i))
    }

    /// Which identity sources the payload has ([`Event::identity_refs`]
    /// without their values).
    #[inline]
    pub fn identity_sources(&self) -> IdentitySources {
        let n = self.sources_at;
        IdentitySources {
            integrations: n.integrations.is_some(),
            context_traits: n.context_traits.is_some(),
            context_device: n.context_device.is_some(),
            context_integrations: n.context_integrations.is_some(),
            context_external_ids: n.context_external_ids.is_some(),
        }
    }

    /// Where the payload carries identifier sources beyond `userId` and
    /// `anonymousId` (noted while parsing; see [`IdentitySources`]).
    #[inline]
    pub fn identity_refs(&self) -> IdentityRefs<'_> {
        let at = |i: Option<u32>| i.map(|i| self.doc.at(i));
        let n = self.sources_at;
        IdentityRefs {
            integrations: at(n.integrations),
            context_traits: at(n.context_traits),
            context_device: at(n.context_device),
            context_integrations: at(n.context_integrations),
            context_external_ids: at(n.context_external_ids),
        }
    }

    /// `context.device` ([`IdentityRefs::context_device`]) alone: the
    /// identity engine's shortcut reads only it, and building all of
    /// [`Event::identity_refs`] for it showed in that hot path's profile.
    #[inline]
    pub fn context_device_ref(&self) -> Option<JsonRef<'_>> {
        self.sources_at.context_device.map(|i| self.doc.at(i))
    }

    /// The whole payload on the tape (what [`Event::payload`] reads,
    /// without building a map).
    #[inline]
    pub fn root_ref(&self) -> JsonRef<'_> {
        self.doc.root()
    }

    /// [`Event::context_ref`] as a `serde_json` map.
    pub fn context(&self) -> Option<&Map<String, Json>> {
        self.context_map
            .get_or_init(|| self.context_ref().and_then(|c| c.to_map()))
            .as_ref()
    }

    /// [`Event::body_ref`] as a `serde_json` map.
    pub fn body(&self) -> Option<&Map<String, Json>> {
        self.body_map
            .get_or_init(|| self.body_ref().and_then(|c| c.to_map()))
            .as_ref()
    }

    /// The whole payload as a `serde_json` map.
    pub fn payload(&self) -> &Map<String, Json> {
        self.payload_map
            .get_or_init(|| self.doc.root().to_map().unwrap_or_default())
    }

    /// The parsed payload, given back.
    pub fn into_doc(self) -> Doc {
        self.doc
    }

    /// The name that goes into `triggering_event_name`.
    pub fn display_name(&self) -> Option<&str> {
        match self.kind {
            EventType::Track => self.event.as_deref(),
            EventType::Page | EventType::Screen => self.name.as_deref(),
            _ => None,
        }
    }
}

/// Parses one JSON text into an event.
pub fn parse_event_str(text: &str, arrival: &Arrival) -> Result<Event, Refusal> {
    let doc =
        Doc::parse(text.to_owned()).map_err(|(e, _)| Refusal::MalformedJson(e.into_message()))?;
    parse_doc(doc, arrival, Some(text.as_bytes())).map_err(|(r, _)| r)
}

/// Validates and normalizes one payload. `raw` is the payload's original bytes,
/// used to derive a stable `messageId` when it has none, so that replaying the
/// same file twice still deduplicates.
pub fn parse_event(json: Json, arrival: &Arrival, raw: Option<&[u8]>) -> Result<Event, Refusal> {
    parse_event_or_return(json, arrival, raw).map_err(|(r, _)| r)
}

/// [`parse_event`] that hands the payload back with the refusal, so the
/// caller can keep the refused payload (`rejected_events`) without copying
/// every accepted one.
pub fn parse_event_or_return(
    json: Json,
    arrival: &Arrival,
    raw: Option<&[u8]>,
) -> Result<Event, (Refusal, Json)> {
    if !json.is_object() {
        return Err((Refusal::NotAnObject, json));
    }
    let doc = Doc::parse(json.to_string()).expect("serde_json writes JSON");
    parse_doc(doc, arrival, raw).map_err(|(r, _)| (r, json))
}

/// Validates and normalizes a parsed payload; a refusal hands the document
/// back.
pub fn parse_doc(doc: Doc, arrival: &Arrival, raw: Option<&[u8]>) -> Result<Event, (Refusal, Doc)> {
    if !doc.root().is_object() {
        return Err((Refusal::NotAnObject, doc));
    }
    let top = Top::of(doc.root());
    let checked = validate(&top, arrival, || derived_message_id(&doc, raw)).map(|ev| {
        let context = top.context.filter(JsonRef::is_object);
        let body = match ev.kind {
            EventType::Identify | EventType::Group => top.traits,
            EventType::Track | EventType::Page | EventType::Screen => top.properties,
            EventType::Alias => None,
        }
        .filter(JsonRef::is_object);
        Event {
            sources_at: SourceNodes::of(top.integrations_at, context),
            context_at: context.map(|c| c.index()),
            body_at: body.map(|b| b.index()),
            ..ev
        }
    });
    match checked {
        Ok(ev) => Ok(Event { doc, ..ev }),
        Err(r) => Err((r, doc)),
    }
}

/// The top-level fields validation reads, found in one pass over the
/// payload's members (a repeated key keeps its last value, as in
/// `serde_json`).
#[derive(Default)]
struct Top<'a> {
    ty: Option<Field<'a>>,
    user_id: Option<Field<'a>>,
    anonymous_id: Option<Field<'a>>,
    event: Option<Field<'a>>,
    group_id: Option<Field<'a>>,
    message_id: Option<Field<'a>>,
    timestamp: Option<Field<'a>>,
    original_timestamp: Option<Field<'a>>,
    sent_at: Option<Field<'a>>,
    received_at: Option<Field<'a>>,
    name: Option<Field<'a>>,
    category: Option<Field<'a>>,
    previous_id: Option<Field<'a>>,
    write_key: Option<Field<'a>>,
    context: Option<JsonRef<'a>>,
    traits: Option<JsonRef<'a>>,
    properties: Option<JsonRef<'a>>,
    /// The value of `integrations` (of a parsed payload only).
    integrations_at: Option<JsonRef<'a>>,
}

/// A top-level scalar as validation sees it, from the tape or from a
/// `serde_json` value.
#[derive(Debug, Clone)]
enum Field<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    /// Any other number, as `serde_json` reads it.
    Num(serde_json::Number),
    /// An array or an object.
    Other,
}

impl<'a> Field<'a> {
    fn of_ref(v: JsonRef<'a>) -> Field<'a> {
        match v.kind() {
            Kind::Null => Field::Null,
            Kind::Str(s) => Field::Str(s),
            Kind::Int(i) => Field::Int(i),
            Kind::Number => v.number().map_or(Field::Other, Field::Num),
            Kind::Bool(_) | Kind::Object | Kind::Array => Field::Other,
        }
    }

    fn of_json(v: &'a Json) -> Field<'a> {
        match v {
            Json::Null => Field::Null,
            Json::String(s) => Field::Str(s),
            Json::Number(n) => n.as_i64().map_or_else(|| Field::Num(n.clone()), Field::Int),
            _ => Field::Other,
        }
    }
}

impl<'a> Top<'a> {
    /// The fields of a `serde_json` payload (`context` and the body are not
    /// read: [`validate_json`] checks a payload, it builds no event).
    fn of_map(p: &'a Map<String, Json>) -> Top<'a> {
        let f = |k: &str| p.get(k).map(Field::of_json);
        Top {
            ty: f("type"),
            user_id: f("userId"),
            anonymous_id: f("anonymousId"),
            event: f("event"),
            group_id: f("groupId"),
            message_id: f("messageId"),
            timestamp: f("timestamp"),
            original_timestamp: f("originalTimestamp"),
            sent_at: f("sentAt"),
            received_at: f("receivedAt"),
            name: f("name"),
            category: f("category"),
            previous_id: f("previousId"),
            write_key: f("writeKey"),
            context: None,
            traits: None,
            properties: None,
            integrations_at: None,
        }
    }

    fn of(root: JsonRef<'a>) -> Top<'a> {
        let mut t = Top::default();
        for (k, v) in root.members() {
            let slot = match k {
                "type" => &mut t.ty,
                "userId" => &mut t.user_id,
                "anonymousId" => &mut t.anonymous_id,
                "event" => &mut t.event,
                "groupId" => &mut t.group_id,
                "messageId" => &mut t.message_id,
                "timestamp" => &mut t.timestamp,
                "originalTimestamp" => &mut t.original_timestamp,
                "sentAt" => &mut t.sent_at,
                "receivedAt" => &mut t.received_at,
                "name" => &mut t.name,
                "category" => &mut t.category,
                "previousId" => &mut t.previous_id,
                "writeKey" => &mut t.write_key,
                "context" => {
                    t.context = Some(v);
                    continue;
                }
                "traits" => {
                    t.traits = Some(v);
                    continue;
                }
                "properties" => {
                    t.properties = Some(v);
                    continue;
                }
                "integrations" => {
                    t.integrations_at = Some(v);
                    continue;
                }
                _ => continue,
            };
            *slot = Some(Field::of_ref(v));
        }
        t
    }
}

/// What [`validate_json`] found valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The Segment call.
    pub kind: EventType,
    /// `messageId`, as [`Event::message_id`] would hold it.
    pub message_id: String,
    /// `writeKey` carried by the payload, if any.
    pub write_key: Option<String>,
}

/// The checks of [`parse_event`] on a `serde_json` payload that is not
/// turned into an event: the HTTP server answers each event of a request
/// with them and stores the request's bytes, so it needs no event model.
pub fn validate_json(payload: &Map<String, Json>, arrival: &Arrival) -> Result<Validated, Refusal> {
    let ev = validate(&Top::of_map(payload), arrival, || {
        derive_id(Json::Object(payload.clone()).to_string().as_bytes())
    })?;
    Ok(Validated {
        kind: ev.kind,
        message_id: ev.message_id,
        write_key: ev.write_key,
    })
}

fn validate(
    top: &Top<'_>,
    arrival: &Arrival,
    derived_id: impl FnOnce() -> String,
) -> Result<Event, Refusal> {
    let kind = match &top.ty {
        None | Some(Field::Null) => return Err(Refusal::MissingType),
        Some(Field::Str(s)) => {
            EventType::parse(s).ok_or_else(|| Refusal::UnknownType((*s).to_owned()))?
        }
        Some(_) => {
            return Err(Refusal::BadField {
                field: "type",
                expected: "a string",
            })
        }
    };
    let user_id = id_field(top.user_id.clone(), "userId")?;
    let anonymous_id = id_field(top.anonymous_id.clone(), "anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(Refusal::MissingIdentity);
    }
    let event = string_field(top.event.clone(), "event")?;
    if kind == EventType::Track && event.as_deref().is_none_or(str::is_empty) {
        return Err(Refusal::MissingEvent);
    }
    let group_id = id_field(top.group_id.clone(), "groupId")?;
    if kind == EventType::Group && group_id.is_none() {
        return Err(Refusal::MissingGroupId);
    }
    let message_id = match id_field(top.message_id.clone(), "messageId")? {
        Some(m) if m.chars().count() > MAX_MESSAGE_ID_LEN => {
            return Err(Refusal::MessageIdTooLong(m.chars().count()))
        }
        Some(m) => m,
        None => derived_id(),
    };
    let timestamp = ts_field(top.timestamp.clone(), "timestamp")?;
    let original = ts_field(top.original_timestamp.clone(), "originalTimestamp")?;
    let sent_at = ts_field(top.sent_at.clone(), "sentAt")?.or(arrival.batch_sent_at);
    let received_at = arrival
        .received_at
        .or(ts_field(top.received_at.clone(), "receivedAt")?);
    let device_time = original.or(timestamp);
    let corrected = match (received_at, sent_at, device_time) {
        (Some(recv), Some(sent), Some(dev)) => recv - (sent - dev),
        _ => timestamp
            .or(original)
            .or(received_at)
            .unwrap_or(arrival.load_time),
    };
    Ok(Event {
        kind,
        message_id,
        anonymous_id,
        user_id,
        timestamp: corrected,
        original_timestamp: device_time,
        sent_at,
        received_at: received_at.unwrap_or(arrival.load_time),
        event,
        name: string_field(top.name.clone(), "name")?,
        category: string_field(top.category.clone(), "category")?,
        group_id,
        previous_id: id_field(top.previous_id.clone(), "previousId")?,
        write_key: string_field(top.write_key.clone(), "writeKey")?,
        doc: Doc::default(),
        context_at: None,
        body_at: None,
        sources_at: SourceNodes::default(),
        payload_map: OnceCell::new(),
        context_map: OnceCell::new(),
        body_map: OnceCell::new(),
    })
}

/// An id-like field: strings are taken as they are, numbers as their decimal
/// text (SDKs do send numeric user ids); empty means absent.
fn id_field(v: Option<Field<'_>>, field: &'static str) -> Result<Option<String>, Refusal> {
    match v {
        Some(Field::Str("")) => Ok(None),
        v => string_field(v, field),
    }
}

fn string_field(v: Option<Field<'_>>, field: &'static str) -> Result<Option<String>, Refusal> {
    match v {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Str(s)) => Ok(Some(s.to_owned())),
        Some(Field::Int(i)) => Ok(Some(i.to_string())),
        Some(Field::Num(n)) => Ok(Some(n.to_string())),
        Some(Field::Other) => Err(Refusal::BadField {
            field,
            expected: "a string",
        }),
    }
}

fn ts_field(v: Option<Field<'_>>, field: &'static str) -> Result<Option<Micros>, Refusal> {
    match v {
        None | Some(Field::Null) | Some(Field::Str("")) => Ok(None),
        Some(Field::Str(s)) => parse_timestamp(s)
            .map(Some)
            .ok_or_else(|| Refusal::BadTimestamp {
                field,
                value: s.to_owned(),
            }),
        Some(_) => Err(Refusal::BadField {
            field,
            expected: "an ISO-8601 string",
        }),
    }
}

/// `messageId` for events that came without one: a hash of the payload, so the
/// same line replayed gives the same id and is deduplicated.
fn derived_message_id(doc: &Doc, raw: Option<&[u8]>) -> String {
    match raw {
        Some(bytes) => derive_id(bytes),
        // The payload as `serde_json` writes it (keys sorted, no spaces),
        // as ids were always derived: a replay must find the same ids.
        None => derive_id(doc.root().to_json().to_string().as_bytes()),
    }
}

fn derive_id(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(bytes);
    format!("ps-{}", hex::encode(&h.finalize()[..16]))
}

#[cfg(test)]
mod tests;
