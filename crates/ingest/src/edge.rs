//! What the HTTP handlers share: every handler ([`crate::tracking`],
//! [`crate::settings`], [`crate::status`], [`crate::admin`]) takes
//! [`AppState`] and answers in JSON through [`json_response`] and
//! [`error`] (`ps_http::answer`). No handler module is imported from here, so imports point one
//! way (routes → handlers → edge).

use crate::config::ServerConfig;
use crate::control::Control;
use crate::state::Shared;
use crate::writer::Append;
pub(crate) use ps_http::answer::{error, json_response};
use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// What every handler needs.
pub(crate) struct AppState {
    pub(crate) cfg: ServerConfig,
    /// Write key → source id.
    pub(crate) sources: HashMap<String, String>,
    /// Live counters, metrics and the read-only warehouse connection.
    pub(crate) shared: Arc<Shared>,
    /// To the inbox writer (group commit).
    pub(crate) writer: Sender<Append>,
    /// To the sync thread (privacy requests).
    pub(crate) control: Sender<Control>,
    /// With `[log]`: where events go instead of the inbox.
    pub(crate) log: Option<Arc<dyn ps_log::EventLog>>,
    /// How long a request waits for the log's acknowledgements.
    pub(crate) log_ack_timeout: std::time::Duration,
    /// Admin queries running at once are capped: each holds a warehouse
    /// connection, a core and up to `query_max_rows` rows.
    pub(crate) query_slots: tokio::sync::Semaphore,
    /// The space's name: the only `<space>` the Profile API answers for.
    pub(crate) space: String,
    /// Which trait keys are computed traits and audiences (the Profile
    /// API's `class`).
    pub(crate) class_keys: ClassKeys,
    /// The Profile API's per-space rate limit.
    pub(crate) profile_rate: crate::profile_api::rate::RateLimit,
    /// Profile lookups running at once (more wait their turn): each holds a
    /// warehouse connection and a blocking thread.
    pub(crate) profile_slots: tokio::sync::Semaphore,
}

/// How many profile lookups may run at once.
pub(crate) const PROFILE_SLOTS: usize = 8;

/// How many admin queries may run at once; more get 429.
pub(crate) const QUERY_SLOTS: usize = 2;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("listen", &self.cfg.listen)
            .finish()
    }
}

/// The keys of the space's computed traits and audiences.
#[derive(Debug, Default)]
pub(crate) struct ClassKeys {
    pub(crate) computed: Vec<String>,
    pub(crate) audiences: Vec<String>,
}

impl ClassKeys {
    pub(crate) fn of(defs: Option<&ps_compute::Definitions>) -> ClassKeys {
        defs.map_or_else(ClassKeys::default, |d| ClassKeys {
            computed: d.traits.iter().map(|t| t.key.clone()).collect(),
            audiences: d.audiences.iter().map(|a| a.key.clone()).collect(),
        })
    }
}
