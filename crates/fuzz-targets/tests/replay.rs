//! Replays every committed fuzz input on stable: the corpora the fuzzers
//! grew (`fuzz/corpus/<target>/`) and every crash they ever found, kept
//! after the fix (`fuzz/regressions/<target>/`). A target whose corpus is
//! missing fails, so a renamed directory cannot turn this into a no-op.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    // Read when the test runs (cargo sets it), not when it was built: a test
    // binary reused from the shared target directory may have been built in
    // a clone at another path, where a missing corpus would replay nothing.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let fuzz = Path::new(&manifest).join("../../fuzz");
    assert!(
        fuzz.join("corpus").is_dir(),
        "no corpus at {}",
        fuzz.display()
    );
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("corpus entry").path()));
    }
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() >= 10,
        "fuzz/corpus/{target} is missing or nearly empty"
    );
    let mut failed = Vec::new();
    for f in &files {
        let data = fs::read(f).expect("read corpus input");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} inputs fail: {failed:#?}",
        failed.len()
    );
}

#[test]
fn tape() {
    replay("tape", ps_fuzz_targets::tape);
}

#[test]
fn event() {
    replay("event", ps_fuzz_targets::event);
}

#[test]
fn batch_scan() {
    replay("batch_scan", ps_fuzz_targets::batch_scan);
}

#[test]
fn http() {
    replay("http", ps_fuzz_targets::http);
}

#[test]
fn config() {
    replay("config", ps_fuzz_targets::config);
}

#[test]
fn inbox() {
    replay("inbox", ps_fuzz_targets::inbox);
}
