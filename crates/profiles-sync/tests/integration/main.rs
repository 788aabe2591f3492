//! The integration-test binary: real files, real DuckDB files, the real
//! `profiles-sync` executable.

mod abuse;
mod bench_incremental;
mod browser;
mod chaos;
mod compute;
mod crash;
mod delta;
mod disk_full;
mod fence;
mod golden;
mod identifiers;
mod incremental;
mod multi_node;
mod nats;
mod outage;
mod pg_fault;
mod privacy;
mod profile_api;
mod read_only;
mod s3;
mod schema;
mod serve;
mod soak;
mod sync;
mod tls;
mod unwritable;
mod util;
