//! From the commit thread to the alerts thread.
//!
//! The commit thread must stay fast (ingest is measured in hundreds of
//! thousands of events per second) and must never wait for alerting. So:
//!
//! * **Pre-filter without parsing.** The commit thread already has each
//!   event's category and action (its index fields). [`Prefilter`] keeps
//!   only events whose action (or, for rules that name no action, category)
//!   some rule names: a short scan of the names, comparing lengths first
//!   (about 23 ns per event). Only those are copied
//!   (their sealed bytes) for the alerts thread, which parses them. A rule
//!   that names neither makes every event pass (logged at start: it costs
//!   throughput).
//! * **Only what was committed.** A round's matches are handed over after
//!   its commit succeeded; a failed commit discards them (the agents send
//!   the batches again, and they are evaluated then). Duplicates absorbed
//!   by deduplication are never fed. The collector's own integrity events
//!   are fed; its access records and alert events are not, so an alert
//!   can never trigger an alert.
//! * **Never block, never lose.** The hand-over is a bounded channel with
//!   at most [`MAX_PENDING`] events waiting (about 15 MB). When the alerts thread falls
//!   behind and a round does not fit, the round is not sent: the first leaf
//!   not handed over is noted instead ([`FeedStats::overflowed`] counts the
//!   events, `auditship_collector_alerts_feed_overflow_events_total` on
//!   /metrics, with a warning in the log). The alerts thread, once it
//!   gets there, reads those events back from the store, which holds them
//!   durably, and evaluates them in order, so a burst that overruns the
//!   alerts thread delays alerts but loses none, and ingest never waits.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use auditship_core::AuditEvent;

use super::fields::Field;
use super::rules::Rule;

/// Most events waiting for the alerts thread.
pub const MAX_PENDING: usize = 20_000;

/// What the commit thread hands over for one event.
#[derive(Debug)]
pub enum Payload {
    /// An agent's event in sealed form (parsed by the alerts thread).
    Sealed(Vec<u8>),
    /// One of the collector's integrity events.
    Event(Box<AuditEvent>),
}

/// One event for the alerts thread.
#[derive(Debug)]
pub struct FeedEvent {
    /// Its leaf index.
    pub leaf: u64,
    /// The event.
    pub payload: Payload,
}

/// The matches of one committed round.
#[derive(Debug)]
pub struct FeedRound {
    /// Leaf index of the round's first event.
    pub first: u64,
    /// Events some rule may match, in leaf order.
    pub events: Vec<FeedEvent>,
}

/// Which events some rule can match, by category and action.
///
/// A handful of names (the default rules name 13 actions), so a scan that
/// compares lengths first beats hashing: most events (web requests) are
/// refused on the length of their action alone.
#[derive(Clone, Debug, Default)]
pub struct Prefilter {
    all: bool,
    actions: Vec<Box<str>>,
    categories: Vec<Box<str>>,
}

impl Prefilter {
    /// The union of what `rules` name.
    pub fn of(rules: &[Rule]) -> Prefilter {
        let mut actions = HashSet::new();
        let mut categories = HashSet::new();
        let mut p = Prefilter::default();
        for r in rules {
            if let Some(a) = r.when.values_of(&Field::Action) {
                actions.extend(a.iter().map(|s| s.as_str().into()));
            } else if let Some(c) = r.when.values_of(&Field::Category) {
                categories.extend(c.iter().map(|s| s.as_str().into()));
            } else {
                tracing::warn!(rule = %r.name, "alert rule names no action or category: every event is evaluated, which costs ingest throughput");
                p.all = true;
            }
        }
        p.actions = actions.into_iter().collect();
        p.categories = categories.into_iter().collect();
        p
    }

    /// Whether an event of `category` and `action` may match a rule.
    #[inline]
    pub fn wants(&self, category: &str, action: &str) -> bool {
        let has = |set: &[Box<str>], s: &str| {
            set.iter()
                .any(|a| a.len() == s.len() && a.as_bytes() == s.as_bytes())
        };
        self.all || has(&self.actions, action) || has(&self.categories, category)
    }
}

/// Hand-over counters, shared by both threads.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Events handed over.
    pub fed: AtomicU64,
    /// Events not handed over because the alerts thread was behind (read
    /// back from the store instead).
    pub overflowed: AtomicU64,
    /// Events read back from the store.
    pub caught_up: AtomicU64,
    /// Events waiting in the channel.
    pub pending: AtomicUsize,
}

/// The commit thread's end.
pub struct Tap {
    pre: Prefilter,
    tx: SyncSender<FeedRound>,
    max_pending: usize,
    stats: Arc<FeedStats>,
    overflow_from: Arc<AtomicU64>,
    round: Vec<FeedEvent>,
}

/// The alerts thread's end.
pub struct FeedReceiver {
    /// Rounds.
    pub rx: Receiver<FeedRound>,
    /// Counters.
    pub stats: Arc<FeedStats>,
    overflow_from: Arc<AtomicU64>,
    /// What the commit thread keeps.
    pub prefilter: Prefilter,
}

/// A connected pair; at most `max_pending` events wait.
pub fn channel(pre: Prefilter, max_pending: usize) -> (Tap, FeedReceiver) {
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let stats = Arc::new(FeedStats::default());
    let overflow_from = Arc::new(AtomicU64::new(u64::MAX));
    (
        Tap {
            pre: pre.clone(),
            tx,
            max_pending,
            stats: stats.clone(),
            overflow_from: overflow_from.clone(),
            round: Vec::new(),
        },
        FeedReceiver {
            rx,
            stats,
            overflow_from,
            prefilter: pre,
        },
    )
}

impl Tap {
    /// Whether an event of `category` and `action` is wanted.
    #[inline]
    pub fn wants(&self, category: &str, action: &str) -> bool {
        self.pre.wants(category, action)
    }

    /// Adds a wanted event of the round in progress.
    pub fn push(&mut self, leaf: u64, payload: Payload) {
        self.round.push(FeedEvent { leaf, payload });
    }

    /// The round failed: forget its events.
    pub fn discard(&mut self) {
        self.round.clear();
    }

    /// The round starting at leaf `first` is durable: hand its events over,
    /// or note where the alerts thread must read them back from.
    pub fn committed(&mut self, first: u64) {
        if self.round.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.round);
        let n = events.len();
        let pending = self.stats.pending.load(Ordering::Relaxed);
        let sent = if pending + n <= self.max_pending {
            self.stats.pending.fetch_add(n, Ordering::Relaxed);
            match self.tx.try_send(FeedRound { first, events }) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.stats.pending.fetch_sub(n, Ordering::Relaxed);
                    false
                }
            }
        } else {
            false
        };
        if sent {
            self.stats.fed.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            let was = self.overflow_from.fetch_min(first, Ordering::AcqRel);
            self.stats.overflowed.fetch_add(n as u64, Ordering::Relaxed);
            if was == u64::MAX {
                tracing::warn!(
                    from_leaf = first,
                    events = n,
                    "alerts are behind ingest; they will read these events back from the store"
                );
            }
        }
    }
}

impl FeedReceiver {
    /// Where events must be read back from the store, if anywhere; taking
    /// it clears it.
    pub fn take_overflow(&self) -> Option<u64> {
        let from = self.overflow_from.swap(u64::MAX, Ordering::AcqRel);
        (from != u64::MAX).then_some(from)
    }

    /// Whether events wait to be read back from before leaf `before`.
    pub fn overflow_before(&self, before: u64) -> bool {
        self.overflow_from.load(Ordering::Acquire) < before
    }
}
