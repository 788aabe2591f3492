//! # ps-fuzz-targets: what the fuzzers check
//!
//! `serve` reads bytes from anyone who can reach it, and `sync` reads files
//! nobody checked, so the code that first touches those bytes must never
//! panic, hang or allocate without bound, and must refuse what it cannot
//! read with a reason. The fuzz targets in `fuzz/` (run by `scripts/fuzz`
//! with cargo-fuzz and libFuzzer) call the functions here; keeping the
//! bodies in a workspace crate means stable `cargo test` replays every
//! committed corpus input and every crash ever found
//! (`tests/replay.rs`), so a fixed crash stays fixed without nightly.
//!
//! `http` and `config` reach `serve`'s request path and the config file
//! through `ps-http` and `ps-config`, and `inbox` reads segment files
//! through `ps-inbox`; none of them depends on a warehouse, so the fuzz
//! build has no DuckDB to compile.
//!
//! Most targets are *differential*: where the product has its own reader
//! beside `serde_json` (the tape parser, the batch scanner, the two event
//! validators), both must read the same bytes the same way. A difference is
//! a bug in one of them even when nothing panics. `inbox` is differential
//! against the encoder: a record that decodes encodes back to the same
//! bytes, and a segment damaged anywhere reads back as exactly the records
//! before the damage.

#![warn(missing_docs, unreachable_pub)]

mod config;
mod http;
mod inbox;

pub use config::{config, RESERVED};
pub use http::http;
pub use inbox::inbox;

use ps_identity::{Engine, IdScheme, IdentityConfig, Settings};
use ps_spec::event::{parse_event_str, validate_json, Arrival};
use ps_spec::flatten::{flatten_object, FlattenStats};
use ps_spec::scan::{scan_batch, ScanError};
use ps_spec::tape::Doc;
use serde_json::Value as Json;

/// The tape parser ([`Doc::parse`]) accepts exactly what `serde_json`
/// accepts, and reads the same value.
pub fn tape(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = Doc::parse(text.to_owned());
    let theirs = serde_json::from_str::<Json>(text);
    match (ours, theirs) {
        (Ok(doc), Ok(v)) => assert_eq!(doc.root().to_json(), v, "tape reads another value"),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("tape accepts what serde_json refuses: {e}"),
        (Err((e, _)), Ok(_)) => panic!("tape refuses what serde_json accepts: {}", e.message()),
    }
}

/// One event payload: the edge's validator ([`validate_json`], on a
/// `serde_json` map) and the pipeline's ([`parse_event_str`], on the tape)
/// agree on every payload, refusal code included; an accepted event
/// flattens and goes through the identity engine.
pub fn event(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let arrival = Arrival {
        received_at: Some(1_700_000_000_000_000),
        batch_sent_at: None,
        load_time: 1_700_000_000_000_000,
    };
    let parsed = parse_event_str(text, &arrival);
    if let Ok(Json::Object(map)) = serde_json::from_str::<Json>(text) {
        match (&parsed, validate_json(&map, &arrival)) {
            (Ok(ev), Ok(v)) => {
                assert_eq!(ev.kind, v.kind, "validators read another type");
                // Without a `messageId` the two derive one from different
                // bytes (the file's line, the re-serialized map); the edge
                // assigns its own before validating, so only given ids must
                // agree.
                let given = !matches!(map.get("messageId"), None | Some(Json::Null))
                    && map.get("messageId") != Some(&Json::String(String::new()));
                if given {
                    assert_eq!(
                        ev.message_id, v.message_id,
                        "validators read another messageId"
                    );
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "validators refuse differently"),
            (Ok(_), Err(b)) => panic!("only the edge refuses: {}", b.code()),
            (Err(a), Ok(_)) => panic!("only the pipeline refuses: {}", a.code()),
        }
    }
    let Ok(ev) = parsed else {
        return;
    };
    let mut columns = Vec::new();
    let mut stats = FlattenStats::default();
    for part in [ev.body_ref(), ev.context_ref()].into_iter().flatten() {
        flatten_object(part, "", &mut columns, &mut stats);
    }
    let settings = Settings::new(&IdentityConfig::default()).expect("default identity rules");
    let mut engine = Engine::new(settings, IdScheme::default(), "fuzz");
    let mut effects = Vec::new();
    engine.process(&ev, &mut effects);
}

/// A batch body: the scanner that splits `/v1/batch` bodies ([`scan_batch`])
/// agrees with `serde_json` on what is an object, finds the same events and
/// fields, and never accepts a body whose parts are valid JSON but whose
/// whole is not.
pub fn batch_scan(data: &[u8]) {
    let scanned = scan_batch(data);
    let theirs = serde_json::from_slice::<Json>(data);
    let map = match (&scanned, theirs) {
        (Err(ScanError::NotAnObject), Ok(v)) => {
            assert!(!v.is_object(), "an object scanned as another value");
            return;
        }
        (Err(ScanError::NotAnObject), Err(e)) => panic!("malformed JSON called a value: {e}"),
        (Err(ScanError::Malformed), Ok(_)) => panic!("valid JSON called malformed"),
        (Err(ScanError::Malformed), Err(_)) => return,
        (Ok(_), Ok(Json::Object(map))) => Some(map),
        (Ok(_), Ok(_)) => panic!("a non-object scanned as an object"),
        (Ok(_), Err(_)) => None,
    };
    let Ok(scan) = scanned else { return };
    let parse = |raw: &[u8]| serde_json::from_slice::<Json>(raw).ok();
    let key = |raw: &[u8]| {
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        serde_json::from_slice::<String>(&quoted).ok()
    };
    let items: Option<Vec<Option<Json>>> = scan
        .items
        .as_ref()
        .map(|items| items.iter().map(|i| parse(i)).collect());
    let fields: Vec<(Option<String>, Option<Json>)> = scan
        .fields
        .iter()
        .map(|(k, v)| (key(k), parse(v)))
        .collect();
    let parts_valid = items.iter().flatten().all(Option::is_some)
        && fields.iter().all(|(k, v)| k.is_some() && v.is_some());
    let Some(map) = map else {
        assert!(!parts_valid, "every part is JSON but the body is not");
        return;
    };
    let mut names: Vec<&str> = fields.iter().filter_map(|(k, _)| k.as_deref()).collect();
    if items.is_some() {
        names.push("batch");
    }
    let total = names.len();
    names.sort_unstable();
    names.dedup();
    if names.len() != total {
        // A repeated key: serde_json keeps the last, the scanner the first
        // `batch` array (docs/DECISIONS.md); nothing more to compare.
        return;
    }
    for (k, v) in &fields {
        let k = k.as_deref().expect("keys of a valid body are valid");
        assert_eq!(map.get(k), v.as_ref(), "field {k:?} read differently");
    }
    match (items, map.get("batch")) {
        (Some(items), Some(Json::Array(arr))) => {
            let items: Vec<Json> = items.into_iter().map(|i| i.expect("valid item")).collect();
            assert_eq!(&items, arr, "batch items read differently");
        }
        (None, Some(Json::Array(_))) => panic!("the batch array was missed"),
        (Some(_), _) => panic!("a batch array found where there is none"),
        (None, _) => {}
    }
}
