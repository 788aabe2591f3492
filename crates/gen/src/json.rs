//! A minimal streaming JSON writer into a `String`.
//!
//! Keys are `&'static str` literals written verbatim (they never need
//! escaping); string values are escaped per RFC 8259. Numbers are written
//! from integers only (money is kept in cents and written with two decimals),
//! so no float formatting is involved and output is bit-stable.

const HEX: &[u8; 16] = b"0123456789abcdef";

#[derive(Debug, Default)]
pub(crate) struct Json {
    pub(crate) buf: String,
    /// `true` right after an opening bracket or a key: the next value or key
    /// needs no leading comma.
    first: bool,
}

impl Json {
    pub(crate) fn with_capacity(n: usize) -> Json {
        Json {
            buf: String::with_capacity(n),
            first: true,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.first = true;
    }

    #[inline]
    fn sep(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.buf.push(',');
        }
    }

    #[inline]
    pub(crate) fn begin_obj(&mut self) {
        self.sep();
        self.buf.push('{');
        self.first = true;
    }

    #[inline]
    pub(crate) fn end_obj(&mut self) {
        self.buf.push('}');
        self.first = false;
    }

    #[inline]
    pub(crate) fn begin_arr(&mut self) {
        self.sep();
        self.buf.push('[');
        self.first = true;
    }

    #[inline]
    pub(crate) fn end_arr(&mut self) {
        self.buf.push(']');
        self.first = false;
    }

    /// Writes `"key":`; the next value attaches to it.
    #[inline]
    pub(crate) fn key(&mut self, k: &'static str) {
        debug_assert!(!needs_escape(k));
        self.sep();
        self.buf.push('"');
        self.buf.push_str(k);
        self.buf.push_str("\":");
        self.first = true;
    }

    /// `"key":{` — close with [`Json::end_obj`].
    #[inline]
    pub(crate) fn obj(&mut self, k: &'static str) {
        self.key(k);
        self.begin_obj();
    }

    /// `"key":[` — close with [`Json::end_arr`].
    #[inline]
    pub(crate) fn arr(&mut self, k: &'static str) {
        self.key(k);
        self.begin_arr();
    }

    /// A string value, escaped.
    #[inline]
    pub(crate) fn str(&mut self, v: &str) {
        self.sep();
        self.buf.push('"');
        self.escaped(v);
        self.buf.push('"');
    }

    /// A string value made of several parts, each escaped.
    #[inline]
    pub(crate) fn str_cat(&mut self, parts: &[&str]) {
        self.sep();
        self.buf.push('"');
        for p in parts {
            self.escaped(p);
        }
        self.buf.push('"');
    }

    /// Opens a string value whose content is appended with [`Json::raw`]
    /// (callers guarantee it needs no escaping); close with
    /// [`Json::close_str`].
    #[inline]
    pub(crate) fn open_str(&mut self) {
        self.sep();
        self.buf.push('"');
    }

    #[inline]
    pub(crate) fn close_str(&mut self) {
        self.buf.push('"');
    }

    /// Appends text verbatim (inside an open string or as a literal).
    #[inline]
    pub(crate) fn raw(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Appends escaped text inside an open string.
    #[inline]
    pub(crate) fn escaped(&mut self, v: &str) {
        if !needs_escape(v) {
            self.buf.push_str(v);
            return;
        }
        for c in v.chars() {
            match c {
                '"' => self.buf.push_str("\\\""),
                '\\' => self.buf.push_str("\\\\"),
                '\n' => self.buf.push_str("\\n"),
                '\r' => self.buf.push_str("\\r"),
                '\t' => self.buf.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let b = c as u8;
                    self.buf.push_str("\\u00");
                    self.buf.push(HEX[usize::from(b >> 4)] as char);
                    self.buf.push(HEX[usize::from(b & 0xf)] as char);
                }
                c => self.buf.push(c),
            }
        }
    }

    #[inline]
    pub(crate) fn u64(&mut self, v: u64) {
        self.sep();
        self.digits(v);
    }

    #[inline]
    pub(crate) fn null(&mut self) {
        self.sep();
        self.buf.push_str("null");
    }

    #[inline]
    pub(crate) fn bool(&mut self, v: bool) {
        self.sep();
        self.buf.push_str(if v { "true" } else { "false" });
    }

    /// A decimal number written from hundredths, always with two decimals
    /// (`1999` → `19.99`), so it always parses as a double.
    #[inline]
    pub(crate) fn cents(&mut self, c: u64) {
        self.sep();
        self.digits(c / 100);
        self.buf.push('.');
        let r = (c % 100) as u8;
        self.buf.push((b'0' + r / 10) as char);
        self.buf.push((b'0' + r % 10) as char);
    }

    /// ISO-8601 UTC timestamp with milliseconds.
    #[inline]
    pub(crate) fn ts(&mut self, ms: i64) {
        self.sep();
        self.buf.push('"');
        push_iso(&mut self.buf, ms);
        self.buf.push('"');
    }

    /// Appends decimal digits (inside an open string or as a number).
    #[inline]
    pub(crate) fn digits(&mut self, mut v: u64) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for &b in &tmp[i..] {
            self.buf.push(b as char);
        }
    }

    /// Appends `width` lowercase hex digits of `v` (low bits).
    #[inline]
    pub(crate) fn hex(&mut self, v: u64, width: u32) {
        for k in (0..width).rev() {
            self.buf.push(HEX[((v >> (4 * k)) & 0xf) as usize] as char);
        }
    }

    /// Appends `width` uppercase hex digits of `v` (low bits).
    #[inline]
    pub(crate) fn hex_upper(&mut self, v: u64, width: u32) {
        const UP: &[u8; 16] = b"0123456789ABCDEF";
        for k in (0..width).rev() {
            self.buf.push(UP[((v >> (4 * k)) & 0xf) as usize] as char);
        }
    }

    /// Appends a UUID (version 4 layout: `uuid`'s random-bytes builder sets
    /// the version and variant bits) built from two 64-bit halves.
    #[inline]
    pub(crate) fn uuid(&mut self, hi: u64, lo: u64, upper: bool) {
        let bits = (u128::from(hi) << 64) | u128::from(lo);
        let id = uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = if upper {
            id.hyphenated().encode_upper(&mut text)
        } else {
            id.hyphenated().encode_lower(&mut text)
        };
        self.buf.push_str(text);
    }

    /// Appends `v` in base 36 (lowercase).
    #[inline]
    pub(crate) fn base36(&mut self, mut v: u64) {
        const DIG: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut tmp = [0u8; 13];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = DIG[(v % 36) as usize];
            v /= 36;
            if v == 0 {
                break;
            }
        }
        for &b in &tmp[i..] {
            self.buf.push(b as char);
        }
    }

    /// `"key":"value"`
    #[inline]
    pub(crate) fn kv_str(&mut self, k: &'static str, v: &str) {
        self.key(k);
        self.str(v);
    }

    #[inline]
    pub(crate) fn kv_u64(&mut self, k: &'static str, v: u64) {
        self.key(k);
        self.u64(v);
    }

    #[inline]
    pub(crate) fn kv_bool(&mut self, k: &'static str, v: bool) {
        self.key(k);
        self.bool(v);
    }

    #[inline]
    pub(crate) fn kv_cents(&mut self, k: &'static str, c: u64) {
        self.key(k);
        self.cents(c);
    }

    #[inline]
    pub(crate) fn kv_ts(&mut self, k: &'static str, ms: i64) {
        self.key(k);
        self.ts(ms);
    }
}

#[inline]
fn needs_escape(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` for a Unix time in milliseconds.
pub(crate) fn push_iso(buf: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) as u32;
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1000;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let y = y.clamp(0, 9999) as u32;
    let put = |out: &mut [u8; 24], at: usize, v: u32, width: usize| {
        let mut v = v;
        for k in (0..width).rev() {
            out[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut out, 0, y, 4);
    put(&mut out, 5, m, 2);
    put(&mut out, 8, d, 2);
    put(&mut out, 11, secs / 3600, 2);
    put(&mut out, 14, (secs / 60) % 60, 2);
    put(&mut out, 17, secs % 60, 2);
    put(&mut out, 20, rem % 1000, 3);
    buf.push_str(std::str::from_utf8(&out).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps() {
        let mut s = String::new();
        push_iso(&mut s, 1_704_067_200_000);
        assert_eq!(s, "2024-01-01T00:00:00.000Z");
        s.clear();
        push_iso(&mut s, 1_709_294_400_123);
        assert_eq!(s, "2024-03-01T12:00:00.123Z");
        s.clear();
        push_iso(&mut s, 1_704_067_200_000 - 1);
        assert_eq!(s, "2023-12-31T23:59:59.999Z");
    }

    #[test]
    fn escaping_and_structure() {
        let mut j = Json::with_capacity(64);
        j.begin_obj();
        j.kv_str("a", "x\"y\\z\n\u{1}é");
        j.arr("b");
        j.u64(0);
        j.cents(1905);
        j.bool(true);
        j.null();
        j.end_arr();
        j.obj("c");
        j.end_obj();
        j.end_obj();
        assert_eq!(
            j.buf,
            "{\"a\":\"x\\\"y\\\\z\\n\\u0001é\",\"b\":[0,19.05,true,null],\"c\":{}}"
        );
    }

    #[test]
    fn uuid_layout() {
        let mut j = Json::with_capacity(64);
        j.open_str();
        j.uuid(u64::MAX, 0, false);
        j.close_str();
        assert_eq!(j.buf, "\"ffffffff-ffff-4fff-8000-000000000000\"");
    }
}
