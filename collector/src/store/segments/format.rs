//! Segment bytes: the file header, record framing and bodies, and the
//! scanner that reads them back and resynchronises after corrupt bytes.
//!
//! See the layout in the parent module. This file knows bytes; it knows
//! nothing about files, commits or indexes. Bodies pass through the
//! segment's [`SegmentCipher`] on their way in and out (in the clear, or
//! sealed), between the frame and the body encoding.

use std::collections::HashMap;

use auditship_core::Hash;
use auditship_crypt::{KeyId, OpenError, SealError};

use super::cipher::SegmentCipher;
use crate::store::Watermark;

/// Bytes of the segment file header.
pub const HEADER_LEN: usize = 24;
/// Magic at the start of every segment file.
pub const MAGIC: &[u8; 4] = b"ASG1";
/// Format version in the header of a segment whose bodies are in the clear.
/// Version 1 (before event records carried their Merkle leaf index and
/// snapshots the chain heads) is not read.
pub const VERSION: u16 = 2;
/// Format version of a segment whose bodies are sealed (encrypted): the
/// same records, each body sealed by the record cipher. A build that
/// predates encryption refuses it instead of taking ciphertext for damage.
pub const VERSION_ENCRYPTED: u16 = 3;
/// Format version of a segment in the clear that may hold linked event
/// records ([`KIND_LINKED`]); a build that predates them refuses it instead
/// of taking them for damage.
pub const VERSION_LINKED: u16 = 4;
/// Format version of a sealed segment that may hold linked event records.
pub const VERSION_LINKED_ENCRYPTED: u16 = 5;
/// Bytes before a record body: `len u32 LE | crc32c u32 LE`.
pub const FRAME_HEADER: usize = 8;
/// Largest record body (plaintext). Bigger events are refused at append.
pub const MAX_BODY: usize = 16 << 20;
/// Largest stored frame: header, body and what sealing adds.
pub const MAX_FRAME: usize = FRAME_HEADER + MAX_BODY + auditship_crypt::OVERHEAD;

/// Record kind: one event.
pub const KIND_EVENT: u8 = 1;
/// Record kind: the watermark snapshot at the start of a segment.
pub const KIND_SNAPSHOT: u8 = 2;
/// Record kind: an event whose payload retention removed (see
/// `crate::retention`); it keeps what the Merkle log and the chains need.
pub const KIND_EXPIRED: u8 = 3;
/// Record kind: one event stored as its canonical bytes and its chain
/// hashes in binary, from which its sealed form is rebuilt exactly.
/// Readers see it as a [`KIND_EVENT`] record (see [`frame_at`]).
pub const KIND_LINKED: u8 = 4;

/// Bytes of an expired body before the agent id:
/// kind | queue | seq | ts | leaf | tombstone | hash | prev_hash | agent_len.
pub const EXPIRED_FIXED: usize = 1 + 8 + 8 + 8 + 8 + 8 + 32 + 32 + 2;

/// Bytes of an event body before the agent id:
/// kind | queue | seq | ts | leaf | agent_len.
pub const EVENT_FIXED: usize = 1 + 8 + 8 + 8 + 8 + 2;

/// The header of segment `no`; `encrypted` when its bodies are sealed.
pub fn header(no: u64, created_millis: i64, encrypted: bool) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(MAGIC);
    let v = if encrypted {
        VERSION_LINKED_ENCRYPTED
    } else {
        VERSION_LINKED
    };
    h[4..6].copy_from_slice(&v.to_le_bytes());
    h[8..16].copy_from_slice(&no.to_le_bytes());
    h[16..24].copy_from_slice(&created_millis.to_le_bytes());
    h
}

fn version(data: &[u8]) -> Option<u16> {
    (data.len() >= HEADER_LEN && &data[0..4] == MAGIC)
        .then(|| u16::from_le_bytes([data[4], data[5]]))
}

/// Whether `data` starts with a valid header of segment `no`.
pub fn header_ok(data: &[u8], no: u64) -> bool {
    version(data).is_some_and(known) && data[8..16] == no.to_le_bytes()
}

/// The versions this build reads.
fn known(v: u16) -> bool {
    (VERSION..=VERSION_LINKED_ENCRYPTED).contains(&v)
}

/// Whether the header says the bodies are sealed.
pub fn is_encrypted(data: &[u8]) -> bool {
    matches!(
        version(data),
        Some(VERSION_ENCRYPTED | VERSION_LINKED_ENCRYPTED)
    )
}

/// Whether the header allows linked event records (versions 4 and 5).
pub fn is_linked(data: &[u8]) -> bool {
    matches!(
        version(data),
        Some(VERSION_LINKED | VERSION_LINKED_ENCRYPTED)
    )
}

/// The format version of a header with the right magic, if it is a
/// version this build does not read (such a segment is not corrupt, it is
/// for another build, and must not be quarantined).
pub fn other_version(data: &[u8]) -> Option<u16> {
    version(data).filter(|&v| !known(v))
}

/// The key id of the first intact sealed record of a segment (for an error
/// naming the key a store needs).
pub fn first_key_id(data: &[u8]) -> Option<KeyId> {
    let mut at = HEADER_LEN;
    while let Some(h) = data.get(at..at + FRAME_HEADER) {
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        match data.get(at + FRAME_HEADER..at + FRAME_HEADER + len) {
            Some(body) if len > 0 && crc32c::crc32c(body) == crc => {
                return auditship_crypt::key_id_of(body)
            }
            _ => at += 1,
        }
    }
    None
}

/// A decoded record body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// One event.
    Event(EventRecord<'a>),
    /// Every agent's watermark when the segment was started, and the leaf
    /// index of the segment's first event.
    Snapshot(HashMap<String, Watermark>, u64),
    /// An event whose payload was removed by retention.
    Expired(ExpiredRecord<'a>),
}

/// The fields of an expired event record: everything of the event record
/// but its payload, plus the payload's chain hashes (the Merkle leaf is
/// derived from `hash`) and where the tombstone that covers it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiredRecord<'a> {
    /// Sending agent.
    pub agent: &'a str,
    /// Its queue identity.
    pub queue: u64,
    /// `seq` in that queue.
    pub seq: u64,
    /// Event time, Unix ms.
    pub ts_millis: i64,
    /// Its leaf index in the Merkle log.
    pub leaf: u64,
    /// Leaf index of the tombstone (a collector event) that records the
    /// removal.
    pub tombstone: u64,
    /// The event's chain hash (`hash` of the removed payload).
    pub hash: Hash,
    /// The event's `prev_hash`.
    pub prev: Hash,
}

/// Appends a framed expired record to `out`, through the cipher; returns
/// its total length.
pub fn encode_expired(
    out: &mut Vec<u8>,
    ev: &ExpiredRecord<'_>,
    c: &SegmentCipher<'_>,
) -> Result<usize, SealError> {
    out.reserve(FRAME_HEADER + c.overhead() + EXPIRED_FIXED + ev.agent.len());
    frame(out, c, |b| {
        b.push(KIND_EXPIRED);
        b.extend_from_slice(&ev.queue.to_le_bytes());
        b.extend_from_slice(&ev.seq.to_le_bytes());
        b.extend_from_slice(&ev.ts_millis.to_le_bytes());
        b.extend_from_slice(&ev.leaf.to_le_bytes());
        b.extend_from_slice(&ev.tombstone.to_le_bytes());
        b.extend_from_slice(&ev.hash);
        b.extend_from_slice(&ev.prev);
        b.extend_from_slice(&(ev.agent.len() as u16).to_le_bytes());
        b.extend_from_slice(ev.agent.as_bytes());
    })
}

/// The fields of an event record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRecord<'a> {
    /// Sending agent.
    pub agent: &'a str,
    /// Its queue identity.
    pub queue: u64,
    /// `seq` in that queue.
    pub seq: u64,
    /// Event time, Unix ms.
    pub ts_millis: i64,
    /// Its leaf index in the Merkle log (its position in store order).
    pub leaf: u64,
    /// The event in sealed form.
    pub payload: &'a [u8],
}

/// Appends a framed record with a body written by `body`, through the
/// cipher; returns the frame's total length.
fn frame(
    out: &mut Vec<u8>,
    c: &SegmentCipher<'_>,
    body: impl FnOnce(&mut Vec<u8>),
) -> Result<usize, SealError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    let at = c.begin(out);
    body(out);
    if let Err(e) = c.finish(out, at) {
        out.truncate(start);
        return Err(e);
    }
    let len = (out.len() - start - FRAME_HEADER) as u32;
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(out.len() - start)
}

/// Appends a framed record whose plaintext body is `body` (any kind),
/// sealed when the cipher says so; returns its total length. For segment
/// rewriters; see [`super::cipher`].
pub fn frame_body(
    out: &mut Vec<u8>,
    c: &SegmentCipher<'_>,
    body: &[u8],
) -> Result<usize, SealError> {
    frame(out, c, |b| b.extend_from_slice(body))
}

/// Appends a framed event record to `out`; returns its total length.
///
/// The caller has checked `agent.len() <= u16::MAX` and the body size.
///
/// With `link` (in a segment that allows linked records, versions 4 and 5:
/// the event's `hash` and `prev_hash`), a payload that is exactly the
/// sealed form for them is stored as a linked event record: its 154-byte
/// JSON suffix becomes the two hashes in 64 binary bytes, about a tenth of
/// a stored web event. The suffix is compared, not trusted, so a payload
/// that would not be rebuilt byte for byte is stored as it is, like any
/// payload without `link`.
pub fn encode_event(
    out: &mut Vec<u8>,
    ev: &EventRecord<'_>,
    c: &SegmentCipher<'_>,
    link: Option<(&Hash, &Hash)>,
) -> Result<usize, SealError> {
    out.reserve(FRAME_HEADER + c.overhead() + EVENT_FIXED + ev.agent.len() + ev.payload.len());
    let linked = link.and_then(|(hash, prev)| {
        let cut = ev
            .payload
            .len()
            .checked_sub(auditship_core::seal::SUFFIX_LEN + 1)?;
        let (head, tail) = ev.payload.split_at(cut + 1);
        (tail == auditship_core::seal::suffix(hash, prev)).then_some((head, *hash, *prev))
    });
    frame(out, c, |b| {
        b.push(if linked.is_some() {
            KIND_LINKED
        } else {
            KIND_EVENT
        });
        b.extend_from_slice(&ev.queue.to_le_bytes());
        b.extend_from_slice(&ev.seq.to_le_bytes());
        b.extend_from_slice(&ev.ts_millis.to_le_bytes());
        b.extend_from_slice(&ev.leaf.to_le_bytes());
        b.extend_from_slice(&(ev.agent.len() as u16).to_le_bytes());
        b.extend_from_slice(ev.agent.as_bytes());
        match linked {
            Some((head, hash, prev)) => {
                b.extend_from_slice(&hash);
                b.extend_from_slice(&prev);
                b.extend_from_slice(head);
                b.push(b'}');
            }
            None => b.extend_from_slice(ev.payload),
        }
    })
}

/// Appends to `out` the event body (kind 1) that the linked body `body`
/// (kind 4) stands for: the same fields, and the sealed form of its
/// canonical bytes as the payload. `None` if `body` is malformed.
fn unlink_into(body: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let fixed = EVENT_FIXED;
    let agent_len = u16::from_le_bytes(body.get(fixed - 2..fixed)?.try_into().ok()?) as usize;
    let at = fixed + agent_len;
    let hash: Hash = body.get(at..at + 32)?.try_into().ok()?;
    let prev: Hash = body.get(at + 32..at + 64)?.try_into().ok()?;
    let canonical = body.get(at + 64..)?;
    if canonical.len() < 2 || canonical.last() != Some(&b'}') {
        return None;
    }
    out.reserve(at + canonical.len() + auditship_core::seal::SUFFIX_LEN);
    out.push(KIND_EVENT);
    out.extend_from_slice(&body[1..at]);
    auditship_core::seal::write_sealed(out, canonical, &hash, &prev);
    Some(())
}

/// Appends a framed snapshot record to `out` (agents sorted, so the
/// plaintext is deterministic).
pub fn encode_snapshot(
    out: &mut Vec<u8>,
    marks: &HashMap<String, Watermark>,
    next_leaf: u64,
    c: &SegmentCipher<'_>,
) -> Result<(), SealError> {
    let mut agents: Vec<_> = marks.iter().collect();
    agents.sort_by(|a, b| a.0.cmp(b.0));
    frame(out, c, |body| {
        body.push(KIND_SNAPSHOT);
        body.extend_from_slice(&(agents.len() as u32).to_le_bytes());
        for (agent, w) in agents {
            let name = &agent.as_bytes()[..agent.len().min(u16::MAX as usize)];
            body.extend_from_slice(&(name.len() as u16).to_le_bytes());
            body.extend_from_slice(name);
            body.extend_from_slice(&w.queue.to_le_bytes());
            body.extend_from_slice(&w.seq.to_le_bytes());
            body.extend_from_slice(&w.head);
        }
        body.extend_from_slice(&next_leaf.to_le_bytes());
    })
    .map(|_| ())
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (a, b) = r.split_at(n);
    *r = b;
    Some(a)
}

fn take_u64(r: &mut &[u8]) -> Option<u64> {
    take(r, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

fn take_u16(r: &mut &[u8]) -> Option<u16> {
    take(r, 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// Decodes a record body (whose checksum matched).
pub fn decode(body: &[u8]) -> Option<Body<'_>> {
    let mut r = body;
    match *take(&mut r, 1)?.first()? {
        KIND_EVENT => {
            let queue = take_u64(&mut r)?;
            let seq = take_u64(&mut r)?;
            let ts_millis = take_u64(&mut r)? as i64;
            let leaf = take_u64(&mut r)?;
            let n = take_u16(&mut r)? as usize;
            let agent = std::str::from_utf8(take(&mut r, n)?).ok()?;
            Some(Body::Event(EventRecord {
                agent,
                queue,
                seq,
                ts_millis,
                leaf,
                payload: r,
            }))
        }
        KIND_SNAPSHOT => {
            let count = u32::from_le_bytes(take(&mut r, 4)?.try_into().ok()?) as usize;
            let mut marks = HashMap::with_capacity(count.min(1 << 16));
            for _ in 0..count {
                let n = take_u16(&mut r)? as usize;
                let agent = std::str::from_utf8(take(&mut r, n)?).ok()?;
                let queue = take_u64(&mut r)?;
                let seq = take_u64(&mut r)?;
                let head = take(&mut r, 32)?.try_into().ok()?;
                marks.insert(agent.to_string(), Watermark { queue, seq, head });
            }
            let next_leaf = take_u64(&mut r)?;
            r.is_empty().then_some(Body::Snapshot(marks, next_leaf))
        }
        KIND_EXPIRED => {
            let queue = take_u64(&mut r)?;
            let seq = take_u64(&mut r)?;
            let ts_millis = take_u64(&mut r)? as i64;
            let leaf = take_u64(&mut r)?;
            let tombstone = take_u64(&mut r)?;
            let hash = take(&mut r, 32)?.try_into().ok()?;
            let prev = take(&mut r, 32)?.try_into().ok()?;
            let n = take_u16(&mut r)? as usize;
            let agent = std::str::from_utf8(take(&mut r, n)?).ok()?;
            r.is_empty().then_some(Body::Expired(ExpiredRecord {
                agent,
                queue,
                seq,
                ts_millis,
                leaf,
                tombstone,
                hash,
                prev,
            }))
        }
        _ => None,
    }
}

/// What is at an offset of a segment's bytes.
#[derive(Debug)]
pub enum Scan<'a> {
    /// A valid record; the next one starts at `next`.
    Record {
        /// The body.
        body: Body<'a>,
        /// Offset after the record.
        next: usize,
    },
    /// Bytes that are not a valid record; a valid record starts at
    /// `resume`, or nothing valid follows when `resume` is the end.
    Corrupt {
        /// Where the next valid record starts (or the end of the data).
        resume: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// An intact record sealed under a key that was not given: not
    /// corruption, and never quarantined; the caller stops with an error.
    Locked {
        /// The key it needs.
        key: KeyId,
        /// Offset after the record.
        next: usize,
    },
    /// The end of the data.
    End,
}

/// Why a frame does not give a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Not a valid record (length, checksum, authentication or body).
    Corrupt(&'static str),
    /// Intact, but sealed under a key that was not given.
    Locked(KeyId),
}

/// Checks the frame at `at` (length and checksum) and returns its stored
/// body and the offset after it.
fn check_frame<'a>(
    data: &'a [u8],
    at: usize,
    c: &SegmentCipher<'_>,
) -> Result<(&'a [u8], usize), Bad> {
    let rest = &data[at..];
    if rest.len() < FRAME_HEADER {
        return Err(Bad::Corrupt("frame header cut short"));
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if len == 0 || len > MAX_BODY + c.overhead() {
        return Err(Bad::Corrupt("record length out of range"));
    }
    if rest.len() - FRAME_HEADER < len {
        return Err(Bad::Corrupt("record cut short"));
    }
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let stored = &rest[FRAME_HEADER..FRAME_HEADER + len];
    if crc32c::crc32c(stored) != crc {
        return Err(Bad::Corrupt("checksum mismatch"));
    }
    Ok((stored, at + FRAME_HEADER + len))
}

fn open_error(e: OpenError) -> Bad {
    match e {
        OpenError::UnknownKey(k) => Bad::Locked(k),
        OpenError::Short => {
            Bad::Corrupt("checksum matches but the record is too short to be encrypted")
        }
        OpenError::Forged(_) => {
            Bad::Corrupt("checksum matches but the record fails decryption (altered)")
        }
    }
}

/// Checks the frame at `at` and returns its plaintext body and the offset
/// after it. The plaintext borrows `data` in the clear, `scratch` when
/// sealed. A record that fails authentication under a key that was given
/// is corrupt (altered or damaged), like one that fails its checksum.
/// The body is as stored: a linked event is kind 4 here.
pub fn open_frame<'a>(
    data: &'a [u8],
    at: usize,
    c: &SegmentCipher<'_>,
    scratch: &'a mut Vec<u8>,
) -> Result<(&'a [u8], usize), Bad> {
    let (stored, next) = check_frame(data, at, c)?;
    let plain = c.open(stored, scratch).map_err(open_error)?;
    Ok((plain, next))
}

const MALFORMED: Bad = Bad::Corrupt("checksum matches but the body is malformed");

/// Checks the frame at `at`: `Ok((body, next))`, or why it is not valid.
/// A linked event (kind 4) is returned as the event record it stands for,
/// with its sealed form rebuilt in `scratch`.
pub fn frame_at<'a>(
    data: &'a [u8],
    at: usize,
    c: &SegmentCipher<'_>,
    scratch: &'a mut Vec<u8>,
) -> Result<(Body<'a>, usize), Bad> {
    let (stored, next) = check_frame(data, at, c)?;
    if c.overhead() == 0 {
        // In the clear: the body is `stored` itself.
        if stored.first() != Some(&KIND_LINKED) {
            return Ok((decode(stored).ok_or(MALFORMED)?, next));
        }
        scratch.clear();
        unlink_into(stored, scratch).ok_or(MALFORMED)?;
    } else {
        // Sealed: the plaintext is all of `scratch`.
        let plain = c.open(stored, &mut *scratch).map_err(open_error)?;
        if plain.first() == Some(&KIND_LINKED) {
            let mut out = Vec::with_capacity(plain.len() + auditship_core::seal::SUFFIX_LEN);
            unlink_into(plain, &mut out).ok_or(MALFORMED)?;
            *scratch = out;
        }
    }
    Ok((decode(scratch).ok_or(MALFORMED)?, next))
}

/// Reads the record at `at`. On a bad record, looks forward byte by byte
/// for the next frame whose length fits, whose checksum matches and whose
/// body opens and decodes (or is intact under a key that was not given).
pub fn scan<'a>(
    data: &'a [u8],
    at: usize,
    c: &SegmentCipher<'_>,
    scratch: &'a mut Vec<u8>,
) -> Scan<'a> {
    if at >= data.len() {
        return Scan::End;
    }
    match frame_at(data, at, c, scratch) {
        Ok((body, next)) => Scan::Record { body, next },
        Err(Bad::Locked(key)) => Scan::Locked {
            key,
            next: at
                + FRAME_HEADER
                + u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize,
        },
        Err(Bad::Corrupt(reason)) => {
            let mut probe = Vec::new();
            Scan::Corrupt {
                resume: (at + 1..data.len())
                    .find(|&p| !matches!(frame_at(data, p, c, &mut probe), Err(Bad::Corrupt(_))))
                    .unwrap_or(data.len()),
                reason,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use auditship_crypt::{Key, Keyring};

    use super::*;

    fn ring(b: u8) -> Keyring {
        Keyring::new(Key::from_bytes([b; 32]), [])
    }

    fn ev(seq: u64, payload: &[u8]) -> EventRecord<'_> {
        EventRecord {
            agent: "web-1",
            queue: 7,
            seq,
            ts_millis: -5,
            leaf: 9,
            payload,
        }
    }

    fn round_trip(c: &SegmentCipher<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        let e = ev(42, b"{\"raw\":\"secret-marker\"}");
        let n = encode_event(&mut out, &e, c, None).unwrap();
        assert_eq!(n, out.len());
        let mut marks = HashMap::new();
        marks.insert(
            "a".to_string(),
            Watermark {
                queue: 1,
                seq: 2,
                head: [7; 32],
            },
        );
        encode_snapshot(&mut out, &marks, 10, c).unwrap();
        let mut scratch = Vec::new();
        match scan(&out, 0, c, &mut scratch) {
            Scan::Record {
                body: Body::Event(got),
                next,
            } => {
                assert_eq!(got, e);
                assert_eq!(next, n);
            }
            other => panic!("{other:?}"),
        }
        match scan(&out, n, c, &mut scratch) {
            Scan::Record {
                body: Body::Snapshot(m, next_leaf),
                next,
            } => {
                assert_eq!(m, marks);
                assert_eq!(next_leaf, 10);
                assert_eq!(next, out.len());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(scan(&out, out.len(), c, &mut scratch), Scan::End));
        let x = ExpiredRecord {
            agent: "web-1",
            queue: 7,
            seq: 42,
            ts_millis: -5,
            leaf: 9,
            tombstone: 77,
            hash: [3; 32],
            prev: [4; 32],
        };
        let at = out.len();
        let n = encode_expired(&mut out, &x, c).unwrap();
        assert_eq!(n, FRAME_HEADER + c.overhead() + EXPIRED_FIXED + 5);
        match scan(&out, at, c, &mut scratch) {
            Scan::Record {
                body: Body::Expired(e),
                next,
            } => {
                assert_eq!(e, x);
                assert_eq!(next, out.len());
            }
            other => panic!("{other:?}"),
        }
        out
    }

    #[test]
    fn event_snapshot_and_expired_records_round_trip_in_the_clear_and_sealed() {
        let plain = round_trip(&SegmentCipher::plain(1));
        assert!(memchr::memmem::find(&plain, b"secret-marker").is_some());
        let keys = ring(1);
        let sealed = round_trip(&SegmentCipher::sealed(&keys, 1));
        assert!(memchr::memmem::find(&sealed, b"secret-marker").is_none());
        assert!(memchr::memmem::find(&sealed, b"web-1").is_none());
        assert_eq!(sealed.len(), plain.len() + 3 * auditship_crypt::OVERHEAD);
        assert_eq!(
            first_key_id(&[&header(1, 0, true)[..], &sealed].concat()),
            Some(keys.current())
        );
    }

    #[test]
    fn corrupt_record_resumes_at_the_next_valid_one() {
        let keys = ring(1);
        for c in [SegmentCipher::plain(1), SegmentCipher::sealed(&keys, 1)] {
            let mut out = Vec::new();
            let first = encode_event(&mut out, &ev(1, b"payload bytes"), &c, None).unwrap();
            encode_event(&mut out, &ev(2, b"payload bytes"), &c, None).unwrap();
            out[first / 2] ^= 0x40;
            let mut scratch = Vec::new();
            match scan(&out, 0, &c, &mut scratch) {
                Scan::Corrupt { resume, .. } => assert_eq!(resume, first),
                other => panic!("{other:?}"),
            }
            // Cut short: nothing valid follows.
            match scan(&out[..out.len() - 1], first, &c, &mut scratch) {
                Scan::Corrupt { resume, reason } => {
                    assert_eq!(resume, out.len() - 1);
                    assert_eq!(reason, "record cut short");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_sealed_record_with_a_matching_checksum_that_fails_decryption_is_corrupt() {
        let keys = ring(1);
        let c = SegmentCipher::sealed(&keys, 1);
        let mut out = Vec::new();
        let first = encode_event(&mut out, &ev(1, b"payload"), &c, None).unwrap();
        encode_event(&mut out, &ev(2, b"payload"), &c, None).unwrap();
        // Alter a ciphertext byte and fix the CRC: only the AEAD catches it.
        out[FRAME_HEADER + 40] ^= 1;
        let crc = crc32c::crc32c(&out[FRAME_HEADER..first]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        let mut scratch = Vec::new();
        match scan(&out, 0, &c, &mut scratch) {
            Scan::Corrupt { resume, reason } => {
                assert_eq!(resume, first);
                assert!(reason.contains("decryption"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // The same record in segment 2 does not open: bound to segment 1.
        let mut ok = Vec::new();
        encode_event(&mut ok, &ev(1, b"payload"), &c, None).unwrap();
        let other = SegmentCipher::sealed(&keys, 2);
        assert!(matches!(
            scan(&ok, 0, &other, &mut scratch),
            Scan::Corrupt { .. }
        ));
    }

    #[test]
    fn a_record_under_another_key_is_locked_not_corrupt() {
        let (k1, k2) = (ring(1), ring(2));
        let mut out = Vec::new();
        let n = encode_event(&mut out, &ev(1, b"p"), &SegmentCipher::sealed(&k1, 1), None).unwrap();
        encode_event(&mut out, &ev(2, b"p"), &SegmentCipher::sealed(&k2, 1), None).unwrap();
        let c2 = SegmentCipher::sealed(&k2, 1);
        let mut scratch = Vec::new();
        match scan(&out, 0, &c2, &mut scratch) {
            Scan::Locked { key, next } => {
                assert_eq!(key, k1.current());
                assert_eq!(next, n);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            scan(&out, n, &c2, &mut scratch),
            Scan::Record { .. }
        ));
        // Resynchronising after damage stops at a locked record too.
        let mut damaged = vec![0xff; 5];
        damaged.extend_from_slice(&out);
        assert!(matches!(
            scan(&damaged, 0, &c2, &mut scratch),
            Scan::Corrupt { resume: 5, .. }
        ));
    }

    #[test]
    fn headers_say_whether_bodies_are_sealed() {
        let h = header(3, 1, true);
        assert!(header_ok(&h, 3) && is_encrypted(&h) && other_version(&h).is_none());
        let h = header(3, 1, false);
        assert!(header_ok(&h, 3) && !is_encrypted(&h));
        assert!(is_linked(&h) && is_linked(&header(3, 1, true)));
        let mut h2 = h;
        h2[4] = 2;
        assert!(header_ok(&h2, 3) && !is_linked(&h2) && other_version(&h2).is_none());
        let mut h6 = h;
        h6[4] = 6;
        assert_eq!(other_version(&h6), Some(6));
        assert!(!header_ok(&h6, 3));
    }
}
