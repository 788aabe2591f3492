//! What the pipeline needs to know about a space: its name, its sources, its
//! identity settings and computed traits. The binary reads these from TOML
//! ([`crate::file`]); tests build them directly.

use ps_identity::IdentityConfig;
use serde::{Deserialize, Serialize};

/// A source of events: Segment's unit of "where events come from", found by
/// its write key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The source's id (`event_source_id`, `triggering_event_source_id`).
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its slug.
    pub slug: String,
    /// The write key events name it by.
    pub write_key: String,
}

impl From<(String, String, String, String)> for Source {
    /// `(id, name, slug, write_key)`, the shape `ps_gen::sources` produces.
    fn from((id, name, slug, write_key): (String, String, String, String)) -> Source {
        Source {
            id,
            name,
            slug,
            write_key,
        }
    }
}

/// A space: one warehouse schema, its sources, identity rules and computed
/// traits.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceConfig {
    /// The space's name, which is also its warehouse schema.
    pub space: String,
    /// Where its events come from.
    pub sources: Vec<Source>,
    /// Its identity resolution rules.
    pub identity: IdentityConfig,
    /// Its computed traits and audiences (checked); `None` when it has
    /// none, and then the pipeline keeps no compute state at all.
    pub compute: Option<std::sync::Arc<ps_compute::Definitions>>,
}

impl SpaceConfig {
    /// The index of the source with write key `key`.
    pub fn source_by_key(&self, key: &str) -> Option<usize> {
        self.sources.iter().position(|s| s.write_key == key)
    }

    /// The index of the source with id `id`.
    pub fn source_by_id(&self, id: &str) -> Option<usize> {
        self.sources.iter().position(|s| s.id == id)
    }
}
