//! The agent's crash-safe disk queue, and the source of truth for input
//! positions.
//!
//! Every event the agent reads is appended here before anything else may
//! happen to it, together with the position of the input it came from.
//! Outputs read only what is durable, and acknowledge what they have durably
//! delivered; a segment is deleted once every output has acknowledged every
//! record in it.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/
//!   00000000000000000007.seg    segments, numbered; the highest is the active one
//!   00000000000000000008.seg
//!   acks                        consumer acknowledgements (JSON, replaced atomically)
//!   id                          this queue's identity: 16 hex digits, random, written once
//!   quarantine/                 bytes that failed their checksum, one file per range
//!
//! segment file:
//!   header   24 bytes: "ASQ1" | version u16 LE | reserved u16 | segment no u64 LE
//!                      | created unix ms u64 LE
//!            version 1: record bodies in the clear; version 2: bodies sealed (encrypted)
//!   records  repeated until end of file:
//!     len    u32 LE   length of the stored body, 1 ..= max_record_bytes (+ 48 when sealed)
//!     crc    u32 LE   CRC32C (Castagnoli) of the stored body
//!     stored body, version 1: the body itself
//!     stored body, version 2: key_id 8 | nonce 24 | ciphertext of the body | tag 16
//!                             (XChaCha20-Poly1305; associated data:
//!                              "auditship queue record v1" 0x00 | key_id | 0 u64 LE)
//!     body:
//!       kind u8 = 1  event:    id u64 LE | stream_len u16 LE | stream
//!                              | position_len u16 LE | position | payload (rest)
//!       kind u8 = 4  linked event: as kind 1, with hash [32] | prev_hash [32]
//!                              between the position and the payload
//!       kind u8 = 2  snapshot: last_id u64 LE | count u32 LE
//!                              | count x (stream_len u16 | stream | position_len u16 | position)
//!       kind u8 = 3  forget:   last_id u64 LE | stream_len u16 LE | stream
//! ```
//!
//! `stream` and `position` are opaque to the queue: the file input uses the
//! file's identity as the stream and the byte offset after the line (plus a
//! marker) as the position. A sealed event is a linked event record: the
//! payload is its canonical encoding, exactly as it goes on the wire, and
//! its chain link (`hash` and `prev_hash`, see [`crate::seal`]) is 64 binary
//! bytes in the record, where the sealed form's JSON suffix took 154 bytes
//! in the payload; its `seq` is the record id. Readers hand outputs the
//! canonical bytes and the link side by side ([`Batch`]). Agents before
//! this format queued the sealed form in kind 1 records; readers still
//! split such a payload into canonical bytes and link, and recovery reads
//! the chain head from it. An event record with an empty payload only moves
//! its stream's position (for lines a filter dropped); readers skip it.
//!
//! The reserved stream `\0chain` carries the agent's hash-chain head. Event
//! records set it *implicitly* ([`QueueWriter::append_implying`]): no record
//! names it, but the writer's positions map holds it, so every snapshot does.
//! Recovery rebuilds it by folding the records in order, and writes it into
//! the new segment's snapshot; the rules and why they cannot fork the chain
//! are in [`crate::seal`].
//!
//! # Encryption at rest (optional)
//!
//! With `[queue.encryption]` ([`QueueConfig::encryption`]) new segments are
//! version 2: every record body, so payloads and also stream names (file
//! identities, input names) and positions, is sealed by the record cipher
//! of `auditship_crypt`. The segment number is not bound into the
//! associated data (as the store does): records are encoded when they are
//! appended, before the writer knows which segment their bytes land in, and
//! queue segments are never moved or rewritten. Segments in the clear from
//! before encryption was turned on are still read, and deleted once
//! delivered; every start (and reload) opens a new segment under the
//! current key, so after a rotation the previous key is needed only until
//! the segments written under it are delivered.
//!
//! A record under a key that was not given (or an encrypted queue with no
//! key) stops the agent at startup with an error naming the key id it
//! needs and the keys given: unlike corruption, it is not quarantined,
//! since the records are intact and a restart with the right key reads
//! them (this is the one way the queue refuses to start). A record that
//! fails authentication under a key that was given is corrupt and
//! quarantined; its chain hash cannot be read from the ciphertext, so the
//! chain head after it is derived from the bad bytes (see [`crate::seal`]),
//! and the next event visibly breaks the chain rather than continuing it.
//!
//! # Invariants
//!
//! 1. Record ids increase by one with every event, across segments and
//!    restarts.
//! 2. Every segment starts with a snapshot of the latest position of every
//!    stream, so the newest segment alone (snapshot, then its records) knows
//!    every position even after older segments are deleted. The active
//!    segment is never deleted.
//! 3. Readers see a record only after the `fsync` that covers it
//!    (`fsync = "always"`). The agent commits with
//!    [`QueueWriter::commit_async`]: the fsync runs on a syncer thread while
//!    the next pass is read, and the records are published when it returns.
//!    Inputs that answer their senders (HTTP) wait for that publication
//!    through a [`Durability`] handle. Acknowledgements are written to `acks` (write to
//!    a temporary file, `fsync`, rename, `fsync` the directory) before any
//!    segment is deleted (if that write fails on a full disk, delivered
//!    segments are deleted anyway to free space), at least once a second,
//!    and when a reader is dropped. An acknowledgement lost in a crash only means records are
//!    offered again: outputs that keep their own durable watermark (the file
//!    output) skip them, the others deliver them at least once. A stale
//!    acknowledgement never points into a deleted segment, because deletion
//!    persists acknowledgements first.
//! 4. The queue holds at most `max_bytes`. When an append would pass it
//!    (less 64 KiB kept for the header and snapshot a rotation writes), the
//!    append is refused (`Full`) and the caller waits: inputs pause, nothing
//!    is dropped.
//!
//! # Crash recovery (every start is a recovery)
//!
//! * Segments are read oldest first. A segment whose header is unreadable is
//!   moved to `quarantine/` whole.
//! * A record whose checksum or body is bad is *corrupt*: the scanner looks
//!   forward byte by byte for the next valid record, copies the bad range to
//!   `quarantine/`, counts it and logs it, and carries on. The agent always
//!   starts.
//! * A record cut short at the end of the newest segment is a *torn tail*
//!   from a write the crash interrupted; it was never committed, so the file
//!   is truncated to the last whole record. A short tail in an older segment
//!   is quarantined instead.
//! * Positions are rebuilt by applying, in order, every snapshot (which
//!   replaces the map), event (which sets its stream) and forget (which
//!   removes it). The chain head is folded from the same records (and from
//!   quarantined bytes). A new active segment is started, beginning with a
//!   snapshot of the positions and the chain head.
//!
//! # Why this loses nothing and duplicates nothing
//!
//! An input resumes exactly after the position carried by the last durable
//! record of its stream. Consider a crash at any moment:
//!
//! * A line that was read but whose record was not durable is lost from
//!   the queue *together with its position*, so the input's resume position
//!   is before it and the line is read again: no loss.
//! * A line whose record is durable carries a position after it, so the input
//!   resumes after it and does not read it again: no duplicate from the input.
//! * Records are appended in read order per stream, so "the last durable
//!   record" is a prefix of what was read: there is no gap.
//! * An output acknowledges only what it has durably delivered; records after
//!   the acknowledgement are delivered again after a crash. Outputs that can
//!   make delivery idempotent do so (the file output truncates itself back to
//!   its own last durable acknowledgement), so the pipeline is exactly-once
//!   end to end; the stdout output is at-least-once.
//!
//! With `fsync = "interval"` the queue writes each batch to the operating
//! system but fsyncs at most once per interval, and readers see records
//! before they are fsynced. A process crash (including SIGKILL) still loses
//! nothing, because written data survives in the page cache. A power loss or
//! kernel crash can lose up to one interval of records after an output
//! already delivered them: the input then reads those lines again, which
//! duplicates them downstream, or loses them if the file was rotated away
//! meanwhile. Use it only where that risk is acceptable.

mod batch;
mod durability;
mod monitor;
mod reader;
mod record;
mod recover;
mod segment;
mod syncer;
mod writer;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use auditship_crypt::{BodyCipher, Domain, Keyring};
pub use tomlconf::Encryption;

pub use batch::Batch;
pub use durability::Durability;
pub use monitor::{QueueMonitor, QueueStatus};
pub use reader::QueueReader;
pub(crate) use record::last_link_in_damage;

/// A framed linked event record in the clear (for tests elsewhere).
#[cfg(test)]
pub(crate) fn encode_linked_for_test(out: &mut Vec<u8>, id: u64, link: &ChainLink, payload: &[u8]) {
    record::encode_event(
        out,
        &cipher(None, false),
        id,
        b"s",
        b"p",
        Some(link),
        payload,
    )
    .expect("in the clear");
}
pub use record::ChainLink;
pub use recover::check_keys;
pub use writer::QueueWriter;

use crate::seal::{ChainFold, ChainHead, CHAIN_STREAM};

use segment::SegmentMeta;

/// When the queue calls `fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// On every commit, before anything is acknowledged (the default).
    Always,
    /// At most once per interval; see the module docs for the risk.
    Interval(Duration),
}

/// Queue settings.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Directory of the queue.
    pub dir: PathBuf,
    /// Most bytes on disk, all segments together.
    pub max_bytes: u64,
    /// Size at which the active segment is closed and a new one started.
    pub segment_bytes: u64,
    /// Largest record body.
    pub max_record_bytes: usize,
    /// When to fsync.
    pub fsync: Fsync,
    /// Encryption at rest: key files, read when the queue is opened.
    /// `None`: records in the clear.
    pub encryption: Option<Encryption>,
}

impl QueueConfig {
    /// Defaults for `dir`: 1 GiB, 32 MiB segments, 4 MiB records, fsync
    /// always, no encryption.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        QueueConfig {
            dir: dir.into(),
            max_bytes: 1 << 30,
            segment_bytes: 32 << 20,
            max_record_bytes: 4 << 20,
            fsync: Fsync::Always,
            encryption: None,
        }
    }
}

/// Queue failures.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// An I/O operation on the queue directory failed; the path says where.
    #[error("queue I/O on {path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// fsync failed. The kernel may have dropped the written pages, so the
    /// only safe course is to stop; the next start recovers what is durable.
    #[error("fsync of {path} failed: {source}; stopping so recovery can run from durable state")]
    Fsync {
        /// The segment.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The queue is at `max_bytes`; wait for outputs to acknowledge.
    #[error("queue is full ({max_bytes} bytes)")]
    Full {
        /// The configured limit.
        max_bytes: u64,
    },
    /// A record is larger than `max_record_bytes` and can never be stored.
    #[error("record of {size} bytes exceeds the queue's max_record_bytes ({max})")]
    TooLarge {
        /// Body size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// The settings cannot work together.
    #[error("invalid queue settings: {0}")]
    Config(String),
    /// A consumer name that was not declared at open.
    #[error("unknown queue consumer {0:?}")]
    UnknownConsumer(String),
    /// An encryption key file cannot be used, or records are encrypted
    /// under a key that was not given.
    #[error("queue encryption: {0}")]
    Key(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A range of bytes that failed verification at startup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// Segment the bytes came from.
    pub segment: u64,
    /// Offset of the first bad byte.
    pub offset: u64,
    /// How many bytes.
    pub bytes: u64,
    /// Where they were copied.
    pub file: PathBuf,
    /// What was wrong.
    pub reason: String,
}

/// What recovery found when the queue was opened.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// This queue's identity. Record ids are only comparable within one
    /// queue: an output that remembers an id must remember the queue too.
    pub queue_id: u64,
    /// Latest durable position of every stream.
    pub positions: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Event records found intact.
    pub records: u64,
    /// Events not yet acknowledged by every consumer.
    pub pending: u64,
    /// Corrupt ranges moved aside.
    pub quarantined: Vec<Quarantined>,
    /// Bytes removed from a torn tail.
    pub truncated_bytes: u64,
    /// The hash chain's head, if the queue holds one (see [`crate::seal`]).
    pub chain: Option<ChainHead>,
}

/// State shared by the writer and readers.
pub(crate) struct Shared {
    pub config: QueueConfig,
    pub state: Mutex<State>,
    pub changed: Condvar,
    /// Serialises writes of the `acks` file (one temporary file name).
    pub acks_file: Mutex<()>,
    /// Corrupt ranges found at open: (segment, start) -> end. Readers jump
    /// over them exactly instead of searching for the next record.
    pub quarantined: std::collections::HashMap<(u64, u64), u64>,
    /// Encryption keys, if the queue has any.
    pub keys: Option<Arc<Keyring>>,
}

impl Shared {
    /// The cipher of a segment: sealed (under `keys`) or in the clear.
    pub fn cipher(&self, encrypted: bool) -> BodyCipher<'_> {
        cipher(self.keys.as_deref(), encrypted)
    }
}

/// The cipher of a segment whose bodies are sealed when `encrypted`.
pub(crate) fn cipher(keys: Option<&Keyring>, encrypted: bool) -> BodyCipher<'_> {
    match keys {
        Some(k) if encrypted => BodyCipher::sealed(k, Domain::QUEUE_RECORD, 0),
        _ => BodyCipher::plain(),
    }
}

impl Shared {
    /// Waits until `done` holds for the state or `deadline` passes, and
    /// returns the state, locked.
    pub fn wait_until(
        &self,
        deadline: std::time::Instant,
        mut done: impl FnMut(&State) -> bool,
    ) -> std::sync::MutexGuard<'_, State> {
        let mut st = self.state.lock().expect("queue lock");
        loop {
            let now = std::time::Instant::now();
            if done(&st) || now >= deadline {
                return st;
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .expect("queue lock")
                .0;
        }
    }
}

pub(crate) struct State {
    /// Segments in order; the last is active.
    pub segments: VecDeque<SegmentMeta>,
    /// Highest durable (visible) record id.
    pub committed_id: u64,
    /// Acknowledged id per consumer.
    pub acks: BTreeMap<String, u64>,
    /// Bytes of all segments (committed).
    pub total_bytes: u64,
    /// Set when the writer is gone: readers stop waiting.
    pub closed: bool,
    /// Acknowledgements changed since they were last written.
    pub acks_dirty: bool,
    /// When they were last written.
    pub acks_written: std::time::Instant,
    /// When ids became durable, for the age of the oldest unacknowledged
    /// record (see [`monitor`]).
    pub commit_times: VecDeque<(u64, std::time::SystemTime)>,
}

impl State {
    fn min_ack(&self) -> u64 {
        self.acks
            .values()
            .copied()
            .min()
            .unwrap_or(self.committed_id)
    }
}

/// Opens (and recovers) the queue, with one reader per consumer name.
pub fn open(
    config: QueueConfig,
    consumers: &[&str],
) -> Result<(QueueWriter, Vec<QueueReader>, Recovery), QueueError> {
    if config.segment_bytes > config.max_bytes / 2 {
        return Err(QueueError::Config(format!(
            "segment_bytes ({}) must be at most half of max_bytes ({})",
            config.segment_bytes, config.max_bytes
        )));
    }
    if (config.max_record_bytes as u64) * 2 > config.segment_bytes {
        return Err(QueueError::Config(format!(
            "max_record_bytes ({}) must be at most half of segment_bytes ({})",
            config.max_record_bytes, config.segment_bytes
        )));
    }
    let keys = match &config.encryption {
        Some(e) => {
            let k = Keyring::load(&e.key_file, &e.previous_key_files)
                .map_err(|e| QueueError::Key(e.to_string()))?;
            tracing::info!(keys = %k.describe(), "queue: encryption at rest on");
            Some(Arc::new(k))
        }
        None => None,
    };
    let dir = config.dir.clone();
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    if let Err(e) = fs::create_dir_all(dir.join("quarantine")) {
        // Corrupt data will be reported but not copied aside; the agent starts.
        tracing::error!(dir = %dir.join("quarantine").display(), error = %e, "queue: cannot create the quarantine directory");
    }
    let mut recovery = Recovery::default();
    let mut segments = VecDeque::new();
    let mut last_id = 0u64;
    let mut chain = ChainFold::default();
    let numbers = recover::list_segments(&dir)?;
    for (i, &no) in numbers.iter().enumerate() {
        let newest = i + 1 == numbers.len();
        let keys = keys.as_deref();
        let found = recover::recover_segment(
            &config,
            keys,
            no,
            newest,
            (&mut last_id, &mut recovery, &mut chain),
        )?;
        if let Some(meta) = found {
            segments.push_back(meta);
        }
    }
    recovery.queue_id = recover::queue_id(&dir)?;
    // The new segment's snapshot carries the recovered chain head, so the
    // next start finds it even after the segments it came from are deleted.
    recovery.chain = chain.head();
    if let Some(head) = recovery.chain {
        set_position(&mut recovery.positions, CHAIN_STREAM, &head.encode());
    }
    let mut acks = read_acks(&dir);
    // Ids never go backwards while the acknowledgements survive, even if
    // every segment was lost: ids at or below an acknowledgement may already
    // be held by an output.
    if let Some(&max_ack) = acks.values().max() {
        if max_ack > last_id {
            tracing::error!(
                last_id,
                max_ack,
                "queue lost records that were already acknowledged; continuing ids after them"
            );
            last_id = max_ack;
        }
    }
    for c in consumers {
        acks.entry((*c).to_string()).or_insert(0);
    }
    acks.retain(|k, _| consumers.contains(&k.as_str()));
    for v in acks.values_mut() {
        *v = (*v).min(last_id);
    }
    let min_ack = acks.values().copied().min().unwrap_or(last_id);
    recovery.pending = last_id - min_ack.min(last_id);
    for q in &recovery.quarantined {
        tracing::error!(
            segment = q.segment,
            offset = q.offset,
            bytes = q.bytes,
            file = %q.file.display(),
            reason = %q.reason,
            "queue: corrupt data quarantined; the rest of the queue is intact"
        );
    }
    let total_bytes = segments.iter().map(|s| s.bytes).sum();
    let quarantined = recovery
        .quarantined
        .iter()
        .map(|q| ((q.segment, q.offset), q.offset + q.bytes))
        .collect();
    let shared = Arc::new(Shared {
        acks_file: Mutex::new(()),
        quarantined,
        keys,
        config,
        state: Mutex::new(State {
            segments,
            committed_id: last_id,
            acks,
            total_bytes,
            closed: false,
            acks_dirty: false,
            acks_written: std::time::Instant::now(),
            // Records recovered from before this start count from now.
            commit_times: VecDeque::from([(last_id, std::time::SystemTime::now())]),
        }),
        changed: Condvar::new(),
    });
    write_acks(&shared)?;
    let next_no = numbers.last().map_or(1, |n| n + 1);
    let writer = QueueWriter::start(
        shared.clone(),
        next_no,
        last_id + 1,
        recovery.positions.clone(),
    )?;
    let readers = consumers
        .iter()
        .map(|c| QueueReader::new(shared.clone(), c))
        .collect::<Result<_, _>>()?;
    Ok((writer, readers, recovery))
}

pub(crate) fn set_position(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, stream: &[u8], position: &[u8]) {
    match map.get_mut(stream) {
        Some(p) => {
            p.clear();
            p.extend_from_slice(position);
        }
        None => {
            map.insert(stream.to_vec(), position.to_vec());
        }
    }
}

fn read_acks(dir: &Path) -> BTreeMap<String, u64> {
    let path = dir.join("acks");
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::error!(path = %path.display(), error = %e,
                "queue: acks file unreadable; every queued record will be delivered again");
            BTreeMap::new()
        }),
        Err(_) => BTreeMap::new(),
    }
}

/// Persists the acknowledgements atomically.
pub(crate) fn write_acks(shared: &Shared) -> Result<(), QueueError> {
    // Regression: concurrent writers raced on the one temporary file name.
    let _one_at_a_time = shared.acks_file.lock().expect("acks file lock");
    let dir = &shared.config.dir;
    let acks = {
        let mut st = shared.state.lock().expect("queue lock");
        st.acks_dirty = false;
        st.acks_written = std::time::Instant::now();
        st.acks.clone()
    };
    let tmp = dir.join("acks.tmp");
    let body = serde_json::to_vec(&acks).expect("acks serialize");
    File::create(&tmp)
        .and_then(|mut f| f.write_all(&body).and_then(|_| f.sync_data()))
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, dir.join("acks")).map_err(io_err(dir))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Deletes closed segments every consumer has acknowledged; returns bytes freed.
pub(crate) fn delete_acked(shared: &Shared) -> Result<u64, QueueError> {
    let mut doomed = Vec::new();
    {
        let mut st = shared.state.lock().expect("queue lock");
        let min_ack = st.min_ack();
        while st.segments.len() > 1 && st.segments.front().is_some_and(|s| s.last_id <= min_ack) {
            let s = st.segments.pop_front().expect("checked non-empty");
            st.total_bytes -= s.bytes;
            doomed.push(s);
        }
    }
    if !doomed.is_empty() {
        // Acknowledgements first, when possible. If they cannot be written
        // (a full disk: exactly when space must be freed) the segments go
        // anyway: after a crash a stale acknowledgement only makes a reader
        // start at the first segment that remains, and what was deleted had
        // been delivered. Regression: refusing to delete without a written
        // acks file kept a full disk full forever.
        if let Err(e) = write_acks(shared) {
            tracing::warn!(error = %e, "queue: acknowledgements not persisted; deleting delivered segments anyway to free space");
        }
    }
    let mut freed = 0;
    for s in &doomed {
        let p = segment::path(&shared.config.dir, s.no);
        fs::remove_file(&p).map_err(io_err(&p))?;
        freed += s.bytes;
    }
    if !doomed.is_empty() {
        shared.changed.notify_all();
    }
    Ok(freed)
}

#[cfg(test)]
mod regressions;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_encryption;
