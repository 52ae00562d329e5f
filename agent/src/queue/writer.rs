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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::durability::Durability;
use super::record::ChainLink;
use super::segment::{self, SegmentMeta};
use super::syncer::{self, Request, Syncer};
use super::{delete_acked, io_err, record, set_position, sync_dir, Fsync, QueueError, Shared};

/// Buffered bytes at which appends are written to the file early.
pub(super) const FLUSH_AT: usize = 1 << 20;
/// Largest single write.
const WRITE_CHUNK: usize = 1 << 20;
/// Most bytes buffered while writes fail, before appends are refused.
const BUFFER_WHEN_FAILING: usize = 4 << 20;

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
    /// Id of the last record whose bytes are written to the file (a full
    /// disk can leave later ones buffered).
    written_id: u64,
    /// `total_bytes` as last read. Only the writer grows it (publishing its
    /// own bytes, creating segments) and it refreshes this each time, while
    /// readers only shrink it, so this is an upper bound: appends check it
    /// without taking the queue lock, and look again only near the limit.
    total_hint: u64,
    /// The last write failed (a full disk): appends are refused as `Full`
    /// once `BUFFER_WHEN_FAILING` bytes wait, so inputs pause.
    write_failed: bool,
    buf: Vec<u8>,
    /// The id of each record in `buf` (an event's id; a forget record's
    /// last id) and where it ends in `buf`, in order: the bodies may be
    /// sealed, so ids cannot be read back from them, and walking the frames
    /// of a buffer written long ago would miss the cache on every record.
    buf_records: Vec<(u64, usize)>,
    /// Whether the active segment's bodies are sealed.
    encrypted: bool,
    next_id: u64,
    /// Latest position per stream, including uncommitted appends.
    positions: BTreeMap<Vec<u8>, Vec<u8>>,
    last_sync: Instant,
    /// Written to the OS but not yet fsynced (interval mode).
    unsynced: bool,
    /// The last append was refused as `Full` (see [`Durability::is_full`]).
    full: Arc<AtomicBool>,
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
            encrypted: shared.keys.is_some(),
            buf_records: Vec::new(),
            syncer: Syncer::start(shared.clone()),
            in_flight: 0,
            shared,
            file: Arc::new(file),
            seg_no,
            seg_written: written,
            seg_committed: written,
            written_id: next_id - 1,
            total_hint: u64::MAX,
            write_failed: false,
            buf: Vec::with_capacity(1 << 20),
            next_id,
            positions,
            last_sync: Instant::now(),
            unsynced: false,
            full: Arc::default(),
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
        self.append_inner(stream, position, None, payload, None)
    }

    /// Like [`append`](Self::append), and with the record, sets the
    /// position of a second stream, `implied.0`, to `implied.1`, in the
    /// positions map only: no record says so, but every later segment's
    /// opening snapshot carries it. For positions the records themselves
    /// imply, which the queue must still know once those records are
    /// deleted (the chain head, see [`crate::seal`]). Setting it with the
    /// record, rather than after the append returns, matters: an append
    /// can rotate segments, and that snapshot must already hold it.
    pub fn append_implying(
        &mut self,
        stream: &[u8],
        position: &[u8],
        payload: &[u8],
        implied: (&[u8], &[u8]),
    ) -> Result<u64, QueueError> {
        self.append_inner(stream, position, None, payload, Some(implied))
    }

    /// Appends a sealed event: its canonical bytes and its chain link, kept
    /// apart in the record (kind 4), so readers get the canonical bytes
    /// as they go on the wire and the link without parsing. Sets `implied`
    /// as [`append_implying`](Self::append_implying) does, if given.
    pub fn append_linked(
        &mut self,
        stream: &[u8],
        position: &[u8],
        link: &ChainLink,
        canonical: &[u8],
        implied: Option<(&[u8], &[u8])>,
    ) -> Result<u64, QueueError> {
        self.append_inner(stream, position, Some(link), canonical, implied)
    }

    fn append_inner(
        &mut self,
        stream: &[u8],
        position: &[u8],
        link: Option<&ChainLink>,
        payload: &[u8],
        implied: Option<(&[u8], &[u8])>,
    ) -> Result<u64, QueueError> {
        let body = record::event_body_len(stream, position, link.is_some(), payload);
        let max = self.shared.config.max_record_bytes;
        if body > max {
            return Err(QueueError::TooLarge { size: body, max });
        }
        let sealing = if self.encrypted {
            auditship_crypt::OVERHEAD
        } else {
            0
        };
        let size = (body + record::FRAME_HEADER + sealing) as u64;
        let stuck = self.write_failed && self.buf.len() >= BUFFER_WHEN_FAILING;
        let need = self.uncommitted() + size + ROTATION_HEADROOM;
        let max = self.shared.config.max_bytes;
        let over = move |total: u64| total.saturating_add(need) > max;
        if over(self.total_hint) {
            self.refresh_total();
        }
        if stuck || over(self.total_hint) {
            self.full.store(true, Ordering::Relaxed);
            return Err(QueueError::Full {
                max_bytes: self.shared.config.max_bytes,
            });
        }
        if self.full.load(Ordering::Relaxed) {
            self.full.store(false, Ordering::Relaxed);
        }
        let id = self.next_id;
        let cipher = self.shared.cipher(self.encrypted);
        record::encode_event(&mut self.buf, &cipher, id, stream, position, link, payload)
            .map_err(|e| QueueError::Key(e.to_string()))?;
        self.buf_records.push((id, self.buf.len()));
        set_position(&mut self.positions, stream, position);
        if let Some((s, p)) = implied {
            set_position(&mut self.positions, s, p);
        }
        self.next_id += 1;
        if self.buf.len() >= FLUSH_AT {
            // Bound memory: hand the bytes to the OS now. They stay invisible
            // to readers until the commit that fsyncs them. If the write fails
            // (a full disk) the record stays buffered and the commit retries
            // it; the append itself succeeded.
            match self.write_buffer() {
                Err(e @ QueueError::Fsync { .. }) => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "early queue write failed; the commit will retry it");
                }
                // A long pass also commits every half segment, so segments
                // keep rotating and delivered ones can be deleted, which is
                // how a full disk frees up; and as soon as the segment is
                // full, so it passes `segment_bytes` by one write at most.
                // Regression: segments grew to 1.3 times their size when
                // rotation waited for the pass to end.
                Ok(())
                    if self.seg_written - self.seg_committed
                        >= self.shared.config.segment_bytes / 2
                        || self.seg_written >= self.shared.config.segment_bytes =>
                {
                    match self.commit_async() {
                        Err(e @ QueueError::Fsync { .. }) => return Err(e),
                        Err(e) => {
                            tracing::debug!(error = %e, "intermediate commit failed; retried later")
                        }
                        Ok(()) => {}
                    }
                }
                Ok(()) => {}
            }
        }
        Ok(id)
    }

    /// A handle for other threads to wait until records are durable and to
    /// see whether the queue is full (see [`Durability`]).
    pub fn durability(&self) -> Durability {
        Durability::new(self.shared.clone(), self.full.clone())
    }

    /// The id the next [`append`](Self::append) will get (the event's `seq`).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Records that `stream`'s position is no longer needed (its file is gone
    /// and drained).
    pub fn forget(&mut self, stream: &[u8]) {
        if self.positions.remove(stream).is_some() {
            let cipher = self.shared.cipher(self.encrypted);
            match record::encode_forget(&mut self.buf, &cipher, self.next_id - 1, stream) {
                Ok(()) => self.buf_records.push((self.next_id - 1, self.buf.len())),
                // Only a failing random source: the position stays known
                // to the queue until the next snapshot, which drops it.
                Err(e) => tracing::error!(error = %e, "queue: cannot encrypt a forget record"),
            }
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
        // Regression: on a full disk, nothing was published while the write of
        // the rest failed, so nothing could be delivered, acknowledged and
        // deleted, and the disk never freed. Publish what is written, then
        // report the failure; the rest stays buffered for the retry.
        let write_result = self.write_buffer();
        if let Err(e @ QueueError::Fsync { .. }) = write_result {
            return Err(e);
        }
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
        syncer::publish(&self.shared, self.seg_no, self.seg_written, self.written_id);
        self.seg_committed = self.seg_written;
        self.refresh_total();
        write_result?;
        // Only with nothing left buffered: the next segment's snapshot must
        // hold the positions of written records only.
        if self.seg_written >= self.shared.config.segment_bytes {
            self.rotate()?;
        }
        Ok(self.written_id)
    }

    /// Like [`commit`](Self::commit), but the fsync and the publication run
    /// on the syncer thread while the caller goes on reading: pipelined group
    /// commit. Records still become visible only after their fsync. If the
    /// previous fsync is still running, returns at once and leaves this
    /// pass's records to the next call, unless half a segment is waiting or
    /// the segment is full; then waits for it.
    pub fn commit_async(&mut self) -> Result<(), QueueError> {
        if self.shared.config.fsync != Fsync::Always {
            return self.commit().map(|_| ());
        }
        let write_result = self.write_buffer();
        if let Err(e @ QueueError::Fsync { .. }) = write_result {
            return Err(e);
        }
        // Group commit: while the previous fsync runs, this pass joins the
        // next one, up to half a segment and never across a rotation.
        let bounded = self.seg_written - self.seg_committed < self.shared.config.segment_bytes / 2
            && self.seg_written < self.shared.config.segment_bytes;
        if bounded && self.syncer.is_busy() {
            return write_result;
        }
        self.syncer.wait_idle()?;
        self.in_flight = 0;
        self.refresh_total();
        if self.unsynced {
            self.in_flight = self.seg_written - self.seg_committed;
            self.syncer.submit(Request {
                file: self.file.clone(),
                path: segment::path(&self.shared.config.dir, self.seg_no),
                seg_no: self.seg_no,
                upto: self.seg_written,
                committed_id: self.written_id,
            });
            self.seg_committed = self.seg_written;
            self.unsynced = false;
        }
        write_result?;
        if self.seg_written >= self.shared.config.segment_bytes {
            // The closed segment must be fully published before readers may
            // move past it to the next one.
            self.syncer.wait_idle()?;
            self.in_flight = 0;
            self.rotate()?;
        }
        Ok(())
    }

    fn refresh_total(&mut self) {
        self.total_hint = self.shared.state.lock().expect("queue lock").total_bytes;
    }

    /// Writes the buffer to the segment file (no fsync), in chunks that end
    /// on record boundaries: on a full disk, whole records that fit are kept
    /// and only the rest stays buffered for the retry.
    fn write_buffer(&mut self) -> Result<(), QueueError> {
        let mut done = 0;
        let mut done_records = 0;
        let mut last_id = self.written_id;
        while done < self.buf.len() {
            // Up to ~1 MiB of whole records, and the id of the last one.
            let mut end = done;
            let mut records = done_records;
            let mut chunk_last = last_id;
            while end < self.buf.len() && (end == done || end - done < WRITE_CHUNK) {
                let (id, record_end) = self.buf_records[records];
                chunk_last = id.max(chunk_last);
                records += 1;
                end = record_end;
            }
            if let Err(e) = (&*self.file).write_all(&self.buf[done..end]) {
                // A full disk, say: cut back what was partly written so the
                // retry cannot leave a torn record in the middle of the
                // segment; keep what was written before.
                let path = segment::path(&self.shared.config.dir, self.seg_no);
                if let Err(cut) = self.file.set_len(self.seg_written) {
                    // The segment may now hold half a record that a retry would
                    // bury: stop, and let the next start truncate the torn tail.
                    return Err(QueueError::Fsync { path, source: cut });
                }
                self.buf.drain(..done);
                self.buf_records.drain(..done_records);
                for r in &mut self.buf_records {
                    r.1 -= done;
                }
                self.written_id = last_id;
                if !self.write_failed {
                    tracing::error!(path = %path.display(), error = %e,
                        "queue write failed; inputs pause until it succeeds (nothing is dropped)");
                }
                self.write_failed = true;
                return Err(io_err(&path)(e));
            }
            self.seg_written += (end - done) as u64;
            self.unsynced = true;
            last_id = chunk_last;
            done = end;
            done_records = records;
        }
        self.buf.clear();
        self.buf_records.clear();
        self.written_id = self.next_id - 1;
        if self.write_failed {
            tracing::info!("queue writes succeed again; inputs resume");
        }
        self.write_failed = false;
        Ok(())
    }

    /// Closes the active segment and starts a new one with a snapshot; then
    /// deletes segments every consumer has acknowledged.
    fn rotate(&mut self) -> Result<(), QueueError> {
        let committed = self.next_id - 1;
        let (file, written) =
            create_segment(&self.shared, self.seg_no + 1, committed, &self.positions)?;
        self.encrypted = self.shared.keys.is_some();
        self.file = Arc::new(file);
        self.seg_no += 1;
        self.seg_written = written;
        self.seg_committed = written;
        delete_acked(&self.shared)?;
        self.refresh_total();
        Ok(())
    }

    /// Blocks until `bytes` more fit, or `timeout` passes. Before waiting it
    /// commits, and starts a fresh segment if the active one is fully
    /// acknowledged, so waiting can always end once outputs catch up.
    pub fn wait_for_space(&mut self, bytes: u64, timeout: Duration) -> Result<bool, QueueError> {
        match self.commit() {
            // A full disk: keep waiting; delivered segments are being freed.
            Err(QueueError::Io { .. }) if self.write_failed => {
                std::thread::sleep(timeout.min(Duration::from_millis(200)));
                return Ok(false);
            }
            r => {
                r?;
            }
        }
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

    /// A read-only view of the queue, for metrics.
    pub fn monitor(&self) -> super::QueueMonitor {
        super::QueueMonitor(self.shared.clone())
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
    let encrypted = shared.keys.is_some();
    let mut first = segment::header(no, encrypted).to_vec();
    record::encode_snapshot(&mut first, &shared.cipher(encrypted), last_id, positions)
        .map_err(|e| QueueError::Key(e.to_string()))?;
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let made = file
        .write_all(&first)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&path))
        .and_then(|()| sync_dir(dir));
    if let Err(e) = made {
        // Leave no file behind: every retry would fail to create it again
        // ("file exists"), and the writer would never rotate (a full disk
        // is when this fails).
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    let written = first.len() as u64;
    let mut st = shared.state.lock().expect("queue lock");
    st.segments.push_back(SegmentMeta {
        no,
        bytes: written,
        last_id,
        encrypted,
    });
    st.total_bytes += written;
    Ok((file, written))
}
