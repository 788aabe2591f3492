//! [`Shape`]: the statistics of a generated stream.

use std::collections::BTreeMap;
use std::fmt;

/// Statistics of a generated stream, printed by `profiles-sync gen`.
///
/// All counts are over the lines yielded so far, duplicates included
/// (`events` and `by_type` count them; the distinct counts are unaffected by
/// them).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Shape {
    /// Lines yielded.
    pub events: u64,
    /// Lines per `type` (only types that occurred).
    pub by_type: BTreeMap<String, u64>,
    /// Distinct values of the `anonymousId` field.
    pub distinct_anonymous_ids: u64,
    /// Distinct values of the `userId` field.
    pub distinct_user_ids: u64,
    /// Distinct values of `traits.email` (in identify calls).
    pub distinct_emails: u64,
    /// Lines that repeat an earlier line verbatim (same `messageId`).
    pub duplicates: u64,
    /// Non-duplicate lines whose `timestamp` is older than the newest
    /// `timestamp` of the lines before them.
    pub late_events: u64,
    /// Events at which two previously separate identities get linked.
    ///
    /// Computed with a union-find over identifiers (anonymousIds and
    /// userIds; e-mails are unique per user so they never link anything):
    /// each event carrying both an `anonymousId` and a `userId` (and each
    /// `alias`, previousId ↔ userId) joins their components. The event
    /// counts as a merge when both identifiers had already appeared in
    /// earlier events and were in different components — typically a known
    /// user logging in on a device (or after clearing cookies) where they
    /// had browsed anonymously first. Joins that would put two different
    /// userIds in one profile (shared devices) are refused and not counted,
    /// as Segment's default identity rule (one userId per profile) does. A
    /// first identify (sign-up) only adds a new userId to an existing
    /// profile, so it is not a merge.
    pub expected_merges: u64,
    /// Size of the stream as JSON lines: the sum of line lengths plus one
    /// newline per line (the size of the file [`generate`](crate::generate) writes).
    pub bytes: u64,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: u64| {
            if self.events == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.events as f64
            }
        };
        writeln!(f, "events                  {:>12}", self.events)?;
        for (ty, &n) in &self.by_type {
            writeln!(f, "  {ty:<22}{n:>12}  ({:.1}%)", pct(n))?;
        }
        writeln!(
            f,
            "distinct anonymousIds   {:>12}",
            self.distinct_anonymous_ids
        )?;
        writeln!(f, "distinct userIds        {:>12}", self.distinct_user_ids)?;
        writeln!(f, "distinct emails         {:>12}", self.distinct_emails)?;
        writeln!(
            f,
            "duplicates              {:>12}  ({:.2}%)",
            self.duplicates,
            pct(self.duplicates)
        )?;
        writeln!(
            f,
            "late events             {:>12}  ({:.2}%)",
            self.late_events,
            pct(self.late_events)
        )?;
        writeln!(f, "expected merges         {:>12}", self.expected_merges)?;
        let avg = self.bytes.checked_div(self.events).unwrap_or(0);
        write!(
            f,
            "bytes                   {:>12}  ({:.1} MiB, {avg} B/event)",
            self.bytes,
            self.bytes as f64 / (1024.0 * 1024.0)
        )
    }
}
