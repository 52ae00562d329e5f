//! Rewriting a sealed segment: retention turns event records into expired
//! records (see [`crate::retention`] for when and why).
//!
//! Only sealed segments are rewritten, never the active one, and only by
//! one retention run at a time (the caller serialises runs). Every record
//! that is not expired is copied byte for byte, checksum included; corrupt
//! ranges are copied as they are, so offline verification still names
//! them. The snapshot record and the header stay as they were.
//!
//! # Crash safety
//!
//! ```text
//! 1. <no>.seg.rewrite   written whole, fdatasync          (the original is untouched)
//! 2. index of the new bytes built in memory               (no lock held)
//! 3. under the files lock (queries and leaf walks wait):
//!      remove <no>.idx
//!      rename <no>.seg.rewrite -> <no>.seg, fsync segments/
//!      write <no>.idx (temporary file renamed into place, not fsynced)
//!      publish the new length and index to readers
//! ```
//!
//! A crash before the rename leaves the original segment and a leftover
//! `.seg.rewrite`, which the next open removes. A crash after it leaves the
//! new segment with no index (or one the kernel had not written back),
//! which the next open rebuilds from the segment, as for any sealed
//! segment. There is no state in which a reader sees a half-written
//! segment: the rename is atomic, and readers hold the files lock shared
//! for the whole of a query, so they never combine the old index with the
//! new file. A query that paged with a cursor into a rewritten segment may
//! skip or repeat events of that segment on its next page (entry numbers
//! shift when records leave the index).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use auditship_core::seal;

use super::cipher::{key_error, SegmentCipher};
use super::format::{self, Body, ExpiredRecord, Scan};
use super::index::{self, Builder, Entry};
use super::query::SegmentReader;
use super::recover;
use super::Shared;
use crate::store::StoreError;

/// Suffix of a segment rewrite in progress (removed at open).
pub const TEMP_SUFFIX: &str = ".seg.rewrite";

/// A sealed segment as retention sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedSegment {
    /// Segment number.
    pub no: u64,
    /// File length.
    pub len: u64,
    /// Indexed (not expired) event records.
    pub entries: u64,
    /// Earliest event time among them (i64::MAX when none).
    pub min_ts: i64,
    /// Latest (i64::MIN when none).
    pub max_ts: i64,
}

/// What a rewrite did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// Event records turned into expired records.
    pub expired: u64,
    /// File length before.
    pub old_len: u64,
    /// File length after.
    pub new_len: u64,
}

/// Where a test makes a rewrite stop, as a crash would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// Run to the end.
    None,
    /// Stop once the temporary file is written, before the rename.
    AfterTemp,
}

/// Access to sealed segments for retention; see the module docs.
#[derive(Clone)]
pub struct Maintenance {
    shared: Arc<Shared>,
}

impl SegmentReader {
    /// Retention's access to the sealed segments of this store.
    pub fn maintenance(&self) -> Maintenance {
        Maintenance {
            shared: self.shared.clone(),
        }
    }
}

impl Maintenance {
    /// The store's encryption keys, if it has any (to read segment bytes
    /// with [`super::walk::records`]).
    pub fn keys(&self) -> Option<&auditship_crypt::Keyring> {
        self.shared.keys.as_deref()
    }

    /// Sealed segments, oldest first (never the active one).
    pub fn sealed(&self) -> Vec<SealedSegment> {
        self.shared
            .lock()
            .sealed
            .iter()
            .map(|s| SealedSegment {
                no: s.no,
                len: s.len,
                entries: s.index.entries,
                min_ts: s.index.min_ts,
                max_ts: s.index.max_ts,
            })
            .collect()
    }

    /// The path of segment `no`.
    pub fn path(&self, no: u64) -> PathBuf {
        recover::segment_path(&self.shared.dir, no)
    }

    /// The bytes of sealed segment `no`, exactly as on disk.
    pub fn read(&self, no: u64) -> Result<Vec<u8>, StoreError> {
        let _files = self.shared.files_read();
        let path = self.path(no);
        fs::read(&path).map_err(|e| StoreError::io(&path, e))
    }

    /// Rewrites sealed segment `no`, whose bytes are `original` (as
    /// [`Maintenance::read`] returned them): every event record for whose
    /// leaf `expire` names a tombstone leaf becomes an expired record
    /// pointing at that tombstone.
    pub fn rewrite(
        &self,
        no: u64,
        original: &[u8],
        expire: &dyn Fn(u64) -> Option<u64>,
    ) -> Result<Rewritten, StoreError> {
        self.rewrite_until(no, original, expire, CrashPoint::None)
    }

    /// [`Maintenance::rewrite`], stopping at `crash` (for tests).
    pub fn rewrite_until(
        &self,
        no: u64,
        original: &[u8],
        expire: &dyn Fn(u64) -> Option<u64>,
        crash: CrashPoint,
    ) -> Result<Rewritten, StoreError> {
        let path = self.path(no);
        let invalid = |m: String| {
            StoreError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, m),
            )
        };
        let sealed_len = self
            .shared
            .lock()
            .sealed
            .iter()
            .find(|s| s.no == no)
            .map(|s| s.len);
        match sealed_len {
            None => return Err(invalid(format!("segment {no} is not sealed"))),
            Some(l) if l != original.len() as u64 => {
                return Err(invalid(format!(
                    "segment {no} is {l} bytes, not the {} read",
                    original.len()
                )))
            }
            Some(_) => {}
        }
        let keys = self.shared.keys.as_deref();
        // Kept records are copied as they are (a sealed record is bound to
        // its segment's number, not its offset); expired ones are written
        // the way the segment's header says: sealed under the current key,
        // or in the clear.
        let cipher = SegmentCipher::for_header(original, no, keys, &path)?;
        let (bytes, expired) = expired_copy(original, expire, &cipher).map_err(|e| match e {
            Copy::Locked(k) => key_error(&path, Some(k), keys),
            Copy::Seal(e) => StoreError::io(&path, std::io::Error::other(e)),
        })?;
        let mut out = Rewritten {
            expired,
            old_len: original.len() as u64,
            new_len: bytes.len() as u64,
        };
        if expired == 0 {
            out.new_len = out.old_len;
            return Ok(out);
        }
        let tmp = self.shared.dir.join(format!("{no:020}{TEMP_SUFFIX}"));
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_data()
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io(&tmp, e));
        }
        if crash == CrashPoint::AfterTemp {
            return Ok(out);
        }
        let (builder, entries) = index_of(&bytes, &cipher);
        let dir = &self.shared.dir;
        let idx = recover::index_path(dir, no);
        let _files = self.shared.files.write().unwrap_or_else(|p| p.into_inner());
        match fs::remove_file(&idx) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(StoreError::io(&idx, e));
            }
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io(&path, e));
        }
        recover::sync_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        let seal_index = keys.filter(|_| cipher.encrypted());
        let meta = index::write(&idx, no, out.new_len, &builder.dicts, &[&entries], seal_index)
            .unwrap_or_else(|e| {
                tracing::error!(file = %idx.display(), error = %e, "store: cannot write the index of a rewritten segment; it is rebuilt when needed");
                let mut m = index::summarize(&[&entries]);
                m.bytes = 0;
                m
            });
        let mut st = self.shared.lock();
        let mut sealed = st.sealed.as_ref().clone();
        let mut delta = None;
        if let Some(s) = sealed.iter_mut().find(|s| s.no == no) {
            delta = Some((s.len + s.index.bytes, s.index.entries));
            s.len = out.new_len;
            s.index = meta;
        }
        st.sealed = Arc::new(sealed);
        if let Some((bytes, entries)) = delta {
            st.sealed_bytes = st.sealed_bytes.saturating_sub(bytes) + out.new_len + meta.bytes;
            st.events = st.events.saturating_sub(entries) + meta.entries;
        }
        Ok(out)
    }
}

/// Why a segment could not be copied.
enum Copy {
    /// A record is sealed under a key the store was not given.
    Locked(auditship_crypt::KeyId),
    /// An expired record could not be sealed.
    Seal(auditship_crypt::SealError),
}

/// `data` with the selected event records turned into expired records, and
/// how many were.
fn expired_copy(
    data: &[u8],
    expire: &dyn Fn(u64) -> Option<u64>,
    cipher: &SegmentCipher<'_>,
) -> Result<(Vec<u8>, u64), Copy> {
    let mut out = Vec::with_capacity(data.len());
    let head = format::HEADER_LEN.min(data.len());
    out.extend_from_slice(&data[..head]);
    let mut at = head;
    let mut expired = 0;
    let mut scratch = Vec::new();
    loop {
        match format::scan(data, at, cipher, &mut scratch) {
            Scan::End => break,
            Scan::Locked { key, .. } => return Err(Copy::Locked(key)),
            Scan::Record { body, next } => {
                let sealed = match &body {
                    Body::Event(ev) => expire(ev.leaf)
                        .and_then(|t| seal::unseal(ev.payload).map(|u| (ev, t, u.hash, u.prev))),
                    _ => None,
                };
                match sealed {
                    Some((ev, tombstone, hash, prev)) => {
                        format::encode_expired(
                            &mut out,
                            &ExpiredRecord {
                                agent: ev.agent,
                                queue: ev.queue,
                                seq: ev.seq,
                                ts_millis: ev.ts_millis,
                                leaf: ev.leaf,
                                tombstone,
                                hash,
                                prev,
                            },
                            cipher,
                        )
                        .map_err(Copy::Seal)?;
                        expired += 1;
                    }
                    None => out.extend_from_slice(&data[at..next]),
                }
                at = next;
            }
            Scan::Corrupt { resume, .. } => {
                out.extend_from_slice(&data[at..resume]);
                at = resume;
            }
        }
    }
    Ok((out, expired))
}

/// The index of a segment's bytes (event records only).
fn index_of(data: &[u8], cipher: &SegmentCipher<'_>) -> (Builder, Vec<Entry>) {
    let mut b = Builder::default();
    let mut entries = Vec::new();
    let mut scratch = Vec::new();
    let mut at = format::HEADER_LEN.min(data.len());
    loop {
        match format::scan(data, at, cipher, &mut scratch) {
            Scan::End => break,
            // Not reached: the copy would have stopped first.
            Scan::Locked { next, .. } => at = next,
            Scan::Record { body, next } => {
                if let Body::Event(ev) = body {
                    entries.push(recover::entry_of(
                        &mut b,
                        &ev,
                        at as u32,
                        (next - at) as u32,
                    ));
                }
                at = next;
            }
            Scan::Corrupt { resume, .. } => at = resume,
        }
    }
    (b, entries)
}
