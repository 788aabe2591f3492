//! serve with `[log]`: a request's events go to the replicated log instead
//! of the local inbox. Each event is published as one message (an inbox
//! [`Record`] holding that one entry, so the resolver reads it back exactly
//! as the sync loop reads the inbox) under a dedupe id, and the request is
//! answered only once the log acknowledged every message.

use crate::inbox::{Entry, Record, FRAME_HEADER};
use ps_log::EventLog;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The log's dedupe id of an event: its `messageId` when that is short
/// printable ASCII (it goes into a message header as is), otherwise a hash
/// of it; a refused event without one is named by a hash of its bytes.
pub(crate) fn dedupe_id(message_id: Option<&str>, raw: &[u8]) -> String {
    match message_id {
        Some(m) if !m.is_empty() && m.len() <= 128 && m.bytes().all(|b| b.is_ascii_graphic()) => {
            m.to_owned()
        }
        Some(m) => format!("#{}", hex::encode(&Sha256::digest(m.as_bytes())[..16])),
        None => format!("~{}", hex::encode(&Sha256::digest(raw)[..16])),
    }
}

/// Publishes `record`'s events, one message each with its id from `ids`
/// (in entry order), and waits for every acknowledgement, at most `wait`.
/// `Err` says why not all were acknowledged; some may have been stored, and
/// a client retry with the same ids is deduplicated.
pub(crate) async fn publish(
    log: &dyn EventLog,
    space: &str,
    record: Record,
    ids: Vec<String>,
    wait: Duration,
) -> Result<(), String> {
    let Record {
        received_at,
        sent_at,
        write_key,
        place,
        kind,
        peer_ip,
        shared,
        entries,
    } = record;
    let messages: Vec<ps_log::Record> = entries
        .into_iter()
        .zip(ids)
        .map(|(e, id): (Entry, String)| {
            let one = Record {
                received_at,
                sent_at,
                write_key: write_key.clone(),
                place: place.clone(),
                kind: kind.clone(),
                peer_ip: peer_ip.clone(),
                shared: shared.clone(),
                entries: vec![e],
            };
            // The log frames and checksums messages itself: the record's
            // own frame header is left off.
            let body = ps_log::Bytes::from(one.encode()).slice(FRAME_HEADER as usize..);
            ps_log::Record { id, body }
        })
        .collect();
    match tokio::time::timeout(wait, log.publish(space, messages)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the event log did not acknowledge within {wait:?} (log.ack_timeout)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::dedupe_id;

    #[test]
    fn ids_are_header_safe() {
        assert_eq!(dedupe_id(Some("m-1"), b"{}"), "m-1");
        let odd = dedupe_id(Some("a b\r\nc"), b"{}");
        assert!(odd.starts_with('#') && odd.len() == 33, "{odd}");
        assert_eq!(odd, dedupe_id(Some("a b\r\nc"), b"other bytes"));
        let none = dedupe_id(None, b"{\"x\":1}");
        assert!(none.starts_with('~'));
        assert_ne!(none, dedupe_id(None, b"{\"x\":2}"));
    }
}
