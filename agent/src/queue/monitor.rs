//! A read-only view of the queue for metrics: depth, size and the age of
//! the oldest event not yet acknowledged by every output.
//!
//! Ages come from the times at which ids became durable: each publish
//! records `(committed id, time)`, coalesced to one entry per
//! [`COALESCE`], and entries every output has acknowledged are dropped. The
//! oldest unacknowledged event became durable no later than the first entry
//! whose id reaches it, so the age is exact to within [`COALESCE`]. After a
//! restart, events queued before it count from the moment the queue was
//! opened (their commit times were not kept): the age is then a lower bound.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Shared, State};

/// Commit times closer together than this share one entry.
pub(crate) const COALESCE: Duration = Duration::from_millis(100);

/// Most commit-time entries kept (older ones merge into the oldest).
const MAX_TIMES: usize = 4096;

/// What the queue holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueStatus {
    /// Highest durable record id.
    pub committed_id: u64,
    /// Highest id every output has acknowledged.
    pub acked_id: u64,
    /// Records durable but not acknowledged by every output (events, plus
    /// the position-only records of lines a filter dropped).
    pub pending_records: u64,
    /// Bytes of all segment files.
    pub bytes: u64,
    /// The configured limit.
    pub max_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Age of the oldest record not acknowledged by every output.
    pub oldest_unacked_age: Option<Duration>,
}

/// A handle that reads [`QueueStatus`]; cheap to clone.
#[derive(Clone)]
pub struct QueueMonitor(pub(super) Arc<Shared>);

impl QueueMonitor {
    /// The current status.
    pub fn status(&self) -> QueueStatus {
        let st = self.0.state.lock().expect("queue lock");
        let acked = st.min_ack();
        let oldest = st
            .commit_times
            .iter()
            .find(|(id, _)| *id > acked)
            .map(|(_, t)| SystemTime::now().duration_since(*t).unwrap_or_default());
        QueueStatus {
            committed_id: st.committed_id,
            acked_id: acked,
            pending_records: st.committed_id.saturating_sub(acked),
            bytes: st.total_bytes,
            max_bytes: self.0.config.max_bytes,
            segments: st.segments.len() as u64,
            oldest_unacked_age: oldest.filter(|_| st.committed_id > acked),
        }
    }
}

/// Records that ids up to `id` are durable now (called under the lock).
pub(super) fn note_commit(st: &mut State, id: u64) {
    let now = SystemTime::now();
    let acked = st.min_ack();
    let times: &mut VecDeque<(u64, SystemTime)> = &mut st.commit_times;
    while times.front().is_some_and(|(i, _)| *i <= acked) {
        times.pop_front();
    }
    match times.back_mut() {
        Some((last, t)) if now.duration_since(*t).unwrap_or_default() < COALESCE => {
            *last = (*last).max(id);
        }
        Some((last, _)) if *last >= id => {}
        _ => {
            if times.len() == MAX_TIMES {
                // Merge the two oldest: the older time stays, so the age
                // stays an upper bound for the ids it covers.
                let (_, t0) = times.pop_front().expect("full");
                if let Some(front) = times.front_mut() {
                    front.1 = t0;
                }
            }
            times.push_back((id, now));
        }
    }
}
