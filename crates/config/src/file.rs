//! The TOML configuration file.
//!
//! ```toml
//! space = "case_study"                 # warehouse schema name
//! [warehouse]
//! url = "duckdb://profiles.duckdb"     # or postgres://user:pass@host:port/db
//! [identity]
//! id_scheme = "sequential"             # default "use"
//! [[sources]]
//! id = "source_1"
//! name = "Website"
//! slug = "website"
//! write_key = "wk_source_1"
//! [server]                             # `serve` only; every key has a default
//! listen = "127.0.0.1:8088"
//! sync_interval = "1s"
//! data_dir = "profiles-sync-data"
//! [log]                                # several machines (issue 23): serve publishes here,
//! url = "nats://127.0.0.1:4222"        # `resolve` lands it; see README "Running on several machines"
//! [compute]                            # computed traits and audiences (issue 19)
//! source_id = "ps-compute"
//! [[computed_traits]]
//! key = "orders_30d"
//! kind = "count"
//! event = "Order Completed"
//! within = "30d"
//! [[audiences]]
//! key = "buyers"
//! all = [ { trait = "orders_30d", op = "gte", value = 1 } ]
//! ```
//!
//! Unknown keys are errors (a misspelt setting must not be silently ignored),
//! and every error names the setting at fault.
//!
//! Parsing and checking a file reads nothing but its text: no warehouse is
//! opened and no host name is resolved unless `server.listen` names one
//! (the fuzz target `config` runs it on arbitrary files).

use crate::log::LogConfig;
use crate::server::{parse_bytes, parse_duration, ProfileApiConfig, ServerConfig};
use crate::space::{Source, SpaceConfig};
use anyhow::{bail, Context, Result};
use ps_identity::IdentityConfig;
use serde::Deserialize;
use std::path::Path;

/// A config file, parsed and checked ([`Config::parse`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `space`: the space's name, which is also its warehouse schema.
    pub space: String,
    /// `[warehouse]`.
    #[serde(default)]
    pub warehouse: WarehouseConfig,
    /// `[identity]`: identity resolution rules.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// `[[sources]]`.
    pub sources: Vec<Source>,
    /// `[sync]`: file syncs.
    #[serde(default)]
    pub sync: SyncConfig,
    /// `[server]`: `serve`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[compute]` (`tick`, `source_id`, `emit_identifies`).
    #[serde(default)]
    pub compute: ps_compute::raw::RawCompute,
    /// `[[computed_traits]]`.
    #[serde(default)]
    pub computed_traits: Vec<ps_compute::raw::RawTrait>,
    /// `[[audiences]]`.
    #[serde(default)]
    pub audiences: Vec<ps_compute::raw::RawAudience>,
    /// `[[sql_traits]]` (parsed and checked; not run yet).
    #[serde(default)]
    pub sql_traits: Vec<ps_compute::raw::RawSqlTrait>,
    /// `[profile_api]`.
    #[serde(default)]
    pub profile_api: ProfileApiSection,
    /// `[log]`: the replicated event log of a multi-node deployment
    /// (`serve` publishes to it, `resolve` lands it); none on one machine.
    pub log: Option<LogSection>,
    /// The checked definitions, set by [`Config::parse`].
    #[serde(skip)]
    definitions: Option<std::sync::Arc<ps_compute::Definitions>>,
}

/// `[log]`: where the event log is (`url`, required) and how it is used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `nats://host:port,nats://host:port,…`
    pub url: toml::Value,
    /// Copies of each event (the stream's replicas); default 3.
    pub replicas: Option<i64>,
    /// How long a resolver's lease lasts unrenewed; default 10 s.
    pub lease_ttl: Option<toml::Value>,
    /// How long serve waits for the log's acknowledgement before a 503;
    /// default 5 s.
    pub ack_timeout: Option<toml::Value>,
    /// How long a re-published messageId is dropped by the log; default 2 min.
    pub duplicate_window: Option<toml::Value>,
    /// How long the log keeps events; default 7 days.
    pub max_age: Option<toml::Value>,
}

impl LogSection {
    /// The checked settings.
    pub fn to_config(&self) -> Result<LogConfig> {
        let toml::Value::String(url) = &self.url else {
            bail!(
                "invalid setting `log.url`: {} is not a string (expected \"nats://host:port,…\")",
                self.url
            );
        };
        let mut c = LogConfig::new(url)?;
        if let Some(n) = self.replicas {
            if !(1..=5).contains(&n) {
                bail!("invalid setting `log.replicas`: must be between 1 and 5");
            }
            c.replicas = n as usize;
        }
        for (name, v, slot) in [
            ("log.lease_ttl", &self.lease_ttl, &mut c.lease_ttl),
            ("log.ack_timeout", &self.ack_timeout, &mut c.ack_timeout),
            (
                "log.duplicate_window",
                &self.duplicate_window,
                &mut c.duplicate_window,
            ),
            ("log.max_age", &self.max_age, &mut c.max_age),
        ] {
            if let Some(v) = v {
                *slot = duration_setting(name, v)?;
            }
        }
        c.validate()?;
        Ok(c)
    }
}

/// `[profile_api]`: the Profile API's access tokens (HTTP Basic user names)
/// and its rate limit. Without a token it answers 401 to everyone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileApiSection {
    /// Access tokens.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Access tokens as lower-case hex SHA-256 (`printf %s TOKEN | sha256sum`).
    #[serde(default)]
    pub token_hashes: Vec<String>,
    /// Requests per second per space; default 100.
    pub rate_limit: Option<i64>,
}

impl ProfileApiSection {
    /// The validated settings.
    pub fn to_config(&self) -> Result<ProfileApiConfig> {
        let mut c = ProfileApiConfig {
            tokens: self.tokens.clone(),
            token_hashes: self.token_hashes.clone(),
            ..Default::default()
        };
        if let Some(n) = self.rate_limit {
            if !(1..=1_000_000).contains(&n) {
                bail!("invalid setting `profile_api.rate_limit`: must be between 1 and 1000000 (requests per second)");
            }
            c.rate_limit = n as u32;
        }
        c.validate()?;
        Ok(c)
    }
}

/// `[server]`: the HTTP Tracking API and its continuous sync (`serve`).
/// Durations and sizes are kept as raw TOML values and checked in
/// [`ServerSection::to_config`], so a bad value is reported as
/// "invalid setting `server.x`" rather than as a serde type error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `host:port`, default `127.0.0.1:8088`.
    pub listen: Option<String>,
    /// `"1s"`, `"500ms"`, or a number of seconds; default 1 s.
    pub sync_interval: Option<toml::Value>,
    /// Directory of the durable inbox; default `profiles-sync-data`.
    pub data_dir: Option<String>,
    /// Un-landed inbox bytes past which requests get 429; a number or
    /// `"512MB"`, `"1GiB"`; default 1 GiB.
    pub max_inbox_bytes: Option<toml::Value>,
    /// Bearer token for `/admin/query` (and `profiles-sync query` through a
    /// running server); the admin API is off without one.
    pub admin_token: Option<String>,
    /// Largest event, default 32 KB.
    pub max_event_bytes: Option<toml::Value>,
    /// Largest request body (after gzip), default 500 KB.
    pub max_batch_bytes: Option<toml::Value>,
    /// Most events per `/v1/batch`, default 2500.
    pub max_batch_events: Option<i64>,
    /// Un-landed bytes that start a sync before the interval; default 16 MiB.
    pub sync_trigger_bytes: Option<toml::Value>,
    /// Most events per warehouse transaction; default 100000.
    pub sync_max_events: Option<i64>,
    /// Size at which the inbox starts a new segment file (landed segments
    /// are deleted whole); default 64 MiB.
    pub segment_bytes: Option<toml::Value>,
    /// How long one `query` (or `/admin/query`) may run; default 30 s.
    pub query_timeout: Option<toml::Value>,
    /// Most rows a query returns; default 10000.
    pub query_max_rows: Option<i64>,
    /// How long a client may take to send a request's headers (and how long
    /// an idle connection stays open); default 30 s.
    pub header_timeout: Option<toml::Value>,
    /// How long a client may take to send a request's body; default 60 s.
    pub body_timeout: Option<toml::Value>,
    /// Most connections open at once; default 1024.
    pub max_connections: Option<i64>,
}

impl ServerSection {
    /// The validated server settings.
    pub fn to_config(&self) -> Result<ServerConfig> {
        let mut c = ServerConfig::default();
        if let Some(l) = &self.listen {
            c.listen = resolve_listen(l)
                .map_err(|m| anyhow::anyhow!("invalid setting `server.listen`: {m}"))?;
        }
        if let Some(v) = &self.sync_interval {
            c.sync_interval = duration_setting("server.sync_interval", v)?;
        }
        if let Some(v) = &self.query_timeout {
            c.query.timeout = duration_setting("server.query_timeout", v)?;
        }
        if let Some(n) = self.query_max_rows {
            if n < 1 {
                bail!("invalid setting `server.query_max_rows`: must be at least 1");
            }
            c.query.max_rows = n as usize;
        }
        if let Some(d) = &self.data_dir {
            c.data_dir = d.into();
        }
        c.max_inbox_bytes = bytes_setting(
            "server.max_inbox_bytes",
            &self.max_inbox_bytes,
            c.max_inbox_bytes,
        )?;
        c.admin_token = self.admin_token.clone();
        c.limits.max_event_bytes = bytes_setting(
            "server.max_event_bytes",
            &self.max_event_bytes,
            c.limits.max_event_bytes as u64,
        )? as usize;
        c.limits.max_batch_bytes = bytes_setting(
            "server.max_batch_bytes",
            &self.max_batch_bytes,
            c.limits.max_batch_bytes as u64,
        )? as usize;
        if let Some(n) = self.max_batch_events {
            if n < 1 {
                bail!("invalid setting `server.max_batch_events`: must be at least 1");
            }
            c.limits.max_batch_events = n as usize;
        }
        c.sync_trigger_bytes = bytes_setting(
            "server.sync_trigger_bytes",
            &self.sync_trigger_bytes,
            c.sync_trigger_bytes,
        )?;
        c.segment_bytes =
            bytes_setting("server.segment_bytes", &self.segment_bytes, c.segment_bytes)?;
        if let Some(n) = self.sync_max_events {
            if n < 1 {
                bail!("invalid setting `server.sync_max_events`: must be at least 1");
            }
            c.sync_max_events = n as u64;
        }
        if let Some(v) = &self.header_timeout {
            c.header_timeout = duration_setting("server.header_timeout", v)?;
        }
        if let Some(v) = &self.body_timeout {
            c.body_timeout = duration_setting("server.body_timeout", v)?;
        }
        if let Some(n) = self.max_connections {
            if !(1..=1_000_000).contains(&n) {
                bail!("invalid setting `server.max_connections`: must be between 1 and 1000000");
            }
            c.max_connections = n as usize;
        }
        c.validate()?;
        Ok(c)
    }
}

/// `host:port` to a socket address; `localhost` is allowed.
pub fn resolve_listen(s: &str) -> std::result::Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    if !s.contains(':') {
        return Err(format!("{s:?} needs a port, e.g. \"127.0.0.1:8088\""));
    }
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?} is not an address (host:port): {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// A duration setting: `"1s"`, `"500ms"`, or a number of seconds.
fn duration_setting(name: &str, v: &toml::Value) -> Result<std::time::Duration> {
    Ok(match v {
        toml::Value::Integer(n) if *n > 0 => std::time::Duration::from_secs(*n as u64),
        // `from_secs_f64` panics past `Duration::MAX` (1e30 seconds was
        // enough to stop any command at start).
        toml::Value::Float(f) if *f > 0.0 => {
            std::time::Duration::try_from_secs_f64(*f).map_err(|_| {
                anyhow::anyhow!("invalid setting `{name}`: {f} seconds is not a duration")
            })?
        }
        toml::Value::String(s) => {
            parse_duration(s).map_err(|m| anyhow::anyhow!("invalid setting `{name}`: {m}"))?
        }
        other => {
            bail!("invalid setting `{name}`: {other} is not a duration (e.g. \"1s\", \"500ms\", 2)")
        }
    })
}

fn bytes_setting(name: &str, v: &Option<toml::Value>, default: u64) -> Result<u64> {
    match v {
        None => Ok(default),
        Some(toml::Value::Integer(n)) if *n >= 0 => Ok(*n as u64),
        Some(toml::Value::String(s)) => {
            parse_bytes(s).map_err(|m| anyhow::anyhow!("invalid setting `{name}`: {m}"))
        }
        Some(other) => {
            bail!("invalid setting `{name}`: {other} is not a size (e.g. 1048576 or \"512MB\")")
        }
    }
}

/// `[warehouse]`: where the rows land.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// `duckdb://FILE`, `postgres://…` or `delta://DIR`.
    #[serde(default = "default_url")]
    pub url: String,
}

impl Default for WarehouseConfig {
    fn default() -> Self {
        WarehouseConfig { url: default_url() }
    }
}

fn default_url() -> String {
    "duckdb://profiles.duckdb".into()
}

/// `[sync]`: how a file sync batches its events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Events per warehouse transaction during `sync`.
    #[serde(default = "default_batch")]
    pub batch_events: usize,
    /// Events per warehouse transaction during `sync` (whole batches).
    #[serde(default = "default_commit")]
    pub commit_events: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            batch_events: default_batch(),
            commit_events: default_commit(),
        }
    }
}

/// Two batches are in memory at once (one landing, the next being built), so
/// the batch size bounds memory; larger batches than this cost memory without
/// making the sync faster.
fn default_batch() -> usize {
    100_000
}

fn default_commit() -> usize {
    DEFAULT_COMMIT_EVENTS
}

/// Events per transaction of a file sync unless configured: large enough
/// that the per-commit work (engine state, materialization, the
/// warehouse's checkpoint) is paid rarely, small enough that a crash late
/// in a big file keeps most of it.
pub const DEFAULT_COMMIT_EVENTS: usize = 1_000_000;

impl Config {
    /// Reads and checks the file at `path`; `reserved` are the trait names
    /// the warehouse's profile tables keep for their fixed columns
    /// (`ps_warehouse::contract::reserved_trait_names`).
    pub fn load(path: &Path, reserved: &[&str]) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read config file {} (pass --config PATH or create profiles-sync.toml)",
                path.display()
            )
        })?;
        Config::parse(&text, reserved).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses and checks a config file's text (`reserved`: as in
    /// [`Config::load`]). Every error names the setting at fault.
    pub fn parse(text: &str, reserved: &[&str]) -> Result<Config> {
        let mut cfg: Config =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        cfg.validate()?;
        cfg.definitions = cfg.check_definitions(reserved)?.map(std::sync::Arc::new);
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        if self.sources.is_empty() {
            bail!("invalid setting `sources`: at least one [[sources]] entry is needed");
        }
        for (i, s) in self.sources.iter().enumerate() {
            for (field, v) in [
                ("id", &s.id),
                ("name", &s.name),
                ("slug", &s.slug),
                ("write_key", &s.write_key),
            ] {
                if v.trim().is_empty() {
                    bail!("invalid setting `sources[{i}].{field}`: must not be empty");
                }
            }
            for (j, o) in self.sources.iter().enumerate().take(i) {
                if o.id == s.id {
                    bail!(
                        "invalid setting `sources[{i}].id`: {:?} is also the id of sources[{j}]",
                        s.id
                    );
                }
                if o.write_key == s.write_key {
                    bail!("invalid setting `sources[{i}].write_key`: also the write key of sources[{j}]");
                }
            }
        }
        if self.sync.batch_events == 0 {
            bail!("invalid setting `sync.batch_events`: must be at least 1");
        }
        if self.sync.commit_events == 0 {
            bail!("invalid setting `sync.commit_events`: must be at least 1");
        }
        ps_identity::Settings::new(&self.identity)?;
        if let Some(l) = &self.log {
            l.to_config()?;
        }
        let server = self.server.to_config()?;
        let api = self.profile_api.to_config()?;
        for t in &api.tokens {
            if self.sources.iter().any(|s| &s.write_key == t)
                || server.admin_token.as_ref() == Some(t)
            {
                bail!("invalid setting `profile_api.tokens`: a token is also a write key or the admin token; give the Profile API its own");
            }
        }
        Ok(())
    }

    /// The computed traits, audiences and SQL traits, checked with the
    /// profile tables' fixed columns as reserved keys; `None` when there
    /// are none (a `[compute]` section alone computes nothing).
    fn check_definitions(&self, reserved: &[&str]) -> Result<Option<ps_compute::Definitions>> {
        let raw = ps_compute::RawDefinitions {
            compute: self.compute.clone(),
            computed_traits: self.computed_traits.clone(),
            audiences: self.audiences.clone(),
            sql_traits: self.sql_traits.clone(),
        };
        let defs = ps_compute::Definitions::check(&raw, reserved)?;
        Ok(
            (!defs.traits.is_empty() || !defs.audiences.is_empty() || !defs.sql_traits.is_empty())
                .then_some(defs),
        )
    }

    /// The checked computed traits, audiences and SQL traits; `None` when
    /// there are none.
    pub fn definitions(&self) -> Option<&std::sync::Arc<ps_compute::Definitions>> {
        self.definitions.as_ref()
    }

    /// The space the file describes.
    pub fn space(&self) -> SpaceConfig {
        SpaceConfig {
            space: self.space.clone(),
            sources: self.sources.clone(),
            identity: self.identity.clone(),
            compute: self.definitions.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the warehouse reserves (ps_warehouse::contract) includes these.
    const RESERVED: &[&str] = &["seq", "segment_id", "canonical_segment_id"];

    const OK: &str = r#"
space = "s"
[[sources]]
id = "a"
name = "A"
slug = "a"
write_key = "k"
"#;

    #[test]
    fn errors_name_the_setting() {
        assert!(Config::parse(OK, RESERVED).is_ok());
        let e = Config::parse(
            "[[sources]]\nid='a'\nname='A'\nslug='a'\nwrite_key='k'\n",
            RESERVED,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("space"), "{e:#}");
        let e = Config::parse(&format!("{OK}\n[warehouse]\nurll = 'x'\n"), RESERVED).unwrap_err();
        assert!(format!("{e:#}").contains("urll"), "{e:#}");
        let e = Config::parse(
            &format!("{OK}\n[identity]\n[[identity.identifiers]]\ntype='email'\nwindow='often'\n"),
            RESERVED,
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("identity.identifiers[0].window"),
            "{e:#}"
        );
        let e = Config::parse(
            &format!("{OK}\n[[sources]]\nid='a'\nname='B'\nslug='b'\nwrite_key='k2'\n"),
            RESERVED,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("sources[1].id"), "{e:#}");
    }

    #[test]
    fn definitions_are_checked_naming_key_and_field() {
        let c = Config::parse(&format!(
            "{OK}\n[compute]\nsource_id = 'c'\n[[computed_traits]]\nkey = 'orders'\nkind = 'count'\nevent = 'Order Completed'\n[[audiences]]\nkey = 'buyers'\nall = [ {{ trait = 'orders', op = 'gte', value = 1 }} ]\n"
        ), RESERVED)
        .unwrap();
        let d = c.space().compute.unwrap();
        assert_eq!((d.traits.len(), d.audiences.len()), (1, 1));
        assert_eq!(d.settings.source_id, "c");
        assert!(Config::parse(OK, RESERVED)
            .unwrap()
            .space()
            .compute
            .is_none());
        for (bad, place) in [
            (
                "[[computed_traits]]\nkey = 'n'\nkind = 'cnt'\nevent = 'E'",
                "computed_traits.n.kind",
            ),
            (
                "[[computed_traits]]\nkey = 'seq'\nkind = 'count'\nevent = 'E'",
                "computed_traits.seq.key",
            ),
            (
                "[[computed_traits]]\nkey = 's'\nkind = 'sum'\nevent = 'E'",
                "computed_traits.s.property",
            ),
            (
                "[[computed_traits]]\nkey = 'n'\nkind = 'count'\nevent = 'E'\nwithn = '1d'",
                "withn",
            ),
            ("[compute]\ntick = 'often'", "compute.tick"),
            (
                "[[sql_traits]]\nkey = 'q'\nquery = 'select 1'\nevery = 'x'",
                "sql_traits.q.every",
            ),
        ] {
            let e = Config::parse(&format!("{OK}\n{bad}\n"), RESERVED).unwrap_err();
            assert!(format!("{e:#}").contains(place), "{bad}: {e:#}");
        }
    }

    #[test]
    fn server_settings() {
        let c = Config::parse(&format!(
            "{OK}\n[server]\nlisten = '127.0.0.1:9000'\nsync_interval = '250ms'\nmax_inbox_bytes = '64MB'\nadmin_token = 'secret-token'\n"
        ), RESERVED)
        .unwrap();
        let s = c.server.to_config().unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.sync_interval, std::time::Duration::from_millis(250));
        assert_eq!(s.max_inbox_bytes, 64_000_000);
        let t = Config::parse(
            &format!(
                "{OK}\n[server]\nheader_timeout = '5s'\nbody_timeout = 20\nmax_connections = 64\n"
            ),
            RESERVED,
        )
        .unwrap()
        .server
        .to_config()
        .unwrap();
        assert_eq!(
            (t.header_timeout, t.body_timeout, t.max_connections),
            (
                std::time::Duration::from_secs(5),
                std::time::Duration::from_secs(20),
                64
            )
        );
        let d = Config::parse(OK, RESERVED)
            .unwrap()
            .server
            .to_config()
            .unwrap();
        assert_eq!(d, ServerConfig::default());
        for (bad, setting) in [
            ("listen = 'nowhere'", "server.listen"),
            ("listen = '127.0.0.1:99999'", "server.listen"),
            ("sync_interval = 'often'", "server.sync_interval"),
            ("sync_interval = 0", "server.sync_interval"),
            ("sync_interval = true", "server.sync_interval"),
            ("max_inbox_bytes = 'lots'", "server.max_inbox_bytes"),
            ("max_inbox_bytes = 10", "server.max_inbox_bytes"),
            ("admin_token = ''", "server.admin_token"),
            ("max_batch_events = 0", "server.max_batch_events"),
            ("max_event_bytes = 10", "server.max_event_bytes"),
            ("data_dir = ''", "server.data_dir"),
            ("header_timeout = 'soon'", "server.header_timeout"),
            ("header_timeout = '10ms'", "server.header_timeout"),
            ("body_timeout = 0", "server.body_timeout"),
            ("body_timeout = '2h'", "server.body_timeout"),
            ("sync_interval = 1e30", "server.sync_interval"),
            ("query_timeout = inf", "server.query_timeout"),
            ("header_timeout = nan", "server.header_timeout"),
            ("max_connections = 0", "server.max_connections"),
            ("lissen = 'x'", "lissen"),
        ] {
            let e = Config::parse(&format!("{OK}\n[server]\n{bad}\n"), RESERVED).unwrap_err();
            assert!(format!("{e:#}").contains(setting), "{bad}: {e:#}");
        }
    }

    #[test]
    fn log_section_names_its_settings() {
        let c = Config::parse(
            &format!(
                "{OK}\n[log]\nurl = 'nats://127.0.0.1:4222,nats://127.0.0.1:4223'\nlease_ttl = '3s'\n"
            ),
            RESERVED,
        )
        .unwrap();
        let l = c.log.unwrap().to_config().unwrap();
        assert_eq!(l.servers.len(), 2);
        assert_eq!(l.lease_ttl, std::time::Duration::from_secs(3));
        assert!(
            Config::parse(OK, RESERVED).unwrap().log.is_none(),
            "no [log]: single node"
        );
        for (bad, setting) in [
            ("url = 'http://x:1'", "log.url"),
            ("url = 4222", "log.url"),
            ("url = 'nats://h:1'\nreplicas = 0", "log.replicas"),
            ("url = 'nats://h:1'\nlease_ttl = 'soon'", "log.lease_ttl"),
            ("url = 'nats://h:1'\nack_timeout = 0", "log.ack_timeout"),
            ("url = 'nats://h:1'\nmax_age = 1e30", "log.max_age"),
        ] {
            let e = Config::parse(&format!("{OK}\n[log]\n{bad}\n"), RESERVED).unwrap_err();
            assert!(
                format!("{e:#}").contains(&format!("`{setting}`")),
                "{bad}: {e:#}"
            );
        }
    }
}
