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
//! ```
//!
//! Unknown keys are errors (a misspelt setting must not be silently ignored),
//! and every error names the setting at fault.

use anyhow::{bail, Context, Result};
use ps_identity::IdentityConfig;
use ps_pipeline::{Source, SpaceConfig};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub space: String,
    #[serde(default)]
    pub warehouse: WarehouseConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    pub sources: Vec<Source>,
    #[serde(default)]
    pub sync: SyncConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Events per warehouse transaction during `sync`.
    #[serde(default = "default_batch")]
    pub batch_events: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig { batch_events: default_batch() }
    }
}

fn default_batch() -> usize {
    200_000
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read config file {} (pass --config PATH or create profiles-sync.toml)", path.display())
        })?;
        Config::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config> {
        let cfg: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        if self.sources.is_empty() {
            bail!("invalid setting `sources`: at least one [[sources]] entry is needed");
        }
        for (i, s) in self.sources.iter().enumerate() {
            for (field, v) in [("id", &s.id), ("name", &s.name), ("slug", &s.slug), ("write_key", &s.write_key)] {
                if v.trim().is_empty() {
                    bail!("invalid setting `sources[{i}].{field}`: must not be empty");
                }
            }
            for (j, o) in self.sources.iter().enumerate().take(i) {
                if o.id == s.id {
                    bail!("invalid setting `sources[{i}].id`: {:?} is also the id of sources[{j}]", s.id);
                }
                if o.write_key == s.write_key {
                    bail!("invalid setting `sources[{i}].write_key`: also the write key of sources[{j}]");
                }
            }
        }
        if self.sync.batch_events == 0 {
            bail!("invalid setting `sync.batch_events`: must be at least 1");
        }
        ps_identity::Settings::new(&self.identity)?;
        Ok(())
    }

    pub fn space(&self) -> SpaceConfig {
        SpaceConfig { space: self.space.clone(), sources: self.sources.clone(), identity: self.identity.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(Config::parse(OK).is_ok());
        let e = Config::parse("[[sources]]\nid='a'\nname='A'\nslug='a'\nwrite_key='k'\n").unwrap_err();
        assert!(format!("{e:#}").contains("space"), "{e:#}");
        let e = Config::parse(&format!("{OK}\n[warehouse]\nurll = 'x'\n")).unwrap_err();
        assert!(format!("{e:#}").contains("urll"), "{e:#}");
        let e = Config::parse(&format!("{OK}\n[identity]\n[[identity.identifiers]]\ntype='email'\nwindow='often'\n"))
            .unwrap_err();
        assert!(format!("{e:#}").contains("identity.identifiers[0].window"), "{e:#}");
        let e = Config::parse(&format!("{OK}\n[[sources]]\nid='a'\nname='B'\nslug='b'\nwrite_key='k2'\n")).unwrap_err();
        assert!(format!("{e:#}").contains("sources[1].id"), "{e:#}");
    }
}
