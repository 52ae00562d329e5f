//! Re-encrypting a store offline under its current key:
//! `auditship store rekey`.
//!
//! Every segment whose records are not all sealed under the current key
//! (records under a previous key, or a segment in the clear from before
//! encryption was turned on) is rewritten: the same records in the same
//! order, each body opened and sealed again under the current key, into
//! `<no>.seg.rekey`, which is fsynced, renamed over `<no>.seg`, and the
//! directory fsynced. A crash leaves either the old file or the new one,
//! each complete; running the command again finishes the job (segments
//! already under the current key are skipped). The index of each rewritten
//! sealed segment is rebuilt under the current key.
//!
//! Nothing a verifier checks changes: the Merkle leaves and chain hashes
//! are over the plaintext payloads, which are the same bytes, and so are
//! leaf indexes and record order. Re-encrypting a sealed segment keeps
//! every record's length and offset; encrypting a segment that was in the
//! clear makes each record 48 bytes longer, which is why the index is
//! rebuilt.
//!
//! Damaged ranges (bytes that are not a valid record) are copied as they
//! are, and reported: the collector quarantines them as before. In a
//! segment that was in the clear they may hold plaintext; the report says
//! so. A record under a key that was not given stops the command before
//! the segment is touched.
//!
//! The command holds the store's lock, so it refuses to run while a
//! collector has the store open.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use auditship_crypt::Keyring;

use super::cipher::{key_error, SegmentCipher};
use super::format::{self, Bad, Scan};
use super::index::IndexFile;
use super::recover;
use super::Recovery;
use crate::store::StoreError;

/// What a rekey did.
#[derive(Clone, Debug, Default)]
pub struct RekeyReport {
    /// Segments in the store.
    pub segments: u64,
    /// Segments rewritten under the current key.
    pub rewritten: u64,
    /// Of those, segments that were in the clear.
    pub were_plain: u64,
    /// Records re-encrypted.
    pub records: u64,
    /// Sealed segments whose index was rebuilt.
    pub indexes_rebuilt: u64,
    /// Damaged ranges copied as they were: (segment, offset, bytes, was
    /// the segment in the clear).
    pub damaged: Vec<(u64, u64, u64, bool)>,
}

/// Re-encrypts the store in `store_dir` (holding `segments/`) under the
/// current key of `keys`; `progress(done, total)` counts segments.
pub fn rekey(
    store_dir: &Path,
    keys: &Arc<Keyring>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RekeyReport, StoreError> {
    let dir = store_dir.join("segments");
    if !dir.is_dir() {
        return Err(StoreError::io(
            &dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no store here"),
        ));
    }
    let _lock = recover::lock_store(store_dir)?;
    for e in fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
        let p = e.map_err(|e| StoreError::io(&dir, e))?.path();
        if p.to_string_lossy().ends_with(".seg.rekey") {
            fs::remove_file(&p).map_err(|e| StoreError::io(&p, e))?;
        }
    }
    let numbers = recover::list_segments(&dir)?;
    let mut report = RekeyReport {
        segments: numbers.len() as u64,
        ..RekeyReport::default()
    };
    for (i, &no) in numbers.iter().enumerate() {
        let newest = i + 1 == numbers.len();
        let rewritten = rekey_segment(&dir, no, keys, &mut report)?;
        let idx = recover::index_path(&dir, no);
        if newest {
            // The active segment has no index; the collector removes any.
            let _ = fs::remove_file(&idx);
        } else if rewritten || index_stale(&dir, no, keys) {
            let qdir = store_dir.join("quarantine");
            recover::rebuild_index(&dir, &qdir, no, &mut Recovery::default(), Some(keys))?;
            report.indexes_rebuilt += 1;
        }
        progress(i as u64 + 1, numbers.len() as u64);
    }
    Ok(report)
}

/// Whether the index of sealed segment `no` is missing, unusable, or
/// sealed under another key than the current one.
fn index_stale(dir: &Path, no: u64, keys: &Arc<Keyring>) -> bool {
    let seg = recover::segment_path(dir, no);
    let Ok(len) = fs::metadata(&seg).map(|m| m.len()) else {
        return true;
    };
    match IndexFile::open(&recover::index_path(dir, no), no, len, true, Some(keys)) {
        Ok(f) => f.key_id() != Some(keys.current()),
        Err(_) => true,
    }
}

/// Rewrites segment `no` under the current key unless every record is
/// already sealed under it; returns whether it was rewritten.
fn rekey_segment(
    dir: &Path,
    no: u64,
    keys: &Arc<Keyring>,
    report: &mut RekeyReport,
) -> Result<bool, StoreError> {
    let path = recover::segment_path(dir, no);
    let data = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
    if let Some(v) = format::other_version(&data) {
        return Err(StoreError::io(
            &path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("segment format version {v}, which this build does not read"),
            ),
        ));
    }
    if !format::header_ok(&data, no) {
        return Err(StoreError::io(
            &path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "bad segment header: start the collector once (it moves such a segment to quarantine/), then run rekey again",
            ),
        ));
    }
    let was_plain = !format::is_encrypted(&data);
    let input = SegmentCipher::for_header(&data, no, Some(keys), &path)?;
    let output = SegmentCipher::sealed(keys, no);
    let mut created = [0u8; 8];
    created.copy_from_slice(&data[16..24]);
    let mut out = Vec::with_capacity(data.len() + 4096);
    out.extend_from_slice(&format::header(no, i64::from_le_bytes(created), true));
    let mut changed = was_plain;
    let mut records = 0u64;
    let mut damaged = Vec::new();
    let mut scratch = Vec::new();
    let mut at = format::HEADER_LEN;
    while at < data.len() {
        match format::open_frame(&data, at, &input, &mut scratch) {
            Ok((plain, next)) => {
                let stored = &data[at + format::FRAME_HEADER..next];
                if !was_plain && auditship_crypt::key_id_of(stored) != Some(keys.current()) {
                    changed = true;
                }
                format::frame_body(&mut out, &output, plain)
                    .map_err(|e| StoreError::io(&path, std::io::Error::other(e)))?;
                records += 1;
                at = next;
            }
            Err(Bad::Locked(k)) => return Err(key_error(&path, Some(k), Some(keys))),
            Err(Bad::Corrupt(_)) => {
                let resume = match format::scan(&data, at, &input, &mut Vec::new()) {
                    Scan::Corrupt { resume, .. } => resume,
                    _ => at + 1,
                };
                out.extend_from_slice(&data[at..resume]);
                damaged.push((no, at as u64, (resume - at) as u64, was_plain));
                at = resume;
            }
        }
    }
    report.damaged.extend(damaged);
    if !changed {
        return Ok(false);
    }
    debug_assert_eq!(
        out.len(),
        data.len()
            + if was_plain {
                records as usize * auditship_crypt::OVERHEAD
            } else {
                0
            }
    );
    let tmp = dir.join(format!("{no:020}.seg.rekey"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(&out)
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))?;
    report.rewritten += 1;
    report.were_plain += u64::from(was_plain);
    report.records += records;
    Ok(true)
}
