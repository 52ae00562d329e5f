//! The file input: tails files matched by globs, across rotation.
//!
//! # Identity
//!
//! A file is identified by its (device, inode) and a fingerprint of its
//! first bytes (see [`identity`]). Positions live in the queue: each line is
//! handed to the [`Sink`] with the file's stream key and the position after
//! it, and after a restart the input resumes from the positions the queue
//! recovered. A saved position is used only if the file still starts with
//! the fingerprinted bytes and the marker bytes before the offset are still
//! there; otherwise the file is read from the beginning (a duplicate is
//! possible, a loss is not).
//!
//! # Rotation and other file events
//!
//! * **rename + create**: the renamed file keeps its inode, so it keeps its
//!   stream; it is drained to its end. The new file at the old path is a new
//!   inode and is read from the beginning.
//! * **copytruncate**: the original is truncated in place (its size falls
//!   below the offset): it is read again from 0. The copy is a new inode
//!   whose full fingerprint equals the original's: it continues from how far
//!   the original had been read, so lines between the last read and the copy
//!   are delivered once and nothing is read twice. The copy must match the
//!   include globs (e.g. `access.log*`) to be picked up; otherwise lines
//!   written between the last read and the truncation are lost, which is
//!   inherent to copytruncate.
//! * **truncation in place**: the same as the original of a copytruncate.
//! * **deletion while open, or renamed out of the globs**: the open handle is
//!   drained to its end; after `rotate_wait` with no new data the handle is
//!   released (so deleted files do not keep their disk space) and the stream
//!   is forgotten in the queue.
//! * **files shorter than the fingerprint**: fingerprinted over the bytes
//!   they have, together with their inode, and upgraded to a full
//!   fingerprint when they grow.
//! * **a last line without a newline**: held back until the newline arrives,
//!   or emitted flagged `no_newline` after `partial_line_timeout` without
//!   new data.
//! * **over-long lines**: split or truncated by the framer, flagged; never
//!   stall the input.
//! * **`read_from`**: applies to files found at startup that have no saved
//!   position. Files that appear later (new rotations) are always read from
//!   the beginning.
//!
//! Discovery uses inotify (through `notify`) on the glob base directories to
//! wake up at once, and a periodic rescan as a fallback. One read buffer is
//! shared by all files; each file keeps only its unfinished last line.

mod discover;
pub mod identity;
mod read;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditship_plugins::framing::{Framer, Overlong};
use globset::{GlobSet, GlobSetBuilder};

use discover::{glob_base, start_watcher, walk};
use identity::{ghost_key, is_ghost_key, parse_stream_key, stream_key, FilePosition, Fingerprint};
use read::read_marker;

pub use super::{Bell, Input, InputError, InputStats, Line, Sink};

/// Where to start in a file seen for the first time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// From its first byte.
    #[default]
    Beginning,
    /// From its current end (only files present at startup).
    End,
}

/// Settings of one file input.
#[derive(Clone, Debug)]
pub struct FileInputConfig {
    /// Input name; part of every stream key.
    pub name: String,
    /// Glob patterns of files to tail.
    pub include: Vec<String>,
    /// Glob patterns to leave out.
    pub exclude: Vec<String>,
    /// Start of files seen for the first time.
    pub read_from: ReadFrom,
    /// Bytes fingerprinted at the start of each file.
    pub fingerprint_bytes: usize,
    /// Longest line.
    pub max_line_bytes: usize,
    /// Split or truncate longer lines.
    pub overlong: Overlong,
    /// Emit a last line without newline after this long without new data.
    pub partial_line_timeout: Duration,
    /// Keep a deleted or renamed-away file open this long after its last data.
    pub rotate_wait: Duration,
    /// Rescan the globs at least this often.
    pub rescan_interval: Duration,
}

impl FileInputConfig {
    /// Defaults for an input named `name` tailing `include`.
    pub fn new(name: &str, include: Vec<String>) -> Self {
        FileInputConfig {
            name: name.to_string(),
            include,
            exclude: Vec::new(),
            read_from: ReadFrom::Beginning,
            fingerprint_bytes: 256,
            max_line_bytes: 64 * 1024,
            overlong: Overlong::Split,
            partial_line_timeout: Duration::from_secs(5),
            rotate_wait: Duration::from_secs(5),
            rescan_interval: Duration::from_secs(1),
        }
    }
}

struct Tracked {
    path: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
    stream: Vec<u8>,
    fp: Fingerprint,
    /// Byte after the last delivered line.
    offset: u64,
    /// Bytes after `offset` read but not yet a complete line.
    partial: Vec<u8>,
    /// The last bytes before `offset` (what a saved position's marker holds).
    marker: Vec<u8>,
    framer: Framer,
    last_data: Instant,
    /// When the file stopped being at a matched path (deleted or renamed away).
    gone_since: Option<Instant>,
    /// New and shorter than the fingerprint: its identity is not settled yet
    /// (it may be a copy still being written). Holds the size last seen.
    unsettled: Option<u64>,
    /// A copy of this file was found while it was still live: it is not read
    /// until it is truncated (copytruncate) or `rotate_wait` passes (a plain copy).
    frozen_since: Option<Instant>,
    /// This file looks like a copy of a file read up to `offset`: it is read
    /// from there once it has grown that far and the bytes before `offset`
    /// are the original's (the marker). Otherwise, or if it does not get
    /// there within `rotate_wait`, it is not a copy and is read from the start.
    copy_pending: Option<(Instant, Vec<u8>)>,
}

/// A file truncated in place: how far it had been read, for its copy. Kept
/// in the queue under a ghost key so it survives a crash.
struct Ghost {
    key: Vec<u8>,
    fp: Fingerprint,
    offset: u64,
    marker: Vec<u8>,
    at: Instant,
}

/// A tracked file's offset and (dev, inode).
type OffsetAndKey = (u64, (u64, u64));

/// How long a ghost waits for its copy to appear.
const GHOST_TTL: Duration = Duration::from_secs(300);

/// Counts for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileInputStats {
    /// Files currently open.
    pub tracked: usize,
    /// Lines handed to the sink.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Truncations seen.
    pub truncations: u64,
    /// Copies recognised as continuations (copytruncate).
    pub copies: u64,
    /// Files released after deletion or rotation.
    pub released: u64,
}

/// Tails the files of one input. See the module docs.
pub struct FileInput {
    cfg: FileInputConfig,
    include: GlobSet,
    exclude: GlobSet,
    bases: Vec<(PathBuf, bool)>,
    files: HashMap<(u64, u64), Tracked>,
    /// Saved positions not yet matched to a file (only until the first scan ends).
    saved: BTreeMap<(u64, u64), (Vec<u8>, FilePosition)>,
    ghosts: Vec<Ghost>,
    /// Files released after they left the globs (renamed away), by
    /// (dev, inode): if one comes back, it resumes instead of starting over.
    released: HashMap<(u64, u64), (Vec<u8>, FilePosition, Instant)>,
    first_scan: bool,
    last_scan: Option<Instant>,
    /// Set by the watcher when files may have appeared or gone.
    rescan: Arc<AtomicBool>,
    _watcher: Option<notify::RecommendedWatcher>,
    buf: Vec<u8>,
    pos_buf: Vec<u8>,
    stats: FileInputStats,
}

const READ_CHUNK: usize = 256 * 1024;

impl FileInput {
    /// Builds the input. `positions` are the queue's recovered positions (all
    /// inputs; this input picks its own by stream-key prefix).
    pub fn new(
        cfg: FileInputConfig,
        positions: &BTreeMap<Vec<u8>, Vec<u8>>,
        bell: Bell,
    ) -> Result<Self, InputError> {
        let build = |patterns: &[String]| {
            let mut b = GlobSetBuilder::new();
            for p in patterns {
                let g = globset::GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .map_err(|source| InputError::Glob {
                        input: cfg.name.clone(),
                        pattern: p.clone(),
                        source,
                    })?;
                b.add(g);
            }
            b.build().map_err(|source| InputError::Glob {
                input: cfg.name.clone(),
                pattern: patterns.join(", "),
                source,
            })
        };
        let include = build(&cfg.include)?;
        let exclude = build(&cfg.exclude)?;
        let bases = cfg.include.iter().map(|p| glob_base(p)).collect::<Vec<_>>();
        let saved = positions
            .iter()
            .filter_map(|(k, v)| {
                let id = parse_stream_key(&cfg.name, k)?;
                Some((id, (k.clone(), FilePosition::decode(v)?)))
            })
            .collect();
        let ghosts = positions
            .iter()
            .filter(|(k, _)| is_ghost_key(&cfg.name, k))
            .filter_map(|(k, v)| {
                let p = FilePosition::decode(v)?;
                Some(Ghost {
                    key: k.clone(),
                    fp: p.fp,
                    offset: p.offset,
                    marker: p.marker,
                    at: Instant::now(),
                })
            })
            .collect();
        let rescan = Arc::new(AtomicBool::new(true));
        let watcher = start_watcher(&bases, bell, rescan.clone());
        Ok(FileInput {
            cfg,
            include,
            exclude,
            bases,
            files: HashMap::new(),
            saved,
            ghosts,
            released: HashMap::new(),
            first_scan: true,
            last_scan: None,
            rescan,
            _watcher: watcher,
            buf: Vec::with_capacity(READ_CHUNK + 64 * 1024),
            pos_buf: Vec::with_capacity(64),
            stats: FileInputStats::default(),
        })
    }

    /// The input's name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Counters.
    pub fn stats(&self) -> FileInputStats {
        FileInputStats {
            tracked: self.files.len(),
            ..self.stats
        }
    }

    /// One pass: rescan if due, then read every file, up to `budget` bytes
    /// per file. Returns the bytes read.
    pub fn poll(&mut self, sink: &mut dyn Sink, budget: usize) -> Result<u64, InputError> {
        let woke = self.rescan.swap(false, Ordering::Relaxed);
        let due = self
            .last_scan
            .is_none_or(|t| t.elapsed() >= self.cfg.rescan_interval);
        if woke || due {
            self.scan(sink);
        }
        let mut total = 0;
        let keys: Vec<(u64, u64)> = self.files.keys().copied().collect();
        for key in keys {
            total += self.read_file(key, sink, budget)?;
        }
        Ok(total)
    }

    /// Finds files matching the globs and starts tracking new ones.
    fn scan(&mut self, sink: &mut dyn Sink) {
        self.last_scan = Some(Instant::now());
        let mut seen: HashMap<(u64, u64), PathBuf> = HashMap::new();
        // At the first scan, every other file too: a file read before a
        // restart may have been renamed out of the globs since.
        let mut others: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let mut complete = true;
        for (base, recursive) in self.bases.clone() {
            complete &= walk(&base, recursive, &mut |path| {
                let Ok(m) = std::fs::metadata(path) else {
                    return;
                };
                if !m.is_file() {
                    return;
                }
                let key = (m.dev(), m.ino());
                if self.include.is_match(path) && !self.exclude.is_match(path) {
                    seen.entry(key).or_insert_with(|| path.to_path_buf());
                } else if self.first_scan {
                    others.entry(key).or_insert_with(|| path.to_path_buf());
                }
            });
        }
        // Known files: follow renames, notice disappearance. A scan that
        // could not read a directory proves nothing is gone.
        for (key, t) in self.files.iter_mut() {
            match seen.remove(key) {
                Some(path) => {
                    t.path = path;
                    t.gone_since = None;
                }
                None if complete => {
                    t.gone_since.get_or_insert_with(Instant::now);
                }
                None => {}
            }
        }
        // New files, in a stable order.
        let mut new: Vec<_> = seen.into_iter().collect();
        new.sort_by(|a, b| a.1.cmp(&b.1));
        for ((dev, ino), path) in new {
            self.track(dev, ino, path, sink);
        }
        if self.first_scan {
            self.after_first_scan(others, sink);
        }
        let now = Instant::now();
        let expired: Vec<(u64, u64)> = self
            .released
            .iter()
            .filter(|(_, (_, _, at))| at.elapsed() >= GHOST_TTL)
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            if let Some((stream, _, _)) = self.released.remove(&k) {
                sink.forget(&stream);
            }
        }
        let (live, expired): (Vec<Ghost>, Vec<Ghost>) = std::mem::take(&mut self.ghosts)
            .into_iter()
            .partition(|g| now.duration_since(g.at) < GHOST_TTL);
        self.ghosts = live;
        for g in expired {
            sink.forget(&g.key);
        }
    }

    /// Settles what the first scan after a start leaves open.
    fn after_first_scan(&mut self, others: HashMap<(u64, u64), PathBuf>, sink: &mut dyn Sink) {
        // Files with a saved position that were renamed out of the globs while
        // the agent was down: drain their tail, then release them.
        let renamed: Vec<((u64, u64), PathBuf)> = self
            .saved
            .keys()
            .filter_map(|k| others.get(k).map(|p| (*k, p.clone())))
            .collect();
        for ((dev, ino), path) in renamed {
            self.track(dev, ino, path, sink);
            if let Some(t) = self.files.get_mut(&(dev, ino)) {
                t.gone_since = Some(Instant::now());
            }
        }
        self.first_scan = false;
        // Positions of files not found now: kept a while, in case they return.
        for (k, (stream, p)) in std::mem::take(&mut self.saved) {
            self.released.insert(k, (stream, p, Instant::now()));
        }
        // An original and its copytruncate copy both resumed (a crash came
        // between the copy and the truncation): only the one read furthest is
        // read; the others wait for their truncation, as when the copy was found.
        let mut by_fp: HashMap<Fingerprint, Vec<OffsetAndKey>> = HashMap::new();
        for (k, t) in &self.files {
            if usize::from(t.fp.len) == self.cfg.fingerprint_bytes {
                by_fp.entry(t.fp).or_default().push((t.offset, *k));
            }
        }
        for (_, mut group) in by_fp.into_iter().filter(|(_, g)| g.len() > 1) {
            group.sort();
            group.pop();
            for (_, k) in group {
                if let Some(t) = self.files.get_mut(&k) {
                    t.frozen_since = Some(Instant::now());
                }
            }
        }
    }

    fn track(&mut self, dev: u64, ino: u64, path: PathBuf, sink: &mut dyn Sink) {
        let Ok(file) = File::open(&path) else { return };
        let Ok(meta) = file.metadata() else { return };
        if (meta.dev(), meta.ino()) != (dev, ino) {
            return; // Replaced between scan and open; the next scan sees it.
        }
        let size = meta.len();
        let Ok(fp) = Fingerprint::read(&file, size, self.cfg.fingerprint_bytes) else {
            return;
        };
        let stream = stream_key(&self.cfg.name, dev, ino);
        let full = usize::from(fp.len) == self.cfg.fingerprint_bytes;
        let mut offset = None;
        let known = self
            .saved
            .remove(&(dev, ino))
            .map(|(_, p)| p)
            .or_else(|| self.released.remove(&(dev, ino)).map(|(_, p, _)| p));
        let had_position = known.is_some();
        if let Some(saved) = known {
            if saved.offset <= size && saved.fp.matches(&file, size) && saved.marker_matches(&file)
            {
                offset = Some(saved.offset);
            } else {
                tracing::warn!(path = %path.display(), "file changed since its saved position; reading it from the beginning");
                // It was truncated or replaced while the agent was down; a copy
                // of its old content may still turn up (copytruncate).
                self.add_ghost(saved.fp, saved.offset, &saved.marker, sink);
                offset = Some(0);
            }
        }
        let mut copy_pending = None;
        if offset.is_none() && full {
            if let Some((from, marker)) = self.adopt_copy(fp, (dev, ino), &path) {
                offset = Some(from);
                copy_pending = Some((Instant::now(), marker));
            }
        }
        let unsettled = (offset.is_none() && !full && !self.first_scan).then_some(size);
        // read_from applies only to a file never seen before (no position at all).
        let offset = offset.unwrap_or(match self.cfg.read_from {
            ReadFrom::End if self.first_scan && !had_position => size,
            _ => 0,
        });
        tracing::debug!(path = %path.display(), offset, "tracking file");
        let marker = read_marker(&file, offset);
        if !had_position && copy_pending.is_none() {
            // Record where this new file starts, so that after a crash it is
            // not taken for a file seen for the first time (read_from = "end"
            // would then skip its first lines).
            FilePosition::encode_into(offset, fp, &marker, &mut self.pos_buf);
            let _ = sink.position(&stream, &self.pos_buf);
        }
        self.files.insert(
            (dev, ino),
            Tracked {
                path,
                file,
                dev,
                ino,
                stream,
                fp,
                offset,
                partial: Vec::new(),
                marker,
                framer: Framer::new(self.cfg.max_line_bytes, self.cfg.overlong),
                last_data: Instant::now(),
                gone_since: None,
                unsettled,
                frozen_since: None,
                copy_pending,
            },
        );
    }

    /// Remembers, durably, how far a file with fingerprint `fp` was read
    /// before it was truncated or replaced.
    fn add_ghost(&mut self, fp: Fingerprint, offset: u64, marker: &[u8], sink: &mut dyn Sink) {
        if usize::from(fp.len) < self.cfg.fingerprint_bytes {
            return; // A short fingerprint cannot identify a copy.
        }
        let key = ghost_key(&self.cfg.name, fp);
        FilePosition::encode_into(offset, fp, marker, &mut self.pos_buf);
        // Best effort: if the queue refuses (shutting down), the saved
        // position of the original still tells the next start.
        let _ = sink.position(&key, &self.pos_buf);
        self.ghosts.retain(|g| g.key != key);
        self.ghosts.push(Ghost {
            key,
            fp,
            offset,
            marker: marker.to_vec(),
            at: Instant::now(),
        });
    }

    /// If a file with fingerprint `fp` is a copy of one already read, returns
    /// where to start reading it, and freezes a still-live original so the
    /// two are not both read past that point.
    fn adopt_copy(
        &mut self,
        fp: Fingerprint,
        own: (u64, u64),
        path: &Path,
    ) -> Option<(u64, Vec<u8>)> {
        // Exactly where the original was read up to, even if the copy is still
        // shorter than that (being written): starting at its current end could
        // start in the middle of a line. Whether it really is a copy is
        // checked (the marker) once it has grown that far.
        let (from, marker) = self.copy_source(fp, own)?;
        for t in self.files.values_mut() {
            if t.fp == fp && (t.dev, t.ino) != own {
                t.frozen_since = Some(Instant::now());
            }
        }
        tracing::info!(path = %path.display(), offset = from, "file looks like a copy of one already read (copytruncate); continuing where the original was read up to");
        self.stats.copies += 1;
        Some((from, marker))
    }

    /// How far the original of a copy with fingerprint `fp` was read, and the
    /// bytes just before that point.
    fn copy_source(&self, fp: Fingerprint, own: (u64, u64)) -> Option<(u64, Vec<u8>)> {
        let tracked = self
            .files
            .values()
            .filter(|t| t.fp == fp && (t.dev, t.ino) != own)
            .map(|t| (t.offset, &t.marker));
        let ghosts = self
            .ghosts
            .iter()
            .filter(|g| g.fp == fp)
            .map(|g| (g.offset, &g.marker));
        let saved = self
            .saved
            .iter()
            .filter(|(k, (_, p))| p.fp == fp && **k != own)
            .map(|(_, (_, p))| (p.offset, &p.marker));
        tracked
            .chain(ghosts)
            .chain(saved)
            .max_by_key(|(offset, _)| *offset)
            .map(|(o, m)| (o, m.clone()))
    }
}

impl Input for FileInput {
    fn name(&self) -> &str {
        FileInput::name(self)
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn poll(&mut self, sink: &mut dyn Sink, budget: usize) -> Result<u64, InputError> {
        FileInput::poll(self, sink, budget)
    }

    fn stats(&self) -> InputStats {
        let s = FileInput::stats(self);
        InputStats {
            lines: s.lines,
            bytes: s.bytes,
            files: s.tracked as u64,
            ..InputStats::default()
        }
    }
}

#[cfg(test)]
mod regressions;
#[cfg(test)]
mod tests;
