//! Properties of generated streams: determinism, validity, recountable
//! statistics and the rough shape of the traffic.

use std::collections::{BTreeMap, HashMap, HashSet};

use ps_gen::{generate, sources, GenConfig, Generator, Shape};
use serde_json::Value;

fn cfg(events: u64, seed: u64, sources: u32) -> GenConfig {
    GenConfig {
        events,
        seed,
        sources,
    }
}

fn bytes_of(c: &GenConfig) -> (Vec<u8>, Shape) {
    let mut out = Vec::new();
    let shape = generate(c, &mut out).expect("writing to a Vec");
    (out, shape)
}

fn lines(out: &[u8]) -> Vec<&str> {
    let text = std::str::from_utf8(out).expect("UTF-8 output");
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines().collect()
}

fn parse(line: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => m,
        other => panic!("not a JSON object: {other:?}\n{line}"),
    }
}

fn s<'a>(e: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

#[test]
fn same_config_gives_identical_bytes_and_seed_matters() {
    let (a, sa) = bytes_of(&cfg(5_000, 11, 3));
    let (b, sb) = bytes_of(&cfg(5_000, 11, 3));
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = bytes_of(&cfg(5_000, 12, 3));
    assert_ne!(a, c);
    // Sources only change routing, but still change bytes.
    let (d, _) = bytes_of(&cfg(5_000, 11, 1));
    assert_ne!(a, d);
}

#[test]
fn iterator_matches_generate_and_tracks_shape() {
    let c = cfg(3_000, 5, 2);
    let (out, shape) = bytes_of(&c);
    let mut g = Generator::new(&c);
    assert_eq!(g.size_hint(), (3_000, Some(3_000)));
    let mut joined = String::new();
    for line in g.by_ref() {
        assert!(!line.ends_with('\n'));
        joined.push_str(&line);
        joined.push('\n');
    }
    assert_eq!(joined.as_bytes(), &out[..]);
    assert_eq!(g.shape(), &shape);
    assert_eq!(g.next(), None);
    // Partial iteration: the shape covers exactly what was yielded.
    let mut g = Generator::new(&c);
    let first: Vec<String> = g.by_ref().take(10).collect();
    assert_eq!(g.shape().events, 10);
    let len: u64 = first.iter().map(|l| l.len() as u64 + 1).sum();
    assert_eq!(g.shape().bytes, len);
}

#[test]
fn zero_events_is_empty() {
    let (out, shape) = bytes_of(&cfg(0, 1, 1));
    assert!(out.is_empty());
    assert_eq!(shape, Shape::default());
    assert_eq!(Generator::new(&cfg(0, 1, 1)).next(), None);
}

#[test]
fn every_line_is_a_valid_segment_event() {
    let (out, _) = bytes_of(&cfg(20_000, 7, 3));
    let lines = lines(&out);
    assert_eq!(lines.len(), 20_000);
    let write_keys: HashSet<String> = sources(3).into_iter().map(|s| s.3).collect();
    for line in lines {
        let e = parse(line);
        let ty = s(&e, "type").expect("type");
        assert!(
            ["identify", "track", "page", "screen", "group", "alias"].contains(&ty),
            "bad type {ty}"
        );
        let anon = s(&e, "anonymousId").unwrap_or("");
        let user = s(&e, "userId").unwrap_or("");
        assert!(!anon.is_empty() || !user.is_empty(), "no identity: {line}");
        if !anon.is_empty() {
            assert_eq!(anon.len(), 36, "{anon}");
        }
        assert!(!s(&e, "messageId").unwrap_or("").is_empty());
        assert!(write_keys.contains(s(&e, "writeKey").expect("writeKey")));
        for k in ["timestamp", "sentAt"] {
            let t = s(&e, k).expect(k);
            let b = t.as_bytes();
            assert!(
                b.len() == 24 && b[10] == b'T' && b[19] == b'.' && t.ends_with('Z'),
                "bad {k}: {t}"
            );
            assert!(
                ("2023-12-01".."2024-02-15").contains(&t),
                "{k} out of range: {t}"
            );
        }
        assert!(s(&e, "sentAt") >= s(&e, "timestamp"));
        assert!(e.get("context").is_some_and(Value::is_object));
        match ty {
            "track" => {
                assert!(!s(&e, "event").unwrap_or("").is_empty());
                assert!(e.get("properties").is_some_and(Value::is_object));
            }
            "page" | "screen" => {
                assert!(!s(&e, "name").unwrap_or("").is_empty());
                assert!(e.get("properties").is_some_and(Value::is_object));
            }
            "identify" => {
                assert!(!user.is_empty());
                assert!(e.get("traits").is_some_and(Value::is_object));
            }
            "group" => {
                assert!(!s(&e, "groupId").unwrap_or("").is_empty());
                assert!(e.get("traits").is_some_and(Value::is_object));
            }
            "alias" => {
                assert!(!s(&e, "previousId").unwrap_or("").is_empty());
                assert!(!user.is_empty());
            }
            _ => unreachable!(),
        }
    }
}

/// Recounts every [`Shape`] field from the output alone.
fn recount(out: &[u8]) -> Shape {
    let mut shape = Shape {
        bytes: out.len() as u64,
        ..Shape::default()
    };
    let (mut anons, mut users, mut emails, mut ids) = (
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
    );
    let mut max_ts: Option<String> = None;
    // Union-find over identifiers, with one userId per component.
    let mut parent: HashMap<String, String> = HashMap::new();
    let mut user_of: HashMap<String, Option<String>> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    fn find(parent: &mut HashMap<String, String>, x: &str) -> String {
        let mut x = x.to_owned();
        while parent[&x] != x {
            x = parent[&x].clone();
        }
        x
    }
    for line in lines(out) {
        let e = parse(line);
        shape.events += 1;
        *shape
            .by_type
            .entry(s(&e, "type").unwrap().to_owned())
            .or_default() += 1;
        if !ids.insert(s(&e, "messageId").unwrap().to_owned()) {
            shape.duplicates += 1;
            continue;
        }
        let ts = s(&e, "timestamp").unwrap().to_owned();
        match &max_ts {
            Some(m) if ts < *m => shape.late_events += 1,
            Some(m) if ts <= *m => {}
            _ => max_ts = Some(ts),
        }
        let anon = s(&e, "anonymousId");
        let user = s(&e, "userId");
        if let Some(a) = anon {
            anons.insert(a.to_owned());
        }
        if let Some(u) = user {
            users.insert(u.to_owned());
        }
        if s(&e, "type") == Some("identify") {
            if let Some(m) = e["traits"].get("email").and_then(Value::as_str) {
                emails.insert(m.to_owned());
            }
        }
        let linked = if s(&e, "type") == Some("alias") {
            s(&e, "previousId")
        } else {
            anon
        };
        let ka = linked.map(|a| format!("a:{a}"));
        let ku = user.map(|u| format!("u:{u}"));
        for (k, is_user) in [(&ka, false), (&ku, true)] {
            if let Some(k) = k {
                if !parent.contains_key(k) {
                    parent.insert(k.clone(), k.clone());
                    user_of.insert(k.clone(), is_user.then(|| k.clone()));
                }
            }
        }
        if let (Some(a), Some(u)) = (&ka, &ku) {
            let both_seen = seen.contains(a) && seen.contains(u);
            let (ra, ru) = (find(&mut parent, a), find(&mut parent, u));
            if ra != ru && (user_of[&ra].is_none() || user_of[&ru].is_none()) {
                parent.insert(ra.clone(), ru.clone());
                if user_of[&ru].is_none() {
                    let v = user_of[&ra].clone();
                    user_of.insert(ru, v);
                }
                if both_seen {
                    shape.expected_merges += 1;
                }
            }
        }
        seen.extend(ka);
        seen.extend(ku);
    }
    shape.distinct_anonymous_ids = anons.len() as u64;
    shape.distinct_user_ids = users.len() as u64;
    shape.distinct_emails = emails.len() as u64;
    shape
}

#[test]
fn shape_matches_a_recount_of_the_output() {
    for c in [cfg(20_000, 3, 3), cfg(7_000, 99, 1)] {
        let (out, shape) = bytes_of(&c);
        assert_eq!(recount(&out), shape, "config {c:?}");
        assert_eq!(shape.by_type.values().sum::<u64>(), shape.events);
    }
}

#[test]
fn proportions_are_roughly_as_specified() {
    let (_, shape) = bytes_of(&cfg(20_000, 2024, 3));
    let n = shape.events as f64;
    let share = |t: &str| shape.by_type.get(t).copied().unwrap_or(0) as f64 / n;
    let bounds: BTreeMap<&str, (f64, f64)> = [
        ("page", (0.25, 0.45)),
        ("track", (0.30, 0.52)),
        ("identify", (0.04, 0.13)),
        ("screen", (0.07, 0.18)),
        ("group", (0.01, 0.06)),
        ("alias", (0.0002, 0.01)),
    ]
    .into_iter()
    .collect();
    for (t, (lo, hi)) in bounds {
        let x = share(t);
        assert!(
            (lo..=hi).contains(&x),
            "{t}: {x:.4} not in {lo}..{hi}\n{shape}"
        );
    }
    let dup = shape.duplicates as f64 / n;
    assert!((0.002..=0.01).contains(&dup), "duplicates {dup}");
    let late = shape.late_events as f64 / n;
    assert!((0.005..=0.02).contains(&late), "late {late}");
    // Most visitors never identify; known users have several devices.
    assert!(shape.distinct_user_ids * 3 < shape.distinct_anonymous_ids);
    assert!(shape.distinct_user_ids > 100);
    assert!(
        shape.distinct_emails > shape.distinct_user_ids,
        "some e-mails change"
    );
    assert!(shape.expected_merges > 50);
}

#[test]
fn duplicates_repeat_an_earlier_line_verbatim() {
    let (out, shape) = bytes_of(&cfg(20_000, 8, 3));
    let mut first: HashMap<String, &str> = HashMap::new();
    let mut dups = 0;
    for line in lines(&out) {
        let id = s(&parse(line), "messageId").unwrap().to_owned();
        match first.get(&id) {
            Some(earlier) => {
                assert_eq!(*earlier, line, "same messageId, different payload");
                dups += 1;
            }
            None => {
                first.insert(id, line);
            }
        }
    }
    assert!(dups > 0);
    assert_eq!(dups, shape.duplicates);
}

#[test]
fn payload_sizes_and_content_look_real() {
    let (out, shape) = bytes_of(&cfg(20_000, 4, 3));
    let avg = shape.bytes / shape.events;
    assert!((400..2500).contains(&avg), "average line {avg} bytes");
    let mut events = HashSet::new();
    let (mut orders, mut mobile, mut campaigns, mut bots) = (0, 0, 0, 0);
    let mut anon_counts: HashMap<String, u64> = HashMap::new();
    let mut anon_users: HashMap<String, HashSet<String>> = HashMap::new();
    let mut user_anons: HashMap<String, HashSet<String>> = HashMap::new();
    for line in lines(&out) {
        let e = parse(line);
        if let Some(ev) = s(&e, "event") {
            events.insert(ev.to_owned());
        }
        let ctx = &e["context"];
        if s(&e, "event") == Some("Order Completed") {
            orders += 1;
            let p = &e["properties"];
            assert!(p["total"].is_f64() && p["revenue"].is_f64() && p["tax"].is_f64());
            let products = p["products"].as_array().expect("products array");
            assert!(!products.is_empty());
            for pr in products {
                for k in ["product_id", "sku", "name", "price", "quantity", "category"] {
                    assert!(pr.get(k).is_some(), "product without {k}");
                }
                assert!(pr["quantity"].is_u64() && pr["price"].is_f64());
            }
        }
        if let Some(dev) = ctx.get("device") {
            mobile += 1;
            assert!(["ios", "android"].contains(&dev["type"].as_str().unwrap()));
            assert!(dev["adTrackingEnabled"].is_boolean());
            assert!(ctx["library"]["name"]
                .as_str()
                .unwrap()
                .starts_with("analytics-"));
        }
        if let Some(page) = ctx.get("page") {
            for k in ["path", "referrer", "search", "title", "url"] {
                assert!(page[k].is_string(), "context.page.{k}");
            }
            assert!(ctx["userAgent"].is_string());
            if ctx["userAgent"].as_str().unwrap().contains("bot") {
                bots += 1;
                assert_eq!(s(&e, "type"), Some("page"));
            }
        }
        if ctx.get("campaign").is_some() {
            campaigns += 1;
        }
        if let Some(a) = s(&e, "anonymousId") {
            *anon_counts.entry(a.to_owned()).or_default() += 1;
            if let Some(u) = s(&e, "userId") {
                anon_users
                    .entry(a.to_owned())
                    .or_default()
                    .insert(u.to_owned());
                user_anons
                    .entry(u.to_owned())
                    .or_default()
                    .insert(a.to_owned());
            }
        }
    }
    for ev in [
        "Product Viewed",
        "Product Added",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
        "Signed Up",
        "Signed In",
        "Products Searched",
        "Video Playback Started",
        "Application Opened",
    ] {
        assert!(events.contains(ev), "no {ev}");
    }
    assert!(orders > 0 && mobile > 1_000 && campaigns > 100 && bots > 20);
    // Bots: a few anonymous ids with very many events.
    let mut counts: Vec<u64> = anon_counts.into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    assert!(
        counts[0] >= 30,
        "busiest anonymousId has {} events",
        counts[0]
    );
    // Users on several devices, and shared devices with two users.
    assert!(user_anons.values().filter(|a| a.len() > 1).count() > 50);
    assert!(anon_users.values().any(|u| u.len() > 1));
}

#[test]
fn sources_route_channels() {
    let (out, _) = bytes_of(&cfg(10_000, 21, 3));
    for line in lines(&out) {
        let e = parse(line);
        let wk = s(&e, "writeKey").unwrap();
        let lib = e["context"]["library"]["name"].as_str().unwrap();
        let expected = match lib {
            "analytics.js" => "wk_source_1",
            "analytics-ios" | "analytics-android" => "wk_source_2",
            "analytics-node" => "wk_source_3",
            other => panic!("library {other}"),
        };
        assert_eq!(wk, expected);
        if s(&e, "type") == Some("screen") {
            assert_eq!(wk, "wk_source_2");
        }
    }
    let (out, _) = bytes_of(&cfg(3_000, 21, 1));
    assert!(lines(&out)
        .iter()
        .all(|l| s(&parse(l), "writeKey") == Some("wk_source_1")));
    // More sources than channels: all of them get traffic.
    let (out, _) = bytes_of(&cfg(10_000, 21, 5));
    let used: HashSet<String> = lines(&out)
        .iter()
        .map(|l| s(&parse(l), "writeKey").unwrap().to_owned())
        .collect();
    assert_eq!(used.len(), 5, "{used:?}");
}

#[test]
fn sources_list() {
    let want = |n: u32| {
        (
            format!("source_{n}"),
            format!("Source {n}"),
            format!("source-{n}"),
            format!("wk_source_{n}"),
        )
    };
    assert_eq!(sources(3), vec![want(1), want(2), want(3)]);
    assert_eq!(sources(3)[1].3, "wk_source_2");
    assert!(sources(0).is_empty());
}

#[test]
fn shape_display_is_readable() {
    let (_, shape) = bytes_of(&cfg(2_000, 1, 1));
    let text = shape.to_string();
    for needle in [
        "events",
        "track",
        "distinct userIds",
        "duplicates",
        "late events",
        "expected merges",
        "bytes",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(text.lines().count() >= 10);
    let json = serde_json::to_value(&shape).unwrap();
    assert_eq!(json["events"], 2_000);
}

#[test]
fn tiny_configs_are_valid_and_zero_sources_means_one() {
    for n in 0..40u64 {
        let (out, shape) = bytes_of(&cfg(n, n, 0));
        let lines = lines(&out);
        assert_eq!(lines.len() as u64, n);
        for l in &lines {
            let e = parse(l);
            assert_eq!(s(&e, "writeKey"), Some("wk_source_1"));
        }
        assert_eq!(recount(&out), shape);
    }
}

/// The stream of a config is part of the contract (fixtures, benchmarks):
/// any change to it must be deliberate. Update the digest only on purpose.
#[test]
fn output_is_pinned() {
    use sha1::{Digest, Sha1};
    let (out, _) = bytes_of(&cfg(2_000, 1, 3));
    let digest = hex::encode(Sha1::digest(&out));
    assert_eq!(digest, "6185cb797cc0b2c1ce6b34e9f2aca0291c2d9925");
}
