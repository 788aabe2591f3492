//! Who may read profiles: HTTP Basic with an access token as the user name
//! and an empty password (Segment's scheme), checked against `[profile_api]
//! tokens` and `token_hashes` in constant time. Write keys and the admin
//! token never open it.

use crate::config::ProfileApiConfig;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::GeneralPurpose;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Standard base64, padding optional (clients differ).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The user name of `Authorization: Basic …`, if the header is one.
fn basic_user(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, cred) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(BASE64.decode(cred.trim()).ok()?).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    Some(user.to_owned()).filter(|u| !u.is_empty())
}

/// Whether the request carries one of the configured tokens. Every
/// configured token and hash is compared, whatever matched, so the time
/// taken tells nothing about which one (or how much of one) matched.
pub(crate) fn authorized(cfg: &ProfileApiConfig, h: &HeaderMap) -> bool {
    let Some(given) = basic_user(h) else {
        return false;
    };
    let mut ok = subtle::Choice::from(0);
    for t in &cfg.tokens {
        ok |= given.as_bytes().ct_eq(t.as_bytes());
    }
    if !cfg.token_hashes.is_empty() {
        let digest = hex::encode(Sha256::digest(given.as_bytes()));
        for want in &cfg.token_hashes {
            ok |= digest
                .as_bytes()
                .ct_eq(want.to_ascii_lowercase().as_bytes());
        }
    }
    bool::from(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn tokens_and_hashes_open_it_nothing_else_does() {
        let cfg = ProfileApiConfig {
            tokens: vec!["pat_secret1".into()],
            token_hashes: vec![hex::encode(Sha256::digest(b"pat_hashed2")).to_uppercase()],
            rate_limit: 100,
        };
        let basic = |u: &str| format!("Basic {}", BASE64.encode(format!("{u}:")));
        assert!(authorized(&cfg, &with(&basic("pat_secret1"))));
        assert!(authorized(&cfg, &with(&basic("pat_hashed2"))));
        assert!(!authorized(&cfg, &with(&basic("pat_secret"))));
        assert!(!authorized(&cfg, &with("Bearer pat_secret1")));
        assert!(!authorized(&cfg, &HeaderMap::new()));
        assert!(!authorized(
            &ProfileApiConfig::default(),
            &with(&basic("x"))
        ));
    }
}
