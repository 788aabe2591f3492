//! The write key of a tracking request's `Authorization` header.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::GeneralPurpose;
use base64::Engine as _;

/// Standard base64 for `Authorization: Basic`; clients differ on padding,
/// so it is optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The write key of `Authorization: Basic base64(writeKey:)`. `Err` for a
/// header that is present but not Basic credentials.
pub(crate) fn basic_write_key(h: &HeaderMap) -> Result<Option<String>, ()> {
    let Some(v) = h.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?;
    let (scheme, cred) = v.trim().split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let raw = BASE64.decode(cred.trim()).map_err(|_| ())?;
    let text = String::from_utf8(raw).map_err(|_| ())?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    Ok(Some(user.to_owned()).filter(|u| !u.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn basic_auth_gives_the_write_key() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic d2tfc291cmNlXzE6"),
        );
        assert_eq!(basic_write_key(&h), Ok(Some("wk_source_1".into())));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic d2tfc291cmNlXzE"),
        );
        assert_eq!(
            basic_write_key(&h),
            Ok(Some("wk_source_1".into())),
            "padding is optional"
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_write_key(&h), Err(()));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert_eq!(basic_write_key(&h), Err(()));
    }
}
