//! `profiles-sync`: the command-line entry point. All the work is in the
//! library crates; this binary parses arguments, reads the config and wires
//! the pieces together.

// glibc's malloc spent ~40% of a sync's CPU time (profiled with perf): the
// pipeline allocates and frees millions of small strings per batch, across
// two threads. mimalloc is several times faster at exactly that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod cmd;
mod config;

fn main() -> std::process::ExitCode {
    cli::run()
}
