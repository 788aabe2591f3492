//! A compact binary snapshot of the engine's profiles, for fast restarts.
//!
//! [`Engine::encode_snapshot`] writes the state of a contiguous range of
//! profiles (a *chunk*) — the same content as their [`ProfileRecord`]s — and
//! [`Engine::restore_snapshot`] rebuilds an engine from a set of chunks that
//! cover every profile, without going through intermediate records: each
//! identifier and trait is allocated once, straight into the engine, and type
//! and trait names are resolved once per chunk.
//!
//! The restored engine is the one [`Engine::restore`] would build from the
//! same profiles' records, so it behaves exactly like the uninterrupted one.
//!
//! Chunks can also be kept as a log ([`newest_cover`]): each commit appends
//! chunks of only the profiles it changed, tagged with a rising *layer*
//! number, and a profile's state is the one in the newest layer holding it.
//! `newest_cover` cuts such a log down to chunks that cover every profile
//! once, which `restore_snapshot` then reads as usual.
//!
//! ## Layout (all integers LEB128 varints, `i64` zigzagged)
//! ```text
//! chunk   := FORMAT first count ident_count
//!            n_types   str*      -- identifier type names used in the chunk
//!            n_names   str*      -- trait names used in the chunk
//!            profile*count       -- ordinals first, first+1, …
//! profile := segment_id:str canonical:var merges:var
//!            n_idents (type:var value:str last_seen:zigzag)*
//!            n_traits (name:var value order:var)*
//! value   := 0 null | 1 false | 2 true | 3 u64:var | 4 i64:zigzag (negative)
//!          | 5 f64 (8 bytes LE) | 6 str | 7 JSON text:str (arrays, objects)
//! str     := len:var bytes (UTF-8)
//! ```

use super::names::NameId;
use super::record::{IdentRec, Profile, TraitRec};
use super::{Engine, EngineMeta, IdentIdx, ProfileIdx, ProfileRecord, RestoreError};
use crate::settings::{IdScheme, Settings, TypeId};
use serde_json::Value as Json;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

/// First byte of every chunk; a different layout gets a different number.
const FORMAT: u8 = 1;

fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_var(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_value(out: &mut Vec<u8>, v: &Json) {
    match v {
        Json::Null => out.push(0),
        Json::Bool(false) => out.push(1),
        Json::Bool(true) => out.push(2),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(3);
                put_var(out, u);
            } else if let Some(i) = n.as_i64() {
                out.push(4);
                put_var(out, zigzag(i));
            } else {
                out.push(5);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Json::String(s) => {
            out.push(6);
            put_str(out, s);
        }
        other => {
            out.push(7);
            put_str(out, &other.to_string());
        }
    }
}

/// Reads a chunk.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

fn corrupt(what: &str) -> RestoreError {
    RestoreError(format!("snapshot chunk: {what}"))
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, RestoreError> {
        let b = *self.b.get(self.pos).ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn var(&mut self) -> Result<u64, RestoreError> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return Err(corrupt("varint too long"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    /// A count, bounded by the bytes left so a corrupt length cannot ask
    /// for a huge allocation.
    fn len(&mut self) -> Result<usize, RestoreError> {
        let n = self.var()?;
        if n > (self.b.len() - self.pos) as u64 {
            return Err(corrupt("length past the end"));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Result<&'a str, RestoreError> {
        let n = self.len()?;
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        std::str::from_utf8(s).map_err(|_| corrupt("string is not UTF-8"))
    }

    fn value(&mut self) -> Result<Json, RestoreError> {
        Ok(match self.byte()? {
            0 => Json::Null,
            1 => Json::Bool(false),
            2 => Json::Bool(true),
            3 => Json::from(self.var()?),
            4 => Json::from(unzigzag(self.var()?)),
            5 => {
                let end = self.pos + 8;
                let b: [u8; 8] = self
                    .b
                    .get(self.pos..end)
                    .ok_or_else(|| corrupt("truncated"))?
                    .try_into()
                    .expect("8 bytes");
                self.pos = end;
                serde_json::Number::from_f64(f64::from_le_bytes(b)).map_or(Json::Null, Json::Number)
            }
            6 => Json::String(self.str()?.to_owned()),
            7 => serde_json::from_str(self.str()?)
                .map_err(|e| corrupt(&format!("trait value: {e}")))?,
            t => return Err(corrupt(&format!("unknown value tag {t}"))),
        })
    }
}

/// A chunk's header, read before its profiles.
struct Head<'a> {
    first: u64,
    count: u64,
    idents: u64,
    reader: Reader<'a>,
}

fn head(chunk: &[u8]) -> Result<Head<'_>, RestoreError> {
    let mut r = Reader { b: chunk, pos: 0 };
    let f = r.byte()?;
    if f != FORMAT {
        return Err(corrupt(&format!(
            "format {f} is not supported (expected {FORMAT})"
        )));
    }
    let first = r.var()?;
    let count = r.var()?;
    let idents = r.var()?;
    // Every profile and identifier takes bytes: corrupt counts must not
    // reserve memory the chunk could never fill.
    if count > chunk.len() as u64 || idents > chunk.len() as u64 || first > u64::from(u32::MAX) {
        return Err(corrupt("counts larger than the chunk"));
    }
    Ok(Head {
        first,
        count,
        idents,
        reader: r,
    })
}

impl Engine {
    /// Appends the snapshot of the profiles in `range` to `out`.
    pub fn encode_snapshot(&self, range: Range<ProfileIdx>, out: &mut Vec<u8>) {
        let profiles = &self.profiles[range.start as usize..range.end as usize];
        let mut types: Vec<TypeId> = Vec::new();
        let mut names: HashMap<NameId, u64> = HashMap::new();
        let mut name_list: Vec<&str> = Vec::new();
        let mut ident_count = 0u64;
        for p in profiles {
            ident_count += p.idents.len() as u64;
            for &i in &p.idents {
                let t = self.idents[i as usize].ty;
                if !types.contains(&t) {
                    types.push(t);
                }
            }
            for t in &p.traits {
                names.entry(t.name).or_insert_with(|| {
                    name_list.push(self.names.get(t.name));
                    name_list.len() as u64 - 1
                });
            }
        }
        out.push(FORMAT);
        put_var(out, u64::from(range.start));
        put_var(out, profiles.len() as u64);
        put_var(out, ident_count);
        put_var(out, types.len() as u64);
        for &t in &types {
            put_str(out, self.settings.name(t));
        }
        put_var(out, name_list.len() as u64);
        for n in &name_list {
            put_str(out, n);
        }
        for (k, p) in profiles.iter().enumerate() {
            put_str(out, self.segment_id(range.start + k as ProfileIdx));
            put_var(out, u64::from(self.canon[range.start as usize + k]));
            put_var(out, u64::from(p.merges));
            put_var(out, p.idents.len() as u64);
            for &i in &p.idents {
                let r = &self.idents[i as usize];
                let ti = types.iter().position(|&t| t == r.ty).expect("collected");
                put_var(out, ti as u64);
                put_str(out, r.value_str(&self.spill));
                put_var(out, zigzag(r.last_seen));
            }
            put_var(out, p.traits.len() as u64);
            for t in &p.traits {
                put_var(out, names[&t.name]);
                put_value(out, &t.value);
                put_var(out, t.order);
            }
        }
    }

    /// The records held by snapshot chunks (any order) covering every
    /// profile, ascending by ordinal: what [`Engine::record`] gives for each
    /// profile of the engine that wrote them. For tests and tools; restoring
    /// goes straight from chunks to an engine.
    pub fn decode_snapshot<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<ProfileRecord>, RestoreError> {
        let mut heads = chunks
            .into_iter()
            .map(head)
            .collect::<Result<Vec<_>, _>>()?;
        heads.sort_unstable_by_key(|h| h.first);
        let mut out: Vec<ProfileRecord> = Vec::new();
        let mut canonical: Vec<u64> = Vec::new();
        for h in heads {
            if h.first != out.len() as u64 {
                return Err(corrupt("chunks do not cover the profiles once each"));
            }
            let mut rd = h.reader;
            let dict = Chunk::dictionaries(&mut rd)?;
            for k in 0..h.count {
                let segment_id = rd.str()?.to_owned();
                canonical.push(rd.var()?);
                let merges = to_u32(rd.var()?)?;
                let mut idents = Vec::new();
                for _ in 0..rd.len()? {
                    let t = dict.type_name(rd.var()?)?.to_owned();
                    let v = rd.str()?.to_owned();
                    idents.push((t, v, unzigzag(rd.var()?)));
                }
                let mut traits = Vec::new();
                for _ in 0..rd.len()? {
                    let n = dict.name(rd.var()?)?.to_owned();
                    let v = rd.value()?;
                    traits.push((n, v, rd.var()?));
                }
                out.push(ProfileRecord {
                    segment_id,
                    ord: to_u32(h.first + k)?,
                    canonical: String::new(),
                    merges,
                    idents,
                    traits,
                });
            }
        }
        for (i, c) in canonical.into_iter().enumerate() {
            let id = out
                .get(c as usize)
                .ok_or_else(|| corrupt("canonical profile out of range"))?
                .segment_id
                .clone();
            out[i].canonical = id;
        }
        Ok(out)
    }

    /// Rebuilds an engine from snapshot chunks (any order) that together
    /// hold every profile exactly once, and the engine's meta.
    pub fn restore_snapshot<'a>(
        settings: Settings,
        scheme: IdScheme,
        space: &str,
        meta: &EngineMeta,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Engine, RestoreError> {
        let mut e = Engine::new(settings, scheme, space);
        for t in &meta.added_types {
            e.settings.type_id_or_add(t);
        }
        e.order = meta.order;
        let mut heads = chunks
            .into_iter()
            .map(head)
            .collect::<Result<Vec<_>, _>>()?;
        heads.sort_unstable_by_key(|h| h.first);
        let mut next = 0u64;
        let mut ident_total = 0u64;
        for h in &heads {
            if h.first != next {
                return Err(RestoreError(format!(
                    "profiles {next}..{} are missing from the snapshot (or stored twice)",
                    h.first
                )));
            }
            next += h.count;
            ident_total += h.idents;
            if next > u64::from(u32::MAX) {
                return Err(corrupt("too many profiles"));
            }
        }
        if next != meta.profiles {
            return Err(RestoreError(format!(
                "the snapshot holds {next} profiles but the engine had {}",
                meta.profiles
            )));
        }
        let n = to_u32(next)? as usize;
        e.profiles.reserve_exact(n);
        e.canon.reserve_exact(n);
        e.marked = vec![false; n];
        e.segment_ids.reserve(n, 0);
        e.idents.reserve_exact(ident_total as usize);
        e.index.reserve(ident_total as usize);
        for h in heads {
            let mut rd = h.reader;
            let dict = Chunk::dictionaries(&mut rd)?;
            let types: Vec<TypeId> = dict
                .types
                .iter()
                .map(|t| e.settings.type_id_or_add(t).0)
                .collect();
            let names: Vec<NameId> = dict
                .names
                .iter()
                .map(|n| e.names.id(&e.hasher, n))
                .collect();
            for k in 0..h.count {
                let p = (h.first + k) as ProfileIdx;
                e.segment_ids.push(&[rd.str()?]);
                let canonical = rd.var()?;
                if canonical >= next {
                    return Err(RestoreError(format!(
                        "profile {} points to unknown profile {canonical}",
                        e.segment_id(p)
                    )));
                }
                e.canon.push(canonical as ProfileIdx);
                let mut prof = Profile {
                    merges: to_u32(rd.var()?)?,
                    ..Profile::default()
                };
                let ni = rd.len()?;
                prof.idents.reserve_exact(ni);
                for _ in 0..ni {
                    let ti = rd.var()?;
                    let ty = *types
                        .get(ti as usize)
                        .ok_or_else(|| corrupt("identifier type out of range"))?;
                    let v = rd.str()?;
                    let last_seen = unzigzag(rd.var()?);
                    let i = e.idents.len() as IdentIdx;
                    let hash = e.hasher.hash(ty, v);
                    if e.find_hashed(hash, ty, v).is_some() {
                        return Err(RestoreError(format!(
                            "identifier {}:{v} is held by two profiles",
                            e.settings.name(ty)
                        )));
                    }
                    e.index.insert(hash, i);
                    e.idents
                        .push(IdentRec::new(ty, v, p, last_seen, &mut e.spill));
                    prof.idents.push(i);
                }
                let nt = rd.len()?;
                prof.traits.reserve_exact(nt);
                for _ in 0..nt {
                    let name = *names
                        .get(rd.var()? as usize)
                        .ok_or_else(|| corrupt("trait name out of range"))?;
                    let value = rd.value()?;
                    prof.traits.push(TraitRec {
                        name,
                        value,
                        order: rd.var()?,
                    });
                }
                e.profiles.push(prof);
            }
            if rd.pos != rd.b.len() {
                return Err(corrupt("trailing bytes"));
            }
        }
        for i in 0..n {
            let c = e.canon[i];
            if c as usize != i {
                // One hop: a merged-away profile must point at a live one.
                if e.canon[c as usize] != c {
                    return Err(RestoreError(format!(
                        "profile {} points to {}, which is itself merged away",
                        e.segment_id(i as ProfileIdx),
                        e.segment_id(c)
                    )));
                }
                e.profiles[c as usize].members.push(i as ProfileIdx);
            }
        }
        Ok(e)
    }
}

fn to_u32(v: u64) -> Result<u32, RestoreError> {
    u32::try_from(v).map_err(|_| corrupt("number out of range"))
}

/// A chunk's name dictionaries.
struct Chunk<'a> {
    types: Vec<&'a str>,
    names: Vec<&'a str>,
}

impl<'a> Chunk<'a> {
    fn dictionaries(r: &mut Reader<'a>) -> Result<Chunk<'a>, RestoreError> {
        let mut types = Vec::new();
        for _ in 0..r.len()? {
            types.push(r.str()?);
        }
        let mut names = Vec::new();
        for _ in 0..r.len()? {
            names.push(r.str()?);
        }
        Ok(Chunk { types, names })
    }

    fn type_name(&self, i: u64) -> Result<&'a str, RestoreError> {
        self.types
            .get(i as usize)
            .copied()
            .ok_or_else(|| corrupt("identifier type out of range"))
    }

    fn name(&self, i: u64) -> Result<&'a str, RestoreError> {
        self.names
            .get(i as usize)
            .copied()
            .ok_or_else(|| corrupt("trait name out of range"))
    }
}

/// Skips one profile record; returns how many identifiers it holds.
fn skip_profile(r: &mut Reader<'_>) -> Result<u64, RestoreError> {
    r.str()?;
    r.var()?;
    r.var()?;
    let ni = r.len()?;
    for _ in 0..ni {
        r.var()?;
        r.str()?;
        r.var()?;
    }
    for _ in 0..r.len()? {
        r.var()?;
        r.value()?;
        r.var()?;
    }
    Ok(ni as u64)
}

/// The part of `chunk` holding profiles `range` (inside the chunk's own),
/// as a chunk of its own: the header rewritten, the dictionaries and the
/// profiles' bytes copied.
fn slice(chunk: &[u8], range: Range<u64>) -> Result<Vec<u8>, RestoreError> {
    let h = head(chunk)?;
    let mut rd = h.reader;
    Chunk::dictionaries(&mut rd)?;
    let dict_end = rd.pos;
    let dict_start = {
        // The dictionaries start after the header's four fields.
        let mut r = Reader { b: chunk, pos: 1 };
        for _ in 0..3 {
            r.var()?;
        }
        r.pos
    };
    let (mut start, mut end, mut idents) = (dict_end, dict_end, 0u64);
    for k in h.first..h.first + h.count {
        if k == range.start {
            start = rd.pos;
        }
        let n = skip_profile(&mut rd)?;
        if range.contains(&k) {
            idents += n;
            end = rd.pos;
        }
        if k + 1 == range.end {
            break;
        }
    }
    let mut out = Vec::with_capacity(16 + (dict_end - dict_start) + (end - start));
    out.push(FORMAT);
    put_var(&mut out, range.start);
    put_var(&mut out, range.end - range.start);
    put_var(&mut out, idents);
    out.extend_from_slice(&chunk[dict_start..dict_end]);
    out.extend_from_slice(&chunk[start..end]);
    Ok(out)
}

/// Cuts a log of snapshot chunks down to chunks that hold every profile
/// once: for each profile, its record in the chunk of the highest layer
/// holding it (among equal layers, the later one). Chunks wholly replaced
/// by newer ones are dropped, wholly live ones are passed on as they are,
/// and partly replaced ones are cut into their live parts. Profiles no
/// chunk holds stay missing, for [`Engine::restore_snapshot`] to report.
pub fn newest_cover<'a>(chunks: &[(i64, &'a [u8])]) -> Result<Vec<Cow<'a, [u8]>>, RestoreError> {
    let mut spans = Vec::with_capacity(chunks.len());
    for (i, (layer, c)) in chunks.iter().enumerate() {
        let h = head(c)?;
        let end = h
            .first
            .checked_add(h.count)
            .filter(|&e| e <= u64::from(u32::MAX))
            .ok_or_else(|| corrupt("too many profiles"))?;
        spans.push((*layer, i, h.first, end));
    }
    // Oldest first, so a newer chunk's claim overwrites an older one's.
    spans.sort_unstable_by_key(|&(layer, i, _, _)| (layer, i));
    let total = spans.iter().map(|s| s.3).max().unwrap_or(0) as usize;
    let mut owner = vec![u32::MAX; total];
    for &(_, i, first, end) in &spans {
        owner[first as usize..end as usize].fill(i as u32);
    }
    let mut out = Vec::new();
    for &(_, i, first, end) in &spans {
        let claimed = &owner[first as usize..end as usize];
        if claimed.iter().all(|&o| o == i as u32) {
            out.push(Cow::Borrowed(chunks[i].1));
            continue;
        }
        let mut k = first;
        while k < end {
            if owner[k as usize] != i as u32 {
                k += 1;
                continue;
            }
            let run = k;
            while k < end && owner[k as usize] == i as u32 {
                k += 1;
            }
            out.push(Cow::Owned(slice(chunks[i].1, run..k)?));
        }
    }
    Ok(out)
}
