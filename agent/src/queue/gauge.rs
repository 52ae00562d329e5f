//! A read-only view of how full the queue is, for status reports (the
//! systemd `STATUS=` line) while the writer and readers run.

use std::sync::Arc;

use super::Shared;

/// How full the queue is. Cheap to clone; reading takes the queue lock
/// briefly.
#[derive(Clone)]
pub struct QueueGauge {
    shared: Arc<Shared>,
}

impl QueueGauge {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        QueueGauge { shared }
    }

    /// Durable records that some output has not acknowledged yet: the
    /// highest committed id minus the lowest acknowledgement. Position-only
    /// records (lines a filter dropped) are counted too, so this is an upper
    /// bound on the events waiting for delivery.
    pub fn pending(&self) -> u64 {
        let st = self.shared.state.lock().expect("queue lock");
        st.committed_id - st.min_ack().min(st.committed_id)
    }

    /// Bytes of all segments on disk (committed).
    pub fn bytes(&self) -> u64 {
        self.shared.state.lock().expect("queue lock").total_bytes
    }
}
