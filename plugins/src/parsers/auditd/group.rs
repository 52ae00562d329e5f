//! Grouping the records of one event, per stream, without ever letting a
//! position run ahead of a record that is not yet emitted.
//!
//! # The rule
//!
//! Each stream (one file) has at most one *pending* group: the records read
//! so far of the event identified by (`node`, `SECS.MILLIS:SERIAL`). A group
//! ends, and becomes one event, when
//!
//! 1. an `EOE` record of the event arrives (it is part of the group);
//! 2. a record of another event arrives (that record starts the next group);
//! 3. a line that is not an audit record arrives (it becomes an `unparsed`
//!    event of its own, emitted after the group);
//! 4. the stream has had no new line for the idle timeout (default 1 s, see
//!    [`DEFAULT_GROUP_TIMEOUT`]): auditd does not write `EOE` to its log, so
//!    the last event of a burst, and every single-record event (`USER_*`,
//!    `ADD_USER`…), ends this way when nothing follows it;
//! 5. the group would grow past [`MAX_GROUP_BYTES`] (a pathological event;
//!    the rest continues as a new group flagged `audit_continued`);
//! 6. the caller flushes it: the end of input (`auditship parse`), or the
//!    stream's file is gone for good (`forget`).
//!
//! Records of two events interleaved in one stream therefore give more than
//! two events: with `A1 B1 A2`, `A1` is emitted when `B1` arrives and `A2`
//! becomes an event of its own, flagged `audit_continued` (it has the same
//! `audit_id` as the event emitted before it). Holding `A` open across `B`
//! would need a position before `B` for `B`'s event, and none is safe (see
//! below). The kernel writes the records of one event together, so this is
//! rare; it is counted, not hidden.
//!
//! # Positions
//!
//! The agent's queue is the source of truth for positions: each event is
//! queued with the position after the line it came from, and a restart
//! resumes every stream after its last durable record. A group's event
//! carries the position *after its last line*. The lines of the pending
//! group are not queued, and no position at or after its first line may be
//! recorded before it is emitted, or a crash would skip them. This module
//! guarantees that by construction: there is only one pending group per
//! stream, everything that emits for a stream flushes that stream's group
//! first (cases 2, 3 and 6), the groups and lines of a stream come out in
//! the order they were read, and a position that comes without a line
//! while a group is pending joins the group ([`Grouper::defer_position`]).
//! After a crash (or a clean stop, which leaves pending groups unemitted)
//! the pending lines are read again: no loss, no duplicate.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use auditship_core::{Flags, Timestamp};

use super::record;

/// How long a stream may stay silent before its pending group is emitted.
pub const DEFAULT_GROUP_TIMEOUT: Duration = Duration::from_secs(1);

/// Largest group, in bytes of raw lines, before it is cut (see rule 5).
/// Small enough that the event, with its decoded fields, fits a queue
/// record of the default size.
pub const MAX_GROUP_BYTES: usize = 128 << 10;

/// How many emitted events per stream are remembered to flag a
/// continuation.
const RECENT: usize = 8;

/// One line of a stream, with what the caller needs back with its event.
#[derive(Clone, Copy, Debug)]
pub struct StreamLine<'a> {
    /// The stream (file) it came from; groups never span streams.
    pub stream: &'a [u8],
    /// The line, without its newline.
    pub bytes: &'a [u8],
    /// Framing flags (`split`, `truncated`, `no_newline`).
    pub flags: Flags,
    /// The position after the line (opaque).
    pub position: &'a [u8],
    /// The event's `source` (input and path).
    pub source: &'a str,
}

/// A finished group, or a line that is not an audit record.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The stream.
    pub stream: Vec<u8>,
    /// The position after its last line.
    pub position: Vec<u8>,
    /// `source` of its last line.
    pub source: String,
    /// When its last line was read.
    pub observed: Timestamp,
    /// Union of its lines' framing flags.
    pub flags: Flags,
    /// Its lines joined by `\n`, exactly as read.
    pub buf: Vec<u8>,
    /// Where each line starts in `buf`.
    pub starts: Vec<usize>,
    /// Whether it is a group of records (else one line that is not one).
    pub record: bool,
    /// Whether it continues an event already emitted from this stream.
    pub continued: bool,
}

impl Finished {
    /// Its lines, without the separators (and without a trailing `\r`).
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.starts.iter().enumerate().map(|(i, &s)| {
            let end = self.starts.get(i + 1).map_or(self.buf.len(), |e| e - 1);
            let line = &self.buf[s..end];
            line.strip_suffix(b"\r").unwrap_or(line)
        })
    }
}

#[derive(Clone, Debug)]
struct Pending {
    node: Vec<u8>,
    id: String,
    group: Finished,
    /// The last line was a piece of a split line.
    last_split: bool,
    last_at: Instant,
}

/// Per-stream pending groups. See the module docs.
#[derive(Clone, Debug)]
pub struct Grouper {
    timeout: Duration,
    pending: HashMap<Vec<u8>, Pending>,
    /// The events each stream emitted last, to flag a continuation.
    recent: HashMap<Vec<u8>, VecDeque<(Vec<u8>, String)>>,
}

impl Grouper {
    /// A grouper that emits a stream's group after `timeout` of silence.
    pub fn new(timeout: Duration) -> Self {
        Grouper {
            timeout,
            pending: HashMap::new(),
            recent: HashMap::new(),
        }
    }

    /// The idle timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Takes one line; whatever it completes is appended to `out`, in order.
    /// `now` is for the idle timeout, `observed` becomes the event's
    /// `observed_ts`.
    pub fn push(
        &mut self,
        line: &StreamLine<'_>,
        now: Instant,
        observed: Timestamp,
        out: &mut Vec<Finished>,
    ) {
        let Some(h) = record::header(line.bytes) else {
            if line.flags.contains(Flags::SPLIT) {
                if let Some(p) = self.pending.get_mut(line.stream) {
                    if p.last_split {
                        // The next piece of a record split by the framer.
                        p.group.buf.extend_from_slice(line.bytes);
                        note(p, line, now, observed);
                        return;
                    }
                }
            }
            self.flush_stream(line.stream, out);
            out.push(Finished {
                stream: line.stream.to_vec(),
                position: line.position.to_vec(),
                source: line.source.to_string(),
                observed,
                flags: line.flags,
                buf: line.bytes.to_vec(),
                starts: vec![0],
                record: false,
                continued: false,
            });
            return;
        };
        let node = h.node.unwrap_or(b"");
        if let Some(p) = self.pending.get(line.stream) {
            let same = p.node == node && p.id == h.id;
            if !same || p.group.buf.len() + line.bytes.len() > MAX_GROUP_BYTES {
                self.flush_stream(line.stream, out);
            }
        }
        let p = match self.pending.get_mut(line.stream) {
            Some(p) => {
                p.group.buf.push(b'\n');
                p
            }
            None => {
                let continued = self
                    .recent
                    .get(line.stream)
                    .is_some_and(|r| r.iter().any(|(n, id)| n == node && id == h.id));
                self.pending
                    .entry(line.stream.to_vec())
                    .or_insert_with(|| Pending {
                        node: node.to_vec(),
                        id: h.id.to_string(),
                        group: Finished {
                            stream: line.stream.to_vec(),
                            position: Vec::new(),
                            source: String::new(),
                            observed,
                            flags: Flags::default(),
                            buf: Vec::with_capacity(1024),
                            starts: Vec::with_capacity(8),
                            record: true,
                            continued,
                        },
                        last_split: false,
                        last_at: now,
                    })
            }
        };
        p.group.starts.push(p.group.buf.len());
        p.group.buf.extend_from_slice(line.bytes);
        note(p, line, now, observed);
        if h.rtype == "EOE" {
            self.flush_stream(line.stream, out);
        }
    }

    /// Emits the groups of streams silent for the timeout.
    pub fn flush_idle(&mut self, now: Instant, out: &mut Vec<Finished>) {
        if self.pending.is_empty() {
            return;
        }
        let idle: Vec<Vec<u8>> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.last_at) >= self.timeout)
            .map(|(s, _)| s.clone())
            .collect();
        for s in idle {
            self.flush_stream(&s, out);
        }
    }

    /// Emits `stream`'s pending group, if any.
    pub fn flush_stream(&mut self, stream: &[u8], out: &mut Vec<Finished>) {
        if let Some(p) = self.pending.remove(stream) {
            let recent = self.recent.entry(stream.to_vec()).or_default();
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back((p.node, p.id));
            out.push(p.group);
        }
    }

    /// Emits every pending group (end of input).
    pub fn flush_all(&mut self, out: &mut Vec<Finished>) {
        let mut streams: Vec<Vec<u8>> = self.pending.keys().cloned().collect();
        streams.sort();
        for s in streams {
            self.flush_stream(&s, out);
        }
    }

    /// A position that comes without a line (a blank line, the skipped rest
    /// of a truncated one): if `stream` has a pending group, it becomes the
    /// group's position and `true` is returned; otherwise the caller records
    /// it.
    pub fn defer_position(&mut self, stream: &[u8], position: &[u8]) -> bool {
        match self.pending.get_mut(stream) {
            Some(p) => {
                p.group.position.clear();
                p.group.position.extend_from_slice(position);
                true
            }
            None => false,
        }
    }

    /// Whether `stream` has a pending group.
    pub fn has_pending(&self, stream: &[u8]) -> bool {
        self.pending.contains_key(stream)
    }

    /// Drops everything kept for `stream` (flush it first to keep its group).
    pub fn forget(&mut self, stream: &[u8]) {
        self.pending.remove(stream);
        self.recent.remove(stream);
    }
}

/// Records what a line adds to its group besides its bytes.
fn note(p: &mut Pending, line: &StreamLine<'_>, now: Instant, observed: Timestamp) {
    p.last_split = line.flags.contains(Flags::SPLIT);
    p.last_at = now;
    let g = &mut p.group;
    g.flags.insert(line.flags);
    g.observed = observed;
    g.position.clear();
    g.position.extend_from_slice(line.position);
    if g.source != line.source {
        g.source.clear();
        g.source.push_str(line.source);
    }
}
