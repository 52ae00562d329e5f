//! Retention: payloads of events past their policy's age are removed, their
//! leaf hashes stay, a signed tombstone records each removal, sealed
//! segments can be archived first, and legal holds keep what they match.
//!
//! # What expiry removes and keeps
//!
//! Expiry is per event, decided by the [policy](policy) that governs it
//! (category and/or source; the longest covering policy wins) and its age.
//! An expired event's record in its segment is replaced by an *expired
//! record* (format: `crate::store::segments`) that keeps agent, queue,
//! seq, time, leaf index and the event's `hash` and `prev_hash`, and names
//! the leaf of its tombstone. The Merkle leaf is `SHA-256(0x00 ‖ hash)`,
//! so it is unchanged: every checkpoint signed before stays valid, every
//! inclusion proof of a surviving event still verifies against it, and
//! consistency proofs are unaffected. Per-agent chain links still check
//! (`prev_hash` of the next event = the kept `hash`). What is gone is the
//! payload: the event's fields and its raw line. Queries no longer return
//! expired events.
//!
//! Only sealed segments are touched, never the active one. The collector's
//! own chain (integrity findings, access records, alerts, tombstones) is
//! kept forever unless a policy names its category explicitly, and its
//! integrity events never expire (see [`policy`]).
//!
//! # Order of a step (one segment), and crashes
//!
//! ```text
//! 1. plan: read the sealed segment, decide per event (policy, age, holds)
//! 2. archive (when configured): upload the segment file as it is, read it
//!    back and compare length and SHA-256, then the manifest (see archive)
//! 3. write the step down: <data_dir>/retention/pending-<segment>.json
//!    (the leaves and the tombstone statement), fsynced
//! 4. append the tombstone (IngestHandle::record: durable, Merkle-covered)
//! 5. rewrite the segment (crash-safe, see store::segments::rewrite),
//!    every expired record naming the tombstone's leaf
//! 6. remove the pending file
//! ```
//!
//! The tombstone is durable before any payload is removed, so a crash
//! never leaves payloads removed without one. A crash after step 3 is
//! finished by the next run, before it plans anything: it looks up the
//! tombstone by its digest (appending it if step 4 never happened) and
//! redoes the rewrite, which skips records already expired. The collector
//! also does this as soon as it starts (recorded as `retention_resume`). A
//! crash before step 3 leaves nothing to finish (an archived copy is
//! harmless). The scheduled run starts one interval after the collector does.
//!
//! # State on disk
//!
//! ```text
//! <data_dir>/holds.json                     legal holds (format: holds)
//! <data_dir>/retention/pending-<no, 20 digits>.json
//!     a step written down before its tombstone, removed when the rewrite is done:
//!     {"segment":<no>,"leaves":[<leaf index>, ...],"statement":"<tombstone statement, see tombstone>"}
//! ```
//!
//! The tombstone event is rebuilt from the statement (Ed25519 signatures
//! are deterministic, so it is the same event), and looked up in the store
//! by the digest that its `raw` line carries.
//!
//! # Runs
//!
//! A run is scheduled every `[retention] interval` (when there is a
//! policy), and can be asked for
//! (`POST /v1/retention/run?dry_run=true|false`, `auditship retention
//! run`). A dry run plans and reports what a run would do and changes
//! nothing. One run at a time; a second is refused while one runs. Every
//! run, dry or not, is recorded in the log (`access::audit`, action
//! `retention_run`) with its figures.
//!
//! Design choice: one tombstone per segment and run rather than one per run,
//! so each tombstone's statement pairs with exactly one atomic rewrite, and
//! `auditship verify` can check it against the expired records naming it.

pub mod api;
pub mod archive;
pub mod check;
pub mod holds;
pub mod policy;
mod run;
pub mod tombstone;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use auditship_core::identity::Identity;
use serde::Serialize;

use crate::checkpoints::Latest;
use crate::ingest::IngestHandle;
use crate::store::segments::rewrite::{CrashPoint, Maintenance};
use crate::store::StoreReader;
use archive::Archive;
use holds::Holds;
use policy::Policies;

/// Retention failures.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// Another run is in progress.
    #[error("a retention run is already in progress")]
    Busy,
    /// The store (or a state file) could not be read or written.
    #[error("{0}")]
    Store(String),
    /// The archive failed.
    #[error("{0}")]
    Archive(String),
}

/// Figures of one policy in a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct PolicyReport {
    /// Policy name.
    pub policy: String,
    /// Its max age in days.
    pub max_age_days: u64,
    /// Events expired (or, in a dry run, that would be).
    pub events: u64,
    /// Payload bytes removed.
    pub bytes: u64,
    /// Segments with events of it expired.
    pub segments: u64,
    /// Events due but kept by a legal hold.
    pub held: u64,
}

/// What a run did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RunReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// When it started.
    pub started: String,
    /// How long it took.
    pub seconds: f64,
    /// Sealed segments read.
    pub segments_scanned: u64,
    /// Their bytes.
    pub bytes_scanned: u64,
    /// Per policy.
    pub policies: Vec<PolicyReport>,
    /// Events expired in total.
    pub expired: u64,
    /// Segments rewritten (or that would be).
    pub segments: u64,
    /// Events kept by holds.
    pub held: u64,
    /// Leaf indexes of the tombstones written.
    pub tombstones: Vec<u64>,
    /// Archived objects.
    pub archived: Vec<String>,
    /// Steps a crash had interrupted, finished first.
    pub resumed: u64,
    /// Segments left as they were, and why.
    pub errors: Vec<String>,
}

/// Progress of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Progress {
    /// Segments looked at.
    pub segments_done: u64,
    /// Sealed segments.
    pub segments: u64,
    /// Their bytes so far.
    pub bytes_done: u64,
    /// Bytes of all sealed segments.
    pub bytes: u64,
}

/// The retention engine of a collector.
pub struct Retention {
    data_dir: PathBuf,
    maintenance: Maintenance,
    reader: Arc<dyn StoreReader>,
    ingest: IngestHandle,
    key: Identity,
    origin: String,
    latest: Latest,
    policies: Policies,
    /// Legal holds.
    pub holds: Arc<Holds>,
    archive: Option<Archive>,
    lock: Mutex<()>,
    crash: CrashPoint,
}

/// What a [`Retention`] is made of.
pub struct Parts {
    /// The collector's data directory.
    pub data_dir: PathBuf,
    /// The store's sealed segments.
    pub maintenance: Maintenance,
    /// The store's read side.
    pub reader: Arc<dyn StoreReader>,
    /// Appends tombstones.
    pub ingest: IngestHandle,
    /// The collector's key (signs tombstones).
    pub key: Identity,
    /// The log's origin.
    pub origin: String,
    /// The latest checkpoint.
    pub latest: Latest,
    /// Policies.
    pub policies: Policies,
    /// Holds.
    pub holds: Arc<Holds>,
    /// The archive.
    pub archive: Option<Archive>,
}

impl Retention {
    /// Builds the engine.
    pub fn new(p: Parts) -> Retention {
        Retention {
            data_dir: p.data_dir,
            maintenance: p.maintenance,
            reader: p.reader,
            ingest: p.ingest,
            key: p.key,
            origin: p.origin,
            latest: p.latest,
            policies: p.policies,
            holds: p.holds,
            archive: p.archive,
            lock: Mutex::new(()),
            crash: CrashPoint::None,
        }
    }

    /// Makes every rewrite stop where a crash would (tests only).
    #[doc(hidden)]
    pub fn crash_at(&mut self, c: CrashPoint) {
        self.crash = c;
    }

    /// Whether steps a crash interrupted wait to be finished.
    pub fn has_pending(&self) -> bool {
        std::fs::read_dir(self.pending_dir()).is_ok_and(|mut d| d.next().is_some())
    }

    /// Finishes the steps a crash interrupted (blocking), as the collector
    /// does when it starts; a real run does it first too.
    pub fn resume_pending(&self) -> Result<RunReport, RetentionError> {
        let _one = match self.lock.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(RetentionError::Busy),
        };
        let mut report = RunReport {
            started: auditship_core::Timestamp::now_utc().to_string(),
            ..RunReport::default()
        };
        self.resume(&mut report)?;
        Ok(report)
    }

    /// Runs retention (blocking: call from a blocking thread). A real run
    /// first finishes steps a crash interrupted.
    pub fn run(
        &self,
        dry_run: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RunReport, RetentionError> {
        let _one = match self.lock.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(RetentionError::Busy),
        };
        self.run_locked(dry_run, progress)
    }
}

/// Builds the engine of a collector from its config (the archive is opened
/// here, so a bad archive setting stops the start).
pub fn start(
    cfg: &crate::config::CollectorConfig,
    maintenance: Maintenance,
    reader: Arc<dyn StoreReader>,
    ingest: IngestHandle,
    origin: String,
    latest: Latest,
) -> Result<Arc<Retention>, String> {
    let key = crate::checkpoints::collector_identity(&cfg.data_dir).map_err(|e| e.to_string())?;
    let holds = Holds::load(&cfg.data_dir).map_err(|e| e.to_string())?;
    let archive = match &cfg.retention.archive {
        Some(a) => {
            Some(Archive::open(a, tokio::runtime::Handle::current()).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    Ok(Arc::new(Retention::new(Parts {
        data_dir: cfg.data_dir.clone(),
        maintenance,
        reader,
        ingest,
        key,
        origin,
        latest,
        policies: Policies::new(&cfg.retention.policies),
        holds: Arc::new(holds),
        archive,
    })))
}
