//! Command-line interface.

use crate::cmd;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Self-hosted Segment Profiles Sync.
///
/// Reads Segment events (files, or the HTTP Tracking API with `serve`),
/// resolves identities the way Segment Unify does, and keeps the Profiles Sync
/// tables — id_graph_updates, external_id_mapping_updates,
/// profile_traits_updates, the event tables and the materialized id_graph,
/// external_id_mapping and profile_traits — in your warehouse, under a schema
/// named after the space.
#[derive(Debug, Parser)]
#[command(name = "profiles-sync", version, about, long_about)]
pub struct Cli {
    /// The TOML config file (space, warehouse, identity rules, sources).
    #[arg(long, short, global = true, default_value = "profiles-sync.toml", env = "PROFILES_SYNC_CONFIG")]
    pub config: PathBuf,

    /// Log filter, e.g. `info`, `debug`, `ps_pipeline=debug` (or RUST_LOG).
    #[arg(long, global = true, default_value = "warn", env = "RUST_LOG")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay event files into the space: identity resolution, landed tables,
    /// event tables, materialized tables.
    ///
    /// Files hold JSON lines, a JSON array or a Segment batch body
    /// (`{"batch": [...]}`), optionally gzip-compressed; `-` reads standard
    /// input. Each event's source is found by its `writeKey`. Running `sync`
    /// again continues the same space; events whose messageId already landed
    /// are skipped. Invalid events are refused with their file and line and
    /// stored in `<space>.rejected_events`; the valid ones beside them land.
    Sync {
        /// Event files, in processing order.
        #[arg(required = true)]
        files: Vec<String>,
        /// Source id for events without a write key.
        #[arg(long)]
        source: Option<String>,
        /// Events per warehouse transaction (overrides `sync.batch_events`).
        #[arg(long)]
        batch_events: Option<usize>,
        /// Print the summary as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Refresh the materialized tables (id_graph, external_id_mapping,
    /// profile_traits). `--full` rebuilds them from the landed tables alone.
    Materialize {
        /// Rebuild from scratch from the landed tables.
        #[arg(long)]
        full: bool,
    },
    /// Write a deterministic, realistic synthetic event stream (JSON lines,
    /// gzip if the name ends in .gz) and print its shape.
    Gen {
        /// Number of events.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Random seed; the same seed gives the same bytes.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Number of sources (write keys wk_source_1…).
        #[arg(long, default_value_t = 3)]
        sources: u32,
        /// Output file (`-` for stdout).
        #[arg(long, default_value = "events.jsonl.gz")]
        out: String,
        /// Also write a matching config file here.
        #[arg(long)]
        config_out: Option<PathBuf>,
    },
    /// Measure every stage (read, parse, identity, rows, landing,
    /// materialization) on a generated or given stream, against a parse-only
    /// floor; print events/s and peak memory per stage.
    Bench {
        /// Number of generated events.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Generator seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Warehouse URL (default: a DuckDB file in a temp dir).
        #[arg(long)]
        warehouse: Option<String>,
        /// Use this event file instead of generating one (its write keys must
        /// be wk_source_1..3, as `gen` writes).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Keep the generated file and warehouse.
        #[arg(long)]
        keep: bool,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = match cli.command {
        Command::Sync { files, source, batch_events, json } => {
            cmd::sync::run(&cli.config, &files, source, batch_events, json)
        }
        Command::Materialize { full } => cmd::materialize::run(&cli.config, full),
        Command::Gen { events, seed, sources, out, config_out } => {
            cmd::gen::run(events, seed, sources, &out, config_out.as_deref())
        }
        Command::Bench { events, seed, warehouse, input, json, keep } => {
            cmd::bench::run(cmd::bench::Args { events, seed, warehouse, input, json, keep })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
