//! `profiles-sync`: the command-line entry point. All the work is in the
//! library crates; this binary parses arguments, reads the config and wires
//! the pieces together.

mod cli;
mod cmd;
mod config;

fn main() -> std::process::ExitCode {
    cli::run()
}
