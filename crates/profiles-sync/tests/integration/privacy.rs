//! Privacy (SPEC §8): delete leaves no row of the user anywhere and nothing
//! of it comes back; suppression refuses events until lifted; every request
//! is recorded. On DuckDB and PostgreSQL.

use crate::util::{table_rows, Backend, Env, BACKENDS};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

fn ev(v: Json) -> String {
    let mut v = v;
    v["writeKey"] = json!("wk_source_1");
    v.to_string()
}

fn page(id: &str, ts: &str, anon: &str, user: Option<&str>) -> String {
    let mut v = json!({"type": "page", "messageId": id, "timestamp": ts, "anonymousId": anon,
        "name": "Home", "properties": {"path": "/"}});
    if let Some(u) = user {
        v["userId"] = json!(u);
    }
    ev(v)
}

fn identify(id: &str, ts: &str, anon: &str, user: &str, email: &str) -> String {
    ev(
        json!({"type": "identify", "messageId": id, "timestamp": ts, "anonymousId": anon,
        "userId": user, "traits": {"email": email, "plan": "pro"}}),
    )
}

fn order(id: &str, ts: &str, anon: &str) -> String {
    ev(
        json!({"type": "track", "event": "Order Completed", "messageId": id, "timestamp": ts,
        "anonymousId": anon, "properties": {"total": 12.5}}),
    )
}

/// Alice (two devices merged, an order, a refused event, a conflict that
/// names her profile), Bob and Carol.
fn history() -> Vec<String> {
    vec![
        page("m1", "2024-01-01T10:00:00Z", "a1", None),
        identify("m2", "2024-01-01T10:01:00Z", "a1", "u_alice", "alice@x.io"),
        order("m3", "2024-01-01T10:02:00Z", "a1"),
        page("m4", "2024-01-02T10:00:00Z", "a2", None),
        identify("m5", "2024-01-02T10:01:00Z", "a2", "u_alice", "alice@x.io"),
        identify("m6", "2024-01-03T10:00:00Z", "b1", "u_bob", "bob@x.io"),
        order("m7", "2024-01-03T10:01:00Z", "b1"),
        identify("m8", "2024-01-04T10:00:00Z", "c1", "u_carol", "carol@x.io"),
        // u_alice with Carol's email: the merge is refused (user_id limit),
        // the email demoted; the conflict names both profiles.
        ev(
            json!({"type": "identify", "messageId": "m9", "timestamp": "2024-01-05T10:00:00Z",
            "userId": "u_alice", "traits": {"email": "carol@x.io"}}),
        ),
        // Refused (no type), but it carries Alice's user id.
        ev(json!({"messageId": "m10", "userId": "u_alice", "timestamp": "2024-01-05T11:00:00Z"})),
    ]
}

/// Every user-facing table of the space: name → rows (cells as text),
/// load-time columns left out.
fn tables(env: &Env) -> BTreeMap<String, Vec<Vec<String>>> {
    table_rows(&env.url(), "case_study", |t| {
        !t.starts_with("_ps_") && t != "regulations"
    })
    .into_iter()
    .map(|(t, (_, rows))| (t, rows))
    .collect()
}

/// Whether a row holds one of `needles`: as a whole cell, as an item of a
/// comma list (`segment_ids`), or as a JSON string inside a payload.
fn mentions(row: &[String], needles: &[String]) -> bool {
    row.iter().any(|c| {
        needles
            .iter()
            .any(|n| c == n || c.split(',').any(|p| p == n) || c.contains(&format!("\"{n}\"")))
    })
}

fn segments_of(env: &Env, user: &str) -> Vec<String> {
    let rows = env.query(&format!(
        "SELECT g.segment_id FROM {} g JOIN {} m ON g.canonical_segment_id = m.canonical_segment_id \
         WHERE m.external_id_type = 'user_id' AND m.external_id_value = '{user}' ORDER BY 1",
        env.table("case_study", "id_graph"),
        env.table("case_study", "external_id_mapping")
    ));
    rows.into_iter().map(|r| r[0].clone()).collect()
}

fn regulations(env: &Env) -> Vec<Json> {
    let out = env.ok(&["regulations", "--json"]);
    serde_json::from_str::<Json>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn delete_removes_every_row_of_the_user_and_nothing_comes_back() {
    for backend in BACKENDS {
        delete_on(backend);
    }
}

fn delete_on(backend: Backend) {
    let env = Env::golden_on(backend);
    let file = env.write("history.jsonl", &history().join("\n"));
    env.ok(&["sync", file.to_str().unwrap()]);
    let alice = segments_of(&env, "u_alice");
    assert_eq!(alice.len(), 2, "{backend:?}: two devices merged: {alice:?}");
    let mut needles = alice.clone();
    for v in ["a1", "a2", "u_alice", "alice@x.io"] {
        needles.push(v.to_owned());
    }
    let before = tables(&env);
    // The test can fail: Alice is in every kind of table before.
    for t in [
        "pages",
        "identifies",
        "tracks",
        "order_completed",
        "id_graph_updates",
        "external_id_mapping_updates",
        "profile_traits_updates",
        "identity_conflicts",
        "rejected_events",
        "id_graph",
        "external_id_mapping",
        "profile_traits",
    ] {
        assert!(
            before[t].iter().any(|r| mentions(r, &needles)),
            "{backend:?}: {t} has no row of Alice before the delete"
        );
    }

    let out = env.ok(&["delete", "email:alice@x.io", "--json"]);
    let reg: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(reg["status"], "finished", "{out}");
    assert_eq!(reg["type"], "delete");
    let subject = reg["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("email:sha256:") && !subject.contains("alice"),
        "{subject}"
    );
    assert_eq!(reg["rows_deleted"]["order_completed"], 1, "{reg}");

    let after = tables(&env);
    let expected: BTreeMap<String, Vec<Vec<String>>> = before
        .iter()
        .map(|(t, rows)| {
            let kept = rows
                .iter()
                .filter(|r| !mentions(r, &needles))
                .cloned()
                .collect();
            (t.clone(), kept)
        })
        .collect();
    assert_eq!(after, expected, "{backend:?}: only Alice's rows are gone");
    // Nowhere in the schema, internal tables included, does Alice's data remain.
    let all = crate::util::dump_url(&env.url(), "case_study");
    for (t, rows) in &all {
        if t.starts_with("regulations(") {
            continue;
        }
        for r in rows {
            for n in ["u_alice", "alice@x.io", "\"a1\"", "\"a2\""] {
                assert!(!r.contains(n), "{backend:?}: {t} still holds {n}: {r}");
            }
        }
    }

    // A full rebuild gives the same tables: nothing comes back from the landed ones.
    env.ok(&["materialize", "--full"]);
    assert_eq!(tables(&env), after, "{backend:?}: rebuild after delete");
    // Replaying the old file brings nothing back either.
    env.ok(&["sync", file.to_str().unwrap()]);
    assert_eq!(tables(&env), after, "{backend:?}: replay after delete");

    // Alice coming back is a new profile with a new id.
    let back = env.write(
        "back.jsonl",
        &[
            page("n1", "2024-02-01T10:00:00Z", "a1", None),
            identify("n2", "2024-02-01T10:01:00Z", "a1", "u_alice", "alice@x.io"),
        ]
        .join("\n"),
    );
    env.ok(&["sync", back.to_str().unwrap()]);
    let new = segments_of(&env, "u_alice");
    assert_eq!(new.len(), 1, "{backend:?}: {new:?}");
    assert!(
        !alice.contains(&new[0]),
        "{backend:?}: id {} reused",
        new[0]
    );
    let bob = segments_of(&env, "u_bob");
    assert_eq!(bob.len(), 1);
    assert_ne!(new[0], bob[0]);

    // An unknown identifier: non-zero exit, a clear message, recorded.
    let out = env.run(&["delete", "user_id:nobody"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no profile has this user_id"), "{err}");
    let regs = regulations(&env);
    assert_eq!(regs.len(), 2, "{regs:?}");
    assert_eq!(regs[1]["status"], "not_found");
    assert!(!regs[1]["subject"].as_str().unwrap().contains("nobody"));
    let bad = env.run(&["delete", "alice"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("TYPE:VALUE"));
}

#[test]
fn suppression_refuses_files_events_until_lifted() {
    for backend in BACKENDS {
        suppress_on(backend);
    }
}

fn suppress_on(backend: Backend) {
    let env = Env::golden_on(backend);
    let file = env.write("history.jsonl", &history().join("\n"));
    env.ok(&["sync", file.to_str().unwrap()]);
    let out = env.ok(&["suppress", "user_id:u_bob"]);
    assert!(out.contains("finished"), "{out}");
    // b1 is Bob's device: suppressed with him. Carol's event lands.
    let next = env.write(
        "next.jsonl",
        &[
            page("s1", "2024-03-01T10:00:00Z", "b1", None),
            ev(
                json!({"type": "track", "event": "Clicked", "messageId": "s2",
                "timestamp": "2024-03-01T10:01:00Z", "userId": "u_bob"}),
            ),
            page("s3", "2024-03-01T10:02:00Z", "c1", None),
        ]
        .join("\n"),
    );
    let summary = env.ok(&["sync", next.to_str().unwrap(), "--json"]);
    let s: Json = serde_json::from_str(summary.trim()).unwrap();
    assert_eq!(s["refused"]["suppressed"], 2, "{summary}");
    assert!(!summary.contains("u_bob"), "{summary}");
    let all = crate::util::dump_url(&env.url(), "case_study");
    for (t, rows) in &all {
        for r in rows {
            assert!(
                !r.contains("|s1|")
                    && !r.contains("|s2|")
                    && !r.starts_with("s1|")
                    && !r.starts_with("s2|"),
                "{backend:?}: suppressed event stored in {t}: {r}"
            );
        }
    }
    let landed = env.query(&format!(
        "SELECT id FROM {} WHERE id IN ('s1', 's3')",
        env.table("case_study", "pages")
    ));
    assert_eq!(landed, vec![vec!["s3".to_owned()]]);

    // Unsuppress by any identifier it covered; new events land again.
    env.ok(&["unsuppress", "anonymous_id:b1"]);
    let later = env.write(
        "later.jsonl",
        &page("s4", "2024-03-02T10:00:00Z", "b1", None),
    );
    env.ok(&["sync", later.to_str().unwrap()]);
    let landed = env.query(&format!(
        "SELECT segment_id FROM {} WHERE id = 's4'",
        env.table("case_study", "pages")
    ));
    assert_eq!(landed, vec![segments_of(&env, "u_bob")]);
    let out = env.run(&["unsuppress", "user_id:u_bob"]);
    assert_eq!(out.status.code(), Some(3), "nothing left to lift");
    let kinds: Vec<(String, String)> = regulations(&env)
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("suppress", "finished"),
        ("unsuppress", "finished"),
        ("unsuppress", "not_found"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds, want);
}
