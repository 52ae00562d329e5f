//! The single writer: buffered appends and group commit.
//!
//! Appends go to an in-memory buffer. [`QueueWriter::commit`] writes the
//! buffer, fsyncs (per the `fsync` setting) and only then makes the records
//! visible to readers, so one fsync covers a whole batch of lines. The
//! caller (the input loop) commits once per read pass, which is the group
//! commit.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::segment::{self, SegmentMeta};
use super::syncer::{self, Request, Syncer};
use super::{delete_acked, io_err, record, set_position, sync_dir, Fsync, QueueError, Shared};

/// Buffered bytes at which appends are written to the file early.
const FLUSH_AT: usize = 1 << 20;

/// Room kept below `max_bytes` for what a rotation writes without asking
/// (the next segment's header and positions snapshot). Regression: a
/// rotation at a full queue pushed it a few bytes past its limit.
const ROTATION_HEADROOM: u64 = 64 << 10;

/// Appends records; there is exactly one per queue.
pub struct QueueWriter {
    shared: Arc<Shared>,
    file: Arc<File>,
    syncer: Syncer,
    /// Bytes handed to the syncer and maybe not yet published.
    in_flight: u64,
    seg_no: u64,
    /// Bytes of the active segment already written to the file.
    seg_written: u64,
    /// Bytes of the active segment covered by the last commit.
    seg_committed: u64,
    buf: Vec<u8>,
    next_id: u64,
    /// Latest position per stream, including uncommitted appends.
    positions: BTreeMap<Vec<u8>, Vec<u8>>,
    last_sync: Instant,
    /// Written to the OS but not yet fsynced (interval mode).
    unsynced: bool,
}

impl QueueWriter {
    pub(super) fn start(
        shared: Arc<Shared>,
        seg_no: u64,
        next_id: u64,
        positions: BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<Self, QueueError> {
        let (file, written) = create_segment(&shared, seg_no, next_id - 1, &positions)?;
        Ok(QueueWriter {
            syncer: Syncer::start(shared.clone()),
            in_flight: 0,
            shared,
            file: Arc::new(file),
            seg_no,
            seg_written: written,
            seg_committed: written,
            buf: Vec::with_capacity(1 << 20),
            next_id,
            positions,
            last_sync: Instant::now(),
            unsynced: false,
        })
    }

    /// Appends an event; it becomes durable and visible at the next
    /// [`commit`](Self::commit). Returns its id.
    ///
    /// Fails with [`QueueError::Full`] when the queue would pass `max_bytes`;
    /// commit, then [`wait_for_space`](Self::wait_for_space), then retry.
    pub fn append(
        &mut self,
        stream: &[u8],
        position: &[u8],
        payload: &[u8],
    ) -> Result<u64, QueueError> {
        let body = 1 + 8 + 2 + stream.len() + 2 + position.len() + payload.len();
        let max = self.shared.config.max_record_bytes;
        if body > max {
            return Err(QueueError::TooLarge { size: body, max });
        }
        let size = (body + record::FRAME_HEADER) as u64;
        let total = self.shared.state.lock().expect("queue lock").total_bytes;
        if total + self.uncommitted() + size + ROTATION_HEADROOM > self.shared.config.max_bytes {
            return Err(QueueError::Full {
                max_bytes: self.shared.config.max_bytes,
            });
        }
        let id = self.next_id;
        record::encode_event(&mut self.buf, id, stream, position, payload);
        set_position(&mut self.positions, stream, position);
        self.next_id += 1;
        if self.buf.len() >= FLUSH_AT {
            // Bound memory: hand the bytes to the OS now. They stay invisible
            // to readers until the commit that fsyncs them.
            self.write_buffer()?;
        }
        Ok(id)
    }

    /// Records that `stream`'s position is no longer needed (its file is gone
    /// and drained).
    pub fn forget(&mut self, stream: &[u8]) {
        if self.positions.remove(stream).is_some() {
            record::encode_forget(&mut self.buf, self.next_id - 1, stream);
        }
    }

    /// Bytes appended but not committed (buffered, written early, or being
    /// fsynced). May overcount briefly, never undercount.
    pub fn uncommitted(&self) -> u64 {
        self.seg_written - self.seg_committed + self.buf.len() as u64 + self.in_flight
    }

    /// Writes and fsyncs everything appended, then makes it visible to
    /// readers. Returns the highest committed id.
    ///
    /// A failed write (a full disk) leaves the appended records buffered and
    /// can be retried. A failed fsync cannot: the kernel may have dropped the
    /// dirty pages, so the caller must stop and let the next start recover
    /// from what is durable.
    pub fn commit(&mut self) -> Result<u64, QueueError> {
        let path = segment::path(&self.shared.config.dir, self.seg_no);
        self.write_buffer()?;
        self.syncer.wait_idle()?;
        self.in_flight = 0;
        let sync_now = match self.shared.config.fsync {
            Fsync::Always => self.unsynced,
            Fsync::Interval(every) => self.unsynced && self.last_sync.elapsed() >= every,
        };
        if sync_now {
            self.file.sync_data().map_err(|source| QueueError::Fsync {
                path: path.clone(),
                source,
            })?;
            self.last_sync = Instant::now();
            self.unsynced = false;
        }
        let committed = self.next_id - 1;
        syncer::publish(&self.shared, self.seg_no, self.seg_written, committed);
        self.seg_committed = self.seg_written;
        if self.seg_written >= self.shared.config.segment_bytes {
            self.rotate()?;
        }
        Ok(committed)
    }

    /// Like [`commit`](Self::commit), but the fsync and the publication run
    /// on the syncer thread while the caller goes on reading: pipelined group
    /// commit. Records still become visible only after their fsync. Waits
    /// only for the previous pass's fsync.
    pub fn commit_async(&mut self) -> Result<(), QueueError> {
        if self.shared.config.fsync != Fsync::Always {
            return self.commit().map(|_| ());
        }
        self.write_buffer()?;
        self.syncer.wait_idle()?;
        self.in_flight = 0;
        if self.unsynced {
            self.in_flight = self.seg_written - self.seg_committed;
            self.syncer.submit(Request {
                file: self.file.clone(),
                path: segment::path(&self.shared.config.dir, self.seg_no),
                seg_no: self.seg_no,
                upto: self.seg_written,
                committed_id: self.next_id - 1,
            });
            self.seg_committed = self.seg_written;
            self.unsynced = false;
        }
        if self.seg_written >= self.shared.config.segment_bytes {
            // The closed segment must be fully published before readers may
            // move past it to the next one.
            self.syncer.wait_idle()?;
            self.in_flight = 0;
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes the buffer to the segment file (no fsync).
    fn write_buffer(&mut self) -> Result<(), QueueError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = (&*self.file).write_all(&self.buf) {
            // A full disk, say: cut back what was partly written so the
            // retry cannot leave a torn record in the middle of the segment.
            // The appended records stay buffered.
            let path = segment::path(&self.shared.config.dir, self.seg_no);
            if let Err(cut) = self.file.set_len(self.seg_written) {
                // The segment may now hold half a record that a retry would
                // bury: stop, and let the next start truncate the torn tail.
                return Err(QueueError::Fsync { path, source: cut });
            }
            return Err(io_err(&path)(e));
        }
        self.seg_written += self.buf.len() as u64;
        self.buf.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Closes the active segment and starts a new one with a snapshot; then
    /// deletes segments every consumer has acknowledged.
    fn rotate(&mut self) -> Result<(), QueueError> {
        let committed = self.next_id - 1;
        let (file, written) =
            create_segment(&self.shared, self.seg_no + 1, committed, &self.positions)?;
        self.file = Arc::new(file);
        self.seg_no += 1;
        self.seg_written = written;
        self.seg_committed = written;
        delete_acked(&self.shared)?;
        Ok(())
    }

    /// Blocks until `bytes` more fit, or `timeout` passes. Before waiting it
    /// commits, and starts a fresh segment if the active one is fully
    /// acknowledged, so waiting can always end once outputs catch up.
    pub fn wait_for_space(&mut self, bytes: u64, timeout: Duration) -> Result<bool, QueueError> {
        self.commit()?;
        let max = self.shared.config.max_bytes;
        let fits = move |total: u64| total + bytes + ROTATION_HEADROOM <= max;
        {
            let st = self.shared.state.lock().expect("queue lock");
            if fits(st.total_bytes) {
                return Ok(true);
            }
            let active_acked = st.min_ack() >= self.next_id - 1 && self.seg_written > 0;
            drop(st);
            if active_acked {
                self.rotate()?;
            }
        }
        let st = self
            .shared
            .wait_until(Instant::now() + timeout, |st| fits(st.total_bytes));
        Ok(fits(st.total_bytes))
    }

    /// Bytes on disk, all segments.
    pub fn total_bytes(&self) -> u64 {
        self.shared.state.lock().expect("queue lock").total_bytes
    }
}

impl Drop for QueueWriter {
    fn drop(&mut self) {
        // Best effort: make what was appended durable, then release readers.
        let _ = self.commit();
        self.shared.state.lock().expect("queue lock").closed = true;
        self.shared.changed.notify_all();
    }
}

/// Creates segment `no` with its header and a positions snapshot, fsynced,
/// and registers it as the active segment.
fn create_segment(
    shared: &Shared,
    no: u64,
    last_id: u64,
    positions: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(File, u64), QueueError> {
    let dir = &shared.config.dir;
    let path = segment::path(dir, no);
    let mut first = segment::header(no).to_vec();
    record::encode_snapshot(&mut first, last_id, positions);
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    file.write_all(&first).map_err(io_err(&path))?;
    file.sync_all().map_err(io_err(&path))?;
    sync_dir(dir)?;
    let written = first.len() as u64;
    let mut st = shared.state.lock().expect("queue lock");
    st.segments.push_back(SegmentMeta {
        no,
        bytes: written,
        last_id,
    });
    st.total_bytes += written;
    Ok((file, written))
}
