//! Finding the events of a batch body without building a JSON tree of it.
//! The HTTP edge splits `/v1/batch` bodies with it; the fuzz target
//! `batch_scan` holds it to `serde_json`'s reading of the same bytes.
//!
//! The edge must parse every event to validate it, but it need not serialize
//! it again: storing each event's original bytes in the inbox saves about a
//! third of the edge's CPU per event (and `rejected_events` then holds
//! exactly what the client sent). This scanner walks the body's structure —
//! strings with escapes, nesting, separators — and returns the byte range of
//! each element of the top-level `batch` array and of every other top-level
//! field. Each range is then parsed by `serde_json`, which checks its
//! content strictly; the scanner only has to get the boundaries right.

/// Deepest nesting accepted, as `serde_json`'s own recursion limit.
const MAX_DEPTH: usize = 128;

/// The parts of a batch body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchScan<'a> {
    /// `None` when the body has no `batch` key (or it is not an array).
    pub items: Option<Vec<&'a [u8]>>,
    /// Every other top-level field: raw key (without quotes) and raw value.
    pub fields: Vec<(&'a [u8], &'a [u8])>,
}

/// Why a body could not be scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// Not JSON (or nested too deeply).
    Malformed,
    /// JSON, but not an object.
    NotAnObject,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Result<(), ScanError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(ScanError::Malformed)
        }
    }

    /// A string starting at the current `"`; returns its contents' range.
    fn string(&mut self) -> Result<&'a [u8], ScanError> {
        if self.peek() != Some(b'"') {
            return Err(ScanError::Malformed);
        }
        let start = self.i + 1;
        let mut j = start;
        while j < self.b.len() {
            match self.b[j] {
                b'\\' => j += 2,
                b'"' => {
                    self.i = j + 1;
                    return Ok(&self.b[start..j]);
                }
                c if c < 0x20 => return Err(ScanError::Malformed),
                _ => j += 1,
            }
        }
        Err(ScanError::Malformed)
    }

    /// Skips one value; returns its range.
    fn value(&mut self, depth: usize) -> Result<&'a [u8], ScanError> {
        if depth > MAX_DEPTH {
            return Err(ScanError::Malformed);
        }
        self.ws();
        let start = self.i;
        match self.peek().ok_or(ScanError::Malformed)? {
            b'"' => {
                self.string()?;
            }
            b'{' => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        self.string()?;
                        self.eat(b':')?;
                        self.value(depth + 1)?;
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(ScanError::Malformed),
                        }
                    }
                }
            }
            b'[' => {
                self.items(depth, |_| ())?;
            }
            _ => {
                // A number or a literal: up to the next separator.
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(ScanError::Malformed);
                }
            }
        }
        Ok(&self.b[start..self.i])
    }

    /// An array at the current `[`, calling `each` with every element.
    fn items(&mut self, depth: usize, mut each: impl FnMut(&'a [u8])) -> Result<(), ScanError> {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let v = self.value(depth + 1)?;
            each(v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(ScanError::Malformed),
            }
        }
    }
}

/// Splits a batch body into its events and its other top-level fields.
pub fn scan_batch(body: &[u8]) -> Result<BatchScan<'_>, ScanError> {
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    if s.peek() != Some(b'{') {
        // Some other JSON value, or not JSON at all.
        return match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(_) => Err(ScanError::NotAnObject),
            Err(_) => Err(ScanError::Malformed),
        };
    }
    s.i += 1;
    let mut out = BatchScan::default();
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.ws();
            let key = s.string()?;
            s.eat(b':')?;
            s.ws();
            if key == b"batch" && s.peek() == Some(b'[') && out.items.is_none() {
                let mut items = Vec::new();
                s.items(1, |v| items.push(v))?;
                out.items = Some(items);
            } else {
                let v = s.value(1)?;
                out.fields.push((key, v));
            }
            s.ws();
            match s.peek() {
                Some(b',') => s.i += 1,
                Some(b'}') => {
                    s.i += 1;
                    break;
                }
                _ => return Err(ScanError::Malformed),
            }
        }
    }
    s.ws();
    if s.i != body.len() {
        return Err(ScanError::Malformed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(body: &str) -> Vec<String> {
        scan_batch(body.as_bytes())
            .unwrap()
            .items
            .unwrap()
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn finds_items_and_fields() {
        let body = r#" { "writeKey" : "k", "batch": [ {"a": "x,}]\"\\"}, {"b": [1, {"c": null}]} ,3 ],
            "sentAt": "2024-01-01T00:00:00Z", "context": {"ip": "1.2.3.4"} } "#;
        assert_eq!(
            items(body),
            [r#"{"a": "x,}]\"\\"}"#, r#"{"b": [1, {"c": null}]}"#, "3"]
        );
        let s = scan_batch(body.as_bytes()).unwrap();
        let keys: Vec<&[u8]> = s.fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [&b"writeKey"[..], b"sentAt", b"context"]);
        assert_eq!(s.fields[2].1, br#"{"ip": "1.2.3.4"}"#);
        assert_eq!(items(r#"{"batch":[]}"#), Vec::<String>::new());
        assert_eq!(scan_batch(b"{}").unwrap().items, None);
        assert_eq!(scan_batch(br#"{"batch": {}}"#).unwrap().items, None);
    }

    #[test]
    fn malformed_bodies() {
        for bad in [
            "",
            "{",
            r#"{"batch": [1, 2"#,
            r#"{"batch": [1 2]}"#,
            r#"{"batch": [{"a" 1}]}"#,
            r#"{"batch": []} trailing"#,
            r#"{"a": "unterminated}"#,
            "{not json",
            &format!("{{\"batch\": [{}{}]}}", "[".repeat(200), "]".repeat(200)),
        ] {
            assert_eq!(
                scan_batch(bad.as_bytes()),
                Err(ScanError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(scan_batch(b"[1,2]"), Err(ScanError::NotAnObject));
        assert_eq!(scan_batch(b"\"x\""), Err(ScanError::NotAnObject));
    }
}
