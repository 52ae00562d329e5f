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
    /// An event whose payload retention removed.
    Expired {
        /// Segment number.
        segment: u64,
        /// Offset of the record's frame.
        offset: u64,
        /// The record.
        record: super::format::ExpiredRecord<'a>,
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
                    match body {
                        Body::Event(ev) => f(Item::Event {
                            segment: no,
                            offset: at as u64,
                            agent: ev.agent,
                            queue: ev.queue,
                            seq: ev.seq,
                            leaf: ev.leaf,
                            payload: ev.payload,
                        }),
                        Body::Expired(record) => f(Item::Expired {
                            segment: no,
                            offset: at as u64,
                            record,
                        }),
                        Body::Snapshot(..) => {}
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

/// A record of a segment's bytes, for retention and archive checks.
#[derive(Debug)]
pub enum Record<'a> {
    /// An event record.
    Event {
        /// Sending agent.
        agent: &'a str,
        /// Queue identity.
        queue: u64,
        /// Seq.
        seq: u64,
        /// Event time, Unix ms.
        ts_millis: i64,
        /// Leaf index.
        leaf: u64,
        /// The stored event (sealed form).
        payload: &'a [u8],
        /// Length of the whole frame.
        frame: usize,
    },
    /// An expired record.
    Expired {
        /// Leaf index.
        leaf: u64,
    },
}

/// Calls `f` for every event and expired record of segment `no`'s bytes,
/// in order; corrupt ranges are skipped. An encrypted segment needs
/// `keys`; a record under a key not among them is an error.
pub fn records(
    data: &[u8],
    no: u64,
    keys: Option<&auditship_crypt::Keyring>,
    f: &mut dyn FnMut(Record<'_>),
) -> Result<(), String> {
    let cipher = cipher_of(data, no, keys)?;
    let mut scratch = Vec::new();
    let mut at = format::HEADER_LEN.min(data.len());
    loop {
        match format::scan(data, at, &cipher, &mut scratch) {
            Scan::End => return Ok(()),
            Scan::Locked { key, .. } => {
                return Err(format!(
                    "segment {no}: a record is encrypted under key {key}, which was not given"
                ))
            }
            Scan::Record { body, next } => {
                match body {
                    Body::Event(ev) => f(Record::Event {
                        agent: ev.agent,
                        queue: ev.queue,
                        seq: ev.seq,
                        ts_millis: ev.ts_millis,
                        leaf: ev.leaf,
                        payload: ev.payload,
                        frame: next - at,
                    }),
                    Body::Expired(x) => f(Record::Expired { leaf: x.leaf }),
                    Body::Snapshot(..) => {}
                }
                at = next;
            }
            Scan::Corrupt { resume, .. } => at = resume,
        }
    }
}

fn cipher_of<'k>(
    data: &[u8],
    no: u64,
    keys: Option<&'k auditship_crypt::Keyring>,
) -> Result<super::cipher::SegmentCipher<'k>, String> {
    super::cipher::SegmentCipher::for_header(data, no, keys, std::path::Path::new("segment"))
        .map_err(|e| format!("segment {no}: {e}"))
}

/// Length of the frame of an expired record of `agent` (`overhead`: what
/// the segment's cipher adds to a body).
pub fn expired_frame_len(agent: &str, overhead: usize) -> usize {
    format::FRAME_HEADER + overhead + format::EXPIRED_FIXED + agent.len()
}

/// One leaf of a segment file, checked on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentLeaf {
    /// Leaf index.
    pub leaf: u64,
    /// Merkle leaf hash.
    pub leaf_hash: auditship_core::Hash,
    /// Whether the payload is present (false: expired).
    pub payload: bool,
}

/// Decodes a whole segment file (an archived copy, say): its header must
/// be that of segment `no`, every record must be valid (and open under
/// `keys` when the segment is encrypted), and every event's hash must
/// match its content. Returns its leaves in order.
pub fn segment_leaves(
    data: &[u8],
    no: u64,
    keys: Option<&auditship_crypt::Keyring>,
) -> Result<Vec<SegmentLeaf>, String> {
    if !format::header_ok(data, no) {
        return Err(format!("not a valid header of segment {no}"));
    }
    let cipher = cipher_of(data, no, keys)?;
    let mut scratch = Vec::new();
    let mut out = Vec::new();
    let mut at = format::HEADER_LEN;
    loop {
        match format::scan(data, at, &cipher, &mut scratch) {
            Scan::End => return Ok(out),
            Scan::Locked { key, .. } => {
                return Err(format!(
                    "offset {at}: encrypted under key {key}, which was not given"
                ))
            }
            Scan::Record { body, next } => {
                match body {
                    Body::Event(ev) => {
                        let u = auditship_core::seal::unseal(ev.payload)
                            .ok_or_else(|| format!("offset {at}: the event has no chain fields"))?;
                        if !u.is_intact() {
                            return Err(format!(
                                "offset {at} (leaf {}): the event's hash does not match its content",
                                ev.leaf
                            ));
                        }
                        out.push(SegmentLeaf {
                            leaf: ev.leaf,
                            leaf_hash: auditship_core::seal::leaf_of_hash(&u.hash),
                            payload: true,
                        });
                    }
                    Body::Expired(x) => out.push(SegmentLeaf {
                        leaf: x.leaf,
                        leaf_hash: auditship_core::seal::leaf_of_hash(&x.hash),
                        payload: false,
                    }),
                    Body::Snapshot(..) => {}
                }
                at = next;
            }
            Scan::Corrupt { reason, .. } => return Err(format!("offset {at}: {reason}")),
        }
    }
}
