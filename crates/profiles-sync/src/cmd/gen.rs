//! `profiles-sync gen`

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(
    events: u64,
    seed: u64,
    sources: u32,
    out: &str,
    config_out: Option<&Path>,
) -> Result<ExitCode> {
    let cfg = ps_gen::GenConfig {
        events,
        seed,
        sources,
    };
    let shape = if out == "-" {
        ps_gen::generate(&cfg, std::io::stdout().lock())?
    } else {
        let file = std::fs::File::create(out).with_context(|| format!("cannot create {out}"))?;
        if out.ends_with(".gz") {
            let mut gz = GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
            let s = ps_gen::generate(&cfg, &mut gz)?;
            gz.finish()?.flush()?;
            s
        } else {
            ps_gen::generate(&cfg, std::io::BufWriter::new(file))?
        }
    };
    if let Some(path) = config_out {
        std::fs::write(path, config_text(sources))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprint!("{shape}");
    Ok(ExitCode::SUCCESS)
}

/// A config whose sources match the generated write keys.
pub(crate) fn config_text(sources: u32) -> String {
    let mut s = String::from("space = \"bench\"\n\n[warehouse]\nurl = \"duckdb://bench.duckdb\"\n");
    for (id, name, slug, key) in ps_gen::sources(sources) {
        s.push_str(&format!(
            "\n[[sources]]\nid = {id:?}\nname = {name:?}\nslug = {slug:?}\nwrite_key = {key:?}\n"
        ));
    }
    s
}
