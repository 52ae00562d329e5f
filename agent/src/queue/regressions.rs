//! Regression tests from the crash-safety review.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use super::recover::list_segments;
use super::*;

/// write_acks from two threads (writer rotate -> delete_acked, and an output's
/// ack()/skip_through()/Drop) share acks.tmp: one rename fails with ENOENT and
/// the file can be left truncated / with trailing bytes.
#[test]
fn concurrent_acknowledgement_writes_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let mut acks = BTreeMap::new();
    acks.insert("a".to_string(), 123456789u64);
    acks.insert("bbbbbbbbbbbbbbbb".to_string(), 1);
    let shared = Arc::new(Shared {
        config: QueueConfig::new(dir.path()),
        state: Mutex::new(State {
            segments: VecDeque::new(),
            committed_id: 0,
            acks,
            total_bytes: 0,
            closed: false,
            acks_dirty: false,
            acks_written: std::time::Instant::now(),
            commit_times: VecDeque::new(),
        }),
        changed: Condvar::new(),
        keys: None,
        acks_file: Mutex::new(()),
        quarantined: Default::default(),
    });
    let errs = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (shared, errs) = (shared.clone(), &errs);
            s.spawn(move || {
                for i in 0..300 {
                    if t == 1 {
                        // vary the body length so stale bytes can remain
                        let mut st = shared.state.lock().unwrap();
                        *st.acks.get_mut("a").unwrap() = if i % 2 == 0 { 1 } else { 123456789 };
                    }
                    if let Err(e) = write_acks(&shared) {
                        if errs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                            eprintln!("first error: {e}");
                        }
                    }
                }
            });
        }
    });
    assert_eq!(errs.into_inner(), 0, "acks writes must not collide");
    let back: BTreeMap<String, u64> =
        serde_json::from_slice(&fs::read(dir.path().join("acks")).unwrap()).unwrap();
    assert_eq!(back.len(), 2, "acks file intact");
}

/// One record is corrupted on disk (recovery quarantines exactly that range
/// and says the rest is intact). Readers read in windows; when the corrupt
/// range lies near the end of a window, resync cannot see the next record
/// whole, Corrupt{resume = end of window} moves the reader into the middle of
/// the next, intact record, which is then skipped as garbage.
#[test]
fn reader_does_not_skip_the_record_after_a_quarantined_range() {
    let mut failures = Vec::new();
    for k in (1..400u64).step_by(3) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = QueueConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: 1 << 20,
            segment_bytes: 64 << 10,
            max_record_bytes: 1024,
            fsync: Fsync::Always,
            encryption: None,
        };
        {
            let (mut w, _r, _) = open(cfg.clone(), &["out"]).unwrap();
            for i in 1..=400u64 {
                let pl = if i % 4 == 0 {
                    format!("{{\"line\":{i}}}")
                } else {
                    String::new()
                };
                w.append(
                    b"stream-key-of-a-file-00000000",
                    b"position-bytes-0000000000000000000000",
                    pl.as_bytes(),
                )
                .unwrap();
            }
            w.commit().unwrap();
        }
        // Flip a byte in the body of event k (segment 1).
        let p = segment::path(dir.path(), 1);
        let mut data = fs::read(&p).unwrap();
        let mut at = segment::HEADER_LEN;
        loop {
            match record::scan(&data, at, 1024, &cipher(None, false), &mut Vec::new()) {
                record::Scan::Record(record::Body::Event { id, .. }, _) if id == k => {
                    data[at + 30] ^= 0x55;
                    break;
                }
                record::Scan::Record(_, next) => at = next,
                _ => panic!(),
            }
        }
        fs::write(&p, &data).unwrap();
        let (_w, mut readers, rec) = open(cfg, &["out"]).unwrap();
        assert_eq!(rec.records, 399);
        let mut ids = Vec::new();
        loop {
            let b = readers[0]
                .next_batch(10000, 1000, Duration::from_millis(10))
                .unwrap();
            if b.is_empty() {
                break;
            }
            ids.extend(b.iter().map(|(id, _)| id));
        }
        let want: Vec<u64> = (1..=400).filter(|&i| i != k && i % 4 == 0).collect();
        if ids != want {
            failures.push((
                k,
                want.iter()
                    .filter(|i| !ids.contains(i))
                    .copied()
                    .collect::<Vec<_>>(),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "corrupted k -> intact ids never delivered: {failures:?}"
    );
}

/// The agent always starts: a corrupt record is still counted and reported,
/// and the rest delivered, when its bytes cannot be copied aside (here the
/// quarantine "directory" is a file; on a full disk the write fails alike).
#[test]
fn corrupt_record_without_a_usable_quarantine_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = QueueConfig {
        max_bytes: 1 << 20,
        segment_bytes: 64 << 10,
        max_record_bytes: 8 << 10,
        ..QueueConfig::new(dir.path())
    };
    {
        let (mut w, _r, _) = open(cfg.clone(), &["out"]).unwrap();
        for i in 1..=10u64 {
            w.append(b"s", &i.to_le_bytes(), format!("{{\"n\":{i}}}").as_bytes())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let p = segment::path(dir.path(), 1);
    let mut bytes = fs::read(&p).unwrap();
    let at = bytes.windows(6).position(|w| w == b"\"n\":5}").unwrap();
    bytes[at + 1] ^= 0x20;
    fs::write(&p, &bytes).unwrap();
    fs::remove_dir(dir.path().join("quarantine")).unwrap();
    fs::write(dir.path().join("quarantine"), b"not a directory").unwrap();
    let (_w, mut r, rec) = open(cfg, &["out"]).unwrap();
    assert_eq!(rec.quarantined.len(), 1);
    assert!(
        rec.quarantined[0].reason.contains("could not copy"),
        "{:?}",
        rec.quarantined[0]
    );
    let mut ids = Vec::new();
    loop {
        let b = r[0]
            .next_batch(100, 1 << 20, Duration::from_millis(10))
            .unwrap();
        if b.is_empty() {
            break;
        }
        ids.extend(b.iter().map(|(id, _)| id));
    }
    assert_eq!(ids, [1, 2, 3, 4, 6, 7, 8, 9, 10]);
}

/// A tmpfs of `size` on `dir`, unmounted on drop; `None` when it cannot be
/// mounted (not root), and the caller skips, saying so.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success())
            .then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Regression: a rotation on a full disk created the next segment's file
/// but could not write its header, and left the empty file behind. Every
/// later rotation then failed with "file exists", so the active segment
/// could never be closed, delivered and deleted, and a full disk stayed
/// full (a likely cause of the end-to-end full-disk test timing out).
#[test]
fn a_rotation_that_failed_on_a_full_disk_succeeds_once_space_is_free() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("small");
    let Some(_fs) = Tmpfs::mount(&dir, "256k") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let config = QueueConfig {
        segment_bytes: 1024,
        max_record_bytes: 512,
        ..QueueConfig::new(&dir)
    };
    let (mut w, mut r, _) = open(config, &["out"]).unwrap();
    // Fill the filesystem. The active segment's first page is allocated
    // already, so records that fit in it can still be written; a new
    // segment's header cannot.
    let filler = dir.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut f, &[0u8; 4096]).is_ok() {}
    drop(f);
    let first = list_segments(&dir).unwrap();
    for i in 1..=3u64 {
        w.append(b"s", &i.to_le_bytes(), &[b'x'; 400]).unwrap();
    }
    let err = w.commit().expect_err("no room for the next segment");
    assert!(err.to_string().contains("No space"), "{err}");
    assert_eq!(
        list_segments(&dir).unwrap(),
        first,
        "no empty segment left behind"
    );
    fs::remove_file(&filler).unwrap();
    w.commit().expect("the rotation is retried");
    let now = list_segments(&dir).unwrap();
    assert!(now.len() > first.len(), "rotated: {first:?} -> {now:?}");
    w.append(b"s", &4u64.to_le_bytes(), &[b'y'; 10]).unwrap();
    w.commit().unwrap();
    let ids: Vec<u64> = super::tests::drain(&mut r[0]).iter().map(|e| e.0).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
}
