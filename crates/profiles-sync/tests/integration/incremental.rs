//! Incremental sync (issue 8 / SPEC §6): any cut of a stream into batches and
//! runs gives the tables of one uninterrupted run, the incremental
//! materialization equals a full rebuild, and a `kill -9` mid-sync followed by
//! a re-run changes nothing.

use crate::util::{gen_config, generated, Backend, Env, BACKENDS};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn config() -> String {
    gen_config("duckdb://x.duckdb")
}

/// Splits a file's lines into `parts` files at pseudo-random points.
fn split(env: &Env, file: &PathBuf, parts: usize, seed: u64) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut cuts: Vec<usize> = (1..parts)
        .map(|i| (i * lines.len() / parts + (seed as usize * 31 + i * 17) % 97) % lines.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in cuts.into_iter().chain([lines.len()]).enumerate() {
        if c <= start {
            continue;
        }
        out.push(env.write(
            &format!("part-{seed}-{i}.jsonl"),
            &lines[start..c].join("\n"),
        ));
        start = c;
    }
    out
}

/// The space `gen` is unchanged by `materialize --full`: its incremental
/// current-state tables are what a rebuild from the landed tables gives.
fn assert_incremental_equals_full(env: &Env, label: &str) {
    let incremental = env.dump("gen");
    env.ok(&["materialize", "--full"]);
    assert_eq!(env.dump("gen"), incremental, "{label}: incremental != full");
}

fn differential(backend: Backend) {
    for seed in [7u64, 11] {
        let one = Env::with_backend(&config(), backend);
        let file = generated(&one, 1500, seed);
        one.ok(&["sync", "--batch-events", "1000000", file.to_str().unwrap()]);
        let reference = one.dump("gen");
        assert!(
            reference.keys().any(|k| k.starts_with("order_completed(")),
            "the stream has per-event tables"
        );

        // The same stream cut into many runs of small batches, landed one
        // batch a transaction and several batches a transaction (whose
        // last batch alone writes the engine state).
        let many = Env::with_backend(&config(), backend);
        for (i, part) in split(&many, &file, 4, seed).iter().enumerate() {
            let batch = [37, 200, 61, 1000][i % 4].to_string();
            let commit = [100, 200, 150, 1000][i % 4].to_string();
            many.ok(&[
                "sync",
                "--batch-events",
                &batch,
                "--commit-events",
                &commit,
                part.to_str().unwrap(),
            ]);
            // After every run the incremental tables equal a full rebuild.
            assert_incremental_equals_full(&many, &format!("{backend:?} seed {seed} run {i}"));
        }
        assert_eq!(
            many.dump("gen"),
            reference,
            "{backend:?} seed {seed}: split runs != one run"
        );
    }
}

#[test]
fn batches_and_runs_equal_one_run_duckdb() {
    differential(Backend::DuckDb);
}

#[test]
fn batches_and_runs_equal_one_run_postgres() {
    differential(Backend::Postgres);
}

#[test]
fn kill_9_during_sync_then_rerun_equals_clean_run() {
    // Transactions of four batches: a kill lands between batches of an open
    // transaction as often as during a commit.
    for backend in BACKENDS {
        let clean = Env::with_backend(&config(), backend);
        let file = generated(&clean, 6000, 3);
        clean.ok(&["sync", "--batch-events", "250", file.to_str().unwrap()]);
        let want = clean.dump("gen");
        for (attempt, delay_ms) in [150u64, 600, 1400].into_iter().enumerate() {
            let env = Env::with_backend(&config(), backend);
            let mut child = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
                .arg("--config")
                .arg(&env.config)
                .args(["sync", "--batch-events", "250", "--commit-events", "1000"])
                .arg(&file)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            env.ok(&[
                "sync",
                "--batch-events",
                "250",
                "--commit-events",
                "1000",
                file.to_str().unwrap(),
            ]);
            assert_eq!(
                env.dump("gen"),
                want,
                "{backend:?}: killed after {delay_ms} ms (attempt {attempt})"
            );
        }
        // The long form (`PS_CRASH_KILLS=N`): N kills in a row on one
        // warehouse, each at a random moment of a clean run's time, then a
        // run to the end.
        if std::env::var("PS_CRASH_KILLS").is_ok() {
            let env = Env::with_backend(&config(), backend);
            let args = ["sync", "--batch-events", "250", file.to_str().unwrap()];
            let mut rng = crate::crash::seeded_rng("sync crash");
            let start = std::time::Instant::now();
            let _ = Env::with_backend(&config(), backend).ok(&args);
            let hit = crate::crash::kill_runs(&env, &args, start.elapsed(), &mut rng, &[0]);
            env.ok(&args);
            eprintln!("{backend:?}: {hit} kills during sync");
            assert_eq!(env.dump("gen"), want, "{backend:?} after {hit} kills");
        }
    }
}

/// The engine state is a log of layers (state version 3): small commits
/// each append the profiles they changed; a space still in version 2
/// (one complete set of chunks) migrates on open and goes on exactly as an
/// uninterrupted run; a privacy deletion compacts the log to one layer in
/// which the deleted profile's identifiers are gone.
#[test]
fn engine_state_log_layers_migration_and_compaction() {
    let one = Env::with_backend(&config(), Backend::DuckDb);
    let file = generated(&one, 1500, 5);
    one.ok(&["sync", file.to_str().unwrap()]);
    let want = one.dump("gen");

    let env = Env::with_backend(&config(), Backend::DuckDb);
    let parts = split(&env, &file, 3, 5);
    let small = |part: &PathBuf| {
        env.ok(&[
            "sync",
            "--batch-events",
            "40",
            "--commit-events",
            "40",
            part.to_str().unwrap(),
        ]);
    };
    let layers = |env: &Env| -> u64 {
        env.query("SELECT count(DISTINCT chunk) FROM gen._ps_profiles")[0][0]
            .parse()
            .unwrap()
    };
    small(&parts[0]);
    assert!(layers(&env) > 5, "small commits append layers");

    // Rewrite the state as version 2 had it: chunks covering every profile
    // once, numbered, and no log keys in the meta.
    {
        let records_before = crate::util::engine_records(&env.url(), "gen");
        let mut wh = ps_warehouse::open(&env.url()).unwrap();
        let log: Vec<(i64, Vec<u8>)> = wh
            .query("SELECT chunk, state FROM gen._ps_profiles")
            .unwrap()
            .into_iter()
            .map(|r| ps_pipeline::state::decode_row(r).unwrap())
            .collect();
        let refs: Vec<(i64, &[u8])> = log.iter().map(|(l, b)| (*l, b.as_slice())).collect();
        let cover = ps_identity::newest_cover(&refs).unwrap();
        wh.execute("BEGIN TRANSACTION; DELETE FROM gen._ps_profiles")
            .unwrap();
        for (i, c) in cover.iter().enumerate() {
            wh.execute(&format!(
                "INSERT INTO gen._ps_profiles VALUES ({}, '{}')",
                i + 7,
                ps_pipeline::state::base64::encode(c)
            ))
            .unwrap();
        }
        wh.execute(
            "UPDATE gen._ps_meta SET value = '2' WHERE key = 'version'; \
             DELETE FROM gen._ps_meta WHERE key IN ('state_layer', 'state_log'); COMMIT",
        )
        .unwrap();
        drop(wh);
        assert_eq!(
            crate::util::engine_records(&env.url(), "gen"),
            records_before
        );
    }
    small(&parts[1]);
    assert_eq!(env.meta("gen", "version").as_deref(), Some("3"));
    small(&parts[2]);
    assert_eq!(env.dump("gen"), want, "migrated, then small commits");

    // A deletion leaves one layer, without the subject.
    let user = env.query(
        "SELECT external_id_value FROM gen.external_id_mapping \
         WHERE external_id_type = 'user_id' ORDER BY 1 LIMIT 1",
    )[0][0]
        .clone();
    assert!(layers(&env) > 1);
    assert!(crate::util::engine_records(&env.url(), "gen")
        .iter()
        .any(|r| r.contains(&format!("{user:?}"))));
    env.ok(&["delete", &format!("user_id:{user}")]);
    assert_eq!(layers(&env), 1, "the deletion compacted the log");
    let state: Vec<String> = env
        .query("SELECT state FROM gen._ps_profiles")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let records = crate::util::engine_records(&env.url(), "gen");
    assert!(!records.iter().any(|r| r.contains(&format!("{user:?}"))));
    assert!(!state.is_empty());
}

/// Merges chained inside one transaction (a profile merged into another
/// that is itself merged away before the commit) and across runs, with
/// identifiers attached before and after each merge: the incremental
/// tables equal a full rebuild after every run. The refresh re-points
/// identifiers by their old canonical id (`ps_materialize::Scope::Since`),
/// so every hop must land where a rebuild resolves it.
#[test]
fn merge_chains_within_and_across_transactions_equal_a_full_rebuild() {
    let event = |i: usize, body: serde_json::Value| {
        let mut e = body;
        e["messageId"] = format!("m{i}").into();
        e["writeKey"] = "wk_source_1".into();
        e["timestamp"] = format!("2026-01-01T00:{:02}:00Z", i % 60).into();
        e.to_string()
    };
    // An identify carrying an email (a trait) or a user id, and a plan.
    let email = |anon: &str, email: &str, plan: &str| {
        serde_json::json!({"type": "identify", "anonymousId": anon,
            "traits": {"email": email, "plan": plan}})
    };
    let user = |anon: &str, user: &str, plan: &str| {
        serde_json::json!({"type": "identify", "anonymousId": anon, "userId": user,
            "traits": {"plan": plan}})
    };
    let track =
        |anon: &str| serde_json::json!({"type": "track", "event": "Viewed", "anonymousId": anon});
    let runs: Vec<Vec<serde_json::Value>> = vec![
        vec![
            track("a1"),
            track("a2"),
            track("a3"),
            track("a4"),
            email("a1", "e1@x.io", "free"),
        ],
        vec![
            email("a2", "e1@x.io", "pro"),
            email("a3", "e1@x.io", "pro"),
            track("a7"),
            email("a4", "e1@x.io", "team"),
            user("a1", "u1", "team"),
            email("a7", "e7@x.io", "free"),
        ],
        vec![
            email("a6", "e6@x.io", "free"),
            user("a7", "u1", "pro"),
            user("a6", "u1", "ent"),
            track("a4"),
        ],
    ];
    for backend in BACKENDS {
        let env = Env::with_backend(&config(), backend);
        let mut i = 0;
        for (r, run) in runs.iter().enumerate() {
            let lines: Vec<String> = run
                .iter()
                .map(|e| {
                    i += 1;
                    event(i, e.clone())
                })
                .collect();
            let f = env.write(&format!("run-{r}.jsonl"), &lines.join("\n"));
            env.ok(&["sync", f.to_str().unwrap()]);
            assert_incremental_equals_full(&env, &format!("{backend:?} run {r}"));
        }
        let merged = env.dump("gen");
        let graph = merged
            .iter()
            .find(|(k, _)| k.starts_with("id_graph("))
            .map(|(_, rows)| rows.clone())
            .unwrap();
        let canonical: std::collections::BTreeSet<&str> =
            graph.iter().filter_map(|r| r.split('|').nth(1)).collect();
        assert!(
            canonical.len() < graph.len(),
            "{backend:?}: the runs merged profiles: {graph:?}"
        );
    }
}
