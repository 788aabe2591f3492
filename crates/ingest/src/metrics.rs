//! Counters for `GET /metrics` (Prometheus text format, version 0.0.4).
//!
//! Hand-rolled rather than a metrics crate: a dozen series, label sets known
//! in advance, and no extra dependency in the build.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Resolution and range of the receipt-to-queryable delay histogram: 10 ms
/// buckets up to 60 s, then one overflow bucket.
const DELAY_STEP_MS: u64 = 10;
const DELAY_BUCKETS: usize = 6000;

type Labeled = Mutex<BTreeMap<Vec<String>, u64>>;

fn bump(m: &Labeled, labels: &[&str], n: u64) {
    let mut g = m.lock().expect("metrics lock");
    if let Some(v) = g.get_mut(
        labels
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .as_slice(),
    ) {
        *v += n;
    } else {
        g.insert(labels.iter().map(|s| s.to_string()).collect(), n);
    }
}

/// All of the server's metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: Labeled,
    requests_refused: Labeled,
    accepted: Labeled,
    rejected: Labeled,
    group_commits: AtomicU64,
    group_requests: AtomicU64,
    group_micros: AtomicU64,
    syncs_ok: AtomicU64,
    syncs_failed: AtomicU64,
    last_sync_micros: AtomicU64,
    last_sync_events: AtomicU64,
    last_sync_end_unix: AtomicU64,
    sync_lag_micros: AtomicU64,
    landed: AtomicU64,
    duplicates: AtomicU64,
    refused_at_sync: Labeled,
    rows: Labeled,
    delay: Vec<AtomicU64>,
    delay_sum_micros: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Labeled::default(),
            requests_refused: Labeled::default(),
            accepted: Labeled::default(),
            rejected: Labeled::default(),
            group_commits: AtomicU64::new(0),
            group_requests: AtomicU64::new(0),
            group_micros: AtomicU64::new(0),
            syncs_ok: AtomicU64::new(0),
            syncs_failed: AtomicU64::new(0),
            last_sync_micros: AtomicU64::new(0),
            last_sync_events: AtomicU64::new(0),
            last_sync_end_unix: AtomicU64::new(0),
            sync_lag_micros: AtomicU64::new(0),
            landed: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            refused_at_sync: Labeled::default(),
            rows: Labeled::default(),
            delay: (0..=DELAY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            delay_sum_micros: AtomicU64::new(0),
        }
    }
}

/// Percentiles of the receipt-to-queryable delay, from the histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelaySummary {
    /// Events measured.
    pub count: u64,
    /// Median delay.
    pub p50: Duration,
    /// 99th percentile delay.
    pub p99: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Mean delay.
    pub mean: Duration,
}

impl Metrics {
    pub(crate) fn request(&self, path: &str, status: u16) {
        bump(&self.requests, &[path, &status.to_string()], 1);
    }

    /// A whole request turned away (auth, limits, bad JSON, back-pressure).
    pub(crate) fn request_refused(&self, code: &str) {
        bump(&self.requests_refused, &[code], 1);
    }

    pub(crate) fn accepted(&self, source: &str, n: u64) {
        bump(&self.accepted, &[source], n);
    }

    pub(crate) fn rejected(&self, source: &str, reason: &str) {
        bump(&self.rejected, &[source, reason], 1);
    }

    pub(crate) fn record_group(&self, requests: u64, took: Duration) {
        self.group_commits.fetch_add(1, Ordering::Relaxed);
        self.group_requests.fetch_add(requests, Ordering::Relaxed);
        self.group_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn sync_failed(&self) {
        self.syncs_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// One committed sync: its duration, what it landed, and each event's
    /// delay from receipt to being queryable.
    pub(crate) fn sync_done(
        &self,
        took: Duration,
        stats: &ps_pipeline::SyncStats,
        delays: &[(u64, u64)],
    ) {
        self.syncs_ok.fetch_add(1, Ordering::Relaxed);
        self.last_sync_micros
            .store(took.as_micros() as u64, Ordering::Relaxed);
        self.last_sync_events.store(stats.read, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.last_sync_end_unix
            .store(now.as_secs(), Ordering::Relaxed);
        self.landed.fetch_add(stats.landed, Ordering::Relaxed);
        self.duplicates
            .fetch_add(stats.duplicates, Ordering::Relaxed);
        for (code, (n, _)) in &stats.refused {
            bump(&self.refused_at_sync, &[code], *n);
        }
        for (table, n) in &stats.rows {
            bump(&self.rows, &[table], *n);
        }
        let mut lag = 0;
        for &(micros, n) in delays {
            lag = lag.max(micros);
            let i = ((micros / 1000) / DELAY_STEP_MS).min(DELAY_BUCKETS as u64) as usize;
            self.delay[i].fetch_add(n, Ordering::Relaxed);
            self.delay_sum_micros
                .fetch_add(micros * n, Ordering::Relaxed);
        }
        self.sync_lag_micros.store(lag, Ordering::Relaxed);
    }

    /// Delay percentiles since start (10 ms resolution; each value is the
    /// upper edge of its bucket, so it errs on the slow side).
    pub fn delay_summary(&self) -> DelaySummary {
        let counts: Vec<u64> = self
            .delay
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let at = |q: f64| -> Duration {
            if total == 0 {
                return Duration::ZERO;
            }
            let want = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return Duration::from_millis((i as u64 + 1) * DELAY_STEP_MS);
                }
            }
            Duration::from_millis((DELAY_BUCKETS as u64 + 1) * DELAY_STEP_MS)
        };
        let sum = self.delay_sum_micros.load(Ordering::Relaxed);
        DelaySummary {
            count: total,
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
            mean: Duration::from_micros(sum.checked_div(total).unwrap_or(0)),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, inbox_events: u64, inbox_bytes: u64) -> String {
        let mut out = String::with_capacity(4096);
        let labeled = |out: &mut String, name: &str, help: &str, keys: &[&str], m: &Labeled| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (vals, n) in m.lock().expect("metrics lock").iter() {
                let labels: Vec<String> = keys
                    .iter()
                    .zip(vals)
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = writeln!(out, "{name}{{{}}} {n}", labels.join(","));
            }
        };
        let single = |out: &mut String, name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        let secs = |a: &AtomicU64| format!("{}", a.load(Ordering::Relaxed) as f64 / 1e6);
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        labeled(
            &mut out,
            "profiles_sync_http_requests_total",
            "HTTP requests by path and status.",
            &["path", "status"],
            &self.requests,
        );
        labeled(
            &mut out,
            "profiles_sync_requests_refused_total",
            "Whole requests turned away, by reason (auth, limits, malformed JSON, back-pressure).",
            &["reason"],
            &self.requests_refused,
        );
        labeled(
            &mut out,
            "profiles_sync_events_accepted_total",
            "Events accepted into the inbox, by source.",
            &["source"],
            &self.accepted,
        );
        labeled(
            &mut out,
            "profiles_sync_events_rejected_total",
            "Events refused at the HTTP edge (stored in rejected_events), by source and reason.",
            &["source", "reason"],
            &self.rejected,
        );
        single(
            &mut out,
            "profiles_sync_inbox_events",
            "gauge",
            "Events in the inbox not yet landed.",
            inbox_events.to_string(),
        );
        single(
            &mut out,
            "profiles_sync_inbox_bytes",
            "gauge",
            "Inbox bytes not yet landed.",
            inbox_bytes.to_string(),
        );
        single(
            &mut out,
            "profiles_sync_inbox_group_commits_total",
            "counter",
            "Inbox fsyncs (group commits).",
            n(&self.group_commits),
        );
        single(
            &mut out,
            "profiles_sync_inbox_group_requests_total",
            "counter",
            "Requests made durable by group commits (divide by commits for the mean group size).",
            n(&self.group_requests),
        );
        single(
            &mut out,
            "profiles_sync_inbox_write_seconds_total",
            "counter",
            "Time spent writing and syncing the inbox.",
            secs(&self.group_micros),
        );
        let _ = writeln!(
            out,
            "# HELP profiles_sync_syncs_total Warehouse syncs by result.\n# TYPE profiles_sync_syncs_total counter\n\
             profiles_sync_syncs_total{{result=\"ok\"}} {}\nprofiles_sync_syncs_total{{result=\"failed\"}} {}",
            n(&self.syncs_ok),
            n(&self.syncs_failed)
        );
        single(
            &mut out,
            "profiles_sync_last_sync_duration_seconds",
            "gauge",
            "Duration of the last committed sync.",
            secs(&self.last_sync_micros),
        );
        single(
            &mut out,
            "profiles_sync_last_sync_events",
            "gauge",
            "Events in the last committed sync.",
            n(&self.last_sync_events),
        );
        single(
            &mut out,
            "profiles_sync_last_sync_timestamp_seconds",
            "gauge",
            "Unix time the last sync committed.",
            n(&self.last_sync_end_unix),
        );
        single(
            &mut out,
            "profiles_sync_sync_lag_seconds",
            "gauge",
            "Receipt-to-queryable delay of the oldest event in the last sync.",
            secs(&self.sync_lag_micros),
        );
        single(
            &mut out,
            "profiles_sync_events_landed_total",
            "counter",
            "Events landed in the warehouse.",
            n(&self.landed),
        );
        single(
            &mut out,
            "profiles_sync_events_duplicate_total",
            "counter",
            "Events skipped because their messageId had already landed.",
            n(&self.duplicates),
        );
        labeled(
            &mut out,
            "profiles_sync_events_refused_at_sync_total",
            "Events refused while landing (e.g. suppressed identifiers, edge refusals), by reason.",
            &["reason"],
            &self.refused_at_sync,
        );
        labeled(
            &mut out,
            "profiles_sync_rows_landed_total",
            "Rows landed per table.",
            &["table"],
            &self.rows,
        );
        // The delay histogram, exported with a handful of cumulative buckets.
        let _ = writeln!(
            out,
            "# HELP profiles_sync_event_delay_seconds Delay from receipt to queryable in the warehouse.\n\
             # TYPE profiles_sync_event_delay_seconds histogram"
        );
        let counts: Vec<u64> = self
            .delay
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let mut cum = 0u64;
        let mut next = 0usize;
        for le_ms in [100u64, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000] {
            let upto = (le_ms / DELAY_STEP_MS) as usize;
            while next < upto.min(DELAY_BUCKETS) {
                cum += counts[next];
                next += 1;
            }
            let _ = writeln!(
                out,
                "profiles_sync_event_delay_seconds_bucket{{le=\"{}\"}} {cum}",
                le_ms as f64 / 1000.0
            );
        }
        let total: u64 = counts.iter().sum();
        let _ = writeln!(
            out,
            "profiles_sync_event_delay_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "profiles_sync_event_delay_seconds_sum {}",
            secs(&self.delay_sum_micros)
        );
        let _ = writeln!(out, "profiles_sync_event_delay_seconds_count {total}");
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_percentiles_and_render() {
        let m = Metrics::default();
        let mut stats = ps_pipeline::SyncStats {
            read: 100,
            landed: 100,
            ..Default::default()
        };
        stats.rows.insert("tracks".into(), 100);
        // 98 events at 5 ms, 2 at 1.5 s.
        m.sync_done(
            Duration::from_millis(3),
            &stats,
            &[(5_000, 98), (1_500_000, 2)],
        );
        let s = m.delay_summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, Duration::from_millis(10));
        assert_eq!(s.p99, Duration::from_millis(1510));
        m.accepted("src \"1\"", 3);
        let text = m.render(7, 99);
        assert!(
            text.contains("profiles_sync_events_accepted_total{source=\"src \\\"1\\\"\"} 3"),
            "{text}"
        );
        assert!(text.contains("profiles_sync_rows_landed_total{table=\"tracks\"} 100"));
        assert!(text.contains("profiles_sync_inbox_events 7"));
        assert!(text.contains("profiles_sync_event_delay_seconds_bucket{le=\"2\"} 100"));
        assert!(text.contains("profiles_sync_event_delay_seconds_bucket{le=\"1\"} 98"));
    }
}
