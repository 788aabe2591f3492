//! Incremental sync (issue 8 / SPEC §6): any cut of a stream into batches and
//! runs gives the tables of one uninterrupted run, the incremental
//! materialization equals a full rebuild, and a `kill -9` mid-sync followed by
//! a re-run changes nothing.

use crate::util::{gen_config, Backend, Env, BACKENDS};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A generated stream and a config whose sources match it.
fn generated(env: &Env, events: u64, seed: u64) -> PathBuf {
    let out = env.dir.path().join(format!("gen-{seed}.jsonl"));
    let status = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .args([
            "gen",
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
            "--sources",
            "3",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    out
}

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

        // The same stream cut into many runs of small batches.
        let many = Env::with_backend(&config(), backend);
        for (i, part) in split(&many, &file, 4, seed).iter().enumerate() {
            let batch = [37, 200, 61, 1000][i % 4].to_string();
            many.ok(&["sync", "--batch-events", &batch, part.to_str().unwrap()]);
            // After every run the incremental tables equal a full rebuild.
            let incremental = many.dump("gen");
            many.ok(&["materialize", "--full"]);
            assert_eq!(
                many.dump("gen"),
                incremental,
                "{backend:?} seed {seed}: incremental != full after run {i}"
            );
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
                .args(["sync", "--batch-events", "250"])
                .arg(&file)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            env.ok(&["sync", "--batch-events", "250", file.to_str().unwrap()]);
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
