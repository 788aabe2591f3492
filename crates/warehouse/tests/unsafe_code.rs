//! `unsafe` lives in one module (ARCHITECTURE.md, "Invariants"): the
//! workspace lint denies it, every crate takes the workspace's lints, and
//! the only file that allows it is DuckDB's row scan.

use std::path::{Path, PathBuf};

const THE_MODULE: &str = "crates/warehouse/src/duckdb/row_scan.rs";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn unsafe_code_is_denied_and_allowed_in_one_module_only() {
    let root = root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("unsafe_code = \"deny\""),
        "the workspace lints deny unsafe code"
    );
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let krate = entry.unwrap().path();
        let toml = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        assert!(
            toml.contains("[lints]\nworkspace = true"),
            "{} takes the workspace lints",
            krate.display()
        );
        rust_files(&krate, &mut files);
    }
    let allowing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            // `allow(unsafe_code)`, `expect(unsafe_code)`, in `cfg_attr` too.
            text.contains("unsafe_code)")
        })
        .map(|f| {
            f.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .filter(|f| !f.ends_with("tests/unsafe_code.rs"))
        .collect();
    assert_eq!(allowing, vec![THE_MODULE.to_owned()]);
}
