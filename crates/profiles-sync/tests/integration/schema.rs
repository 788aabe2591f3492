//! Event tables under Segment's warehouse schema rules (SPEC §5): flattening,
//! naming, typing, evolution across syncs, per-event tables.

use crate::util::{Backend, Env, BACKENDS};

const CONFIG: &str = r#"
space = "shop"
[warehouse]
url = "duckdb://x.duckdb"
[identity]
id_scheme = "sequential"
[[sources]]
id = "web"
name = "Web"
slug = "web"
write_key = "wk"
"#;

/// `(column, type)` of a table, in table order.
fn columns(env: &Env, table: &str) -> Vec<(String, String)> {
    let mut wh = ps_warehouse::open(&env.url()).unwrap();
    let t = wh
        .describe("shop")
        .unwrap()
        .into_iter()
        .find(|t| t.name == table)
        .unwrap_or_else(|| panic!("no table {table}"));
    t.columns
        .into_iter()
        .map(|c| (c.name, c.ty.to_string()))
        .collect()
}

fn has(cols: &[(String, String)], name: &str, ty: &str) -> bool {
    cols.iter().any(|(n, t)| n == name && t == ty)
}

fn sync(env: &Env, name: &str, lines: &[&str]) -> String {
    let f = env.write(name, &lines.join("\n"));
    env.ok(&["sync", f.to_str().unwrap()])
}

#[test]
fn order_completed_lands_in_tracks_and_its_own_table() {
    for backend in BACKENDS {
        order_completed(backend);
    }
}

fn order_completed(backend: Backend) {
    let env = Env::with_backend(CONFIG, backend);
    let event = r#"{"type":"track","event":"Order Completed","messageId":"m1","userId":"u1","writeKey":"wk",
        "timestamp":"2024-03-01T10:00:00Z",
        "context":{"page":{"url":"https://shop.example/checkout","referrer":""},"userAgent":"Mozilla/5.0","ip":"10.1.2.3",
                   "library":{"name":"analytics.js","version":"2.11.1"}},
        "properties":{"checkout_id":"fksdjfsdjfisjf9sdfjsd9f","order_id":"50314b8e9bcf000000000000","affiliation":"Google Store",
          "total":27.5,"subtotal":22.5,"revenue":25.0,"shipping":3,"tax":2,"discount":2.5,"coupon":"hasbros","currency":"USD",
          "products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","name":"Monopoly: 3rd Edition","price":19,"quantity":1,"category":"Games"}],
          "isGift":false,"deliveredAt":"2024-03-03T09:00:00Z"}}"#
        .replace('\n', "");
    sync(&env, "o.jsonl", &[&event]);
    let tracks = columns(&env, "tracks");
    assert!(has(&tracks, "event", "varchar") && has(&tracks, "event_text", "varchar"));
    assert!(
        has(&tracks, "context_page_url", "varchar")
            && has(&tracks, "context_library_version", "varchar")
    );
    assert!(
        !tracks.iter().any(|(n, _)| n == "revenue"),
        "tracks holds no properties: {tracks:?}"
    );
    let oc = columns(&env, "order_completed");
    for (n, t) in [
        ("total", "double"),
        ("shipping", "bigint"),
        ("products", "varchar"),
        ("is_gift", "boolean"),
        ("delivered_at", "timestamp"),
        ("order_id", "varchar"),
        ("context_user_agent", "varchar"),
        ("segment_id", "varchar"),
        ("event_source_id", "varchar"),
    ] {
        assert!(has(&oc, n, t), "order_completed.{n} {t} missing: {oc:?}");
    }
    let row = env.query(&format!(
        "SELECT id, event, event_text, products, total, is_gift, delivered_at, segment_id FROM {}",
        env.table("shop", "order_completed")
    ));
    assert_eq!(
        row,
        vec![vec![
            "m1".to_owned(),
            "order_completed".to_owned(),
            "Order Completed".to_owned(),
            r#"[{"category":"Games","name":"Monopoly: 3rd Edition","price":19,"product_id":"507f1f77bcf86cd799439011","quantity":1,"sku":"45790-32"}]"#.to_owned(),
            "27.5".to_owned(),
            "false".to_owned(),
            "2024-03-03 09:00:00".to_owned(),
            "profile_1".to_owned(),
        ]]
    );
    let t = env.query(&format!(
        "SELECT id, event FROM {}",
        env.table("shop", "tracks")
    ));
    assert_eq!(t, vec![vec!["m1".to_owned(), "order_completed".to_owned()]]);
}

#[test]
fn call_types_nesting_unicode_and_reserved_names() {
    let env = Env::new(CONFIG);
    let out = sync(
        &env,
        "calls.jsonl",
        &[
            r#"{"type":"identify","messageId":"i1","userId":"u1","writeKey":"wk","traits":{"accountType":"pro","address":{"city":"Oslo","geo":{"lat":59.9}},"userId":"dropme","Über":"x","$$":"y","tags":["a","b"]}}"#,
            r#"{"type":"page","messageId":"p1","anonymousId":"a1","writeKey":"wk","name":"Home","category":"Docs","properties":{"timestamp":"dropme","productID":7,"nested":{"deep":{"deeper":{"deepest":true}}}}}"#,
            r#"{"type":"screen","messageId":"s1","anonymousId":"a2","writeKey":"wk","name":"Main","properties":{"iOS Push Token":"tok"}}"#,
            r#"{"type":"group","messageId":"g1","userId":"u1","groupId":"acme","writeKey":"wk","traits":{"employees":120,"industry":"Tech"}}"#,
            r#"{"type":"alias","messageId":"al1","userId":"u1","previousId":"a1","writeKey":"wk"}"#,
            r#"{"type":"track","messageId":"t1","userId":"u1","event":"Identifies","writeKey":"wk","properties":{"x":1}}"#,
            r#"{"type":"track","messageId":"t2","userId":"u1","event":"$$$","writeKey":"wk","properties":{"x":1}}"#,
        ],
    );
    let ident = columns(&env, "identifies");
    for n in [
        "account_type",
        "address_city",
        "address_geo_lat",
        "ber",
        "tags",
    ] {
        assert!(
            ident.iter().any(|(c, _)| c == n),
            "identifies.{n} missing: {ident:?}"
        );
    }
    let tags = env.query(&format!(
        "SELECT tags, user_id FROM {}",
        env.table("shop", "identifies")
    ));
    assert_eq!(
        tags,
        vec![vec![r#"["a","b"]"#.to_owned(), "u1".to_owned()]],
        "a trait userId does not overwrite user_id"
    );
    let pages = columns(&env, "pages");
    assert!(
        has(&pages, "product_id", "bigint") && has(&pages, "nested_deep_deeper_deepest", "boolean"),
        "{pages:?}"
    );
    assert!(has(&pages, "name", "varchar") && has(&pages, "category", "varchar"));
    let ts = env.query(&format!(
        "SELECT \"timestamp\" FROM {}",
        env.table("shop", "pages")
    ));
    assert_ne!(ts[0][0], "dropme");
    assert!(has(&columns(&env, "screens"), "i_os_push_token", "varchar"));
    let groups = columns(&env, "groups");
    assert!(has(&groups, "group_id", "varchar") && has(&groups, "employees", "bigint"));
    assert!(has(&columns(&env, "aliases"), "previous_id", "varchar"));
    // Event names that collide with a standard table or snake-case to nothing
    // land only in tracks.
    let mut wh = ps_warehouse::open(&env.url()).unwrap();
    let names: Vec<String> = wh
        .describe("shop")
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(!names.iter().any(|n| n.is_empty()));
    let tracks = env.query(&format!(
        "SELECT id FROM {} ORDER BY id",
        env.table("shop", "tracks")
    ));
    assert_eq!(tracks, vec![vec!["t1".to_owned()], vec!["t2".to_owned()]]);
    for want in [
        "reserved_column_name 2",
        "empty_name 1",
        "event_table_name_refused 2",
    ] {
        assert!(out.contains(want), "summary lacks {want:?}:\n{out}");
    }
}

#[test]
fn types_are_fixed_by_the_first_value_and_evolve_across_syncs() {
    for backend in BACKENDS {
        evolution(backend);
    }
}

fn evolution(backend: Backend) {
    let env = Env::with_backend(CONFIG, backend);
    sync(
        &env,
        "1.jsonl",
        &[
            r#"{"type":"track","event":"Played","messageId":"e1","userId":"u","writeKey":"wk","properties":{"n":1,"d":1.5,"b":true,"s":"x","when":"2024-01-01T00:00:00Z"}}"#,
        ],
    );
    let out = sync(
        &env,
        "2.jsonl",
        &[
            // n: int column gets a double (lossy → NULL), d: double column gets an int (lossless),
            // b: boolean gets a string (NULL), s: varchar gets a number (its JSON text),
            // when: timestamp gets a non-timestamp string (NULL), fresh: a new column.
            r#"{"type":"track","event":"Played","messageId":"e2","userId":"u","writeKey":"wk","properties":{"n":2.5,"d":2,"b":"yes","s":42,"when":"soon","fresh":"new"}}"#,
        ],
    );
    let cols = columns(&env, "played");
    for (n, t) in [
        ("n", "bigint"),
        ("d", "double"),
        ("b", "boolean"),
        ("s", "varchar"),
        ("when", "timestamp"),
        ("fresh", "varchar"),
    ] {
        assert!(has(&cols, n, t), "played.{n} should be {t}: {cols:?}");
    }
    let rows = env.query(&format!(
        "SELECT id, n, d, b, s, \"when\", fresh FROM {} ORDER BY id",
        env.table("shop", "played")
    ));
    assert_eq!(
        rows,
        vec![
            vec!["e1", "1", "1.5", "true", "x", "2024-01-01 00:00:00", ""]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            vec!["e2", "", "2.0", "", "42", "", "new"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
        ]
    );
    for want in ["played.n: 1", "played.b: 1", "played.when: 1"] {
        assert!(out.contains(want), "summary lacks {want:?}:\n{out}");
    }
}
