//! Computed traits and audiences (issue 19) through the real executable:
//! definitions checked at start, values and audience transitions landed.

use crate::util::{golden_dir, Backend, Env, BACKENDS};

/// The golden config with `extra` (definition sections) appended.
fn golden_with(extra: &str) -> Env {
    golden_on_with(Backend::DuckDb, extra)
}

fn golden_on_with(backend: Backend, extra: &str) -> Env {
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    Env::with_backend(&format!("{base}\n{extra}\n"), backend)
}

const DEFINITIONS: &str = r#"
[compute]
source_id = "ps-compute"

[[computed_traits]]
key = "orders"
kind = "count"
event = "Order Completed"

[[computed_traits]]
key = "lifetime_revenue"
kind = "sum"
event = "Order Completed"
property = "revenue"

[[computed_traits]]
key = "last_currency"
kind = "last"
event = "Order Completed"
property = "currency"

[[computed_traits]]
key = "currencies"
kind = "unique_count"
event = "Order Completed"
property = "currency"

[[audiences]]
key = "big_spenders"
all = [ { trait = "lifetime_revenue", op = "gte", value = 500 } ]

[[audiences]]
key = "single_currency"
all = [ { trait = "currencies", op = "equals", value = 1 } ]
"#;

/// The seed's case study with three orders: one from Jane's second device
/// before it merges into her profile, one after, one from a stranger.
fn scenario() -> Vec<String> {
    let g = std::fs::read_to_string(golden_dir().join("case-study.jsonl")).unwrap();
    let l: Vec<&str> = g.lines().collect();
    let order = |id: &str, anon: &str, at: &str, revenue: i64, currency: &str| {
        format!(
            r#"{{"type":"track","event":"Order Completed","messageId":"{id}","anonymousId":"{anon}","writeKey":"wk_source_1","timestamp":"{at}","properties":{{"revenue":{revenue},"currency":"{currency}"}}}}"#
        )
    };
    vec![
        l[0].to_owned(),
        l[1].to_owned(),
        order(
            "order_1",
            "b50e18a5-1b8d-451c",
            "2022-06-20T09:00:00Z",
            300,
            "USD",
        ),
        l[2].to_owned(),
        l[3].to_owned(),
        order(
            "order_2",
            "5285bc35-05ef-4d21",
            "2022-06-25T09:00:00Z",
            250,
            "EUR",
        ),
        order(
            "order_3",
            "c0ffee00-0000-4000",
            "2022-06-26T09:00:00Z",
            100,
            "USD",
        ),
    ]
}

fn rows(env: &Env, sql: &str) -> Vec<String> {
    env.query(sql).into_iter().map(|r| r.join("|")).collect()
}

/// Event by event (a commit each), then in two runs: the values are
/// exact after the merge (1 + 1 = 2 orders), and the transitions are one
/// row each, on every warehouse.
#[test]
fn compute_case_study_values_and_transitions_are_exact() {
    for backend in BACKENDS {
        let env = golden_on_with(backend, DEFINITIONS);
        let lines = scenario();
        let a = env.write("a.jsonl", &(lines[..4].join("\n") + "\n"));
        let b = env.write("b.jsonl", &(lines[4..].join("\n") + "\n"));
        for f in [&a, &b] {
            env.ok(&[
                "sync",
                f.to_str().unwrap(),
                "--batch-events",
                "1",
                "--commit-events",
                "1",
                "--as-of",
                "2022-07-01T00:00:00Z",
            ]);
        }
        let t = |n: &str| env.table("case_study", n);
        assert_eq!(
            rows(&env, &format!(
                "SELECT canonical_segment_id, merged_to, orders, lifetime_revenue, last_currency, currencies, big_spenders, single_currency FROM {} ORDER BY 1",
                t("profile_traits")
            )),
            vec![
                "profile_1||2|550.0|EUR|2|true|false",
                "profile_2|profile_1||||||",
                "profile_3||1|100.0|USD|1||",
            ],
            "{backend:?}"
        );
        assert_eq!(
            rows(&env, &format!(
                "SELECT segment_id, event_source_id, audience_key, big_spenders, \"timestamp\" FROM {} ORDER BY audience_key",
                t("audience_entered")
            )),
            vec![
                "profile_1|ps-compute|big_spenders|true|2022-07-01 00:00:00",
                "profile_1|ps-compute|single_currency||2022-07-01 00:00:00",
            ],
            "{backend:?}"
        );
        assert_eq!(
            rows(
                &env,
                &format!(
                    "SELECT segment_id, audience_key, single_currency FROM {}",
                    t("audience_exited")
                )
            ),
            vec!["profile_1|single_currency|false"],
            "{backend:?}"
        );
        // One run of the whole stream in one batch gives the same values.
        let one = golden_on_with(backend, DEFINITIONS);
        let all = one.write("all.jsonl", &(lines.join("\n") + "\n"));
        one.ok(&[
            "sync",
            all.to_str().unwrap(),
            "--as-of",
            "2022-07-01T00:00:00Z",
        ]);
        assert_eq!(
            rows(&one, &format!(
                "SELECT canonical_segment_id, orders, lifetime_revenue, last_currency, currencies, big_spenders FROM {} ORDER BY 1",
                one.table("case_study", "profile_traits")
            )),
            vec![
                "profile_1|2|550.0|EUR|2|true",
                "profile_2|||||",
                "profile_3|1|100.0|USD|1|",
            ],
            "{backend:?}"
        );
    }
}

#[test]
fn compute_bad_definitions_stop_start_up_naming_key_and_field() {
    for (bad, place) in [
        (
            "[[computed_traits]]\nkey = \"orders\"\nkind = \"cnt\"\nevent = \"Order Completed\"",
            "computed_traits.orders.kind",
        ),
        (
            "[[computed_traits]]\nkey = \"revenue\"\nkind = \"sum\"\nevent = \"Order Completed\"",
            "computed_traits.revenue.property",
        ),
        (
            "[[computed_traits]]\nkey = \"merged_to\"\nkind = \"count\"\nevent = \"*\"",
            "computed_traits.merged_to.key",
        ),
        (
            "[[audiences]]\nkey = \"a\"\nall = [ { audience = \"b\" } ]\n[[audiences]]\nkey = \"b\"\nall = [ { audience = \"a\" } ]",
            "would create a cycle",
        ),
        (
            "[[audiences]]\nkey = \"a\"\nall = [ { trait = \"x\", op = \"bigger\", value = 1 } ]",
            "audiences.a.all[0].op",
        ),
    ] {
        let env = golden_with(bad);
        let input = golden_dir().join("case-study.jsonl");
        let out = env.run(&["sync", input.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: started");
        assert!(err.contains(place), "{bad}: {err}");
    }
}

/// `serve` re-evaluates windows every `[compute] tick` with the wall clock:
/// a member of a windowed audience exits when its event ages out, with no
/// new event arriving.
#[test]
fn serve_ticks_members_out_of_a_window() {
    use crate::serve::{admin_post, post, Serve, ADMIN};
    use std::time::{Duration, Instant};
    let env = golden_with(&format!(
        r#"
[server]
sync_interval = "100ms"
admin_token = "{ADMIN}"

[profile_api]
tokens = ["profile-api-token-1"]

[compute]
tick = "1s"

[[audiences]]
key = "recent_buyer"
include_anonymous = true
all = [ {{ event = "Order Completed", within = "3s", count = {{ op = "gte", value = 1 }} }} ]
"#
    ));
    let srv = Serve::start(&env);
    let mut c = srv.client();
    // No timestamp: the server's receipt time is the event's time.
    let r = post(
        &mut c,
        "/v1/track",
        Some("wk_source_1"),
        r#"{"event":"Order Completed","anonymousId":"anon-tick","messageId":"tick-1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let count = |c: &mut ps_ingest::client::Client, name: &str| {
        let sql = format!("SELECT count(*) FROM case_study.tracks WHERE event = '{name}'");
        admin_post(c, ADMIN, &sql).1["rows"][0][0].as_i64()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&mut c, "audience_entered") != Some(1) {
        assert!(
            Instant::now() < deadline,
            "never entered: {}",
            admin_post(
                &mut c,
                ADMIN,
                "SELECT event, segment_id, timestamp FROM case_study.tracks"
            )
            .1
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let entered = Instant::now();
    // The Profile API lists the audience under `class=audience`, and no
    // custom trait there.
    let auth = ps_ingest::client::basic_auth("profile-api-token-1");
    let r = c
        .request(
            "GET",
            "/v1/spaces/case_study/collections/users/profiles/anonymous_id:anon-tick/traits?class=audience",
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["traits"],
        serde_json::json!({ "recent_buyer": true }),
        "{}",
        r.text()
    );
    while count(&mut c, "audience_exited") != Some(1) {
        assert!(
            Instant::now() < deadline + Duration::from_secs(10),
            "the member never exited as the order aged out"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        entered.elapsed() >= Duration::from_secs(1),
        "exited only once the 3 s window had passed"
    );
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
}

/// [`DEFINITIONS`] changed: `orders` gets a window, two traits read events
/// and a path the first definitions never read (pages, identifies,
/// `context.url`), and an audience is added.
const DEFINITIONS_CHANGED: &str = r#"
[compute]
source_id = "ps-compute"

[[computed_traits]]
key = "orders"
kind = "count"
event = "Order Completed"
within = "7d"

[[computed_traits]]
key = "lifetime_revenue"
kind = "sum"
event = "Order Completed"
property = "revenue"

[[computed_traits]]
key = "last_currency"
kind = "last"
event = "Order Completed"
property = "currency"

[[computed_traits]]
key = "currencies"
kind = "unique_count"
event = "Order Completed"
property = "currency"

[[computed_traits]]
key = "page_views"
kind = "count"
event = "Page Viewed"

[[computed_traits]]
key = "last_url"
kind = "last"
events = ["Page Viewed", "identify"]
property = "context.url"

[[audiences]]
key = "big_spenders"
all = [ { trait = "lifetime_revenue", op = "gte", value = 500 } ]

[[audiences]]
key = "single_currency"
all = [ { trait = "currencies", op = "equals", value = 1 } ]

[[audiences]]
key = "recent_buyer"
all = [ { event = "Order Completed", within = "7d" } ]
"#;

const AS_OF: &str = "2022-07-01T00:00:00Z";

/// What must not depend on when a definition appeared: every table, with
/// compute's own rows left out of the event tables (they are the history of
/// the definitions of their time), and `profile_traits` without its
/// provenance columns (the last change that touched a profile); columns in
/// name order (a key defined later gets its column later), empty ones left
/// out.
fn current_state(env: &Env) -> std::collections::BTreeMap<String, Vec<String>> {
    use crate::util::table_rows;
    let history = [
        "profile_traits_updates",
        "audience_entered",
        "audience_exited",
        "_ps_compute",
        "_ps_meta",
        "_ps_seen",
    ];
    let provenance: Vec<String> = ps_warehouse::contract::COMMON
        .iter()
        .map(|(n, _)| ps_warehouse::quote(n))
        .collect();
    table_rows(&env.url(), "case_study", |t| !history.contains(&t))
        .into_iter()
        .map(|(t, (cols, rows))| {
            let source = cols.iter().position(|c| c == "\"event_source_id\"");
            let rows: Vec<&Vec<String>> = rows
                .iter()
                .filter(|r| source.is_none_or(|s| r[s] != "ps-compute"))
                .collect();
            // Columns only compute's rows filled (the keys emitted
            // `identifies` carried) are left out with those rows.
            // `seq` numbers the rows of every landed profile table together
            // (the `_updates` tables' `id` is it), so compute's own rows
            // shift it.
            let numbered = |c: &str| c == "\"seq\"" || (t.ends_with("_updates") && c == "\"id\"");
            let mut keep: Vec<usize> = (0..cols.len())
                .filter(|i| t != "profile_traits" || !provenance.contains(&cols[*i]))
                .filter(|i| !numbered(&cols[*i]))
                .filter(|i| t == "profile_traits" || rows.iter().any(|r| !r[*i].is_empty()))
                .collect();
            keep.sort_by(|a, b| cols[*a].cmp(&cols[*b]));
            let mut lines: Vec<String> = rows
                .iter()
                .map(|r| {
                    keep.iter()
                        .map(|i| r[*i].as_str())
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
            lines.sort();
            let names: Vec<&str> = keep.iter().map(|i| cols[*i].as_str()).collect();
            (format!("{t}({})", names.join(",")), lines)
        })
        .collect()
}

fn set_definitions(env: &Env, from: &str, to: &str) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    assert!(text.contains(from));
    std::fs::write(&env.config, text.replace(from, to)).unwrap();
}

/// Definitions added or changed after events landed are backfilled from the
/// landed events at the next start: with more events, or with none, the
/// tables equal a sync of every event with the new definitions from the
/// start, and the new audience's members enter with cause
/// `definition_changed`. `compute --check` agrees, then sees a difference
/// once the stored state is tampered with, and `compute --full` repairs it.
#[test]
fn compute_definitions_changed_after_events_landed_equal_a_fresh_sync() {
    for backend in BACKENDS {
        let lines = scenario();
        let first = lines[..4].join("\n") + "\n";
        let rest = lines[4..].join("\n") + "\n";
        let sync = |env: &Env, name: &str, text: &str| {
            let f = env.write(name, text);
            env.ok(&[
                "sync",
                f.to_str().unwrap(),
                "--batch-events",
                "1",
                "--commit-events",
                "1",
                "--as-of",
                AS_OF,
            ]);
        };
        let fresh = golden_on_with(backend, DEFINITIONS_CHANGED);
        sync(&fresh, "a.jsonl", &first);
        sync(&fresh, "b.jsonl", &rest);
        let want = current_state(&fresh);
        assert_eq!(
            rows(&fresh, &format!(
                "SELECT canonical_segment_id, orders, page_views, last_url, recent_buyer FROM {} ORDER BY 1",
                fresh.table("case_study", "profile_traits")
            )),
            vec![
                "profile_1|1|2|twilio.com/events/webinars|true",
                "profile_2||||",
                "profile_3|1|||",
            ],
            "{backend:?}"
        );

        // More events after the change.
        let more = golden_on_with(backend, DEFINITIONS);
        sync(&more, "a.jsonl", &first);
        set_definitions(&more, DEFINITIONS, DEFINITIONS_CHANGED);
        sync(&more, "b.jsonl", &rest);
        assert_eq!(current_state(&more), want, "{backend:?}: more events");

        // No event after the change: the start alone re-evaluates.
        let none = golden_on_with(backend, DEFINITIONS);
        sync(&none, "a.jsonl", &first);
        sync(&none, "b.jsonl", &rest);
        set_definitions(&none, DEFINITIONS, DEFINITIONS_CHANGED);
        sync(&none, "empty.jsonl", "");
        assert_eq!(current_state(&none), want, "{backend:?}: no more events");
        assert_eq!(
            rows(&none, &format!(
                "SELECT segment_id, audience_key, reason FROM {} WHERE audience_key = 'recent_buyer'",
                none.table("case_study", "audience_entered")
            ))
            .iter()
            .map(|r| (r.split('|').take(2).collect::<Vec<_>>().join("|"), r.contains("\"cause\":\"definition_changed\"")))
            .collect::<Vec<_>>(),
            vec![("profile_1|recent_buyer".to_owned(), true)],
            "{backend:?}"
        );

        // --check agrees; a tampered state differs (exit 1); --full repairs.
        let out = none.ok(&["compute", "--check"]);
        assert!(out.contains("equal a recompute"), "{out}");
        let compute = none.table("case_study", "_ps_compute");
        let mut wh = ps_warehouse::open(&none.url()).unwrap();
        wh.execute(&format!(
            "UPDATE {compute} SET state = replace(state, '\"page_views\":2', '\"page_views\":7')"
        ))
        .unwrap();
        drop(wh);
        let out = none.run(&["compute", "--check"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("page_views: 1 profiles"), "{text}");
        none.ok(&["compute", "--full", "--as-of", AS_OF]);
        none.ok(&["compute", "--check"]);
        assert_eq!(current_state(&none), want, "{backend:?}: after --full");
    }
}

/// SQL traits run at the end of each sync: a known identifier's row sets
/// traits on its canonical profile (several rows of one profile: the last
/// by identifier value), an unknown one is counted, an audience reads the
/// trait, and a second sync with the same answer changes nothing. A bad
/// query is reported with its key and the exit code, on every warehouse.
#[test]
fn compute_sql_traits_set_traits_of_known_profiles() {
    for backend in BACKENDS {
        let sql = r#"
[[sql_traits]]
key = "order_stats"
query = "SELECT anonymous_id, count(*) AS order_rows, max(revenue) AS top_order FROM case_study.order_completed GROUP BY anonymous_id UNION ALL SELECT 'nobody', 1, 1"
every = "1h"

[[audiences]]
key = "top_buyer"
include_anonymous = true
all = [ { trait = "top_order", op = "gte", value = 250 } ]
"#;
        let env = golden_on_with(backend, &format!("{DEFINITIONS}\n{sql}"));
        let all = env.write("all.jsonl", &(scenario().join("\n") + "\n"));
        let out = env.ok(&["sync", all.to_str().unwrap(), "--as-of", AS_OF]);
        assert!(
            out.contains("sql_traits.order_stats: 4 rows, 3 matched, 1 unknown identifiers, 2 profiles changed"),
            "{out}"
        );
        let traits = || {
            rows(
                &env,
                &format!(
                "SELECT canonical_segment_id, order_rows, top_order, top_buyer FROM {} ORDER BY 1",
                env.table("case_study", "profile_traits")
            ),
            )
        };
        let want = vec!["profile_1|1|300|true", "profile_2|||", "profile_3|1|100|"];
        assert_eq!(traits(), want, "{backend:?}");
        let empty = env.write("empty.jsonl", "");
        let out = env.ok(&["sync", empty.to_str().unwrap(), "--as-of", AS_OF]);
        assert!(out.contains("0 profiles changed"), "{out}");
        assert_eq!(traits(), want, "{backend:?}");

        let bad = golden_on_with(
            backend,
            "[[sql_traits]]\nkey = \"broken\"\nquery = \"SELECT user_id FROM case_study.no_such_table\"\nevery = \"1h\"",
        );
        let out = bad.run(&["sync", all.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("sql_traits.broken:"), "{err}");
    }
}

/// `testdata/golden-compute`: the case study extended with orders, event by
/// event at a fixed `as_of`: every computed column of `profile_traits` and
/// each `Audience Entered` / `Audience Exited` row (its `reason` included)
/// byte-exact, on every warehouse.
#[test]
fn compute_golden_scenario_is_exact() {
    let dir = crate::util::repo_root().join("testdata/golden-compute");
    for backend in BACKENDS {
        let env = Env::with_backend(
            &std::fs::read_to_string(dir.join("profiles-sync.toml")).unwrap(),
            backend,
        );
        let events = dir.join("events.jsonl");
        env.ok(&[
            "sync",
            events.to_str().unwrap(),
            "--batch-events",
            "1",
            "--commit-events",
            "1",
            "--as-of",
            AS_OF,
        ]);
        let label = format!("golden-compute {backend:?}");
        let n = crate::util::assert_expected_tables(&env.url(), &dir.join("expected"), &label);
        assert_eq!(n, 3, "{label}: every expected table was compared");
    }
}

/// `serve` runs each SQL trait once its `every` has passed: a trait read
/// from the events landed so far reaches the profile with no sync command.
#[test]
fn serve_runs_sql_traits_every_interval() {
    use crate::serve::{admin_post, post, Serve, ADMIN};
    use std::time::{Duration, Instant};
    let env = golden_with(&format!(
        r#"
[server]
sync_interval = "100ms"
admin_token = "{ADMIN}"

[[sql_traits]]
key = "signups"
query = "SELECT anonymous_id, count(*) AS sign_ups FROM case_study.tracks WHERE event = 'signed_up' GROUP BY anonymous_id"
every = "1s"
"#
    ));
    let srv = Serve::start(&env);
    let mut c = srv.client();
    let r = post(
        &mut c,
        "/v1/track",
        Some("wk_source_1"),
        r#"{"event":"Signed Up","anonymousId":"anon-sql","messageId":"sql-1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, answer) = admin_post(
            &mut c,
            ADMIN,
            "SELECT sign_ups FROM case_study.profile_traits",
        );
        if answer["rows"][0][0].as_i64() == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "no SQL trait: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
}

/// Windowed definitions for `materialize --as-of`.
const WINDOWED: &str = r#"
[compute]
source_id = "ps-compute"

[[computed_traits]]
key = "orders_7d"
kind = "count"
event = "Order Completed"
within = "7d"

[[computed_traits]]
key = "lifetime_revenue"
kind = "sum"
event = "Order Completed"
property = "revenue"

[[audiences]]
key = "recent_buyer"
include_anonymous = true
all = [ { event = "Order Completed", within = "7d" } ]
"#;

/// `materialize --as-of T` brings computed values to T before refreshing:
/// only the profiles with something aging out by T are re-evaluated (the
/// expiry index), their changes land (snapshot, exited row with cause
/// `tick`), the values equal a sync of the same events at T, and `compute
/// --check` at T passes. On every warehouse.
#[test]
fn compute_materialize_as_of_ages_windows_like_a_sync_at_that_time() {
    for backend in BACKENDS {
        let env = golden_on_with(backend, WINDOWED);
        let lines = scenario();
        let all = env.write("all.jsonl", &(lines.join("\n") + "\n"));
        env.ok(&[
            "sync",
            all.to_str().unwrap(),
            "--as-of",
            "2022-06-30T00:00:00Z",
        ]);
        let t = |n: &str| env.table("case_study", n);
        let traits = |env: &Env| {
            rows(
                env,
                &format!(
                    "SELECT canonical_segment_id, orders_7d, lifetime_revenue, recent_buyer FROM {} WHERE merged_to IS NULL AND lifetime_revenue IS NOT NULL ORDER BY 1",
                    env.table("case_study", "profile_traits")
                ),
            )
        };
        assert_eq!(
            traits(&env),
            vec!["profile_1|1|550.0|true", "profile_3|1|100.0|true"],
            "{backend:?}"
        );
        // 2 July, noon: Jane's last order (25 June, 09:00) has left the
        // 7-day window, the stranger's (26 June) has not.
        let out = env.ok(&["materialize", "--as-of", "2022-07-02T12:00:00Z"]);
        assert!(
            out.contains("1 profiles re-evaluated, 1 changed"),
            "{backend:?}: {out}"
        );
        assert_eq!(
            traits(&env),
            vec!["profile_1|0|550.0|false", "profile_3|1|100.0|true"],
            "{backend:?}"
        );
        assert_eq!(
            rows(
                &env,
                &format!(
                    "SELECT segment_id, audience_key, recent_buyer, \"timestamp\", reason LIKE '%\"cause\":\"tick\"%' FROM {}",
                    t("audience_exited")
                )
            ),
            vec!["profile_1|recent_buyer|false|2022-07-02 12:00:00|true"],
            "{backend:?}"
        );
        // Nothing more ages out at the same time; the check compares there.
        let out = env.ok(&["materialize", "--as-of", "2022-07-02T12:00:00Z", "--full"]);
        assert!(
            out.contains("0 profiles re-evaluated, 0 changed"),
            "{backend:?}: {out}"
        );
        assert_eq!(
            traits(&env),
            vec!["profile_1|0|550.0|false", "profile_3|1|100.0|true"],
            "{backend:?}"
        );
        let out = env.ok(&["compute", "--check"]);
        assert!(out.contains("equal a recompute"), "{backend:?}: {out}");
        // The same events synced at that time give the same values (an
        // audience never entered is NULL, not false).
        let fresh = golden_on_with(backend, WINDOWED);
        let all = fresh.write("all.jsonl", &(lines.join("\n") + "\n"));
        fresh.ok(&[
            "sync",
            all.to_str().unwrap(),
            "--as-of",
            "2022-07-02T12:00:00Z",
        ]);
        assert_eq!(
            traits(&fresh),
            vec!["profile_1|0|550.0|", "profile_3|1|100.0|true"],
            "{backend:?}"
        );
        // Without definitions `--as-of` has nothing to evaluate.
        let plain = Env::with_backend(
            &std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap(),
            backend,
        );
        let out = plain.run(&["materialize", "--as-of", "2022-07-02T12:00:00Z"]);
        assert_eq!(out.status.code(), Some(2), "{backend:?}");
    }
}
