//! The journald input: follows the systemd journal through `journalctl`.
//!
//! A reader thread runs
//!
//! ```text
//! journalctl --output=json --follow --all --no-pager
//!            [--after-cursor=C --no-tail | --no-tail | --lines=0]
//!            [--directory=D] [--file=GLOB]... [--namespace=NS]
//!            [--unit=U]... [FIELD=value]...
//! ```
//!
//! and hands each output line (one entry) to [`JournaldInput::poll`]
//! through a bounded channel, so a slow queue slows `journalctl` down
//! instead of filling memory. The ingest thread is woken through the
//! [`Bell`] as lines arrive.
//!
//! # Positions
//!
//! Every entry carries its `__CURSOR`, and that cursor is the line's
//! position in the queue (stream key `name \0 J`). After a restart the input
//! continues with `--after-cursor` from the last durable record, so nothing
//! is read twice and nothing is skipped. Without a saved cursor it starts at
//! the beginning of the journal (`read_from = "beginning"`, the default) or
//! at its end (`"end"`).
//!
//! # Failures
//!
//! * `journalctl` cannot be started at all (not installed, not executable):
//!   the agent refuses to start, naming the input and the program.
//! * `journalctl` exits later (the journal was rotated away under it, it was
//!   killed): what it printed is still delivered, and it is started again
//!   after `restart_delay`, continuing after the last entry the thread read
//!   (the channel keeps order, so that is exactly where delivery will be).
//!   Restarts are counted and logged.
//! * The saved cursor is refused ("Failed to seek to cursor", e.g. the
//!   journal was replaced): the cursor is dropped and the journal is read
//!   from the beginning, logged as an error: duplicates are possible, a loss
//!   is not.
//! * An entry longer than `max_line_bytes` is truncated and flagged; it
//!   becomes an `unparsed` event that keeps what was read. If its cursor was
//!   cut off, its position is the previous one (at worst it is read again).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditship_core::Flags;

use super::file::ReadFrom;
use super::{Bell, Input, InputError, InputStats, Line, Sink};

/// Settings of one journald input.
#[derive(Clone, Debug)]
pub struct JournaldConfig {
    /// Input name; part of its stream key.
    pub name: String,
    /// The `journalctl` program.
    pub journalctl: PathBuf,
    /// Only these units (`--unit`).
    pub units: Vec<String>,
    /// Only entries matching these `FIELD=value` terms (journalctl matches:
    /// the same field ORed, different fields ANDed).
    pub matches: Vec<String>,
    /// Read this journal directory instead of the system journal.
    pub directory: Option<PathBuf>,
    /// Read these journal files (globs allowed) instead of the system journal.
    pub files: Vec<String>,
    /// Read this journal namespace.
    pub namespace: Option<String>,
    /// Where to start without a saved cursor.
    pub read_from: ReadFrom,
    /// Longest entry, in bytes of JSON.
    pub max_line_bytes: usize,
    /// Wait before starting `journalctl` again after it exits.
    pub restart_delay: Duration,
}

impl JournaldConfig {
    /// Defaults for an input named `name` following the system journal.
    pub fn new(name: &str) -> Self {
        JournaldConfig {
            name: name.to_string(),
            journalctl: "journalctl".into(),
            units: Vec::new(),
            matches: Vec::new(),
            directory: None,
            files: Vec::new(),
            namespace: None,
            read_from: ReadFrom::Beginning,
            max_line_bytes: 1 << 20,
            restart_delay: Duration::from_secs(1),
        }
    }

    /// The arguments for a `journalctl` starting after `cursor`.
    fn args(&self, cursor: Option<&str>) -> Vec<String> {
        let mut a: Vec<String> = ["--output=json", "--follow", "--all", "--no-pager"]
            .map(String::from)
            .into();
        match (cursor, self.read_from) {
            // --follow alone shows only the last 10 entries: --no-tail
            // makes it show everything after the cursor.
            (Some(c), _) => a.extend([format!("--after-cursor={c}"), "--no-tail".into()]),
            (None, ReadFrom::Beginning) => a.push("--no-tail".into()),
            (None, ReadFrom::End) => a.push("--lines=0".into()),
        }
        if let Some(d) = &self.directory {
            a.push(format!("--directory={}", d.display()));
        }
        a.extend(self.files.iter().map(|f| format!("--file={f}")));
        if let Some(ns) = &self.namespace {
            a.push(format!("--namespace={ns}"));
        }
        a.extend(self.units.iter().map(|u| format!("--unit={u}")));
        a.extend(self.matches.iter().cloned());
        a
    }
}

/// The stream key of journald input `name`.
pub fn stream_key(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.extend_from_slice(b"\0J");
    k
}

/// Lines buffered between the reader thread and the ingest thread.
const CHANNEL_LINES: usize = 4096;

/// One line from the reader thread: the entry and whether it was cut.
type Entry = (Vec<u8>, bool);

/// Follows the journal. See the module docs.
pub struct JournaldInput {
    name: String,
    stream: Vec<u8>,
    lines: Receiver<Entry>,
    /// The last position handed on (the cursor of an entry whose own was cut).
    last_cursor: Vec<u8>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: InputStats,
}

/// What the reader thread and the input share.
struct Shared {
    child: Mutex<Option<Child>>,
    stop: AtomicBool,
    restarts: AtomicU64,
}

impl JournaldInput {
    /// Starts following. `positions` are the queue's recovered positions
    /// (all inputs; this one picks its own stream key). Fails if
    /// `journalctl` cannot be started.
    pub fn new(
        cfg: JournaldConfig,
        positions: &BTreeMap<Vec<u8>, Vec<u8>>,
        bell: Bell,
    ) -> Result<Self, InputError> {
        let stream = stream_key(&cfg.name);
        let cursor = positions
            .get(&stream)
            .and_then(|c| String::from_utf8(c.clone()).ok());
        let child = spawn(&cfg, cursor.as_deref())?;
        tracing::info!(input = %cfg.name, cursor = cursor.as_deref().unwrap_or("-"), "following the journal");
        let shared = Arc::new(Shared {
            child: Mutex::new(None),
            stop: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
        });
        let (tx, lines) = mpsc::sync_channel(CHANNEL_LINES);
        let thread = {
            let (cfg, shared) = (cfg.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("journald-{}", cfg.name))
                .spawn(move || follow(cfg, child, cursor, shared, tx, bell))
                .expect("spawning the journald reader thread")
        };
        Ok(JournaldInput {
            name: cfg.name,
            stream,
            lines,
            last_cursor: Vec::new(),
            shared,
            thread: Some(thread),
            stats: InputStats::default(),
        })
    }
}

impl Input for JournaldInput {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "journald"
    }

    fn poll(&mut self, sink: &mut dyn Sink, budget: usize) -> Result<u64, InputError> {
        let mut read = 0u64;
        while read < budget as u64 {
            let Ok((line, cut)) = self.lines.try_recv() else {
                break;
            };
            if let Some(c) = cursor_of(&line) {
                self.last_cursor.clear();
                self.last_cursor.extend_from_slice(c);
            }
            let flags = if cut {
                Flags::TRUNCATED
            } else {
                Flags::default()
            };
            sink.line(Line {
                stream: &self.stream,
                position: &self.last_cursor,
                bytes: &line,
                flags,
                path: None,
                peer: None,
            })?;
            read += line.len() as u64 + 1;
            self.stats.lines += 1;
        }
        self.stats.bytes += read;
        Ok(read)
    }

    fn stats(&self) -> InputStats {
        InputStats {
            restarts: self.shared.restarts.load(Ordering::Relaxed),
            ..self.stats
        }
    }
}

impl Drop for JournaldInput {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(mut child) = self.shared.child.lock().expect("child lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The thread may be blocked on a full channel: make room until it
        // notices the stop and exits.
        while let Some(t) = self.thread.take() {
            while !t.is_finished() {
                let _ = self.lines.recv_timeout(Duration::from_millis(10));
                if let Some(mut child) = self.shared.child.lock().expect("child lock").take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            let _ = t.join();
        }
    }
}

/// The value of `"__CURSOR":"…"` in an entry. Cursors are plain ASCII
/// (`s=…;i=…;b=…;m=…;t=…;x=…`), never escaped in JSON.
fn cursor_of(line: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"__CURSOR\":\"";
    let at = memchr::memmem::find(line, KEY)? + KEY.len();
    let len = line[at..].iter().position(|&b| b == b'"')?;
    Some(&line[at..at + len])
}

/// Starts `journalctl` in a process group of its own, so a Ctrl-C meant
/// for the agent does not stop it under the agent's feet: the agent stops
/// it when the input is dropped. (Under systemd a SIGKILLed agent's
/// `journalctl` is stopped with the rest of the unit's cgroup; elsewhere it
/// exits at its next write into the closed pipe.)
fn spawn(cfg: &JournaldConfig, cursor: Option<&str>) -> Result<Child, InputError> {
    use std::os::unix::process::CommandExt;
    Command::new(&cfg.journalctl)
        .args(cfg.args(cursor))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| InputError::Spawn {
            input: cfg.name.clone(),
            program: cfg.journalctl.display().to_string(),
            source,
        })
}

/// The reader thread: reads entries from `journalctl`, restarting it when
/// it exits, until the input is dropped.
fn follow(
    cfg: JournaldConfig,
    first: Child,
    mut cursor: Option<String>,
    shared: Arc<Shared>,
    tx: SyncSender<Entry>,
    bell: Bell,
) {
    let mut next = Some(first);
    loop {
        let mut child = match next.take() {
            Some(c) => c,
            None => match spawn(&cfg, cursor.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot restart journalctl; trying again");
                    if !pause(&shared, cfg.restart_delay) {
                        return;
                    }
                    continue;
                }
            },
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        *shared.child.lock().expect("child lock") = Some(child);
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr)
                .take(64 << 10)
                .read_to_string(&mut text);
            text
        });
        let mut reader = BufReader::with_capacity(256 << 10, stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let cut = match read_entry(&mut reader, &mut buf, cfg.max_line_bytes) {
                Ok(Some(cut)) => cut,
                Ok(None) | Err(_) => break,
            };
            if buf.is_empty() {
                continue;
            }
            if let Some(c) = cursor_of(&buf) {
                cursor = Some(String::from_utf8_lossy(c).into_owned());
            }
            let mut entry = (std::mem::take(&mut buf), cut);
            loop {
                match tx.try_send(entry) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => {
                        entry = back;
                        bell.ring();
                        if shared.stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            bell.ring();
        }
        let status = shared
            .child
            .lock()
            .expect("child lock")
            .take()
            .map(|mut c| c.wait());
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let errors = errors.join().unwrap_or_default();
        let errors = errors.trim();
        shared.restarts.fetch_add(1, Ordering::Relaxed);
        if errors.contains("Failed to seek to cursor") {
            tracing::error!(input = %cfg.name, cursor = cursor.as_deref().unwrap_or("-"), journalctl = errors, "the saved journal cursor is refused; reading the journal from the beginning (entries may be delivered twice)");
            cursor = None;
        } else {
            tracing::warn!(input = %cfg.name, status = ?status, journalctl = errors, "journalctl exited; starting it again");
        }
        if !pause(&shared, cfg.restart_delay) {
            return;
        }
    }
}

/// Reads one line into `buf` (without its newline), keeping at most `max`
/// bytes and discarding the rest. `Ok(Some(cut))` when a line was read,
/// `Ok(None)` at end of output.
fn read_entry(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    let mut cut = false;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        cut |= take > room;
        r.consume(take + usize::from(done));
        if done {
            return Ok(Some(cut));
        }
    }
}

/// Sleeps `d` unless the input stops meanwhile; false if it stopped.
fn pause(shared: &Shared, d: Duration) -> bool {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until {
        if shared.stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(d));
    }
    !shared.stop.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_found_wherever_journalctl_put_it() {
        let e = br#"{"MESSAGE":"x","__CURSOR":"s=ab;i=1;b=cd;m=3e8;t=6;x=d7","_PID":"1"}"#;
        assert_eq!(cursor_of(e), Some(&b"s=ab;i=1;b=cd;m=3e8;t=6;x=d7"[..]));
        assert_eq!(cursor_of(br#"{"MESSAGE":"x"}"#), None);
        // Cut off inside the cursor: no cursor rather than half of one.
        assert_eq!(cursor_of(br#"{"__CURSOR":"s=ab;i"#), None);
    }

    #[test]
    fn long_entries_are_cut_and_the_rest_of_the_line_skipped() {
        let text = b"0123456789\nshort\nlast-without-newline";
        let mut r = BufReader::with_capacity(4, &text[..]);
        let mut buf = Vec::new();
        assert_eq!(read_entry(&mut r, &mut buf, 6).unwrap(), Some(true));
        assert_eq!(buf, b"012345");
        buf.clear();
        assert_eq!(read_entry(&mut r, &mut buf, 6).unwrap(), Some(false));
        assert_eq!(buf, b"short");
        buf.clear();
        assert_eq!(read_entry(&mut r, &mut buf, 100).unwrap(), Some(false));
        assert_eq!(buf, b"last-without-newline");
        buf.clear();
        assert_eq!(read_entry(&mut r, &mut buf, 100).unwrap(), None);
    }

    #[test]
    fn the_arguments_resume_after_the_cursor_or_start_where_configured() {
        let mut c = JournaldConfig::new("j");
        c.units = vec!["ssh.service".into()];
        c.matches = vec!["_UID=0".into()];
        c.files = vec!["/tmp/x/*.journal".into()];
        let a = c.args(Some("s=1;i=2"));
        assert!(a.contains(&"--after-cursor=s=1;i=2".to_string()));
        // Regression: without --no-tail, --follow showed only 10 entries
        // after the cursor, and every restart skipped the rest.
        assert!(a.contains(&"--no-tail".to_string()));
        assert!(a.contains(&"--unit=ssh.service".to_string()));
        assert!(a.contains(&"--file=/tmp/x/*.journal".to_string()));
        assert_eq!(a.last().map(String::as_str), Some("_UID=0"));
        assert!(c.args(None).contains(&"--no-tail".to_string()));
        c.read_from = ReadFrom::End;
        assert!(c.args(None).contains(&"--lines=0".to_string()));
    }
}
