//! What a running agent shows whoever supervises it: the counters for a
//! one-line status, and the liveness counter the systemd watchdog checks.
//!
//! [`crate::runtime::run_with`] hands a [`Running`] to its caller once the
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
use std::sync::Arc;

use crate::ingest::IngestStats;
use crate::queue::QueueGauge;

/// A running agent's counters, shared with its threads.
#[derive(Clone)]
pub struct Running {
    stats: Arc<IngestStats>,
    queue: QueueGauge,
}

impl Running {
    pub(crate) fn new(stats: Arc<IngestStats>, queue: QueueGauge) -> Self {
        Running { stats, queue }
    }

    /// Events queued from input lines since start (heartbeats are not
    /// counted here).
    pub fn queued(&self) -> u64 {
        self.stats.queued.load(Ordering::Relaxed)
    }

    /// Queue records not yet acknowledged by every output (see
    /// [`QueueGauge::pending`]).
    pub fn pending(&self) -> u64 {
        self.queue.pending()
    }

    /// Bytes the queue holds on disk.
    pub fn queue_bytes(&self) -> u64 {
        self.queue.bytes()
    }

    /// Turns of the ingest thread; moves while it is alive (see the module
    /// docs for what that proves).
    pub fn progress(&self) -> u64 {
        self.stats.passes.load(Ordering::Relaxed)
    }

    /// The ingest counters.
    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }
}
