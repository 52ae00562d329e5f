//! Segment bytes: the file header, record framing and bodies, and the
//! scanner that reads them back and resynchronises after corrupt bytes.
//!
//! See the layout in the parent module. This file knows bytes; it knows
//! nothing about files, commits or indexes.

use std::collections::HashMap;

use auditship_core::Hash;

use crate::store::Watermark;

/// Bytes of the segment file header.
pub const HEADER_LEN: usize = 24;
/// Magic at the start of every segment file.
pub const MAGIC: &[u8; 4] = b"ASG1";
/// Format version in the header. Version 1 (before event records carried
/// their Merkle leaf index and snapshots the chain heads) is not read.
pub const VERSION: u16 = 2;
/// Bytes before a record body: `len u32 LE | crc32c u32 LE`.
pub const FRAME_HEADER: usize = 8;
/// Largest record body. Bigger events are refused at append.
pub const MAX_BODY: usize = 16 << 20;

/// Record kind: one event.
pub const KIND_EVENT: u8 = 1;
/// Record kind: the watermark snapshot at the start of a segment.
pub const KIND_SNAPSHOT: u8 = 2;
/// Record kind: an event whose payload retention removed (see
/// `crate::retention`); it keeps what the Merkle log and the chains need.
pub const KIND_EXPIRED: u8 = 3;

/// Bytes of an expired body before the agent id:
/// kind | queue | seq | ts | leaf | tombstone | hash | prev_hash | agent_len.
pub const EXPIRED_FIXED: usize = 1 + 8 + 8 + 8 + 8 + 8 + 32 + 32 + 2;

/// Bytes of an event body before the agent id:
/// kind | queue | seq | ts | leaf | agent_len.
pub const EVENT_FIXED: usize = 1 + 8 + 8 + 8 + 8 + 2;

/// The header of segment `no`.
pub fn header(no: u64, created_millis: i64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&no.to_le_bytes());
    h[16..24].copy_from_slice(&created_millis.to_le_bytes());
    h
}

/// Whether `data` starts with a valid header of segment `no`.
pub fn header_ok(data: &[u8], no: u64) -> bool {
    data.len() >= HEADER_LEN
        && &data[0..4] == MAGIC
        && data[4..6] == VERSION.to_le_bytes()
        && data[8..16] == no.to_le_bytes()
}

/// The format version of a header with the right magic, if it is another
/// version than this build's (such a segment is not corrupt, it is for
/// another build, and must not be quarantined).
pub fn other_version(data: &[u8]) -> Option<u16> {
    (data.len() >= HEADER_LEN && &data[0..4] == MAGIC)
        .then(|| u16::from_le_bytes([data[4], data[5]]))
        .filter(|&v| v != VERSION)
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

/// Appends a framed expired record to `out`; returns its total length.
pub fn encode_expired(out: &mut Vec<u8>, ev: &ExpiredRecord<'_>) -> usize {
    let start = out.len();
    let body_len = EXPIRED_FIXED + ev.agent.len();
    out.reserve(FRAME_HEADER + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let body = out.len();
    out.push(KIND_EXPIRED);
    out.extend_from_slice(&ev.queue.to_le_bytes());
    out.extend_from_slice(&ev.seq.to_le_bytes());
    out.extend_from_slice(&ev.ts_millis.to_le_bytes());
    out.extend_from_slice(&ev.leaf.to_le_bytes());
    out.extend_from_slice(&ev.tombstone.to_le_bytes());
    out.extend_from_slice(&ev.hash);
    out.extend_from_slice(&ev.prev);
    out.extend_from_slice(&(ev.agent.len() as u16).to_le_bytes());
    out.extend_from_slice(ev.agent.as_bytes());
    let crc = crc32c::crc32c(&out[body..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
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

/// Appends a framed event record to `out`; returns its total length.
///
/// The caller has checked `agent.len() <= u16::MAX` and the body size.
pub fn encode_event(out: &mut Vec<u8>, ev: &EventRecord<'_>) -> usize {
    let start = out.len();
    let body_len = EVENT_FIXED + ev.agent.len() + ev.payload.len();
    out.reserve(FRAME_HEADER + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let body = out.len();
    out.push(KIND_EVENT);
    out.extend_from_slice(&ev.queue.to_le_bytes());
    out.extend_from_slice(&ev.seq.to_le_bytes());
    out.extend_from_slice(&ev.ts_millis.to_le_bytes());
    out.extend_from_slice(&ev.leaf.to_le_bytes());
    out.extend_from_slice(&(ev.agent.len() as u16).to_le_bytes());
    out.extend_from_slice(ev.agent.as_bytes());
    out.extend_from_slice(ev.payload);
    let crc = crc32c::crc32c(&out[body..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

/// Appends a framed snapshot record to `out` (agents sorted, so the bytes
/// are deterministic).
pub fn encode_snapshot(out: &mut Vec<u8>, marks: &HashMap<String, Watermark>, next_leaf: u64) {
    let mut agents: Vec<_> = marks.iter().collect();
    agents.sort_by(|a, b| a.0.cmp(b.0));
    let mut body = Vec::with_capacity(13 + agents.len() * 64);
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
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
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
    /// The end of the data.
    End,
}

/// Checks the frame at `at`: `Ok((body, next))`, or why it is not valid.
pub fn frame_at(data: &[u8], at: usize) -> Result<(Body<'_>, usize), &'static str> {
    let rest = &data[at..];
    if rest.len() < FRAME_HEADER {
        return Err("frame header cut short");
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if len == 0 || len > MAX_BODY {
        return Err("record length out of range");
    }
    if rest.len() - FRAME_HEADER < len {
        return Err("record cut short");
    }
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let body = &rest[FRAME_HEADER..FRAME_HEADER + len];
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch");
    }
    let body = decode(body).ok_or("checksum matches but the body is malformed")?;
    Ok((body, at + FRAME_HEADER + len))
}

/// Reads the record at `at`. On a bad record, looks forward byte by byte
/// for the next frame whose length fits, whose checksum matches and whose
/// body decodes.
pub fn scan(data: &[u8], at: usize) -> Scan<'_> {
    if at >= data.len() {
        return Scan::End;
    }
    match frame_at(data, at) {
        Ok((body, next)) => Scan::Record { body, next },
        Err(reason) => Scan::Corrupt {
            resume: (at + 1..data.len())
                .find(|&p| frame_at(data, p).is_ok())
                .unwrap_or(data.len()),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_snapshot_round_trip() {
        let mut out = Vec::new();
        let ev = EventRecord {
            agent: "web-1",
            queue: 7,
            seq: 42,
            ts_millis: -5,
            leaf: 9,
            payload: b"{\"raw\":\"x\"}",
        };
        let n = encode_event(&mut out, &ev);
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
        encode_snapshot(&mut out, &marks, 10);
        match scan(&out, 0) {
            Scan::Record {
                body: Body::Event(e),
                next,
            } => {
                assert_eq!(e, ev);
                assert_eq!(next, n);
            }
            other => panic!("{other:?}"),
        }
        match scan(&out, n) {
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
        assert!(matches!(scan(&out, out.len()), Scan::End));
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
        let n = encode_expired(&mut out, &x);
        assert_eq!(n, FRAME_HEADER + EXPIRED_FIXED + 5);
        match scan(&out, at) {
            Scan::Record {
                body: Body::Expired(e),
                next,
            } => {
                assert_eq!(e, x);
                assert_eq!(next, out.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn corrupt_record_resumes_at_the_next_valid_one() {
        let mut out = Vec::new();
        let ev = EventRecord {
            agent: "a",
            queue: 1,
            seq: 1,
            ts_millis: 0,
            leaf: 0,
            payload: b"payload bytes",
        };
        let first = encode_event(&mut out, &ev);
        encode_event(&mut out, &EventRecord { seq: 2, ..ev });
        out[first / 2] ^= 0x40;
        match scan(&out, 0) {
            Scan::Corrupt { resume, .. } => assert_eq!(resume, first),
            other => panic!("{other:?}"),
        }
        // Cut short: nothing valid follows.
        match scan(&out[..out.len() - 1], first) {
            Scan::Corrupt { resume, reason } => {
                assert_eq!(resume, out.len() - 1);
                assert_eq!(reason, "record cut short");
            }
            other => panic!("{other:?}"),
        }
    }
}
