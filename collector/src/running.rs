//! What a running collector shows whoever supervises it: the counters for
//! a one-line status, and the liveness counter the systemd watchdog checks.
//!
//! [`crate::server::run_with`] hands a [`Running`] to its caller once the
//! store is open and the collector listens. The binary's systemd notifier
//! sends `READY=1` then, and afterwards a keep-alive only while
//! [`Running::progress`] keeps moving.
//!
//! What a moving [`Running::progress`] proves: the commit thread, which
//! stores every batch, finished a round recently. The server's clock task
//! sends it a tick every second, so an idle collector moves too; a commit
//! thread stuck in a write or an fsync, or a runtime that no longer runs
//! the clock task, stops it. It does not prove that requests are answered
//! quickly: a slow client only holds its own connection.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::ingest::IngestStats;
use crate::store::StoreReader;

/// A running collector's counters, shared with its threads.
#[derive(Clone)]
pub struct Running {
    addr: SocketAddr,
    stats: Arc<IngestStats>,
    reader: Arc<dyn StoreReader>,
    agents: Arc<Mutex<serde_json::Value>>,
}

impl Running {
    pub(crate) fn new(
        addr: SocketAddr,
        stats: Arc<IngestStats>,
        reader: Arc<dyn StoreReader>,
        agents: Arc<Mutex<serde_json::Value>>,
    ) -> Self {
        Running {
            addr,
            stats,
            reader,
            agents,
        }
    }

    /// The address the collector listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Events in the store (the collector's own integrity events included).
    pub fn stored_events(&self) -> u64 {
        self.reader.stats().events
    }

    /// Agents the collector knows of (as `GET /v1/agents` lists them).
    pub fn agents(&self) -> usize {
        self.agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_array()
            .map_or(0, Vec::len)
    }

    /// Rounds of the commit thread; moves while it is alive (see the module
    /// docs for what that proves).
    pub fn progress(&self) -> u64 {
        self.stats.rounds.load(Ordering::Relaxed)
    }

    /// The ingest counters.
    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }
}
