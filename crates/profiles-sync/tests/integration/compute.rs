//! Computed traits and audiences (issue 19) through the real executable:
//! definitions checked at start, values and audience transitions landed.

use crate::util::{golden_dir, Env};

/// The golden config with `extra` (definition sections) appended.
fn golden_with(extra: &str) -> Env {
    let base = std::fs::read_to_string(golden_dir().join("profiles-sync.toml")).unwrap();
    Env::new(&format!("{base}\n{extra}\n"))
}

#[test]
fn compute_bad_definitions_stop_start_up_naming_key_and_field() {
    for (bad, place) in [
        (
            "[[computed_traits]]\nkey = \"orders\"\nkind = \"cnt\"\nevent = \"Order Completed\"",
            "computed_traits.orders.kind",
        ),
        (
            "[[computed_traits]]\nkey = \"revenue\"\nkind = \"sum\"\nevent = \"Order Completed\"",
            "computed_traits.revenue.property",
        ),
        (
            "[[computed_traits]]\nkey = \"merged_to\"\nkind = \"count\"\nevent = \"*\"",
            "computed_traits.merged_to.key",
        ),
        (
            "[[audiences]]\nkey = \"a\"\nall = [ { audience = \"b\" } ]\n[[audiences]]\nkey = \"b\"\nall = [ { audience = \"a\" } ]",
            "would create a cycle",
        ),
        (
            "[[audiences]]\nkey = \"a\"\nall = [ { trait = \"x\", op = \"bigger\", value = 1 } ]",
            "audiences.a.all[0].op",
        ),
    ] {
        let env = golden_with(bad);
        let input = golden_dir().join("case-study.jsonl");
        let out = env.run(&["sync", input.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: started");
        assert!(err.contains(place), "{bad}: {err}");
    }
}
