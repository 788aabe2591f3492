//! The Profile API's reads (issue 20): one profile looked up by one of its
//! identifiers, in the materialized current-state tables (SPEC §6) and the
//! event tables. One concept per file; each function returns statement
//! text for a [`ps_warehouse::ReadOnly`](crate::ReadOnly) query (one read
//! statement, no `;`), with every value written as a literal.
//!
//! Every read starts from [`resolve`]: the identifier's row in
//! `external_id_mapping`, whose `canonical_segment_id` is already the
//! surviving profile (the materialization resolves it through `id_graph`,
//! one hop, final), so an identifier of a profile merged into another
//! answers with the survivor.

mod events;
mod external_ids;
mod metadata;
mod resolve;
mod traits;

pub use events::{event_rows, events_page, existing_tables, EventQuery};
pub use external_ids::external_ids;
pub use metadata::creation;
pub use resolve::{external_id_hash, resolve, segments_of};
pub use traits::{trait_history, traits, traits_of};
