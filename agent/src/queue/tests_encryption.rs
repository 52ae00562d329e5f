//! Tests of the queue with encryption at rest on.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::tests::drain;
use super::*;

fn key_file(dir: &Path, name: &str, b: u8) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("{}\n", format!("{b:02x}").repeat(32))).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn cfg(dir: &Path, key: Option<&Path>, previous: &[&Path]) -> QueueConfig {
    QueueConfig {
        max_bytes: 1 << 20,
        segment_bytes: 64 << 10,
        max_record_bytes: 8 << 10,
        encryption: key.map(|k| Encryption {
            key_file: k.to_path_buf(),
            previous_key_files: previous.iter().map(|p| p.to_path_buf()).collect(),
        }),
        ..QueueConfig::new(dir.join("queue"))
    }
}

fn event(i: u64) -> Vec<u8> {
    format!("{{\"raw\":\"Accepted password for marker-user-{i} from 198.51.100.{i}\"}}")
        .into_bytes()
}

/// Appends events `from..to` on a stream whose name and positions are
/// markers too, and commits.
fn fill(w: &mut QueueWriter, from: u64, to: u64) {
    for i in from..to {
        w.append(
            b"marker-stream:/var/log/auth.log",
            format!("marker-pos-{i}").as_bytes(),
            &event(i),
        )
        .unwrap();
    }
    w.forget(b"marker-gone-stream");
    w.commit().unwrap();
}

fn plaintext_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                let data = fs::read(&p).unwrap();
                for m in [
                    &b"marker-user"[..],
                    b"198.51.100.",
                    b"marker-stream",
                    b"marker-pos",
                ] {
                    if data.windows(m.len()).any(|w| w == m) {
                        found.push(format!("{} in {}", String::from_utf8_lossy(m), p.display()));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn an_encrypted_queue_delivers_recovers_positions_and_holds_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "queue.key", 1);
    {
        let (mut w, mut r, _) = open(cfg(dir.path(), Some(&key), &[]), &["out"]).unwrap();
        w.append(b"marker-gone-stream", b"x", b"").unwrap();
        fill(&mut w, 1, 200);
        let got = drain(&mut r[0]);
        assert_eq!(got.len(), 199);
        assert_eq!(got[9], (11, event(10)));
        r[0].ack(50).unwrap();
    }
    assert!(
        plaintext_in(dir.path()).is_empty(),
        "{:?}",
        plaintext_in(dir.path())
    );
    let (_w, mut r, rec) = open(cfg(dir.path(), Some(&key), &[]), &["out"]).unwrap();
    assert!(
        rec.quarantined.is_empty() && rec.truncated_bytes == 0,
        "{rec:?}"
    );
    assert_eq!(
        rec.positions[&b"marker-stream:/var/log/auth.log"[..]],
        b"marker-pos-199"
    );
    assert!(!rec.positions.contains_key(&b"marker-gone-stream"[..]));
    let got = drain(&mut r[0]);
    assert_eq!(got.first().map(|g| g.0), Some(51));
    assert_eq!(got.len(), 150);
    // The control: in the clear, the same records show every marker.
    let plain = tempfile::tempdir().unwrap();
    {
        let (mut w, _r, _) = open(cfg(plain.path(), None, &[]), &["out"]).unwrap();
        w.append(b"marker-gone-stream", b"x", b"").unwrap();
        fill(&mut w, 1, 20);
    }
    assert_eq!(plaintext_in(plain.path()).len(), 4);
}

#[test]
fn a_wrong_or_missing_key_stops_the_queue_at_open_naming_the_key_ids() {
    let dir = tempfile::tempdir().unwrap();
    let right = key_file(dir.path(), "right.key", 1);
    let wrong = key_file(dir.path(), "wrong.key", 2);
    {
        let (mut w, _r, _) = open(cfg(dir.path(), Some(&right), &[]), &["out"]).unwrap();
        fill(&mut w, 1, 30);
    }
    let right_id = auditship_crypt::Key::load(&right).unwrap().id().to_string();
    let wrong_id = auditship_crypt::Key::load(&wrong).unwrap().id().to_string();
    let e = open(cfg(dir.path(), Some(&wrong), &[]), &["out"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&right_id) && e.contains(&wrong_id) && e.contains("wrong.key"),
        "{e}"
    );
    let e = open(cfg(dir.path(), None, &[]), &["out"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&right_id) && e.contains("no key was given"),
        "{e}"
    );
    // Nothing was quarantined or cut on the way.
    let (_w, mut r, rec) = open(cfg(dir.path(), Some(&right), &[]), &["out"]).unwrap();
    assert!(
        rec.quarantined.is_empty() && rec.truncated_bytes == 0,
        "{rec:?}"
    );
    assert_eq!(drain(&mut r[0]).len(), 29);
    // A key file that is not a key is named too.
    let bad = dir.path().join("bad.key");
    fs::write(&bad, "nope").unwrap();
    drop((_w, r));
    let e = open(cfg(dir.path(), Some(&bad), &[]), &["out"])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("bad.key"), "{e}");
}

#[test]
fn after_a_rotation_old_segments_are_read_with_the_previous_key_and_new_ones_use_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = key_file(dir.path(), "k1.key", 1);
    let k2 = key_file(dir.path(), "k2.key", 2);
    {
        // In the clear first, then under k1.
        let (mut w, _r, _) = open(cfg(dir.path(), None, &[]), &["out"]).unwrap();
        fill(&mut w, 1, 20);
    }
    {
        let (mut w, _r, _) = open(cfg(dir.path(), Some(&k1), &[]), &["out"]).unwrap();
        fill(&mut w, 20, 40);
    }
    let (mut w, mut r, rec) = open(cfg(dir.path(), Some(&k2), &[&k1]), &["out"]).unwrap();
    assert!(rec.quarantined.is_empty(), "{rec:?}");
    assert_eq!(
        rec.positions[&b"marker-stream:/var/log/auth.log"[..]],
        b"marker-pos-39"
    );
    fill(&mut w, 40, 60);
    let got = drain(&mut r[0]);
    assert_eq!(got.len(), 59);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, (id, p))| *id == i as u64 + 1 && p == &event(i as u64 + 1)));
    drop((w, r));
    // Without k1 the queue does not open while k1's segments remain.
    let e = open(cfg(dir.path(), Some(&k2), &[]), &["out"])
        .err()
        .unwrap()
        .to_string();
    let k1_id = auditship_crypt::Key::load(&k1).unwrap().id().to_string();
    assert!(e.contains(&k1_id), "{e}");
    // Once everything is delivered and acknowledged, the old segments go
    // and k2 alone is enough.
    {
        let (mut w, mut r, _) = open(cfg(dir.path(), Some(&k2), &[&k1]), &["out"]).unwrap();
        let got = drain(&mut r[0]);
        r[0].ack(got.last().unwrap().0).unwrap();
        fill(&mut w, 60, 61);
        let more = drain(&mut r[0]);
        r[0].ack(more.last().unwrap().0).unwrap();
    }
    let (_w, _r, rec) = open(cfg(dir.path(), Some(&k2), &[]), &["out"]).unwrap();
    assert_eq!(
        rec.positions[&b"marker-stream:/var/log/auth.log"[..]],
        b"marker-pos-60"
    );
}

#[test]
fn a_torn_tail_of_an_encrypted_segment_is_cut_and_positions_stay_with_durable_records() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "queue.key", 1);
    {
        let (mut w, _r, _) = open(cfg(dir.path(), Some(&key), &[]), &["out"]).unwrap();
        fill(&mut w, 1, 10);
    }
    let segs = super::recover::list_segments(&dir.path().join("queue")).unwrap();
    let newest = segment::path(&dir.path().join("queue"), *segs.last().unwrap());
    let len = fs::metadata(&newest).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let (_w, mut r, rec) = open(cfg(dir.path(), Some(&key), &[]), &["out"]).unwrap();
    assert!(rec.truncated_bytes > 0, "{rec:?}");
    assert!(rec.quarantined.is_empty());
    let got = drain(&mut r[0]);
    let last = got.last().unwrap().0;
    assert!(last < 9);
    assert_eq!(
        rec.positions[&b"marker-stream:/var/log/auth.log"[..]],
        format!("marker-pos-{last}").into_bytes()
    );
    let _: BTreeMap<Vec<u8>, Vec<u8>> = rec.positions;
}

#[test]
fn a_reload_check_refuses_keys_that_do_not_open_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = key_file(dir.path(), "k1.key", 1);
    let k2 = key_file(dir.path(), "k2.key", 2);
    {
        let (mut w, _r, _) = open(cfg(dir.path(), Some(&k1), &[]), &["out"]).unwrap();
        fill(&mut w, 1, 5);
    }
    check_keys(&cfg(dir.path(), Some(&k1), &[])).unwrap();
    check_keys(&cfg(dir.path(), Some(&k2), &[&k1])).unwrap();
    let k1_id = auditship_crypt::Key::load(&k1).unwrap().id().to_string();
    let e = check_keys(&cfg(dir.path(), Some(&k2), &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&k1_id), "{e}");
    let e = check_keys(&cfg(dir.path(), None, &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&k1_id) && e.contains("no key was given"), "{e}");
    let e = check_keys(&cfg(dir.path(), Some(&dir.path().join("gone.key")), &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gone.key"), "{e}");
    // What check_keys accepts, open accepts.
    open(cfg(dir.path(), Some(&k2), &[&k1]), &["out"]).unwrap();
}
