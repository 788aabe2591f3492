//! A tracking request checked, before anything is stored: write key from
//! `Authorization: Basic` (401) → body size and gzip (400, [`crate::body`])
//! → JSON (400; a batch body is split into its events' byte ranges by
//! [`ps_spec::scan`]) → write key from the body (401) → batch size (400) →
//! per event: parse, [`prepare`] (`type` from the path, the batch's
//! `context`, `context.ip`), a `messageId` when missing,
//! [`ps_spec::validate_json`] → what the inbox record holds: the events'
//! original bytes (re-serialized only when a `messageId` was assigned).
//!
//! Invalid events in a batch do not fail the batch: the valid ones are
//! stored and the answer (200) lists the refusals, so SDKs do not retry or
//! drop good events. The invalid ones are stored too, so the sync loop
//! lands them in `rejected_events` (running them through `Space::add`,
//! which refuses them again for the same reason).
//!
//! `serve`'s handler (`ps-ingest`'s `tracking`) puts back-pressure before
//! [`receive`] and the inbox after it; the fuzz target `http` runs
//! [`receive`] behind the same connection settings and body layers.

use crate::answer::{error, json_response};
use crate::auth::basic_write_key;
use crate::body;
use crate::prepare::{prepare, unique_id};
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::Response;
use ps_config::Limits;
use ps_spec::scan::{scan_batch, ScanError};
use ps_spec::time::parse_timestamp;
use ps_spec::{validate_json, Arrival, EventType, Refusal};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Which tracking endpoint a route is: one call type, or a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/track` and the like: one event, its `type` from the path.
    Single(EventType),
    /// `/v1/batch`, `/v1/import`: `{"batch": [...]}`.
    Batch,
}

impl Endpoint {
    /// The largest body of this endpoint (decoded), and what it is called
    /// in a refusal.
    pub fn limit(self, limits: &Limits) -> (usize, &'static str) {
        match self {
            Endpoint::Single(_) => (limits.max_event_bytes, "event"),
            Endpoint::Batch => (limits.max_batch_bytes, "batch"),
        }
    }
}

/// A whole request turned away: the answer, and the code it is counted
/// under.
#[derive(Debug)]
pub struct Refused {
    /// The `/metrics` label of the refusal.
    pub code: &'static str,
    /// The answer (a JSON error naming the reason).
    pub response: Response,
}

/// One event of an accepted request after edge validation.
#[derive(Debug)]
pub struct Checked {
    /// The bytes to store: as the client sent them, or re-serialized with
    /// the `messageId` the server assigned.
    pub bytes: Vec<u8>,
    /// Stored as too large (the sync loop refuses it again without parsing).
    pub too_large: bool,
    /// Its `messageId` (as sent or assigned) when that is a string: with
    /// `[log]`, the event log deduplicates by it.
    pub message_id: Option<String>,
    /// The source id it is counted under.
    pub source: String,
    /// Why it is refused, if it is.
    pub refusal: Option<Refusal>,
}

/// An accepted request: what its inbox record holds.
#[derive(Debug)]
pub struct Received {
    /// The write key it authenticated with.
    pub write_key: String,
    /// The call of a single-call endpoint: the `type` of an event without one.
    pub kind: Option<EventType>,
    /// `sentAt` of a batch body, for clock-skew correction.
    pub sent_at: Option<i64>,
    /// The batch's top-level `context` and `integrations`, merged into each
    /// event (empty when there are none).
    pub shared: Map<String, Json>,
    /// The client's address.
    pub peer_ip: Option<String>,
    /// The request's path.
    pub path: String,
    /// Its events, in order.
    pub events: Vec<Checked>,
}

/// Whether an event lacks a usable `messageId`.
fn needs_message_id(o: &Map<String, Json>) -> bool {
    match o.get("messageId") {
        None | Some(Json::Null) => true,
        Some(Json::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// What a request is checked against: write key → source id, and the size
/// limits.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Write key → source id.
    pub sources: &'a HashMap<String, String>,
    /// Size limits of tracking requests.
    pub limits: &'a Limits,
}

/// Validates one event of a request (parsed from `raw`, its bytes as sent)
/// and decides what is stored: the original bytes, unless the server had
/// to assign a `messageId`, which must then be stored with it.
#[allow(clippy::too_many_arguments)]
fn check_event(
    rules: Rules<'_>,
    item: Json,
    raw: &[u8],
    kind: Option<EventType>,
    request_source: &str,
    shared: Option<&Map<String, Json>>,
    peer_ip: Option<&str>,
    arrival: &Arrival,
) -> Checked {
    let mut item = item;
    let mut added_id = false;
    if let Json::Object(o) = &mut item {
        prepare(o, kind.map(EventType::as_str), shared, peer_ip);
        if needs_message_id(o) {
            o.insert("messageId".into(), Json::String(unique_id()));
            added_id = true;
        }
    }
    let too_large = raw.len() > rules.limits.max_event_bytes;
    let message_id = match &item {
        Json::Object(o) => o.get("messageId").and_then(Json::as_str).map(str::to_owned),
        _ => None,
    };
    let stored = |too_large, source: &str, refusal| Checked {
        bytes: raw.to_vec(),
        too_large,
        message_id: message_id.clone(),
        source: source.to_owned(),
        refusal,
    };
    let checked = match &item {
        Json::Object(o) => validate_json(o, arrival),
        _ => Err(Refusal::NotAnObject),
    };
    match checked {
        Ok(ev) => {
            // The same source rule as `Space::add`: the event's own write key
            // wins over the request's.
            let source = match ev.write_key.as_deref() {
                Some(k) => match rules.sources.get(k) {
                    Some(s) => s.clone(),
                    None => {
                        return stored(
                            false,
                            request_source,
                            Some(Refusal::UnknownWriteKey(k.to_owned())),
                        )
                    }
                },
                None => request_source.to_owned(),
            };
            if too_large {
                return stored(true, &source, Some(Refusal::TooLarge(raw.len())));
            }
            if added_id {
                let bytes = serde_json::to_vec(&item).expect("a JSON value serializes");
                Checked {
                    bytes,
                    too_large: false,
                    message_id,
                    source,
                    refusal: None,
                }
            } else {
                stored(false, &source, None)
            }
        }
        Err(refusal) => stored(too_large, request_source, Some(refusal)),
    }
}

/// Checks a tracking request on endpoint `ep` (its body decoded by
/// [`body::decoded`]) received at `received_at` (µs since the epoch).
pub async fn receive(
    req: Request,
    ep: Endpoint,
    rules: Rules<'_>,
    received_at: i64,
) -> Result<Received, Refused> {
    let refuse = |code: &'static str, status: StatusCode, msg: String| Refused {
        code,
        response: error(status, code, msg),
    };
    let path = req.uri().path().to_owned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let header_key = match basic_write_key(req.headers()) {
        Ok(k) => k,
        Err(()) => {
            return Err(refuse(
                "bad_authorization",
                StatusCode::UNAUTHORIZED,
                "Authorization must be Basic credentials with the write key as user name".into(),
            ))
        }
    };
    if let Some(k) = &header_key {
        if !rules.sources.contains_key(k) {
            return Err(refuse(
                "unknown_write_key",
                StatusCode::UNAUTHORIZED,
                format!("no source has write key {k:?}"),
            ));
        }
    }
    let (limit, what) = ep.limit(rules.limits);
    let body = body::read(req, limit, what)
        .await
        .map_err(|response| Refused {
            code: body::too_large_code(what),
            response,
        })?;
    let malformed = |e: String| {
        refuse(
            "malformed_json",
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    };
    // The events' byte ranges, and the top-level fields of the body.
    let (spans, fields): (Option<Vec<&[u8]>>, Map<String, Json>) = match ep {
        Endpoint::Single(_) => match serde_json::from_slice::<Json>(&body) {
            Ok(Json::Object(o)) => (Some(vec![body.trim_ascii()]), o),
            Ok(_) => (Some(vec![body.trim_ascii()]), Map::new()),
            Err(e) => return Err(malformed(e.to_string())),
        },
        Endpoint::Batch => match scan_batch(&body) {
            Ok(scan) => {
                let mut fields = Map::new();
                for (k, v) in scan.fields {
                    match serde_json::from_slice::<Json>(v) {
                        Ok(v) => {
                            fields.insert(String::from_utf8_lossy(k).into_owned(), v);
                        }
                        Err(e) => return Err(malformed(e.to_string())),
                    }
                }
                (scan.items, fields)
            }
            Err(ScanError::NotAnObject) => (None, Map::new()),
            Err(ScanError::Malformed) => {
                let e = serde_json::from_slice::<Json>(&body)
                    .err()
                    .map_or_else(|| "bad structure".into(), |e| e.to_string());
                return Err(malformed(e));
            }
        },
    };
    let body_key = fields
        .get("writeKey")
        .and_then(Json::as_str)
        .map(str::to_owned);
    let key = match (header_key, body_key) {
        (Some(k), _) => k,
        (None, Some(k)) if rules.sources.contains_key(&k) => k,
        (None, Some(k)) => {
            return Err(refuse("unknown_write_key", StatusCode::UNAUTHORIZED, format!("no source has write key {k:?}")))
        }
        (None, None) => {
            return Err(refuse(
                "missing_write_key",
                StatusCode::UNAUTHORIZED,
                "no write key: send it as the Basic auth user name (`writeKey:`) or as `writeKey` in the body".into(),
            ))
        }
    };
    let Some(spans) = spans else {
        return Err(refuse(
            "invalid_batch",
            StatusCode::BAD_REQUEST,
            "the body must be an object with a `batch` array".into(),
        ));
    };
    let (kind, sent_at, shared) = match ep {
        Endpoint::Single(k) => (Some(k), None, Map::new()),
        Endpoint::Batch => {
            if spans.len() > rules.limits.max_batch_events {
                return Err(refuse(
                    "batch_too_many_events",
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the batch has {} events; at most {} are allowed (server.max_batch_events)",
                        spans.len(),
                        rules.limits.max_batch_events
                    ),
                ));
            }
            let sent_at = fields
                .get("sentAt")
                .and_then(Json::as_str)
                .and_then(parse_timestamp);
            let shared = ps_spec::batch::shared_fields(|k| fields.get(k).cloned());
            (None, sent_at, shared)
        }
    };
    let shared_ref = (!shared.is_empty()).then_some(&shared);
    let peer_ip = peer.map(|p| p.ip().to_string());
    let request_source = rules.sources.get(&key).cloned().unwrap_or_default();
    let arrival = Arrival {
        received_at: Some(received_at),
        batch_sent_at: sent_at,
        load_time: received_at,
    };
    let mut events = Vec::with_capacity(spans.len());
    for (i, raw) in spans.into_iter().enumerate() {
        let item: Json = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => return Err(malformed(format!("event {i}: {e}"))),
        };
        events.push(check_event(
            rules,
            item,
            raw,
            kind,
            &request_source,
            shared_ref,
            peer_ip.as_deref(),
            &arrival,
        ));
    }
    Ok(Received {
        write_key: key,
        kind,
        sent_at,
        shared,
        peer_ip,
        path,
        events,
    })
}

impl Received {
    /// The answer once the events are stored: for a single event, 200 or
    /// its refusal (400); for a batch, 200 with the refused events listed.
    pub fn answer(&self, ep: Endpoint) -> Response {
        let mut errors = self.events.iter().enumerate().filter_map(|(i, c)| {
            c.refusal
                .as_ref()
                .map(|r| json!({ "index": i, "code": r.code(), "message": r.to_string() }))
        });
        match ep {
            Endpoint::Single(_) => match errors.next_back() {
                None => json_response(StatusCode::OK, &json!({ "success": true })),
                Some(e) => json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({ "code": e["code"], "message": e["message"] }),
                ),
            },
            Endpoint::Batch => {
                let errors: Vec<Json> = errors.collect();
                let n_events = self.events.len();
                json_response(
                    StatusCode::OK,
                    &json!({
                        "success": true,
                        "accepted": n_events - errors.len(),
                        "rejected": errors.len(),
                        "errors": errors,
                    }),
                )
            }
        }
    }
}
