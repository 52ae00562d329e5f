//! What a running agent shows whoever supervises it: the counters for a
//! one-line status, and the liveness counter the systemd watchdog checks.
//!
//! [`crate::lifecycle::run`] hands a [`Running`] to its caller once the
//! agent is running (identity loaded, queue recovered, inputs and outputs
//! started). The binary's systemd notifier sends `READY=1` then, and
//! afterwards a keep-alive only while [`Running::progress`] keeps moving.
//!
//! What a moving [`Running::progress`] proves: the ingest thread came back
//! to its loop recently, after a pass over every input and the commit that
//! follows it (so no read, parse, seal, queue append or fsync is stuck), or
//! after one bounded wait for queue space or for a failed queue write (a
//! full disk) to clear. Those waits are the agent working as designed
//! (backpressure, "full means block"): a restart would not help, so they
//! count as alive. It does not prove that outputs deliver: a collector that
//! is down is retried forever, and restarting the agent would not bring it
//! back.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use crate::ingest::IngestStats;
use crate::queue::QueueMonitor;

/// A running agent's counters, shared with its threads. A config reload
/// starts a new pipeline with counters of its own; the lifecycle points
/// this handle at them, so a supervisor keeps one handle for the process.
#[derive(Clone)]
pub struct Running {
    inner: Arc<RwLock<(Arc<IngestStats>, QueueMonitor)>>,
}

impl Running {
    pub(crate) fn new(stats: Arc<IngestStats>, queue: QueueMonitor) -> Self {
        Running {
            inner: Arc::new(RwLock::new((stats, queue))),
        }
    }

    /// Points the handle at a new pipeline's counters (after a reload).
    pub(crate) fn attach(&self, stats: Arc<IngestStats>, queue: QueueMonitor) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = (stats, queue);
    }

    fn read<T>(&self, f: impl FnOnce(&IngestStats, &QueueMonitor) -> T) -> T {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        f(&g.0, &g.1)
    }

    /// Events queued from input lines since the pipeline started
    /// (heartbeats are not counted here).
    pub fn queued(&self) -> u64 {
        self.read(|s, _| s.queued.load(Ordering::Relaxed))
    }

    /// Queue records not yet acknowledged by every output (lines a filter
    /// dropped leave position-only records, counted too: an upper bound on
    /// the events waiting for delivery).
    pub fn pending(&self) -> u64 {
        self.read(|_, q| q.status().pending_records)
    }

    /// Bytes the queue holds on disk.
    pub fn queue_bytes(&self) -> u64 {
        self.read(|_, q| q.status().bytes)
    }

    /// Turns of the ingest thread; moves while it is alive (see the module
    /// docs for what that proves). A reload starts a new count, which is a
    /// change too.
    pub fn progress(&self) -> u64 {
        self.read(|s, _| s.passes.load(Ordering::Relaxed))
    }
}
