//! `profiles-sync`: the command-line entry point. All the work is in the
//! library crates; this binary parses arguments, reads the config and wires
//! the pieces together.
//!
//! - [`cli`]: the `clap` definition ([`cli::Cli`], one [`cli::Command`]
//!   variant per subcommand) and [`cli::run`], which sets up logging and
//!   dispatches to a subcommand, turning its error into an exit code.
//! - [`config`]: the TOML file ([`config::Config`]); it yields the
//!   `ps_pipeline::SpaceConfig` every command opens the space with and, for
//!   `serve`, the `ps_ingest::ServerConfig`.
//! - [`cmd`]: one module per subcommand. `sync`, `materialize` and the
//!   privacy commands open the warehouse and the space ([`cmd::open`]) and
//!   call `ps_pipeline`; `serve` hands over to `ps_ingest::Server`; `query`
//!   and the privacy commands talk to a running server over `/admin/*` when
//!   there is one; `gen` and the benchmarks drive `ps_gen`.

#![warn(missing_docs, unreachable_pub)]

// The pipeline allocates and frees very many small strings per batch, across
// two threads, and glibc's malloc was a large share of a sync's CPU time
// (seen with perf); mimalloc is much faster at exactly that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod cmd;
mod config;

fn main() -> std::process::ExitCode {
    ps_pipeline::process::without_huge_pages();
    // `delta://` warehouses live in their own crate; every command that
    // opens a warehouse by URL reaches them through this registration.
    ps_delta::register();
    cli::run()
}
