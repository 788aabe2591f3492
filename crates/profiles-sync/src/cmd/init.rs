//! `profiles-sync init`: a commented starter config, so a new user is two
//! commands from a running server (`init`, then `serve`).
//!
//! The file names a space, an embedded DuckDB file beside it, one source
//! with a freshly generated write key, the identity rules most teams use,
//! and a `[server]` section with a generated admin token. It never
//! overwrites a file.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// The starter config for `space`, with the given secrets.
pub(crate) fn starter(space: &str, write_key: &str, admin_token: &str) -> String {
    format!(
        r#"# profiles-sync configuration, written by `profiles-sync init`.
# Every section is documented in the README; unknown keys are refused.

# The warehouse schema the tables land in (snake_case).
space = "{space}"

[warehouse]
# The embedded default: one DuckDB file (created on first use), relative to
# where profiles-sync runs. PostgreSQL: "postgres://USER:PASS@HOST:5432/DB".
url = "duckdb://{space}.duckdb"

# Identity resolution (Segment Unify's rules). Without this section the
# defaults apply: user_id (priority 1, limit 1), email (2, limit 5), every
# other type after them alphabetically, limit 5.
[identity]
# Refuse placeholder values such as "null", "-1", "anonymous" or "0000" as
# identifiers (they would merge unrelated users).
use_recommended_blocked_values = true

[[identity.identifiers]]
type = "user_id"
priority = 1
limit = 1

[[identity.identifiers]]
type = "email"
priority = 2
limit = 5
window = "ever"
blocked = ["test@example.com", "/@invalid\\./"]

[[identity.identifiers]]
type = "anonymous_id"
# Devices and browsers come and go: keep a profile from collecting hundreds.
limit = 100
window = "monthly"

# One entry per Segment source; its write key is the HTTP Basic user name
# (`-u WRITE_KEY:`) or `writeKey` in the body.
[[sources]]
id = "website"
name = "Website"
slug = "website"
write_key = "{write_key}"

# `profiles-sync serve`: Segment's HTTP Tracking API.
[server]
listen = "127.0.0.1:8088"
sync_interval = "1s"
# The durable inbox: a 200 means the events are fsynced here.
data_dir = "{space}-data"
# Enables /admin/query and `profiles-sync query` while serve runs (keep it secret).
admin_token = "{admin_token}"
"#
    )
}

/// Writes the starter config to `path` and says what to run next.
pub(crate) fn run(path: &Path, space: &str) -> Result<()> {
    if !ps_spec::naming::is_snake_case(space) {
        bail!("--space {space:?} is not snake_case (lower-case letters, digits and _)");
    }
    let write_key = format!("wk_{}", uuid::Uuid::new_v4().simple());
    let admin_token = uuid::Uuid::new_v4().simple().to_string();
    let text = starter(space, &write_key, &admin_token);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (init never overwrites a file)",
                path.display()
            )
        })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    let config = path.display();
    println!("wrote {config} (space {space}, one source, write key in the file)");
    println!("next:");
    println!("  profiles-sync --config {config} serve");
    println!(
        "  curl -u WRITE_KEY: -H 'Content-Type: application/json' \
         -d '{{\"userId\":\"u1\",\"event\":\"Signed Up\"}}' http://127.0.0.1:8088/v1/track"
    );
    println!("  profiles-sync --config {config} query \"SELECT * FROM {space}.id_graph\"");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_config_loads_and_keeps_its_secrets_where_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles-sync.toml");
        run(&path, "my_space").unwrap();
        let cfg = crate::config::load(&path).unwrap();
        assert_eq!(cfg.space, "my_space");
        assert!(cfg.sources[0].write_key.starts_with("wk_"));
        let server = cfg.server.to_config().unwrap();
        assert_eq!(server.admin_token.as_deref().map(str::len), Some(32));
        // It never overwrites.
        let before = std::fs::read_to_string(&path).unwrap();
        assert!(run(&path, "my_space").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert!(run(&dir.path().join("x.toml"), "Not Snake").is_err());
    }
}
