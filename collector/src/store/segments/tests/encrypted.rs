//! Tests of the store with encryption at rest on.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use auditship_crypt::{Key, Keyring};

use super::query::check_queries;
use super::*;

fn ring(b: u8) -> Arc<Keyring> {
    Arc::new(Keyring::new(Key::from_bytes([b; 32]), []))
}

fn enc(dir: &Path, segment_bytes: u64, keys: &Arc<Keyring>) -> SegmentConfig {
    SegmentConfig {
        keys: Some(keys.clone()),
        ..config(dir, segment_bytes)
    }
}

/// Plaintext that every populated store holds: raw text, agent ids, hosts,
/// actors, actions and a source address.
const MARKERS: &[&[u8]] = &[
    b"line 7 tag7",
    b"agent-a",
    b"agent-b",
    b"authentication",
    b"logout",
    b"\"u3\"",
    b"10.0.1.",
];

/// Markers found in any file under `dir`, with the file.
fn plaintext_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let data = fs::read(&p).unwrap();
            for m in MARKERS {
                if memchr::memmem::find(&data, m).is_some() {
                    found.push(format!("{} in {}", String::from_utf8_lossy(m), p.display()));
                }
            }
        }
    }
    found
}

#[test]
fn an_encrypted_store_appends_commits_reopens_and_answers_queries_with_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ring(1);
    let (w, r, stored) = populated_with(enc(dir.path(), 4096, &keys));
    assert!(r.stats().segments > 3);
    check_queries(&r, &stored);
    let mut leaves = Vec::new();
    r.for_each_from(0, &mut |leaf, payload| {
        leaves.push((
            leaf,
            match payload {
                crate::store::Leaf::Event(p) => p.to_vec(),
                crate::store::Leaf::Expired(h) => h.to_vec(),
            },
        ));
        Ok(())
    })
    .unwrap();
    assert_eq!(leaves.len(), stored.len());
    assert!(leaves
        .iter()
        .enumerate()
        .all(|(i, (l, p))| *l == i as u64 && p == &stored[i].payload));
    assert_eq!(w.watermarks(), &marks_of(&stored));
    drop((w, r));
    let found = plaintext_in(dir.path());
    assert!(found.is_empty(), "plaintext on disk: {found:?}");
    for e in fs::read_dir(dir.path().join("segments")).unwrap() {
        let data = fs::read(e.unwrap().path()).unwrap();
        assert!(
            data[4..6] == [5, 0] || data[4..6] == [2, 0],
            "segments are version 5, indexes version 2"
        );
    }

    let (mut w, r, rec) = open(enc(dir.path(), 4096, &keys)).unwrap();
    assert_eq!(rec.events, stored.len() as u64);
    assert_eq!(rec.indexes_rebuilt, 0, "sealed indexes open with the key");
    assert!(rec.quarantined.is_empty() && rec.truncated_bytes == 0);
    assert_eq!(w.watermarks(), &marks_of(&stored));
    check_queries(&r, &stored);
    let mut stored = stored;
    let more = batch("agent-a", 1, 121..140);
    put(&mut w, &more);
    stored.extend(more);
    check_queries(&r, &stored);

    // The control: the same events in the clear do show every marker, so
    // the check above can fail.
    let plain = tempfile::tempdir().unwrap();
    drop(populated(plain.path(), 4096));
    let found = plaintext_in(plain.path());
    for m in MARKERS {
        let m = String::from_utf8_lossy(m);
        assert!(
            found.iter().any(|f| f.starts_with(&*m)),
            "{m} not in the clear"
        );
    }
}

#[test]
fn a_torn_tail_of_an_encrypted_segment_is_cut_at_open_and_the_rest_reads() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ring(1);
    let (w, r, stored) = populated_with(enc(dir.path(), 1 << 20, &keys));
    drop((w, r));
    let newest = newest_segment(dir.path());
    let len = fs::metadata(&newest).unwrap().len();
    let mut prefixes = std::collections::BTreeSet::new();
    for cut in (format::HEADER_LEN as u64..len)
        .step_by(97)
        .chain([len - 1, len])
    {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let f = fs::OpenOptions::new()
            .write(true)
            .open(newest_segment(copy.path()))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let (w, r, rec) = open(enc(copy.path(), 1 << 20, &keys)).unwrap();
        assert!(rec.quarantined.is_empty(), "cut {cut}: {rec:?}");
        let got = query_all(&r, &all(1000));
        let n = got.len();
        assert_eq!(got, newest_first(&stored[..n]), "cut {cut}: not a prefix");
        assert_eq!(w.watermarks(), &marks_of(&stored[..n]), "cut {cut}");
        prefixes.insert(n);
        let mut w = w;
        put(&mut w, &batch("agent-z", 1, 1..3));
    }
    assert!(prefixes.len() > 5, "{prefixes:?}");
    assert_eq!(*prefixes.last().unwrap(), stored.len());
}

#[test]
fn an_altered_record_whose_checksum_was_fixed_is_quarantined_as_corruption_not_a_key_error() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ring(1);
    let (w, r, stored) = populated_with(enc(dir.path(), 1 << 20, &keys));
    drop((w, r));
    // The third record of the newest (only) segment: snapshot, event, event.
    let newest = newest_segment(dir.path());
    let mut data = fs::read(&newest).unwrap();
    let mut at = format::HEADER_LEN;
    for _ in 0..2 {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        at += format::FRAME_HEADER + len;
    }
    let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let body = at + format::FRAME_HEADER;
    data[body + 40] ^= 0x01;
    let crc = crc32c::crc32c(&data[body..body + len]);
    data[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&newest, &data).unwrap();
    let (_w, r, rec) = open(enc(dir.path(), 1 << 20, &keys)).unwrap();
    assert_eq!(rec.quarantined.len(), 1, "{rec:?}");
    assert!(rec.quarantined[0].reason.contains("decryption"), "{rec:?}");
    assert_eq!(rec.quarantined[0].offset, at as u64);
    let got = query_all(&r, &all(100));
    assert_eq!(got.len(), stored.len() - 1);
    assert!(!got.contains(&stored[1].stored()));
}

fn key_file(dir: &Path, name: &str, b: u8) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("{}\n", format!("{b:02x}").repeat(32))).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn opening_with_a_wrong_key_or_without_one_fails_naming_the_key_ids_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let kdir = tempfile::tempdir().unwrap();
    let right = key_file(kdir.path(), "right.key", 1);
    let wrong = key_file(kdir.path(), "wrong.key", 2);
    let right = Arc::new(Keyring::load(&right, &[]).unwrap());
    let (w, r, stored) = populated_with(enc(dir.path(), 4096, &right));
    drop((w, r));
    let before: Vec<_> = recover::list_segments(&dir.path().join("segments")).unwrap();
    let wrong = Arc::new(Keyring::load(&wrong, &[]).unwrap());
    let e = open(enc(dir.path(), 4096, &wrong)).err().unwrap();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Key { .. }), "{msg}");
    assert!(
        msg.contains(&right.current().to_string())
            && msg.contains(&wrong.current().to_string())
            && msg.contains("wrong.key"),
        "{msg}"
    );
    let e = open(config(dir.path(), 4096)).err().unwrap().to_string();
    assert!(
        e.contains(&right.current().to_string()) && e.contains("no key was given"),
        "{e}"
    );
    // Nothing was cut or quarantined on the way: the right key still reads all.
    assert_eq!(
        recover::list_segments(&dir.path().join("segments")).unwrap(),
        before
    );
    assert!(!dir.path().join("quarantine").exists());
    let (_w, r, rec) = open(enc(dir.path(), 4096, &right)).unwrap();
    assert_eq!(rec.indexes_rebuilt, 0);
    check_queries(&r, &stored);
}

#[test]
fn after_a_key_rotation_records_under_both_keys_read_and_the_old_key_stays_needed() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
    let old_only = Arc::new(Keyring::new(Key::from_bytes([1; 32]), []));
    let (w, r, mut stored) = populated_with(enc(dir.path(), 4096, &old_only));
    drop((w, r));
    let rotated = Arc::new(Keyring::new(new, [old]));
    let (mut w, r, rec) = open(enc(dir.path(), 4096, &rotated)).unwrap();
    assert_eq!(rec.indexes_rebuilt, 0);
    for round in 0..6 {
        let more = batch("agent-c", 1, round * 10 + 1..round * 10 + 11);
        put(&mut w, &more);
        stored.extend(more);
    }
    check_queries(&r, &stored);
    drop((w, r));
    // Without the old key the store does not open.
    let new_only = Arc::new(Keyring::new(Key::from_bytes([2; 32]), []));
    let e = open(enc(dir.path(), 4096, &new_only))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&old_only.current().to_string()), "{e}");
    let (_w, r, _) = open(enc(dir.path(), 4096, &rotated)).unwrap();
    check_queries(&r, &stored);
}

#[test]
fn turning_encryption_on_starts_an_encrypted_segment_and_old_plaintext_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, mut stored) = populated(dir.path(), 1 << 20);
    assert_eq!(r.stats().segments, 1);
    drop((w, r));
    let keys = ring(1);
    let (mut w, r, _) = open(enc(dir.path(), 1 << 20, &keys)).unwrap();
    let more = batch("agent-c", 1, 1..20);
    put(&mut w, &more);
    stored.extend(more);
    assert_eq!(r.stats().segments, 2, "the plaintext segment was sealed");
    check_queries(&r, &stored);
    drop((w, r));
    let segs = dir.path().join("segments");
    let s1 = fs::read(recover::segment_path(&segs, 1)).unwrap();
    let s2 = fs::read(recover::segment_path(&segs, 2)).unwrap();
    assert!(!format::is_encrypted(&s1) && format::is_encrypted(&s2));
    assert!(memchr::memmem::find(&s2, b"agent-c").is_none());
    let i1 = fs::read(recover::index_path(&segs, 1)).unwrap();
    assert_eq!(
        i1[4..6],
        [1, 0],
        "a plaintext segment keeps a plaintext index"
    );
    let (w, r, rec) = open(enc(dir.path(), 1 << 20, &keys)).unwrap();
    assert_eq!(rec.indexes_rebuilt, 0);
    check_queries(&r, &stored);
    drop((w, r));
    // Turning it off again needs the key for what was encrypted.
    let e = open(config(dir.path(), 1 << 20)).err().unwrap().to_string();
    assert!(e.contains(&keys.current().to_string()), "{e}");
}

#[test]
fn an_index_in_the_clear_for_an_encrypted_segment_is_rebuilt_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ring(1);
    let (w, r, stored) = populated_with(enc(dir.path(), 4096, &keys));
    let meta = r.shared.lock().sealed[0];
    drop((w, r));
    let segs = dir.path().join("segments");
    let idx = recover::index_path(&segs, meta.no);
    // Replace the index with one in the clear (as a build without the key
    // handling would write).
    let scanned = recover::scan_segment(
        &segs,
        &dir.path().join("quarantine"),
        meta.no,
        false,
        &mut Recovery::default(),
        Some(&keys),
    )
    .unwrap()
    .unwrap();
    index::write(
        &idx,
        meta.no,
        meta.len,
        &scanned.index.dicts,
        &[&scanned.entries],
        None,
    )
    .unwrap();
    assert!(index::IndexFile::open(&idx, meta.no, meta.len, true, Some(&keys)).is_err());
    assert!(index::IndexFile::open(&idx, meta.no, meta.len, false, None).is_ok());
    let (_w, r, rec) = open(enc(dir.path(), 4096, &keys)).unwrap();
    assert_eq!(rec.indexes_rebuilt, 1);
    let data = fs::read(&idx).unwrap();
    assert_eq!(data[4..6], [2, 0]);
    assert!(memchr::memmem::find(&data, b"authentication").is_none());
    check_queries(&r, &stored);
    // Under another key the index is unusable (and the segment says which key).
    let other = ring(9);
    assert!(index::IndexFile::open(&idx, meta.no, meta.len, true, Some(&other)).is_err());
}

#[test]
fn rekey_reencrypts_plaintext_and_old_key_segments_so_the_old_key_is_no_longer_needed() {
    let dir = tempfile::tempdir().unwrap();
    // Segments in the clear, then under key 1, then under key 2.
    let (w, r, mut stored) = populated(dir.path(), 4096);
    drop((w, r));
    let k1 = ring(1);
    let (mut w, r, _) = open(enc(dir.path(), 4096, &k1)).unwrap();
    let more = batch("agent-c", 1, 1..40);
    put(&mut w, &more);
    stored.extend(more);
    drop((w, r));
    let rotated = Arc::new(Keyring::new(
        Key::from_bytes([2; 32]),
        [Key::from_bytes([1; 32])],
    ));
    let (mut w, r, _) = open(enc(dir.path(), 4096, &rotated)).unwrap();
    let more = batch("agent-d", 1, 1..40);
    put(&mut w, &more);
    stored.extend(more);
    let mut leaves_before = Vec::new();
    r.for_each_from(0, &mut |l, p| {
        leaves_before.push((l, p.leaf_hash()));
        Ok(())
    })
    .unwrap();
    // Not while the store is open.
    let e = rekey::rekey(dir.path(), &rotated, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
    drop((w, r));
    assert!(!plaintext_in(dir.path()).is_empty());
    let lens_before: Vec<u64> = recover::list_segments(&dir.path().join("segments"))
        .unwrap()
        .into_iter()
        .map(|n| {
            fs::metadata(recover::segment_path(&dir.path().join("segments"), n))
                .unwrap()
                .len()
        })
        .collect();
    // A leftover of an interrupted run is cleared.
    let leftover = dir
        .path()
        .join("segments")
        .join(format!("{:020}.seg.rekey", 1));
    fs::write(&leftover, b"half written").unwrap();

    let mut calls = 0;
    let rep = rekey::rekey(dir.path(), &rotated, &mut |_, _| calls += 1).unwrap();
    assert!(!leftover.exists());
    assert_eq!(calls, rep.segments);
    assert!(
        rep.were_plain > 0 && rep.rewritten > rep.were_plain,
        "{rep:?}"
    );
    assert!(rep.damaged.is_empty());
    assert!(
        plaintext_in(dir.path()).is_empty(),
        "{:?}",
        plaintext_in(dir.path())
    );
    // Only the new key from now on: opens without rebuilding an index,
    // answers every query, and the leaves are the same payloads.
    let new_only = Arc::new(Keyring::new(Key::from_bytes([2; 32]), []));
    let (_w, r, rec) = open(enc(dir.path(), 4096, &new_only)).unwrap();
    assert_eq!(rec.indexes_rebuilt, 0);
    assert!(rec.quarantined.is_empty() && rec.truncated_bytes == 0);
    check_queries(&r, &stored);
    let mut leaves_after = Vec::new();
    r.for_each_from(0, &mut |l, p| {
        leaves_after.push((l, p.leaf_hash()));
        Ok(())
    })
    .unwrap();
    assert_eq!(leaves_after, leaves_before);
    drop((_w, r));
    // Plaintext segments grew by the cipher's overhead per record; sealed
    // ones kept their length (so offsets in the Merkle-bound order hold).
    let lens_after: Vec<u64> = recover::list_segments(&dir.path().join("segments"))
        .unwrap()
        .into_iter()
        .map(|n| {
            fs::metadata(recover::segment_path(&dir.path().join("segments"), n))
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(lens_before.len(), lens_after.len());
    assert!(lens_before.iter().zip(&lens_after).all(|(b, a)| a >= b));
    // A second run has nothing to do.
    let again = rekey::rekey(dir.path(), &new_only, &mut |_, _| {}).unwrap();
    assert_eq!(
        (again.rewritten, again.indexes_rebuilt),
        (0, 0),
        "{again:?}"
    );
}

#[test]
fn rekey_without_the_old_key_stops_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r, stored) = populated_with(enc(dir.path(), 4096, &ring(1)));
    drop((w, r));
    let before: Vec<Vec<u8>> = recover::list_segments(&dir.path().join("segments"))
        .unwrap()
        .into_iter()
        .map(|n| fs::read(recover::segment_path(&dir.path().join("segments"), n)).unwrap())
        .collect();
    let e = rekey::rekey(dir.path(), &ring(2), &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, StoreError::Key { .. }), "{e}");
    assert!(e.to_string().contains(&ring(1).current().to_string()));
    let after: Vec<Vec<u8>> = recover::list_segments(&dir.path().join("segments"))
        .unwrap()
        .into_iter()
        .map(|n| fs::read(recover::segment_path(&dir.path().join("segments"), n)).unwrap())
        .collect();
    assert_eq!(before, after);
    let (_w, r, _) = open(enc(dir.path(), 4096, &ring(1))).unwrap();
    check_queries(&r, &stored);
}

// Merging retention with encryption: the rewriter used to scan segments as
// if in the clear and wrote expired records unsealed. An encrypted
// segment must be rewritten sealed, keep every leaf hash, stay readable
// after a reopen, and hold no plaintext afterwards.
#[test]
fn a_retention_rewrite_of_an_encrypted_segment_keeps_it_sealed_and_its_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ring(5);
    let (w, r, stored) = populated_with(enc(dir.path(), 4096, &keys));
    let hashes_before = {
        let mut v = Vec::new();
        r.for_each_from(0, &mut |l, p| {
            v.push((l, p.leaf_hash()));
            Ok(())
        })
        .unwrap();
        v
    };
    let m = r.maintenance();
    let first = m.sealed()[0];
    let data = m.read(first.no).unwrap();
    let mut agent_a = Vec::new();
    walk::records(&data, first.no, m.keys(), &mut |rec| {
        if let walk::Record::Event { agent, leaf, .. } = rec {
            if agent == "agent-a" {
                agent_a.push(leaf);
            }
        }
    })
    .unwrap();
    assert!(!agent_a.is_empty());
    // Without the keys the records cannot even be listed.
    assert!(walk::records(&data, first.no, None, &mut |_| {}).is_err());
    let done = m
        .rewrite(first.no, &data, &|l| agent_a.contains(&l).then_some(9999))
        .unwrap();
    assert_eq!(done.expired, agent_a.len() as u64);
    let after = m.read(first.no).unwrap();
    assert!(format::is_encrypted(&after));
    let leaves = walk::segment_leaves(&after, first.no, Some(&keys)).unwrap();
    assert_eq!(
        leaves.iter().filter(|l| !l.payload).count(),
        agent_a.len(),
        "the expired records open under the key"
    );
    assert!(
        plaintext_in(dir.path()).is_empty(),
        "{:?}",
        plaintext_in(dir.path())
    );
    drop((w, r));
    let (_w, r, rec) = open(enc(dir.path(), 4096, &keys)).unwrap();
    assert!(rec.quarantined.is_empty());
    let mut hashes_after = Vec::new();
    r.for_each_from(0, &mut |l, p| {
        hashes_after.push((l, p.leaf_hash()));
        Ok(())
    })
    .unwrap();
    assert_eq!(hashes_after, hashes_before, "every leaf hash is kept");
    let left = stored.len() - agent_a.len();
    let q = Query {
        limit: 10_000,
        ..Query::default()
    };
    assert_eq!(r.query(&q).unwrap().events.len(), left);
}
