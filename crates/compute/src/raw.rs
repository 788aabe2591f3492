//! The definition sections as written in a space's config, before
//! [`crate::Definitions::check`] turns them into checked definitions.
//! Conditions stay JSON here: their shape decides what they are.

use serde::Deserialize;
use serde_json::Value as Json;

/// `[compute]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompute {
    /// How often windows and relative dates are re-evaluated without events.
    pub tick: Option<String>,
    /// `event_source_id` of the rows compute emits.
    pub source_id: Option<String>,
    /// Whether each change also lands as an `identifies` row.
    pub emit_identifies: Option<bool>,
}

/// One `[[computed_traits]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrait {
    /// The column name.
    pub key: String,
    /// `count`, `sum`, … (see [`crate::Kind`]).
    pub kind: String,
    /// One event name, or `"*"`.
    pub event: Option<String>,
    /// Several event names.
    pub events: Option<Vec<String>>,
    /// A sliding window (`"30d"`).
    pub within: Option<String>,
    /// Filters on the events.
    #[serde(rename = "where")]
    pub filters: Option<Vec<RawFilter>>,
    /// The value read from each event, for the kinds that need one.
    pub property: Option<String>,
    /// `most_frequent`: how often a value must be seen (default 2).
    pub min_count: Option<i64>,
    /// `unique_list`: most values kept (default 1000).
    pub list_cap: Option<i64>,
}

/// One filter of a `where` list as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// The path read in the event.
    pub property: String,
    /// The operator's name.
    pub op: String,
    /// The operand (none for `exists` / `not_exists`).
    pub value: Option<Json>,
}

/// One `[[audiences]]` as written; conditions stay JSON until checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudience {
    /// The column name.
    pub key: String,
    /// Whether profiles without a `user_id` or `email` may be members.
    pub include_anonymous: Option<bool>,
    /// Conditions that must all hold.
    pub all: Option<Vec<Json>>,
    /// Conditions of which one must hold.
    pub any: Option<Vec<Json>>,
    /// Conditions of which none may hold.
    pub none: Option<Vec<Json>>,
}

/// One `[[sql_traits]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSqlTrait {
    /// A name for the query, in errors and logs (its columns are the traits).
    pub key: String,
    /// The query run on the warehouse.
    pub query: String,
    /// How often it runs (`"1h"`).
    pub every: String,
}

/// All the sections as written in a space's config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawDefinitions {
    /// `[compute]`.
    #[serde(default)]
    pub compute: RawCompute,
    /// `[[computed_traits]]`.
    #[serde(default)]
    pub computed_traits: Vec<RawTrait>,
    /// `[[audiences]]`.
    #[serde(default)]
    pub audiences: Vec<RawAudience>,
    /// `[[sql_traits]]`.
    #[serde(default)]
    pub sql_traits: Vec<RawSqlTrait>,
}
