//! `[log]`: where the replicated event log of a multi-node deployment is
//! and how it is used (`serve` publishes to it, `resolve` lands it). The
//! settings are plain values here; `ps-log` connects with them.

use crate::error::SettingError;
use std::time::Duration;

type Result<T> = std::result::Result<T, SettingError>;

/// The `[log]` settings (`url` is the only required one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The servers, `nats://host:port` separated by commas.
    pub servers: Vec<String>,
    /// Copies of every event the log keeps (the stream's replicas); an
    /// acknowledgement means a majority of them stored it.
    pub replicas: usize,
    /// How long a lease lasts without renewal: the longest a dead
    /// resolver's space waits for a new one.
    pub lease_ttl: Duration,
    /// How long a publish waits for the log's acknowledgement before serve
    /// answers 503.
    pub ack_timeout: Duration,
    /// How long the log drops a re-published id as a duplicate.
    pub duplicate_window: Duration,
    /// How long the log keeps events (replay after a resolver's loss, or of
    /// a space from scratch).
    pub max_age: Duration,
}

impl LogConfig {
    /// The settings for `url` (`[log] url`), with the defaults for the rest.
    pub fn new(url: &str) -> Result<LogConfig> {
        Ok(LogConfig {
            servers: parse_url(url)?,
            replicas: 3,
            lease_ttl: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(7 * 24 * 3600),
        })
    }

    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting: &str, message: &str| Err(SettingError::new(setting, message));
        if !(1..=5).contains(&self.replicas) {
            return bad("log.replicas", "must be between 1 and 5");
        }
        if self.lease_ttl < Duration::from_secs(1) {
            return bad("log.lease_ttl", "must be at least 1s");
        }
        if self.ack_timeout.is_zero() {
            return bad("log.ack_timeout", "must be above 0");
        }
        if self.duplicate_window.is_zero() || self.duplicate_window > self.max_age {
            return bad(
                "log.duplicate_window",
                "must be above 0 and at most log.max_age",
            );
        }
        Ok(())
    }
}

/// `nats://h:p,nats://h:p,…` (the scheme may be left out after the first).
fn parse_url(url: &str) -> Result<Vec<String>> {
    let bad = |message: String| SettingError::new("log.url", message);
    let mut out = Vec::new();
    for part in url.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(bad("has an empty server between commas".into()));
        }
        let full = if part.contains("://") {
            part.to_owned()
        } else {
            format!("nats://{part}")
        };
        let Some(rest) = full.strip_prefix("nats://") else {
            return Err(bad(format!(
                "{part:?} is not a nats:// address (expected nats://host:port,…)"
            )));
        };
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(bad(format!("{part:?} has no port (expected host:port)")));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad(format!("{part:?} is not host:port")));
        }
        out.push(full);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_split_and_checked() {
        let c = LogConfig::new("nats://127.0.0.1:4222, 127.0.0.1:4223").unwrap();
        assert_eq!(
            c.servers,
            ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
        );
        c.validate().unwrap();
        for bad in [
            "",
            "nats://h",
            "http://h:1",
            "nats://h:1,,nats://h:2",
            "h:99999",
        ] {
            let e = LogConfig::new(bad).unwrap_err().to_string();
            assert!(e.contains("`log.url`"), "{bad:?}: {e}");
        }
    }
}
