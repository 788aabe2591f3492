//! A JSON document as one flat array of nodes over its own text.
//!
//! Parsing a payload into `serde_json::Value` builds a B-tree per object and
//! a heap string per key and per string value, and freeing that tree again
//! was a fifth of a sync's main thread. An event is read once, front to back
//! (validation, identifiers, flattening into columns), so it needs none of
//! that: a [`Doc`] keeps the line's text and a [`Vec`] of nodes that point
//! into it. Strings without escapes are slices of the text; the few with
//! escapes are decoded once into a side buffer. A subtree that someone does
//! want as a `serde_json::Value` (a trait value the identity engine stores,
//! an array stored as JSON text) is built from the nodes ([`JsonRef::to_json`]);
//! numbers other than plain `i64`s are read by `serde_json` from their own
//! text, so everything comes out exactly as before.
//!
//! The grammar is JSON's (RFC 8259) with `serde_json`'s limits: nesting
//! deeper than 128 and numbers out of `f64`'s range are errors. Anything this
//! parser refuses is handed to `serde_json` for its error message, so a
//! refusal reads the same as it always did.

use serde_json::Value as Json;

/// Nesting depth at which `serde_json` stops (its recursion limit).
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Null,
    True,
    False,
    /// An integer literal that fits `i64`, kept in `a`/`b` as its two halves.
    Int,
    /// Any other number: its text is `a..b`.
    Number,
    /// A string without escapes: its text (between the quotes) is `a..b`.
    Str,
    /// A string with escapes, decoded into `Doc::decoded[a..b]`.
    Decoded,
    /// `a` members (a key node and a value subtree each); the subtree ends
    /// before node `b`.
    Object,
    /// `a` elements; the subtree ends before node `b`.
    Array,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    tag: Tag,
    a: u32,
    b: u32,
    /// Where the value's text starts and ends in the document (for
    /// subtrees handed to `serde_json`).
    start: u32,
    end: u32,
}

/// A parsed JSON text (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Doc {
    text: String,
    nodes: Vec<Node>,
    decoded: String,
}

/// Why a text is not JSON; [`ParseError::message`] is `serde_json`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    message: String,
    eof: bool,
}

impl ParseError {
    /// The parser's message: what was wrong, and where.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the text ended too early (it may go on on the next line).
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// The message, owned.
    pub fn into_message(self) -> String {
        self.message
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

impl Doc {
    /// Parses `text`, which the document keeps.
    pub fn parse(text: String) -> Result<Doc, (ParseError, String)> {
        if u32::try_from(text.len()).is_err() {
            let message = "a JSON text over 4 GB".to_owned();
            return Err((
                ParseError {
                    message,
                    eof: false,
                },
                text,
            ));
        }
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            nodes: Vec::with_capacity(64),
            decoded: String::new(),
        };
        let ok = p.ws().and_then(|_| p.value(0)).and_then(|_| {
            p.ws()?;
            (p.i == p.s.len()).then_some(())
        });
        match ok {
            Some(()) => {
                let (nodes, decoded) = (p.nodes, p.decoded);
                Ok(Doc {
                    text,
                    nodes,
                    decoded,
                })
            }
            None => {
                let (message, eof) = match serde_json::from_str::<Json>(&text) {
                    Err(e) => (e.to_string(), e.is_eof()),
                    // Should not happen: both follow RFC 8259. Refusing with
                    // a message of our own beats landing a misread payload.
                    Ok(_) => (
                        format!("JSON this parser cannot read (byte {})", p.i),
                        false,
                    ),
                };
                Err((ParseError { message, eof }, text))
            }
        }
    }

    /// The bytes of the string a node holds, without checking that its ends
    /// are character boundaries (they always are): for comparing.
    #[inline(always)]
    fn bytes_at(&self, n: &Node) -> Option<&[u8]> {
        match n.tag {
            Tag::Str => Some(&self.text.as_bytes()[n.a as usize..n.b as usize]),
            Tag::Decoded => Some(&self.decoded.as_bytes()[n.a as usize..n.b as usize]),
            _ => None,
        }
    }

    /// The string a node holds (the key of a member, or a string value).
    #[inline(always)]
    fn str_at(&self, n: &Node) -> Option<&str> {
        match n.tag {
            Tag::Str => Some(&self.text[n.a as usize..n.b as usize]),
            Tag::Decoded => Some(&self.decoded[n.a as usize..n.b as usize]),
            _ => None,
        }
    }

    /// The top-level value.
    #[inline]
    pub fn root(&self) -> JsonRef<'_> {
        JsonRef { doc: self, i: 0 }
    }

    /// The value at node `i` (from [`JsonRef::index`]).
    #[inline]
    pub fn at(&self, i: u32) -> JsonRef<'_> {
        assert!((i as usize) < self.nodes.len(), "node {i} of this document");
        JsonRef { doc: self, i }
    }
}

/// One value of a [`Doc`].
#[derive(Clone, Copy)]
pub struct JsonRef<'a> {
    doc: &'a Doc,
    i: u32,
}

impl std::fmt::Debug for JsonRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.raw())
    }
}

/// What a [`JsonRef`] is, with its scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// Any other number (`serde_json`'s reading: a float, or an integer
    /// beyond `i64` as `u64` or `f64`): call [`JsonRef::number`].
    Number,
    /// A string, unescaped.
    Str(&'a str),
    /// An object: read its members through the [`JsonRef`].
    Object,
    /// An array: read its items through the [`JsonRef`].
    Array,
}

impl<'a> JsonRef<'a> {
    /// The value's node, for [`Doc::at`].
    #[inline]
    pub fn index(&self) -> u32 {
        self.i
    }

    #[inline]
    fn node(&self) -> &'a Node {
        &self.doc.nodes[self.i as usize]
    }

    /// What the value is, with its scalar.
    #[inline]
    pub fn kind(&self) -> Kind<'a> {
        let n = self.node();
        match n.tag {
            Tag::Null => Kind::Null,
            Tag::True => Kind::Bool(true),
            Tag::False => Kind::Bool(false),
            Tag::Int => Kind::Int(((u64::from(n.a) << 32) | u64::from(n.b)) as i64),
            Tag::Number => Kind::Number,
            Tag::Str => Kind::Str(&self.doc.text[n.a as usize..n.b as usize]),
            Tag::Decoded => Kind::Str(&self.doc.decoded[n.a as usize..n.b as usize]),
            Tag::Object => Kind::Object,
            Tag::Array => Kind::Array,
        }
    }

    /// Whether the value is an object.
    #[inline]
    pub fn is_object(&self) -> bool {
        self.node().tag == Tag::Object
    }

    /// The value if it is `true` or `false`.
    #[inline]
    pub fn as_bool(&self) -> Option<bool> {
        match self.node().tag {
            Tag::True => Some(true),
            Tag::False => Some(false),
            _ => None,
        }
    }

    /// Whether the value is a number (of any form).
    #[inline]
    pub fn is_number(&self) -> bool {
        matches!(self.node().tag, Tag::Int | Tag::Number)
    }

    /// The string if the value is one (unescaped).
    #[inline]
    pub fn as_str(&self) -> Option<&'a str> {
        self.doc.str_at(self.node())
    }

    /// A number as `serde_json` reads it.
    pub fn number(&self) -> Option<serde_json::Number> {
        match self.kind() {
            Kind::Int(i) => Some(i.into()),
            Kind::Number => serde_json::from_str(self.raw()).ok(),
            _ => None,
        }
    }

    /// The value's own text, as it appears in the document.
    pub fn raw(&self) -> &'a str {
        let n = self.node();
        &self.doc.text[n.start as usize..n.end as usize]
    }

    /// The value as `serde_json` would have parsed it.
    pub fn to_json(&self) -> Json {
        match self.kind() {
            Kind::Null => Json::Null,
            Kind::Bool(b) => Json::Bool(b),
            Kind::Int(i) => Json::from(i),
            Kind::Number => Json::Number(self.number().expect("the parser checked the number")),
            Kind::Str(s) => Json::String(s.to_owned()),
            Kind::Array => Json::Array(self.elements().map(|e| e.to_json()).collect()),
            Kind::Object => {
                let mut m = serde_json::Map::new();
                for (k, v) in self.members() {
                    m.insert(k.to_owned(), v.to_json());
                }
                Json::Object(m)
            }
        }
    }

    /// Elements of an array, nothing for anything else.
    pub fn elements(&self) -> impl Iterator<Item = JsonRef<'a>> {
        let n = self.node();
        let (mut next, end) = if n.tag == Tag::Array {
            (self.i + 1, n.b)
        } else {
            (0, 0)
        };
        let doc = self.doc;
        std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            let v = JsonRef { doc, i: next };
            let vn = v.node();
            next = match vn.tag {
                Tag::Object | Tag::Array => vn.b,
                _ => next + 1,
            };
            Some(v)
        })
    }

    /// Members of an object in document order (duplicates included; see
    /// [`JsonRef::get`] and [`JsonRef::sorted_members`]), nothing for
    /// anything else.
    #[inline]
    pub fn members(&self) -> Members<'a> {
        let n = self.node();
        let (next, end) = if n.tag == Tag::Object {
            (self.i + 1, n.b)
        } else {
            (0, 0)
        };
        Members {
            doc: self.doc,
            next,
            end,
        }
    }

    /// The value of `key` (the last one, if the key repeats: `serde_json`
    /// keeps the last).
    #[inline]
    pub fn get(&self, key: &str) -> Option<JsonRef<'a>> {
        self.members()
            .filter(|(k, _)| *k == key)
            .last()
            .map(|(_, v)| v)
    }

    /// Members in the order a `serde_json::Map` (a B-tree) holds them: by
    /// key bytes, a repeated key once, with its last value. Column names and
    /// the order new columns are added come from this order, as they did
    /// when payloads were `serde_json` maps.
    pub fn sorted_members(&self, out: &mut Vec<(&'a str, JsonRef<'a>)>) {
        out.clear();
        out.extend(self.members());
        if out.windows(2).any(|w| w[0].0 >= w[1].0) {
            // Stable: among equal keys the last stays last, and is kept.
            out.sort_by(|a, b| a.0.cmp(b.0));
            let mut i = 0;
            while i + 1 < out.len() {
                if out[i].0 == out[i + 1].0 {
                    out.remove(i);
                } else {
                    i += 1;
                }
            }
        }
    }

    /// `f(key, value)` for the members in the order [`JsonRef::sorted_members`]
    /// gives (`serde_json`'s map order), without allocating for objects of
    /// up to 16 members. Nothing for anything but an object.
    ///
    /// Keys are ordered by their first 8 bytes as one number first (zero
    /// padded, which orders as the bytes do), so most comparisons are one
    /// integer comparison rather than a call to `memcmp`; the members of an
    /// unsorted object are put in order by insertion, which is stable.
    #[inline]
    pub fn for_each_sorted_member(&self, mut f: impl FnMut(&'a str, JsonRef<'a>)) {
        const SMALL: usize = 16;
        let mut buf = [(0u64, "", *self); SMALL];
        let (mut n, mut sorted) = (0, true);
        for (k, v) in self.members() {
            if n == SMALL {
                let mut all = Vec::new();
                self.sorted_members(&mut all);
                all.into_iter().for_each(|(k, v)| f(k, v));
                return;
            }
            let e = (prefix(k), k, v);
            sorted &= n == 0 || key_less(&buf[n - 1], &e);
            buf[n] = e;
            n += 1;
        }
        let list = &mut buf[..n];
        if sorted {
            list.iter().for_each(|&(_, k, v)| f(k, v));
            return;
        }
        for i in 1..n {
            let e = list[i];
            let mut j = i;
            while j > 0 && key_less(&e, &list[j - 1]) {
                list[j] = list[j - 1];
                j -= 1;
            }
            list[j] = e;
        }
        // Among equal keys the last in the document is last, and kept.
        for i in 0..n {
            if i + 1 < n && list[i + 1].1 == list[i].1 {
                continue;
            }
            f(list[i].1, list[i].2);
        }
    }

    /// Whether the value equals `v`, i.e. `self.to_json() == *v`, without
    /// building it: an object equals a map with its distinct keys, each with
    /// its last value; numbers compare as `serde_json` reads them (`1` and
    /// `1.0` differ, `0.0` and `-0.0` do not).
    pub fn eq_json(&self, v: &Json) -> bool {
        let n = self.node();
        match (n.tag, v) {
            (Tag::Str | Tag::Decoded, Json::String(s)) => {
                self.doc.bytes_at(n) == Some(s.as_bytes())
            }
            (Tag::Int, Json::Number(m)) => {
                let i = ((u64::from(n.a) << 32) | u64::from(n.b)) as i64;
                serde_json::Number::from(i) == *m
            }
            (Tag::Null, Json::Null) => true,
            (Tag::True, Json::Bool(b)) => *b,
            (Tag::False, Json::Bool(b)) => !*b,
            (Tag::Number, Json::Number(m)) => self.number().is_some_and(|x| x == *m),
            (Tag::Array, Json::Array(xs)) => {
                n.a as usize == xs.len() && self.elements().zip(xs).all(|(e, x)| e.eq_json(x))
            }
            (Tag::Object, Json::Object(m)) => {
                // Each distinct key once, at its last occurrence.
                let mut distinct = 0;
                for (at, (k, x)) in self.members().enumerate() {
                    if self.members().skip(at + 1).any(|(k2, _)| k2 == k) {
                        continue;
                    }
                    distinct += 1;
                    if !m.get(k).is_some_and(|y| x.eq_json(y)) {
                        return false;
                    }
                }
                distinct == m.len()
            }
            _ => false,
        }
    }

    /// The object as a `serde_json` map.
    pub fn to_map(&self) -> Option<serde_json::Map<String, Json>> {
        match self.to_json() {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }
}

/// The first 8 bytes of `k`, zero padded, big-endian: when two keys'
/// prefixes differ, they order as the keys do.
#[inline(always)]
fn prefix(k: &str) -> u64 {
    let b = k.as_bytes();
    match b.first_chunk::<8>() {
        Some(c) => u64::from_be_bytes(*c),
        None => {
            let mut x = 0u64;
            for (i, &c) in b.iter().enumerate() {
                x |= u64::from(c) << (56 - 8 * i);
            }
            x
        }
    }
}

/// Key order of [`JsonRef::for_each_sorted_member`]'s entries.
#[inline(always)]
fn key_less(a: &(u64, &str, JsonRef<'_>), b: &(u64, &str, JsonRef<'_>)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// Iterator over an object's members: `(key, value)`.
#[derive(Debug, Clone)]
pub struct Members<'a> {
    doc: &'a Doc,
    next: u32,
    end: u32,
}

impl<'a> Members<'a> {
    /// Steps to the next member: its key's node and its value.
    #[inline(always)]
    fn step(&mut self) -> Option<(&'a Node, JsonRef<'a>)> {
        if self.next >= self.end {
            return None;
        }
        let doc = self.doc;
        let key = &doc.nodes[self.next as usize];
        let value = JsonRef {
            doc,
            i: self.next + 1,
        };
        let vn = value.node();
        self.next = match vn.tag {
            Tag::Object | Tag::Array => vn.b,
            _ => self.next + 2,
        };
        Some((key, value))
    }

    /// The next member with its key as bytes, for matching keys against
    /// known names: [`Iterator::next`] without checking that the key's ends
    /// are character boundaries (they always are).
    #[inline(always)]
    pub fn next_bytes(&mut self) -> Option<(&'a [u8], JsonRef<'a>)> {
        let (k, v) = self.step()?;
        Some((self.doc.bytes_at(k).unwrap_or_default(), v))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, JsonRef<'a>);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = self.step()?;
        Some((self.doc.str_at(k).unwrap_or_default(), v))
    }
}

struct Parser<'s> {
    s: &'s [u8],
    i: usize,
    nodes: Vec<Node>,
    decoded: String,
}

impl Parser<'_> {
    fn ws(&mut self) -> Option<()> {
        while let Some(&c) = self.s.get(self.i) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
        Some(())
    }

    fn push(&mut self, tag: Tag, a: u32, b: u32, start: usize) -> usize {
        self.nodes.push(Node {
            tag,
            a,
            b,
            start: start as u32,
            end: self.i as u32,
        });
        self.nodes.len() - 1
    }

    fn lit(&mut self, word: &[u8], tag: Tag) -> Option<()> {
        let start = self.i;
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            self.push(tag, 0, 0, start);
            Some(())
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match *self.s.get(self.i)? {
            b'{' => self.container(Tag::Object, depth + 1),
            b'[' => self.container(Tag::Array, depth + 1),
            b'"' => {
                let start = self.i;
                let (tag, a, b) = self.string()?;
                self.push(tag, a, b, start);
                Some(())
            }
            b'n' => self.lit(b"null", Tag::Null),
            b't' => self.lit(b"true", Tag::True),
            b'f' => self.lit(b"false", Tag::False),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// An object (`tag` Object, closed by `}`: each element is a key, a
    /// colon and a value) or an array (closed by `]`), from its opening
    /// bracket.
    fn container(&mut self, tag: Tag, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let close = if tag == Tag::Object { b'}' } else { b']' };
        let start = self.i;
        self.i += 1;
        let at = self.push(tag, 0, 0, start);
        let mut n = 0u32;
        self.ws();
        if self.s.get(self.i) == Some(&close) {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if tag == Tag::Object {
                    if self.s.get(self.i) != Some(&b'"') {
                        return None;
                    }
                    let kstart = self.i;
                    let (ktag, a, b) = self.string()?;
                    self.push(ktag, a, b, kstart);
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                }
                self.value(depth)?;
                n += 1;
                self.ws();
                match *self.s.get(self.i)? {
                    b',' => self.i += 1,
                    c if c == close => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let end = self.nodes.len() as u32;
        let node = &mut self.nodes[at];
        node.a = n;
        node.b = end;
        node.end = self.i as u32;
        Some(())
    }

    /// A string starting at the opening quote: its tag and span.
    fn string(&mut self) -> Option<(Tag, u32, u32)> {
        self.i += 1;
        let start = self.i;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some((Tag::Str, start as u32, (self.i - 1) as u32));
                }
                b'\\' => break,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        // Escapes: decode the whole string into the side buffer.
        let dstart = self.decoded.len();
        let mut plain = start;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.flush(plain);
                    self.i += 1;
                    return Some((Tag::Decoded, dstart as u32, self.decoded.len() as u32));
                }
                b'\\' => {
                    self.flush(plain);
                    self.i += 1;
                    let c = match *self.s.get(self.i)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            self.i += 1;
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2)? != b"\\u" {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                            } else {
                                char::from_u32(hi)?
                            };
                            self.decoded.push(c);
                            plain = self.i;
                            continue;
                        }
                        _ => return None,
                    };
                    self.decoded.push(c);
                    self.i += 1;
                    plain = self.i;
                }
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
    }

    /// Copies the unescaped run `from..self.i` into the side buffer.
    fn flush(&mut self, from: usize) {
        if from < self.i {
            // The text is a `String` and runs split only at ASCII bytes.
            let run = std::str::from_utf8(&self.s[from..self.i]).expect("UTF-8 text");
            self.decoded.push_str(run);
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let mut v = 0u32;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        let s = self.s;
        if s[self.i] == b'-' {
            self.i += 1;
        }
        match s.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let mut integer = true;
        if s.get(self.i) == Some(&b'.') {
            integer = false;
            self.i += 1;
            if !s.get(self.i)?.is_ascii_digit() {
                return None;
            }
            while s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
        }
        if matches!(s.get(self.i), Some(b'e' | b'E')) {
            integer = false;
            self.i += 1;
            if matches!(s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !s.get(self.i)?.is_ascii_digit() {
                return None;
            }
            while s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
        }
        let text = std::str::from_utf8(&s[start..self.i]).expect("ASCII");
        // `-0` is a float to serde_json (it keeps the sign).
        if integer && text != "-0" {
            if let Ok(v) = text.parse::<i64>() {
                let v = v as u64;
                self.push(Tag::Int, (v >> 32) as u32, v as u32, start);
                return Some(());
            }
        }
        // Out of f64's range is an error to serde_json; everything else
        // is read by it when used.
        serde_json::from_str::<serde_json::Number>(text).ok()?;
        self.push(Tag::Number, start as u32, self.i as u32, start);
        Some(())
    }
}

#[cfg(test)]
mod tests;
