//! The Profile API (issue 20) with a real HTTP client against a running
//! `serve` on the golden case study: every route, every error, pagination
//! walked to the end, the merged profile looked up by each of its
//! identifiers, freshness within a sync interval, and PostgreSQL.

use crate::serve::{basic, post, Serve, ADMIN};
use crate::util::{golden_dir, Backend, Env};
use ps_ingest::client::{Client, Response};
use serde_json::{json, Value as Json};
use std::time::{Duration, Instant};

const TOKEN: &str = "pat_profile_token";
const PROFILES: &str = "/v1/spaces/case_study/collections/users/profiles";

/// The case study's merged profile: every identifier of it, URL-encoded.
const IDENTIFIERS: [&str; 4] = [
    "anonymous_id:5285bc35-05ef-4d21",
    "anonymous_id:b50e18a5-1b8d-451c",
    "email:jane.kim@segment.com",
    "email:jane.kim%40segment.com",
];

fn config(extra: &str) -> String {
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    // [server] last: a test appends its `listen` to it.
    format!(
        "{base}\n[profile_api]\ntokens = [\"{TOKEN}\"]\n{extra}\n\
         [server]\nadmin_token = \"{ADMIN}\"\nsync_interval = \"200ms\"\n"
    )
}

/// A server on the case study, landed from the file first.
fn case_study(backend: Backend, extra: &str) -> (Env, Serve) {
    let env = Env::with_backend(&config(extra), backend);
    env.ok(&[
        "sync",
        golden_dir().join("case-study.jsonl").to_str().unwrap(),
    ]);
    let srv = Serve::start(&env);
    (env, srv)
}

fn get_as(c: &mut Client, path: &str, auth: Option<&str>) -> Response {
    let a;
    let mut h = vec![];
    if let Some(user) = auth {
        a = basic(user);
        h.push(("Authorization", a.as_str()));
    }
    c.request("GET", path, &h, b"").unwrap()
}

/// GET with the token; checks the Request-Id header and the absence of
/// CORS headers on every answer.
fn get(c: &mut Client, path: &str) -> Response {
    let r = get_as(c, path, Some(TOKEN));
    check_headers(&r);
    r
}

fn check_headers(r: &Response) {
    let id = r.header("request-id").expect("Request-Id on every answer");
    assert_eq!(id.len(), 36, "{id}");
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "no CORS: {:?}",
        r.headers
    );
}

fn ok(c: &mut Client, path: &str) -> Json {
    let r = get(c, path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

/// The status and `error.code` of a refusal.
fn refusal(r: &Response) -> (u16, String) {
    check_headers(r);
    let j = r.json();
    assert!(j["error"]["message"].is_string(), "{j}");
    (
        r.status,
        j["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

/// Follows `next` to the end; returns every item of `key` in order.
fn walk(c: &mut Client, first: &str, key: &str) -> Vec<Json> {
    let mut out = Vec::new();
    let mut path = first.to_owned();
    for _ in 0..100 {
        let j = ok(c, &path);
        let cursor = &j["cursor"];
        assert!(cursor["url"].as_str().unwrap().starts_with(PROFILES), "{j}");
        match &j[key] {
            Json::Array(a) => out.extend(a.iter().cloned()),
            Json::Object(o) => out.extend(o.iter().map(|(k, v)| json!([k, v]))),
            other => panic!("{other}"),
        }
        if cursor["has_more"] == json!(false) {
            return out;
        }
        let next = cursor["next"].as_str().unwrap();
        assert!(!next.is_empty());
        let sep = if first.contains('?') { '&' } else { '?' };
        path = format!("{first}{sep}next={next}");
    }
    panic!("pagination did not end");
}

#[test]
fn profile_api_routes_on_the_case_study() {
    let (_env, srv) = case_study(Backend::DuckDb, "");
    let mut c = srv.client();
    // The merged profile answers the same by each of its identifiers.
    let mut answers = Vec::new();
    for id in IDENTIFIERS {
        let traits = ok(&mut c, &format!("{PROFILES}/{id}/traits"));
        assert_eq!(traits["traits"], json!({ "email": "jane.kim@segment.com" }));
        assert_eq!(traits["cursor"]["has_more"], json!(false));
        assert_eq!(traits["cursor"]["limit"], json!(10));
        let ids = ok(&mut c, &format!("{PROFILES}/{id}/external_ids"));
        let events = ok(&mut c, &format!("{PROFILES}/{id}/events"));
        let meta = ok(&mut c, &format!("{PROFILES}/{id}/metadata"));
        answers.push((
            traits["traits"].clone(),
            ids["data"].clone(),
            events["data"].clone(),
            meta,
        ));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    let (_, ids, events, meta) = &answers[0];

    // external_ids: first seen first, with the event that brought each.
    let want = [
        (
            "anonymous_id",
            "5285bc35-05ef-4d21",
            "event_1",
            "2022-05-02T14:01:00.000Z",
        ),
        (
            "email",
            "jane.kim@segment.com",
            "event_2",
            "2022-05-02T14:01:47.000Z",
        ),
        (
            "anonymous_id",
            "b50e18a5-1b8d-451c",
            "event_3",
            "2022-06-22T10:47:15.000Z",
        ),
    ];
    assert_eq!(ids.as_array().unwrap().len(), 3);
    for (got, (ty, id, msg, at)) in ids.as_array().unwrap().iter().zip(want) {
        assert_eq!(
            got,
            &json!({ "source_id": "source_1", "collection": "users", "id": id, "type": ty,
                     "created_at": at, "encoding": "none", "first_message_id": msg })
        );
    }
    let only_email = ok(
        &mut c,
        &format!("{PROFILES}/{}/external_ids?include=email", IDENTIFIERS[0]),
    );
    assert_eq!(only_email["data"].as_array().unwrap().len(), 1);

    // events: newest first, every one related to the surviving profile.
    let order: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["event_4", "event_3", "event_2", "event_1"]);
    let e4 = &events[0];
    assert_eq!(e4["type"], "identify");
    assert_eq!(e4["source_id"], "source_2");
    assert_eq!(e4["timestamp"], "2022-06-22T10:48:00.000Z");
    assert_eq!(e4["related"], json!({ "users": "profile_1" }));
    assert_eq!(e4["context"]["url"], "twilio.com/events/webinars");
    assert_eq!(e4["traits"]["email"], "jane.kim@segment.com");
    assert!(e4["external_ids"]
        .as_array()
        .unwrap()
        .contains(&json!({ "collection": "users", "type": "anonymous_id", "id": "b50e18a5-1b8d-451c", "encoding": "none" })));
    assert_eq!(events[1]["properties"]["email"], "jane.kim@segment.com");
    let asc = ok(
        &mut c,
        &format!("{PROFILES}/{}/events?sort=asc", IDENTIFIERS[2]),
    );
    assert_eq!(asc["data"][0]["message_id"], "event_1");
    let june = ok(
        &mut c,
        &format!(
            "{PROFILES}/{}/events?start=2022-06-01T00:00:00Z&end=2022-06-22T10:48:00Z",
            IDENTIFIERS[2]
        ),
    );
    let june: Vec<&Json> = june["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["message_id"])
        .collect();
    assert_eq!(june, [&json!("event_3")], "start inclusive, end exclusive");
    let named = ok(
        &mut c,
        &format!(
            "{PROFILES}/{}/events?include=Order%20Completed",
            IDENTIFIERS[2]
        ),
    );
    assert_eq!(named["data"], json!([]));

    // Pagination walked to the end gives every item once, in order.
    for limit in [1, 2, 3] {
        let all = walk(
            &mut c,
            &format!("{PROFILES}/{}/events?limit={limit}", IDENTIFIERS[1]),
            "data",
        );
        let got: Vec<&Json> = all.iter().map(|e| &e["message_id"]).collect();
        assert_eq!(
            got,
            ["event_4", "event_3", "event_2", "event_1"]
                .iter()
                .map(|s| json!(s))
                .collect::<Vec<_>>()
                .iter()
                .collect::<Vec<_>>()
        );
        let all = walk(
            &mut c,
            &format!(
                "{PROFILES}/{}/events?limit={limit}&sort=asc",
                IDENTIFIERS[1]
            ),
            "data",
        );
        assert_eq!(all.first().unwrap()["message_id"], "event_1");
        assert_eq!(all.len(), 4);
        let all = walk(
            &mut c,
            &format!("{PROFILES}/{}/external_ids?limit={limit}", IDENTIFIERS[1]),
            "data",
        );
        assert_eq!(&Json::Array(all), ids);
    }
    let traits = walk(
        &mut c,
        &format!("{PROFILES}/{}/traits?limit=1", IDENTIFIERS[0]),
        "traits",
    );
    assert_eq!(traits, [json!(["email", "jane.kim@segment.com"])]);

    // verbose traits: value, source and when it was set.
    let v = ok(
        &mut c,
        &format!("{PROFILES}/{}/traits?verbose=true", IDENTIFIERS[0]),
    );
    assert_eq!(
        v["traits"]["email"],
        json!({ "value": "jane.kim@segment.com", "source_id": "source_1", "updated_at": "2022-05-02T14:01:47.000Z" })
    );
    assert_eq!(
        ok(
            &mut c,
            &format!("{PROFILES}/{}/traits?include=plan", IDENTIFIERS[0])
        )["traits"],
        json!({})
    );
    assert_eq!(
        ok(
            &mut c,
            &format!("{PROFILES}/{}/traits?class=audience", IDENTIFIERS[0])
        )["traits"],
        json!({})
    );

    // metadata: created by the first event of the oldest profile.
    assert_eq!(
        meta["metadata"],
        json!({ "created_at": "2022-05-02T14:01:00.000Z", "updated_at": "2022-06-22T10:48:00.000Z",
                "expires_at": null, "first_message_id": "event_1", "first_source_id": "source_1",
                "last_message_id": "event_4", "last_source_id": "source_2" })
    );

    // Errors.
    let traits = format!("{PROFILES}/{}/traits", IDENTIFIERS[2]);
    for auth in [
        None,
        Some("wk_source_1"),
        Some(ADMIN),
        Some("pat_profile_toke"),
    ] {
        assert_eq!(
            refusal(&get_as(&mut c, &traits, auth)),
            (401, "authentication_error".into()),
            "{auth:?}"
        );
    }
    let bearer = format!("Bearer {TOKEN}");
    let r = c
        .request("GET", &traits, &[("Authorization", &bearer)], b"")
        .unwrap();
    assert_eq!(refusal(&r), (401, "authentication_error".into()));
    for (path, want) in [
        (
            format!("{PROFILES}/user_id:nobody/traits"),
            (404, "not_found"),
        ),
        (
            format!("{PROFILES}/email:JANE.KIM@segment.com/events"),
            (404, "not_found"),
        ),
        (
            "/v1/spaces/other_space/collections/users/profiles/user_id:u/traits".into(),
            (404, "not_found"),
        ),
        (
            "/v1/spaces/case_study/collections/users/profiles/user_id:u/links".into(),
            (404, "not_found"),
        ),
        (
            "/v1/spaces/case_study/collections/accounts/profiles/group_id:g/traits".into(),
            (404, "not_found"),
        ),
        ("/v1/spaces/case_study/nothing".into(), (404, "not_found")),
        (
            format!("{PROFILES}/jane/traits"),
            (400, "invalid_request_error"),
        ),
        (format!("{traits}?limit=0"), (400, "validation_error")),
        (format!("{traits}?limit=201"), (400, "validation_error")),
        (
            format!("{PROFILES}/{}/external_ids?limit=101", IDENTIFIERS[2]),
            (400, "validation_error"),
        ),
        (
            format!("{PROFILES}/{}/events?limit=101", IDENTIFIERS[2]),
            (400, "validation_error"),
        ),
        (
            format!("{PROFILES}/{}/events?start=2022-13-01", IDENTIFIERS[2]),
            (400, "validation_error"),
        ),
        (
            format!("{PROFILES}/{}/events?end=yesterday", IDENTIFIERS[2]),
            (400, "validation_error"),
        ),
        (
            format!("{PROFILES}/{}/events?sort=up", IDENTIFIERS[2]),
            (400, "validation_error"),
        ),
        (format!("{traits}?class=segment"), (400, "validation_error")),
        (
            format!("{traits}?next=garbage!"),
            (400, "invalid_request_error"),
        ),
        (
            format!("{PROFILES}/{}/events?next=eDoz", IDENTIFIERS[2]),
            (400, "invalid_request_error"),
        ),
    ] {
        let r = get(&mut c, &path);
        assert_eq!(
            refusal(&r),
            (want.0, want.1.to_owned()),
            "{path}: {}",
            r.text()
        );
        if want.1 == "not_found" && path.contains("nobody") {
            assert_eq!(r.json()["error"]["message"], "Profile was not found.");
        }
    }
    let r = c
        .request(
            "POST",
            &traits,
            &[
                ("Authorization", &basic(TOKEN)),
                ("Origin", "https://example.com"),
            ],
            b"{}",
        )
        .unwrap();
    assert_eq!(refusal(&r).0, 405);
    let r = c
        .request(
            "OPTIONS",
            &traits,
            &[("Origin", "https://example.com")],
            b"",
        )
        .unwrap();
    check_headers(&r);
    // The Tracking API keeps its CORS.
    let r = c
        .request(
            "OPTIONS",
            "/v1/track",
            &[("Origin", "https://example.com")],
            b"",
        )
        .unwrap();
    assert!(r.header("access-control-allow-origin").is_some());
}

#[test]
fn profile_api_rate_limit_answers_429_with_retry_after() {
    let (_env, srv) = case_study(Backend::DuckDb, "rate_limit = 3");
    let mut c = srv.client();
    let path = format!("{PROFILES}/{}/traits", IDENTIFIERS[2]);
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..20 {
        let r = get(&mut c, &path);
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(refusal(&r), (429, "rate_limit_error".into()));
            limited = Some(r);
        }
    }
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
    let r = limited.unwrap();
    assert_eq!(r.header("retry-after"), Some("1"));
    // A second later the space has its rate again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(get(&mut c, &path).status, 200);
}

#[test]
fn profile_api_shows_a_tracked_change_within_a_sync_interval() {
    let (_env, srv) = case_study(Backend::DuckDb, "");
    let mut c = srv.client();
    let interval = Duration::from_millis(200);
    // A new profile with a `+` in its identifier, URL-encoded in the path.
    let identify =
        json!({ "userId": "u+1", "traits": { "plan": "pro", "email": "a+b@example.com" } });
    let sent = Instant::now();
    let r = post(
        &mut c,
        "/v1/identify",
        Some("wk_source_1"),
        &identify.to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let path = format!("{PROFILES}/email:a%2Bb%40example.com/traits");
    let seen = poll(&mut c, &path, |j| j["traits"]["plan"] == "pro");
    eprintln!(
        "identify visible after {:?} (sync_interval {interval:?})",
        seen - sent
    );
    // At most one interval to be picked up, plus the commit that lands and
    // materializes it (its time is DuckDB's, unoptimized in test builds:
    // hence the slack); the poll itself adds at most 10 ms.
    assert!(
        seen - sent < interval + Duration::from_secs(2),
        "{:?}",
        seen - sent
    );
    // A track of the merged case-study profile shows in its events.
    let track = json!({ "anonymousId": "5285bc35-05ef-4d21", "event": "Order Completed", "messageId": "fresh_1",
                        "properties": { "total": 27.5 }, "timestamp": "2030-01-01T00:00:00Z" });
    let r = post(&mut c, "/v1/track", Some("wk_source_1"), &track.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let events = format!("{PROFILES}/email:jane.kim@segment.com/events?include=Order%20Completed");
    poll(&mut c, &events, |j| {
        j["data"].as_array().is_some_and(|a| a.len() == 1)
    });
    let e = &ok(&mut c, &events)["data"][0];
    assert_eq!(e["message_id"], "fresh_1");
    assert_eq!(e["event"], "Order Completed");
    assert_eq!(e["type"], "track");
    assert_eq!(e["properties"]["total"], json!(27.5));
    assert_eq!(e["related"]["users"], "profile_1");
    let excluded = ok(
        &mut c,
        &format!("{PROFILES}/email:jane.kim@segment.com/events?exclude=Order%20Completed"),
    );
    assert_eq!(excluded["data"].as_array().unwrap().len(), 4);
    let meta = ok(&mut c, &format!("{PROFILES}/user_id:u%2B1/metadata"));
    assert_eq!(
        meta["metadata"]["last_message_id"],
        ok(&mut c, &format!("{PROFILES}/user_id:u%2B1/events"))["data"][0]["message_id"]
    );
    // A trait change replaces the value.
    let r = post(
        &mut c,
        "/v1/identify",
        Some("wk_source_2"),
        &json!({ "userId": "u+1", "traits": { "plan": "team" } }).to_string(),
    );
    assert_eq!(r.status, 200);
    poll(&mut c, &format!("{PROFILES}/user_id:u%2B1/traits"), |j| {
        j["traits"]["plan"] == "team"
    });
    let v = ok(
        &mut c,
        &format!("{PROFILES}/user_id:u%2B1/traits?verbose=true&include=plan"),
    );
    assert_eq!(v["traits"]["plan"]["source_id"], "source_2");
}

/// Polls `path` until `done` holds (404s while the profile does not exist
/// yet); returns when it did.
fn poll(c: &mut Client, path: &str, done: impl Fn(&Json) -> bool) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(c, path);
        if r.status == 200 && done(&r.json()) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{path}: still {} {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn profile_api_traits_and_external_ids_on_postgres() {
    let (_env, srv) = case_study(Backend::Postgres, "");
    let mut c = srv.client();
    for id in IDENTIFIERS {
        let t = ok(&mut c, &format!("{PROFILES}/{id}/traits?verbose=true"));
        assert_eq!(t["traits"]["email"]["value"], "jane.kim@segment.com");
        assert_eq!(
            t["traits"]["email"]["updated_at"],
            "2022-05-02T14:01:47.000Z"
        );
        let all = walk(
            &mut c,
            &format!("{PROFILES}/{id}/external_ids?limit=2"),
            "data",
        );
        let got: Vec<&str> = all
            .iter()
            .map(|x| x["first_message_id"].as_str().unwrap())
            .collect();
        assert_eq!(got, ["event_1", "event_2", "event_3"]);
        let e = ok(&mut c, &format!("{PROFILES}/{id}/events?limit=2"));
        assert_eq!(e["data"][0]["message_id"], "event_4");
        assert_eq!(e["cursor"]["has_more"], json!(true));
        let m = ok(&mut c, &format!("{PROFILES}/{id}/metadata"));
        assert_eq!(m["metadata"]["first_message_id"], "event_1");
    }
    let r = get(&mut c, &format!("{PROFILES}/user_id:nobody/traits"));
    assert_eq!(refusal(&r), (404, "not_found".into()));
}

#[test]
fn profile_cli_with_and_without_a_running_server() {
    let (env, srv) = case_study(Backend::DuckDb, "");
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str(&format!("listen = \"{}\"\n", srv.addr()));
    std::fs::write(&env.config, text).unwrap();
    // Through the server (it holds the DuckDB file): the same answer by
    // each identifier of the merged profile.
    let mut answers = Vec::new();
    for id in [
        "anonymous_id:5285bc35-05ef-4d21",
        "anonymous_id:b50e18a5-1b8d-451c",
        "email:jane.kim@segment.com",
    ] {
        let out = env.ok(&[
            "profile",
            id,
            "--json",
            "--traits",
            "--external-ids",
            "--events",
        ]);
        answers.push(serde_json::from_str::<Json>(&out).unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let a = &answers[0];
    assert_eq!(a["segment_id"], "profile_1");
    assert_eq!(a["traits"], json!({ "email": "jane.kim@segment.com" }));
    assert_eq!(a["external_ids"].as_array().unwrap().len(), 3);
    assert_eq!(a["events"][0]["message_id"], "event_4");
    assert!(a.get("metadata").is_none());
    let text = env.ok(&["profile", "email:jane.kim@segment.com"]);
    assert!(text.starts_with("profile profile_1 (email:jane.kim@segment.com)\ntraits (1):\n  email\tjane.kim@segment.com\n"), "{text}");
    assert!(
        text.contains("external ids (3):") && text.contains("first_message_id\tevent_1"),
        "{text}"
    );
    // Exit 1: no such profile (as grep: no match); 2: an error.
    let out = env.run(&["profile", "user_id:nobody"]);
    assert_eq!(out.status.code(), Some(1));
    // Without a server: the warehouse read directly, the same answer.
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    let out = env.ok(&[
        "profile",
        "anonymous_id:b50e18a5-1b8d-451c",
        "--json",
        "--traits",
        "--external-ids",
        "--events",
    ]);
    assert_eq!(serde_json::from_str::<Json>(&out).unwrap(), answers[0]);
    let out = env.ok(&[
        "profile",
        "email:jane.kim@segment.com",
        "--events",
        "--limit",
        "1",
    ]);
    assert!(
        out.contains("events (1, newest first, more with --limit):"),
        "{out}"
    );
    assert_eq!(env.run(&["profile", "nocolon"]).status.code(), Some(2));
}
