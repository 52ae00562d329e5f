//! Readers: one per consumer (output), each with its own acknowledgement.
//!
//! A reader delivers events in id order, never past the last commit, and
//! starts after its last acknowledgement when the queue is opened. Corrupt
//! ranges were reported when the queue was opened; readers step over them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use super::batch::Batch;
use super::record::{self, Body, Scan};
use super::segment;
use super::{delete_acked, io_err, write_acks, QueueError, Shared};

/// Longest time an acknowledgement stays only in memory.
const ACK_PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// Reads events for one consumer.
pub struct QueueReader {
    shared: Arc<Shared>,
    name: String,
    /// Segment being read, and the offset of the next record in it.
    seg_no: u64,
    offset: u64,
    file: Option<File>,
    /// First id not yet delivered.
    next_id: u64,
    /// Id of the last valid record read (event or position-only).
    last_seen: u64,
    /// Start of the unbroken run of position-only records just read (the
    /// next batch covers from here).
    run_from: u64,
    /// Bytes of segment `buf_seg` from offset `buf_at` on, read but maybe
    /// not yet scanned: a read takes up to two batches' worth, and the rest
    /// serves the next batch instead of being read again.
    buf: Vec<u8>,
    buf_seg: u64,
    buf_at: u64,
    /// Whether the segment being read has sealed bodies.
    encrypted: bool,
}

impl QueueReader {
    pub(super) fn new(shared: Arc<Shared>, name: &str) -> Result<Self, QueueError> {
        let (next_id, seg_no) = {
            let st = shared.state.lock().expect("queue lock");
            let acked = *st
                .acks
                .get(name)
                .ok_or_else(|| QueueError::UnknownConsumer(name.to_string()))?;
            let seg = st
                .segments
                .iter()
                .find(|s| s.last_id > acked)
                .or(st.segments.back())
                .map_or(1, |s| s.no);
            (acked + 1, seg)
        };
        Ok(QueueReader {
            shared,
            name: name.to_string(),
            seg_no,
            offset: segment::HEADER_LEN as u64,
            file: None,
            next_id,
            last_seen: next_id - 1,
            run_from: next_id,
            buf: Vec::new(),
            buf_seg: 0,
            buf_at: 0,
            encrypted: false,
        })
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the writer is gone and everything it committed was delivered
    /// to this reader (a drain is complete).
    pub fn finished(&self) -> bool {
        let st = self.shared.state.lock().expect("queue lock");
        st.closed && self.next_id > st.committed_id
    }

    /// Up to `max_records` events (and roughly `max_bytes`), waiting up to
    /// `wait` for the first one. An empty batch means nothing arrived in time,
    /// or the writer is gone.
    pub fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        wait: Duration,
    ) -> Result<Batch, QueueError> {
        self.next_batch_linger(max_records, max_bytes, wait, Duration::ZERO)
    }

    /// Like [`next_batch`](Self::next_batch), but once the batch holds an
    /// event, keeps collecting until it is full or `linger` has passed, so
    /// a trickle of events travels in fewer, larger batches.
    pub fn next_batch_linger(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        wait: Duration,
        linger: Duration,
    ) -> Result<Batch, QueueError> {
        let mut batch = Batch::default();
        let mut deadline = std::time::Instant::now() + wait;
        let mut lingering = false;
        loop {
            if !lingering && !batch.is_empty() {
                lingering = true;
                deadline = std::time::Instant::now() + linger;
            }
            let (limit, is_last, committed) = {
                let next = self.next_id;
                // With events already in the batch, wait only while lingering.
                let waiting = batch.is_empty() || !linger.is_zero();
                let st = self.shared.wait_until(deadline, |st| {
                    st.committed_id >= next || st.closed || !waiting
                });
                if st.committed_id < self.next_id {
                    return Ok(batch);
                }
                // The segment being read may be gone only if everything in it
                // was acknowledged; move to the first one that remains.
                let seg = match st.segments.iter().find(|s| s.no >= self.seg_no) {
                    Some(s) => s.clone(),
                    None => return Ok(batch),
                };
                if seg.no != self.seg_no {
                    self.seg_no = seg.no;
                    self.offset = segment::HEADER_LEN as u64;
                    self.file = None;
                }
                let is_last = st.segments.back().is_some_and(|s| s.no == seg.no);
                self.encrypted = seg.encrypted;
                (seg.bytes, is_last, st.committed_id)
            };
            if self.offset >= limit {
                if is_last {
                    // Everything committed has been read. Ids still missing
                    // were in quarantined ranges: move past them, or the
                    // reader would never wait again.
                    self.next_id = self.next_id.max(committed + 1);
                    return Ok(batch);
                }
                self.seg_no += 1;
                self.offset = segment::HEADER_LEN as u64;
                self.file = None;
                continue;
            }
            let full = self.read_segment(limit, committed, max_records, max_bytes, &mut batch)?;
            if full || batch.len() >= max_records || batch.bytes() >= max_bytes {
                return Ok(batch);
            }
        }
    }

    fn read_segment(
        &mut self,
        limit: u64,
        committed: u64,
        max_records: usize,
        max_bytes: usize,
        batch: &mut Batch,
    ) -> Result<bool, QueueError> {
        let path = segment::path(&self.shared.config.dir, self.seg_no);
        if self.file.is_none() {
            self.file = Some(File::open(&path).map_err(io_err(&path))?);
        }
        let file = self.file.as_ref().expect("just opened");
        let max_record = self.shared.config.max_record_bytes;
        let buffered = self.buf_seg == self.seg_no
            && self.buf_at <= self.offset
            && self.offset < self.buf_at + self.buf.len() as u64;
        if !buffered {
            let want = (limit - self.offset)
                .min((max_bytes.max(max_record + record::FRAME_HEADER) * 2) as u64);
            self.buf.resize(want as usize, 0);
            file.read_exact_at(&mut self.buf, self.offset)
                .map_err(io_err(&path))?;
            (self.buf_seg, self.buf_at) = (self.seg_no, self.offset);
        }
        let base = (self.offset - self.buf_at) as usize;
        // The payloads are most of what was read: grow the batch once.
        batch.reserve((self.buf.len() - base).min(max_bytes.saturating_sub(batch.bytes())));
        let mut at = base;
        let cipher = self.shared.cipher(self.encrypted);
        let mut scratch = Vec::new();
        let mut full = false;
        while batch.len() < max_records && batch.bytes() < max_bytes {
            match record::scan(&self.buf, at, max_record, &cipher, &mut scratch) {
                Scan::Record(body, next) => {
                    if let Body::Event {
                        id,
                        stream,
                        payload,
                        link,
                        ..
                    } = body
                    {
                        if id > committed {
                            break;
                        }
                        // A batch stays within max_bytes unless its one
                        // event is larger: an output that cuts requests by
                        // the same limit then never sends a one-event tail.
                        if id >= self.next_id
                            && !batch.is_empty()
                            && batch.bytes() + payload.len() + 1 > max_bytes
                        {
                            full = true;
                            break;
                        }
                        if id >= self.next_id {
                            if id != self.last_seen + 1 {
                                // Ids were skipped (quarantined): coverage restarts here.
                                self.run_from = id;
                            }
                            // An empty payload only moves a position.
                            if !payload.is_empty() {
                                if batch.is_empty() {
                                    batch.start_covering(self.run_from);
                                }
                                match link {
                                    Some(l) => batch.push(id, stream, payload, Some(l)),
                                    None => batch.push_payload(id, stream, payload),
                                }
                                self.run_from = id + 1;
                            }
                            self.last_seen = id;
                            self.next_id = id + 1;
                        }
                    }
                    at = next;
                }
                Scan::Corrupt { start, resume } => {
                    // Regression: near the end of a read window the scanner
                    // cannot see the next record and "resumed" inside it.
                    // Ranges found at open are skipped exactly.
                    let abs = self.buf_at + start as u64;
                    match self.shared.quarantined.get(&(self.seg_no, abs)) {
                        Some(&end) => {
                            if end - self.buf_at > self.buf.len() as u64 {
                                self.offset = end;
                                return Ok(false);
                            }
                            at = (end - self.buf_at) as usize;
                        }
                        None if resume < self.buf.len() => at = resume,
                        // Unknown damage and no record in sight: read again
                        // from further on rather than skip into a record.
                        None => {
                            at = start + 1;
                            if at >= self.buf.len() {
                                self.buf_seg = u64::MAX;
                                break;
                            }
                            continue;
                        }
                    }
                }
                // Checked at open: every segment's keys are known.
                Scan::Locked(_, next) => at = next,
                // A record continuing past this read: read again from it.
                Scan::Torn | Scan::End => {
                    self.buf_seg = u64::MAX;
                    break;
                }
            }
        }
        self.offset = self.buf_at + at as u64;
        Ok(full)
    }

    /// Acknowledges every event up to and including `id`: it is durably
    /// delivered. Persists the acknowledgement, then deletes segments every
    /// consumer is done with.
    pub fn ack(&mut self, id: u64) -> Result<(), QueueError> {
        {
            let mut st = self.shared.state.lock().expect("queue lock");
            let committed = st.committed_id;
            let a = st.acks.entry(self.name.clone()).or_insert(0);
            if id <= *a {
                return Ok(());
            }
            *a = id.min(committed);
            st.acks_dirty = true;
        }
        delete_acked(&self.shared)?;
        let due = {
            let st = self.shared.state.lock().expect("queue lock");
            st.acks_dirty && st.acks_written.elapsed() >= ACK_PERSIST_INTERVAL
        };
        if due {
            write_acks(&self.shared)?;
        }
        Ok(())
    }

    /// Skips (and acknowledges) everything up to `id`, for outputs that
    /// recovered their own durable watermark at start.
    pub fn skip_through(&mut self, id: u64) -> Result<(), QueueError> {
        self.ack(id)?;
        if id >= self.next_id {
            self.next_id = id + 1;
            self.last_seen = id;
            self.run_from = id + 1;
        }
        Ok(())
    }
}

impl Drop for QueueReader {
    fn drop(&mut self) {
        let dirty = self
            .shared
            .state
            .lock()
            .map(|s| s.acks_dirty)
            .unwrap_or(false);
        if dirty {
            if let Err(e) = write_acks(&self.shared) {
                tracing::warn!(error = %e, "queue: could not persist acknowledgements at exit");
            }
        }
    }
}
