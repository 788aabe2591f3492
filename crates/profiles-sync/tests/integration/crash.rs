//! `kill -9` everywhere (issue 22): during `materialize --full`, during a
//! privacy delete, and during `serve`'s start-up recovery, on DuckDB and
//! PostgreSQL. After each kill the command runs again to the end, and the
//! tables equal those of a run nobody killed. (`serve` killed while
//! ingesting is in `serve.rs`, a file `sync` killed in `incremental.rs`,
//! both on both warehouses.)
//!
//! The kills fall at random moments within the time a clean run of the
//! same command takes (the seed is printed). CI kills a few times per
//! scenario; `PS_CRASH_KILLS=100` gives the long form.

use crate::serve::{basic, Lcg, Serve};
use crate::util::{dump_url, gen_config, Backend, Env, BACKENDS};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills per scenario and warehouse: `PS_CRASH_KILLS`, 3 by default.
pub(crate) fn kills() -> usize {
    std::env::var("PS_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

pub(crate) fn seeded_rng(what: &str) -> Lcg {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("{what}: seed {seed}");
    Lcg(seed)
}

/// A generated stream of `events` events (3 sources), written to `dir`.
fn gen_file(dir: &Path, events: u64, seed: u64) -> PathBuf {
    let file = dir.join("events.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .args(["gen", "--events", &events.to_string(), "--seed"])
        .arg(seed.to_string())
        .args(["--sources", "3", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    file
}

fn spawn(env: &Env, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_profiles-sync"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `args` `kills()` times, each killed with SIGKILL at a random moment
/// within `window`. Returns how many kills landed while the command was
/// still running; a run that ended first must have exited with a code in
/// `ok`.
pub(crate) fn kill_runs(
    env: &Env,
    args: &[&str],
    window: Duration,
    rng: &mut Lcg,
    ok: &[i32],
) -> usize {
    let mut hit = 0;
    for _ in 0..kills() {
        let mut child = spawn(env, args);
        let at = Duration::from_micros(rng.next(window.as_micros().max(1) as u64));
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            hit += 1;
        }
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none_or(|c| ok.contains(&c)),
            "{args:?} failed: {status}"
        );
    }
    hit
}

/// Times a clean run of `args`, which must succeed.
fn timed(env: &Env, args: &[&str]) -> Duration {
    let start = Instant::now();
    env.ok(args);
    start.elapsed()
}

/// A config for generated streams on `backend`.
fn gen_env(backend: Backend) -> Env {
    Env::with_backend(&gen_config("duckdb://x.duckdb"), backend)
}

#[test]
fn kill_9_during_materialize_leaves_tables_a_rerun_completes() {
    let mut rng = seeded_rng("materialize crash");
    for backend in BACKENDS {
        let env = gen_env(backend);
        let file = gen_file(env.dir.path(), 4000, 9);
        env.ok(&["sync", file.to_str().unwrap()]);
        let want = env.dump("gen");
        let window = timed(&env, &["materialize", "--full"]);
        assert_eq!(env.dump("gen"), want, "a full rebuild changes nothing");
        let hit = kill_runs(&env, &["materialize", "--full"], window, &mut rng, &[0]);
        // Whatever moment the kill came, the tables are whole: the rebuild
        // is one transaction.
        assert_eq!(env.dump("gen"), want, "{backend:?} after the kills");
        env.ok(&["materialize", "--full"]);
        eprintln!("{backend:?}: {hit} kills during materialize (window {window:?})");
        assert_eq!(env.dump("gen"), want, "{backend:?}");
    }
}

/// The user id with the most tracks in space `gen`.
fn busiest_user(env: &Env) -> String {
    let rows = env.query(&format!(
        "SELECT user_id, count(*) AS n FROM {} WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY n DESC, user_id LIMIT 1",
        env.table("gen", "tracks")
    ));
    rows[0][0].clone()
}

/// Tables but `regulations` (whose times differ run to run), and the
/// regulations as (type, subject, status) rows.
fn split_regulations(
    mut dump: BTreeMap<String, Vec<String>>,
    env: &Env,
) -> (BTreeMap<String, Vec<String>>, Vec<Vec<String>>) {
    dump.retain(|k, _| !k.starts_with("regulations("));
    let regs = env.query(&format!(
        "SELECT type, subject, status FROM {} ORDER BY id",
        env.table("gen", "regulations")
    ));
    (dump, regs)
}

#[test]
fn kill_9_during_a_privacy_delete_then_rerun_equals_a_clean_delete() {
    let mut rng = seeded_rng("delete crash");
    for backend in BACKENDS {
        let reference = gen_env(backend);
        let file = gen_file(reference.dir.path(), 6000, 13);
        reference.ok(&["sync", file.to_str().unwrap()]);
        let subject = format!("user_id:{}", busiest_user(&reference));
        let window = timed(&reference, &["delete", &subject]);
        let (want, want_regs) = split_regulations(reference.dump("gen"), &reference);
        assert_eq!(want_regs.len(), 1);
        assert_eq!(want_regs[0][2], "finished");

        let env = gen_env(backend);
        env.ok(&["sync", file.to_str().unwrap()]);
        // A delete that committed before its kill leaves the next runs
        // nobody to find (exit 3).
        let hit = kill_runs(&env, &["delete", &subject], window, &mut rng, &[0, 3]);
        // The last run finds the subject (status 0) or, when a killed run
        // had already committed, finds nobody left (exit 3).
        let out = env.run(&["delete", &subject]);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{backend:?}: {hit} kills during delete (window {window:?})");
        let (got, regs) = split_regulations(env.dump("gen"), &env);
        assert_eq!(got, want, "{backend:?}");
        // One delete carried out; any after it found nobody.
        let finished: Vec<_> = regs.iter().filter(|r| r[2] == "finished").collect();
        assert_eq!(finished.len(), 1, "{regs:?}");
        assert!(
            regs.iter()
                .all(|r| r[1] == want_regs[0][1] && (r[2] == "finished" || r[2] == "not_found")),
            "{regs:?}"
        );
    }
}

#[test]
fn kill_9_during_serve_start_up_recovery_loses_nothing() {
    let mut rng = seeded_rng("recovery crash");
    let mut g = ps_gen::Generator::new(&ps_gen::GenConfig {
        events: 3000,
        seed: 17,
        sources: 3,
    });
    let mut events: Vec<Json> = Vec::new();
    while let Some(line) = g.next_line() {
        let mut v: Json = serde_json::from_str(line).unwrap();
        let o = v.as_object_mut().unwrap();
        // As in serve.rs's crash test: a file replay of these is the exact
        // reference.
        o.remove("sentAt");
        if let Some(Json::Object(ctx)) = o.get_mut("context") {
            ctx.remove("library");
        }
        events.push(v);
    }
    let sources: String = ps_gen::sources(3)
        .into_iter()
        .map(|(id, name, slug, wk)| {
            format!(
                "[[sources]]\nid = {id:?}\nname = {name:?}\nslug = {slug:?}\nwrite_key = {wk:?}\n"
            )
        })
        .collect();
    let cfg = |server: &str| {
        format!("space = \"crash\"\n[warehouse]\nurl = \"x\"\n{sources}[server]\n{server}\n")
    };
    let reference = Env::new(&cfg(""));
    let lines: Vec<String> = events.iter().map(Json::to_string).collect();
    let file = reference.write("events.jsonl", &lines.join("\n"));
    reference.ok(&["sync", file.to_str().unwrap()]);
    let want = reference.dump("crash");

    for backend in BACKENDS {
        // First life: every event acknowledged into the inbox, none landed
        // (the interval is an hour), then killed.
        let env = Env::with_backend(&cfg("sync_interval = \"1h\""), backend);
        let srv = Serve::start(&env);
        let mut c = srv.client();
        for chunk in events.chunks(100) {
            let body = serde_json::json!({ "batch": chunk }).to_string();
            let r = c
                .request(
                    "POST",
                    "/v1/batch",
                    &[("Authorization", &basic("wk_source_1"))],
                    body.as_bytes(),
                )
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
        }
        drop(srv); // SIGKILL
                   // Later lives start with the whole stream to recover and land in
                   // small transactions, and are killed during start-up and the first
                   // syncs.
        std::fs::write(
            &env.config,
            std::fs::read_to_string(&env.config).unwrap().replace(
                "sync_interval = \"1h\"",
                "sync_interval = \"50ms\"\nsync_max_events = 100",
            ),
        )
        .unwrap();
        let data = env.dir.path().join("data");
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ];
        // The window: a start-up, plus time for the first syncs.
        let start = Instant::now();
        let srv = Serve::start(&env);
        let window = start.elapsed() + Duration::from_millis(500);
        drop(srv);
        let hit = kill_runs(&env, &args, window, &mut rng, &[0]);
        let srv = Serve::start(&env);
        let (status, log) = srv.terminate();
        assert!(status.success(), "{log}");
        eprintln!("{backend:?}: {hit} kills during start-up (window {window:?})");
        assert_eq!(dump_url(&env.url(), "crash"), want, "{backend:?}");
    }
}
