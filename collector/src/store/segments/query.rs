//! The read side: queries over committed events, newest first.
//!
//! "Newest" is the most recently *stored* event (reverse commit order:
//! segments from the highest number down, records from the end of each),
//! not the largest `ts`: agents deliver late and clocks disagree, and the
//! commit order is what a cursor can follow without gaps while ingest keeps
//! appending.
//!
//! A query snapshots the committed state under the lock (the sealed list, an
//! `Arc`; the active segment's committed length and index chunks, `Arc`s;
//! the dictionary ids of its filter values) and then works without it. Its
//! memory is the page plus the index columns of one segment at a time.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use memchr::memmem;

use super::cipher::SegmentCipher;
use super::format::{self, Bad, Body};
use super::index::{Entry, IndexFile, FIELDS};
use super::recover;
use super::{Recovery, Sealed, Shared, CHUNK};
use crate::store::{Cursor, Page, Query, StoreError, StoreReader, StoreStats, StoredEvent};

/// The store's reader; see [`StoreReader`] and the module docs.
pub struct SegmentReader {
    pub(super) shared: Arc<Shared>,
    /// Corrupt records already counted, so repeated queries count them once.
    bad: Mutex<HashSet<(u64, u64)>>,
}

/// What a query looks for, prepared once.
struct Filter<'q> {
    q: &'q Query,
    wanted: [Option<&'q str>; FIELDS],
    text: Option<(memmem::Finder<'static>, &'q str)>,
}

impl<'q> Filter<'q> {
    fn new(q: &'q Query) -> Self {
        Filter {
            q,
            wanted: [
                q.host.as_deref(),
                q.actor.as_deref(),
                q.action.as_deref(),
                q.category.as_deref(),
                q.outcome.as_deref(),
            ],
            text: q.text.as_deref().map(|t| {
                (
                    memmem::Finder::new(escape_json(t).as_bytes()).into_owned(),
                    t,
                )
            }),
        }
    }

    fn time(&self, ts: i64) -> bool {
        self.q.since_millis.is_none_or(|s| ts >= s) && self.q.until_millis.is_none_or(|u| ts < u)
    }

    fn has_time(&self) -> bool {
        self.q.since_millis.is_some() || self.q.until_millis.is_some()
    }

    fn ip(&self, ip: Option<IpAddr>) -> bool {
        self.q
            .src
            .is_none_or(|n| ip.is_some_and(|ip| n.contains(ip)))
    }

    /// Whether an entry matches every indexed filter; `ids` are the
    /// segment's dictionary ids of the wanted values.
    fn entry(&self, e: &Entry, ids: &[u32; FIELDS]) -> bool {
        (0..FIELDS).all(|f| self.wanted[f].is_none() || e.fields[f] == ids[f])
            && self.time(e.ts_millis)
            && (self.q.src.is_none() || self.ip(e.src_ip()))
    }

    /// The text filter: the escaped text in the payload bytes, confirmed in
    /// the `raw` field.
    fn payload(&self, payload: &[u8]) -> bool {
        let Some((finder, text)) = &self.text else {
            return true;
        };
        if finder.find(payload).is_none() {
            return false;
        }
        #[derive(serde::Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            raw: Cow<'a, str>,
        }
        serde_json::from_slice::<Raw<'_>>(payload).is_ok_and(|r| r.raw.contains(text))
    }
}

/// `s` escaped as the canonical encoding escapes strings.
fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A segment file open for reading records, and whether its bodies are
/// sealed (from its header).
struct SegFile {
    file: File,
    encrypted: bool,
}

/// The page being filled.
struct Collect {
    page: Page,
    limit: usize,
}

impl Collect {
    fn full(&self) -> bool {
        self.page.events.len() >= self.limit
    }
}

impl SegmentReader {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        SegmentReader {
            shared,
            bad: Mutex::new(HashSet::new()),
        }
    }

    /// Reads the record at `offset`; a corrupt one is counted (once),
    /// logged, copied aside and skipped.
    fn record(&self, seg: &SegFile, no: u64, offset: u64, len: u32) -> Option<StoredEvent> {
        let mut buf = vec![0u8; len as usize];
        let cipher = match (seg.encrypted, self.shared.keys.as_deref()) {
            (true, Some(k)) => SegmentCipher::sealed(k, no),
            _ => SegmentCipher::plain(no),
        };
        let mut scratch = Vec::new();
        let why = match seg.file.read_exact_at(&mut buf, offset) {
            Ok(()) => match format::frame_at(&buf, 0, &cipher, &mut scratch) {
                Ok((Body::Event(ev), _)) => {
                    return Some(StoredEvent {
                        agent_id: ev.agent.to_string(),
                        queue: ev.queue,
                        seq: ev.seq,
                        ts_millis: ev.ts_millis,
                        leaf: ev.leaf,
                        payload: ev.payload.to_vec(),
                    })
                }
                Ok(_) => "index points at a record that is not an event",
                Err(Bad::Corrupt(why)) => why,
                Err(Bad::Locked(key)) => {
                    // Not damage: a key is missing (open checked the newest
                    // segment and every index, not each sealed record).
                    tracing::error!(segment = no, offset, %key, "store: record encrypted under a key that was not given; skipped");
                    return None;
                }
            },
            Err(_) => "record unreadable",
        };
        let first = self
            .bad
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((no, offset));
        if first {
            self.shared.quarantined.fetch_add(1, Ordering::Relaxed);
            recover::quarantine(&self.shared.qdir, no, offset, &buf, why);
        }
        None
    }

    fn open_segment(&self, no: u64) -> Result<SegFile, StoreError> {
        let path = recover::segment_path(&self.shared.dir, no);
        let file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
        let mut head = [0u8; format::HEADER_LEN];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(SegFile {
            file,
            encrypted: format::is_encrypted(&head),
        })
    }

    /// Scans in-memory entries `0..end` of segment `no` backwards.
    fn scan_entries(
        &self,
        no: u64,
        end: u64,
        entry: impl Fn(u64) -> Entry,
        ids: &[u32; FIELDS],
        filter: &Filter<'_>,
        out: &mut Collect,
    ) -> Result<(), StoreError> {
        let mut file = None;
        for i in (0..end).rev() {
            let e = entry(i);
            if !filter.entry(&e, ids) {
                continue;
            }
            let f = match &file {
                Some(f) => f,
                None => file.insert(self.open_segment(no)?),
            };
            self.push(f, no, i, u64::from(e.offset), e.len, filter, out);
            if out.full() {
                break;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        file: &SegFile,
        no: u64,
        i: u64,
        offset: u64,
        len: u32,
        filter: &Filter<'_>,
        out: &mut Collect,
    ) {
        if let Some(ev) = self.record(file, no, offset, len) {
            if filter.payload(&ev.payload) {
                out.page.events.push(ev);
                if out.full() {
                    out.page.next = Some(Cursor {
                        segment: no,
                        index: i,
                    });
                }
            }
        }
    }

    /// Scans sealed segment `s`, entries `0..end`, backwards.
    fn scan_sealed(
        &self,
        s: &Sealed,
        end: u64,
        filter: &Filter<'_>,
        out: &mut Collect,
    ) -> Result<(), StoreError> {
        let dir = &self.shared.dir;
        let keys = self.shared.keys.as_ref();
        let idx = IndexFile::open(
            &recover::index_path(dir, s.no),
            s.no,
            s.len,
            s.encrypted,
            keys,
        );
        let damage = match idx {
            Ok(idx) => match self.scan_index_file(&idx, s.no, end, filter, out) {
                Ok(r) => return r,
                Err(d) => d,
            },
            Err(d) => d,
        };
        // Damaged or missing: rebuild from the segment (one query at a time),
        // and answer from the rebuilt entries.
        tracing::warn!(
            segment = s.no,
            damage,
            "store: index unusable at query time, rebuilding"
        );
        let _guard = self
            .shared
            .rebuild
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut rec = Recovery::default();
        let rebuilt =
            recover::rebuild_index(dir, &self.shared.qdir, s.no, &mut rec, keys.map(|k| &**k))?;
        for q in &rec.quarantined {
            if self
                .bad
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((q.segment, q.offset))
            {
                self.shared.quarantined.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some((scan, _)) = rebuilt else {
            return Ok(());
        };
        let mut ids = [0u32; FIELDS];
        for ((id, w), d) in ids.iter_mut().zip(filter.wanted).zip(&scan.index.dicts) {
            if let Some(w) = w {
                match d.get(w) {
                    Some(v) => *id = v,
                    None => return Ok(()),
                }
            }
        }
        let end = end.min(scan.entries.len() as u64);
        self.scan_entries(s.no, end, |i| scan.entries[i as usize], &ids, filter, out)
    }

    /// Scans with the index file; `Err` is damage found on the way (the
    /// caller rebuilds), `Ok(Err)` a failure to report.
    fn scan_index_file(
        &self,
        idx: &IndexFile,
        no: u64,
        end: u64,
        filter: &Filter<'_>,
        out: &mut Collect,
    ) -> Result<Result<(), StoreError>, String> {
        let Some(ids) = idx.lookup(&filter.wanted)? else {
            return Ok(Ok(()));
        };
        let end = end.min(idx.meta.entries);
        let ts = if filter.has_time() {
            Some(idx.ts()?)
        } else {
            None
        };
        let mut cols: [Option<Vec<u32>>; FIELDS] = Default::default();
        for (f, col) in cols.iter_mut().enumerate() {
            if filter.wanted[f].is_some() {
                *col = Some(idx.field(f)?);
            }
        }
        let src = if filter.q.src.is_some() {
            Some(idx.src()?)
        } else {
            None
        };
        let mut file = None;
        for i in (0..end).rev() {
            let u = i as usize;
            let ok = (0..FIELDS).all(|f| cols[f].as_ref().is_none_or(|c| c[u] == ids[f]))
                && ts.as_ref().is_none_or(|t| filter.time(t[u]))
                && src.as_ref().is_none_or(|s| {
                    let mut e = [0u8; 17];
                    e.copy_from_slice(&s[u * 17..u * 17 + 17]);
                    filter.ip(Entry {
                        ts_millis: 0,
                        offset: 0,
                        len: 0,
                        fields: [0; FIELDS],
                        src: e,
                    }
                    .src_ip())
                });
            if !ok {
                continue;
            }
            let (offset, len) = idx.location(i)?;
            if len as usize > format::MAX_FRAME
                || offset.saturating_add(u64::from(len)) > idx.segment_len
            {
                return Err("index location out of range".into());
            }
            let f = match &file {
                Some(f) => f,
                None => match self.open_segment(no) {
                    Ok(f) => file.insert(f),
                    Err(e) => return Ok(Err(e)),
                },
            };
            self.push(f, no, i, offset, len, filter, out);
            if out.full() {
                break;
            }
        }
        Ok(Ok(()))
    }
}

impl StoreReader for SegmentReader {
    fn query(&self, q: &Query) -> Result<Page, StoreError> {
        if q.limit == 0 {
            return Err(StoreError::BadQuery("limit must be at least 1".into()));
        }
        let filter = Filter::new(q);
        // Retention rewrites sealed segments; hold it off while reading.
        let _files = self.shared.files_read();
        let (sealed, active) = {
            let st = self.shared.lock();
            let active = st.active.as_ref().map(|a| {
                let mut ids = Some([0u32; FIELDS]);
                for f in 0..FIELDS {
                    if let Some(w) = filter.wanted[f] {
                        match (a.dicts[f].get(w), ids.as_mut()) {
                            (Some(&id), Some(ids)) => ids[f] = id,
                            _ => ids = None,
                        }
                    }
                }
                (a.no, a.entries, a.chunks.clone(), ids)
            });
            (st.sealed.clone(), active)
        };
        let newest = active
            .as_ref()
            .map(|a| a.0)
            .or(sealed.last().map(|s| s.no))
            .unwrap_or(0);
        let (cur_seg, cur_idx) = match q.cursor {
            Some(c) if c.segment > newest => {
                return Err(StoreError::BadQuery(format!(
                    "cursor {} is past the end of the store",
                    c.encode()
                )))
            }
            Some(c) => (c.segment, c.index),
            None => (u64::MAX, u64::MAX),
        };
        let end_in = |no: u64, entries: u64| {
            if no == cur_seg {
                cur_idx.min(entries)
            } else {
                entries
            }
        };
        let mut out = Collect {
            page: Page::default(),
            limit: q.limit,
        };
        if let Some((no, entries, chunks, ids)) = &active {
            if *no <= cur_seg {
                if let Some(ids) = ids {
                    let entry = |i: u64| {
                        let i = i as usize;
                        chunks[i / CHUNK][i % CHUNK]
                    };
                    self.scan_entries(*no, end_in(*no, *entries), entry, ids, &filter, &mut out)?;
                }
            }
        }
        for s in sealed.iter().rev() {
            if out.full() {
                break;
            }
            if s.no > cur_seg
                || s.index.entries == 0
                || q.since_millis.is_some_and(|t| s.index.max_ts < t)
                || q.until_millis.is_some_and(|t| s.index.min_ts >= t)
            {
                continue;
            }
            self.scan_sealed(s, end_in(s.no, s.index.entries), &filter, &mut out)?;
        }
        Ok(out.page)
    }

    fn for_each_from(&self, from: u64, f: &mut crate::store::LeafFn<'_>) -> Result<(), StoreError> {
        self.leaves_from(from, f)
    }

    fn stats(&self) -> StoreStats {
        let st = self.shared.lock();
        StoreStats {
            events: st.events,
            bytes: st.sealed_bytes + st.active.as_ref().map_or(0, |a| a.len),
            segments: st.sealed.len() as u64 + u64::from(st.active.is_some()),
            quarantined: self.shared.quarantined.load(Ordering::Relaxed),
        }
    }
}
