//! Linked event records (kind 4): sealed events stored with their chain
//! hashes in binary, read back as the exact sealed lines; and stores
//! written by earlier builds (version 2 segments of kind 1 records).

use super::*;
use crate::store::segments::cipher::SegmentCipher;
use crate::store::segments::format::{self, Body, Scan};

fn kinds_in(data: &[u8]) -> Vec<u8> {
    let c = SegmentCipher::plain(1);
    let mut at = format::HEADER_LEN;
    let mut kinds = Vec::new();
    let mut scratch = Vec::new();
    while at < data.len() {
        let (plain, next) = format::open_frame(data, at, &c, &mut scratch).unwrap();
        kinds.push(plain[0]);
        at = next;
    }
    kinds
}

#[test]
fn a_sealed_event_is_stored_linked_and_reads_back_byte_for_byte() {
    let ev = Ev::new("web-1", 9, 1);
    let rec = |payload: &'static [u8]| format::EventRecord {
        agent: "web-1",
        queue: 9,
        seq: 1,
        ts_millis: 5,
        leaf: 3,
        payload,
    };
    let payload: &'static [u8] = ev.payload.clone().leak();
    let c = SegmentCipher::plain(1);
    let (mut linked, mut plain) = (Vec::new(), Vec::new());
    let link = Some((&ev.hash, &auditship_core::seal::GENESIS));
    let n = format::encode_event(&mut linked, &rec(payload), &c, link).unwrap();
    format::encode_event(&mut plain, &rec(payload), &c, None).unwrap();
    assert_eq!(linked[format::FRAME_HEADER], format::KIND_LINKED);
    assert_eq!(plain[format::FRAME_HEADER], format::KIND_EVENT);
    // 154 bytes of JSON suffix became 64 bytes of hashes and the
    // canonical bytes' closing brace.
    assert_eq!(
        plain.len() - linked.len(),
        auditship_core::seal::SUFFIX_LEN - 64 - 1
    );
    let mut scratch = Vec::new();
    let (body, next) = format::frame_at(&linked, 0, &c, &mut scratch).unwrap();
    assert_eq!(next, n);
    assert_eq!(body, Body::Event(rec(payload)));
}

/// A payload whose suffix is not exactly the one `write_sealed` gives for
/// the link (upper-case hex: the line could not be rebuilt byte for byte),
/// and one that is not sealed at all, are stored as they are.
#[test]
fn a_payload_that_would_not_rebuild_exactly_is_stored_as_it_is() {
    let ev = Ev::new("web-1", 9, 1);
    let cut = ev.payload.len() - auditship_core::seal::SUFFIX_LEN;
    let mut upper = ev.payload.clone();
    // The hex digits of `hash` (after `,"hash":"`) in upper case.
    upper[cut + 9..cut + 9 + 64].make_ascii_uppercase();
    assert_ne!(upper, ev.payload);
    assert!(auditship_core::seal::unseal(&upper).is_some());
    let c = SegmentCipher::plain(1);
    for payload in [&upper[..], b"{\"not\":\"sealed\"}"] {
        let rec = format::EventRecord {
            agent: "a",
            queue: 1,
            seq: 1,
            ts_millis: 0,
            leaf: 0,
            payload,
        };
        let mut out = Vec::new();
        let link = Some((&ev.hash, &auditship_core::seal::GENESIS));
        format::encode_event(&mut out, &rec, &c, link).unwrap();
        assert_eq!(out[format::FRAME_HEADER], format::KIND_EVENT);
        let mut scratch = Vec::new();
        let (body, _) = format::frame_at(&out, 0, &c, &mut scratch).unwrap();
        assert_eq!(body, Body::Event(rec));
    }
}

/// A linked record whose hashes or canonical bytes are cut is corrupt
/// (its checksum is fixed up, as damage that passes the CRC would be).
#[test]
fn a_malformed_linked_record_is_corrupt_not_misread() {
    let ev = Ev::new("web-1", 9, 1);
    let c = SegmentCipher::plain(1);
    let rec = format::EventRecord {
        agent: "web-1",
        queue: 9,
        seq: 1,
        ts_millis: 0,
        leaf: 0,
        payload: &ev.payload,
    };
    let mut good = Vec::new();
    let link = Some((&ev.hash, &auditship_core::seal::GENESIS));
    format::encode_event(&mut good, &rec, &c, link).unwrap();
    assert_eq!(good[format::FRAME_HEADER], format::KIND_LINKED);
    let body_at = format::FRAME_HEADER;
    let fixed = format::EVENT_FIXED + "web-1".len();
    for keep in [fixed + 10, fixed + 64, fixed + 65] {
        let body = good[body_at..body_at + keep].to_vec();
        let mut bad = Vec::new();
        format::frame_body(&mut bad, &c, &body).unwrap();
        assert!(
            matches!(
                format::scan(&bad, 0, &c, &mut Vec::new()),
                Scan::Corrupt { .. }
            ),
            "{keep}"
        );
    }
}

/// A store written by an earlier build: its active segment is version 2
/// and holds kind 1 records, which that build would take linked records
/// for damage in. After the upgrade, appends start a new (version 4)
/// segment, the old one is left byte for byte, and every event reads back.
#[test]
fn appends_after_an_upgrade_start_a_linked_segment_and_leave_the_old_one_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, mut stored) = populated(dir.path(), 1 << 20);
    assert_eq!(r.stats().segments, 1);
    drop((w, r));
    // Rewrite segment 1 as the earlier build wrote it.
    let seg = recover::segment_path(&dir.path().join("segments"), 1);
    let data = fs::read(&seg).unwrap();
    assert!(format::is_linked(&data));
    assert!(kinds_in(&data).contains(&format::KIND_LINKED));
    let c = SegmentCipher::plain(1);
    let mut old = data[..format::HEADER_LEN].to_vec();
    old[4..6].copy_from_slice(&format::VERSION.to_le_bytes());
    let mut at = format::HEADER_LEN;
    let mut scratch = Vec::new();
    while at < data.len() {
        let (kind1, next) = format::open_frame(&data, at, &c, &mut scratch).unwrap();
        let kind1 = if kind1[0] == format::KIND_LINKED {
            let mut s2 = Vec::new();
            let (body, _) = format::frame_at(&data, at, &c, &mut s2).unwrap();
            let Body::Event(ev) = body else { panic!() };
            let mut f = Vec::new();
            format::encode_event(&mut f, &ev, &c, None).unwrap();
            f[format::FRAME_HEADER..].to_vec()
        } else {
            kind1.to_vec()
        };
        format::frame_body(&mut old, &c, &kind1).unwrap();
        at = next;
    }
    assert_eq!(
        kinds_in(&old)
            .iter()
            .filter(|&&k| k == format::KIND_LINKED)
            .count(),
        0
    );
    fs::write(&seg, &old).unwrap();
    let _ = fs::remove_file(seg.with_extension("idx"));

    let (mut w, r, rec) = open(config(dir.path(), 1 << 20)).unwrap();
    assert!(rec.quarantined.is_empty() && rec.truncated_bytes == 0);
    assert_eq!(query_all(&r, &all(50)), newest_first(&stored));
    let more = batch("agent-a", 1, 121..125);
    put(&mut w, &more);
    stored.extend(more);
    assert_eq!(r.stats().segments, 2, "the old segment is not appended to");
    assert_eq!(fs::read(&seg).unwrap(), old);
    let new = fs::read(recover::segment_path(&dir.path().join("segments"), 2)).unwrap();
    assert!(format::is_linked(&new));
    assert_eq!(
        kinds_in(&new),
        [format::KIND_SNAPSHOT, 4, 4, 4, 4],
        "a snapshot, then the four events linked"
    );
    assert_eq!(query_all(&r, &all(50)), newest_first(&stored));
    drop((w, r));
    let (w, r, _) = open(config(dir.path(), 1 << 20)).unwrap();
    assert_eq!(query_all(&r, &all(50)), newest_first(&stored));
    assert_eq!(w.watermarks(), &marks_of(&stored));
}
