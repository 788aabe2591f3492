//! Command-line interface.

use crate::cmd;
use clap::{Parser, Subcommand};
use ps_pipeline::RegulationKind;
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
pub(crate) struct Cli {
    /// The TOML config file (space, warehouse, identity rules, sources).
    #[arg(
        long,
        short,
        global = true,
        default_value = "profiles-sync.toml",
        env = "PROFILES_SYNC_CONFIG"
    )]
    pub(crate) config: PathBuf,

    /// Log filter, e.g. `info`, `debug`, `ps_pipeline=debug` (or RUST_LOG).
    #[arg(long, global = true, default_value = "warn", env = "RUST_LOG")]
    pub(crate) log: String,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a commented starter config (the `--config` path, by default
    /// `profiles-sync.toml`): a space, a DuckDB file, one source with a fresh
    /// write key, identity rules and a `[server]` section. Never overwrites.
    Init {
        /// The space's name (the warehouse schema), snake_case.
        #[arg(long, default_value = "my_space")]
        space: String,
    },
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
        /// Events per batch, the unit rows are built in (overrides
        /// `sync.batch_events`).
        #[arg(long)]
        batch_events: Option<usize>,
        /// Events per warehouse transaction (overrides `sync.commit_events`);
        /// computed traits and audiences are evaluated once per transaction.
        #[arg(long)]
        commit_events: Option<usize>,
        /// Print the summary as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Evaluate computed traits and audiences at this time (ISO-8601,
        /// e.g. 2024-03-01T00:00:00Z) instead of the start of each
        /// transaction's last batch (the wall clock): replays and tests then give the same values. Profiles
        /// whose windows or relative dates changed by then are re-evaluated
        /// too (a tick), so every value holds at this time.
        #[arg(long, value_parser = parse_as_of)]
        as_of: Option<i64>,
    },
    /// Computed traits and audiences: `--full` recomputes every profile
    /// from the landed event tables and lands what changed; `--check`
    /// recomputes in memory and reports differences from the stored values
    /// without writing (exit code 1 on a difference).
    Compute {
        /// Recompute every profile from the landed events and land the
        /// changes.
        #[arg(long, conflicts_with = "check")]
        full: bool,
        /// Compare a recompute with the stored values; write nothing.
        #[arg(long)]
        check: bool,
        /// Evaluate at this time (ISO-8601) instead of when values were last
        /// evaluated (`--check`) or now (`--full`).
        #[arg(long, value_parser = parse_as_of)]
        as_of: Option<i64>,
    },
    /// Refresh the materialized tables (id_graph, external_id_mapping,
    /// profile_traits). `--full` rebuilds them from the landed tables alone.
    Materialize {
        /// Rebuild from scratch from the landed tables.
        #[arg(long)]
        full: bool,
        /// First bring computed traits and audiences to this time
        /// (ISO-8601): profiles whose windows or relative dates changed by
        /// then are re-evaluated and their changes land (snapshot rows,
        /// entered / exited), as a `sync --as-of` with no new events would.
        #[arg(long, value_parser = parse_as_of)]
        as_of: Option<i64>,
    },
    /// Write every table of the space (not the internal `_ps_*` ones) as
    /// `DIR/<table>.parquet`, for loaders that take files (Snowflake
    /// `COPY INTO`, `bq load`, Spark, DuckDB). Works on every warehouse.
    Export {
        /// The file format; `parquet` is the only one.
        #[arg(long, value_parser = ["parquet"], default_value = "parquet")]
        format: String,
        /// The directory to write into (created if missing; files of the
        /// same names are replaced).
        dir: std::path::PathBuf,
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
    /// Run the Segment-compatible HTTP Tracking API and keep the space in
    /// sync continuously.
    ///
    /// Accepts `POST /v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen`,
    /// `/v1/group`, `/v1/alias`, `/v1/batch` (and analytics.js' `/v1/i`,
    /// `/v1/t`, …), authenticated by a source's write key (Basic auth user
    /// name, or `writeKey` in the body). A 200 means the events are on disk in
    /// the inbox (`[server] data_dir`); the sync loop lands them every
    /// `sync_interval`. Also serves `GET /health`, `GET /metrics` and, with
    /// `[server] admin_token`, `POST /admin/query`. SIGTERM or Ctrl-C lands
    /// what is in the inbox and exits.
    Serve {
        /// Listen address (overrides `server.listen`), e.g. 127.0.0.1:8088;
        /// port 0 picks a free port.
        #[arg(long)]
        listen: Option<String>,
        /// Inbox directory (overrides `server.data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Land the event log of a multi-node deployment (`[log]`) in PostgreSQL.
    ///
    /// Competes with other `resolve` processes for the space's lease; the
    /// holder reads the space's events from the log after its checkpoint,
    /// resolves them and commits rows and checkpoint in one transaction,
    /// fenced by the lease's token, so a paused old holder can never commit
    /// after a newer one. Another resolver takes over within the lease's TTL
    /// (`log.lease_ttl`) when the holder dies. SIGTERM or Ctrl-C stops it.
    Resolve {
        /// Events per warehouse transaction (default `sync.batch_events`).
        #[arg(long)]
        batch_events: Option<usize>,
    },
    /// Delete a user (GDPR/CCPA erasure): every row of its profile, in every table.
    ///
    /// TYPE:VALUE (user_id:123, email:jane@example.com, anonymous_id:…)
    /// resolves to the canonical profile; its rows leave every event table,
    /// landed table and materialized table in one transaction, and its
    /// identifiers are released — the same user seen later gets a new
    /// profile. Recorded in `<space>.regulations` without the personal data.
    /// Exit code 3 when the identifier is unknown. Goes through a running
    /// `serve` when `[server] admin_token` is set.
    Delete {
        /// TYPE:VALUE of any identifier of the user.
        subject: String,
        /// Print the request's record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refuse, from now on, events carrying any identifier of a user.
    ///
    /// Suppresses the subject and every identifier its profile holds now;
    /// such events are refused at ingest (files and HTTP), counted under
    /// `suppressed`, and stored nowhere. Exit code 3 when unknown.
    Suppress {
        /// TYPE:VALUE of any identifier of the user.
        subject: String,
        #[arg(long)]
        json: bool,
    },
    /// Lift the suppressions that include TYPE:VALUE (new events only).
    Unsuppress {
        /// TYPE:VALUE given to (or covered by) an earlier `suppress`.
        subject: String,
        #[arg(long)]
        json: bool,
    },
    /// List every privacy request and its status (`<space>.regulations`).
    Regulations {
        #[arg(long)]
        json: bool,
    },
    /// Look one profile up, as the Profile API does: its traits, identifiers,
    /// newest events and metadata.
    ///
    /// TYPE:VALUE (user_id:123, email:jane@example.com, anonymous_id:…) may
    /// be any identifier of the profile, also one of a profile merged into
    /// another. While `serve` runs the lookup goes through its admin API
    /// (needs `[server] admin_token`); otherwise the warehouse is read
    /// directly. Without a section flag, traits, identifiers and metadata
    /// are shown. Exits 1 when no profile holds the identifier.
    Profile {
        /// The identifier, TYPE:VALUE.
        id: String,
        /// Show the traits.
        #[arg(long)]
        traits: bool,
        /// Show the identifiers (external ids).
        #[arg(long)]
        external_ids: bool,
        /// Show the newest events.
        #[arg(long)]
        events: bool,
        /// How many events, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Open the warehouse directly, never through a server.
        #[arg(long)]
        direct: bool,
    },
    /// Run SQL against the space's warehouse and print the rows.
    ///
    /// While `serve` runs it holds the DuckDB file, so the query goes through
    /// the running server's admin endpoint (needs `[server] admin_token`);
    /// when no server answers, the warehouse is opened directly.
    Query {
        /// The SQL statement, e.g. "SELECT * FROM case_study.id_graph".
        sql: String,
        /// Print JSON ({"columns": [...], "rows": [[...]]}) instead of
        /// tab-separated text.
        #[arg(long)]
        json: bool,
        /// Open the warehouse directly, never through a server.
        #[arg(long)]
        direct: bool,
    },
    /// Measure every stage (read, parse, identity, rows, landing,
    /// materialization) on a generated or given stream, against a parse-only
    /// floor; print events/s, rows/s landed and peak memory per stage.
    ///
    /// With `--incremental`: build (or reuse) a space of `--profiles` profiles,
    /// then measure state recovery (`Space::open`), a sync of 1,000 new
    /// events, and `materialize --full` of that space.
    Bench {
        /// Measure incremental sync and recovery on a large space instead.
        #[arg(long)]
        incremental: bool,
        /// Profiles in the space (`--incremental`). A warehouse that already
        /// holds space `bench_incr_<N>` with at least N profiles is reused.
        #[arg(long, default_value_t = 1_000_000)]
        profiles: u64,
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
        /// Events per batch (what `sync.batch_events` sets; serve's batches
        /// under load are `server.sync_max_events`).
        #[arg(long, default_value_t = 100_000)]
        batch_events: usize,
        /// Events per warehouse transaction (what `sync.commit_events`
        /// sets; equal to `--batch-events` for serve's one commit a batch).
        #[arg(long, default_value_t = ps_pipeline::DEFAULT_COMMIT_EVENTS)]
        commit_events: usize,
        /// Compute the computed traits and audiences of this TOML file
        /// (`[compute]`, `[[computed_traits]]`, `[[audiences]]`, e.g.
        /// `examples/computed-traits.toml`) during the sync.
        #[arg(long)]
        definitions: Option<PathBuf>,
        /// With `--definitions`: run the sync N times without and N times
        /// with the definitions, alternated, each into a fresh DuckDB file,
        /// and print each pair's end-to-end seconds, their ratio of
        /// events/s and the median (issue 19's bar), instead of the stages.
        #[arg(long, default_value_t = 0)]
        pairs: usize,
    },
}

pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(log_directives(&cli.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only on a terminal: logs sent to a file or a pipe stay plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Sync {
            files,
            source,
            batch_events,
            commit_events,
            json,
            as_of,
        } => cmd::sync::run(
            &cli.config,
            &files,
            source,
            (batch_events, commit_events),
            json,
            as_of,
        ),
        Command::Materialize { full, as_of } => cmd::materialize::run(&cli.config, full, as_of),
        Command::Export { format: _, dir } => cmd::export::run(&cli.config, &dir),
        Command::Compute { full, check, as_of } => {
            cmd::compute::run(&cli.config, full, check, as_of)
        }
        Command::Gen {
            events,
            seed,
            sources,
            out,
            config_out,
        } => cmd::gen::run(events, seed, sources, &out, config_out.as_deref()),
        Command::Serve { listen, data_dir } => cmd::serve::run(&cli.config, listen, data_dir),
        Command::Resolve { batch_events } => cmd::resolve::run(&cli.config, batch_events),
        Command::Query { sql, json, direct } => cmd::query::run(&cli.config, &sql, json, direct),
        Command::Profile {
            id,
            traits,
            external_ids,
            events,
            limit,
            json,
            direct,
        } => cmd::profile::run(
            &cli.config,
            &id,
            cmd::profile::Show {
                traits,
                external_ids,
                events,
                limit,
            },
            json,
            direct,
        ),
        Command::Init { space } => cmd::init::run(&cli.config, &space).map(|()| ExitCode::SUCCESS),
        Command::Delete { subject, json } => {
            cmd::privacy::regulate(&cli.config, RegulationKind::Delete, &subject, json)
        }
        Command::Suppress { subject, json } => {
            cmd::privacy::regulate(&cli.config, RegulationKind::Suppress, &subject, json)
        }
        Command::Unsuppress { subject, json } => {
            cmd::privacy::regulate(&cli.config, RegulationKind::Unsuppress, &subject, json)
        }
        Command::Regulations { json } => cmd::privacy::list(&cli.config, json),
        Command::Bench {
            incremental: true,
            profiles,
            warehouse,
            json,
            keep,
            ..
        } => cmd::bench_incremental::run(cmd::bench_incremental::Args {
            profiles,
            warehouse,
            json,
            keep,
        }),
        Command::Bench {
            incremental: false,
            events,
            seed,
            warehouse,
            input,
            json,
            keep,
            batch_events,
            commit_events,
            definitions,
            pairs,
            ..
        } => cmd::bench::run(cmd::bench::Args {
            events,
            seed,
            warehouse,
            input,
            json,
            keep,
            batch_events,
            commit_events,
            definitions,
            pairs,
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `--as-of`: an ISO-8601 timestamp (or a date, midnight UTC), as
/// microseconds since the epoch.
pub(crate) fn parse_as_of(s: &str) -> Result<i64, String> {
    ps_spec::time::parse_timestamp(s)
        .or_else(|| ps_spec::time::parse_timestamp(&format!("{s}T00:00:00Z")))
        .ok_or_else(|| format!("{s:?} is not an ISO-8601 timestamp (e.g. 2024-03-01T00:00:00Z)"))
}

/// The `--log` filter, with the PostgreSQL driver held at `warn` unless the
/// filter names it: at `debug` it logs every statement in full, and
/// statements carry data values (a privacy delete names the subject's
/// identifiers). Naming the crate (`--log debug,tokio_postgres=debug`) is
/// asking for them.
fn log_directives(log: &str) -> String {
    if log.contains("tokio_postgres") {
        log.to_owned()
    } else {
        format!("{log},tokio_postgres=warn")
    }
}
