//! Segment's Tracking API: [`track`] answers `POST /v1/track`, `/v1/batch`
//! and the other tracking paths ([`crate::routes`] says which is which).
//!
//! A tracking request is handled in this order, cheapest refusal first:
//! back-pressure (429) → write key from `Authorization: Basic` (401) → body
//! size and gzip (400, [`crate::body`]) → JSON (400; a batch body is split
//! into its events' byte ranges by [`ps_spec::scan`]) → write key from the
//! body (401) → batch size (400) → per event: parse, [`prepare`] (`type`
//! from the path, the batch's `context`, `context.ip`), a `messageId` when
//! missing, [`ps_spec::validate_json`] validation → one inbox record holding
//! the events' original bytes (re-serialized only when a `messageId` was
//! assigned) and what [`prepare`] needs → wait for the group commit →
//! answer. With `[log]` the record's events are published to the event log
//! instead ([`crate::publish`]) and the answer waits for its
//! acknowledgements (503 with `Retry-After` when they do not come). The answer is sent only after the record is synced to disk: a
//! 200 is a promise that the events land.
//!
//! Invalid events in a batch do not fail the batch: the valid ones are
//! stored and the answer (200) lists the refusals, so SDKs do not retry or
//! drop good events. The invalid ones go into the inbox too, so the sync
//! loop stores them in `rejected_events` (running them through `Space::add`,
//! which refuses them again for the same reason).

use crate::body;
use crate::config::Limits;
use crate::edge::{error, json_response, AppState};
use crate::inbox::{Entry, EntryKind, Record};
use crate::prepare::{prepare, unique_id};
use crate::writer::Append;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::GeneralPurpose;
use base64::Engine as _;
use ps_spec::scan::{scan_batch, ScanError};
use ps_spec::time::{now_micros, parse_timestamp};
use ps_spec::{validate_json, Arrival, EventType, Refusal};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// Standard base64 for `Authorization: Basic`; clients differ on padding,
/// so it is optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Which tracking endpoint a route is: one call type, or a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/v1/track` and the like: one event, its `type` from the path.
    Single(EventType),
    /// `/v1/batch`, `/v1/import`: `{"batch": [...]}`.
    Batch,
}

/// The write key of `Authorization: Basic base64(writeKey:)`. `Err` for a
/// header that is present but not Basic credentials.
fn basic_write_key(h: &HeaderMap) -> Result<Option<String>, ()> {
    let Some(v) = h.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?;
    let (scheme, cred) = v.trim().split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let raw = BASE64.decode(cred.trim()).map_err(|_| ())?;
    let text = String::from_utf8(raw).map_err(|_| ())?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    Ok(Some(user.to_owned()).filter(|u| !u.is_empty()))
}

/// One event after edge validation.
struct Checked {
    entry: Entry,
    /// Its dedupe id on the event log ([`crate::publish::dedupe_id`]).
    log_id: String,
    /// Source id it is counted under.
    source: String,
    refusal: Option<Refusal>,
}

/// Whether an event lacks a usable `messageId`.
fn needs_message_id(o: &Map<String, Json>) -> bool {
    match o.get("messageId") {
        None | Some(Json::Null) => true,
        Some(Json::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Validates one event of a request (parsed from `raw`, its bytes as sent)
/// and decides what goes into the inbox: the original bytes, unless the
/// server had to assign a `messageId`, which must then be stored with it.
#[allow(clippy::too_many_arguments)]
fn check_event(
    st: &AppState,
    item: Json,
    raw: &[u8],
    kind: Option<EventType>,
    request_source: &str,
    shared: Option<&Map<String, Json>>,
    peer_ip: Option<&str>,
    arrival: &Arrival,
    limits: &Limits,
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
    let message_id = match &item {
        Json::Object(o) => o.get("messageId").and_then(Json::as_str),
        _ => None,
    };
    let log_id = crate::publish::dedupe_id(message_id, raw);
    let stored = |kind| Entry {
        kind,
        bytes: raw.to_vec(),
    };
    let too_large = raw.len() > limits.max_event_bytes;
    let checked = match &item {
        Json::Object(o) => validate_json(o, arrival),
        _ => Err(Refusal::NotAnObject),
    };
    match checked {
        Ok(ev) => {
            // The same source rule as `Space::add`: the event's own write key
            // wins over the request's.
            let source = match ev.write_key.as_deref() {
                Some(k) => match st.sources.get(k) {
                    Some(s) => s.clone(),
                    None => {
                        return Checked {
                            entry: stored(EntryKind::Payload),
                            log_id,
                            source: request_source.to_owned(),
                            refusal: Some(Refusal::UnknownWriteKey(k.to_owned())),
                        }
                    }
                },
                None => request_source.to_owned(),
            };
            if too_large {
                return Checked {
                    entry: stored(EntryKind::TooLarge),
                    log_id,
                    source,
                    refusal: Some(Refusal::TooLarge(raw.len())),
                };
            }
            let entry = if added_id {
                let bytes = serde_json::to_vec(&item).expect("a JSON value serializes");
                Entry {
                    kind: EntryKind::Payload,
                    bytes,
                }
            } else {
                stored(EntryKind::Payload)
            };
            Checked {
                entry,
                log_id,
                source,
                refusal: None,
            }
        }
        Err(refusal) => Checked {
            entry: stored(if too_large {
                EntryKind::TooLarge
            } else {
                EntryKind::Payload
            }),
            log_id,
            source: request_source.to_owned(),
            refusal: Some(refusal),
        },
    }
}

/// One tracking request on endpoint `ep`: validated, stored in the inbox,
/// answered once durable.
pub(crate) async fn track(st: &AppState, ep: Endpoint, req: Request) -> Response {
    let received_at = now_micros();
    let path = req.uri().path().to_owned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let limits = st.cfg.limits;
    let refuse = |code: &str, status: StatusCode, msg: String| {
        st.shared.metrics.request_refused(code);
        error(status, code, msg)
    };
    // Back-pressure first: it costs nothing and protects everything after.
    if let Some(why) = st.shared.writer_failed() {
        return refuse(
            "inbox_unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the inbox cannot store events: {why}"),
        );
    }
    let depth = st.shared.inbox_bytes.load(Ordering::Relaxed);
    if depth >= st.cfg.max_inbox_bytes {
        let mut r = refuse(
            "inbox_full",
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the inbox holds {depth} bytes not yet landed (server.max_inbox_bytes = {}); retry later",
                st.cfg.max_inbox_bytes
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after(st)));
        return r;
    }
    let header_key = match basic_write_key(req.headers()) {
        Ok(k) => k,
        Err(()) => {
            return refuse(
                "bad_authorization",
                StatusCode::UNAUTHORIZED,
                "Authorization must be Basic credentials with the write key as user name".into(),
            )
        }
    };
    if let Some(k) = &header_key {
        if !st.sources.contains_key(k) {
            return refuse(
                "unknown_write_key",
                StatusCode::UNAUTHORIZED,
                format!("no source has write key {k:?}"),
            );
        }
    }
    let (limit, what) = match ep {
        Endpoint::Single(_) => (limits.max_event_bytes, "event"),
        Endpoint::Batch => (limits.max_batch_bytes, "batch"),
    };
    let body = match body::read(req, limit, what).await {
        Ok(b) => b,
        Err(r) => {
            st.shared
                .metrics
                .request_refused(body::too_large_code(what));
            return r;
        }
    };
    let malformed = |e: String| {
        refuse(
            "malformed_json",
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    };
    let invalid_batch = || {
        refuse(
            "invalid_batch",
            StatusCode::BAD_REQUEST,
            "the body must be an object with a `batch` array".into(),
        )
    };
    // The events' byte ranges, and the top-level fields of the body.
    let (spans, fields): (Option<Vec<&[u8]>>, Map<String, Json>) = match ep {
        Endpoint::Single(_) => match serde_json::from_slice::<Json>(&body) {
            Ok(Json::Object(o)) => (Some(vec![body.trim_ascii()]), o),
            Ok(_) => (Some(vec![body.trim_ascii()]), Map::new()),
            Err(e) => return malformed(e.to_string()),
        },
        Endpoint::Batch => match scan_batch(&body) {
            Ok(scan) => {
                let mut fields = Map::new();
                for (k, v) in scan.fields {
                    match serde_json::from_slice::<Json>(v) {
                        Ok(v) => {
                            fields.insert(String::from_utf8_lossy(k).into_owned(), v);
                        }
                        Err(e) => return malformed(e.to_string()),
                    }
                }
                (scan.items, fields)
            }
            Err(ScanError::NotAnObject) => (None, Map::new()),
            Err(ScanError::Malformed) => {
                let e = serde_json::from_slice::<Json>(&body)
                    .err()
                    .map_or_else(|| "bad structure".into(), |e| e.to_string());
                return malformed(e);
            }
        },
    };
    let body_key = fields
        .get("writeKey")
        .and_then(Json::as_str)
        .map(str::to_owned);
    let key = match (header_key, body_key) {
        (Some(k), _) => k,
        (None, Some(k)) if st.sources.contains_key(&k) => k,
        (None, Some(k)) => {
            return refuse("unknown_write_key", StatusCode::UNAUTHORIZED, format!("no source has write key {k:?}"))
        }
        (None, None) => {
            return refuse(
                "missing_write_key",
                StatusCode::UNAUTHORIZED,
                "no write key: send it as the Basic auth user name (`writeKey:`) or as `writeKey` in the body".into(),
            )
        }
    };
    let Some(spans) = spans else {
        return invalid_batch();
    };
    let (kind, sent_at, shared) = match ep {
        Endpoint::Single(k) => (Some(k), None, Map::new()),
        Endpoint::Batch => {
            if spans.len() > limits.max_batch_events {
                return refuse(
                    "batch_too_many_events",
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the batch has {} events; at most {} are allowed (server.max_batch_events)",
                        spans.len(),
                        limits.max_batch_events
                    ),
                );
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
    let request_source = st.sources.get(&key).cloned().unwrap_or_default();
    let arrival = Arrival {
        received_at: Some(received_at),
        batch_sent_at: sent_at,
        load_time: received_at,
    };
    let mut entries = Vec::with_capacity(spans.len());
    let mut log_ids = Vec::with_capacity(spans.len());
    let mut errors = Vec::new();
    let mut accepted: HashMap<String, u64> = HashMap::new();
    for (i, raw) in spans.into_iter().enumerate() {
        let item: Json = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => return malformed(format!("event {i}: {e}")),
        };
        let c = check_event(
            st,
            item,
            raw,
            kind,
            &request_source,
            shared_ref,
            peer_ip.as_deref(),
            &arrival,
            &limits,
        );
        match &c.refusal {
            None => *accepted.entry(c.source.clone()).or_default() += 1,
            Some(r) => {
                st.shared.metrics.rejected(&c.source, r.code());
                errors.push(json!({ "index": i, "code": r.code(), "message": r.to_string() }));
            }
        }
        entries.push(c.entry);
        log_ids.push(c.log_id);
    }
    let n_events = entries.len() as u64;
    let record = Record {
        received_at,
        sent_at,
        write_key: Some(key),
        place: format!("http {} {path}", peer_ip.as_deref().unwrap_or("?")),
        kind: kind.map(|k| k.as_str().to_owned()),
        peer_ip,
        shared: if shared.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&shared).expect("a JSON value serializes")
        },
        entries,
    };
    if n_events > 0 {
        if let Some(log) = &st.log {
            let wait = st.log_ack_timeout;
            if let Err(why) =
                crate::publish::publish(log.as_ref(), &st.space, record, log_ids, wait).await
            {
                // Nothing is promised: the client retries with the same
                // messageIds, and what was stored is deduplicated.
                let mut r = refuse(
                    "log_unavailable",
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the events were not stored: {why}"),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
                return r;
            }
            for (source, n) in &accepted {
                st.shared.metrics.accepted(source, *n);
            }
            return answer(ep, n_events, errors);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let bytes = record.encode();
        let sent = st.writer.send(Append::Record {
            bytes,
            events: n_events,
            done: tx,
        });
        let stored = match sent {
            Ok(()) => rx
                .await
                .unwrap_or_else(|_| Err("the inbox writer stopped".into())),
            Err(_) => Err("the server is shutting down".into()),
        };
        if let Err(why) = stored {
            // Nothing was acknowledged; a client that retries later (a full
            // disk frees up as the sync lands) loses nothing.
            let mut r = refuse(
                "inbox_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the events were not stored: {why}"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after(st)));
            return r;
        }
    }
    for (source, n) in &accepted {
        st.shared.metrics.accepted(source, *n);
    }
    answer(ep, n_events, errors)
}

/// The answer to a request whose events are stored: `errors` lists the
/// refused ones.
fn answer(ep: Endpoint, n_events: u64, mut errors: Vec<Json>) -> Response {
    match ep {
        Endpoint::Single(_) => match errors.pop() {
            None => json_response(StatusCode::OK, &json!({ "success": true })),
            Some(e) => json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "code": e["code"], "message": e["message"] }),
            ),
        },
        Endpoint::Batch => {
            let n_rejected = errors.len() as u64;
            json_response(
                StatusCode::OK,
                &json!({
                    "success": true,
                    "accepted": n_events - n_rejected,
                    "rejected": n_rejected,
                    "errors": errors,
                }),
            )
        }
    }
}

/// Seconds a refused client should wait: one sync interval, in which the
/// inbox drains (at least 1, as `Retry-After` counts whole seconds).
fn retry_after(st: &AppState) -> u64 {
    st.cfg.sync_interval.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_gives_the_write_key() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic d2tfc291cmNlXzE6"),
        );
        assert_eq!(basic_write_key(&h), Ok(Some("wk_source_1".into())));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic d2tfc291cmNlXzE"),
        );
        assert_eq!(
            basic_write_key(&h),
            Ok(Some("wk_source_1".into())),
            "padding is optional"
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_write_key(&h), Err(()));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert_eq!(basic_write_key(&h), Err(()));
    }

    #[test]
    fn ids_are_unique_and_uuid_v4() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| unique_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = ids.iter().next().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
