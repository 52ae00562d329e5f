use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use super::recover::list_segments;
use super::*;

fn cfg(dir: &Path) -> QueueConfig {
    QueueConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 64 << 10,
        max_record_bytes: 8 << 10,
        fsync: Fsync::Always,
        encryption: None,
    }
}

/// Every event the reader has, as `(id, payload)`.
pub(super) fn drain(r: &mut QueueReader) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let b = r
            .next_batch(1000, 1 << 20, Duration::from_millis(10))
            .unwrap();
        if b.is_empty() {
            return out;
        }
        out.extend(b.iter().map(|(id, p)| (id, p.to_vec())));
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("{{\"line\":{i}}}").into_bytes()
}

#[test]
fn append_commit_read_ack_and_recover_positions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut w, mut readers, rec) = open(cfg(dir.path()), &["out"]).unwrap();
        assert_eq!(rec.records, 0);
        for i in 1..=10 {
            let id = w
                .append(b"file-a", &i.to_string().into_bytes(), &payload(i))
                .unwrap();
            assert_eq!(id, i);
        }
        // Nothing is visible before the commit.
        assert!(readers[0]
            .next_batch(100, 1 << 20, Duration::from_millis(5))
            .unwrap()
            .is_empty());
        assert_eq!(w.commit().unwrap(), 10);
        let got = drain(&mut readers[0]);
        assert_eq!(got.len(), 10);
        assert_eq!(got[9], (10, payload(10)));
        readers[0].ack(4).unwrap();
    }
    let (_w, mut readers, rec) = open(cfg(dir.path()), &["out"]).unwrap();
    assert_eq!(rec.positions[&b"file-a"[..]], b"10");
    assert_eq!(rec.pending, 6);
    let got = drain(&mut readers[0]);
    assert_eq!(
        got.first().unwrap().0,
        5,
        "resumes after the acknowledgement"
    );
    assert_eq!(got.len(), 6);
}

#[test]
fn uncommitted_appends_are_lost_with_their_positions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut w, _r, _) = open(cfg(dir.path()), &["out"]).unwrap();
        w.append(b"s", b"1", b"one").unwrap();
        w.commit().unwrap();
        w.append(b"s", b"2", b"two").unwrap();
        // A crash: the buffered record never reaches the file.
        std::mem::forget(w);
    }
    let (mut w, mut r, rec) = open(cfg(dir.path()), &["out"]).unwrap();
    assert_eq!(rec.positions[&b"s"[..]], b"1");
    assert_eq!(drain(&mut r[0]).len(), 1);
    // Ids continue after the last durable record.
    assert_eq!(w.append(b"s", b"2", b"two").unwrap(), 2);
}

#[test]
fn positions_survive_deletion_of_acknowledged_segments() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'x'; 4000];
    {
        let (mut w, mut r, _) = open(cfg(dir.path()), &["out"]).unwrap();
        for i in 1..=100u64 {
            w.append(b"a", &i.to_le_bytes(), &big).unwrap();
            w.append(format!("b{}", i % 3).as_bytes(), &i.to_le_bytes(), &big)
                .unwrap();
            w.commit().unwrap();
        }
        w.forget(b"b0");
        w.commit().unwrap();
        let all = drain(&mut r[0]);
        assert_eq!(all.len(), 200);
        r[0].ack(all.last().unwrap().0).unwrap();
        w.append(b"a", &101u64.to_le_bytes(), b"x").unwrap();
        w.commit().unwrap();
    }
    let segs = list_segments(dir.path()).unwrap();
    assert!(
        segs.len() <= 3,
        "acknowledged segments were deleted: {segs:?}"
    );
    let (_w, _r, rec) = open(cfg(dir.path()), &["out"]).unwrap();
    assert_eq!(rec.positions[&b"a"[..]], 101u64.to_le_bytes());
    assert_eq!(rec.positions[&b"b1"[..]], 100u64.to_le_bytes());
    assert!(
        !rec.positions.contains_key(&b"b0"[..]),
        "forgotten stream stays forgotten"
    );
}

#[test]
fn full_queue_refuses_then_accepts_after_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let c = QueueConfig {
        max_bytes: 256 << 10,
        ..cfg(dir.path())
    };
    let (mut w, mut r, _) = open(c, &["out"]).unwrap();
    let rec = vec![b'y'; 2000];
    let mut n = 0u64;
    let err = loop {
        match w.append(b"s", &n.to_le_bytes(), &rec) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        if n % 10 == 0 {
            w.commit().unwrap();
        }
    };
    assert!(matches!(err, QueueError::Full { .. }), "{err}");
    assert!(w.total_bytes() <= 256 << 10);
    // Still full while nobody acknowledges.
    assert!(!w.wait_for_space(2100, Duration::from_millis(20)).unwrap());
    let got = drain(&mut r[0]);
    assert_eq!(got.len() as u64, n);
    r[0].ack(n).unwrap();
    assert!(w.wait_for_space(2100, Duration::from_secs(1)).unwrap());
    w.append(b"s", b"after", &rec).unwrap();
    w.commit().unwrap();
    assert_eq!(drain(&mut r[0]).len(), 1);
}

#[test]
fn torn_tail_is_truncated_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut w, _r, _) = open(cfg(dir.path()), &["out"]).unwrap();
        for i in 1..=5 {
            w.append(b"s", &[i], &payload(i.into())).unwrap();
        }
        w.commit().unwrap();
    }
    let newest = *list_segments(dir.path()).unwrap().last().unwrap();
    let p = segment::path(dir.path(), newest);
    let mut bytes = fs::read(&p).unwrap();
    let mut extra = Vec::new();
    record::encode_event(
        &mut extra,
        &cipher(None, false),
        6,
        b"s",
        &[6],
        None,
        b"half-written",
    )
    .unwrap();
    bytes.extend_from_slice(&extra[..extra.len() / 2]);
    fs::write(&p, &bytes).unwrap();
    let (_w, mut r, rec) = open(cfg(dir.path()), &["out"]).unwrap();
    assert_eq!(rec.truncated_bytes, (extra.len() / 2) as u64);
    assert!(rec.quarantined.is_empty());
    assert_eq!(drain(&mut r[0]).len(), 5);
}

#[test]
fn corrupt_record_is_quarantined_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut w, _r, _) = open(cfg(dir.path()), &["out"]).unwrap();
        for i in 1..=20u64 {
            w.append(b"s", &i.to_le_bytes(), &payload(i)).unwrap();
        }
        w.commit().unwrap();
        // A new active segment, so the corrupt one is closed.
        drop(w);
    }
    let first = list_segments(dir.path()).unwrap()[0];
    let p = segment::path(dir.path(), first);
    let mut bytes = fs::read(&p).unwrap();
    let needle = b"{\"line\":7}";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 3] ^= 0xff;
    fs::write(&p, &bytes).unwrap();
    let (_w, mut r, rec) = open(cfg(dir.path()), &["out"]).unwrap();
    assert_eq!(rec.quarantined.len(), 1);
    assert!(rec.quarantined[0].file.exists());
    let got: Vec<u64> = drain(&mut r[0]).iter().map(|(id, _)| *id).collect();
    assert_eq!(got, (1..=20).filter(|&i| i != 7).collect::<Vec<_>>());
}

#[test]
fn segment_with_a_bad_header_is_set_aside_and_the_queue_opens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut w, _r, _) = open(cfg(dir.path()), &["out"]).unwrap();
        w.append(b"s", b"1", b"one").unwrap();
        w.commit().unwrap();
    }
    let first = list_segments(dir.path()).unwrap()[0];
    let p = segment::path(dir.path(), first);
    let mut bytes = fs::read(&p).unwrap();
    bytes[0] = b'X';
    fs::write(&p, &bytes).unwrap();
    let (mut w, _r, rec) = open(cfg(dir.path()), &["out"]).unwrap();
    assert_eq!(rec.quarantined.len(), 1);
    assert!(
        rec.quarantined[0].reason.contains("magic"),
        "{:?}",
        rec.quarantined[0]
    );
    assert!(w.append(b"s", b"2", b"two").is_ok());
}

#[test]
fn segments_wait_for_every_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, _) = open(cfg(dir.path()), &["a", "b"]).unwrap();
    let big = vec![b'z'; 4000];
    for i in 0..60u64 {
        w.append(b"s", &i.to_le_bytes(), &big).unwrap();
        w.commit().unwrap();
    }
    let before = list_segments(dir.path()).unwrap().len();
    assert!(before > 2);
    let last = drain(&mut r[0]).last().unwrap().0;
    r[0].ack(last).unwrap();
    assert_eq!(
        list_segments(dir.path()).unwrap().len(),
        before,
        "b has not acknowledged"
    );
    drain(&mut r[1]);
    r[1].ack(last).unwrap();
    assert!(list_segments(dir.path()).unwrap().len() < before);
}

#[test]
fn invalid_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = QueueConfig {
        segment_bytes: 1 << 20,
        max_bytes: 1 << 20,
        ..cfg(dir.path())
    };
    assert!(matches!(open(c, &["x"]), Err(QueueError::Config(_))));
    let (mut w, _r, _) = open(cfg(dir.path()), &["x"]).unwrap();
    assert!(matches!(
        w.append(b"s", b"p", &vec![0; 9000]),
        Err(QueueError::TooLarge { .. })
    ));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Cut the newest segment at any byte: the reopened queue holds exactly a
    /// prefix of what was committed, ids are consecutive, and positions match
    /// the last surviving record.
    #[test]
    fn any_cut_leaves_a_consistent_prefix(cut_frac in 0.0f64..1.0, n in 1u64..60) {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _r, _) = open(cfg(dir.path()), &["out"]).unwrap();
            for i in 1..=n {
                w.append(b"s", &i.to_le_bytes(), &payload(i)).unwrap();
                if i % 7 == 0 { w.commit().unwrap(); }
            }
            w.commit().unwrap();
            std::mem::forget(w);
        }
        let newest = *list_segments(dir.path()).unwrap().last().unwrap();
        let p = segment::path(dir.path(), newest);
        let bytes = fs::read(&p).unwrap();
        let cut = segment::HEADER_LEN + ((bytes.len() - segment::HEADER_LEN) as f64 * cut_frac) as usize;
        fs::write(&p, &bytes[..cut]).unwrap();
        let (_w, mut r, rec) = open(cfg(dir.path()), &["out"]).unwrap();
        let got = drain(&mut r[0]);
        let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
        proptest::prop_assert_eq!(&ids, &(1..=ids.len() as u64).collect::<Vec<_>>());
        for (id, p) in &got {
            proptest::prop_assert_eq!(p, &payload(*id));
        }
        let expected: BTreeMap<Vec<u8>, Vec<u8>> = match ids.last() {
            Some(last) => [(b"s".to_vec(), last.to_le_bytes().to_vec())].into(),
            None => BTreeMap::new(),
        };
        proptest::prop_assert_eq!(rec.positions, expected);
        proptest::prop_assert!(rec.quarantined.is_empty());
    }
}

#[test]
fn pipelined_commit_publishes_after_the_background_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'p'; 3000];
    {
        let (mut w, mut r, _) = open(cfg(dir.path()), &["out"]).unwrap();
        for i in 1..=200u64 {
            w.append(b"s", &i.to_le_bytes(), &big).unwrap();
            if i % 10 == 0 {
                w.commit_async().unwrap();
            }
        }
        // Everything handed over arrives, across segment rotations. A pass
        // that found the previous fsync still running is handed over by a
        // later call, as the ingest loop makes one per pass, idle or not.
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.len() < 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "published after fsync: {got:?}"
            );
            w.commit_async().unwrap();
            let b = r[0]
                .next_batch(1000, 1 << 20, Duration::from_millis(50))
                .unwrap();
            got.extend(b.iter().map(|(id, _)| id));
        }
        assert_eq!(got, (1..=200).collect::<Vec<_>>());
        assert!(
            list_segments(dir.path()).unwrap().len() > 2,
            "rotated while pipelined"
        );
    }
    let (_w, _r, rec) = open(cfg(dir.path()), &["out"]).unwrap();
    assert_eq!(rec.positions[&b"s"[..]], 200u64.to_le_bytes());
}

#[test]
fn the_monitor_reports_depth_and_the_age_of_the_oldest_unacked_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut readers, _) = open(cfg(dir.path()), &["a", "b"]).unwrap();
    let m = w.monitor();
    let empty = m.status();
    assert_eq!((empty.pending_records, empty.oldest_unacked_age), (0, None));
    for i in 1..=5 {
        w.append(b"s", b"p", &payload(i)).unwrap();
    }
    w.commit().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for i in 6..=8 {
        w.append(b"s", b"p", &payload(i)).unwrap();
    }
    w.commit().unwrap();
    let s = m.status();
    assert_eq!((s.committed_id, s.acked_id, s.pending_records), (8, 0, 8));
    assert!(s.bytes > 0 && s.max_bytes == 1 << 20);
    let first_age = s.oldest_unacked_age.unwrap();
    assert!(first_age >= Duration::from_millis(300), "{first_age:?}");
    // One output acknowledging is not enough: the slowest output counts.
    drain(&mut readers[0]);
    readers[0].ack(8).unwrap();
    assert_eq!(m.status().pending_records, 8);
    drain(&mut readers[1]);
    readers[1].ack(5).unwrap();
    let s = m.status();
    assert_eq!(s.pending_records, 3);
    // Records 6..8 were committed after the pause: younger than the first.
    assert!(s.oldest_unacked_age.unwrap() < first_age);
    readers[1].ack(8).unwrap();
    assert_eq!(m.status().oldest_unacked_age, None);
}

/// A slice shares its parent's bytes (the collector output cuts every
/// batch into requests; it used to copy each part) and must read exactly
/// like a batch built from the same events: payloads, NDJSON, size and the
/// ids it covers, also for a slice of a slice.
#[test]
fn batch_slices_share_bytes_and_read_like_batches_of_their_events() {
    let events: Vec<(u64, Vec<u8>)> = (0..10u64)
        .map(|i| {
            (
                100 + 2 * i,
                format!("{{\"n\":{}}}", "x".repeat(i as usize)).into_bytes(),
            )
        })
        .collect();
    let mut whole = Batch::default();
    // Every other event sealed: links travel with their events.
    let link = |i: u64| {
        (i % 4 == 0).then(|| ChainLink {
            hash: [i as u8; 32],
            prev: [i as u8 + 1; 32],
        })
    };
    for (id, p) in &events {
        whole.push_for_test(*id, p, link(*id));
    }
    let check = |s: &Batch, a: usize, b: usize, from: u64| {
        let want: Vec<(u64, &[u8])> = events[a..b].iter().map(|(i, p)| (*i, &p[..])).collect();
        let got: Vec<(u64, &[u8])> = s.iter().collect();
        assert_eq!(got, want, "{a}..{b}");
        let nd: Vec<u8> = want
            .iter()
            .flat_map(|(_, p)| [*p, b"\n"].concat())
            .collect();
        assert_eq!(s.ndjson(), &nd[..], "{a}..{b}");
        let links: Vec<_> = want.iter().map(|(i, _)| link(*i)).collect();
        assert_eq!(s.links(), &links[..], "{a}..{b}");
        assert_eq!(s.bytes(), nd.len());
        assert_eq!(s.len(), b - a);
        assert_eq!(s.covers_from(), from);
        assert_eq!(s.last_id(), want.last().map(|w| w.0));
    };
    check(&whole, 0, 10, 100);
    check(&whole.slice(0, 4), 0, 4, 100);
    // Covers from the id after the previous event (ids 107..=108).
    check(&whole.slice(4, 10), 4, 10, 107);
    check(&whole.slice(4, 10).slice(2, 5), 6, 9, 111);
    check(&whole.slice(3, 3), 3, 3, 105);
    assert!(whole.slice(3, 3).ndjson().is_empty());
}

/// A batch stays within `max_bytes` unless its one event is larger.
/// Regression: the reader stopped only once a batch had reached the limit,
/// so a batch was up to one event over it, and the collector output, which
/// cuts requests by the same limit, sent a one-event request after every
/// full one.
#[test]
fn batches_never_pass_max_bytes_except_for_one_larger_event() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, _) = open(cfg(dir.path()), &["out"]).unwrap();
    // 100 payloads of 99 bytes (100 with the newline), then one of 5000.
    for i in 1..=100u64 {
        w.append(b"s", &i.to_le_bytes(), &[b'a'; 99]).unwrap();
    }
    w.append(b"s", &101u64.to_le_bytes(), &[b'b'; 5000])
        .unwrap();
    w.commit().unwrap();
    let mut sizes = Vec::new();
    loop {
        let b = r[0]
            .next_batch(1000, 1050, Duration::from_millis(10))
            .unwrap();
        if b.is_empty() {
            break;
        }
        sizes.push((b.len(), b.bytes()));
    }
    // Ten events of 100 bytes fit 1050; an eleventh would not.
    let mut want = vec![(10, 1000); 10];
    want.push((1, 5001));
    assert_eq!(sizes, want);
}

/// Regression: a segment rotated only at a commit, so with passes of
/// several MiB between commits it grew past `segment_bytes` by up to a pass
/// (84 MB segments with 64 MiB configured). It now rotates as soon as an
/// early write fills it: at most one buffer flush over.
#[test]
fn segments_pass_their_size_by_one_flush_at_most() {
    let dir = tempfile::tempdir().unwrap();
    let segment = 4u64 << 20;
    let config = QueueConfig {
        max_bytes: 256 << 20,
        segment_bytes: segment,
        ..cfg(dir.path())
    };
    let (mut w, _r, _) = open(config, &["out"]).unwrap();
    let big = vec![b'p'; 3000];
    // Passes of ~3 MiB: a commit after every 1,000 appends.
    for i in 1..=10_000u64 {
        w.append(b"s", &i.to_le_bytes(), &big).unwrap();
        if i % 1000 == 0 {
            w.commit_async().unwrap();
        }
    }
    w.commit().unwrap();
    let segments = list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 6, "{segments:?}");
    let limit = segment + writer::FLUSH_AT as u64 + 4096;
    for no in &segments[..segments.len() - 1] {
        let len = fs::metadata(segment::path(dir.path(), *no)).unwrap().len();
        assert!(len <= limit, "segment {no}: {len} bytes, limit {limit}");
    }
}

/// A read takes up to two batches' worth, and the rest serves the next
/// batches instead of being read again (it used to be: every batch read
/// twice its size, half of it for the second time). Records published
/// after a read, in the same segment and the next, still arrive, once and
/// in order, whatever the batch size.
#[test]
fn batches_served_from_an_earlier_read_continue_with_records_published_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut r, _) = open(cfg(dir.path()), &["out"]).unwrap();
    let payload = |i: u64| format!("{{\"line\":{i},\"pad\":\"{}\"}}", "x".repeat(100)).into_bytes();
    let mut want = Vec::new();
    let mut got = Vec::new();
    for round in 0..40u64 {
        for i in 0..25u64 {
            let id = w
                .append(
                    b"s",
                    &(round * 25 + i).to_le_bytes(),
                    &payload(round * 25 + i),
                )
                .unwrap();
            want.push(id);
        }
        w.commit().unwrap();
        // Batches of 7 (~900 bytes) out of reads of ~16 KiB.
        for _ in 0..3 {
            let b = r[0].next_batch(7, 1 << 20, Duration::ZERO).unwrap();
            got.extend(b.iter().map(|(id, p)| {
                assert_eq!(p, payload(id - 1), "payload of {id}");
                id
            }));
        }
    }
    assert!(
        list_segments(dir.path()).unwrap().len() > 1,
        "crossed segments"
    );
    got.extend(drain(&mut r[0]).into_iter().map(|(id, _)| id));
    assert_eq!(got, want);
}
