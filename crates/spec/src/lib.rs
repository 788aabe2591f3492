//! # ps-spec: the Segment event model
//!
//! Everything the product knows about Segment's *formats*, and nothing about
//! where events come from or go: parsing and validating a payload
//! ([`event`]), timestamps ([`time`]), Segment's warehouse naming rule
//! ([`naming`]), flattening nested payloads into columns ([`flatten`]) and the
//! typing rule for columns ([`value`]).
//!
//! This crate does no IO and reads no clock except [`time::now_micros`], which
//! only callers that stamp load times use.

pub mod batch;
pub mod event;
pub mod flatten;
pub mod naming;
pub mod tape;
pub mod time;
pub mod value;

pub use event::{
    parse_doc, parse_event, parse_event_or_return, parse_event_str, validate_json, Arrival, Event,
    EventType, IdentityRefs, IdentitySources, Refusal, Validated,
};
pub use value::{Cell, ColumnType, Value};
