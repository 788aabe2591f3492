//! The identity engine's persistent state in the warehouse (`_ps_profiles`).

use std::time::Duration;

/// Version of the internal state layout, stored in `_ps_meta`. 2: engine
/// state in `_ps_profiles` as binary snapshot chunks; 1 held one JSON record
/// per profile.
pub(crate) const STATE_VERSION: &str = "2";

/// `_ps_meta` key set to `1` once `_ps_seen` holds every dedupe key of the
/// space; spaces from before it get their keys from the event tables once.
pub(crate) const SEEN_META: &str = "seen";

/// Where [`crate::Space::open`]'s time went, for `profiles-sync bench --incremental`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecoveryTimings {
    /// Fetching the engine state rows from the warehouse.
    pub fetch: Duration,
    /// Decoding them (base64) while they stream in.
    pub decode: Duration,
    /// `Engine::restore`: rebuilding profiles and the identifier index.
    pub restore: Duration,
    /// Reading the dedupe keys (`_ps_seen`; once, for an older space, the
    /// event tables' ids).
    pub dedupe: Duration,
    /// All of `Space::open`.
    pub total: Duration,
}

/// Profiles per `_ps_profiles` row. A commit rewrites the chunks holding the
/// profiles it changed, so a sync touching k scattered profiles writes about
/// k × CHUNK records; a restart reads profiles / CHUNK rows.
pub const CHUNK: u32 = 64;

/// The chunk a profile's state is stored in.
pub fn chunk_of(p: ps_identity::ProfileIdx) -> u32 {
    p / CHUNK
}

/// The engine state rows `(chunk, state)` for `chunks` (ascending, deduped),
/// each holding the snapshot of its profiles as base64 text (the column is
/// text in every warehouse).
pub fn encode_chunks(engine: &ps_identity::Engine, chunks: &[u32]) -> Vec<Vec<ps_spec::Value>> {
    use ps_warehouse::contract::{Col, Layout, STATE_PROFILES};
    let n = engine.profile_count() as u32;
    let mut buf = Vec::new();
    let layout = Layout::of(STATE_PROFILES);
    chunks
        .iter()
        .map(|&c| {
            let start = c * CHUNK;
            let end = (start + CHUNK).min(n);
            buf.clear();
            engine.encode_snapshot(start..end, &mut buf);
            let mut row = layout.row();
            row.set(Col::Chunk, ps_spec::Value::Int(i64::from(c)))
                .set(Col::State, ps_spec::Value::Str(base64::encode(&buf)));
            row.into_cells()
        })
        .collect()
}

/// The chunks holding `dirty` profiles (ascending, as `take_dirty` gives
/// them), each once.
pub fn chunks_of(dirty: &[ps_identity::ProfileIdx]) -> Vec<u32> {
    let mut c: Vec<u32> = dirty.iter().map(|&p| chunk_of(p)).collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// The snapshot bytes of one `SELECT state FROM _ps_profiles` row.
pub fn decode_row(r: Vec<ps_spec::Value>) -> Result<Vec<u8>, String> {
    match r.first() {
        Some(ps_spec::Value::Str(s)) => {
            let mut b = Vec::new();
            base64::decode(s, &mut b)
                .ok_or_else(|| "a profile state row is not base64".to_owned())?;
            Ok(b)
        }
        _ => Err("profile state row without state".to_owned()),
    }
}

/// Refuses a space whose `_ps_meta` records another state layout, before
/// anything is created or read in it.
pub fn check_version(
    wh: &mut dyn ps_warehouse::Warehouse,
    schema: &str,
    version: &str,
) -> crate::error::Result<()> {
    use ps_warehouse::contract::{Col, STATE_META};
    let d = wh.dialect().clone();
    let sql = ps_warehouse::sql::select_where_eq(
        &d,
        schema,
        STATE_META,
        &[Col::Value],
        Col::Key,
        "version",
    );
    for r in wh.query(&sql)? {
        if let Some(ps_spec::Value::Str(v)) = r.first() {
            if v != version {
                return Err(crate::error::Error::State {
                    space: schema.to_owned(),
                    message: format!(
                        "it has state version {v} and this profiles-sync reads version {version} \
                         only (version 1, one JSON record per profile, predates the binary engine \
                         snapshot); sync its event files into a new space, or drop schema {schema} \
                         and sync them again"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The dedupe keys in `_ps_seen`: 16 bytes each (little-endian), packed,
/// base64. Rows are appended per commit and compacted at start-up.
pub mod seen {
    use sha1::{Digest, Sha1};

    /// The dedupe key of a message id.
    pub(crate) fn message_key(id: &str) -> u128 {
        let d = Sha1::digest(id.as_bytes());
        u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
    }

    /// The dedupe key of a refused event: where it was and what it said.
    pub(crate) fn rejected_key(origin: &str, payload: &str) -> u128 {
        let mut h = Sha1::new();
        h.update(b"rejected\0");
        h.update(origin.as_bytes());
        h.update(b"\0");
        h.update(payload.as_bytes());
        let d = h.finalize();
        u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
    }

    /// Keys per row when the table is compacted: about 1.4 MB of text.
    pub const PER_ROW: usize = 64 * 1024;

    /// Rows in `_ps_seen` beyond which start-up compacts them.
    pub const COMPACT_ABOVE: usize = 256;

    /// The `keys` cell for `keys`.
    pub fn encode(keys: &[u128]) -> String {
        let mut b = Vec::with_capacity(keys.len() * 16);
        for k in keys {
            b.extend_from_slice(&k.to_le_bytes());
        }
        super::base64::encode(&b)
    }

    /// Adds the keys of one `keys` cell to `out`; `None` if it is not one.
    pub fn decode(cell: &str, buf: &mut Vec<u8>, out: &mut impl Extend<u128>) -> Option<()> {
        super::base64::decode(cell, buf)?;
        if !buf.len().is_multiple_of(16) {
            return None;
        }
        out.extend(
            buf.chunks_exact(16)
                .map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes"))),
        );
        Some(())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trip() {
            let keys = [
                0u128,
                1,
                u128::MAX,
                0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            ];
            let mut back = Vec::new();
            super::decode(&super::encode(&keys), &mut Vec::new(), &mut back).unwrap();
            assert_eq!(back, keys);
            assert!(super::decode(
                &super::super::base64::encode(b"short"),
                &mut Vec::new(),
                &mut back
            )
            .is_none());
        }
    }
}

/// Standard base64 (RFC 4648, padded), as both warehouses store the engine
/// state and the dedupe keys in text columns: the `base64` crate's
/// standard engine, which writes exactly what the hand-written codec of
/// earlier versions wrote, so stored spaces read back unchanged.
pub mod base64 {
    use ::base64::engine::general_purpose::STANDARD;
    use ::base64::Engine as _;

    /// Encodes `b`.
    pub fn encode(b: &[u8]) -> String {
        STANDARD.encode(b)
    }

    /// Decodes into `out` (cleared first); `None` if `s` is not base64.
    pub fn decode(s: &str, out: &mut Vec<u8>) -> Option<()> {
        out.clear();
        STANDARD.decode_vec(s, out).ok()
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trip() {
            for n in 0..40usize {
                let b: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
                let s = super::encode(&b);
                let mut back = Vec::new();
                super::decode(&s, &mut back).unwrap();
                assert_eq!(back, b, "{n}");
            }
            assert_eq!(super::encode(b"foobar"), "Zm9vYmFy");
            assert_eq!(super::encode(b"fooba"), "Zm9vYmE=");
            assert_eq!(super::encode(b"foob"), "Zm9vYg==");
            let mut v = Vec::new();
            assert!(super::decode("Zm9v!mFy", &mut v).is_none());
            assert!(super::decode("Zm9", &mut v).is_none());
        }
    }
}
