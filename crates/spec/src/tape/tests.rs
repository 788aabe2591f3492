//! Tests of [`super`]: moved out of `tape.rs` to keep that file to its code.

use super::*;

/// The tape's reading of `text`, rebuilt as a `serde_json::Value`
/// node by node (not through `to_json`'s shortcut).
fn rebuild(v: JsonRef<'_>) -> Json {
    match v.kind() {
        Kind::Null => Json::Null,
        Kind::Bool(b) => Json::Bool(b),
        Kind::Int(i) => Json::from(i),
        Kind::Number => Json::Number(v.number().unwrap()),
        Kind::Str(s) => Json::String(s.to_owned()),
        Kind::Array => Json::Array(v.elements().map(rebuild).collect()),
        Kind::Object => {
            let mut m = serde_json::Map::new();
            for (k, x) in v.members() {
                m.insert(k.to_owned(), rebuild(x));
            }
            Json::Object(m)
        }
    }
}

fn same_as_serde(text: &str) {
    let ours = Doc::parse(text.to_owned());
    let theirs = serde_json::from_str::<Json>(text);
    match (ours, theirs) {
        (Ok(d), Ok(j)) => {
            assert_eq!(rebuild(d.root()), j, "{text}");
            assert_eq!(d.root().to_json(), j, "{text}");
            assert!(d.root().eq_json(&j), "{text}");
            if let Json::Object(m) = &j {
                let mut sorted = Vec::new();
                d.root().sorted_members(&mut sorted);
                let mut b = d.root().members();
                for (k, v) in d.root().members() {
                    let (kb, vb) = b.next_bytes().unwrap();
                    assert_eq!((k.as_bytes(), v.index()), (kb, vb.index()), "{text}");
                }
                assert!(b.next_bytes().is_none(), "{text}");
                let mut each = Vec::new();
                d.root()
                    .for_each_sorted_member(|k, v| each.push((k, v.index())));
                let idx: Vec<(&str, u32)> = sorted.iter().map(|(k, v)| (*k, v.index())).collect();
                assert_eq!(each, idx, "{text}");
                let keys: Vec<&str> = sorted.iter().map(|(k, _)| *k).collect();
                let want: Vec<&str> = m.keys().map(String::as_str).collect();
                assert_eq!(keys, want, "{text}");
                for (k, v) in sorted {
                    assert_eq!(rebuild(v), m[k], "{text}");
                    assert_eq!(rebuild(d.root().get(k).unwrap()), m[k], "{text}");
                }
            }
        }
        (Err((e, back)), Err(j)) => {
            assert_eq!(e.message(), j.to_string(), "{text}");
            assert_eq!(back, text);
        }
        (o, t) => panic!("{text}: ours {o:?}, serde_json {t:?}"),
    }
}

#[test]
fn reads_what_serde_json_reads() {
    for text in [
        r#"{"type":"track","userId":"u1","properties":{"price":19.99,"n":3,"ok":true,"none":null}}"#,
        r#" { "b" : 1 , "a" : [ 1 , 2.5 , "x" , { "c" : [] } ] , "B" : {} } "#,
        r#"{"k":1,"k":2,"j":{"k":"first"},"k":3}"#,
        r#"{"esc":"a\"b\\c\/d\b\f\n\r\t","u":"\u00e9\u4e2d\ud83d\ude00","plain":"é中😀"}"#,
        r#"{"\u0041key":"v","Akey":"w"}"#,
        r#"{"big":12345678901234567890,"neg":-9223372036854775808,"over":-9223372036854775809}"#,
        r#"{"z":-0,"f":1.0,"e":1e5,"E":-2.5E-3,"zero":0}"#,
        r#"[1,[2,[3]],{}]"#,
        r#""just a string""#,
        "3",
        "null",
        r#"{"emptykey":{"":1}}"#,
    ] {
        same_as_serde(text);
    }
}

#[test]
fn eq_json_is_equality_of_the_read_value() {
    let json = |t: &str| serde_json::from_str::<Json>(t).unwrap();
    for (text, other, equal) in [
        (r#"{"k":1,"k":2}"#, r#"{"k":2}"#, true),
        (r#"{"k":1,"k":2}"#, r#"{"k":1}"#, false),
        (r#"{"k":1,"j":0,"k":2}"#, r#"{"j":0,"k":2}"#, true),
        (r#"{"k":1,"j":0,"k":2}"#, r#"{"j":0,"k":2,"i":3}"#, false),
        (r#"{"a":1,"b":2}"#, r#"{"a":1}"#, false),
        (r#"{"a":1}"#, r#"{"a":1,"b":2}"#, false),
        ("{}", "{}", true),
        ("{}", "[]", false),
        ("[1,2]", "[1]", false),
        ("[1]", "[1,2]", false),
        (r#"[1,{"x":[null,true]}]"#, r#"[1,{"x":[null,true]}]"#, true),
        (
            r#"[1,{"x":[null,true]}]"#,
            r#"[1,{"x":[null,false]}]"#,
            false,
        ),
        ("1", "1.0", false),
        ("1.0", "1", false),
        ("-0", "0.0", true),
        ("-0", "0", false),
        ("12345678901234567890", "12345678901234567890", true),
        ("12345678901234567890", "12345678901234567891", false),
        ("-5", "-5", true),
        ("1e2", "100.0", true),
        (r#""a\u0062""#, r#""ab""#, true),
        (r#""""#, "null", false),
        ("null", "null", true),
        ("false", "0", false),
    ] {
        let d = Doc::parse(text.to_owned()).unwrap();
        assert_eq!(d.root().eq_json(&json(other)), equal, "{text} vs {other}");
        assert_eq!(
            d.root().to_json() == json(other),
            equal,
            "{text} vs {other}"
        );
    }
}

#[test]
fn refuses_what_serde_json_refuses_with_its_message() {
    let deep = "[".repeat(200) + &"]".repeat(200);
    for text in [
        "",
        "{",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        "[1,]",
        "01",
        "1.",
        "1e",
        "-",
        "tru",
        "nul",
        r#"{"a":1} x"#,
        "\"tab\tinside\"",
        r#""\x""#,
        r#""\ud800""#,
        r#""\ud800\u0041""#,
        r#""\udc00""#,
        r#""\u12""#,
        "1e400",
        "[1 2]",
        deep.as_str(),
    ] {
        same_as_serde(text);
    }
}

#[test]
fn nesting_up_to_serde_jsons_limit_is_read() {
    let ok = "[".repeat(127) + &"]".repeat(127);
    same_as_serde(&ok);
    let over = "[".repeat(128) + &"]".repeat(128);
    same_as_serde(&over);
    let obj = r#"{"a":"#.repeat(128) + "1" + &"}".repeat(128);
    same_as_serde(&obj);
}

use proptest::prelude::any;

fn json_value() -> impl proptest::strategy::Strategy<Value = Json> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Json::from),
        // Keys and strings from a small alphabet with quotes, escapes,
        // control characters and non-ASCII, so keys collide and sort.
        "[a-cA-C_ \"\\\u{1}\u{e9}\u{1F600}]{0,6}".prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::vec(("[a-cA-C_ \u{e9}]{0,3}", inner), 0..6)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Objects with repeated keys in any order, small and past the
    /// 16 members `for_each_sorted_member` keeps on the stack, read
    /// as `serde_json` reads them (same keys in the same order, each
    /// with its last value).
    #[test]
    fn repeated_keys_read_as_serde_json_does(
        // Keys sharing long prefixes, with NULs and non-ASCII, around
        // the 8 bytes compared as one number.
        members in proptest::collection::vec(("[ab\u{0}\u{e9}]{0,10}", json_value()), 0..40),
        nested in proptest::collection::vec(("[a-c]", any::<u8>()), 0..20),
    ) {
        let mut text = String::from("{");
        for (i, (k, v)) in members.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!("{}:{v}", Json::from(k.as_str())));
        }
        text.push('}');
        same_as_serde(&text);
        let inner: Vec<String> = nested.iter().map(|(k, n)| format!("\"{k}\":{n}")).collect();
        same_as_serde(&format!("[{{{}}}]", inner.join(",")));
    }

    /// `eq_json` agrees with `==` on the value read.
    #[test]
    fn eq_json_agrees_with_eq(a in json_value(), b in json_value()) {
        // Values as `serde_json` reads their text (it does not read
        // every float it writes back exactly).
        let (text, b) = (a.to_string(), b.to_string());
        let read = |t: &str| serde_json::from_str::<Json>(t).unwrap();
        let (a, b) = (read(&text), read(&b));
        let d = Doc::parse(text).unwrap();
        proptest::prop_assert!(d.root().eq_json(&a));
        proptest::prop_assert_eq!(d.root().eq_json(&b), a == b);
    }

    /// Any JSON `serde_json` writes, compact or pretty, reads back the
    /// same through the tape; and a text cut short or with one byte
    /// changed is accepted or refused exactly as `serde_json` does.
    #[test]
    fn agrees_with_serde_json(v in json_value(), cut in 0usize..400, byte in 0u8..128) {
        let compact = v.to_string();
        same_as_serde(&compact);
        same_as_serde(&serde_json::to_string_pretty(&v).unwrap());
        let mut b = compact.clone().into_bytes();
        if !b.is_empty() {
            let at = cut % b.len();
            same_as_serde(std::str::from_utf8(&b[..at]).unwrap_or(""));
            if b[at].is_ascii() {
                b[at] = byte;
                if let Ok(t) = std::str::from_utf8(&b) {
                    same_as_serde(t);
                }
            }
        }
    }
}
