//! Ingest: a signed batch becomes verified, stored, Merkle-covered events,
//! exactly once.
//!
//! ```text
//! HTTP handler:   inflate (bounded) -> wire::decode (chain hashes)
//!                   -> PreparedBatch::prepare (signature under the named key,
//!                      sealed form, leaf hashes, index fields)
//!                   -> IngestHandle::submit ----channel----+
//! commit thread:  take every waiting batch (group commit)  v
//!                   -> key: enrolled, pinned now (trust on first use), or refused
//!                   -> chain: new epoch, gap, fork, break  -> integrity events
//!                   -> deduplicate against watermarks and gaps
//!                   -> StoreWriter::append ... -> StoreWriter::commit (fsync)
//!                   -> Merkle log append -> checkpoint when due
//!                   -> answer each batch: IngestAck, a refusal, or the store's error
//! ticks (1/s):    silent agents -> integrity events; checkpoint interval
//! records:        collector events (access records, alerts, tombstones)
//!                   -> appended to the collector's own chain in the next round
//! after a commit: agents' new events and integrity events some alert rule
//!                   may match -> the alerts thread (crate::alerts::feed)
//! ```
//!
//! Deduplication is keyed by `(agent_id, queue, seq)`. An agent's events
//! arrive in `seq` order per queue, so the store's watermark (the highest
//! stored `seq`, which is always an event's, and that event's chain hash)
//! decides: an event at or below it is a duplicate, unless its `seq` lies in
//! a recorded [gap](crate::gaps) (a batch that went to the agent's
//! dead-letter directory and is being replayed). A batch with a new queue
//! identity starts a new epoch for the agent.
//!
//! Verification on arrival, per batch (see [`crate::integrity`] for the
//! events it records):
//!
//! * **Signature.** The batch must be signed by the agent's enrolled key and
//!   its events must hash to the signed `last_hash`. Otherwise it is
//!   refused with 422 (the agent moves it to its dead-letter directory, so
//!   the evidence is kept on both sides) and a `bad_signature` event is
//!   stored.
//! * **Continuity.** A batch that starts past the next expected seq opens a
//!   gap (`chain_gap`). A batch holding the watermark's seq must hash it to
//!   the stored head, or the chain forked (`chain_fork`). The first new
//!   event must link to the stored head (`chain_break` otherwise). Forked
//!   or broken batches are still stored after their integrity event: they
//!   are what the agent signed, and refusing them would stall the agent
//!   forever; `auditship verify` accepts a discontinuity only where such an
//!   event explains it. Events replayed into a recorded gap are checked for
//!   their own chain and signature, not for their links to the gap's
//!   neighbours (the collector keeps only the head hash per agent).
//!
//! Order: within a group, each agent's batches are processed in `seq`
//! order. An agent keeps two requests in flight; the second is marked
//! `pipelined`, and if its predecessor has not arrived it is held (not
//! answered) for up to [`HOLD`], offered again with every later group, and
//! answered 409 when the predecessor does not come, so that only a batch
//! sent on its own can open a gap.
//!
//! One thread owns the store writer, the Merkle log and the checkpoint
//! key. While it fsyncs, new batches queue up in the channel, and the next
//! round appends all of them and fsyncs once, so the cost of an fsync is
//! shared by every sender.

mod group;
mod own;
mod prepare;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditship_core::wire::IngestAck;
use auditship_core::AuditEvent;
use tokio::sync::{mpsc, oneshot};

pub use prepare::PreparedBatch;

use crate::checkpoints::Checkpointer;
use crate::enrol::Enrolment;
use crate::gaps::Gaps;
use crate::merkle_log::MerkleLog;
use crate::store::{StoreError, StoreReader, StoreWriter};

/// Most batches one commit takes.
const GROUP_MAX: usize = 512;

/// How long a pipelined batch whose predecessor has not arrived is held
/// before it is answered 409 (the agent then sends it again, alone).
const HOLD: Duration = Duration::from_secs(2);

/// Why a batch was not stored.
#[derive(Clone, Debug, thiserror::Error)]
pub enum IngestError {
    /// The store or a state file could not be written: retry later.
    #[error("{message}")]
    Unavailable {
        /// The disk is full (as opposed to another I/O failure).
        full: bool,
        /// What failed.
        message: String,
    },
    /// The batch failed verification; an integrity event records it.
    /// Retrying the same bytes cannot succeed (status 422), or cannot until
    /// an operator acts (403: enrol the agent). Also 409: a pipelined
    /// batch whose predecessor did not arrive in time (not recorded: the
    /// agent sends it again, not pipelined, and only then can it open a
    /// gap).
    #[error("{message}")]
    Refused {
        /// HTTP status to answer.
        status: u16,
        /// Why.
        message: String,
    },
    /// The collector is stopping.
    #[error("the collector is stopping")]
    Stopped,
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError::Unavailable {
            full: matches!(e, StoreError::Full { .. }),
            message: e.to_string(),
        }
    }
}

/// Ingest counters.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Batches answered 200.
    pub batches: AtomicU64,
    /// Events newly stored.
    pub stored: AtomicU64,
    /// Events that were already stored.
    pub duplicates: AtomicU64,
    /// Commits (fsyncs).
    pub commits: AtomicU64,
    /// Gaps opened.
    pub gaps: AtomicU64,
    /// Forks and chain breaks found.
    pub forks: AtomicU64,
    /// Batches refused for their signature or chain.
    pub bad_signatures: AtomicU64,
    /// Integrity events stored.
    pub integrity_events: AtomicU64,
    /// Commits that failed.
    pub failures: AtomicU64,
    /// Checkpoints signed.
    pub checkpoints: AtomicU64,
    /// Rounds of the commit thread (a group of batches, or a clock tick,
    /// which the server sends every second). It keeps moving while the
    /// thread is alive and not stuck; the systemd watchdog checks that it
    /// does (see [`crate::running`]).
    pub rounds: AtomicU64,
}

enum Job {
    Batch {
        batch: Box<PreparedBatch>,
        reply: oneshot::Sender<Result<IngestAck, IngestError>>,
    },
    Record {
        event: Box<AuditEvent>,
        reply: group::RecordReply,
    },
    Tick(Instant),
}

/// Where a collector event was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Its leaf index in the Merkle log.
    pub leaf: u64,
    /// Its `seq` in the collector's own chain.
    pub seq: u64,
}

/// Tells whether the commit thread still runs, without keeping it alive.
#[derive(Clone)]
pub struct IngestWatch(mpsc::WeakSender<Job>);

impl IngestWatch {
    /// Whether the commit thread is gone (stopped, or failed).
    pub fn is_closed(&self) -> bool {
        self.0.upgrade().is_none_or(|tx| tx.is_closed())
    }
}

/// Sends batches to the commit thread.
#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Job>,
    /// Counters.
    pub stats: Arc<IngestStats>,
}

impl IngestHandle {
    /// A handle that does not keep the commit thread running (it ends once
    /// every [`IngestHandle`] is gone), for watching it.
    pub fn watch(&self) -> IngestWatch {
        IngestWatch(self.tx.downgrade())
    }

    /// Stores a batch; returns when it is durable (or refused).
    pub async fn submit(&self, batch: PreparedBatch) -> Result<IngestAck, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Batch {
                batch: Box::new(batch),
                reply,
            })
            .await
            .map_err(|_| IngestError::Stopped)?;
        rx.await.map_err(|_| IngestError::Stopped)?
    }

    /// Appends `event` to the collector's own chain (access records,
    /// alerts, tombstones): sealed, stored and Merkle-covered like every
    /// other event, and durable when this returns `Ok`. Category, action,
    /// outcome, actor and `fields` are the caller's; `agent_id`, `seq`,
    /// the chain hashes, and unset times and host are filled in.
    pub async fn record(&self, event: AuditEvent) -> Result<Recorded, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Record {
                event: Box::new(event),
                reply,
            })
            .await
            .map_err(|_| IngestError::Stopped)?;
        rx.await.map_err(|_| IngestError::Stopped)?
    }

    /// [`IngestHandle::record`] for a plain thread (not inside the runtime).
    pub fn record_blocking(&self, event: AuditEvent) -> Result<Recorded, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(Job::Record {
                event: Box::new(event),
                reply,
            })
            .map_err(|_| IngestError::Stopped)?;
        rx.blocking_recv().map_err(|_| IngestError::Stopped)?
    }

    /// Lets the commit thread look at the clock: silent agents, the
    /// checkpoint interval. Skipped when the thread is busy anyway.
    pub fn tick(&self, now: Instant) {
        let _ = self.tx.try_send(Job::Tick(now));
    }
}

/// What the commit thread owns.
pub struct Parts {
    /// The store.
    pub store: Box<dyn StoreWriter>,
    /// Its read side, to rebuild a Merkle log that lost its tail.
    pub reader: Arc<dyn StoreReader>,
    /// Recorded gaps.
    pub gaps: Gaps,
    /// Agent keys.
    pub enrol: Enrolment,
    /// The Merkle log.
    pub merkle: MerkleLog,
    /// Checkpoint signing.
    pub checkpoints: Checkpointer,
    /// An agent silent for longer is reported (zero: never).
    pub silent_after: Duration,
    /// This collector's host name, in its integrity events.
    pub host: String,
}

/// Views the commit thread keeps current for the HTTP handlers.
#[derive(Clone, Default)]
pub struct Views {
    /// Open gaps (JSON, as `GET /v1/gaps` shows them).
    pub gaps: Arc<Mutex<serde_json::Value>>,
    /// Agents (JSON, as `GET /v1/agents` shows them).
    pub agents: Arc<Mutex<serde_json::Value>>,
    /// Events of the collector's own chain (integrity events) stored.
    pub own_events: Arc<AtomicU64>,
}

/// Starts the commit thread. It runs until every [`IngestHandle`] is dropped.
pub fn start(parts: Parts, views: Views) -> (IngestHandle, std::thread::JoinHandle<()>) {
    start_with(parts, views, None)
}

/// [`start`], handing every committed event the alert rules may match to
/// `tap` (see [`crate::alerts::feed`]).
pub fn start_with(
    parts: Parts,
    views: Views,
    tap: Option<crate::alerts::feed::Tap>,
) -> (IngestHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(GROUP_MAX);
    let stats = Arc::new(IngestStats::default());
    let s = stats.clone();
    let thread = std::thread::Builder::new()
        .name("ingest-commit".into())
        .spawn(move || {
            let mut c = group::Committer::new(parts, views, s);
            c.tap = tap;
            c.catch_up();
            commit_loop(&mut c, rx);
            // A clean stop signs what arrived since the last checkpoint.
            c.final_checkpoint();
        })
        .expect("spawning the commit thread");
    (IngestHandle { tx, stats }, thread)
}

fn commit_loop(c: &mut group::Committer, mut rx: mpsc::Receiver<Job>) {
    // Pipelined batches waiting for their predecessor, with their arrival.
    let mut held: Vec<(PreparedBatch, group::Reply, Instant)> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        c.stats.rounds.fetch_add(1, Ordering::Relaxed);
        let mut jobs = vec![first];
        while jobs.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let arrived = Instant::now();
        let mut group: Vec<(PreparedBatch, group::Reply, Instant)> = std::mem::take(&mut held);
        let mut tick = None;
        let mut records = Vec::new();
        for j in jobs {
            match j {
                Job::Batch { batch, reply } => group.push((*batch, reply, arrived)),
                Job::Record { event, reply } => records.push((*event, reply)),
                Job::Tick(now) => tick = Some(now),
            }
        }
        let now = tick.unwrap_or(arrived);
        // A pipelined batch held past HOLD is answered 409 now.
        let (expired, group): (Vec<_>, Vec<_>) = group
            .into_iter()
            .partition(|(_, _, at)| arrived.saturating_duration_since(*at) > HOLD);
        for (b, reply, _) in expired {
            let _ = reply.send(Err(IngestError::Refused {
                status: 409,
                message: format!(
                    "batch {}..={} of agent {} was sent pipelined and its predecessor did not arrive; send it again",
                    b.first, b.last, b.agent_id
                ),
            }));
        }
        let (batches, meta): (Vec<_>, Vec<_>) =
            group.into_iter().map(|(b, r, at)| ((b, r), at)).unzip();
        let outcomes = c.commit_group(&batches, records, now, tick.is_some());
        let ok = outcomes.iter().filter(|o| matches!(o, Some(Ok(_)))).count() as u64;
        c.stats.batches.fetch_add(ok, Ordering::Relaxed);
        for (((b, reply), at), outcome) in batches.into_iter().zip(meta).zip(outcomes) {
            match outcome {
                Some(o) => {
                    let _ = reply.send(o);
                }
                None => held.push((b, reply, at)),
            }
        }
    }
    for (b, reply, _) in held {
        let _ = reply.send(Err(IngestError::Refused {
            status: 409,
            message: format!(
                "the collector stopped before batch {}..={} could be stored in order",
                b.first, b.last
            ),
        }));
    }
}

#[cfg(test)]
mod tests;
