//! The query path is read-only: `profiles-sync query` (with and without a
//! running server) and `POST /admin/query` refuse every statement that would
//! write, read or write files, attach databases or load extensions, on DuckDB
//! and PostgreSQL, and leave every table as it was; queries have a time and
//! a row limit, and a slow one does not stop the sync.

use crate::serve::{admin_post, Serve, ADMIN};
use crate::util::{golden_dir, Backend, Env, BACKENDS};
use ps_ingest::client::Client;
use serde_json::{json, Value as Json};
use std::time::{Duration, Instant};

/// The case study landed on `backend`, with `server` settings appended.
fn landed(backend: Backend, server: &str) -> Env {
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    let env = Env::with_backend(
        &format!("{base}\n[server]\nadmin_token = \"{ADMIN}\"\n{server}\n"),
        backend,
    );
    let events = golden_dir().join("case-study.jsonl");
    env.ok(&["sync", events.to_str().unwrap()]);
    env
}

/// Statements that must be refused, with a word the refusal must contain.
fn hostile(backend: Backend, dir: &std::path::Path) -> Vec<(String, &'static str)> {
    let secret = dir.join("secret.csv");
    std::fs::write(&secret, "a\n41\n").unwrap();
    let out = dir.join("written.csv");
    let secret = secret.display();
    let out = out.display();
    let mut list = vec![
        (format!("COPY (SELECT 42) TO '{out}'"), "COPY"),
        ("DROP SCHEMA case_study CASCADE".into(), "DROP"),
        ("DELETE FROM case_study.tracks".into(), "DELETE"),
        (
            "INSERT INTO case_study.tracks (id) VALUES ('x')".into(),
            "INSERT",
        ),
        ("UPDATE case_study.tracks SET event = 'x'".into(), "UPDATE"),
        (
            format!("ATTACH '{}' AS other", dir.join("other.db").display()),
            "ATTACH",
        ),
        ("INSTALL httpfs".into(), "INSTALL"),
        ("LOAD httpfs".into(), "LOAD"),
        (
            "SELECT 1; DROP SCHEMA case_study CASCADE".into(),
            "one statement",
        ),
        (
            "SELECT 1 AS a) AS x; DROP SCHEMA case_study CASCADE; SELECT (1".into(),
            "one statement",
        ),
        ("CREATE TABLE case_study.x AS SELECT 1".into(), "CREATE"),
    ];
    match backend {
        Backend::DuckDb => list.extend([
            (format!("SELECT * FROM read_csv('{secret}')"), "files"),
            ("SELECT * FROM read_text('/etc/hostname')".into(), "files"),
            ("SET memory_limit = '1MB'".into(), "SET"),
            ("CALL checkpoint()".into(), "CALL"),
        ]),
        Backend::Postgres => list.extend([
            (
                "SELECT pg_read_file('/etc/hostname')".into(),
                "pg_read_file",
            ),
            (
                "SELECT set_config('role', current_user, true), pg_read_file('/etc/hostname')"
                    .into(),
                "set_config",
            ),
            (
                "SELECT query_to_xml('select 1', true, true, '')".into(),
                "query_to_xml",
            ),
            ("SELECT lo_import('/etc/hostname')".into(), "lo"),
        ]),
    }
    list
}

/// Statements that reach the database and fail there: as a subquery, or
/// in a read-only transaction. Nothing must change either.
fn failing_inside(backend: Backend) -> Vec<&'static str> {
    match backend {
        Backend::DuckDb => vec![
            "WITH d AS (DELETE FROM case_study.tracks RETURNING *) SELECT * FROM d",
            "FROM (DELETE FROM case_study.tracks RETURNING *)",
        ],
        Backend::Postgres => {
            vec!["WITH d AS (DELETE FROM case_study.tracks RETURNING *) SELECT * FROM d"]
        }
    }
}

#[test]
fn query_refuses_writes_files_attach_and_extensions_and_nothing_changes() {
    for backend in BACKENDS {
        let env = landed(backend, "");
        let before = env.dump("case_study");
        for (sql, word) in hostile(backend, env.dir.path()) {
            let out = env.run(&["query", "--direct", &sql]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{backend:?}: `{sql}` ran");
            assert!(
                err.contains("refused") && err.contains(word),
                "{backend:?}: `{sql}` failed without saying it is refused ({word}):\n{err}"
            );
        }
        for sql in failing_inside(backend) {
            let out = env.run(&["query", "--direct", sql]);
            assert!(!out.status.success(), "{backend:?}: `{sql}` ran");
        }
        assert!(!env.dir.path().join("written.csv").exists());
        assert!(!env.dir.path().join("other.db").exists());
        assert_eq!(
            env.dump("case_study"),
            before,
            "{backend:?}: tables changed"
        );
        // Reads still work, with their column names.
        let out = env.ok(&[
            "query",
            "--direct",
            "SELECT count(*) AS n FROM case_study.id_graph_updates",
        ]);
        assert_eq!(out, "n\n3\n", "{backend:?}");
        if backend == Backend::Postgres {
            // The test server's user is a superuser: queries run without it.
            let out = env.ok(&["query", "--direct", "SELECT current_user AS u"]);
            assert_eq!(out, "u\npg_read_all_data\n");
        }
    }
}

#[test]
fn queries_have_a_row_limit_and_a_time_limit() {
    for backend in BACKENDS {
        let env = landed(backend, "query_max_rows = 10\nquery_timeout = \"1s\"");
        let many = match backend {
            Backend::DuckDb => "SELECT range AS i FROM range(100)",
            Backend::Postgres => "SELECT i FROM generate_series(0, 99) AS i",
        };
        let out = env.run(&["query", "--direct", "--json", many]);
        assert!(out.status.success());
        let j: Json = serde_json::from_slice(&out.stdout).unwrap();
        let want: Vec<Json> = (0..10).map(|i| json!([i])).collect();
        assert_eq!(
            j,
            json!({"columns": ["i"], "rows": want, "truncated": true}),
            "{backend:?}"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("query_max_rows"));

        let slow = match backend {
            Backend::DuckDb => "SELECT sum(range % 7) FROM range(1000000000000)",
            Backend::Postgres => "SELECT pg_sleep(60)",
        };
        let t0 = Instant::now();
        let out = env.run(&["query", "--direct", slow]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{backend:?}");
        assert!(err.contains("time limit"), "{backend:?}: {err}");
        assert!(t0.elapsed() < Duration::from_secs(30), "{backend:?}");
    }
}

fn count_profiles(c: &mut Client) -> i64 {
    let (status, j) = admin_post(c, ADMIN, "SELECT count(*) FROM case_study.id_graph_updates");
    assert_eq!(status, 200, "{j}");
    j["rows"][0][0].as_i64().unwrap()
}

#[test]
fn admin_query_refuses_with_400_counts_bad_tokens_and_a_slow_query_does_not_stop_landing() {
    for backend in BACKENDS {
        let env = landed(backend, "sync_interval = \"100ms\"\nquery_timeout = \"8s\"");
        let before = env.dump("case_study");
        let srv = Serve::start(&env);
        let mut c = srv.client();
        for (sql, word) in hostile(backend, env.dir.path()) {
            let (status, j) = admin_post(&mut c, ADMIN, &sql);
            assert_eq!(
                (status, j["code"].as_str()),
                (400, Some("query_refused")),
                "{backend:?}: {sql}: {j}"
            );
            assert!(j["message"].as_str().unwrap().contains(word), "{j}");
        }
        for sql in failing_inside(backend) {
            assert_eq!(admin_post(&mut c, ADMIN, sql).0, 400, "{backend:?}: {sql}");
        }
        for bad in ["wrong-token-1", ""] {
            assert_eq!(admin_post(&mut c, bad, "SELECT 1").0, 401);
        }
        let m = c.request("GET", "/metrics", &[], b"").unwrap().text();
        assert!(
            m.contains("profiles_sync_requests_refused_total{reason=\"bad_admin_token\"} 2"),
            "{m}"
        );

        // A slow query on one connection; meanwhile events land and other
        // queries answer.
        let slow = match backend {
            Backend::DuckDb => "SELECT sum(range % 7) FROM range(1000000000000)",
            Backend::Postgres => "SELECT pg_sleep(60)",
        };
        let slow_sql = slow;
        let mut c2 = srv.client();
        let t0 = Instant::now();
        let slow = std::thread::spawn(move || (admin_post(&mut c2, ADMIN, slow_sql), t0.elapsed()));
        std::thread::sleep(Duration::from_millis(300));
        let n0 = count_profiles(&mut c);
        let body = json!({"userId": "slow-u", "event": "Landed Meanwhile", "messageId": "slow-1"});
        let r = c
            .request(
                "POST",
                "/v1/track",
                &[
                    ("Content-Type", "application/json"),
                    (
                        "Authorization",
                        &ps_ingest::client::basic_auth("wk_source_1"),
                    ),
                ],
                body.to_string().as_bytes(),
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let deadline = t0 + Duration::from_secs(6);
        while count_profiles(&mut c) == n0 {
            assert!(
                Instant::now() < deadline,
                "{backend:?}: the event did not land while a query ran"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Two queries run at once; a third is told to come back.
        let mut c3 = srv.client();
        let second = std::thread::spawn(move || admin_post(&mut c3, ADMIN, slow_sql).0);
        std::thread::sleep(Duration::from_millis(300));
        let r = c
            .request(
                "POST",
                "/admin/query",
                &[("Authorization", &format!("Bearer {ADMIN}"))],
                b"SELECT 1",
            )
            .unwrap();
        assert_eq!(r.status, 429, "{backend:?}: {}", r.text());
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(
            !slow.is_finished(),
            "{backend:?}: the slow query ended early"
        );
        assert_eq!(second.join().unwrap(), 400);
        let ((status, j), took) = slow.join().unwrap();
        assert_eq!(
            (status, j["code"].as_str()),
            (400, Some("query_timeout")),
            "{backend:?}: {j}"
        );
        assert!(
            took >= Duration::from_secs(8) && took < Duration::from_secs(30),
            "{took:?}"
        );

        // Connections are reused between queries: after the refusals and
        // the timeouts above, queries still answer, still read one
        // snapshot, and are still refused a write.
        let n1 = count_profiles(&mut c);
        for _ in 0..20 {
            assert_eq!(count_profiles(&mut c), n1, "{backend:?}");
        }
        if backend == Backend::Postgres {
            let (status, j) = admin_post(
                &mut c,
                ADMIN,
                "SELECT current_setting('transaction_read_only')",
            );
            assert_eq!((status, &j["rows"][0][0]), (200, &json!("on")), "{j}");
        }
        for (sql, _) in hostile(backend, env.dir.path()) {
            assert_eq!(admin_post(&mut c, ADMIN, &sql).0, 400, "{backend:?}: {sql}");
        }

        let (status, log) = srv.terminate();
        assert!(status.success(), "{log}");
        assert!(!log.contains(ADMIN), "the admin token reached the log");
        // Every row that was there is still there: only the event sent above
        // (and what it derived) was added. The engine state is rewritten.
        let after = env.dump("case_study");
        for (table, rows) in before.iter().filter(|(t, _)| !t.starts_with("_ps_")) {
            let now = after
                .get(table)
                .unwrap_or_else(|| panic!("{backend:?}: {table} is gone"));
            for row in rows.iter().filter(|r| !r.is_empty()) {
                assert!(now.contains(row), "{backend:?}: a row of {table} is gone");
            }
        }
    }
}
