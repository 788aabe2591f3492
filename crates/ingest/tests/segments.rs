//! The inbox across many small segments: rollover while the sync loop reads,
//! deletion of landed segments, and a restart that resumes from the
//! warehouse's checkpoint. A real server on loopback and a real DuckDB file.

use ps_ingest::client::Client;
use ps_ingest::inbox::list_segments;
use ps_ingest::{Options, Server, ServerConfig};
use ps_pipeline::{Source, SpaceConfig};
use std::time::Duration;

fn options(dir: &std::path::Path) -> Options {
    Options {
        server: ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.join("data"),
            sync_interval: Duration::from_millis(50),
            // A few requests per segment, so the writer rolls over often.
            segment_bytes: 2048,
            ..ServerConfig::default()
        },
        space: SpaceConfig {
            space: "seg".into(),
            sources: vec![Source {
                id: "s1".into(),
                name: "S1".into(),
                slug: "s1".into(),
                write_key: "wk".into(),
            }],
            identity: ps_identity::IdentityConfig::default(),
            compute: None,
        },
        warehouse_url: format!("duckdb://{}", dir.join("wh.duckdb").display()),
        log: None,
    }
}

fn send(server: &Server, from: usize, to: usize) {
    let mut c = Client::new(server.local_addr());
    let auth = ps_ingest::client::basic_auth("wk");
    for i in from..to {
        let body = format!(
            r#"{{"batch":[{{"type":"track","userId":"u{}","event":"E","messageId":"m{i}","properties":{{"pad":"{}"}}}}]}}"#,
            i % 7,
            "x".repeat(300)
        );
        let r = c
            .request(
                "POST",
                "/v1/batch",
                &[("Authorization", &auth)],
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

fn count(dir: &std::path::Path) -> i64 {
    let mut wh =
        ps_warehouse::open(&format!("duckdb://{}", dir.join("wh.duckdb").display())).unwrap();
    match wh
        .query("SELECT count(*), count(DISTINCT id) FROM seg.tracks")
        .unwrap()[0][..]
    {
        [ps_spec::Value::Int(n), ps_spec::Value::Int(d)] => {
            assert_eq!(n, d, "no event landed twice");
            n
        }
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn segments_roll_over_get_deleted_and_restarts_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(options(dir)).unwrap();
    send(&server, 0, 60);
    // Let a few syncs run while the writer is on later segments.
    std::thread::sleep(Duration::from_millis(300));
    send(&server, 60, 120);
    let summary = server.shutdown();
    assert_eq!(summary.events_left, 0);
    assert_eq!(count(dir), 120);
    let inbox = dir.join("data/inbox");
    let left = list_segments(&inbox).unwrap();
    assert!(left.len() <= 2, "landed segments are deleted: {left:?}");

    // A restart continues: new segments get new ids, nothing lands twice.
    let server = Server::start(options(dir)).unwrap();
    send(&server, 100, 150);
    server.shutdown();
    assert_eq!(count(dir), 150);
    let ids = list_segments(&inbox).unwrap();
    assert!(ids.iter().all(|&id| id > left[0]), "{ids:?} after {left:?}");
}
