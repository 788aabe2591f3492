//! Setting a profile's trait values from an identify call's traits, read
//! on the event's tape: [`set_trait`] for one leaf, [`apply_object`] for an
//! object-valued member's leaves. `Engine::apply_traits` walks the call's
//! members and calls these.

use super::hasher::IdentHasher;
use super::names::{NameId, Names};
use super::record::TraitRec;
use crate::bytes::same_bytes;
use ps_spec::flatten::for_each_doc_leaf;
use ps_spec::tape::{JsonRef, Kind};
use serde_json::Value as Json;

/// Sets trait `id` of a profile's `traits` to `leaf`, looking at `*hint`
/// first; returns whether a value changed. `*hint` moves past it.
#[inline]
pub(super) fn set_trait(
    traits: &mut Vec<TraitRec>,
    id: NameId,
    hint: &mut usize,
    leaf: JsonRef<'_>,
    order: u64,
) -> bool {
    let at = match traits.get(*hint) {
        Some(x) if x.name == id => Some(*hint),
        _ => traits.iter().position(|x| x.name == id),
    };
    match at {
        Some(k) => {
            let x = &mut traits[k];
            x.order = order;
            *hint = k + 1;
            if leaf.eq_json(&x.value) {
                return false;
            }
            assign(&mut x.value, leaf);
            true
        }
        // An explicit null for a trait the profile lacks changes nothing
        // now, but is kept (as a removal) so a later merge does not bring
        // back an older value from the other profile.
        None => {
            traits.push(TraitRec {
                name: id,
                value: leaf.to_json(),
                order,
            });
            *hint = traits.len();
            leaf.kind() != Kind::Null
        }
    }
}

/// Sets the leaves of an object-valued trait member (named under `prefix`,
/// see `ps_spec::flatten`), looking at `*hint` first; returns whether a
/// value changed.
#[inline]
pub(super) fn apply_object(
    names: &mut Names,
    hasher: &IdentHasher,
    traits: &mut Vec<TraitRec>,
    hint: &mut usize,
    value: JsonRef<'_>,
    prefix: &str,
    order: u64,
) -> bool {
    let mut changed = false;
    for_each_doc_leaf(value, prefix, |name, leaf| {
        if name.is_empty() {
            return;
        }
        let id = match traits.get(*hint) {
            Some(x) if same_bytes(names.get(x.name).as_bytes(), name.as_bytes()) => x.name,
            _ => names.id(hasher, name),
        };
        changed |= set_trait(traits, id, hint, leaf, order);
    });
    changed
}

/// `*dst = src.to_json()`, reusing a string's buffer.
#[inline]
pub(super) fn assign(dst: &mut Json, src: JsonRef<'_>) {
    match (dst, src.kind()) {
        (Json::String(d), Kind::Str(s)) => {
            d.clear();
            d.push_str(s);
        }
        (d, _) => *d = src.to_json(),
    }
}
