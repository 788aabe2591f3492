//! Messages to the sync thread: from the inbox writer (a size trigger), the
//! admin API (privacy requests) and the server (shutdown).

use ps_pipeline::{RegulationKind, Subject};

/// Messages to the sync thread.
#[derive(Debug)]
pub(crate) enum Control {
    /// The inbox passed its size trigger: sync now.
    Wake,
    /// A privacy request (`POST /admin/regulations`), carried out between
    /// two batches; answers the request's record as JSON.
    Regulate {
        kind: RegulationKind,
        subject: Subject,
        reply: tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>,
    },
    /// The list of privacy requests (`GET /admin/regulations`).
    Regulations {
        reply: tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>,
    },
    /// Land everything in the inbox, then stop.
    Shutdown,
}
