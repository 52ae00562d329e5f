//! A read-only walk over every record of a store, for offline
//! verification: nothing is truncated, quarantined or rebuilt, and every
//! damaged range is reported with its segment and offset. An encrypted
//! segment needs its keys: a record under a key not given stops the walk
//! with an error naming the key.

use std::fs;
use std::path::Path;

use auditship_crypt::Keyring;

use super::cipher::{key_error, SegmentCipher};
use super::format::{self, Body, Scan};
use super::recover;
use crate::store::StoreError;

/// What the walk meets, in store order.
#[derive(Debug)]
pub enum Item<'a> {
    /// A segment file begins.
    Segment {
        /// Its number.
        no: u64,
        /// Its length in bytes.
        len: u64,
    },
    /// The segment's header is not valid; the segment is skipped.
    BadHeader {
        /// The segment.
        no: u64,
        /// What is wrong.
        reason: String,
    },
    /// A valid event record.
    Event {
        /// Segment number.
        segment: u64,
        /// Offset of the record's frame.
        offset: u64,
        /// Sending agent.
        agent: &'a str,
        /// Queue identity.
        queue: u64,
        /// Seq.
        seq: u64,
        /// Leaf index recorded with it.
        leaf: u64,
        /// The stored event (sealed form).
        payload: &'a [u8],
    },
    /// Bytes that are not a valid record.
    Corrupt {
        /// Segment number.
        segment: u64,
        /// Offset of the first bad byte.
        offset: u64,
        /// Bad bytes up to the next valid record (or the end).
        len: u64,
        /// What was wrong.
        reason: &'static str,
        /// Whether the bad bytes run to the end of the newest segment (a
        /// write still in progress, or a torn tail the collector cuts at
        /// its next start).
        tail: bool,
    },
}

/// Walks every segment under `<store_dir>/segments` in order, calling `f`;
/// `keys` open encrypted segments.
pub fn walk(
    store_dir: &Path,
    keys: Option<&Keyring>,
    f: &mut dyn FnMut(Item<'_>),
) -> Result<(), StoreError> {
    let dir = store_dir.join("segments");
    let numbers = recover::list_segments(&dir)?;
    for (i, &no) in numbers.iter().enumerate() {
        let newest = i + 1 == numbers.len();
        let path = recover::segment_path(&dir, no);
        let data = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        f(Item::Segment {
            no,
            len: data.len() as u64,
        });
        if let Some(v) = format::other_version(&data) {
            f(Item::BadHeader {
                no,
                reason: format!("format version {v}, this build reads {}", format::VERSION),
            });
            continue;
        }
        if !format::header_ok(&data, no) {
            f(Item::BadHeader {
                no,
                reason: "bad segment header".into(),
            });
            continue;
        }
        let cipher = SegmentCipher::for_header(&data, no, keys, &path)?;
        let mut at = format::HEADER_LEN;
        let mut scratch = Vec::new();
        loop {
            match format::scan(&data, at, &cipher, &mut scratch) {
                Scan::End => break,
                Scan::Locked { key, .. } => return Err(key_error(&path, Some(key), keys)),
                Scan::Record { body, next } => {
                    if let Body::Event(ev) = body {
                        f(Item::Event {
                            segment: no,
                            offset: at as u64,
                            agent: ev.agent,
                            queue: ev.queue,
                            seq: ev.seq,
                            leaf: ev.leaf,
                            payload: ev.payload,
                        });
                    }
                    at = next;
                }
                Scan::Corrupt { resume, reason } => {
                    f(Item::Corrupt {
                        segment: no,
                        offset: at as u64,
                        len: (resume - at) as u64,
                        reason,
                        tail: newest && resume == data.len(),
                    });
                    at = resume;
                }
            }
        }
    }
    Ok(())
}
