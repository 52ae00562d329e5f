//! The ingest side of the pipeline: a line from an input becomes a sealed,
//! queued event.
//!
//! For each line: parse, stamp (`observed_ts`, `source`, `agent_id`, and
//! `seq`, which is the id the queue record will get), filter, encode
//! canonically, seal (link it to the chain head, see [`crate::seal`]),
//! append to the queue with the line's position. A full queue blocks here,
//! which pauses the input: the file simply waits on disk. A line a filter
//! drops still moves its stream's position (one position-only record per
//! stream per pass), so a restart does not read noise again; it is not
//! sealed and does not move the chain. Lines of network inputs have no
//! position ([`NO_POSITION`]): a dropped one leaves no record at all, and
//! their peer address goes into `source` and `fields`.
//!
//! A parser that makes one event of several lines (`auditd`) is fed through
//! `grouped.rs`: its events carry the position after their
//! last line, and no position is recorded for a stream while a group of it
//! is pending; the ingest loop calls [`IngestSink::flush_idle`] after each
//! input's read. The argument is in that module's docs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auditship_core::{canonical, AuditEvent, Timestamp};
use auditship_plugins::Parser;
use tokio_util::sync::CancellationToken;

use crate::filter::{FilterChain, Verdict};
use crate::input::{InputError, Line, Sink, NO_POSITION};
use crate::queue::{QueueError, QueueWriter};
use crate::seal::{Sealer, CHAIN_STREAM};

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
    /// Heartbeat events sealed.
    pub heartbeats: AtomicU64,
    /// Turns of the ingest thread: a pass over every input, one bounded
    /// wait for queue space, or one retry of a failed queue write. It keeps
    /// moving while the ingest thread is alive and not stuck; the systemd
    /// watchdog checks that it does (see [`crate::running`]).
    pub passes: AtomicU64,
}

/// What every append needs besides the record: the queue, the chain, and
/// how to wait for space.
pub struct Appender<'a> {
    /// The queue.
    pub writer: &'a mut QueueWriter,
    /// The chain.
    pub sealer: &'a mut Sealer,
    /// Stops a wait for queue space.
    pub stop: &'a CancellationToken,
    /// Counters.
    pub stats: &'a IngestStats,
}

impl Appender<'_> {
    /// Runs `append` until it is not refused for space, waiting while the
    /// queue is full. The outer error stops the input; the inner one is the
    /// append's own.
    fn waiting<T>(
        &mut self,
        need: usize,
        mut append: impl FnMut(&mut QueueWriter, &mut Sealer) -> Result<T, QueueError>,
    ) -> Result<Result<T, QueueError>, InputError> {
        loop {
            match append(self.writer, self.sealer) {
                Err(QueueError::Full { .. }) => {
                    self.stats.full_waits.fetch_add(1, Ordering::Relaxed);
                    loop {
                        let room = self
                            .writer
                            .wait_for_space(need as u64 + 64, Duration::from_millis(200))
                            .map_err(sink_error)?;
                        if room {
                            break;
                        }
                        self.stats.passes.fetch_add(1, Ordering::Relaxed);
                        if self.stop.is_cancelled() {
                            return Err(InputError::Stopped);
                        }
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// Appends a position-only record.
    pub fn position(&mut self, stream: &[u8], position: &[u8]) -> Result<(), InputError> {
        let need = stream.len() + position.len();
        self.waiting(need, |w, _| w.append(stream, position, b""))?
            .map(|_| ())
            .map_err(sink_error)
    }

    /// Seals the canonical bytes `payload` and appends them with their
    /// chain link; the chain moves only if the append succeeds. `Ok(None)`:
    /// the record is too large for the queue, and nothing moved.
    pub fn sealed(
        &mut self,
        stream: &[u8],
        position: &[u8],
        payload: &[u8],
    ) -> Result<Option<u64>, InputError> {
        let link = self.sealer.link(payload);
        let need = stream.len() + position.len() + payload.len() + 64;
        match self.waiting(need, |w, s| s.append(w, stream, position, payload, link))? {
            Ok(id) => Ok(Some(id)),
            Err(QueueError::TooLarge { .. }) => Ok(None),
            Err(e) => Err(sink_error(e)),
        }
    }

    /// Seals and queues a heartbeat event (see [`crate::seal::heartbeat`]).
    pub fn heartbeat(
        &mut self,
        mut ev: AuditEvent,
        payload: &mut Vec<u8>,
    ) -> Result<(), InputError> {
        ev.seq = Some(self.writer.next_id());
        payload.clear();
        canonical::encode_into(&ev, payload);
        // Under the chain stream the record's position is the new head,
        // which the sealer fills in.
        if self.sealed(CHAIN_STREAM, b"", payload)?.is_none() {
            return Err(InputError::Sink(
                "a heartbeat does not fit a queue record".into(),
            ));
        }
        self.stats.heartbeats.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn sink_error(e: QueueError) -> InputError {
    InputError::Sink(e.to_string())
}

/// The [`Sink`] the inputs write into, for one input's pass.
pub struct IngestSink<'a> {
    /// The queue and the chain.
    pub out: Appender<'a>,
    /// This input's parser.
    pub parser: &'a mut Parser,
    /// Shared filter chain.
    pub filters: &'a FilterChain,
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
    /// Events sealed in this pass.
    pub sealed: u64,
}

impl IngestSink<'_> {
    /// Writes the position-only records for streams whose last line was dropped.
    pub fn flush_dropped(&mut self) -> Result<(), InputError> {
        let pending: Vec<(Vec<u8>, Vec<u8>)> = self.dropped_positions.drain().collect();
        for (stream, position) in pending {
            self.out.position(&stream, &position)?;
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

impl IngestSink<'_> {
    /// Stamps, filters, seals and queues one event whose line(s) end at
    /// `position` in `stream`; `raw_len` is the bytes it was made of (for the
    /// truncation fallback). `observed_ts` and `source` are the caller's.
    fn queue(
        &mut self,
        stream: &[u8],
        position: &[u8],
        mut ev: AuditEvent,
        raw_len: usize,
    ) -> Result<(), InputError> {
        ev.agent_id = Some(self.agent_id.to_string());
        if ev.is_unparsed() {
            self.out.stats.unparsed.fetch_add(1, Ordering::Relaxed);
        }
        if let Verdict::Drop { .. } = self.filters.apply(&mut ev) {
            self.out.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if stream != NO_POSITION {
                self.dropped_positions
                    .insert(stream.to_vec(), position.to_vec());
            }
            return Ok(());
        }
        if !self.dropped_positions.is_empty() {
            self.dropped_positions.remove(stream);
        }
        // The queue record id is the event's seq: unique and increasing per
        // queue identity, which is what the collector deduplicates on.
        ev.seq = Some(self.out.writer.next_id());
        self.payload.clear();
        canonical::encode_into(&ev, self.payload);
        if self.out.sealed(stream, position, self.payload)?.is_none() {
            // Regression: a line of control bytes encoded past the record
            // limit, the error stopped ingest, and the same line stopped it
            // again after every restart. Keep what can be kept, flagged. The
            // refused event did not move the chain; the reduced one is sealed
            // from the same head.
            tracing::warn!(source = ?ev.source, bytes = raw_len, "event too large for a queue record; storing it truncated");
            reduce(&mut ev, raw_len / 8);
            self.payload.clear();
            canonical::encode_into(&ev, self.payload);
            if self.out.sealed(stream, position, self.payload)?.is_none() {
                return Err(InputError::Sink(
                    "even the truncated event exceeds the queue's max_record_bytes".into(),
                ));
            }
        }
        self.sealed += 1;
        self.out.stats.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The `source` text for `path` (`input:path`, or the input's name for
    /// inputs without files), cached.
    fn source_for(&mut self, path: Option<&std::path::Path>) {
        let key = path.unwrap_or(std::path::Path::new(""));
        if self.source_cache.0 != key || self.source_cache.1.is_empty() {
            *self.source_cache = (
                key.to_path_buf(),
                match path {
                    Some(p) => format!("{}:{}", self.input, p.display()),
                    None => self.input.to_string(),
                },
            );
        }
    }
}

impl Sink for IngestSink<'_> {
    fn line(&mut self, line: Line<'_>) -> Result<(), InputError> {
        if self.parser.groups_lines() {
            // Several lines make one event (auditd): see grouped.rs.
            return self.grouped_line(line);
        }
        let now = Timestamp::now_utc();
        let mut ev = self.parser.parse_at(line.bytes, now);
        ev.flags.insert(line.flags);
        ev.observed_ts = Some(now);
        match line.peer {
            Some((key, addr)) => {
                ev.fields.insert(key.into(), addr.to_string());
                ev.source = Some(format!("{}:{}", self.input, addr.ip()));
            }
            None => {
                self.source_for(line.path);
                ev.source = Some(self.source_cache.1.clone());
            }
        }
        self.queue(line.stream, line.position, ev, line.bytes.len())
    }

    fn position(&mut self, stream: &[u8], position: &[u8]) -> Result<(), InputError> {
        // A group of lines still pending for the stream takes the position
        // with it; recording it now would skip the group after a crash.
        if self.parser.defer_position(stream, position) {
            return Ok(());
        }
        self.out.position(stream, position)
    }

    fn forget(&mut self, stream: &[u8]) {
        self.flush_forgotten(stream);
        self.dropped_positions.remove(stream);
        self.out.writer.forget(stream);
    }

    fn last_id(&self) -> u64 {
        self.out.writer.next_id() - 1
    }
}

mod grouped;
#[cfg(test)]
mod tests;
