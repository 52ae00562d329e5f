//! The collector's store: where accepted events live, behind two traits.
//!
//! Ingest talks to a [`StoreWriter`] (one, owned by the ingest commit loop)
//! and queries to a [`StoreReader`] (shared, many at once). Nothing above
//! these traits knows how events are laid out, so a later backend (object
//! storage, a replicated stream) replaces the implementation without
//! touching ingest or the query API.
//!
//! The contract every backend keeps:
//!
//! 1. [`StoreWriter::append`] buffers; nothing is durable or visible to
//!    readers until [`StoreWriter::commit`] returns `Ok`. The collector
//!    answers an agent only after that.
//! 2. A failed commit leaves the store exactly as it was after the last
//!    successful commit (appends since then are discarded), and the store
//!    stays usable: the next commit may succeed once the disk has room.
//!    A full disk is [`StoreError::Full`], so the server can answer 503.
//! 3. Watermarks (per agent: queue identity and highest stored `seq`) are
//!    durable together with the events they describe, and are recovered on
//!    open, so deduplication survives a crash at any moment.
//! 4. Readers see only committed events, newest (last committed) first.
//!
//! Version 1 is [`segments`]: append-only segment files with checksummed
//! records and a per-segment index.

pub mod segments;

use std::collections::HashMap;
use std::net::IpAddr;

use auditship_core::cidr::IpNet;
use auditship_core::Hash;

/// Where an agent's stored events end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermark {
    /// The agent's queue identity (its `seq` epoch).
    pub queue: u64,
    /// Highest `seq` stored for that queue (always an event's: a batch's
    /// last seq is its last event's).
    pub seq: u64,
    /// Chain hash of that event: the head of the agent's chain as stored.
    pub head: Hash,
}

/// The indexed fields of an event, extracted by ingest.
#[derive(Clone, Copy, Debug)]
pub struct IndexKey<'a> {
    /// Event time, Unix milliseconds (0 when unknown).
    pub ts_millis: i64,
    /// `host`.
    pub host: Option<&'a str>,
    /// `actor.user`.
    pub actor: Option<&'a str>,
    /// `action`.
    pub action: &'a str,
    /// `category`.
    pub category: &'a str,
    /// `outcome`.
    pub outcome: &'a str,
    /// `src_ip`.
    pub src_ip: Option<IpAddr>,
}

/// One event to append.
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    /// The event's `seq` in its agent's queue.
    pub seq: u64,
    /// The event in sealed form (canonical JSON with its chain fields
    /// appended, see `auditship_core::seal`; no newline).
    pub payload: &'a [u8],
    /// Its chain hash (the `hash` in the payload).
    pub hash: Hash,
    /// Its `prev_hash`. The payload is [`auditship_core::seal::write_sealed`]
    /// of its canonical bytes with `hash` and `prev` (the store keeps such a
    /// payload as the canonical bytes and the two hashes in binary).
    pub prev: Hash,
    /// Its indexed fields.
    pub key: IndexKey<'a>,
}

/// A stored event, as a query returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Sending agent.
    pub agent_id: String,
    /// The agent's queue identity.
    pub queue: u64,
    /// `seq` in that queue.
    pub seq: u64,
    /// Event time, Unix milliseconds.
    pub ts_millis: i64,
    /// Its leaf index in the Merkle log.
    pub leaf: u64,
    /// The event in sealed form.
    pub payload: Vec<u8>,
}

/// Filters of a query. Every filter that is set must match.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Events at or after this time (Unix ms).
    pub since_millis: Option<i64>,
    /// Events before this time (Unix ms, exclusive).
    pub until_millis: Option<i64>,
    /// `host` equals.
    pub host: Option<String>,
    /// `actor.user` equals.
    pub actor: Option<String>,
    /// `action` equals.
    pub action: Option<String>,
    /// `category` equals.
    pub category: Option<String>,
    /// `outcome` equals.
    pub outcome: Option<String>,
    /// `src_ip` lies in this block.
    pub src: Option<IpNet>,
    /// The raw line contains this text (case-sensitive).
    pub text: Option<String>,
    /// At most this many events (at least 1).
    pub limit: usize,
    /// Continue after a previous page.
    pub cursor: Option<Cursor>,
}

/// Where a page ended; the next page starts just before it. Opaque to
/// clients: it travels as the string from [`Cursor::encode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Segment number.
    pub segment: u64,
    /// Record index within the segment.
    pub index: u64,
}

impl Cursor {
    /// The cursor as a URL-safe string.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.segment, self.index)
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(s: &str) -> Option<Cursor> {
        let (a, b) = s.split_once('.')?;
        Some(Cursor {
            segment: a.parse().ok()?,
            index: b.parse().ok()?,
        })
    }
}

/// One page of results.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// Matching events, newest first.
    pub events: Vec<StoredEvent>,
    /// Set when more events may match: pass it back for the next page.
    pub next: Option<Cursor>,
}

/// Size of the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Committed events.
    pub events: u64,
    /// Bytes on disk (segments and indexes).
    pub bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Corrupt records set aside: found at open, or later when a query read
    /// them (each counted once per process).
    pub quarantined: u64,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No space left (ENOSPC or EDQUOT): retry later; nothing was stored.
    #[error("store is full: {path}: {source}")]
    Full {
        /// File being written.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Any other I/O failure.
    #[error("store I/O error: {path}: {source}")]
    Io {
        /// File involved.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store cannot be written any more (an fsync failed and the state
    /// on disk is unknown); restart the collector to recover.
    #[error("store is unusable until restart: {0}")]
    Poisoned(String),
    /// A query is malformed (bad cursor).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// Records are encrypted under a key that was not given (or the store
    /// is encrypted and no key was given): not corruption; nothing is
    /// quarantined or cut.
    #[error("{path} is encrypted under key id {needed}, but {given}")]
    Key {
        /// The segment (or index) file.
        path: std::path::PathBuf,
        /// The id of the key it needs.
        needed: String,
        /// The keys given (ids and files), and what to do.
        given: String,
    },
}

impl StoreError {
    /// Wraps an I/O error, telling a full disk apart.
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> StoreError {
        let path = path.into();
        // ENOSPC = 28, EDQUOT = 122 on Linux.
        if source.kind() == std::io::ErrorKind::StorageFull
            || matches!(source.raw_os_error(), Some(28) | Some(122))
        {
            StoreError::Full { path, source }
        } else {
            StoreError::Io { path, source }
        }
    }
}

/// The write side, owned by the ingest commit loop.
pub trait StoreWriter: Send {
    /// Durable watermark of every agent the store holds events of.
    fn watermarks(&self) -> &HashMap<String, Watermark>;
    /// Committed events: the leaf index the next appended event gets.
    /// Events are numbered from 0 in append order, across commits, and the
    /// number is stored with each event.
    fn size(&self) -> u64;
    /// Buffers events of one agent and queue, in `seq` order, all above the
    /// agent's watermark for that queue (ingest has deduplicated them). A
    /// different queue than the watermark's starts a new epoch for the agent.
    fn append(
        &mut self,
        agent_id: &str,
        queue: u64,
        events: &[NewEvent<'_>],
    ) -> Result<(), StoreError>;
    /// Makes every buffered event durable and visible, and advances the
    /// watermarks. On failure nothing buffered is stored (see the contract).
    fn commit(&mut self) -> Result<(), StoreError>;
}

/// What the store holds at a leaf index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf<'a> {
    /// An event, in sealed form.
    Event(&'a [u8]),
    /// An event whose payload retention removed: its chain hash is kept.
    Expired(Hash),
}

impl Leaf<'_> {
    /// The Merkle leaf hash (the same before and after expiry).
    pub fn leaf_hash(&self) -> Hash {
        match self {
            Leaf::Event(p) => auditship_core::seal::leaf_of_sealed(p),
            Leaf::Expired(h) => auditship_core::seal::leaf_of_hash(h),
        }
    }

    /// The payload, unless it expired.
    pub fn payload(&self) -> Option<&[u8]> {
        match self {
            Leaf::Event(p) => Some(p),
            Leaf::Expired(_) => None,
        }
    }
}

/// A callback over `(leaf index, what is stored there)`; an error stops the
/// walk.
pub type LeafFn<'a> = dyn FnMut(u64, Leaf<'_>) -> Result<(), StoreError> + 'a;

/// The read side; cheap to share between threads.
pub trait StoreReader: Send + Sync {
    /// Calls `f(leaf, stored)` for every committed event from leaf index
    /// `from` on, in leaf order (used to rebuild a Merkle log that lost its
    /// tail). Stops at the first error `f` returns.
    fn for_each_from(&self, from: u64, f: &mut LeafFn<'_>) -> Result<(), StoreError>;
    /// One page of matching events, newest first.
    fn query(&self, query: &Query) -> Result<Page, StoreError>;
    /// Current size.
    fn stats(&self) -> StoreStats;
}
