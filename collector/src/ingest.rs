//! Ingest: a checked batch becomes stored events, exactly once.
//!
//! ```text
//! HTTP handler:   inflate (bounded) -> wire::decode -> prepare (owned, indexed)
//!                   -> IngestHandle::submit ----channel----+
//! commit thread:  take every waiting batch (group commit)  v
//!                   -> deduplicate against watermarks and gaps
//!                   -> StoreWriter::append ... -> StoreWriter::commit (fsync)
//!                   -> answer each batch: IngestAck, or the store's error
//! ```
//!
//! Deduplication is keyed by `(agent_id, queue, seq)`. An agent's events
//! arrive in `seq` order per queue, so the store's watermark (the highest
//! stored `seq`) decides: an event at or below it is a duplicate, unless its
//! `seq` lies in a recorded [gap](crate::gaps) (a batch that went to the
//! agent's dead-letter directory and is being replayed). A batch with a new
//! queue identity starts a new epoch for the agent.
//!
//! One thread owns the store writer. While it fsyncs, new batches queue up
//! in the channel, and the next round appends all of them and fsyncs once,
//! so the cost of an fsync is shared by every sender.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use auditship_core::wire::{self, IngestAck, WireError};
use tokio::sync::{mpsc, oneshot};

use crate::gaps::Gaps;
use crate::store::{IndexKey, NewEvent, StoreError, StoreWriter, Watermark};

/// Most batches one commit takes.
const GROUP_MAX: usize = 512;

/// A decoded batch that owns its bytes, ready for the commit thread.
#[derive(Debug)]
pub struct PreparedBatch {
    /// Sending agent.
    pub agent_id: String,
    /// Queue identity.
    pub queue: u64,
    /// First `seq` covered.
    pub first: u64,
    /// Last `seq` covered.
    pub last: u64,
    body: Vec<u8>,
    events: Vec<Prepared>,
    arena: String,
}

/// `(start, len)` in the arena; `len == u32::MAX` is "absent".
type Span = (u32, u32);
const NONE: Span = (0, u32::MAX);

#[derive(Debug)]
struct Prepared {
    seq: u64,
    payload: (u32, u32),
    ts: i64,
    src_ip: Option<IpAddr>,
    host: Span,
    actor: Span,
    action: Span,
    category: Span,
    outcome: Span,
}

impl PreparedBatch {
    /// Decodes and checks an inflated body (see [`wire::decode`]).
    pub fn prepare(body: Vec<u8>) -> Result<PreparedBatch, WireError> {
        if body.len() > u32::MAX as usize {
            return Err(WireError::TooLarge {
                limit: u32::MAX as usize,
            });
        }
        let decoded = wire::decode(&body)?;
        let base = body.as_ptr() as usize;
        let mut arena = String::with_capacity(decoded.events.len() * 24);
        let mut put = |s: Option<&str>| -> Span {
            match s {
                None => NONE,
                Some(s) => {
                    let start = arena.len() as u32;
                    arena.push_str(s);
                    (start, s.len() as u32)
                }
            }
        };
        let mut events = Vec::with_capacity(decoded.events.len());
        for (seq, bytes, view) in &decoded.events {
            let offset = bytes.as_ptr() as usize - base;
            events.push(Prepared {
                seq: *seq,
                payload: (offset as u32, bytes.len() as u32),
                ts: view.time_millis(),
                src_ip: view.src_ip,
                host: put(view.host.as_deref()),
                actor: put(view.actor.user.as_deref()),
                action: put(Some(&view.action)),
                category: put(Some(&view.category)),
                outcome: put(Some(&view.outcome)),
            });
        }
        let header = decoded.header;
        let queue = decoded.queue;
        Ok(PreparedBatch {
            agent_id: header.agent_id,
            queue,
            first: header.first,
            last: header.last,
            body,
            events,
            arena,
        })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn span(&self, s: Span) -> Option<&str> {
        (s.1 != u32::MAX).then(|| &self.arena[s.0 as usize..(s.0 + s.1) as usize])
    }

    fn event(&self, e: &Prepared) -> NewEvent<'_> {
        NewEvent {
            seq: e.seq,
            payload: &self.body[e.payload.0 as usize..(e.payload.0 + e.payload.1) as usize],
            key: IndexKey {
                ts_millis: e.ts,
                host: self.span(e.host),
                actor: self.span(e.actor),
                action: self.span(e.action).unwrap_or(""),
                category: self.span(e.category).unwrap_or(""),
                outcome: self.span(e.outcome).unwrap_or(""),
                src_ip: e.src_ip,
            },
        }
    }
}

/// Why a batch was not stored. Either way nothing of it was stored, and
/// the sender should retry.
#[derive(Clone, Debug, thiserror::Error)]
pub enum IngestError {
    /// The store or the gaps file could not be written.
    #[error("{message}")]
    Unavailable {
        /// The disk is full (as opposed to another I/O failure).
        full: bool,
        /// What failed.
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
    /// Commits that failed.
    pub failures: AtomicU64,
}

struct Request {
    batch: PreparedBatch,
    reply: oneshot::Sender<Result<IngestAck, IngestError>>,
}

/// Sends batches to the commit thread.
#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Request>,
    /// Counters.
    pub stats: Arc<IngestStats>,
}

impl IngestHandle {
    /// Stores a batch; returns when it is durable (or refused).
    pub async fn submit(&self, batch: PreparedBatch) -> Result<IngestAck, IngestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { batch, reply })
            .await
            .map_err(|_| IngestError::Stopped)?;
        rx.await.map_err(|_| IngestError::Stopped)?
    }
}

/// Starts the commit thread. It runs until every [`IngestHandle`] is dropped.
///
/// `gaps_view` is kept up to date with the open gaps, for readers.
pub fn start(
    writer: Box<dyn StoreWriter>,
    gaps: Gaps,
    gaps_view: Arc<Mutex<serde_json::Value>>,
) -> (IngestHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(GROUP_MAX);
    let stats = Arc::new(IngestStats::default());
    let s = stats.clone();
    let thread = std::thread::Builder::new()
        .name("ingest-commit".into())
        .spawn(move || commit_loop(writer, gaps, rx, &s, &gaps_view))
        .expect("spawning the commit thread");
    (IngestHandle { tx, stats }, thread)
}

fn commit_loop(
    mut store: Box<dyn StoreWriter>,
    mut gaps: Gaps,
    mut rx: mpsc::Receiver<Request>,
    stats: &IngestStats,
    gaps_view: &Mutex<serde_json::Value>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        // A failed commit must leave the gaps as they were: a gap filled in
        // memory by a batch that was not stored would turn its retry into
        // "duplicates".
        let before = gaps.clone();
        let outcome = commit_group(store.as_mut(), &mut gaps, &group, stats);
        if outcome.is_err() {
            gaps = before;
        } else if gaps.all() != before.all() {
            *gaps_view.lock().expect("gaps view") =
                serde_json::to_value(gaps.all()).unwrap_or_default();
        }
        match outcome {
            Ok(acks) => {
                stats
                    .batches
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                for (req, ack) in group.into_iter().zip(acks) {
                    let _ = req.reply.send(Ok(ack));
                }
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, batches = group.len(), "cannot store; agents will retry");
                for req in group {
                    let _ = req.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Appends the group's new events and commits once. Returns one ack per
/// batch, or the error that stored none of them.
fn commit_group(
    store: &mut dyn StoreWriter,
    gaps: &mut Gaps,
    group: &[Request],
    stats: &IngestStats,
) -> Result<Vec<IngestAck>, IngestError> {
    // Watermarks as this group advances them (the store's advance at commit).
    let mut marks: HashMap<&str, Watermark> = HashMap::new();
    let mut counts = Vec::with_capacity(group.len());
    let mut gaps_opened = false;
    let mut gaps_filled = false;
    let mut fresh: Vec<NewEvent<'_>> = Vec::new();
    for req in group {
        let b = &req.batch;
        let queue_hex = wire::format_queue(b.queue);
        let mark = marks.entry(&b.agent_id).or_insert_with(|| {
            store
                .watermarks()
                .get(&b.agent_id)
                .copied()
                .unwrap_or(Watermark {
                    queue: b.queue,
                    seq: 0,
                })
        });
        if mark.queue != b.queue {
            tracing::warn!(agent = %b.agent_id, old = %wire::format_queue(mark.queue), new = %queue_hex,
                "agent's queue identity changed (fresh agent state?); starting a new sequence epoch");
            *mark = Watermark {
                queue: b.queue,
                seq: 0,
            };
            gaps_filled |= gaps.new_epoch(&b.agent_id, &queue_hex);
        }
        if b.first > mark.seq + 1 {
            tracing::warn!(agent = %b.agent_id, from = mark.seq + 1, to = b.first - 1,
                "gap: this agent's events in this range have not arrived");
            gaps_opened |= gaps.open(&b.agent_id, &queue_hex, mark.seq + 1, b.first - 1);
            stats.gaps.fetch_add(1, Ordering::Relaxed);
        }
        fresh.clear();
        let mut dup = 0u64;
        for e in &b.events {
            if e.seq > mark.seq || gaps.contains(&b.agent_id, &queue_hex, e.seq) {
                fresh.push(b.event(e));
            } else {
                dup += 1;
            }
        }
        if b.first <= mark.seq {
            gaps_filled |= gaps.fill(&b.agent_id, &queue_hex, b.first, b.last.min(mark.seq));
        }
        if !fresh.is_empty() {
            store.append(&b.agent_id, b.queue, &fresh)?;
        }
        mark.seq = mark.seq.max(b.last);
        counts.push((fresh.len() as u64, dup));
    }
    if gaps_opened {
        gaps.save().map_err(|e| IngestError::Unavailable {
            full: e.raw_os_error() == Some(28),
            message: format!("cannot record a gap: {e}"),
        })?;
    }
    store.commit()?;
    stats.commits.fetch_add(1, Ordering::Relaxed);
    if gaps_filled {
        if let Err(e) = gaps.save() {
            tracing::error!(error = %e, "cannot record filled gaps; they stay listed until the next save");
        }
    }
    let acks = group
        .iter()
        .zip(counts)
        .map(|(req, (stored, duplicates))| {
            let b = &req.batch;
            stats.stored.fetch_add(stored, Ordering::Relaxed);
            stats.duplicates.fetch_add(duplicates, Ordering::Relaxed);
            let queue = wire::format_queue(b.queue);
            let high = marks.get(b.agent_id.as_str()).map_or(b.last, |m| m.seq);
            let durable_seq = gaps.lowest(&b.agent_id, &queue).map_or(high, |low| low - 1);
            IngestAck {
                agent_id: b.agent_id.clone(),
                queue,
                durable_seq,
                stored,
                duplicates,
            }
        })
        .collect();
    Ok(acks)
}

#[cfg(test)]
mod tests;
