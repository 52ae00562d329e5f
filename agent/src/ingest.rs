//! The ingest side of the pipeline: a line from an input becomes a queued
//! event.
//!
//! For each line: parse, stamp (`observed_ts`, `source`, `agent_id`, and
//! `seq`, which is the id the queue record will get),
//! filter, encode canonically, append to the queue with the line's
//! position. A full queue blocks here, which pauses the input: the file
//! simply waits on disk. A line a filter drops still moves its stream's
//! position (one position-only record per stream per pass), so a restart
//! does not read noise again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auditship_core::{canonical, Timestamp};
use auditship_plugins::Parser;
use tokio_util::sync::CancellationToken;

use crate::filter::{FilterChain, Verdict};
use crate::input::file::{InputError, Line, Sink};
use crate::queue::{QueueError, QueueWriter};

/// Counters of the ingest side.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Events queued.
    pub queued: AtomicU64,
    /// Events dropped by filters.
    pub dropped: AtomicU64,
    /// Lines no parser understood (queued as `unparsed`).
    pub unparsed: AtomicU64,
    /// Times an input waited for queue space.
    pub full_waits: AtomicU64,
}

/// The [`Sink`] the inputs write into, for one input's pass.
pub struct IngestSink<'a> {
    /// The queue.
    pub writer: &'a mut QueueWriter,
    /// This input's parser.
    pub parser: &'a mut Parser,
    /// Shared filter chain.
    pub filters: &'a FilterChain,
    /// Stops a wait for queue space.
    pub stop: &'a CancellationToken,
    /// Agent identity stamped on events.
    pub agent_id: &'a str,
    /// Input name, for `source`.
    pub input: &'a str,
    /// Positions of streams whose latest line was dropped.
    pub dropped_positions: &'a mut HashMap<Vec<u8>, Vec<u8>>,
    /// Encoding scratch space.
    pub payload: &'a mut Vec<u8>,
    /// Last path seen and its `source` text.
    pub source_cache: &'a mut (PathBuf, String),
    /// Counters.
    pub stats: &'a IngestStats,
}

impl IngestSink<'_> {
    fn append(
        &mut self,
        stream: &[u8],
        position: &[u8],
        payload_is_event: bool,
    ) -> Result<(), InputError> {
        let payload: &[u8] = if payload_is_event { self.payload } else { b"" };
        loop {
            match self.writer.append(stream, position, payload) {
                Ok(_) => return Ok(()),
                Err(QueueError::Full { .. }) => {
                    self.stats.full_waits.fetch_add(1, Ordering::Relaxed);
                    let need = (payload.len() + stream.len() + position.len() + 64) as u64;
                    loop {
                        let room = self
                            .writer
                            .wait_for_space(need, Duration::from_millis(200))
                            .map_err(|e| InputError::Sink(e.to_string()))?;
                        if room {
                            break;
                        }
                        if self.stop.is_cancelled() {
                            return Err(InputError::Stopped);
                        }
                    }
                }
                Err(e) => return Err(InputError::Sink(e.to_string())),
            }
        }
    }

    /// Writes the position-only records for streams whose last line was dropped.
    pub fn flush_dropped(&mut self) -> Result<(), InputError> {
        let pending: Vec<(Vec<u8>, Vec<u8>)> = self.dropped_positions.drain().collect();
        for (stream, position) in pending {
            self.append(&stream, &position, false)?;
        }
        Ok(())
    }
}

/// Shrinks an event to its metadata and the first `keep` bytes of its raw
/// line, flagged `truncated`. Eight times smaller than the line, even fully
/// escaped it fits in a record.
fn reduce(ev: &mut auditship_core::AuditEvent, keep: usize) {
    let mut cut = keep.min(ev.raw.len());
    while !ev.raw.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut small = auditship_core::AuditEvent::unparsed(ev.raw[..cut].to_string());
    small.ts = ev.ts;
    small.raw_ts = ev.raw_ts.take();
    small.observed_ts = ev.observed_ts;
    small.host = ev.host.take();
    small.source = ev.source.take();
    small.program = ev.program.take();
    small.pid = ev.pid;
    small.agent_id = ev.agent_id.take();
    small.seq = ev.seq;
    small.flags = ev.flags;
    small.flags.insert(auditship_core::Flags::TRUNCATED);
    *ev = small;
}

impl Sink for IngestSink<'_> {
    fn line(&mut self, line: Line<'_>) -> Result<(), InputError> {
        let now = Timestamp::now_utc();
        let mut ev = self.parser.parse_at(line.bytes, now);
        ev.flags.insert(line.flags);
        ev.observed_ts = Some(now);
        if self.source_cache.0 != line.path {
            *self.source_cache = (
                line.path.to_path_buf(),
                format!("{}:{}", self.input, line.path.display()),
            );
        }
        ev.source = Some(self.source_cache.1.clone());
        ev.agent_id = Some(self.agent_id.to_string());
        if ev.is_unparsed() {
            self.stats.unparsed.fetch_add(1, Ordering::Relaxed);
        }
        if let Verdict::Drop { .. } = self.filters.apply(&mut ev) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_positions
                .insert(line.stream.to_vec(), line.position.to_vec());
            return Ok(());
        }
        if !self.dropped_positions.is_empty() {
            self.dropped_positions.remove(line.stream);
        }
        // The queue record id is the event's seq: unique and increasing per
        // queue identity, which is what the collector deduplicates on.
        ev.seq = Some(self.writer.next_id());
        self.payload.clear();
        canonical::encode_into(&ev, self.payload);
        match self.append(line.stream, line.position, true) {
            Err(InputError::Sink(msg)) if msg.contains("exceeds the queue's max_record_bytes") => {
                // Regression: a line of control bytes encoded past the record
                // limit, the error stopped ingest, and the same line stopped it
                // again after every restart. Keep what can be kept, flagged.
                tracing::warn!(source = ?ev.source, bytes = line.bytes.len(), "event too large for a queue record; storing it truncated");
                reduce(&mut ev, line.bytes.len() / 8);
                self.payload.clear();
                canonical::encode_into(&ev, self.payload);
                self.append(line.stream, line.position, true)?;
            }
            other => other?,
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn position(&mut self, stream: &[u8], position: &[u8]) -> Result<(), InputError> {
        self.append(stream, position, false)
    }

    fn forget(&mut self, stream: &[u8]) {
        self.dropped_positions.remove(stream);
        self.writer.forget(stream);
    }
}

#[cfg(test)]
mod tests {
    use auditship_core::{AuditEvent, Flags};

    use super::*;

    #[test]
    fn a_reduced_event_fits_whatever_its_raw_line_holds() {
        let line = 1 << 20;
        let mut ev = AuditEvent::unparsed("\u{1}".repeat(line));
        ev.source = Some("in:/var/log/x".into());
        ev.fields.insert("big".into(), "\u{1}".repeat(line));
        reduce(&mut ev, line / 8);
        let mut out = Vec::new();
        canonical::encode_into(&ev, &mut out);
        // The record limit for this line length is 6 x line + 64 KiB.
        assert!(out.len() < line, "{} bytes", out.len());
        assert!(ev.flags.contains(Flags::TRUNCATED));
        assert_eq!(ev.source.as_deref(), Some("in:/var/log/x"));
        assert!(ev.fields.is_empty());
    }
}
