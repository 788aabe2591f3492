//! Server settings (`[server]` in the config file) and the parsers for their
//! human-friendly forms (`"1s"`, `"512MB"`), so the binary and tests share one
//! definition of what is valid.

use crate::error::SettingError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

type Result<T, E = SettingError> = std::result::Result<T, E>;

/// How long a query (`profiles-sync query`, `/admin/query`) may run and how
/// many rows it may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Past this the query is cancelled and refused as timed out.
    pub timeout: Duration,
    /// Rows past this are not read; the answer says it was cut.
    pub max_rows: usize,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        QueryLimits {
            timeout: Duration::from_secs(30),
            max_rows: 10_000,
        }
    }
}

/// Request limits, Segment's by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single event (serialized JSON), 32 KB.
    pub max_event_bytes: usize,
    /// Largest request body after gzip decoding, 500 KB.
    pub max_batch_bytes: usize,
    /// Most events in one `/v1/batch` body, 2,500.
    pub max_batch_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 32 * 1024,
            max_batch_bytes: 500 * 1024,
            max_batch_events: 2500,
        }
    }
}

/// Everything `serve` needs besides the space and the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address of the HTTP listener (port 0 picks a free one).
    pub listen: SocketAddr,
    /// How often the sync loop lands the inbox.
    pub sync_interval: Duration,
    /// Holds `inbox/` (segment files).
    pub data_dir: PathBuf,
    /// Past this many un-landed inbox bytes, requests get 429.
    pub max_inbox_bytes: u64,
    /// Bearer token for `/admin/*`; without one the admin endpoints are off.
    pub admin_token: Option<String>,
    /// Size limits of tracking requests.
    pub limits: Limits,
    /// Time and row limits of `/admin/query` and `profiles-sync query`.
    pub query: QueryLimits,
    /// Un-landed bytes that start a sync before the interval is up.
    pub sync_trigger_bytes: u64,
    /// Most events landed in one warehouse transaction.
    pub sync_max_events: u64,
    /// Size at which the writer starts a new segment file.
    pub segment_bytes: u64,
    /// The Profile API (`[profile_api]`): its access tokens and rate limit.
    pub profile_api: ProfileApiConfig,
    /// How long a client may take to send a request's headers, and how long
    /// an open connection may wait idle for its next request.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's whole body.
    pub body_timeout: Duration,
    /// Most connections open at once; past it, new ones are closed at once.
    pub max_connections: usize,
}

/// `[profile_api]`: who may read profiles (`GET /v1/spaces/…`), and how
/// often. Without a token the API answers 401 to everyone.
#[derive(Clone, PartialEq, Eq)]
pub struct ProfileApiConfig {
    /// Access tokens, given as HTTP Basic user names (`tokens`).
    pub tokens: Vec<String>,
    /// Access tokens given as the lower-case hex SHA-256 of the token
    /// (`token_hashes`), so the config file need not hold them.
    pub token_hashes: Vec<String>,
    /// Requests per second per space (`rate_limit`, default 100, Segment's);
    /// past it, 429 with `Retry-After`.
    pub rate_limit: u32,
}

impl Default for ProfileApiConfig {
    fn default() -> Self {
        ProfileApiConfig {
            tokens: Vec::new(),
            token_hashes: Vec::new(),
            rate_limit: 100,
        }
    }
}

impl std::fmt::Debug for ProfileApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: never in a log line.
        f.debug_struct("ProfileApiConfig")
            .field("tokens", &self.tokens.len())
            .field("token_hashes", &self.token_hashes.len())
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl ProfileApiConfig {
    /// Checks the tokens and the rate limit; each error names the setting.
    pub fn validate(&self) -> Result<()> {
        if self
            .tokens
            .iter()
            .any(|t| t.trim().len() < 8 || t.contains(':'))
        {
            return Err(SettingError::new(
                "profile_api.tokens",
                "each token must be at least 8 characters, without ':'",
            ));
        }
        if self
            .token_hashes
            .iter()
            .any(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(SettingError::new(
                "profile_api.token_hashes",
                "each must be a SHA-256 in hex (64 characters), e.g. from `printf %s TOKEN | sha256sum`",
            ));
        }
        if self.rate_limit == 0 {
            return Err(SettingError::new(
                "profile_api.rate_limit",
                "must be at least 1 (requests per second per space)",
            ));
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            sync_interval: Duration::from_secs(1),
            data_dir: PathBuf::from("profiles-sync-data"),
            max_inbox_bytes: 1 << 30,
            admin_token: None,
            limits: Limits::default(),
            query: QueryLimits::default(),
            sync_trigger_bytes: 16 << 20,
            sync_max_events: 100_000,
            segment_bytes: 64 << 20,
            profile_api: ProfileApiConfig::default(),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

impl ServerConfig {
    /// Checks relations between settings; each error names the setting.
    pub fn validate(&self) -> Result<()> {
        if self.sync_interval.is_zero() || self.sync_interval > Duration::from_secs(3600) {
            return Err(SettingError::new(
                "server.sync_interval",
                "must be more than 0 and at most 1 hour",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(SettingError::new("server.data_dir", "must not be empty"));
        }
        if self.max_inbox_bytes < 1 << 20 {
            return Err(SettingError::new(
                "server.max_inbox_bytes",
                "must be at least 1MB",
            ));
        }
        if let Some(t) = &self.admin_token {
            if t.trim().len() < 8 {
                return Err(SettingError::new(
                    "server.admin_token",
                    "must be at least 8 characters",
                ));
            }
        }
        let l = &self.limits;
        if l.max_event_bytes < 256 {
            return Err(SettingError::new(
                "server.max_event_bytes",
                "must be at least 256",
            ));
        }
        if l.max_batch_bytes < l.max_event_bytes {
            return Err(SettingError::new(
                "server.max_batch_bytes",
                "must be at least server.max_event_bytes",
            ));
        }
        if l.max_batch_bytes > 32 << 20 {
            return Err(SettingError::new(
                "server.max_batch_bytes",
                "must be at most 32MB",
            ));
        }
        if l.max_batch_events == 0 {
            return Err(SettingError::new(
                "server.max_batch_events",
                "must be at least 1",
            ));
        }
        if self.query.timeout.is_zero() {
            return Err(SettingError::new(
                "server.query_timeout",
                "must be more than 0",
            ));
        }
        if self.query.max_rows == 0 {
            return Err(SettingError::new(
                "server.query_max_rows",
                "must be at least 1",
            ));
        }
        if self.segment_bytes < 1 << 10 {
            return Err(SettingError::new(
                "server.segment_bytes",
                "must be at least 1KiB",
            ));
        }
        self.profile_api.validate()?;
        for (name, d) in [
            ("server.header_timeout", self.header_timeout),
            ("server.body_timeout", self.body_timeout),
        ] {
            if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                return Err(SettingError::new(
                    name,
                    "must be at least 100ms and at most 1 hour",
                ));
            }
        }
        if self.max_connections == 0 || self.max_connections > 1_000_000 {
            return Err(SettingError::new(
                "server.max_connections",
                "must be between 1 and 1000000",
            ));
        }
        if self.sync_max_events == 0 {
            return Err(SettingError::new(
                "server.sync_max_events",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Parses a duration: a number of seconds (`1`, `0.5`) or `humantime`'s
/// form (`500ms`, `1s`, `2m`, `1h 30m`, `30d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration"));
    }
    humantime::parse_duration(s).map_err(|e| {
        format!("{s:?} is not a duration ({e}; e.g. \"1s\", \"500ms\", \"1h 30m\", 2)")
    })
}

/// Parses a size: a number of bytes or a number with a unit, as `bytesize`
/// reads it (`KB`, `MB`, `GB` are powers of 1000; `KiB`, `MiB`, `GiB`
/// powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("{s:?} is not a size ({e}; e.g. 1073741824, \"512MB\", \"1GiB\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert_eq!(parse_bytes("512MB"), Ok(512_000_000));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64 kb"), Ok(64_000));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-5MB").is_err());
    }

    #[test]
    fn validation_names_the_setting() {
        assert!(ServerConfig::default().validate().is_ok());
        let c = ServerConfig {
            sync_interval: Duration::ZERO,
            ..ServerConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.sync_interval"));
        let c = ServerConfig {
            admin_token: Some("short".into()),
            ..ServerConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.admin_token"));
        let c = ServerConfig {
            header_timeout: Duration::ZERO,
            ..ServerConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.header_timeout"));
        let c = ServerConfig {
            max_connections: 0,
            ..ServerConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.max_connections"));
        let mut c = ServerConfig::default();
        c.limits.max_batch_bytes = 100;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.max_batch_bytes"));
    }
}
