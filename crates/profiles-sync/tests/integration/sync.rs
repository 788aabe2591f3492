//! `sync` behaviour: continuation across runs, determinism, dedupe, refusals.

use crate::util::{golden_dir, Backend, Env, BACKENDS};

fn golden_lines() -> Vec<String> {
    std::fs::read_to_string(golden_dir().join("case-study.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn split_runs_equal_one_run() {
    for backend in BACKENDS {
        split_runs(backend);
    }
}

fn split_runs(backend: Backend) {
    let lines = golden_lines();
    let one = Env::golden_on(backend);
    let all = one.write("all.jsonl", &lines.join("\n"));
    one.ok(&["sync", all.to_str().unwrap()]);

    let two = Env::golden_on(backend);
    let a = two.write("a.jsonl", &lines[..2].join("\n"));
    let b = two.write("b.jsonl", &lines[2..].join("\n"));
    two.ok(&["sync", a.to_str().unwrap()]);
    two.ok(&["sync", b.to_str().unwrap()]);
    assert_eq!(one.dump("case_study"), two.dump("case_study"));
}

#[test]
fn deterministic_with_both_schemes() {
    for scheme in ["sequential", "use"] {
        let dumps: Vec<_> = (0..2)
            .map(|_| {
                let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml"))
                    .unwrap()
                    .replace(
                        "id_scheme = \"sequential\"",
                        &format!("id_scheme = \"{scheme}\""),
                    );
                let env = Env::new(&base);
                env.ok(&[
                    "sync",
                    golden_dir().join("case-study.jsonl").to_str().unwrap(),
                ]);
                env.dump("case_study")
            })
            .collect();
        assert_eq!(dumps[0], dumps[1], "scheme {scheme}");
        if scheme == "use" {
            let ids = dumps[0]
                .iter()
                .find(|(k, _)| k.starts_with("id_graph("))
                .unwrap()
                .1;
            assert!(
                ids.iter()
                    .all(|r| r.starts_with("use_") && r.split('|').next().unwrap().len() == 31),
                "{ids:?}"
            );
        }
    }
}

#[test]
fn duplicates_are_skipped_across_runs() {
    for backend in BACKENDS {
        duplicates_skipped(backend);
    }
}

fn duplicates_skipped(backend: Backend) {
    let env = Env::golden_on(backend);
    let input = golden_dir().join("case-study.jsonl");
    env.ok(&["sync", input.to_str().unwrap()]);
    let before = env.dump("case_study");
    let out = env.ok(&["sync", input.to_str().unwrap()]);
    assert!(out.contains("4 duplicates skipped"), "{out}");
    assert_eq!(env.dump("case_study"), before);
}

#[test]
fn bad_events_are_refused_and_neighbours_land() {
    let env = Env::golden();
    let lines = golden_lines();
    let text = [
        lines[0].as_str(),
        "{not json",
        r#"{"type":"track","anonymousId":"a1","writeKey":"wk_source_1"}"#,
        r#"{"type":"page","messageId":"x1","writeKey":"wk_source_1"}"#,
        r#"{"type":"page","messageId":"x2","anonymousId":"a2","writeKey":"nope"}"#,
        r#"{"type":"page","messageId":"x3","anonymousId":"a3"}"#,
        lines[1].as_str(),
    ]
    .join("\n");
    let f = env.write("mixed.jsonl", &text);
    let out = env.ok(&["sync", f.to_str().unwrap()]);
    for want in [
        "2 landed",
        "5 refused",
        "refused malformed_json: 1",
        "mixed.jsonl:2",
        "refused missing_event: 1",
        "mixed.jsonl:3",
        "refused missing_identity: 1",
        "refused unknown_write_key: 1",
        "refused no_source: 1",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let ids = env.query(&format!(
        "SELECT id FROM {} UNION ALL SELECT id FROM {} ORDER BY 1",
        env.table("case_study", "pages"),
        env.table("case_study", "identifies")
    ));
    assert_eq!(
        ids,
        vec![vec!["event_1".to_owned()], vec!["event_2".to_owned()]]
    );
    let rejected = env.query(&format!(
        "SELECT origin, reason_code FROM {} ORDER BY origin",
        env.table("case_study", "rejected_events")
    ));
    assert_eq!(rejected.len(), 5);
    assert!(rejected[0][0].ends_with("mixed.jsonl:2"));
    // Replaying the same file records nothing twice.
    let again = env.ok(&["sync", f.to_str().unwrap()]);
    assert!(again.contains("2 duplicates skipped"), "{again}");
    let n = env.query(&format!(
        "SELECT count(*) FROM {}",
        env.table("case_study", "rejected_events")
    ));
    assert_eq!(n, vec![vec!["5".to_owned()]]);
    // --source gives events without a write key a source.
    let f2 = env.write(
        "nokey.jsonl",
        r#"{"type":"page","messageId":"x4","anonymousId":"a4"}"#,
    );
    env.ok(&["sync", "--source", "source_2", f2.to_str().unwrap()]);
    let src = env.query(&format!(
        "SELECT event_source_id FROM {} WHERE id = 'x4'",
        env.table("case_study", "pages")
    ));
    assert_eq!(src, vec![vec!["source_2".to_owned()]]);
}

#[test]
fn bad_config_names_the_setting() {
    let env = Env::new("space = \"s\"\n[identity]\nid_scheme = \"weird\"\n[[sources]]\nid='a'\nname='A'\nslug='a'\nwrite_key='k'\n");
    let out = env.run(&[
        "sync",
        golden_dir().join("case-study.jsonl").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("id_scheme"), "{err}");
}

#[test]
fn input_formats_and_gzip() {
    use std::io::Write;
    let lines = golden_lines();
    let env = Env::golden();
    let array = format!("[{}]", lines[..2].join(","));
    let a = env.write("a.json", &array);
    let batch = format!(
        "{{\"batch\": [{}], \"writeKey\": \"wk_source_1\"}}",
        lines[2]
    );
    let b = env.write("b.json", &batch);
    let gz_path = env.dir.path().join("c.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(lines[3].as_bytes()).unwrap();
    gz.finish().unwrap();
    env.ok(&[
        "sync",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        gz_path.to_str().unwrap(),
    ]);
    let reference = Env::golden();
    reference.ok(&[
        "sync",
        golden_dir().join("case-study.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(env.dump("case_study"), reference.dump("case_study"));
}

#[test]
fn full_rebuild_equals_incremental() {
    for backend in BACKENDS {
        full_rebuild(backend);
    }
}

fn full_rebuild(backend: Backend) {
    let env = Env::golden_on(backend);
    let lines = golden_lines();
    for (i, l) in lines.iter().enumerate() {
        let f = env.write(&format!("{i}.jsonl"), l);
        env.ok(&["sync", f.to_str().unwrap()]);
    }
    let incremental = env.dump("case_study");
    env.ok(&["materialize", "--full"]);
    assert_eq!(env.dump("case_study"), incremental);
}

#[test]
fn dedupe_keys_survive_restarts_compaction_and_older_spaces() {
    for backend in BACKENDS {
        dedupe_keys(backend);
    }
}

/// `_ps_seen` holds every dedupe key: one row per commit, compacted at the
/// next start, and rebuilt from the event tables for a space that predates it.
fn dedupe_keys(backend: Backend) {
    use ps_pipeline::state::seen::COMPACT_ABOVE;
    use ps_pipeline::{Origin, Source, Space, SpaceConfig};
    use ps_spec::Arrival;

    let env = Env::golden_on(backend);
    let url = env.url();
    let cfg = SpaceConfig {
        space: "dedupe".into(),
        sources: vec![Source::from((
            "s1".to_owned(),
            "S1".to_owned(),
            "s1".to_owned(),
            "wk".to_owned(),
        ))],
        identity: Default::default(),
        compute: None,
    };
    let origin = Origin {
        place: "test",
        default_source: Some(0),
        batch_write_key: None,
    };
    let arrival = Arrival {
        received_at: None,
        batch_sent_at: None,
        load_time: 0,
    };
    let n = COMPACT_ABOVE + 20;
    let event = |i: usize| {
        serde_json::json!({"type": "track", "event": "Viewed", "messageId": format!("m{i}"),
            "anonymousId": format!("a{}", i % 7), "timestamp": "2026-01-01T00:00:00Z"})
    };
    let t0 = 1_767_225_600_000_000_i64;
    // Replays every event and the refused one in one commit: returns the
    // duplicates it counted.
    let replay = || {
        let mut wh = ps_warehouse::open(&url).unwrap();
        let mut space = Space::open(wh.as_mut(), cfg.clone()).unwrap();
        let mut b = space.begin_batch(t0 + 10_000_000);
        for i in 0..n {
            space
                .add_json(&mut b, Ok(event(i)), None, origin, arrival)
                .unwrap();
        }
        let _ = space.add(&mut b, Err("bad".into()), Some(b"{bad"), origin, arrival);
        space.commit(wh.as_mut(), b).unwrap().duplicates
    };
    {
        let mut wh = ps_warehouse::open(&url).unwrap();
        let mut space = Space::open(wh.as_mut(), cfg.clone()).unwrap();
        for i in 0..n {
            let mut b = space.begin_batch(t0 + i as i64);
            space
                .add_json(&mut b, Ok(event(i)), None, origin, arrival)
                .unwrap();
            if i == 3 {
                let refused = space.add(&mut b, Err("bad".into()), Some(b"{bad"), origin, arrival);
                assert!(refused.is_err());
            }
            space.commit(wh.as_mut(), b).unwrap();
        }
    }
    let seen_rows = || env.query("SELECT count(*) FROM dedupe._ps_seen")[0][0].clone();
    let rejected = || env.query("SELECT count(*) FROM dedupe.rejected_events")[0][0].clone();
    assert_eq!(seen_rows(), n.to_string(), "one row per commit");
    let mut keys = crate::util::seen_keys(&url, "dedupe");
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n + 1, "every event and the refused payload");
    let before = env.dump("dedupe");

    assert_eq!(replay(), n as u64);
    assert_eq!(seen_rows(), "1", "compacted at start-up");
    assert_eq!(rejected(), "1", "a refusal is recorded once");
    assert_eq!(env.dump("dedupe"), before);

    // A space from before `_ps_seen`: its keys come from the event tables,
    // and from `_ps_forgotten`, where such a space kept the keys of events
    // a privacy request deleted.
    let forgotten = format!("{:032x}", 0xdead_beef_u128);
    let mut wh = ps_warehouse::open(&url).unwrap();
    wh.execute("DROP TABLE dedupe._ps_seen").unwrap();
    wh.execute("DELETE FROM dedupe._ps_meta WHERE key = 'seen'")
        .unwrap();
    wh.execute("CREATE TABLE dedupe._ps_forgotten (k VARCHAR)")
        .unwrap();
    wh.execute(&format!(
        "INSERT INTO dedupe._ps_forgotten VALUES ('{forgotten}')"
    ))
    .unwrap();
    drop(wh);
    assert_eq!(replay(), n as u64);
    assert_eq!(rejected(), "1");
    let mut expected = before.clone();
    let keys = expected.get_mut("_ps_seen(keys)").unwrap();
    keys.push(forgotten.clone());
    keys.sort();
    expected.insert(
        format!("_ps_forgotten({})", ps_warehouse::quote("k")),
        vec![forgotten],
    );
    assert_eq!(env.dump("dedupe"), expected);
    assert_eq!(env.meta("dedupe", "seen").as_deref(), Some("1"));
}
