//! Tests of [`super`]: moved out of `event.rs` to keep that file to its code.

use super::*;
use crate::time::format_sql;

fn parse(s: &str) -> Result<Event, Refusal> {
    parse_event_str(
        s,
        &Arrival {
            load_time: 0,
            ..Arrival::default()
        },
    )
}

#[test]
fn validation_reasons() {
    assert_eq!(parse("{").unwrap_err().code(), "malformed_json");
    assert_eq!(parse("[]").unwrap_err(), Refusal::NotAnObject);
    assert_eq!(
        parse(r#"{"type":"x","userId":"u"}"#).unwrap_err().code(),
        "unknown_type"
    );
    assert_eq!(
        parse(r#"{"type":"page","userId":""}"#).unwrap_err(),
        Refusal::MissingIdentity
    );
    assert_eq!(
        parse(r#"{"type":"track","userId":"u"}"#).unwrap_err(),
        Refusal::MissingEvent
    );
    assert_eq!(
        parse(r#"{"type":"group","userId":"u"}"#).unwrap_err(),
        Refusal::MissingGroupId
    );
    let long = "m".repeat(101);
    let e = parse(&format!(
        r#"{{"type":"page","userId":"u","messageId":"{long}"}}"#
    ))
    .unwrap_err();
    assert_eq!(e.code(), "message_id_too_long");
    assert_eq!(
        parse(r#"{"type":"page","userId":"u","timestamp":"yesterday"}"#)
            .unwrap_err()
            .code(),
        "bad_timestamp"
    );
}

#[test]
fn missing_message_id_is_stable() {
    let a = parse(r#"{"type":"page","userId":"u"}"#).unwrap();
    let b = parse(r#"{"type":"page","userId":"u"}"#).unwrap();
    assert_eq!(a.message_id, b.message_id);
    assert!(a.message_id.starts_with("ps-"));
}

#[test]
fn clock_skew_correction() {
    let arrival = Arrival {
        received_at: parse_timestamp("2024-01-01T12:00:10Z"),
        batch_sent_at: parse_timestamp("2024-01-01T12:05:00Z"),
        load_time: 0,
    };
    // The device clock is 5 minutes fast: sent at 12:05:00 by its clock, received at 12:00:10.
    let e = parse_event_str(
        r#"{"type":"page","userId":"u","timestamp":"2024-01-01T12:04:00Z"}"#,
        &arrival,
    )
    .unwrap();
    assert_eq!(format_sql(e.timestamp), "2024-01-01 11:59:10");
    assert_eq!(
        format_sql(e.original_timestamp.unwrap()),
        "2024-01-01 12:04:00"
    );
    // Without receivedAt the event keeps its own timestamp.
    let e = parse(r#"{"type":"page","userId":"u","sentAt":"2024-01-01T12:05:00Z","timestamp":"2024-01-01T12:04:00Z"}"#).unwrap();
    assert_eq!(format_sql(e.timestamp), "2024-01-01 12:04:00");
}

#[test]
fn validate_json_agrees_with_parse_event() {
    let arrival = Arrival {
        load_time: 0,
        ..Arrival::default()
    };
    for text in [
        r#"{"type":"track","userId":"u","event":"E","messageId":"m","writeKey":"k"}"#,
        r#"{"type":"identify","userId":42,"messageId":7}"#,
        r#"{"type":"page","anonymousId":"a","messageId":1.5}"#,
        r#"{"type":"page","userId":""}"#,
        r#"{"type":"group","userId":"u"}"#,
        r#"{"type":"track","userId":"u"}"#,
        r#"{"type":"nope","userId":"u"}"#,
        r#"{"type":7,"userId":"u"}"#,
        r#"{"userId":"u"}"#,
        r#"{"type":"page","userId":true}"#,
        r#"{"type":"page","userId":"u","timestamp":"soon"}"#,
        r#"{"type":"page","userId":"u","timestamp":5}"#,
        r#"{"type":"page","userId":"u","writeKey":["x"]}"#,
        r#"{"type":"alias","userId":"u","previousId":"p"}"#,
    ] {
        let json: Json = serde_json::from_str(text).unwrap();
        let want =
            parse_event(json.clone(), &arrival, None).map(|e| (e.kind, e.message_id, e.write_key));
        let got = validate_json(json.as_object().unwrap(), &arrival)
            .map(|v| (v.kind, v.message_id, v.write_key));
        assert_eq!(got, want, "{text}");
    }
}
