//! No log line or error message carries an identifier value or a trait
//! (issue 22). Every identifier and trait value of these runs holds the
//! marker [`MARK`]; the runs make things fail where values are closest to
//! the text of an error — a privacy delete refused by PostgreSQL (its
//! statement names the subject's identifiers, and PostgreSQL's DETAIL quotes
//! the row), the warehouse unreachable during a delete, a sync and a query,
//! a DuckDB file locked by another process — and then grep everything the
//! processes printed, and every HTTP answer, for the marker.
//!
//! The answers that are the requested data itself (a query's rows, a
//! profile's traits) are not checked: showing them is their purpose.

use crate::pg_fault::Cluster;
use crate::serve::{admin_post, post, Serve, ADMIN};
use crate::util::{golden_dir, Env};
use serde_json::{json, Value as Json};
use std::process::Output;
use std::time::{Duration, Instant};

/// In every identifier value and trait of these runs, and nowhere else.
const MARK: &str = "zqx7";

/// Events of one person (`n` tells people apart): an identify with traits,
/// tracks, an alias, and a refused track (no event name), which lands in
/// `rejected_events` with its payload.
fn person(n: usize) -> Vec<Json> {
    let user = format!("u-{MARK}-{n}");
    let anon = format!("a-{MARK}-{n}");
    vec![
        json!({"type": "identify", "userId": user, "anonymousId": anon, "messageId": format!("m-{n}-1"),
               "timestamp": "2024-05-01T12:00:00.000Z",
               "traits": {"email": format!("e-{MARK}-{n}@example.org"), "name": format!("Name {MARK} {n}"), "plan": format!("plan-{MARK}")}}),
        json!({"type": "track", "userId": user, "event": "Order Completed", "messageId": format!("m-{n}-2"),
               "timestamp": "2024-05-01T12:01:00.000Z", "properties": {"coupon": format!("c-{MARK}")}}),
        json!({"type": "alias", "previousId": format!("p-{MARK}-{n}"), "userId": user, "messageId": format!("m-{n}-3"),
               "timestamp": "2024-05-01T12:02:00.000Z"}),
        json!({"type": "track", "userId": user, "messageId": format!("m-{n}-4"),
               "timestamp": "2024-05-01T12:03:00.000Z"}),
    ]
}

/// Fails, naming `what`, when `text` holds the marker.
fn clean(what: &str, text: &str) {
    assert!(
        !text.to_lowercase().contains(MARK),
        "{what} carries an identifier or trait value:\n{text}"
    );
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A guard that makes every delete from `rejected_events` fail with a
/// foreign-key violation, whose DETAIL quotes the payload (the refused
/// event, identifiers and all).
fn guard_rejected_events(url: &str) {
    let mut wh = ps_warehouse::open(url).unwrap();
    for sql in [
        "CREATE UNIQUE INDEX IF NOT EXISTS rejected_payload ON case_study.rejected_events (payload)",
        "CREATE TABLE IF NOT EXISTS public.guard (p text REFERENCES case_study.rejected_events (payload))",
        "INSERT INTO public.guard SELECT payload FROM case_study.rejected_events",
    ] {
        wh.execute(sql).unwrap();
    }
}

fn unguard(url: &str) {
    let mut wh = ps_warehouse::open(url).unwrap();
    wh.execute("DROP TABLE public.guard").unwrap();
    wh.execute("DROP INDEX case_study.rejected_payload")
        .unwrap();
}

#[test]
fn no_log_line_or_error_carries_identifiers_on_postgres() {
    let cluster = Cluster::start();
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let env = Env::with_url(&base, &cluster.url);
    let lines: Vec<String> = (0..3)
        .flat_map(person)
        .map(|e| {
            let mut e = e;
            e["writeKey"] = json!("wk_source_1");
            e.to_string()
        })
        .collect();
    let file = env.write("events.jsonl", &lines.join("\n"));
    let file = file.to_str().unwrap();

    // A sync, logging everything down to debug.
    let out = env.run(&["--log", "debug", "sync", file]);
    assert!(out.status.success(), "{}", both(&out));
    let landed = env.run(&["query", "SELECT count(*) FROM case_study.rejected_events"]);
    assert!(both(&landed).contains('3'), "{}", both(&landed));
    clean("a debug-logged sync", &both(&out));

    // A delete that PostgreSQL refuses: a foreign key on rejected_events.
    guard_rejected_events(&cluster.url);
    let subject = format!("user_id:u-{MARK}-0");
    let out = env.run(&["--log", "debug", "delete", &subject]);
    let text = both(&out);
    assert!(
        !out.status.success(),
        "the guard refuses the delete:\n{text}"
    );
    assert!(
        text.contains("foreign key") && text.contains("DELETE FROM"),
        "the error still says what failed:\n{text}"
    );
    clean("a refused delete", &text);
    // Nothing of it committed: the person is still there.
    let out = env.run(&["profile", &subject]);
    assert!(out.status.success(), "{}", both(&out));
    unguard(&cluster.url);

    // The warehouse unreachable: a delete, a query naming a value, a sync.
    cluster.script("pause");
    for args in [
        vec!["delete", subject.as_str()],
        vec!["suppress", subject.as_str()],
        vec!["profile", subject.as_str()],
        vec![
            "query",
            "SELECT * FROM case_study.tracks WHERE user_id = 'u-zqx7-1'",
        ],
        vec!["sync", file],
    ] {
        let out = env.run(&[&["--log", "debug"], &args[..]].concat());
        assert!(!out.status.success(), "{args:?} with PostgreSQL down");
        clean(&format!("{args:?} with PostgreSQL down"), &both(&out));
    }
    cluster.script("resume");

    // A query whose statement fails names the statement, not its values.
    let out = env.run(&[
        "query",
        "SELECT nope FROM case_study.tracks WHERE user_id = 'u-zqx7-1'",
    ]);
    assert!(!out.status.success());
    clean("a failed query", &both(&out));

    // Requests and lookups that find nobody, and a delete that works.
    for cmd in ["delete", "suppress", "unsuppress", "profile"] {
        let out = env.run(&[cmd, &format!("user_id:u-{MARK}-nobody")]);
        assert!(!out.status.success(), "{cmd}: {}", both(&out));
        // A suppression's answer is the request as recorded, subject and
        // all (it is recorded in clear, to be lifted by value); its error
        // line is checked.
        let shown = if cmd == "delete" || cmd == "profile" {
            both(&out)
        } else {
            String::from_utf8_lossy(&out.stderr).into_owned()
        };
        clean(&format!("{cmd} of an unknown subject"), &shown);
    }
    let out = env.run(&["--log", "debug", "delete", &subject]);
    assert!(out.status.success(), "{}", both(&out));
    clean("a delete", &both(&out));
    // Deletes are recorded pseudonymized; suppressions in clear (by design:
    // they are lifted by value), so only the deletes' lines are checked.
    let out = env.run(&["regulations"]);
    let deletes: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains(" delete "))
        .collect();
    assert_eq!(deletes.len(), 2, "{}", both(&out));
    clean(
        "the deletes in the list of regulations",
        &deletes.join("\n"),
    );
}

#[test]
fn no_log_line_or_error_carries_identifiers_through_serve() {
    let cluster = Cluster::start();
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let env = Env::with_url(
        &format!("{base}\n[server]\nsync_interval = \"100ms\"\nadmin_token = \"{ADMIN}\"\n"),
        &cluster.url,
    );
    let srv = Serve::start_logging(&env, "debug");
    let mut c = srv.client();
    let mut answers = String::new();
    for n in 0..3 {
        let r = post(
            &mut c,
            "/v1/batch",
            Some("wk_source_1"),
            &json!({ "batch": person(n) }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        answers.push_str(&r.text());
    }
    let wait = |c: &mut _, what: &str, sql: &str, want: i64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, j) = admin_post(c, ADMIN, sql);
            if status == 200 && j["rows"][0][0].as_i64() == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {j}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(
        &mut c,
        "the refused events land",
        "SELECT count(*) FROM case_study.rejected_events",
        3,
    );

    // A privacy delete that PostgreSQL refuses.
    guard_rejected_events(&cluster.url);
    let regulate = |c: &mut ps_ingest::client::Client, kind: &str, n: usize| {
        let auth = format!("Bearer {ADMIN}");
        c.request(
            "POST",
            "/admin/regulations",
            &[("Authorization", &auth)],
            json!({"type": kind, "subject": format!("user_id:u-{MARK}-{n}")})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    };
    let r = regulate(&mut c, "delete", 0);
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("foreign key"), "{}", r.text());
    answers.push_str(&r.text());
    unguard(&cluster.url);
    // The sync thread reopened the space: the delete goes through now.
    let r = regulate(&mut c, "delete", 0);
    assert_eq!(r.status, 200, "{}", r.text());
    answers.push_str(&r.text());

    // The warehouse down: syncs fail and retry, a delete fails.
    cluster.script("pause");
    let r = post(
        &mut c,
        "/v1/batch",
        Some("wk_source_1"),
        &json!({ "batch": person(3) }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !srv.log().contains("sync failed") {
        assert!(Instant::now() < deadline, "no sync failed:\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = regulate(&mut c, "delete", 1);
    assert_ne!(r.status, 200, "{}", r.text());
    answers.push_str(&r.text());
    let (_, j) = admin_post(
        &mut c,
        ADMIN,
        "SELECT * FROM case_study.tracks WHERE user_id = 'u-zqx7-1'",
    );
    answers.push_str(&j.to_string());
    answers.push_str(&c.request("GET", "/health", &[], b"").unwrap().text());
    cluster.script("resume");
    wait(
        &mut c,
        "the events sent during the outage land",
        "SELECT count(*) FROM case_study.rejected_events",
        3,
    );
    answers.push_str(&c.request("GET", "/metrics", &[], b"").unwrap().text());
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("DEBUG"), "the log went down to debug");
    clean("serve's log", &log);
    clean("serve's answers", &answers);
}

#[test]
fn a_locked_duckdb_file_is_named_without_identifiers() {
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let env = Env::new(&format!("{base}\n[server]\nsync_interval = \"100ms\"\n"));
    let srv = Serve::start_logging(&env, "debug");
    let mut c = srv.client();
    let r = post(
        &mut c,
        "/v1/batch",
        Some("wk_source_1"),
        &json!({ "batch": person(0) }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Without an admin token the CLI opens the file itself, which serve holds.
    let out = env.run(&["delete", &format!("user_id:u-{MARK}-0")]);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("wh.duckdb"),
        "the error names the file:\n{text}"
    );
    clean("a delete on a locked file", &text);
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    clean("serve's log", &log);
}
