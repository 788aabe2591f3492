//! Trait names, numbered once per engine.

use super::hasher::IdentHasher;
use super::index::Index;
use crate::bytes::same_bytes;
use ps_spec::naming::{is_snake_case, to_snake_case};

/// A trait name's number in the engine's [`Names`].
pub(super) type NameId = u32;

/// Trait names, each stored once per engine: profiles hold their numbers.
/// (Names are few, most profiles share them; a name stays here for the
/// engine's life, even when no profile holds it any more.)
///
/// Top-level keys of identify traits are remembered with the name they give
/// (`createdAt` gives `created_at`), so a key seen before costs a hash and a
/// probe, not the naming rule and an allocation.
#[derive(Debug, Default)]
pub(super) struct Names {
    list: Vec<Box<str>>,
    /// Whether each name is snake_case (then a flat member under a key
    /// spelled like it has this name).
    snake: Vec<bool>,
    index: Index,
    /// Keys seen, with their names.
    keys: Vec<(Box<str>, NameId)>,
    key_index: Index,
}

impl Names {
    /// The number of `name`, adding it if new.
    pub(super) fn id(&mut self, hasher: &IdentHasher, name: &str) -> NameId {
        let h = hasher.hash(0, name);
        let list = &self.list;
        if let Some(i) = self.index.find(h, |j| {
            same_bytes(list[j as usize].as_bytes(), name.as_bytes())
        }) {
            return i;
        }
        let i = self.list.len() as NameId;
        self.list.push(name.into());
        self.snake.push(is_snake_case(name));
        self.index.insert(h, i);
        i
    }

    /// The name of a flat member under `key` (`key` itself when snake_case,
    /// else `ps_spec::naming::snake_case(key)`), added if new; `None` when
    /// the key names nothing (`"$$"`).
    #[inline]
    pub(super) fn of_key(&mut self, hasher: &IdentHasher, key: &str) -> Option<NameId> {
        let h = hasher.hash(0, key);
        let keys = &self.keys;
        if let Some(k) = self.key_index.find(h, |j| {
            same_bytes(keys[j as usize].0.as_bytes(), key.as_bytes())
        }) {
            return Some(self.keys[k as usize].1);
        }
        let name = to_snake_case(key);
        if name.is_empty() {
            return None;
        }
        let id = self.id(hasher, &name);
        self.key_index.insert(h, self.keys.len() as u32);
        self.keys.push((key.into(), id));
        Some(id)
    }

    #[inline]
    pub(super) fn get(&self, id: NameId) -> &str {
        &self.list[id as usize]
    }

    #[inline]
    pub(super) fn is_snake(&self, id: NameId) -> bool {
        self.snake[id as usize]
    }
}
