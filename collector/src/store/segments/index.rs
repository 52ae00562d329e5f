//! The per-segment index: entries, dictionaries, and the sidecar file.
//!
//! Every event record of a segment has one [`Entry`] (fixed width: time,
//! record location, dictionary ids of the five string fields, source IP).
//! Dictionary ids are per segment and start at 1; 0 means the field is
//! absent. The active segment's entries live in memory (bounded by the
//! segment size); a sealed segment's are in `<no>.idx`, written when it is
//! sealed and never fsynced (see the parent module for the layout and why
//! that is safe).

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use auditship_crypt::{Domain, Keyring};

use crate::store::IndexKey;

/// String fields, in entry and file order.
pub const FIELDS: usize = 5;
/// Field numbers.
pub const HOST: usize = 0;
/// `actor.user`.
pub const ACTOR: usize = 1;
/// `action`.
pub const ACTION: usize = 2;
/// `category`.
pub const CATEGORY: usize = 3;
/// `outcome`.
pub const OUTCOME: usize = 4;

/// One event's index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Event time, Unix ms.
    pub ts_millis: i64,
    /// Offset of the record's frame in the segment.
    pub offset: u32,
    /// Length of the frame (header and body).
    pub len: u32,
    /// Dictionary id per field (0 = absent).
    pub fields: [u32; FIELDS],
    /// Source IP: kind (0 none, 4, 6) then 16 address bytes.
    pub src: [u8; 17],
}

impl Entry {
    /// The source IP, if any.
    pub fn src_ip(&self) -> Option<IpAddr> {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.src[1..]);
        match self.src[0] {
            4 => Some(IpAddr::from([b[0], b[1], b[2], b[3]])),
            6 => Some(IpAddr::from(b)),
            _ => None,
        }
    }
}

fn encode_ip(ip: Option<IpAddr>) -> [u8; 17] {
    let mut out = [0u8; 17];
    match ip {
        Some(IpAddr::V4(a)) => {
            out[0] = 4;
            out[1..5].copy_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out[0] = 6;
            out[1..].copy_from_slice(&a.octets());
        }
        None => {}
    }
    out
}

/// FxHash: the dictionaries hash short strings once per event and field, and
/// SipHash's flood resistance buys nothing for values the store wrote itself.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by strings with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One field's dictionary: value -> id (from 1), and id - 1 -> value.
#[derive(Clone, Debug, Default)]
pub struct Dictionary {
    ids: FxMap<Box<str>, u32>,
    values: Vec<Box<str>>,
}

impl Dictionary {
    /// The id of `value`, adding it; the flag says whether it is new.
    pub fn intern(&mut self, value: &str) -> (u32, bool) {
        if let Some(&id) = self.ids.get(value) {
            return (id, false);
        }
        self.values.push(value.into());
        let id = self.values.len() as u32;
        self.ids.insert(value.into(), id);
        (id, true)
    }

    /// The id of `value`, if present.
    pub fn get(&self, value: &str) -> Option<u32> {
        self.ids.get(value).copied()
    }

    /// Values in id order.
    pub fn values(&self) -> &[Box<str>] {
        &self.values
    }
}

/// The five dictionaries of a segment.
pub type Dictionaries = [Dictionary; FIELDS];

/// Builds entries, interning field values.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    /// Dictionaries so far.
    pub dicts: Dictionaries,
}

impl Builder {
    /// The entry of an event at `offset` (frame length `len`); calls `new`
    /// for every value that entered a dictionary.
    pub fn entry(
        &mut self,
        key: &IndexKey<'_>,
        offset: u32,
        len: u32,
        mut new: impl FnMut(usize, &str),
    ) -> Entry {
        let values = [
            key.host,
            key.actor,
            Some(key.action),
            Some(key.category),
            Some(key.outcome),
        ];
        let mut fields = [0u32; FIELDS];
        for (f, v) in values.into_iter().enumerate() {
            if let Some(v) = v {
                let (id, fresh) = self.dicts[f].intern(v);
                if fresh {
                    new(f, v);
                }
                fields[f] = id;
            }
        }
        Entry {
            ts_millis: key.ts_millis,
            offset,
            len,
            fields,
            src: encode_ip(key.src_ip),
        }
    }
}

// ---- the sidecar file -------------------------------------------------------

const MAGIC: &[u8; 4] = b"ASX1";
/// Sections in the clear.
const VERSION: u16 = 1;
/// Sections sealed (the index of an encrypted segment).
const VERSION_ENCRYPTED: u16 = 2;
/// Sections: dictionaries, ts, location, five fields, src.
const SECTIONS: usize = 9;
const S_DICT: usize = 0;
const S_TS: usize = 1;
const S_LOC: usize = 2;
const S_FIELD0: usize = 3;
const S_SRC: usize = 8;
const FIXED: usize = 48;
const HEADER_LEN: usize = FIXED + SECTIONS * 24 + 8;

/// What an index header says about its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexMeta {
    /// Entries (event records).
    pub entries: u64,
    /// Earliest event time (i64::MAX when empty).
    pub min_ts: i64,
    /// Latest event time (i64::MIN when empty).
    pub max_ts: i64,
    /// Bytes of the index file.
    pub bytes: u64,
}

/// Count and time range of `entries` (`bytes` 0).
pub fn summarize(entries: &[&[Entry]]) -> IndexMeta {
    let (mut min_ts, mut max_ts, mut n) = (i64::MAX, i64::MIN, 0u64);
    for e in entries.iter().flat_map(|c| c.iter()) {
        min_ts = min_ts.min(e.ts_millis);
        max_ts = max_ts.max(e.ts_millis);
        n += 1;
    }
    IndexMeta {
        entries: n,
        min_ts,
        max_ts,
        bytes: 0,
    }
}

/// Associated data of a sealed section: what the header says about it.
fn section_context(
    no: u64,
    segment_len: u64,
    entries: u64,
    min_ts: i64,
    max_ts: i64,
    s: usize,
) -> [u8; 41] {
    let mut c = [0u8; 41];
    c[0..8].copy_from_slice(&no.to_le_bytes());
    c[8..16].copy_from_slice(&segment_len.to_le_bytes());
    c[16..24].copy_from_slice(&entries.to_le_bytes());
    c[24..32].copy_from_slice(&min_ts.to_le_bytes());
    c[32..40].copy_from_slice(&max_ts.to_le_bytes());
    c[40] = s as u8;
    c
}

/// Writes the index of segment `no` (whose file is `segment_len` bytes) to
/// `path`, through a temporary file renamed into place. Not fsynced.
/// With `keys` (an encrypted segment) every section is sealed.
pub fn write(
    path: &Path,
    no: u64,
    segment_len: u64,
    dicts: &Dictionaries,
    entries: &[&[Entry]],
    keys: Option<&Keyring>,
) -> std::io::Result<IndexMeta> {
    let n: usize = entries.iter().map(|c| c.len()).sum();
    let all = || entries.iter().flat_map(|c| c.iter());
    let mut counts: [Vec<u32>; FIELDS] = Default::default();
    for (f, c) in counts.iter_mut().enumerate() {
        *c = vec![0; dicts[f].values().len() + 1];
    }
    for e in all() {
        for (count, id) in counts.iter_mut().zip(e.fields) {
            if let Some(c) = count.get_mut(id as usize) {
                *c += 1;
            }
        }
    }
    let IndexMeta { min_ts, max_ts, .. } = summarize(entries);
    let mut sections: Vec<Vec<u8>> = vec![Vec::new(); SECTIONS];
    let d = &mut sections[S_DICT];
    for f in 0..FIELDS {
        d.extend_from_slice(&(dicts[f].values().len() as u32).to_le_bytes());
        for (i, v) in dicts[f].values().iter().enumerate() {
            let b = &v.as_bytes()[..v.len().min(u16::MAX as usize)];
            d.extend_from_slice(&(b.len() as u16).to_le_bytes());
            d.extend_from_slice(b);
            d.extend_from_slice(&counts[f][i + 1].to_le_bytes());
        }
    }
    sections[S_TS].reserve(n * 8);
    sections[S_LOC].reserve(n * 8);
    sections[S_SRC].reserve(n * 17);
    for e in all() {
        sections[S_TS].extend_from_slice(&e.ts_millis.to_le_bytes());
        sections[S_LOC].extend_from_slice(&e.offset.to_le_bytes());
        sections[S_LOC].extend_from_slice(&e.len.to_le_bytes());
        for f in 0..FIELDS {
            sections[S_FIELD0 + f].extend_from_slice(&e.fields[f].to_le_bytes());
        }
        sections[S_SRC].extend_from_slice(&e.src);
    }
    if let Some(k) = keys {
        for (i, sec) in sections.iter_mut().enumerate() {
            let ctx = section_context(no, segment_len, n as u64, min_ts, max_ts, i);
            let mut sealed = Vec::with_capacity(sec.len() + auditship_crypt::OVERHEAD);
            k.seal(Domain::STORE_INDEX, &ctx, sec, &mut sealed)
                .map_err(std::io::Error::other)?;
            *sec = sealed;
        }
    }
    let mut head = Vec::with_capacity(HEADER_LEN);
    head.extend_from_slice(MAGIC);
    let version = if keys.is_some() {
        VERSION_ENCRYPTED
    } else {
        VERSION
    };
    head.extend_from_slice(&version.to_le_bytes());
    head.extend_from_slice(&(SECTIONS as u16).to_le_bytes());
    head.extend_from_slice(&no.to_le_bytes());
    head.extend_from_slice(&segment_len.to_le_bytes());
    head.extend_from_slice(&(n as u64).to_le_bytes());
    head.extend_from_slice(&min_ts.to_le_bytes());
    head.extend_from_slice(&max_ts.to_le_bytes());
    let mut at = HEADER_LEN as u64;
    for s in &sections {
        head.extend_from_slice(&at.to_le_bytes());
        head.extend_from_slice(&(s.len() as u64).to_le_bytes());
        head.extend_from_slice(&crc32c::crc32c(s).to_le_bytes());
        head.extend_from_slice(&[0; 4]);
        at += s.len() as u64;
    }
    let crc = crc32c::crc32c(&head);
    head.extend_from_slice(&crc.to_le_bytes());
    head.extend_from_slice(&[0; 4]);
    let tmp = path.with_extension("idx.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&head)?;
    for s in &sections {
        f.write_all(s)?;
    }
    drop(f);
    fs::rename(&tmp, path)?;
    Ok(IndexMeta {
        entries: n as u64,
        min_ts,
        max_ts,
        bytes: at,
    })
}

/// An index file whose header is valid for its segment; sections are
/// checked when read.
pub struct IndexFile {
    file: File,
    /// From the header.
    pub meta: IndexMeta,
    /// Length of the segment the index describes.
    pub segment_len: u64,
    sections: [(u64, u64, u32); SECTIONS],
    /// Set when the sections are sealed: the keys and the segment number.
    sealed: Option<(Arc<Keyring>, u64)>,
    /// The opened location section of a sealed index.
    locations: OnceCell<Vec<u8>>,
}

/// Why an index file cannot be used (it is then rebuilt).
pub type Damage = String;

impl IndexFile {
    /// Opens `path` and checks its header against segment `no` of
    /// `segment_len` bytes, whose bodies are sealed when `encrypted`. An
    /// index in the clear for an encrypted segment, or sealed under a key
    /// not in `keys`, is unusable (and rebuilt from the segment).
    pub fn open(
        path: &Path,
        no: u64,
        segment_len: u64,
        encrypted: bool,
        keys: Option<&Arc<Keyring>>,
    ) -> Result<IndexFile, Damage> {
        let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut h = [0u8; HEADER_LEN];
        file.read_exact_at(&mut h, 0)
            .map_err(|e| format!("header unreadable: {e}"))?;
        let crc = u32::from_le_bytes(
            h[HEADER_LEN - 8..HEADER_LEN - 4]
                .try_into()
                .unwrap_or([0; 4]),
        );
        let version = u16::from_le_bytes([h[4], h[5]]);
        if &h[0..4] != MAGIC
            || !(version == VERSION || version == VERSION_ENCRYPTED)
            || crc32c::crc32c(&h[..HEADER_LEN - 8]) != crc
        {
            return Err("bad header".into());
        }
        let sealed_index = version == VERSION_ENCRYPTED;
        if sealed_index != encrypted {
            return Err(format!(
                "index is {}, its segment {}",
                if sealed_index {
                    "encrypted"
                } else {
                    "in the clear"
                },
                if encrypted {
                    "encrypted"
                } else {
                    "in the clear"
                }
            ));
        }
        let u = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().unwrap_or([0; 8]));
        if u(8) != no || u(16) != segment_len {
            return Err(format!(
                "index is of segment {} at {} bytes, not {no} at {segment_len}",
                u(8),
                u(16)
            ));
        }
        let entries = u(24);
        let mut sections = [(0, 0, 0); SECTIONS];
        let mut end = HEADER_LEN as u64;
        for (i, s) in sections.iter_mut().enumerate() {
            let at = FIXED + i * 24;
            let c = u32::from_le_bytes(h[at + 16..at + 20].try_into().unwrap_or([0; 4]));
            *s = (u(at), u(at + 8), c);
            end = end.max(s.0.saturating_add(s.1));
        }
        let extra = if sealed_index {
            auditship_crypt::OVERHEAD as u64
        } else {
            0
        };
        let width = |s: usize| {
            sections[s].1
                != entries
                    .saturating_mul(match s {
                        S_TS | S_LOC => 8,
                        S_SRC => 17,
                        _ => 4,
                    })
                    .saturating_add(extra)
        };
        if end > len || (1..SECTIONS).any(width) {
            return Err("index is short or its sections do not fit".into());
        }
        let sealed = match (sealed_index, keys) {
            (false, _) => None,
            (true, None) => return Err("index is encrypted and no key was given".into()),
            (true, Some(k)) => {
                let mut id = [0u8; 8];
                file.read_exact_at(&mut id, sections[S_DICT].0)
                    .map_err(|e| format!("section 0 unreadable: {e}"))?;
                let id = auditship_crypt::KeyId(id);
                if !k.knows(id) {
                    return Err(format!(
                        "index encrypted under key {id}, which was not given"
                    ));
                }
                Some((k.clone(), no))
            }
        };
        Ok(IndexFile {
            sealed,
            locations: OnceCell::new(),
            file,
            meta: IndexMeta {
                entries,
                min_ts: u(32) as i64,
                max_ts: u(40) as i64,
                bytes: len,
            },
            segment_len,
            sections,
        })
    }

    fn section(&self, s: usize) -> Result<Vec<u8>, Damage> {
        let (at, len, crc) = self.sections[s];
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, at)
            .map_err(|e| format!("section {s} unreadable: {e}"))?;
        if crc32c::crc32c(&buf) != crc {
            return Err(format!("section {s} fails its checksum"));
        }
        let Some((keys, no)) = &self.sealed else {
            return Ok(buf);
        };
        let m = &self.meta;
        let ctx = section_context(*no, self.segment_len, m.entries, m.min_ts, m.max_ts, s);
        let mut plain = Vec::with_capacity(buf.len());
        keys.open(Domain::STORE_INDEX, &ctx, &buf, &mut plain)
            .map_err(|e| format!("section {s}: {e}"))?;
        Ok(plain)
    }

    /// The id of each wanted value per field: `Ok(None)` when a wanted value
    /// does not occur in the segment (the segment can be skipped).
    pub fn lookup(&self, wanted: &[Option<&str>; FIELDS]) -> Result<Option<[u32; FIELDS]>, Damage> {
        let d = self.section(S_DICT)?;
        let mut r = &d[..];
        let mut ids = [0u32; FIELDS];
        let bad = || "dictionary malformed".to_string();
        for f in 0..FIELDS {
            let count = take_u32(&mut r).ok_or_else(bad)?;
            for id in 1..=count {
                let n = r.get(..2).ok_or_else(bad)?;
                let n = u16::from_le_bytes([n[0], n[1]]) as usize;
                let v = r.get(2..2 + n).ok_or_else(bad)?;
                let hits = u32::from_le_bytes(
                    r.get(2 + n..6 + n)
                        .ok_or_else(bad)?
                        .try_into()
                        .map_err(|_| bad())?,
                );
                if wanted[f].is_some_and(|w| w.as_bytes() == v) && hits > 0 {
                    ids[f] = id;
                }
                r = &r[6 + n..];
            }
            if wanted[f].is_some() && ids[f] == 0 {
                return Ok(None);
            }
        }
        Ok(Some(ids))
    }

    /// The key of a sealed index's first section (`None` in the clear).
    pub fn key_id(&self) -> Option<auditship_crypt::KeyId> {
        self.sealed.as_ref()?;
        let mut id = [0u8; 8];
        self.file
            .read_exact_at(&mut id, self.sections[S_DICT].0)
            .ok()?;
        Some(auditship_crypt::KeyId(id))
    }

    /// Event times.
    pub fn ts(&self) -> Result<Vec<i64>, Damage> {
        Ok(self
            .section(S_TS)?
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    }

    /// Dictionary ids of field `f`.
    pub fn field(&self, f: usize) -> Result<Vec<u32>, Damage> {
        Ok(self
            .section(S_FIELD0 + f)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
            .collect())
    }

    /// Source IPs (17 bytes each, see [`Entry::src`]).
    pub fn src(&self) -> Result<Vec<u8>, Damage> {
        self.section(S_SRC)
    }

    /// Location (offset, length) of entry `i`. In the clear it is read
    /// without the section checksum (the record's own checksum protects
    /// what is read there); sealed, the section is opened whole once.
    pub fn location(&self, i: u64) -> Result<(u64, u32), Damage> {
        let mut b = [0u8; 8];
        if self.sealed.is_some() {
            if self.locations.get().is_none() {
                let loc = self.section(S_LOC)?;
                let _ = self.locations.set(loc);
            }
            let loc = self.locations.get().map(|v| v.as_slice()).unwrap_or(&[]);
            let at = (i as usize).saturating_mul(8);
            b.copy_from_slice(
                loc.get(at..at + 8)
                    .ok_or_else(|| "location out of range".to_string())?,
            );
        } else {
            let (at, _, _) = self.sections[S_LOC];
            self.file
                .read_exact_at(&mut b, at + i * 8)
                .map_err(|e| format!("location unreadable: {e}"))?;
        }
        Ok((
            u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        ))
    }
}

fn take_u32(r: &mut &[u8]) -> Option<u32> {
    let b = r.get(..4)?;
    let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    *r = &r[4..];
    Some(v)
}
