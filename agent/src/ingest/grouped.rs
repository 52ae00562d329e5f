//! Ingest for parsers that make one event of several lines (`format =
//! "auditd"`).
//!
//! The parser keeps, per stream, the lines of the event still being read
//! (see `auditship_plugins::parsers::auditd::group` for the grouping rule).
//! It lives with the input, across passes; the [`IngestSink`] around it is
//! rebuilt every pass and only moves finished events into the queue.
//!
//! # Positions
//!
//! The queue is the source of truth for positions, so the invariant is:
//! *while a group of a stream is pending, no position at or after its
//! first line is recorded for that stream.* It holds because
//!
//! * a line is never queued on its own: the event of a group is queued with
//!   the position after the group's last line, when the group ends;
//! * there is one pending group per stream, and the parser emits whatever a
//!   line completes in reading order (the pending group before the line
//!   that ended it, an `unparsed` line after the group before it);
//! * a position that comes without a line (a blank line, the skipped rest of
//!   a truncated one) while a group is pending becomes the group's position
//!   instead of being recorded ([`Sink::position`](crate::input::file::Sink));
//! * an event a filter drops records its position through
//!   `dropped_positions` at the end of the pass, as for any format: that
//!   position is after the dropped group's last line, hence before the
//!   first line of any group pending for the stream;
//! * groups of different streams are independent: a stream's positions only
//!   ever describe its own file.
//!
//! After a crash the pending lines, never covered by a recorded position,
//! are read again and grouped again: nothing is lost or duplicated.
//!
//! # Idle timeout, shutdown and rotation
//!
//! auditd does not write the end-of-event record to its log, so the last
//! event of a burst ends by silence: [`IngestSink::flush_idle`] runs after
//! every input's read in each pass of the ingest loop and queues the groups
//! of streams silent for the input's `group_timeout` (default 1 s). At a
//! clean shutdown pending groups are *not* queued: their lines may be
//! followed by more records of the same event that were not read yet, and
//! since no position covers them they are simply read again, whole, at the
//! next start. When a file is gone and drained and the input forgets its
//! stream, the stream's pending group is queued first: no more lines can
//! join it, and its lines could not be read again.

use std::time::Instant;

use auditship_core::Timestamp;
use auditship_plugins::{Grouped, StreamLine};

use super::IngestSink;
use crate::input::file::{InputError, Line};

impl IngestSink<'_> {
    /// A line for a grouping parser: it joins its stream's group, and the
    /// events it completes are queued.
    pub(super) fn grouped_line(&mut self, line: Line<'_>) -> Result<(), InputError> {
        let now = Timestamp::now_utc();
        self.source_for(line.path);
        let mut done = Vec::new();
        self.parser.push_line(
            StreamLine {
                stream: line.stream,
                bytes: line.bytes,
                flags: line.flags,
                position: line.position,
                source: &self.source_cache.1,
            },
            Instant::now(),
            now,
            &mut done,
        );
        self.queue_grouped(done)
    }

    /// Queues the events of streams silent for the idle timeout. The ingest
    /// loop calls it after each input's read, every pass; it does nothing
    /// for parsers that do not group lines.
    pub fn flush_idle(&mut self) -> Result<(), InputError> {
        if !self.parser.groups_lines() {
            return Ok(());
        }
        let mut done = Vec::new();
        self.parser.flush_idle(Instant::now(), &mut done);
        self.queue_grouped(done)
    }

    /// Before a stream is forgotten: queues its pending group (its file is
    /// gone and drained) and drops the parser's state for it.
    pub(super) fn flush_forgotten(&mut self, stream: &[u8]) {
        if !self.parser.groups_lines() {
            return;
        }
        let mut done = Vec::new();
        self.parser.flush_stream(stream, &mut done);
        if let Err(e) = self.queue_grouped(done) {
            // Only when the agent is stopping or its queue failed; the file
            // is gone, so its last event cannot be read again.
            tracing::warn!(error = %e, "the last event of a removed file could not be queued");
        }
        self.parser.forget_stream(stream);
    }

    fn queue_grouped(&mut self, done: Vec<Grouped>) -> Result<(), InputError> {
        for g in done {
            let mut ev = g.event;
            ev.observed_ts = Some(g.observed);
            let raw_len = ev.raw.len();
            self.queue(&g.stream, &g.position, ev, raw_len)?;
        }
        Ok(())
    }
}
