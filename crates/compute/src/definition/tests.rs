use super::*;

const RESERVED: &[&str] = &["canonical_segment_id", "merged_to", "seq", "timestamp"];

fn check(toml_text: &str) -> Result<Definitions, DefinitionError> {
    let raw: RawDefinitions = toml::from_str(toml_text).expect("valid TOML");
    Definitions::check(&raw, RESERVED)
}

fn refusal(toml_text: &str) -> String {
    check(toml_text).unwrap_err().to_string()
}

#[test]
fn the_issue_example_is_accepted() {
    let d = check(
        r#"
        [compute]
        tick = "60s"
        source_id = "ps-compute"
        emit_identifies = true
        [[computed_traits]]
        key = "orders_30d"
        kind = "count"
        event = "Order Completed"
        within = "30d"
        where = [ { property = "currency", op = "equals", value = "USD" } ]
        [[computed_traits]]
        key = "lifetime_revenue"
        kind = "sum"
        event = "Order Completed"
        property = "revenue"
        [[computed_traits]]
        key = "favorite_category"
        kind = "most_frequent"
        event = "Product Viewed"
        property = "category"
        min_count = 2
        [[audiences]]
        key = "big_spenders"
        include_anonymous = false
        all = [
          { trait = "lifetime_revenue", op = "gte", value = 500 },
          { event = "Order Completed", within = "30d", count = { op = "gte", value = 2 }, where = [] },
          { audience = "vip" },
        ]
        [[audiences]]
        key = "vip"
        any = [ { trait = "plan", op = "one_of", value = ["gold", "platinum"] }, { none = [ { trait = "churned", op = "exists" } ] } ]
        [[sql_traits]]
        key = "ltv_model"
        query = "SELECT user_id, ltv FROM models.ltv"
        every = "1h"
        "#,
    )
    .unwrap();
    assert_eq!(d.traits.len(), 3);
    assert_eq!(d.traits[0].within, Some(30 * 86_400_000_000));
    assert_eq!(d.traits[2].min_count, 2);
    // `vip` is referenced by `big_spenders`, so it comes first.
    let order: Vec<&str> = d.audiences.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(order, ["vip", "big_spenders"]);
    assert_eq!(d.settings.source_id, "ps-compute");
    assert_eq!(d.sql_traits[0].every, Duration::from_secs(3600));
}

#[test]
fn bad_definitions_name_the_key_and_the_field() {
    let t = |body: &str| refusal(&format!("[[computed_traits]]\nkey = \"t\"\n{body}\n"));
    for (body, place, words) in [
        ("kind = \"cnt\"\nevent = \"A\"", "computed_traits.t.kind", "unknown kind"),
        ("kind = \"sum\"\nevent = \"A\"", "computed_traits.t.property", "is missing"),
        ("kind = \"count\"\nevent = \"A\"\nproperty = \"x\"", "computed_traits.t.property", "reads no property"),
        ("kind = \"count\"", "computed_traits.t.event", "is missing"),
        ("kind = \"count\"\nevent = \"A\"\nwithin = \"soon\"", "computed_traits.t.within", "not a duration"),
        ("kind = \"count\"\nevent = \"A\"\nwhere = [{ property = \"p\", op = \"bigger\", value = 1 }]", "computed_traits.t.where[0].op", "unknown op"),
        ("kind = \"count\"\nevent = \"A\"\nwhere = [{ property = \"p\", op = \"equals\" }]", "computed_traits.t.where[0].value", "is missing"),
        ("kind = \"count\"\nevent = \"A\"\nmin_count = 3", "computed_traits.t.min_count", "only `most_frequent`"),
    ] {
        let e = t(body);
        assert!(e.contains(&format!("`{place}`")) && e.contains(words), "{body}: {e}");
    }
    let e = refusal("[[computed_traits]]\nkey = \"Orders\"\nkind = \"count\"\nevent = \"A\"");
    assert!(
        e.contains("computed_traits.Orders.key") && e.contains("snake_case"),
        "{e}"
    );
    let e = refusal("[[computed_traits]]\nkey = \"merged_to\"\nkind = \"count\"\nevent = \"A\"");
    assert!(e.contains("clashes with a column"), "{e}");
    let e = refusal(
        "[[computed_traits]]\nkey = \"x\"\nkind = \"count\"\nevent = \"A\"\n[[audiences]]\nkey = \"x\"\nall = [{ audience = \"x\" }]",
    );
    assert!(
        e.contains("audiences.x.key") && e.contains("another definition"),
        "{e}"
    );
    let e =
        refusal("[[audiences]]\nkey = \"a\"\nall = [{ trait = \"p\", op = \"eq\", value = 1 }]");
    assert!(
        e.contains("audiences.a.all[0].op") && e.contains("unknown op"),
        "{e}"
    );
    let e = refusal("[[audiences]]\nkey = \"a\"\nall = [{ trait = \"p\", op = \"equals\", value = 1, extra = 2 }]");
    assert!(
        e.contains("audiences.a.all[0].extra") && e.contains("unknown field"),
        "{e}"
    );
    let e = refusal("[[audiences]]\nkey = \"a\"\nall = [{ audience = \"nobody\" }]");
    assert!(e.contains("no audience has the key"), "{e}");
    let e = refusal("[[audiences]]\nkey = \"a\"");
    assert!(e.contains("needs conditions"), "{e}");
}

#[test]
fn audience_cycles_are_refused() {
    let e = refusal(
        "[[audiences]]\nkey = \"a\"\nall = [{ audience = \"b\" }]\n\
         [[audiences]]\nkey = \"b\"\nany = [{ all = [{ audience = \"c\" }] }]\n\
         [[audiences]]\nkey = \"c\"\nnone = [{ audience = \"a\" }]",
    );
    assert!(
        e.contains("would create a cycle by referencing another audience"),
        "{e}"
    );
    assert!(e.contains("a -> b -> c -> a"), "{e}");
    let e = refusal("[[audiences]]\nkey = \"a\"\nall = [{ audience = \"a\" }]");
    assert!(e.contains("a -> a"), "{e}");
}

#[test]
fn the_shipped_example_definitions_are_valid() {
    // Read when the test runs, not when it was built (the shared target
    // directory may hold a binary built in a clone at another path).
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let path = std::path::Path::new(&manifest).join("../../examples/computed-traits.toml");
    let d = check(&std::fs::read_to_string(path).unwrap()).unwrap();
    let kinds: std::collections::BTreeSet<&str> = d.traits.iter().map(|t| t.kind.name()).collect();
    assert_eq!(kinds.len(), 10, "every kind: {kinds:?}");
    assert!(d.traits.iter().filter(|t| t.within.is_some()).count() >= 3);
    assert!(d.audiences.len() >= 5);
}
