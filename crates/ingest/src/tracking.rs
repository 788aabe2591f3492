//! Segment's Tracking API: [`track`] answers `POST /v1/track`, `/v1/batch`
//! and the other tracking paths ([`crate::routes`] says which is which).
//!
//! A tracking request is handled in this order, cheapest refusal first:
//! back-pressure (503 when the inbox cannot store, 429 when it is full) →
//! the checks of [`ps_http::request::receive`] (write key, body size and
//! gzip, JSON, batch size, each event prepared and validated) → one inbox
//! record holding the events' bytes and what `prepare` needs → wait for
//! the group commit → answer. The answer is sent only after the record is
//! synced to disk: a 200 is a promise that the events land. With `[log]`
//! the record's events are published to the event log instead
//! ([`crate::publish`]) and the answer waits for the log's
//! acknowledgements (503 with `Retry-After` when they do not come).

use crate::edge::AppState;
use crate::inbox::{Entry, EntryKind, Record};
use crate::writer::Append;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use ps_http::answer::error;
use ps_http::request::{receive, Endpoint, Rules};
use ps_spec::time::now_micros;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// One tracking request on endpoint `ep`: validated, stored in the inbox,
/// answered once durable.
pub(crate) async fn track(st: &AppState, ep: Endpoint, req: Request) -> Response {
    let received_at = now_micros();
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
    let rules = Rules {
        sources: &st.sources,
        limits: &st.cfg.limits,
    };
    let mut got = match receive(req, ep, rules, received_at).await {
        Ok(got) => got,
        Err(refused) => {
            st.shared.metrics.request_refused(refused.code);
            return refused.response;
        }
    };
    let mut accepted: HashMap<String, u64> = HashMap::new();
    for c in &got.events {
        match &c.refusal {
            None => *accepted.entry(c.source.clone()).or_default() += 1,
            Some(r) => st.shared.metrics.rejected(&c.source, r.code()),
        }
    }
    let n_events = got.events.len() as u64;
    if n_events > 0 {
        let log_ids: Vec<String> = match &st.log {
            Some(_) => got
                .events
                .iter()
                .map(|c| crate::publish::dedupe_id(c.message_id.as_deref(), &c.bytes))
                .collect(),
            None => Vec::new(),
        };
        let record = Record {
            received_at,
            sent_at: got.sent_at,
            write_key: Some(got.write_key.clone()),
            place: format!(
                "http {} {}",
                got.peer_ip.as_deref().unwrap_or("?"),
                got.path
            ),
            kind: got.kind.map(|k| k.as_str().to_owned()),
            peer_ip: got.peer_ip.clone(),
            shared: if got.shared.is_empty() {
                Vec::new()
            } else {
                serde_json::to_vec(&got.shared).expect("a JSON value serializes")
            },
            entries: got
                .events
                .iter_mut()
                .map(|c| Entry {
                    kind: if c.too_large {
                        EntryKind::TooLarge
                    } else {
                        EntryKind::Payload
                    },
                    // The answer needs only the refusals.
                    bytes: std::mem::take(&mut c.bytes),
                })
                .collect(),
        };
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
            return got.answer(ep);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let bytes = record.encode();
        drop(record);
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
    got.answer(ep)
}

/// Seconds a refused client should wait: one sync interval, in which the
/// inbox drains (at least 1, as `Retry-After` counts whole seconds).
fn retry_after(st: &AppState) -> u64 {
    st.cfg.sync_interval.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use ps_http::prepare::unique_id;

    #[test]
    fn ids_are_unique_and_uuid_v4() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| unique_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = ids.iter().next().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
