//! Identity resolution settings (SPEC §3.2) and their validation.
//!
//! The configuration arrives as plain data ([`IdentityConfig`], deserialized
//! from the `[identity]` table of the TOML file) and is compiled into
//! [`Settings`]: identifier types numbered by a dense [`TypeId`], blocked-value
//! regexes compiled, defaults filled in. Every mistake is reported with the path
//! of the setting that holds it, because a bad identity rule silently glues
//! strangers together and must never be guessed around.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One microsecond-based day.
const DAY: i64 = 86_400_000_000;

/// Most merges one profile may take part in.
pub const MERGE_CAP: u32 = 100;
/// Most identifiers one profile may hold.
pub const IDENTIFIER_CAP: usize = 1_000;

/// The default identifier types of SPEC §3.1.
pub const DEFAULT_TYPES: [&str; 10] = [
    "user_id",
    "email",
    "android.id",
    "android.idfa",
    "android.push_token",
    "anonymous_id",
    "ga_client_id",
    "ios.id",
    "ios.idfa",
    "ios.push_token",
];

/// Values blocked by `use_recommended_blocked_values`.
pub const RECOMMENDED_BLOCKED: [&str; 4] = ["/^[0-]*$/", "-1", "null", "anonymous"];

/// How profile ids are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdScheme {
    /// `use_` + 27 base-62 characters, derived from the space and a counter.
    #[default]
    Use,
    /// `profile_1`, `profile_2`, …
    Sequential,
}

/// The window a limit is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// Every identifier ever attached counts.
    #[default]
    Ever,
    /// Identifiers seen in the last 365 days count.
    Annually,
    /// Identifiers seen in the last 30 days count.
    Monthly,
    /// Identifiers seen in the last 7 days count.
    Weekly,
    /// Identifiers seen in the last day count.
    Daily,
}

impl Window {
    /// Length in microseconds; `None` for ever.
    pub fn micros(self) -> Option<i64> {
        match self {
            Window::Ever => None,
            Window::Annually => Some(365 * DAY),
            Window::Monthly => Some(30 * DAY),
            Window::Weekly => Some(7 * DAY),
            Window::Daily => Some(DAY),
        }
    }

    fn parse(s: &str) -> Option<Window> {
        Some(match s {
            "ever" => Window::Ever,
            "annually" => Window::Annually,
            "monthly" => Window::Monthly,
            "weekly" => Window::Weekly,
            "daily" => Window::Daily,
            _ => return None,
        })
    }
}

/// `[identity]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// `id_scheme`: how new profiles' segment ids are made.
    #[serde(default)]
    pub id_scheme: IdScheme,
    /// `use_recommended_blocked_values`: block [`RECOMMENDED_BLOCKED`]
    /// (placeholder values such as `null` or `-1`) for every type.
    #[serde(default)]
    pub use_recommended_blocked_values: bool,
    /// The `[[identity.identifiers]]` entries, in file order.
    #[serde(default)]
    pub identifiers: Vec<IdentifierConfig>,
}

/// One `[[identity.identifiers]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierConfig {
    /// `type`: the identifier type (a default one, or a new custom one).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Trait/property key a custom identifier is read from.
    pub key: Option<String>,
    /// Rank among types: 1 is the most trusted (kept when a rule is broken).
    pub priority: Option<u32>,
    /// Most identifiers of this type one profile may hold within `window`.
    pub limit: Option<u32>,
    /// Kept as text so an unknown window is reported with its setting's name.
    pub window: Option<String>,
    /// Values never promoted to identifiers: exact text, or `/regex/`.
    #[serde(default)]
    pub blocked: Vec<String>,
}

/// A setting that cannot be used, with the setting's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}`: {message}")]
pub struct SettingsError {
    /// The setting's path in the config file (`identity.identifiers[0].limit`).
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

/// Dense number of an identifier type.
pub type TypeId = u16;

/// A blocked value: exact text or a regular expression.
#[derive(Debug, Clone)]
pub enum Blocked {
    /// Exactly this text.
    Exact(String),
    /// Any text the regular expression (written `/…/`) matches.
    Pattern(Regex),
}

impl Blocked {
    fn parse(s: &str) -> Result<Blocked, regex::Error> {
        if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') {
            Regex::new(&s[1..s.len() - 1]).map(Blocked::Pattern)
        } else {
            Ok(Blocked::Exact(s.to_owned()))
        }
    }

    fn matches(&self, v: &str) -> bool {
        match self {
            Blocked::Exact(e) => e == v,
            Blocked::Pattern(r) => r.is_match(v),
        }
    }
}

/// Compiled settings of one identifier type.
#[derive(Debug, Clone)]
pub struct TypeSettings {
    /// The type's name (`user_id`, `email`, ...).
    pub name: String,
    /// Custom key, with its camelCase and snake_case spellings.
    pub keys: Vec<String>,
    /// Rank among types: 1 is the most trusted.
    pub priority: u32,
    /// Most identifiers of this type one profile may hold within `window`.
    pub limit: u32,
    /// How far back identifiers count towards `limit`.
    pub window: Window,
    /// Values never promoted to identifiers of this type.
    pub blocked: Vec<Blocked>,
}

/// Type ids of the default identifier types.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Builtin {
    pub user_id: TypeId,
    pub anonymous_id: TypeId,
    pub email: TypeId,
    pub ga_client_id: TypeId,
    /// `[id, idfa, push_token]` for android and ios.
    pub android: [TypeId; 3],
    pub ios: [TypeId; 3],
}

/// Compiled identity settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) types: Vec<TypeSettings>,
    by_name: HashMap<String, TypeId>,
    recommended: Vec<Blocked>,
    /// Ids of the default types, looked up once: extraction runs per event.
    pub(crate) builtin: Builtin,
    /// Whether any type has blocked values (most configurations have none, and
    /// then the per-identifier check is skipped).
    any_blocked: bool,
    /// Types read from custom keys, with their spellings.
    pub(crate) custom: Vec<(TypeId, Vec<String>)>,
    /// Types added at run time from `context.externalIds`, in order of first sight.
    pub(crate) added: Vec<String>,
}

impl Settings {
    /// Compiles and validates a configuration.
    pub fn new(cfg: &IdentityConfig) -> Result<Settings, SettingsError> {
        let mut types: Vec<TypeSettings> = Vec::new();
        // Defaults: user_id 1, email 2, the rest alphabetically from 3.
        let mut rest: Vec<&str> = DEFAULT_TYPES[2..].to_vec();
        rest.sort_unstable();
        for (i, name) in ["user_id", "email"].into_iter().chain(rest).enumerate() {
            types.push(default_type(name, i as u32 + 1));
        }
        let mut seen = HashMap::new();
        for (i, entry) in cfg.identifiers.iter().enumerate() {
            let at = |field: &str| format!("identity.identifiers[{i}].{field}");
            let err = |field: &str, message: String| SettingsError {
                setting: at(field),
                message,
            };
            let name = entry.type_name.trim().to_ascii_lowercase();
            if name.is_empty() {
                return Err(err("type", "must not be empty".into()));
            }
            if let Some(prev) = seen.insert(name.clone(), i) {
                return Err(err(
                    "type",
                    format!("type {name:?} is already configured by identity.identifiers[{prev}]"),
                ));
            }
            let existing = types.iter().position(|t| t.name == name);
            if existing.is_none() && entry.key.is_none() {
                return Err(err(
                    "key",
                    format!("custom identifier {name:?} needs a `key` to read it from"),
                ));
            }
            if entry.limit == Some(0) {
                return Err(err("limit", "must be at least 1".into()));
            }
            if entry.priority == Some(0) {
                return Err(err(
                    "priority",
                    "must be at least 1 (1 is the most trusted)".into(),
                ));
            }
            let window = match &entry.window {
                None => None,
                Some(w) => Some(Window::parse(w).ok_or_else(|| {
                    err("window", format!("unknown window {w:?} (expected ever, annually, monthly, weekly or daily)"))
                })?),
            };
            let mut blocked = Vec::new();
            for (j, b) in entry.blocked.iter().enumerate() {
                blocked.push(Blocked::parse(b).map_err(|e| SettingsError {
                    setting: format!("identity.identifiers[{i}].blocked[{j}]"),
                    message: format!("bad regular expression {b:?}: {e}"),
                })?);
            }
            let t = match existing {
                Some(k) => &mut types[k],
                None => {
                    let next = types.len() as u32 + 1;
                    types.push(default_type(&name, next));
                    types.last_mut().expect("just pushed")
                }
            };
            if let Some(p) = entry.priority {
                t.priority = p;
            }
            if let Some(l) = entry.limit {
                t.limit = l;
            }
            if let Some(w) = window {
                t.window = w;
            }
            t.blocked = blocked;
            if let Some(k) = &entry.key {
                t.keys = key_spellings(k);
            }
        }
        // Priorities must be distinct: the demotion order depends on them.
        let mut by_priority: HashMap<u32, &str> = HashMap::new();
        for t in &types {
            if let Some(other) = by_priority.insert(t.priority, &t.name) {
                let i = cfg
                    .identifiers
                    .iter()
                    .position(|e| {
                        e.type_name.eq_ignore_ascii_case(&t.name)
                            || e.type_name.eq_ignore_ascii_case(other)
                    })
                    .unwrap_or(0);
                return Err(SettingsError {
                    setting: format!("identity.identifiers[{i}].priority"),
                    message: format!(
                        "priority {} is used by both {other:?} and {:?}",
                        t.priority, t.name
                    ),
                });
            }
        }
        let by_name = types
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i as TypeId))
            .collect();
        let recommended = if cfg.use_recommended_blocked_values {
            RECOMMENDED_BLOCKED
                .iter()
                .map(|b| Blocked::parse(b).expect("valid built-in pattern"))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Settings {
            types,
            by_name,
            recommended,
            added: Vec::new(),
            builtin: Builtin {
                user_id: 0,
                anonymous_id: 0,
                email: 0,
                ga_client_id: 0,
                android: [0; 3],
                ios: [0; 3],
            },
            any_blocked: false,
            custom: Vec::new(),
        }
        .compiled())
    }

    /// Fills the derived lookup fields.
    fn compiled(mut self) -> Settings {
        let id = |s: &Settings, n: &str| s.type_id(n).expect("default types are always present");
        self.builtin = Builtin {
            user_id: id(&self, "user_id"),
            anonymous_id: id(&self, "anonymous_id"),
            email: id(&self, "email"),
            ga_client_id: id(&self, "ga_client_id"),
            android: [
                id(&self, "android.id"),
                id(&self, "android.idfa"),
                id(&self, "android.push_token"),
            ],
            ios: [
                id(&self, "ios.id"),
                id(&self, "ios.idfa"),
                id(&self, "ios.push_token"),
            ],
        };
        self.any_blocked =
            !self.recommended.is_empty() || self.types.iter().any(|t| !t.blocked.is_empty());
        self.custom = self
            .types
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.keys.is_empty())
            .map(|(i, t)| (i as TypeId, t.keys.clone()))
            .collect();
        self
    }

    /// The id of the type named `name`, if there is one.
    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        self.by_name.get(name).copied()
    }

    /// The settings of type `t`.
    pub fn get(&self, t: TypeId) -> &TypeSettings {
        &self.types[t as usize]
    }

    /// The name of type `t`.
    pub fn name(&self, t: TypeId) -> &str {
        &self.types[t as usize].name
    }

    /// Every type with its id, in id order.
    pub fn types(&self) -> impl Iterator<Item = (TypeId, &TypeSettings)> {
        self.types.iter().enumerate().map(|(i, t)| (i as TypeId, t))
    }

    /// Types added from `context.externalIds` since start-up or restore.
    pub fn added_types(&self) -> &[String] {
        &self.added
    }

    /// The id of `name`, adding it with default settings (priority after every
    /// existing one, limit 5 ever) when unknown. Returns whether it was added.
    pub fn type_id_or_add(&mut self, name: &str) -> (TypeId, bool) {
        if let Some(t) = self.type_id(name) {
            return (t, false);
        }
        let priority = self.types.iter().map(|t| t.priority).max().unwrap_or(0) + 1;
        let id = self.types.len() as TypeId;
        let mut t = default_type(name, priority);
        t.keys.clear();
        self.types.push(t);
        self.by_name.insert(name.to_owned(), id);
        self.added.push(name.to_owned());
        (id, true)
    }

    /// Whether `value` may not be promoted to an identifier of type `t`.
    ///
    /// Inlined down to one flag test: most engines block nothing, and the
    /// call itself showed in the profile of every event's lookups.
    /// (`any_blocked` is false only when no type blocks anything and the
    /// recommended list is off.)
    #[inline(always)]
    pub fn is_blocked(&self, t: TypeId, value: &str) -> bool {
        self.any_blocked && self.blocked_by_list(t, value)
    }

    #[inline(never)]
    fn blocked_by_list(&self, t: TypeId, value: &str) -> bool {
        self.types[t as usize]
            .blocked
            .iter()
            .any(|b| b.matches(value))
            || self.recommended.iter().any(|b| b.matches(value))
    }
}

fn default_type(name: &str, priority: u32) -> TypeSettings {
    TypeSettings {
        name: name.to_owned(),
        keys: Vec::new(),
        priority,
        limit: if name == "user_id" { 1 } else { 5 },
        window: Window::Ever,
        blocked: Vec::new(),
    }
}

/// `appId` and `app_id` both match a key configured as either.
fn key_spellings(k: &str) -> Vec<String> {
    let snake = ps_spec::naming::snake_case(k);
    let mut camel = String::new();
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            camel.push(c.to_ascii_uppercase());
            up = false;
        } else {
            camel.push(c);
        }
    }
    let mut v = vec![k.to_owned()];
    for s in [snake, camel] {
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(entries: Vec<IdentifierConfig>) -> IdentityConfig {
        IdentityConfig {
            identifiers: entries,
            ..IdentityConfig::default()
        }
    }

    #[test]
    fn defaults() {
        let s = Settings::new(&IdentityConfig::default()).unwrap();
        let p = |n: &str| s.get(s.type_id(n).unwrap()).priority;
        assert_eq!(p("user_id"), 1);
        assert_eq!(p("email"), 2);
        assert_eq!(p("android.id"), 3);
        assert_eq!(p("anonymous_id"), 6);
        assert_eq!(p("ios.push_token"), 10);
        assert_eq!(s.get(s.type_id("user_id").unwrap()).limit, 1);
        assert_eq!(s.get(s.type_id("email").unwrap()).limit, 5);
    }

    #[test]
    fn errors_name_the_setting() {
        let e = Settings::new(&cfg(vec![IdentifierConfig {
            type_name: "anonymous_id".into(),
            window: Some("fortnightly".into()),
            ..Default::default()
        }]))
        .unwrap_err();
        assert_eq!(e.setting, "identity.identifiers[0].window");
        let e = Settings::new(&cfg(vec![IdentifierConfig {
            type_name: "email".into(),
            blocked: vec!["/(/".into()],
            ..Default::default()
        }]))
        .unwrap_err();
        assert_eq!(e.setting, "identity.identifiers[0].blocked[0]");
        let e = Settings::new(&cfg(vec![IdentifierConfig {
            type_name: "email".into(),
            priority: Some(1),
            ..Default::default()
        }]))
        .unwrap_err();
        assert!(e.setting.ends_with(".priority"), "{e}");
        let e = Settings::new(&cfg(vec![IdentifierConfig {
            type_name: "email".into(),
            limit: Some(0),
            ..Default::default()
        }]))
        .unwrap_err();
        assert_eq!(e.setting, "identity.identifiers[0].limit");
        let twice = IdentifierConfig {
            type_name: "email".into(),
            ..Default::default()
        };
        let e = Settings::new(&cfg(vec![twice.clone(), twice])).unwrap_err();
        assert_eq!(e.setting, "identity.identifiers[1].type");
    }

    #[test]
    fn custom_keys_and_blocked() {
        let s = Settings::new(&cfg(vec![IdentifierConfig {
            type_name: "app".into(),
            key: Some("appId".into()),
            priority: Some(20),
            blocked: vec!["test".into(), "/^tmp_/".into()],
            ..Default::default()
        }]))
        .unwrap();
        let t = s.type_id("app").unwrap();
        assert_eq!(s.get(t).keys, vec!["appId", "app_id"]);
        assert!(s.is_blocked(t, "test") && s.is_blocked(t, "tmp_1") && !s.is_blocked(t, "x"));
    }
}
