//! Pipelined group commit: the fsync of one pass runs on its own thread
//! while the input loop parses the next.
//!
//! The writer writes a pass's records to the segment file, hands "fsync this
//! segment up to this offset, then publish these ids" to the syncer, and
//! goes back to reading. Records become visible to readers only when the
//! syncer has published them, after their fsync, so the durability rule is
//! unchanged. At most one request is in flight. While it is, the writer
//! does not wait: the passes written meanwhile join the next request, so a
//! slow disk gets fewer, larger fsyncs instead of stalling the inputs. It
//! waits only when what is written but not yet durable reaches half a
//! segment, and before a rotation.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::{QueueError, Shared};

/// "fsync `file` (segment `seg_no`) and publish everything up to `upto`
/// bytes and id `committed_id`."
pub(super) struct Request {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub seg_no: u64,
    pub upto: u64,
    pub committed_id: u64,
}

#[derive(Default)]
struct Slot {
    request: Option<Request>,
    busy: bool,
    error: Option<(PathBuf, std::io::Error)>,
    stop: bool,
}

/// The syncer thread and its hand-over slot.
pub(super) struct Syncer {
    slot: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    pub fn start(shared: Arc<Shared>) -> Syncer {
        let slot: Arc<(Mutex<Slot>, Condvar)> = Arc::default();
        let s = slot.clone();
        let thread = std::thread::Builder::new()
            .name("queue-fsync".into())
            .spawn(move || run(&s, &shared))
            .expect("spawn the queue's fsync thread");
        Syncer {
            slot,
            thread: Some(thread),
        }
    }

    /// Waits until no request is in flight; returns the error of a failed
    /// fsync, which is final (see [`QueueError::Fsync`]).
    pub fn wait_idle(&self) -> Result<(), QueueError> {
        let (m, cv) = &*self.slot;
        let mut s = m.lock().expect("syncer lock");
        while s.busy {
            s = cv.wait(s).expect("syncer lock");
        }
        match s.error.take() {
            Some((path, source)) => Err(QueueError::Fsync { path, source }),
            None => Ok(()),
        }
    }

    /// Whether a request is still being fsynced.
    pub fn is_busy(&self) -> bool {
        self.slot.0.lock().expect("syncer lock").busy
    }

    /// Hands over a request; call [`wait_idle`](Self::wait_idle) first.
    pub fn submit(&self, req: Request) {
        let (m, cv) = &*self.slot;
        let mut s = m.lock().expect("syncer lock");
        debug_assert!(!s.busy, "one request in flight at most");
        s.request = Some(req);
        s.busy = true;
        cv.notify_all();
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        {
            let (m, cv) = &*self.slot;
            let mut s = m.lock().expect("syncer lock");
            s.stop = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(slot: &(Mutex<Slot>, Condvar), shared: &Shared) {
    let (m, cv) = slot;
    loop {
        let req = {
            let mut s = m.lock().expect("syncer lock");
            loop {
                if let Some(r) = s.request.take() {
                    break r;
                }
                if s.stop {
                    return;
                }
                s = cv.wait(s).expect("syncer lock");
            }
        };
        let result = req.file.sync_data();
        let mut s = m.lock().expect("syncer lock");
        match result {
            Ok(()) => publish(shared, req.seg_no, req.upto, req.committed_id),
            Err(e) => s.error = Some((req.path, e)),
        }
        s.busy = false;
        cv.notify_all();
    }
}

/// Makes segment `seg_no` up to `upto` bytes, and ids up to `committed_id`,
/// visible to readers.
pub(super) fn publish(shared: &Shared, seg_no: u64, upto: u64, committed_id: u64) {
    {
        let mut st = shared.state.lock().expect("queue lock");
        let mut grown = 0;
        if let Some(seg) = st.segments.iter_mut().find(|s| s.no == seg_no) {
            if upto > seg.bytes {
                grown = upto - seg.bytes;
                seg.bytes = upto;
            }
            seg.last_id = seg.last_id.max(committed_id);
        }
        st.total_bytes += grown;
        st.committed_id = st.committed_id.max(committed_id);
        super::monitor::note_commit(&mut st, committed_id);
    }
    shared.changed.notify_all();
}
