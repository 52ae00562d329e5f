//! The write side: buffering appends, group commit, rotation, rollback.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::cipher::SegmentCipher;
use super::format::{self, EventRecord};
use super::index::{self, Builder, Entry, IndexMeta};
use super::recover::{self, advance};
use super::{Active, Sealed, SegmentConfig, Shared};
use crate::store::{NewEvent, StoreError, StoreWriter, Watermark};

/// A segment appends go to: its committed part and what is buffered.
struct Target {
    no: u64,
    /// Bodies are sealed (the segment's format version 3 or 5).
    encrypted: bool,
    /// Linked event records may be written (format version 4 or 5).
    linked: bool,
    path: PathBuf,
    /// Open once the file exists (created by a commit).
    file: Option<File>,
    /// Committed length (0 before the file exists).
    len: u64,
    /// Buffered bytes, written at `len` by the next commit.
    buf: Vec<u8>,
    /// Index entries of the buffered events.
    entries: Vec<Entry>,
    /// Dictionaries of the whole segment (values of discarded appends stay;
    /// they are simply unused).
    builder: Builder,
    /// Dictionary values readers do not know yet.
    unpublished: Vec<(usize, Box<str>)>,
}

impl Target {
    fn end(&self) -> u64 {
        self.len + self.buf.len() as u64
    }
}

/// The store's writer; see [`StoreWriter`] and the module docs.
pub struct SegmentWriter {
    shared: Arc<Shared>,
    segment_bytes: u64,
    /// Durable watermarks.
    marks: HashMap<String, Watermark>,
    /// Watermarks of buffered events.
    pending: HashMap<String, Watermark>,
    /// Segments rotated away since the last commit, oldest first.
    sealing: Vec<Target>,
    /// Where appends go (`None` before the first segment exists).
    current: Option<Target>,
    /// Set by a failed fsync; see the module docs.
    poisoned: Option<String>,
    next_no: u64,
    /// Leaf index of the next committed event (committed events so far).
    next_leaf: u64,
    /// Leaf index the next append gets.
    pending_leaf: u64,
    /// The store's lock (see `recover::lock_store`), held while the writer lives.
    _lock: File,
}

impl SegmentWriter {
    pub(super) fn new(
        shared: Arc<Shared>,
        config: SegmentConfig,
        marks: HashMap<String, Watermark>,
        builder: Builder,
        (next_no, next_leaf): (u64, u64),
        lock: File,
    ) -> Result<Self, StoreError> {
        let current = match shared.lock().active.as_ref() {
            Some(a) => {
                let path = recover::segment_path(&shared.dir, a.no);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| StoreError::io(&path, e))?;
                let mut head = [0u8; format::HEADER_LEN];
                let linked = std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0).is_ok()
                    && format::is_linked(&head);
                Some(Target {
                    no: a.no,
                    encrypted: a.encrypted,
                    linked,
                    path,
                    file: Some(file),
                    len: a.len,
                    buf: Vec::new(),
                    entries: Vec::new(),
                    builder,
                    unpublished: Vec::new(),
                })
            }
            None => None,
        };
        Ok(SegmentWriter {
            shared,
            segment_bytes: config.segment_bytes,
            marks,
            pending: HashMap::new(),
            sealing: Vec::new(),
            current,
            poisoned: None,
            next_no,
            next_leaf,
            pending_leaf: next_leaf,
            _lock: lock,
        })
    }

    /// The cipher of the records appended to `t`.
    fn cipher<'k>(keys: Option<&'k auditship_crypt::Keyring>, t: &Target) -> SegmentCipher<'k> {
        match keys {
            Some(k) if t.encrypted => SegmentCipher::sealed(k, t.no),
            _ => SegmentCipher::plain(t.no),
        }
    }

    /// Whether appends must start a new segment although `t` has room: its
    /// bodies are in the clear and the store now encrypts, or the reverse,
    /// or it is a segment of an earlier build that cannot hold linked
    /// records (which that build would take for damage).
    fn wrong_mode(&self, t: &Target) -> bool {
        t.encrypted != self.shared.keys.is_some() || !t.linked
    }

    /// Starts segment `next_no` in the buffer: header and snapshot.
    fn rotate(&mut self) -> Result<(), StoreError> {
        let no = self.next_no;
        let keys = self.shared.keys.clone();
        let cipher = SegmentCipher::for_writing(keys.as_deref(), no);
        let mut snapshot = self.marks.clone();
        snapshot.extend(self.pending.iter().map(|(k, v)| (k.clone(), *v)));
        let mut buf = Vec::with_capacity(64 << 10);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        buf.extend_from_slice(&format::header(no, now, cipher.encrypted()));
        let path = recover::segment_path(&self.shared.dir, no);
        if let Err(e) = format::encode_snapshot(&mut buf, &snapshot, self.pending_leaf, &cipher) {
            let why = format!("cannot encrypt a record: {e}");
            tracing::error!(why, "store: refusing further writes until restart");
            self.poisoned = Some(why.clone());
            return Err(StoreError::Poisoned(why));
        }
        self.next_no += 1;
        let t = Target {
            no,
            encrypted: cipher.encrypted(),
            linked: true,
            path,
            file: None,
            len: 0,
            buf,
            entries: Vec::new(),
            builder: Builder::default(),
            unpublished: Vec::new(),
        };
        if let Some(old) = self.current.replace(t) {
            self.sealing.push(old);
        }
        Ok(())
    }

    /// Advances the pending watermark of `agent` to `(queue, seq)` with
    /// chain head `head`.
    fn note(&mut self, agent: &str, queue: u64, seq: u64, head: auditship_core::Hash) {
        if !self.pending.contains_key(agent) {
            if let Some(&w) = self.marks.get(agent) {
                self.pending.insert(agent.to_string(), w);
            }
        }
        advance(&mut self.pending, agent, queue, seq, head);
    }

    fn check(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            Some(why) => Err(StoreError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Undoes a failed commit: truncates touched files to their committed
    /// length, removes the files it created, keeps the pre-commit target.
    fn roll_back(&mut self, created: &[PathBuf]) -> Result<(), String> {
        let mut targets: Vec<Target> = self.sealing.drain(..).collect();
        targets.extend(self.current.take());
        let mut keep = None;
        for mut t in targets {
            if created.contains(&t.path) || t.file.is_none() {
                if t.file.is_some() {
                    fs::remove_file(&t.path)
                        .map_err(|e| format!("cannot remove {}: {e}", t.path.display()))?;
                }
                self.next_no = self.next_no.min(t.no);
                continue;
            }
            if let Some(f) = &t.file {
                f.set_len(t.len)
                    .and_then(|_| f.sync_data())
                    .map_err(|e| format!("cannot truncate {}: {e}", t.path.display()))?;
            }
            t.buf.clear();
            t.entries.clear();
            self.next_no = t.no + 1;
            keep = Some(t);
        }
        if !created.is_empty() {
            recover::sync_dir(&self.shared.dir)
                .map_err(|e| format!("cannot fsync {}: {e}", self.shared.dir.display()))?;
        }
        self.current = keep;
        self.pending.clear();
        self.pending_leaf = self.next_leaf;
        Ok(())
    }

    fn write_all(&mut self, created: &mut Vec<PathBuf>) -> Result<(), (StoreError, bool)> {
        let dir = self.shared.dir.clone();
        for t in self.sealing.iter_mut().chain(self.current.iter_mut()) {
            if t.buf.is_empty() {
                continue;
            }
            if t.file.is_none() {
                let f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&t.path)
                    .map_err(|e| (StoreError::io(&t.path, e), false))?;
                t.file = Some(f);
                created.push(t.path.clone());
            }
            let Some(f) = &t.file else { continue };
            f.write_all_at(&t.buf, t.len)
                .map_err(|e| (StoreError::io(&t.path, e), false))?;
            f.sync_data()
                .map_err(|e| (StoreError::io(&t.path, e), true))?;
        }
        if !created.is_empty() {
            recover::sync_dir(&dir).map_err(|e| (StoreError::io(&dir, e), true))?;
        }
        Ok(())
    }

    /// Writes the index of a segment being sealed, best effort.
    fn seal(&self, t: &Target, committed: &[Arc<Vec<Entry>>]) -> IndexMeta {
        let mut parts: Vec<&[Entry]> = committed.iter().map(|c| c.as_slice()).collect();
        parts.push(&t.entries);
        let path = recover::index_path(&self.shared.dir, t.no);
        let len = t.end();
        let keys = self.shared.keys.as_deref().filter(|_| t.encrypted);
        index::write(&path, t.no, len, &t.builder.dicts, &parts, keys).unwrap_or_else(|e| {
            tracing::error!(file = %path.display(), error = %e, "store: cannot write a segment index; it is rebuilt when needed");
            index::summarize(&parts)
        })
    }
}

impl StoreWriter for SegmentWriter {
    fn watermarks(&self) -> &HashMap<String, Watermark> {
        &self.marks
    }

    fn size(&self) -> u64 {
        self.next_leaf
    }

    fn append(
        &mut self,
        agent_id: &str,
        queue: u64,
        events: &[NewEvent<'_>],
    ) -> Result<(), StoreError> {
        self.check()?;
        let fixed = format::EVENT_FIXED + agent_id.len();
        let too_big = events
            .iter()
            .find(|e| fixed + e.payload.len() > format::MAX_BODY);
        if agent_id.len() > usize::from(u16::MAX) || too_big.is_some() {
            let path = self
                .current
                .as_ref()
                .map(|t| t.path.clone())
                .unwrap_or_default();
            return Err(StoreError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "event or agent id exceeds the store's record limit (16 MiB, 64 KiB id)",
                ),
            ));
        }
        let mut last = None;
        let keys = self.shared.keys.clone();
        for ev in events {
            let full = self
                .current
                .as_ref()
                .is_none_or(|t| t.end() >= self.segment_bytes || self.wrong_mode(t));
            if full {
                if let Some((seq, head)) = last {
                    // The new segment's snapshot covers this batch so far.
                    self.note(agent_id, queue, seq, head);
                }
                self.rotate()?;
            }
            let Some(t) = self.current.as_mut() else {
                continue;
            };
            let cipher = Self::cipher(keys.as_deref(), t);
            let offset = t.end() as u32;
            let rec = EventRecord {
                agent: agent_id,
                queue,
                seq: ev.seq,
                ts_millis: ev.key.ts_millis,
                leaf: self.pending_leaf,
                payload: ev.payload,
            };
            let len = match format::encode_event(
                &mut t.buf,
                &rec,
                &cipher,
                t.linked.then_some((&ev.hash, &ev.prev)),
            ) {
                Ok(n) => n as u32,
                Err(e) => {
                    // Only a failing random source gets here. Part of the
                    // batch may be buffered: refuse to commit any of it.
                    let why = format!("cannot encrypt a record: {e}");
                    tracing::error!(why, "store: refusing further writes until restart");
                    self.poisoned = Some(why.clone());
                    return Err(StoreError::Poisoned(why));
                }
            };
            self.pending_leaf += 1;
            let unpublished = &mut t.unpublished;
            let entry = t
                .builder
                .entry(&ev.key, offset, len, |f, v| unpublished.push((f, v.into())));
            t.entries.push(entry);
            last = Some((ev.seq, ev.hash));
        }
        if let Some((seq, head)) = last {
            self.note(agent_id, queue, seq, head);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.check()?;
        let nothing =
            self.sealing.is_empty() && self.current.as_ref().is_none_or(|t| t.buf.is_empty());
        if nothing {
            self.pending.clear();
            self.pending_leaf = self.next_leaf;
            return Ok(());
        }
        let mut created = Vec::new();
        if let Err((err, fsync_failed)) = self.write_all(&mut created) {
            if fsync_failed {
                let why = format!("fsync failed, the state on disk is unknown: {err}");
                tracing::error!(error = %err, "store: fsync failed; refusing further writes until restart");
                self.poisoned = Some(why.clone());
                return Err(StoreError::Poisoned(why));
            }
            if let Err(why) = self.roll_back(&created) {
                tracing::error!(why, "store: rollback after a failed write failed; refusing further writes until restart");
                self.poisoned = Some(why);
            }
            return Err(err);
        }
        // Durable: seal rotated segments, then publish.
        let committed_active = {
            let st = self.shared.lock();
            st.active.as_ref().map(|a| (a.no, a.chunks.clone()))
        };
        let mut sealed = Vec::new();
        for t in &self.sealing {
            let committed = match &committed_active {
                Some((no, chunks)) if *no == t.no => chunks.as_slice(),
                _ => &[],
            };
            let index = self.seal(t, committed);
            sealed.push(Sealed {
                no: t.no,
                len: t.end(),
                index,
                encrypted: t.encrypted,
            });
        }
        let mut new_events = 0u64;
        {
            let mut st = self.shared.lock();
            for (t, s) in self.sealing.iter().zip(&sealed) {
                new_events += t.entries.len() as u64;
                if st.active.as_ref().is_some_and(|a| a.no == t.no) {
                    st.active = None;
                }
                st.sealed_bytes += s.len + s.index.bytes;
            }
            if !sealed.is_empty() {
                let mut all = Vec::with_capacity(st.sealed.len() + sealed.len());
                all.extend_from_slice(&st.sealed);
                all.extend_from_slice(&sealed);
                st.sealed = Arc::new(all);
            }
            if let Some(t) = &mut self.current {
                let active = st.active.get_or_insert_with(|| Active {
                    no: t.no,
                    ..Active::default()
                });
                active.extend(&t.entries);
                for (f, v) in t.unpublished.drain(..) {
                    let id = t.builder.dicts[f].get(&v).unwrap_or(0);
                    active.dicts[f].insert(v, id);
                }
                active.len = t.end();
                new_events += t.entries.len() as u64;
            }
            st.events += new_events;
        }
        self.sealing.clear();
        if let Some(t) = &mut self.current {
            t.len = t.end();
            t.buf.clear();
            t.entries.clear();
        }
        for (k, v) in self.pending.drain() {
            self.marks.insert(k, v);
        }
        self.next_leaf = self.pending_leaf;
        Ok(())
    }
}
