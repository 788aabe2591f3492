//! `profiles-sync bench --incremental` (issue 8): builds a space of N
//! profiles, reports recovery, a 1k-event sync and a full rebuild, and reuses
//! the space on a second run. Also `bench --pairs` (issue 19's bar).

use crate::util::{pg_fresh_database, Backend, BACKENDS};
use serde_json::Value;
use std::process::Command;

const N: u64 = 2000;

fn bench(url: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .args(["bench", "--incremental", "--profiles", &N.to_string()])
        .args(["--warehouse", url, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench --incremental failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn count(url: &str, sql: &str) -> u64 {
    let mut wh = ps_warehouse::open(url).unwrap();
    match wh.query(sql).unwrap()[0][0] {
        ps_spec::Value::Int(n) => n as u64,
        ref v => panic!("{sql}: {v:?}"),
    }
}

fn secs(v: &Value, path: &str) -> f64 {
    let x = v
        .pointer(path)
        .unwrap_or_else(|| panic!("{path} missing in {v:#}"));
    let s = x.as_f64().unwrap_or_else(|| panic!("{path} = {x}"));
    assert!(s >= 0.0, "{path} = {s}");
    s
}

#[test]
fn bench_incremental_builds_measures_and_reuses() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::DuckDb => format!("duckdb://{}", dir.path().join("b.duckdb").display()),
            Backend::Postgres => pg_fresh_database(),
        };
        let r = bench(&url);
        assert_eq!(r["space"], "bench_incr_2000");
        assert_eq!(r["profiles"], N);
        assert_eq!(r["reused"], false, "{r:#}");
        assert_eq!(r["profiles_before_sync"], N, "{r:#}");
        assert_eq!(r["build_events"], N + N / 20);
        let total = secs(&r, "/recovery/seconds");
        let parts: f64 = [
            "/recovery/fetch_state_seconds",
            "/recovery/decode_state_seconds",
            "/recovery/restore_seconds",
            "/recovery/dedupe_ids_seconds",
            "/recovery/other_seconds",
        ]
        .iter()
        .map(|p| secs(&r, p))
        .sum();
        assert!((parts - total).abs() < 1e-3, "{r:#}");
        assert_eq!(r["recovery"]["target_seconds"], 3.0);
        secs(&r, "/recovery/cpu_seconds");
        assert_eq!(r["sync"]["events"], 1000);
        secs(&r, "/sync/seconds");
        secs(&r, "/sync/landing_seconds");
        secs(&r, "/sync/materialize_seconds");
        let full = secs(&r, "/full_rebuild_seconds");
        let ratio = secs(&r, "/sync_to_full_ratio");
        assert!((ratio - secs(&r, "/sync/seconds") / full).abs() < 1e-9);
        assert_eq!(r["sync_ratio_target"], 0.05);
        assert!(r["sync_ratio_met"].is_boolean() && r["recovery"]["met"].is_boolean());
        // 400 new profiles and 100 merges of existing ones.
        assert_eq!(r["sync"]["profiles_created"], 400, "{r:#}");
        assert_eq!(r["sync"]["merges"], 100, "{r:#}");
        let after = r["profiles_after_sync"].as_u64().unwrap();
        assert_eq!(after, N + 400);

        // The space really holds them: one id_graph row per profile ever
        // created, built with N profiles.
        let d = ps_warehouse::open(&url).unwrap().dialect().clone();
        let t = |name: &str| d.table("bench_incr_2000", name);
        assert_eq!(
            count(&url, &format!("SELECT count(*) FROM {}", t("id_graph"))),
            after
        );
        assert_eq!(
            count(
                &url,
                &format!("SELECT count(*) FROM {}", t("profile_traits"))
            ),
            after
        );
        // Build merges (N / 20) and the sync's: the merged-away profiles.
        assert_eq!(
            count(
                &url,
                &format!(
                    "SELECT count(*) FROM {} WHERE merged_to IS NOT NULL",
                    t("profile_traits")
                )
            ),
            N / 20 + 100
        );

        // A second run reuses the space (no build) and syncs fresh events.
        let r2 = bench(&url);
        assert_eq!(r2["reused"], true, "{r2:#}");
        assert!(r2["build_seconds"].is_null());
        assert_eq!(r2["profiles_before_sync"], after);
        assert_eq!(r2["sync"]["profiles_created"], 400, "{r2:#}");
        assert_eq!(r2["profiles_after_sync"], after + 400);
    }
}

/// `bench --pairs N --definitions FILE` (issue 19's bar): N pairs of runs
/// without and with the definitions, each pair's ratio of events/s and
/// their median; refused without `--definitions` or with `--warehouse`.
#[test]
fn bench_pairs_compare_runs_with_and_without_definitions() {
    let defs = crate::util::repo_root().join("examples/computed-traits.toml");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
            .args(["bench", "--events", "1000", "--pairs", "3", "--json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--definitions", defs.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "bench --pairs failed\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let pairs = v["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 3, "{v:#}");
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|p| {
            let (without, with) = (secs(p, "/without_seconds"), secs(p, "/with_seconds"));
            assert!(without > 0.0 && with > 0.0, "{p}");
            assert!((secs(p, "/ratio") - without / with).abs() < 1e-9, "{p}");
            without / with
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    // serde_json parses floats to within an ulp, not exactly.
    assert!(
        (secs(&v, "/median_ratio") - ratios[1]).abs() < 1e-9,
        "{v:#}"
    );

    for (extra, says) in [
        (vec![], "--definitions"),
        (
            vec![
                "--definitions",
                defs.to_str().unwrap(),
                "--warehouse",
                "duckdb:///nonexistent/x.duckdb",
            ],
            "--warehouse",
        ),
    ] {
        let out = run(&extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

/// `bench` on DuckDB prints DuckDB's own floors beside the run, one of
/// them re-writing the run's output in as many transactions as the run
/// committed (`--commit-events`).
#[test]
fn bench_floors_rewrite_in_the_runs_transactions() {
    let out = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .args(["bench", "--events", "3000", "--json"])
        .args(["--batch-events", "500", "--commit-events", "1000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(v["events"], 3000, "{v:#}");
    assert_eq!(v["duckdb"]["transactions"], 3, "{v:#}");
    let e2e = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "end to end")
        .expect("end to end stage");
    let total = secs(e2e, "/seconds");
    for floor in ["rewrite", "rewrite_in_transactions"] {
        let f = secs(&v, &format!("/duckdb/{floor}_seconds"));
        assert!(f > 0.0, "{v:#}");
        let ratio = secs(&v, &format!("/duckdb/ratio_to_{floor}"));
        assert!((ratio - total / f).abs() < 1e-6 * ratio, "{floor}: {v:#}");
    }
}
