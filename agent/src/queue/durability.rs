//! Waiting for durability from outside the ingest thread.
//!
//! An input that answers its senders (the HTTP input answers 200 only once
//! the events are durable) needs two things from the queue without owning
//! the [`QueueWriter`](super::QueueWriter): to wait until a given record id
//! is durable, and to know whether the queue is refusing appends because it
//! is full, so it can turn new work away at once instead of making it wait.
//! [`Durability`] is that handle; [`QueueWriter::durability`] makes one.
//!
//! "Durable" means what readers see: with `fsync = "always"` the record was
//! covered by an fsync (the same rule that lets outputs read it). With
//! `fsync = "interval"` records are published before their fsync, so a
//! record reported durable survives a process crash but not necessarily a
//! power loss (the documented risk of that mode).
//!
//! [`QueueWriter::durability`]: super::QueueWriter::durability

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;

/// See the module docs. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct Durability {
    shared: Arc<Shared>,
    full: Arc<AtomicBool>,
}

impl Durability {
    pub(super) fn new(shared: Arc<Shared>, full: Arc<AtomicBool>) -> Self {
        Durability { shared, full }
    }

    /// The highest durable record id.
    pub fn committed_id(&self) -> u64 {
        self.shared.state.lock().expect("queue lock").committed_id
    }

    /// Waits until record `id` is durable, `timeout` passes, or the writer
    /// is gone; returns the highest durable id (at least `id` if it is).
    pub fn wait_for(&self, id: u64, timeout: Duration) -> u64 {
        self.shared
            .wait_until(Instant::now() + timeout, |st| {
                st.committed_id >= id || st.closed
            })
            .committed_id
    }

    /// Whether the writer is gone (nothing more will become durable).
    pub fn writer_closed(&self) -> bool {
        self.shared.state.lock().expect("queue lock").closed
    }

    /// Whether the queue refused its last append for space (or a failing
    /// disk) and has taken none since: inputs are paused until outputs
    /// catch up.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{open, Fsync, QueueConfig, QueueError};
    use std::time::Duration;

    fn cfg(dir: &std::path::Path) -> QueueConfig {
        QueueConfig {
            dir: dir.to_path_buf(),
            max_bytes: 1 << 20,
            segment_bytes: 256 << 10,
            max_record_bytes: 64 << 10,
            fsync: Fsync::Always,
            encryption: None,
        }
    }

    #[test]
    fn a_waiter_on_another_thread_sees_its_record_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _readers, _) = open(cfg(dir.path()), &["out"]).unwrap();
        let d = w.durability();
        let id = w.append(b"s", b"1", b"payload").unwrap();
        // Appended is not durable.
        assert!(d.wait_for(id, Duration::from_millis(20)) < id);
        let waiter = {
            let d = d.clone();
            std::thread::spawn(move || d.wait_for(id, Duration::from_secs(60)))
        };
        w.commit_async().unwrap();
        assert!(waiter.join().unwrap() >= id);
        assert!(d.committed_id() >= id);
        assert!(!d.writer_closed());
        drop(w);
        assert!(d.writer_closed());
        // A closed writer ends a wait at once instead of hanging.
        assert!(d.wait_for(id + 100, Duration::from_secs(60)) < id + 100);
    }

    #[test]
    fn full_is_set_by_a_refused_append_and_cleared_by_the_next_that_fits() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, mut readers, _) = open(cfg(dir.path()), &["out"]).unwrap();
        let d = w.durability();
        let big = vec![b'x'; 32 << 10];
        let mut last = 0;
        let refused = loop {
            assert!(!d.is_full());
            match w.append(b"s", b"p", &big) {
                Ok(id) => last = id,
                Err(e) => break e,
            }
            w.commit().unwrap();
        };
        assert!(matches!(refused, QueueError::Full { .. }), "{refused}");
        assert!(d.is_full());
        // The output catches up; space frees and the next append clears it.
        loop {
            let b = readers[0]
                .next_batch(1000, 64 << 20, Duration::from_millis(10))
                .unwrap();
            if b.is_empty() {
                break;
            }
        }
        readers[0].ack(last).unwrap();
        assert!(w
            .wait_for_space(big.len() as u64, Duration::from_secs(10))
            .unwrap());
        w.append(b"s", b"p", &big).unwrap();
        assert!(!d.is_full());
    }
}
