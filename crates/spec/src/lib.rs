//! # ps-spec: the Segment event model
//!
//! Everything the product knows about Segment's *formats*, and nothing about
//! where events come from or go. Data flows
//! events → **spec** (validate, normalize) → identity (a pure engine) →
//! pipeline → warehouse → materialize, and every later stage reads events
//! through this crate's types.
//!
//! ## Main types
//! - [`Event`]: a valid, normalized Segment call ([`EventType`]) with its
//!   corrected timestamp and its payload kept as parsed; made by
//!   [`parse_event`] from a JSON text and an [`Arrival`] (what the caller
//!   knows besides the payload), or refused with a [`Refusal`], whose
//!   [`code`](Refusal::code) summaries group by.
//! - [`tape::Doc`] and [`tape::JsonRef`]: the payload parsed once into a flat
//!   tape that later stages read in place, without building `serde_json`
//!   maps ([`IdentityRefs`] notes where identity sources are while parsing).
//! - [`Value`], [`Cell`] and [`ColumnType`]: warehouse cells and the typing
//!   rule for columns.
//!
//! ## Modules, lowest first
//! [`time`] (timestamps, [`time::Micros`]) and [`naming`] (Segment's
//! warehouse naming rule) stand alone; [`tape`] is the JSON reader;
//! [`value`] types cells and [`event`] validates payloads, both on the tape;
//! [`flatten`] turns nested payloads into named columns; [`scan`] finds a
//! batch body's events without building a JSON tree of it, and [`batch`]
//! says what the body's shared fields give each of its events.
//!
//! This crate does no IO and reads no clock except [`time::now_micros`], which
//! only callers that stamp load times use.

#![warn(missing_docs, unreachable_pub)]

pub mod batch;
pub mod event;
pub mod flatten;
pub mod naming;
pub mod scan;
pub mod tape;
pub mod time;
pub mod value;

pub use event::{
    parse_doc, parse_event, parse_event_or_return, parse_event_str, validate_json, Arrival, Event,
    EventType, IdentityRefs, IdentitySources, Refusal, Validated,
};
pub use value::{Cell, ColumnType, Value};
