//! What the engine reports: profile and identifier numbers, the [`Effect`]s
//! of an event, its [`Outcome`], refused merges ([`Conflict`]) and what a
//! privacy deletion released ([`Forgotten`]).

use crate::settings::TypeId;

/// A profile, numbered in creation order.
pub type ProfileIdx = u32;
/// An identifier in the engine's arena.
pub type IdentIdx = u32;

/// The rule a demoted identifier broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The type's `limit` of identifiers a profile may hold (within its
    /// window).
    Limit(TypeId),
    /// [`MERGE_CAP`](crate::settings::MERGE_CAP): merges one profile may take part in.
    MergeCap,
    /// [`IDENTIFIER_CAP`](crate::settings::IDENTIFIER_CAP): identifiers one profile may hold.
    IdentifierCap,
}

/// One demotion: an identifier dropped from an event because keeping it would
/// have broken `rule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The demoted identifier's type.
    pub ident_type: TypeId,
    /// The demoted identifier's value.
    pub value: String,
    /// The rule keeping it would have broken.
    pub rule: Rule,
    /// The canonical profiles the event touched when the rule was hit.
    pub profiles: Vec<ProfileIdx>,
}

/// What one event changed, in the order the rows are to be landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A profile was created: an `id_graph_updates` row `(p, p)`.
    Created {
        /// The new profile.
        profile: ProfileIdx,
    },
    /// `segment` now resolves to `canonical` (one row per member on a merge).
    Repointed {
        /// The profile re-pointed.
        segment: ProfileIdx,
        /// The live profile it now resolves to.
        canonical: ProfileIdx,
    },
    /// An identifier was attached to a profile for the first time.
    Attached {
        /// The profile it was attached to.
        profile: ProfileIdx,
        /// The identifier ([`Engine::identifier`](super::Engine::identifier) gives its type and value).
        ident: IdentIdx,
    },
    /// The profile's traits changed or it survived a merge: a full snapshot row.
    Traits {
        /// The profile to snapshot.
        profile: ProfileIdx,
    },
    /// An identifier was demoted.
    Conflict(Conflict),
}

/// How one event resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The event's `segment_id` (SPEC §3.3); `None` when no identifier survived.
    pub segment: Option<ProfileIdx>,
    /// The profile the event's identifiers now belong to.
    pub canonical: Option<ProfileIdx>,
    /// Profiles merged away by this event.
    pub merges: u32,
    /// Identifier types first seen in this event's `context.externalIds`.
    pub new_types: Vec<String>,
    /// The suppressed identifier that made the engine refuse the event
    /// (SPEC §8); nothing else changed.
    pub suppressed: Option<(String, String)>,
}

/// What [`Engine::forget`](super::Engine::forget) released.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Every segment that resolved to the profile, the canonical one
    /// included, ascending.
    pub segments: Vec<ProfileIdx>,
    /// The identifiers released, as `(type name, value)`.
    pub identifiers: Vec<(String, String)>,
}
