//! The fuzz target `config`: a config file's text through
//! [`ps_config::Config::parse`], the parser and checks every command runs
//! (TOML, `[[sources]]`, `[identity]`, `[server]`, `[profile_api]`, the
//! computed traits, audiences and SQL traits). A file is accepted or
//! refused with a message; an accepted one yields settings that check
//! again and a space.

use ps_config::Config;
use std::net::SocketAddr;

/// The trait names the warehouse's profile tables keep for their fixed
/// columns (`ps_warehouse::contract::reserved_trait_names`, which this
/// crate cannot call without building DuckDB; `tests/reserved.rs` checks
/// the two lists are equal).
pub const RESERVED: &[&str] = &[
    "seq",
    "uuid_ts",
    "timestamp",
    "received_at",
    "triggering_event_id",
    "triggering_event_type",
    "triggering_event_name",
    "triggering_event_source_id",
    "triggering_event_source_name",
    "triggering_event_source_slug",
    "id",
    "segment_id",
    "canonical_segment_id",
    "merged_to",
];

/// A config file, parsed and checked.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A `server.listen` naming a host is resolved through DNS: not from a
    // fuzzer. Addresses are parsed without it.
    if let Ok(table) = text.parse::<toml::Table>() {
        let listen = table
            .get("server")
            .and_then(|s| s.get("listen"))
            .and_then(|l| l.as_str());
        if listen.is_some_and(|l| l.contains(':') && l.parse::<SocketAddr>().is_err()) {
            return;
        }
    }
    match Config::parse(text, RESERVED) {
        Ok(cfg) => {
            let server = cfg.server.to_config().expect("checked by parse");
            server.validate().expect("checked by parse");
            cfg.profile_api.to_config().expect("checked by parse");
            ps_identity::Settings::new(&cfg.identity).expect("checked by parse");
            let space = cfg.space();
            assert!(!space.sources.is_empty(), "a space without sources");
        }
        Err(e) => assert!(
            !format!("{e:#}").trim().is_empty(),
            "a refusal without a reason"
        ),
    }
}
