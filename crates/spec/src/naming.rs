//! Segment's warehouse naming rule.
//!
//! Segment turns every event name, property and trait key into a column or table
//! name with one snake_case rule, and data teams have years of SQL written against
//! its output, so we reproduce it exactly rather than "improving" it:
//!
//! - only ASCII letters and digits survive; every other character (spaces,
//!   punctuation, `$`, non-ASCII letters such as `Ü`) separates words;
//! - runs of separators collapse into one `_`, and none lead or trail;
//! - a lower-case letter followed by an upper-case one starts a new word
//!   (`accountType` → `account_type`, `productID` → `product_id`);
//! - a run of capitals stays one word (`ABTest` → `abtest`), and digits never split
//!   (`2FA Enabled` → `2fa_enabled`, `_5TEst` → `5test`);
//! - everything is lower-cased.

/// Applies Segment's snake_case rule. The result only holds `[a-z0-9_]`, never
/// starts or ends with `_` and never has `__`; it is empty when the input has no
/// ASCII letter or digit.
pub fn snake_case(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 4);
    let mut pending_sep = false;
    let mut prev_lower = false;
    for ch in input.chars() {
        if ch.is_ascii_alphanumeric() {
            let upper = ch.is_ascii_uppercase();
            if (pending_sep || (upper && prev_lower)) && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(ch.to_ascii_lowercase());
            prev_lower = ch.is_ascii_lowercase();
        } else {
            pending_sep = true;
            prev_lower = false;
        }
    }
    out
}

/// True when `name` is already what [`snake_case`] would produce, which lets the
/// hot path skip an allocation for the common case of well-formed keys.
pub fn is_snake_case(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b[0] == b'_' || b[b.len() - 1] == b'_' {
        return false;
    }
    // One pass; `str::contains("__")` would set up a substring searcher per key.
    let mut prev_sep = false;
    for &c in b {
        let sep = c == b'_';
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || sep) || (sep && prev_sep) {
            return false;
        }
        prev_sep = sep;
    }
    true
}

/// [`snake_case`], borrowing `name` when it already is snake_case: the
/// usual key costs a scan and no allocation.
pub fn to_snake_case(name: &str) -> std::borrow::Cow<'_, str> {
    if is_snake_case(name) {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(snake_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn segment_vectors() {
        let cases = [
            ("Order Completed", "order_completed"),
            ("accountType", "account_type"),
            ("productID", "product_id"),
            ("CStringRef", "cstring_ref"),
            ("ABTest", "abtest"),
            ("iOS Push Token", "i_os_push_token"),
            ("sample___text", "sample_text"),
            ("something.com", "something_com"),
            ("$revenue", "revenue"),
            ("_5TEst", "5test"),
            ("2FA Enabled", "2fa_enabled"),
            ("Über Event", "ber_event"),
            ("userId", "user_id"),
            ("context.page.url", "context_page_url"),
            ("", ""),
            ("$$$", ""),
            ("already_snake", "already_snake"),
        ];
        for (input, want) in cases {
            assert_eq!(snake_case(input), want, "snake_case({input:?})");
        }
    }

    proptest! {
        #[test]
        fn output_alphabet_and_shape(s in "\\PC{0,24}") {
            let out = snake_case(&s);
            prop_assert!(out.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
            prop_assert!(!out.starts_with('_') && !out.ends_with('_') && !out.contains("__"));
            if !out.is_empty() { prop_assert!(is_snake_case(&out)); }
        }

        #[test]
        fn is_snake_case_means_a_fixed_point(s in "[a-z0-9_A-Z. ]{0,12}") {
            prop_assert_eq!(is_snake_case(&s), !s.is_empty() && snake_case(&s) == s);
            prop_assert_eq!(to_snake_case(&s), snake_case(&s));
        }

        #[test]
        fn idempotent(s in "[A-Za-z0-9 _.$-]{0,24}") {
            let once = snake_case(&s);
            prop_assert_eq!(snake_case(&once), once.clone());
        }
    }
}
