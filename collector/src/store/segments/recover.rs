//! Reading segment files back: scanning with quarantine and torn-tail
//! truncation, rebuilding an index from a segment, and the recovery that
//! [`super::open`] runs.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use auditship_crypt::Keyring;

use super::cipher::{key_error, SegmentCipher};
use super::format::{self, Body, EventRecord, Scan};
use super::index::{self, Builder, Entry, IndexFile, IndexMeta};
use super::{Quarantined, Recovery};
use crate::store::{IndexKey, StoreError, Watermark};
use auditship_core::Hash;

/// Path of segment `no`'s file.
pub fn segment_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("{no:020}.seg"))
}

/// Path of segment `no`'s index.
pub fn index_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("{no:020}.idx"))
}

/// Segment numbers in `dir`, ascending. Leftover temporary index files, and
/// segment rewrites a crash interrupted, are removed on the way.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let e = e.map_err(|e| StoreError::io(dir, e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".idx.tmp") || name.ends_with(super::rewrite::TEMP_SUFFIX) {
            let _ = fs::remove_file(e.path());
        }
        if let Some(no) = name
            .strip_suffix(".seg")
            .and_then(|n| (n.len() == 20).then(|| n.parse::<u64>().ok()).flatten())
        {
            out.push(no);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Sets the watermark of `agent` after an event `(queue, seq)` whose chain
/// hash is `head`: the highest seq of the agent's latest queue (and that
/// event's hash); a new queue replaces the watermark.
pub fn advance(
    marks: &mut HashMap<String, Watermark>,
    agent: &str,
    queue: u64,
    seq: u64,
    head: Hash,
) {
    let new = Watermark { queue, seq, head };
    match marks.get_mut(agent) {
        Some(w) if w.queue == queue => {
            if seq > w.seq {
                *w = new;
            }
        }
        Some(w) => *w = new,
        None => {
            marks.insert(agent.to_string(), new);
        }
    }
}

/// The chain hash in a stored (sealed) payload; zeros if it has none.
pub fn head_of(payload: &[u8]) -> Hash {
    auditship_core::seal::unseal(payload).map_or([0; 32], |u| u.hash)
}

/// Copies `bytes` to the quarantine directory, best effort: the store opens
/// even when they cannot be set aside.
pub fn quarantine(qdir: &Path, no: u64, offset: u64, bytes: &[u8], reason: &str) -> Quarantined {
    let file = qdir.join(format!("{no:020}-{offset}.bin"));
    let copied = fs::create_dir_all(qdir).and_then(|_| fs::write(&file, bytes));
    if let Err(e) = &copied {
        tracing::error!(file = %file.display(), error = %e, "store: cannot copy corrupt bytes aside");
    }
    tracing::error!(
        segment = no,
        offset,
        bytes = bytes.len(),
        reason,
        "store: corrupt record quarantined; the rest of the store is intact"
    );
    Quarantined {
        segment: no,
        offset,
        bytes: bytes.len() as u64,
        file: copied.ok().map(|_| file),
        reason: reason.to_string(),
    }
}

/// What a scan of one segment found.
pub struct Scanned {
    /// The file's length after any truncation.
    pub len: u64,
    /// Whether its bodies are sealed.
    pub encrypted: bool,
    /// The snapshot, if the first record is one, and the segment's first
    /// leaf index.
    pub snapshot: Option<(HashMap<String, Watermark>, u64)>,
    /// `(agent, queue, seq, hash)` of every event, in order.
    pub marks: Vec<(String, u64, u64, Hash)>,
    /// Leaf index of the last event.
    pub last_leaf: Option<u64>,
    /// Index entries and dictionaries of every event.
    pub index: Builder,
    /// The entries.
    pub entries: Vec<Entry>,
}

/// Scans segment `no`. A bad header returns `Ok(None)` (the file is moved to
/// quarantine, or removed when it is too short to hold anything). In the
/// newest segment, bad bytes with no valid record after them are a torn tail
/// and are cut off; anywhere else they are quarantined. An encrypted
/// segment with a record under a key not in `keys` (or with no keys) is an
/// error: nothing is cut or quarantined for it.
pub fn scan_segment(
    dir: &Path,
    qdir: &Path,
    no: u64,
    newest: bool,
    recovery: &mut Recovery,
    keys: Option<&Keyring>,
) -> Result<Option<Scanned>, StoreError> {
    let path = segment_path(dir, no);
    let data = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
    if let Some(v) = format::other_version(&data) {
        return Err(StoreError::io(
            &path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "segment format version {v}; this collector reads version {} only \
                     (version 1 stores predate tamper evidence and are not migrated)",
                    format::VERSION
                ),
            ),
        ));
    }
    if !format::header_ok(&data, no) {
        if newest && data.len() < format::HEADER_LEN {
            // A creation the crash interrupted: nothing in it was committed.
            recovery.truncated_bytes += data.len() as u64;
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            return Ok(None);
        }
        recovery
            .quarantined
            .push(quarantine(qdir, no, 0, &data, "bad segment header"));
        fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        return Ok(None);
    }
    let cipher = if data.len() == format::HEADER_LEN {
        // Nothing to open: a header-only segment needs no key.
        SegmentCipher::plain(no)
    } else {
        SegmentCipher::for_header(&data, no, keys, &path)?
    };
    let mut out = Scanned {
        encrypted: format::is_encrypted(&data),
        len: data.len() as u64,
        snapshot: None,
        marks: Vec::new(),
        last_leaf: None,
        index: Builder::default(),
        entries: Vec::new(),
    };
    let mut at = format::HEADER_LEN;
    let mut first = true;
    let mut scratch = Vec::new();
    loop {
        match format::scan(&data, at, &cipher, &mut scratch) {
            Scan::End => break,
            Scan::Locked { key, .. } => return Err(key_error(&path, Some(key), keys)),
            Scan::Record { body, next } => {
                match body {
                    Body::Snapshot(m, leaf) if first => out.snapshot = Some((m, leaf)),
                    Body::Snapshot(..) => {}
                    Body::Expired(ev) => {
                        out.marks
                            .push((ev.agent.to_string(), ev.queue, ev.seq, ev.hash));
                        out.last_leaf = Some(ev.leaf);
                    }
                    Body::Event(ev) => {
                        out.marks.push((
                            ev.agent.to_string(),
                            ev.queue,
                            ev.seq,
                            head_of(ev.payload),
                        ));
                        out.last_leaf = Some(ev.leaf);
                        let entry = entry_of(&mut out.index, &ev, at as u32, (next - at) as u32);
                        out.entries.push(entry);
                    }
                }
                first = false;
                at = next;
            }
            Scan::Corrupt { resume, reason } => {
                if newest && resume == data.len() {
                    let cut = (data.len() - at) as u64;
                    tracing::warn!(
                        segment = no,
                        offset = at,
                        bytes = cut,
                        reason,
                        "store: torn tail truncated"
                    );
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| StoreError::io(&path, e))?;
                    f.set_len(at as u64)
                        .and_then(|_| f.sync_all())
                        .map_err(|e| StoreError::io(&path, e))?;
                    recovery.truncated_bytes += cut;
                    out.len = at as u64;
                    break;
                }
                recovery.quarantined.push(quarantine(
                    qdir,
                    no,
                    at as u64,
                    &data[at..resume],
                    reason,
                ));
                first = false;
                at = resume;
            }
        }
    }
    Ok(Some(out))
}

/// The index entry of a stored event: the indexed fields are taken from the
/// payload again (ingest extracted them the same way), the time from the
/// record.
pub fn entry_of(b: &mut Builder, ev: &EventRecord<'_>, offset: u32, len: u32) -> Entry {
    let view = auditship_core::wire::EventView::parse(ev.payload).ok();
    let key = match &view {
        Some(v) => IndexKey {
            ts_millis: ev.ts_millis,
            host: v.host.as_deref(),
            actor: v.actor.user.as_deref(),
            action: &v.action,
            category: &v.category,
            outcome: &v.outcome,
            src_ip: v.src_ip,
        },
        None => IndexKey {
            ts_millis: ev.ts_millis,
            host: None,
            actor: None,
            action: "",
            category: "",
            outcome: "",
            src_ip: None,
        },
    };
    b.entry(&key, offset, len, |_, _| {})
}

/// Rebuilds the index of sealed segment `no` from its bytes and writes it
/// (best effort: a query can use the returned entries either way).
pub fn rebuild_index(
    dir: &Path,
    qdir: &Path,
    no: u64,
    recovery: &mut Recovery,
    keys: Option<&Keyring>,
) -> Result<Option<(Scanned, IndexMeta)>, StoreError> {
    let Some(s) = scan_segment(dir, qdir, no, false, recovery, keys)? else {
        return Ok(None);
    };
    let path = index_path(dir, no);
    let seal = keys.filter(|_| s.encrypted);
    let meta = match index::write(&path, no, s.len, &s.index.dicts, &[&s.entries], seal) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "store: cannot write a rebuilt index; queries rebuild it again");
            let mut m = index::summarize(&[&s.entries]);
            m.bytes = 0;
            m
        }
    };
    tracing::info!(
        segment = no,
        entries = meta.entries,
        "store: index rebuilt from the segment"
    );
    Ok(Some((s, meta)))
}

/// A sealed segment's index, opened or rebuilt: the segment's length,
/// the index summary, and whether the segment is encrypted.
pub fn sealed_index(
    dir: &Path,
    qdir: &Path,
    no: u64,
    recovery: &mut Recovery,
    keys: Option<&Arc<Keyring>>,
) -> Result<Option<(u64, IndexMeta, bool)>, StoreError> {
    use std::io::Read;
    let path = segment_path(dir, no);
    let mut file = File::open(&path).map_err(|e| StoreError::io(&path, e))?;
    let len = file.metadata().map_err(|e| StoreError::io(&path, e))?.len();
    let mut head = [0u8; format::HEADER_LEN];
    let encrypted = file.read_exact(&mut head).is_ok() && format::is_encrypted(&head);
    match IndexFile::open(&index_path(dir, no), no, len, encrypted, keys) {
        Ok(f) => Ok(Some((len, f.meta, encrypted))),
        Err(why) => {
            tracing::info!(segment = no, why, "store: index unusable, rebuilding");
            recovery.indexes_rebuilt += 1;
            Ok(rebuild_index(dir, qdir, no, recovery, keys.map(|k| &**k))?
                .map(|(s, m)| (s.len, m, s.encrypted)))
        }
    }
}

/// Takes the store's lock (`<store>/LOCK`, an exclusive `flock`) for as
/// long as the returned file is open: one collector, or one offline store
/// command, at a time. The kernel releases it when the process dies.
pub fn lock_store(store_dir: &Path) -> Result<File, StoreError> {
    let path = store_dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |e| {
            StoreError::io(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!("the store is in use by another process (a running collector?): {e}"),
                ),
            )
        },
    )?;
    Ok(file)
}

/// fsyncs a directory, so that files created or removed in it survive.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
