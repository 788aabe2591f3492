//! The seed's case study (SPEC §7): every expected table and column, exactly.

use crate::util::{golden_dir, read_csv, Env};

#[test]
fn case_study_tables_are_exact() {
    let env = Env::golden();
    let input = golden_dir().join("case-study.jsonl");
    env.ok(&["sync", input.to_str().unwrap()]);
    let mut checked = 0;
    for entry in std::fs::read_dir(golden_dir().join("expected")).unwrap() {
        let path = entry.unwrap().path();
        let table = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let (header, mut want) = read_csv(&path);
        let cols: Vec<String> = header.iter().map(|c| ps_warehouse::quote(c)).collect();
        let mut got = env.query(&format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            // Fully qualified: the catalog is the file name, the schema the space.
            format_args!("\"wh\".\"case_study\".{}", ps_warehouse::quote(&table))
        ));
        want.sort();
        got.sort();
        assert_eq!(got, want, "table {table} ({})", header.join(","));
        checked += 1;
    }
    assert_eq!(checked, 8, "every expected table was compared");
}

#[test]
fn case_study_landed_columns() {
    let env = Env::golden();
    env.ok(&["sync", golden_dir().join("case-study.jsonl").to_str().unwrap()]);
    // seq strictly increasing in processing order across all landed tables.
    let seqs = env.query(
        "SELECT seq, triggering_event_id FROM (\
           SELECT seq, triggering_event_id FROM wh.case_study.id_graph_updates UNION ALL \
           SELECT seq, triggering_event_id FROM wh.case_study.external_id_mapping_updates UNION ALL \
           SELECT seq, triggering_event_id FROM wh.case_study.profile_traits_updates) ORDER BY seq",
    );
    let n: Vec<i64> = seqs.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(n, (1..=n.len() as i64).collect::<Vec<_>>(), "seq is 1..n without gaps or repeats");
    let events: Vec<&str> = seqs.iter().map(|r| r[1].as_str()).collect();
    let mut sorted = events.clone();
    sorted.sort();
    assert_eq!(events, sorted, "seq follows processing order");
    // external_id_hash is sha1(type || value).
    let h = env.query(
        "SELECT external_id_hash FROM wh.case_study.external_id_mapping_updates WHERE external_id_type = 'email'",
    );
    assert_eq!(h, vec![vec!["bc269125e7a325f844980b80d7084928bbcaf304".to_owned()]]);
    // Provenance columns.
    let p = env.query(
        "SELECT triggering_event_source_id, triggering_event_source_name, triggering_event_source_slug \
         FROM wh.case_study.id_graph_updates WHERE triggering_event_id = 'event_4'",
    );
    assert_eq!(p, vec![vec!["source_2".to_owned(), "Webinars".to_owned(), "webinars".to_owned()]]);
}
