//! The identity engine's persistent state in the warehouse (`_ps_profiles`).

use std::time::Duration;

/// Version of the internal state layout, stored in `_ps_meta`. 3: the
/// engine state in `_ps_profiles` is a log — each commit appends chunks of
/// the profiles it changed, `chunk` holding the commit's layer number — and
/// is compacted to one layer when it has grown; 2 kept one row per fixed
/// chunk of 64 profiles, replaced on change (read and migrated, see
/// [`MIGRATES_FROM`]); 1 held one JSON record per profile.
pub(crate) const STATE_VERSION: &str = "3";

/// The older layout `Space::open` migrates: its rows become layer 0.
pub(crate) const MIGRATES_FROM: &str = "2";

/// `_ps_meta` key: the layer number of the newest engine-state rows.
pub(crate) const LAYER_META: &str = "state_layer";

/// `_ps_meta` key: profile records in the engine-state log, live or
/// replaced by newer ones (compaction keeps it near the profile count).
pub(crate) const LOG_META: &str = "state_log";

/// Profile records the log may hold beyond twice the profile count before
/// a commit compacts it: each compaction rewrites every profile once, so
/// appends pay for it at most once over.
pub const COMPACT_SLACK: u64 = 4096;

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

/// Profiles per `_ps_profiles` row at most: a compaction writes every
/// profile in rows of this many, a commit the runs of consecutive changed
/// profiles cut at this length.
pub const CHUNK: u32 = 64;

/// The engine-state rows `(layer, state)` of the `dirty` profiles
/// (ascending, as `take_dirty` gives them): a chunk per run of consecutive
/// profiles, each holding their snapshot as base64 text (the column is
/// text in every warehouse).
pub fn encode_dirty(
    engine: &ps_identity::Engine,
    layer: i64,
    dirty: &[ps_identity::ProfileIdx],
) -> Vec<Vec<ps_spec::Value>> {
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < dirty.len() {
        let start = dirty[i];
        let mut end = start + 1;
        i += 1;
        while i < dirty.len() && dirty[i] == end && end - start < CHUNK {
            end += 1;
            i += 1;
        }
        ranges.push(start..end);
    }
    encode_ranges(engine, layer, ranges)
}

/// The engine-state rows `(layer, state)` of every profile, in chunks of
/// [`CHUNK`]: the whole log after a compaction.
pub fn encode_all(engine: &ps_identity::Engine, layer: i64) -> Vec<Vec<ps_spec::Value>> {
    let n = engine.profile_count() as u32;
    encode_ranges(
        engine,
        layer,
        (0..n.div_ceil(CHUNK)).map(|c| c * CHUNK..(c * CHUNK + CHUNK).min(n)),
    )
}

fn encode_ranges(
    engine: &ps_identity::Engine,
    layer: i64,
    ranges: impl IntoIterator<Item = std::ops::Range<ps_identity::ProfileIdx>>,
) -> Vec<Vec<ps_spec::Value>> {
    use ps_warehouse::contract::{Col, Layout, STATE_PROFILES};
    let mut buf = Vec::new();
    let layout = Layout::of(STATE_PROFILES);
    ranges
        .into_iter()
        .map(|r| {
            buf.clear();
            engine.encode_snapshot(r, &mut buf);
            let mut row = layout.row();
            row.set(Col::Chunk, ps_spec::Value::Int(layer))
                .set(Col::State, ps_spec::Value::Str(base64::encode(&buf)));
            row.into_cells()
        })
        .collect()
}

/// The layer and snapshot bytes of one `SELECT chunk, state FROM
/// _ps_profiles` row.
pub fn decode_row(r: Vec<ps_spec::Value>) -> Result<(i64, Vec<u8>), String> {
    match r.as_slice() {
        [ps_spec::Value::Int(layer), ps_spec::Value::Str(s)] => {
            let mut b = Vec::new();
            base64::decode(s, &mut b)
                .ok_or_else(|| "a profile state row is not base64".to_owned())?;
            Ok((*layer, b))
        }
        _ => Err("profile state row without layer or state".to_owned()),
    }
}

/// Refuses a space whose `_ps_meta` records a state layout other than
/// `version` or [`MIGRATES_FROM`], before anything is created or read in it.
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
            if v != version && v != MIGRATES_FROM {
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
