//! Store version 1: append-only segment files with checksummed records and a
//! per-segment index.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/
//!   segments/
//!     00000000000000000001.seg   segments, numbered; the highest is the active one
//!     00000000000000000001.idx   index of a sealed segment (a cache: never fsynced)
//!     00000000000000000002.seg
//!   quarantine/                  bytes that failed their checksum, one file per range
//!   LOCK                         flock'd while a writer (a collector, `auditship store rekey`) has the store open
//!
//! segment file:
//!   header   24 bytes: "ASG1" | version u16 LE | reserved u16 | segment no u64 LE
//!                      | created unix ms i64 LE
//!            version 2: record bodies in the clear; version 3: bodies sealed (encrypted);
//!            versions 4 and 5: as 2 and 3, and event records may be linked (kind 4).
//!            New segments are version 4 or 5; an active segment of version 2 or 3
//!            (an earlier build's) is not appended to: appends start a new segment.
//!   records  repeated until end of file:
//!     len    u32 LE   length of the stored body, 1 ..= 16 MiB (+ 48 when sealed)
//!     crc    u32 LE   CRC32C (Castagnoli) of the stored body
//!     stored body, version 2: the body itself
//!     stored body, version 3: key_id 8 | nonce 24 | ciphertext of the body | tag 16
//!                             (XChaCha20-Poly1305; associated data:
//!                              "auditship store record v1" 0x00 | key_id | segment no u64 LE)
//!     body:
//!       kind u8 = 2  snapshot: count u32 LE
//!                             | count x (agent_len u16 LE | agent | queue u64 LE | seq u64 LE
//!                                        | head [32])
//!                             | next_leaf u64 LE
//!       kind u8 = 1  event:    queue u64 LE | seq u64 LE | ts_millis i64 LE | leaf u64 LE
//!                             | agent_len u16 LE | agent | payload (rest)
//!       kind u8 = 4  linked event: queue u64 LE | seq u64 LE | ts_millis i64 LE | leaf u64 LE
//!                             | agent_len u16 LE | agent | hash [32] | prev_hash [32]
//!                             | canonical (rest: the event's canonical bytes)
//!                    read as the kind 1 record whose payload is the sealed form of
//!                    `canonical` with these hashes (rebuilt byte for byte: a payload is
//!                    stored linked only if writing it back gives the same bytes)
//!       kind u8 = 3  expired:  queue u64 LE | seq u64 LE | ts_millis i64 LE | leaf u64 LE
//!                             | tombstone u64 LE (leaf index of the covering tombstone)
//!                             | hash [32] | prev_hash [32] (the removed payload's chain hashes)
//!                             | agent_len u16 LE | agent
//!
//! index file (<no>.idx), all little-endian:
//!   header   "ASX1" | version u16 | sections u16 (9) | segment no u64
//!            | segment_len u64 (the segment's length when indexed) | entries u64
//!            | min_ts i64 | max_ts i64
//!            | 9 x (offset u64 | len u64 | crc32c u32 | reserved u32)
//!            | header crc32c u32 (of everything before it) | reserved u32
//!            version 1: sections in the clear (segment version 2);
//!            version 2: each section sealed like a record body (segment version 3):
//!              key_id 8 | nonce 24 | ciphertext | tag 16, the CRC over all of it;
//!              associated data: "auditship store index v1" 0x00 | key_id | segment no u64
//!              | segment_len u64 | entries u64 | min_ts i64 | max_ts i64 | section u8
//!   section 0  dictionaries, for host, actor, action, category, outcome in turn:
//!              count u32 | count x (len u16 | value | entries u32)   ids are 1..=count
//!   section 1  ts_millis      i64 x entries
//!   section 2  location       (offset u32 | frame length u32) x entries
//!   3 ..= 7    field ids      u32 x entries per field, 0 = absent
//!   section 8  src_ip         (kind u8: 0 none, 4, 6 | 16 address bytes) x entries
//! ```
//!
//! Entry `i` of a segment is its `i`-th event record (kind 1); expired
//! records (kind 3) are not indexed and never returned by queries. A [`Cursor`] is
//! `(segment, entry)`. The payload is the event's sealed JSON line (its
//! canonical bytes with `hash` and `prev_hash`), which a linked record
//! (kind 4) keeps as the canonical bytes and the two hashes in binary: 89
//! bytes less per event, about a tenth of a stored web event, and less for
//! the collector's fsyncs to write. Readers see the same sealed line from
//! either kind. Agent ids are written in full in every event record
//! rather than interned: they are short, and a corrupt record then costs
//! exactly that record, never the identity of others.
//!
//! # Encryption at rest
//!
//! With keys ([`SegmentConfig::keys`], from `[store.encryption]`), new
//! segments are version 3 and their indexes version 2: every record body
//! (events and snapshots: payload, agent id, seq, leaf, watermarks) and
//! every index section (dictionaries of hosts, actors and actions, times,
//! locations, source addresses) is sealed by the record cipher of
//! `auditship_crypt` ([`cipher`]). Each sealed record names its key, so
//! records under previous keys stay readable after a rotation
//! (`previous_key_files`) until `auditship store rekey` re-encrypts them.
//! What stays in the clear: file names and sizes, segment numbers and
//! creation times, record lengths and CRCs (so recovery and
//! resynchronisation work without the key), and each index header's entry
//! count and time range.
//!
//! * Turning encryption on for an existing store: appends go to a new
//!   (encrypted) segment at once; older segments stay as they are, readable,
//!   until `rekey` encrypts them. Turning it off needs the keys as long as
//!   encrypted segments exist.
//! * A record under a key that was not given is not corruption: open fails
//!   with [`StoreError::Key`] naming the segment, the key id it needs and the
//!   keys given, and nothing is cut or quarantined. Open reads the newest
//!   segment and checks the key of every sealed index, so a missing key is
//!   found at startup. A record that fails authentication under a key that
//!   was given was altered (its CRC may have been fixed up) and is
//!   quarantined like any corrupt record. (A key id altered together with
//!   its CRC reads as a missing key too: that takes deliberate tampering,
//!   which `verify` reports, while treating an unknown key as damage would
//!   quarantine, or cut from the newest segment, every record whose key an
//!   operator merely forgot to list.)
//! * An index in the clear for an encrypted segment, or under a key not
//!   given, is unusable and rebuilt (the segment is the truth).
//!
//! # Invariants
//!
//! 1. Every segment starts with a snapshot of every agent's watermark as it
//!    stood before the segment's first event, so recovery needs the newest
//!    segment only: its snapshot, then its events in order. (Only if that
//!    snapshot is damaged does recovery read older segments for one.)
//! 2. [`StoreWriter::commit`] writes the buffered records of each file it
//!    touches with one positioned write, then `fdatasync`s the file, then
//!    fsyncs the `segments/` directory when it created a file. Only then are
//!    the watermarks advanced and the new length published to readers.
//! 3. Readers read segment bytes below the published (committed) length only,
//!    and index entries of committed records only: a query never sees an
//!    appended but uncommitted event, nor one a failed commit rolled back.
//! 4. A segment is sealed (and its `.idx` written) when the commit that
//!    moves past it succeeds. Rotation happens at the first event appended
//!    once the segment holds `segment_bytes`, so segments end just past it.
//!
//! # Failed commits
//!
//! * A failed **write** (ENOSPC included, which is [`StoreError::Full`])
//!   truncates every file this commit touched back to its committed length
//!   (files it created are removed), fsyncs them, discards the buffer and
//!   the pending watermarks, and returns the error. The store stays usable:
//!   the next commit starts from the committed state and succeeds once the
//!   disk has room.
//! * A failed **fsync** poisons the writer: every later `append` and
//!   `commit` returns [`StoreError::Poisoned`]. On Linux a failed fsync may
//!   already have dropped the dirty pages and marked them clean, so a retry
//!   can "succeed" without the data ever reaching the disk, and what the
//!   page cache shows no longer says what is durable. The only sound course
//!   is to stop writing and let the next open recover from the disk (torn
//!   tails are cut, checksums catch the rest). Readers keep serving what was
//!   committed before. A failed rollback (truncate or its fsync) poisons the
//!   writer for the same reason.
//!
//! # Recovery (every open is a recovery)
//!
//! * The newest segment is read whole. A record cut short, or bad bytes with
//!   no valid record after them, at its end is a *torn tail* from a commit
//!   the crash interrupted: it was never acknowledged, so the file is
//!   truncated to the last whole record. A newest segment too short for its
//!   header, or holding nothing but its header, is removed.
//! * A corrupt record (bad length, checksum or body) anywhere else is
//!   quarantined: its bytes are copied to `quarantine/` (best effort: the
//!   store opens even when the copy fails), it is counted and logged, and the
//!   scan resumes at the next offset where a valid record starts. A segment
//!   whose header is bad is moved to `quarantine/` whole.
//! * Watermarks are rebuilt from the newest segment's snapshot and its event
//!   records: per agent, the highest `seq` of its latest queue; an event of
//!   a new queue replaces the agent's watermark.
//! * Sealed segments are not read at open: their `.idx` header is checked
//!   against the segment's length. Where it is missing, short or damaged, the
//!   segment is scanned (with quarantine) and the index rebuilt. Corruption
//!   inside a sealed segment with a good index is found when a query reads
//!   the record: the record's checksum fails, the event is skipped, counted
//!   in [`StoreStats::quarantined`] and logged.
//! * The newest segment stays the active one and new events are appended
//!   to it.
//!
//! # Why the index needs no fsync
//!
//! The segments are the truth; an index is derived from them and records
//! the segment length it describes. Its header and every section carry a
//! CRC32C. An index that is missing (lost in a crash before the kernel wrote
//! it back), short, of another length of the segment, or failing a checksum
//! is rebuilt from the segment: at open for the header, at query time for a
//! section. Rebuilding takes the indexed fields from the payload again
//! (they are what ingest extracted from it) and costs one read of the
//! segment.
//!
//! # Index: purpose-built per segment, chosen over `redb` by measurement
//!
//! Measured with `collector/benches/store.rs` on this 2-core machine (1M
//! events: realistic auth-log payloads, 50 hosts, 1,000 actors; 6 segments
//! of 64 MiB, 384 MB; redb given one table of `(field, value, event no)`
//! keys, one of `(ts, event no)` and one of locations, 514 MB):
//!
//! ```text
//!                                     segments index      redb 4.5
//! index ingest, per event             ~260-470 ns         ~16,600-19,300 ns   (not fsynced in either)
//! query, 100 newest, actor 1 of 1000  ~455-600 us         ~116 us
//! query, 100 newest, host 1 of 50     ~118 us             ~110 us
//! query, 100 newest, 1 hour range     ~725-760 us         ~103 us
//! store append alone (incl. index)    ~365 ns/event; append + commit of 1,000-event groups ~2.4 us
//!                                     (the fsync of each group dominates; bigger groups amortise it)
//! ```
//!
//! `redb` answers selective and time-range queries 4-7x faster (a B-tree
//! seek against our scan of one or two index columns of ~180k entries), but
//! costs ~60x more per ingested event: ~17 us of B-tree inserts for the
//! seven keys of one event, which alone would cap ingest near 60k events/s
//! on one core, against the 300k events/s the collector must take with
//! JSON parsing on the same two cores. The purpose-built index costs a
//! dictionary lookup per field and a fixed-width entry in memory at append,
//! and one sequential file write per sealed segment; its queries stay under
//! a millisecond, which is ample for an audit search API. It is also
//! simpler to keep consistent: derived per segment, checksummed, never
//! fsynced, rebuilt from the segment. So the segments index wins.
//!
//! Known headroom (not needed yet): per-block min/max of `ts` (skip blocks,
//! not only segments, on time ranges) and per-value posting lists would
//! bring the selective cases near redb's figures at little ingest cost.
//!
//! Reproduce: `CARGO_TARGET_DIR=target cargo bench -p auditship-collector --bench store`
//! (`STORE_BENCH_EVENTS=...` for another size).
//!
//! [`StoreWriter::commit`]: crate::store::StoreWriter::commit
//! [`StoreError::Key`]: crate::store::StoreError::Key
//! [`Cursor`]: crate::store::Cursor
//! [`StoreStats::quarantined`]: crate::store::StoreStats::quarantined

pub mod cipher;
pub mod format;
pub mod index;
mod leaves;
mod query;
mod recover;
pub mod rekey;
pub mod rewrite;
pub mod walk;
mod writer;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

pub use query::SegmentReader;
pub use writer::SegmentWriter;

use auditship_crypt::Keyring;

use crate::store::StoreError;
use index::{Entry, FxMap, IndexMeta, FIELDS};

/// Store settings.
#[derive(Clone, Debug)]
pub struct SegmentConfig {
    /// Directory of the store.
    pub dir: PathBuf,
    /// Size at which the active segment is sealed and a new one started
    /// (4 KiB ..= 1 GiB).
    pub segment_bytes: u64,
    /// Encryption at rest: new segments are sealed under the current key;
    /// records under previous keys stay readable. `None`: in the clear.
    pub keys: Option<Arc<Keyring>>,
}

impl SegmentConfig {
    /// Defaults for `dir`: 64 MiB segments, no encryption.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SegmentConfig {
            dir: dir.into(),
            segment_bytes: 64 << 20,
            keys: None,
        }
    }
}

/// A range of bytes that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// Segment the bytes came from.
    pub segment: u64,
    /// Offset of the first bad byte.
    pub offset: u64,
    /// How many bytes.
    pub bytes: u64,
    /// Where they were copied (`None` when the copy failed).
    pub file: Option<PathBuf>,
    /// What was wrong.
    pub reason: String,
}

/// What [`open`] found.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// Committed events in the store.
    pub events: u64,
    /// Segment files.
    pub segments: u64,
    /// Corrupt ranges set aside.
    pub quarantined: Vec<Quarantined>,
    /// Bytes cut from a torn tail.
    pub truncated_bytes: u64,
    /// Sealed segments whose index had to be rebuilt.
    pub indexes_rebuilt: u64,
}

/// A sealed segment as readers know it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sealed {
    pub no: u64,
    pub len: u64,
    pub index: IndexMeta,
    /// Its bodies are sealed (format version 3).
    pub encrypted: bool,
}

/// Entries per chunk of the active segment's in-memory index.
pub(crate) const CHUNK: usize = 8192;

/// The committed part of the active segment.
#[derive(Clone, Debug, Default)]
pub(crate) struct Active {
    pub no: u64,
    /// Its bodies are sealed (format version 3).
    pub encrypted: bool,
    /// Committed length of the file.
    pub len: u64,
    /// Committed entries, in chunks of [`CHUNK`] (the last may be partial).
    pub chunks: Vec<Arc<Vec<Entry>>>,
    pub entries: u64,
    /// Dictionary value -> id, per field.
    pub dicts: [FxMap<Box<str>, u32>; FIELDS],
}

impl Active {
    /// Adds committed entries.
    pub fn extend(&mut self, entries: &[Entry]) {
        let mut rest = entries;
        while !rest.is_empty() {
            if self.chunks.last().is_none_or(|c| c.len() >= CHUNK) {
                self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
            }
            if let Some(last) = self.chunks.last_mut() {
                // Copies the chunk only if a query holds it right now.
                let c = Arc::make_mut(last);
                let n = (CHUNK - c.len()).min(rest.len());
                c.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
        }
        self.entries += entries.len() as u64;
    }
}

/// The committed state, shared by the writer and readers.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Sealed segments, oldest first (replaced, not mutated, on rotation).
    pub sealed: Arc<Vec<Sealed>>,
    /// The active segment, once there is one.
    pub active: Option<Active>,
    /// Committed events.
    pub events: u64,
    /// Bytes of sealed segments and their indexes.
    pub sealed_bytes: u64,
}

/// What the writer and readers share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `<dir>/segments`.
    pub dir: PathBuf,
    /// `<dir>/quarantine`.
    pub qdir: PathBuf,
    pub state: Mutex<State>,
    /// Records found corrupt, at open and since.
    pub quarantined: AtomicU64,
    /// Serialises index rebuilds by queries.
    pub rebuild: Mutex<()>,
    /// Readers of sealed segment files (queries, leaf walks) hold it shared;
    /// a retention rewrite swaps a segment and its index holding it
    /// exclusively, so no reader mixes an old index with a new segment.
    pub files: RwLock<()>,
    /// Encryption keys, if the store has any.
    pub keys: Option<Arc<Keyring>>,
}

impl Shared {
    /// Shared hold on the sealed segment files (see [`Shared::files`]).
    pub fn files_read(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.files.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state behind (every
        // update is a few assignments), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens (and recovers) the store in `config.dir`.
pub fn open(
    config: SegmentConfig,
) -> Result<(SegmentWriter, Arc<SegmentReader>, Recovery), StoreError> {
    if !(4096..=1 << 30).contains(&config.segment_bytes) {
        return Err(StoreError::io(
            &config.dir,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "segment_bytes must be 4 KiB to 1 GiB, not {}",
                    config.segment_bytes
                ),
            ),
        ));
    }
    let dir = config.dir.join("segments");
    let qdir = config.dir.join("quarantine");
    let keys = config.keys.as_deref();
    if !dir.is_dir() {
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        recover::sync_dir(&config.dir).map_err(|e| StoreError::io(&config.dir, e))?;
    }
    let lock = recover::lock_store(&config.dir)?;
    let mut recovery = Recovery::default();
    let mut numbers = recover::list_segments(&dir)?;
    let mut newest = None;
    while let Some(&no) = numbers.last() {
        match recover::scan_segment(&dir, &qdir, no, true, &mut recovery, keys)? {
            Some(s) if s.len > format::HEADER_LEN as u64 => {
                newest = Some((no, s));
                break;
            }
            Some(s) => {
                // Header only: a creation whose first records never became
                // durable. It holds nothing; the previous segment is newest.
                recovery.truncated_bytes += s.len;
                let path = recover::segment_path(&dir, no);
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                numbers.pop();
            }
            None => {
                numbers.pop();
            }
        }
    }
    if recovery.truncated_bytes > 0 || !recovery.quarantined.is_empty() {
        recover::sync_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
    }
    let mut marks = std::collections::HashMap::new();
    let mut next_leaf = 0u64;
    if let Some((no, s)) = &newest {
        let mut replay = vec![&s.marks];
        let mut older = Vec::new();
        if s.snapshot.is_none() {
            // The snapshot is damaged: find an older one.
            for &o in numbers.iter().rev().skip(1) {
                if let Some(os) = recover::scan_segment(&dir, &qdir, o, false, &mut recovery, keys)?
                {
                    let found = os.snapshot.is_some();
                    older.push(os);
                    if found {
                        break;
                    }
                }
            }
            tracing::warn!(
                segment = no,
                "store: newest snapshot damaged; watermarks rebuilt from older segments"
            );
        }
        if let Some((base, leaf)) = older
            .last()
            .and_then(|o| o.snapshot.clone())
            .or(s.snapshot.clone())
        {
            marks = base;
            next_leaf = leaf;
        }
        for o in older.iter().rev() {
            replay.insert(replay.len() - 1, &o.marks);
            if let Some(l) = o.last_leaf {
                next_leaf = next_leaf.max(l + 1);
            }
        }
        if let Some(l) = s.last_leaf {
            next_leaf = next_leaf.max(l + 1);
        }
        for (agent, queue, seq, head) in replay.into_iter().flatten() {
            recover::advance(&mut marks, agent, *queue, *seq, *head);
        }
    }
    let mut state = State::default();
    let mut sealed = Vec::new();
    for &no in numbers
        .iter()
        .filter(|&&n| Some(n) != newest.as_ref().map(|x| x.0))
    {
        let found = recover::sealed_index(&dir, &qdir, no, &mut recovery, config.keys.as_ref())?;
        if let Some((len, index, encrypted)) = found {
            state.events += index.entries;
            state.sealed_bytes += len + index.bytes;
            sealed.push(Sealed {
                no,
                len,
                index,
                encrypted,
            });
        }
    }
    state.sealed = Arc::new(sealed);
    let mut builder = index::Builder::default();
    let mut next_no = numbers.last().map_or(1, |n| n + 1);
    if let Some((no, s)) = newest {
        let _ = fs::remove_file(recover::index_path(&dir, no));
        let mut active = Active {
            no,
            encrypted: s.encrypted,
            len: s.len,
            ..Active::default()
        };
        active.extend(&s.entries);
        for (f, d) in s.index.dicts.iter().enumerate() {
            for (i, v) in d.values().iter().enumerate() {
                active.dicts[f].insert(v.clone(), i as u32 + 1);
            }
        }
        state.events += active.entries;
        state.active = Some(active);
        builder = s.index;
        next_no = no + 1;
    }
    recovery.events = state.events;
    recovery.segments = state.sealed.len() as u64 + u64::from(state.active.is_some());
    let shared = Arc::new(Shared {
        dir,
        qdir,
        quarantined: AtomicU64::new(recovery.quarantined.len() as u64),
        state: Mutex::new(state),
        rebuild: Mutex::new(()),
        files: RwLock::new(()),
        keys: config.keys.clone(),
    });
    let writer = SegmentWriter::new(
        shared.clone(),
        config,
        marks,
        builder,
        (next_no, next_leaf),
        lock,
    )?;
    Ok((writer, Arc::new(SegmentReader::new(shared)), recovery))
}

#[cfg(test)]
mod tests;
