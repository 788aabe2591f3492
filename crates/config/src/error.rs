//! The error of a setting that is out of range or malformed.

/// A setting is out of range or malformed; it names the setting as the
/// config file does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}`: {message}")]
pub struct SettingError {
    /// The setting at fault, as named in the config file.
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

impl SettingError {
    /// A [`SettingError`] about `setting`.
    pub fn new(setting: &str, message: impl Into<String>) -> SettingError {
        SettingError {
            setting: setting.to_owned(),
            message: message.into(),
        }
    }
}
