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

/// Event by event (batches of one), then in two runs: the values are
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
