//! A per-space lease ([`crate::EventLog::acquire`]).

/// A held lease. `token` is the lease's revision when it was taken: it
/// rises with every new holder (a later holder always has a greater one),
/// so the warehouse can refuse a commit from an older holder by comparing
/// tokens (the fence). `revision` follows renewals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The space the lease is for.
    pub space: String,
    /// Who holds it (a name for logs and for the stored value).
    pub holder: String,
    /// The revision it was taken at: the fencing token.
    pub token: u64,
    /// Its revision now (the last renewal's).
    pub revision: u64,
}
