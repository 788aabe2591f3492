//! The `config` target checks files with the warehouse contract's reserved
//! trait names, copied because this crate must not build DuckDB; they must
//! not drift apart.

#[test]
fn reserved_names_are_the_contracts() {
    let mut ours: Vec<&str> = ps_fuzz_targets::RESERVED.to_vec();
    let mut theirs = ps_warehouse::contract::reserved_trait_names();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
}
