//! The integration-test binary: real files, real DuckDB files, the real
//! `profiles-sync` executable.

mod bench_incremental;
mod compute;
mod golden;
mod incremental;
mod pg_fault;
mod privacy;
mod read_only;
mod schema;
mod serve;
mod sync;
mod tls;
mod util;
