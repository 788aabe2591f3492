//! The seed's case study (SPEC §7): every expected table and column, exactly,
//! on every warehouse.

use crate::util::{assert_golden_tables, golden_dir, Backend, Env, BACKENDS};

fn check_golden(backend: Backend) {
    let env = Env::golden_on(backend);
    let input = golden_dir().join("case-study.jsonl");
    env.ok(&["sync", input.to_str().unwrap()]);
    assert_golden_tables(&env.url(), &format!("{backend:?}"));
}

#[test]
fn case_study_tables_are_exact_duckdb() {
    check_golden(Backend::DuckDb);
}

#[test]
fn case_study_tables_are_exact_postgres() {
    check_golden(Backend::Postgres);
}

#[test]
fn case_study_landed_columns() {
    for backend in BACKENDS {
        let env = Env::golden_on(backend);
        env.ok(&[
            "sync",
            golden_dir().join("case-study.jsonl").to_str().unwrap(),
        ]);
        let t = |name: &str| env.table("case_study", name);
        // seq strictly increasing in processing order across all landed tables.
        let seqs = env.query(&format!(
            "SELECT seq, triggering_event_id FROM (\
               SELECT seq, triggering_event_id FROM {} UNION ALL \
               SELECT seq, triggering_event_id FROM {} UNION ALL \
               SELECT seq, triggering_event_id FROM {}) u ORDER BY seq",
            t("id_graph_updates"),
            t("external_id_mapping_updates"),
            t("profile_traits_updates")
        ));
        let n: Vec<i64> = seqs.iter().map(|r| r[0].parse().unwrap()).collect();
        assert_eq!(
            n,
            (1..=n.len() as i64).collect::<Vec<_>>(),
            "seq is 1..n without gaps or repeats"
        );
        let events: Vec<&str> = seqs.iter().map(|r| r[1].as_str()).collect();
        let mut sorted = events.clone();
        sorted.sort();
        assert_eq!(events, sorted, "seq follows processing order");
        // external_id_hash is sha1(type || value).
        let h = env.query(&format!(
            "SELECT external_id_hash FROM {} WHERE external_id_type = 'email'",
            t("external_id_mapping_updates")
        ));
        assert_eq!(
            h,
            vec![vec!["bc269125e7a325f844980b80d7084928bbcaf304".to_owned()]]
        );
        // Provenance columns.
        let p = env.query(&format!(
            "SELECT triggering_event_source_id, triggering_event_source_name, triggering_event_source_slug \
             FROM {} WHERE triggering_event_id = 'event_4'",
            t("id_graph_updates")
        ));
        assert_eq!(
            p,
            vec![vec![
                "source_2".to_owned(),
                "Webinars".to_owned(),
                "webinars".to_owned()
            ]]
        );
    }
}

#[test]
fn duckdb_and_postgres_hold_the_same_rows() {
    let duck = Env::golden_on(Backend::DuckDb);
    let pg = Env::golden_on(Backend::Postgres);
    for env in [&duck, &pg] {
        env.ok(&[
            "sync",
            golden_dir().join("case-study.jsonl").to_str().unwrap(),
        ]);
    }
    assert_eq!(duck.dump("case_study"), pg.dump("case_study"));
}
