//! Record framing and bodies, and the scanner that reads them back.
//!
//! See the format description in the parent module. This file knows bytes;
//! it knows nothing about files, commits or acknowledgements. Bodies pass
//! through the segment's [`BodyCipher`] (in the clear, or sealed) between
//! the frame and the body encoding.

use std::collections::BTreeMap;

use auditship_crypt::{BodyCipher, KeyId, OpenError, SealError};

/// Bytes before a record body: `len u32 LE | crc32c u32 LE`.
pub const FRAME_HEADER: usize = 8;

/// Record kinds.
pub const KIND_EVENT: u8 = 1;
/// A positions snapshot at the start of a segment.
pub const KIND_SNAPSHOT: u8 = 2;
/// A stream whose position is no longer needed.
pub const KIND_FORGET: u8 = 3;
/// An event with its link in the agent's hash chain.
pub const KIND_LINKED_EVENT: u8 = 4;

/// An event's link in the agent's hash chain (see [`crate::seal`]): its
/// chain hash and its predecessor's, kept in the record as 64 bytes rather
/// than in the payload as 154 bytes of JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainLink {
    /// The event's chain hash.
    pub hash: [u8; 32],
    /// The chain hash of the event before it (`prev_hash`).
    pub prev: [u8; 32],
}

/// A decoded record body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// An event with the input position it came from.
    Event {
        /// Record id.
        id: u64,
        /// Opaque input stream key.
        stream: &'a [u8],
        /// Opaque input position after this event.
        position: &'a [u8],
        /// The event's chain link, for a sealed event (kind 4).
        link: Option<ChainLink>,
        /// The event (opaque; a sealed event's canonical encoding).
        payload: &'a [u8],
    },
    /// Latest positions of all streams when the segment was started.
    Snapshot {
        /// Id of the last record before this segment (0 if none).
        last_id: u64,
        /// stream -> position.
        positions: BTreeMap<Vec<u8>, Vec<u8>>,
    },
    /// A stream to drop from the positions map.
    Forget {
        /// Id of the last record before this one.
        last_id: u64,
        /// The stream.
        stream: &'a [u8],
    },
}

/// Appends a framed event record to `out`: kind 4 with a chain link,
/// kind 1 without.
pub fn encode_event(
    out: &mut Vec<u8>,
    c: &BodyCipher<'_>,
    id: u64,
    stream: &[u8],
    position: &[u8],
    link: Option<&ChainLink>,
    payload: &[u8],
) -> Result<(), SealError> {
    frame(out, c, |b| {
        b.push(if link.is_some() {
            KIND_LINKED_EVENT
        } else {
            KIND_EVENT
        });
        b.extend_from_slice(&id.to_le_bytes());
        short(b, stream);
        short(b, position);
        if let Some(l) = link {
            b.extend_from_slice(&l.hash);
            b.extend_from_slice(&l.prev);
        }
        b.extend_from_slice(payload);
    })
}

/// Body bytes of an event record, before sealing.
pub fn event_body_len(stream: &[u8], position: &[u8], linked: bool, payload: &[u8]) -> usize {
    1 + 8 + 2 + stream.len() + 2 + position.len() + if linked { 64 } else { 0 } + payload.len()
}

/// Appends a framed snapshot record to `out`.
pub fn encode_snapshot(
    out: &mut Vec<u8>,
    c: &BodyCipher<'_>,
    last_id: u64,
    positions: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), SealError> {
    frame(out, c, |b| {
        b.push(KIND_SNAPSHOT);
        b.extend_from_slice(&last_id.to_le_bytes());
        b.extend_from_slice(&(positions.len() as u32).to_le_bytes());
        for (k, v) in positions {
            short(b, k);
            short(b, v);
        }
    })
}

/// Appends a framed forget record to `out`.
pub fn encode_forget(
    out: &mut Vec<u8>,
    c: &BodyCipher<'_>,
    last_id: u64,
    stream: &[u8],
) -> Result<(), SealError> {
    frame(out, c, |b| {
        b.push(KIND_FORGET);
        b.extend_from_slice(&last_id.to_le_bytes());
        short(b, stream);
    })
}

fn short(b: &mut Vec<u8>, s: &[u8]) {
    debug_assert!(s.len() <= u16::MAX as usize);
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s);
}

fn frame(
    out: &mut Vec<u8>,
    c: &BodyCipher<'_>,
    body: impl FnOnce(&mut Vec<u8>),
) -> Result<(), SealError> {
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
    Ok(())
}

/// Decodes a body whose checksum already matched.
pub fn decode(body: &[u8]) -> Option<Body<'_>> {
    let (&kind, rest) = body.split_first()?;
    let id = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let mut r = &rest[8..];
    match kind {
        KIND_EVENT | KIND_LINKED_EVENT => {
            let stream = take_short(&mut r)?;
            let position = take_short(&mut r)?;
            let link = if kind == KIND_LINKED_EVENT {
                let l = ChainLink {
                    hash: r.get(..32)?.try_into().ok()?,
                    prev: r.get(32..64)?.try_into().ok()?,
                };
                r = &r[64..];
                Some(l)
            } else {
                None
            };
            Some(Body::Event {
                id,
                stream,
                position,
                link,
                payload: r,
            })
        }
        KIND_SNAPSHOT => {
            let n = u32::from_le_bytes(r.get(..4)?.try_into().ok()?);
            r = &r[4..];
            let mut positions = BTreeMap::new();
            for _ in 0..n {
                let k = take_short(&mut r)?;
                let v = take_short(&mut r)?;
                positions.insert(k.to_vec(), v.to_vec());
            }
            r.is_empty().then_some(Body::Snapshot {
                last_id: id,
                positions,
            })
        }
        KIND_FORGET => {
            let stream = take_short(&mut r)?;
            r.is_empty().then_some(Body::Forget {
                last_id: id,
                stream,
            })
        }
        _ => None,
    }
}

/// The chain link of the last linked event whose frame and link can still
/// be made out in `bytes` (a range that failed its checksum, read in the
/// clear), walking frames from the first without checking them. Damage in
/// an event's payload, the bulk of its bytes, leaves its link readable.
pub fn last_link_in_damage(bytes: &[u8]) -> Option<ChainLink> {
    let mut found = None;
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + FRAME_HEADER) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let body = &bytes[at + FRAME_HEADER..bytes.len().min(at + FRAME_HEADER + len)];
        if let Some((&KIND_LINKED_EVENT, rest)) = body.split_first() {
            let mut r = rest.get(8..).unwrap_or_default();
            let link = take_short(&mut r)
                .and_then(|_| take_short(&mut r))
                .and_then(|_| r.get(..64));
            if let Some(l) = link {
                found = Some(ChainLink {
                    hash: l[..32].try_into().expect("32 bytes"),
                    prev: l[32..].try_into().expect("32 bytes"),
                });
            }
        }
        if len == 0 {
            break;
        }
        at += FRAME_HEADER + len;
    }
    found
}

fn take_short<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = u16::from_le_bytes(r.get(..2)?.try_into().ok()?) as usize;
    let s = r.get(2..2 + n)?;
    *r = &r[2 + n..];
    Some(s)
}

/// What the scanner found at a point in a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan<'a> {
    /// A valid record: its body, and the offset just after it.
    Record(Body<'a>, usize),
    /// Bytes that are not a valid record, from `start` to `resume` (where the
    /// next valid record begins, or the end of the data).
    Corrupt {
        /// Offset of the first bad byte.
        start: usize,
        /// Offset of the next valid record, or the end.
        resume: usize,
    },
    /// An intact record sealed under a key that was not given (not
    /// corruption: the caller stops with an error), and the offset after it.
    Locked(KeyId, usize),
    /// A record cut short by the end of the data (a torn write).
    Torn,
    /// Nothing left.
    End,
}

/// Reads the record at `at` in `data`.
///
/// A frame whose length runs past the end is [`Scan::Torn`] unless a valid
/// record can be found after it, in which case it is corrupt. A frame whose
/// checksum, authentication (sealed) or body is bad is [`Scan::Corrupt`],
/// and the scanner searches forward byte by byte for the next frame whose
/// length fits, whose checksum matches and whose body opens and decodes;
/// everything before it is reported as the corrupt range. `max_body`
/// bounds plausible (plaintext) lengths. A sealed body opens into
/// `scratch`.
pub fn scan<'a>(
    data: &'a [u8],
    at: usize,
    max_body: usize,
    c: &BodyCipher<'_>,
    scratch: &'a mut Vec<u8>,
) -> Scan<'a> {
    if at >= data.len() {
        return Scan::End;
    }
    match frame_at(data, at, max_body, c, scratch) {
        Ok((body, next)) => Scan::Record(body, next),
        Err(Locked(k, next)) => Scan::Locked(k, next),
        Err(Torn) => match resync(data, at + 1, max_body, c) {
            Some(resume) => Scan::Corrupt { start: at, resume },
            None => Scan::Torn,
        },
        Err(Bad) => Scan::Corrupt {
            start: at,
            resume: resync(data, at + 1, max_body, c).unwrap_or(data.len()),
        },
    }
}

enum FrameError {
    Torn,
    Bad,
    Locked(KeyId, usize),
}
use FrameError::{Bad, Locked, Torn};

fn frame_at<'a>(
    data: &'a [u8],
    at: usize,
    max_body: usize,
    c: &BodyCipher<'_>,
    scratch: &'a mut Vec<u8>,
) -> Result<(Body<'a>, usize), FrameError> {
    let header = data.get(at..at + FRAME_HEADER).ok_or(Torn)?;
    let len = u32::from_le_bytes(header[..4].try_into().map_err(|_| Bad)?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().map_err(|_| Bad)?);
    if len == 0 || len > max_body + c.overhead() {
        return Err(Bad);
    }
    let start = at + FRAME_HEADER;
    let stored = data.get(start..start + len).ok_or(Torn)?;
    if crc32c::crc32c(stored) != crc {
        return Err(Bad);
    }
    let body = c.open(stored, scratch).map_err(|e| match e {
        OpenError::UnknownKey(k) => Locked(k, start + len),
        OpenError::Short | OpenError::Forged(_) => Bad,
    })?;
    let decoded = decode(body).ok_or(Bad)?;
    Ok((decoded, start + len))
}

fn resync(data: &[u8], from: usize, max_body: usize, c: &BodyCipher<'_>) -> Option<usize> {
    let mut probe = Vec::new();
    (from..data.len().saturating_sub(FRAME_HEADER)).find(|&i| {
        matches!(
            frame_at(data, i, max_body, c, &mut probe),
            Ok(_) | Err(Locked(..))
        )
    })
}

#[cfg(test)]
mod tests {
    use auditship_crypt::{Domain, Key, Keyring};

    use super::*;

    fn event(id: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_event(
            &mut v,
            &BodyCipher::plain(),
            id,
            b"stream-a",
            b"pos",
            None,
            payload,
        )
        .unwrap();
        v
    }

    /// [`scan`] of a segment in the clear (the scratch buffer is unused).
    fn scan(data: &[u8], at: usize, max_body: usize) -> Scan<'_> {
        super::scan(
            data,
            at,
            max_body,
            &BodyCipher::plain(),
            Box::leak(Box::default()),
        )
    }

    #[test]
    fn round_trips_every_kind() {
        let mut data = event(7, b"{\"a\":1}");
        let link = ChainLink {
            hash: [0xab; 32],
            prev: [0x01; 32],
        };
        encode_event(
            &mut data,
            &BodyCipher::plain(),
            8,
            b"s2",
            b"p2",
            Some(&link),
            b"{\"b\":2}",
        )
        .unwrap();
        let mut positions = BTreeMap::new();
        positions.insert(b"s".to_vec(), b"p".to_vec());
        encode_snapshot(&mut data, &BodyCipher::plain(), 7, &positions).unwrap();
        encode_forget(&mut data, &BodyCipher::plain(), 7, b"s").unwrap();
        let Scan::Record(
            Body::Event {
                id,
                stream,
                position,
                link: None,
                payload,
            },
            next,
        ) = scan(&data, 0, 1 << 20)
        else {
            panic!("event expected");
        };
        assert_eq!(
            (id, stream, position, payload),
            (7, &b"stream-a"[..], &b"pos"[..], &b"{\"a\":1}"[..])
        );
        // A linked event keeps its 64 link bytes apart from the payload.
        let Scan::Record(
            Body::Event {
                id,
                stream,
                position,
                link: Some(got),
                payload,
            },
            next,
        ) = scan(&data, next, 1 << 20)
        else {
            panic!("linked event expected");
        };
        assert_eq!(
            (id, stream, position, got, payload),
            (8, &b"s2"[..], &b"p2"[..], link, &b"{\"b\":2}"[..])
        );
        assert_eq!(
            next - event(7, b"{\"a\":1}").len(),
            FRAME_HEADER + event_body_len(b"s2", b"p2", true, b"{\"b\":2}")
        );
        let Scan::Record(
            Body::Snapshot {
                last_id,
                positions: p,
            },
            next,
        ) = scan(&data, next, 1 << 20)
        else {
            panic!("snapshot expected");
        };
        assert_eq!((last_id, p), (7, positions));
        assert!(matches!(
            scan(&data, next, 1 << 20),
            Scan::Record(Body::Forget { .. }, _)
        ));
    }

    #[test]
    fn a_flipped_byte_is_corrupt_and_the_next_record_is_found() {
        let mut data = event(1, b"first");
        let second = data.len();
        data.extend(event(2, b"second"));
        let third = data.len();
        data.extend(event(3, b"third"));
        data[second + 12] ^= 0x40;
        let Scan::Record(_, next) = scan(&data, 0, 1 << 20) else {
            panic!()
        };
        assert_eq!(
            scan(&data, next, 1 << 20),
            Scan::Corrupt {
                start: second,
                resume: third
            }
        );
        assert!(matches!(
            scan(&data, third, 1 << 20),
            Scan::Record(Body::Event { id: 3, .. }, _)
        ));
    }

    #[test]
    fn a_cut_tail_is_torn() {
        let mut data = event(1, b"first");
        let full = event(2, b"second");
        data.extend_from_slice(&full[..full.len() - 3]);
        let Scan::Record(_, next) = scan(&data, 0, 1 << 20) else {
            panic!()
        };
        assert_eq!(scan(&data, next, 1 << 20), Scan::Torn);
        assert_eq!(scan(&data[..3], 0, 1 << 20), Scan::Torn);
    }

    #[test]
    fn a_corrupted_length_is_not_mistaken_for_a_torn_tail() {
        let mut data = event(1, b"first");
        data.extend(event(2, b"second"));
        // Length of the first record now points far past the end.
        data[2] = 0x7f;
        let Scan::Corrupt { start, resume } = scan(&data, 0, 1 << 30) else {
            panic!()
        };
        assert_eq!(start, 0);
        assert!(matches!(
            scan(&data, resume, 1 << 30),
            Scan::Record(Body::Event { id: 2, .. }, _)
        ));
    }

    #[test]
    fn sealed_records_round_trip_hide_their_content_and_name_a_missing_key() {
        let keys = Keyring::new(Key::from_bytes([1; 32]), []);
        let c = BodyCipher::sealed(&keys, Domain::QUEUE_RECORD, 0);
        let mut data = Vec::new();
        encode_event(
            &mut data,
            &c,
            7,
            b"file-stream",
            b"pos-123",
            None,
            b"{\"raw\":\"alice\"}",
        )
        .unwrap();
        let first = data.len();
        let mut positions = BTreeMap::new();
        positions.insert(b"file-stream".to_vec(), b"pos-123".to_vec());
        encode_snapshot(&mut data, &c, 7, &positions).unwrap();
        for needle in [&b"alice"[..], b"file-stream", b"pos-123"] {
            assert!(!data.windows(needle.len()).any(|w| w == needle));
        }
        let mut scratch = Vec::new();
        let Scan::Record(
            Body::Event {
                id,
                stream,
                payload,
                ..
            },
            next,
        ) = super::scan(&data, 0, 1 << 20, &c, &mut scratch)
        else {
            panic!("event expected");
        };
        assert_eq!(
            (id, stream, payload, next),
            (7, &b"file-stream"[..], &b"{\"raw\":\"alice\"}"[..], first)
        );
        assert!(matches!(
            super::scan(&data, first, 1 << 20, &c, &mut scratch),
            Scan::Record(Body::Snapshot { .. }, _)
        ));
        // Another key: locked, not corrupt.
        let other = Keyring::new(Key::from_bytes([2; 32]), []);
        let c2 = BodyCipher::sealed(&other, Domain::QUEUE_RECORD, 0);
        assert_eq!(
            super::scan(&data, 0, 1 << 20, &c2, &mut scratch),
            Scan::Locked(keys.current(), first)
        );
        // Altered with the checksum fixed: corrupt, and the next record found.
        data[FRAME_HEADER + 40] ^= 1;
        let crc = crc32c::crc32c(&data[FRAME_HEADER..first]);
        data[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            super::scan(&data, 0, 1 << 20, &c, &mut scratch),
            Scan::Corrupt {
                start: 0,
                resume: first
            }
        );
    }
}
