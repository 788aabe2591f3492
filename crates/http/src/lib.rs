//! # ps-http: serve's HTTP edge, without a warehouse
//!
//! What `serve` does with a request before anything is stored, top-down:
//! connections read heads with [`head::builder`] (size cap, header
//! timeout), bodies must arrive within a deadline ([`deadline`]), are
//! decoded under the size limits ([`body`]: gzip, gzip bombs), and a
//! tracking request is checked ([`request::receive`]: the write key from
//! `auth` or the body, JSON, batch size, each event [`prepare`]d and
//! validated). Every refusal is a JSON answer naming its reason
//! ([`answer`]).
//!
//! `ps-ingest` (back-pressure, the inbox, the sync loop) calls these; so
//! does the fuzz target `http` (`crates/fuzz-targets`), which therefore
//! builds without DuckDB and checks the very code `serve` runs.

#![warn(missing_docs, unreachable_pub)]

pub mod answer;
mod auth;
pub mod body;
pub mod deadline;
pub mod head;
pub mod prepare;
pub mod request;
