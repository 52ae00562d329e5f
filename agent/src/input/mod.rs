//! Inputs: where lines come from.
//!
//! Every input implements [`Input`]: the ingest thread calls
//! [`Input::poll`] on each input in turn, and the input hands what it has
//! to a [`Sink`], one [`Line`] at a time, each with the *stream key* and
//! the *position* it came from. The sink parses, filters, seals and queues
//! the line together with its position, so the queue is the only place
//! positions are kept: after a restart an input resumes from the positions
//! the queue recovered (see `crate::queue`). Positions are opaque to
//! everything but the input that made them.
//!
//! | input      | stream key              | position                        |
//! |------------|-------------------------|---------------------------------|
//! | `file`     | `name \0 dev ino`       | offset, fingerprint and marker  |
//! | `journald` | `name \0 J`             | the journal cursor              |
//! | `http`     | [`NO_POSITION`]         | none                            |
//! | `syslog`   | [`NO_POSITION`]         | none                            |
//!
//! Network inputs have nothing to resume: a sender either got its answer
//! or sends again. Their lines use the stream [`NO_POSITION`], so their
//! records carry only the chain head, which every record implies anyway,
//! and add nothing to the queue's positions or to the snapshot that opens
//! each segment (see [`NO_POSITION`]). They name the peer a line came from
//! in [`Line::peer`].
//!
//! Inputs whose lines arrive on their own (inotify, a child process's
//! output, a network listener) ring a shared [`Bell`], so the ingest thread
//! wakes at once instead of at its next poll. When the agent stops, the
//! ingest thread calls [`Input::stop`] on every input and then polls once
//! more, so what a network input already accepted is queued, not lost.

pub mod file;
pub mod http;
pub mod journald;
pub mod net;
pub mod syslog;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use auditship_core::Flags;

/// Input failures.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A glob pattern does not compile.
    #[error("input {input:?}: invalid glob {pattern:?}: {source}")]
    Glob {
        /// Input name.
        input: String,
        /// The pattern.
        pattern: String,
        /// Why.
        source: globset::Error,
    },
    /// A program the input runs (`journalctl`) cannot be started.
    #[error("input {input:?}: cannot start {program}: {source}")]
    Spawn {
        /// Input name.
        input: String,
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A network input cannot listen on its address.
    #[error("input {input:?}: cannot listen on {address}: {source}")]
    Listen {
        /// Input name.
        input: String,
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A network input's TLS certificate, key or CA, or its token file.
    #[error("input {input:?}: {message}")]
    Setup {
        /// Input name.
        input: String,
        /// What is wrong, naming the file.
        message: String,
    },
    /// The sink refused a line (the agent is shutting down).
    #[error("stopped")]
    Stopped,
    /// The sink failed (the queue could not take the line).
    #[error("{0}")]
    Sink(String),
}

/// One line read by an input.
pub struct Line<'a> {
    /// Stream key (see the module docs).
    pub stream: &'a [u8],
    /// Encoded position after the line.
    pub position: &'a [u8],
    /// The line, without newline.
    pub bytes: &'a [u8],
    /// Framing flags.
    pub flags: Flags,
    /// Path the file had when it was read; `None` for inputs without files.
    pub path: Option<&'a Path>,
    /// The network peer the line came from, and the `fields` key to keep
    /// its address under (e.g. `"syslog_peer"`); `source` then names the
    /// input and the peer's IP address. `None` for local inputs.
    pub peer: Option<(&'static str, SocketAddr)>,
}

/// The stream of lines that have no position (network inputs). It is the
/// queue's reserved chain stream: a record under it carries the chain head
/// as its position, which the queue keeps anyway, so such lines add no
/// stream and no bytes to the queue's positions or snapshots, and a line a
/// filter drops leaves no position-only record.
pub const NO_POSITION: &[u8] = crate::seal::CHAIN_STREAM;

/// Where lines go: the agent's ingest (parse, filter, queue).
pub trait Sink {
    /// Takes one line. May block (a full queue); an error stops the input.
    fn line(&mut self, line: Line<'_>) -> Result<(), InputError>;
    /// Records a position that comes with no line (a ghost of a truncated file).
    fn position(&mut self, stream: &[u8], position: &[u8]) -> Result<(), InputError>;
    /// The stream is gone and drained; its position is no longer needed.
    fn forget(&mut self, stream: &[u8]);
    /// The id of the last queue record appended so far. Every line handed
    /// to [`Sink::line`] before the call that was queued has an id at or
    /// below it, so an input that answers its senders waits until this id
    /// is durable (see [`crate::queue::Durability`]).
    fn last_id(&self) -> u64;
}

/// Counters every input keeps, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputStats {
    /// Lines handed to the sink.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Files currently open (file inputs).
    pub files: u64,
    /// Times the input's source failed and was restarted (journald).
    pub restarts: u64,
    /// Requests accepted (http) or connections accepted (syslog TCP).
    pub requests: u64,
    /// Network connections currently open (http, syslog TCP).
    pub connections: u64,
    /// Requests refused for now with 503 (http: the queue is full, the
    /// answer timed out, the agent is stopping), or connections refused
    /// over `max_connections` (syslog).
    pub rejected: u64,
    /// Requests refused as malformed or too large (http 400, 413), and
    /// malformed frames (syslog; still delivered, flagged or unparsed).
    pub invalid: u64,
    /// Requests without the right token (http 401), or TLS handshakes
    /// that failed.
    pub unauthorized: u64,
    /// Messages dropped because the ingest side was full (syslog UDP only;
    /// nothing else ever drops).
    pub dropped: u64,
}

/// A source of lines, polled by the ingest thread.
pub trait Input: Send {
    /// The input's name (unique in the config).
    fn name(&self) -> &str;
    /// The input's type, as in the config (`"file"`, `"journald"`…).
    fn kind(&self) -> &'static str;
    /// Hands what is available to `sink`, up to about `budget` bytes, and
    /// returns the bytes read. Must not block waiting for new data.
    fn poll(&mut self, sink: &mut dyn Sink, budget: usize) -> Result<u64, InputError>;
    /// Counters.
    fn stats(&self) -> InputStats;
    /// The agent is stopping: stop taking new data (close listeners), so
    /// that the one last [`poll`](Input::poll) after this hands over
    /// everything already accepted. Inputs that read from files or a child
    /// process need nothing here.
    fn stop(&mut self) {}
}

/// Wakes the ingest thread when an input may have something to read.
/// Cloned into every input that learns of new data on its own.
#[derive(Clone, Default)]
pub struct Bell(Arc<(Mutex<bool>, Condvar)>);

impl Bell {
    /// A bell nobody has rung.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rings: the next (or current) [`Bell::wait`] returns at once.
    pub fn ring(&self) {
        let (rung, cv) = &*self.0;
        *rung.lock().expect("bell lock") = true;
        cv.notify_all();
    }

    /// Waits until the bell rings or `timeout` passes, and clears it.
    /// Returns whether it rang.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (rung, cv) = &*self.0;
        let guard = rung.lock().expect("bell lock");
        let (mut guard, _) = cv
            .wait_timeout_while(guard, timeout, |r| !*r)
            .expect("bell lock");
        std::mem::take(&mut *guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_before_the_wait_is_not_lost() {
        let bell = Bell::new();
        bell.ring();
        assert!(bell.wait(Duration::from_secs(5)));
        // Cleared by the wait.
        assert!(!bell.wait(Duration::from_millis(10)));
    }

    #[test]
    fn a_ring_from_another_thread_wakes_the_waiter() {
        let bell = Bell::new();
        let b = bell.clone();
        let t = std::thread::spawn(move || b.wait(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        bell.ring();
        assert!(t.join().unwrap());
    }
}
