//! Regression tests from the crash-safety review: each reproduced a loss or
//! a duplicate before its fix.
use super::*;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};

use super::tests::{append, cfg, expected, lines, poll, Rec};

fn truncate(f: &Path) {
    OpenOptions::new()
        .write(true)
        .open(f)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// copytruncate, SIGKILL after the copy was adopted (and read) but before
/// logrotate truncated the original: after restart the original is no longer
/// frozen and re-reads everything the copy already delivered.
#[test]
fn r1_copytruncate_crash_between_copy_and_truncate_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    append(&f, &lines("a", 5, 9));
    fs::copy(&f, dir.path().join("a.log.1")).unwrap();
    poll(&mut input, &mut sink); // copy adopted, a5..a9 delivered from the copy
    drop(input); // SIGKILL
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &sink.positions, Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    truncate(&f); // logrotate finishes
    append(&f, &lines("c", 0, 2));
    poll(&mut input, &mut sink);
    let mut got: Vec<String> = sink.texts().iter().map(|s| s.to_string()).collect();
    got.sort();
    let mut want = [expected("a", 0, 9), expected("c", 0, 2)].concat();
    want.sort();
    assert_eq!(got, want, "every line once");
}

/// A file shorter than fingerprint_bytes is truncated and refilled past the
/// old offset between two polls: not detected, the head of the new content
/// is skipped and a line is cut in the middle.
#[test]
fn r2_short_file_truncated_and_refilled_loses_head() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, "s1\ns2\n"); // 6 bytes < 32
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), ["s1", "s2"]);
    truncate(&f);
    append(&f, &lines("n", 0, 3));
    poll(&mut input, &mut sink);
    assert_eq!(
        sink.texts(),
        [
            vec!["s1".to_string(), "s2".to_string()],
            expected("n", 0, 3)
        ]
        .concat()
    );
}

/// read_from = "end": a file truncated and rewritten while the agent was down
/// has a saved position that no longer matches; the docs (and the warning)
/// say it is read from the beginning, but it is read from its end.
#[test]
fn r3_read_from_end_skips_rewritten_file_with_saved_position() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut c = cfg(dir.path(), "a.log");
    c.read_from = ReadFrom::End;
    let mut sink = Rec::default();
    let mut input = FileInput::new(c.clone(), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    append(&f, &lines("a", 5, 6));
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), expected("a", 5, 6));
    drop(input);
    truncate(&f);
    append(&f, &lines("n", 0, 3));
    let mut sink2 = Rec::default();
    let mut input = FileInput::new(c, &sink.positions, Bell::new()).unwrap();
    poll(&mut input, &mut sink2);
    assert_eq!(sink2.texts(), expected("n", 0, 3));
}

/// A file that is "not seen" by scans for rotate_wait (here: moved out of the
/// glob and back; in production: read_dir failing with EMFILE/EACCES, which
/// walk() swallows) is released and forgotten; when seen again it is read
/// from offset 0.
#[test]
fn r4_file_missing_from_scans_is_reread_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    let away = dir.path().join("a.away");
    fs::rename(&f, &away).unwrap();
    poll(&mut input, &mut sink);
    std::thread::sleep(Duration::from_millis(80));
    poll(&mut input, &mut sink);
    fs::rename(&away, &f).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), expected("a", 0, 5));
}

/// rename + create where every file starts with the same header (>=
/// fingerprint_bytes, e.g. a banner/CSV/W3C header): the new file is taken
/// for a copytruncate copy of the renamed one and starts at its offset.
#[test]
fn r8_rename_rotation_with_common_header_loses_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    let header = "#Fields: date time user action result\n"; // > 32 bytes
    append(&f, header);
    append(&f, &lines("a", 0, 20));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    fs::rename(&f, dir.path().join("a.log.1")).unwrap();
    append(&f, header);
    poll(&mut input, &mut sink);
    append(&f, &lines("b", 0, 5));
    poll(&mut input, &mut sink);
    std::thread::sleep(Duration::from_millis(80));
    poll(&mut input, &mut sink);
    std::thread::sleep(Duration::from_millis(80));
    poll(&mut input, &mut sink);
    let got: Vec<String> = sink
        .texts()
        .into_iter()
        .filter(|l| l.starts_with("b "))
        .map(str::to_string)
        .collect();
    assert_eq!(got, expected("b", 0, 5));
}

/// Regression: the marker kept with the offset went stale while a file was
/// read, and the "still the same file" check then took a file that had only
/// grown (and been renamed) for a truncated one and read it again.
#[test]
fn growing_renamed_file_is_not_taken_for_a_truncated_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 3));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    for chunk in 0..5 {
        append(&f, &lines("a", 3 + chunk * 4, 7 + chunk * 4));
        poll(&mut input, &mut sink);
    }
    fs::rename(&f, dir.path().join("a.log.1")).unwrap();
    append(&dir.path().join("a.log.1"), &lines("a", 23, 25));
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), expected("a", 0, 25));
    assert_eq!(input.stats().truncations, 0);
}

/// Regression: with overlong = "truncate", the end of a long line's skipped
/// rest recorded no position, so after a crash the rest came back as a line.
#[test]
fn skipped_rest_of_a_truncated_line_is_not_read_again_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    let mut c = cfg(dir.path(), "a.log");
    c.max_line_bytes = 64;
    c.overlong = auditship_plugins::framing::Overlong::Truncate;
    append(&f, &format!("{}\n", "x".repeat(300_000)));
    let mut sink = Rec::default();
    let mut input = FileInput::new(c.clone(), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(sink.lines.len(), 1, "one truncated line");
    drop(input); // crash
    let mut sink2 = Rec::default();
    let mut input = FileInput::new(c, &sink.positions, Bell::new()).unwrap();
    append(&f, "next\n");
    poll(&mut input, &mut sink2);
    assert_eq!(sink2.texts(), ["next"]);
}

/// Regression (second review): copytruncate while caught up, the copy seen
/// while still empty; a confirmed copy recorded no position, so a restart
/// read it again from 0.
#[test]
fn copy_found_empty_and_adopted_is_not_read_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    let c = dir.path().join("a.log.1");
    fs::File::create(&c).unwrap(); // cp: creat()
    poll(&mut input, &mut sink);
    fs::write(&c, fs::read(&f).unwrap()).unwrap(); // cp: write()
    poll(&mut input, &mut sink);
    truncate(&f);
    poll(&mut input, &mut sink);
    std::thread::sleep(Duration::from_millis(60));
    poll(&mut input, &mut sink);
    drop(input); // restart (any time later)
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &sink.positions, Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), expected("a", 0, 5), "every line once");
}

/// Regression (second review): the same once the ghost expired (scan()
/// forgets it after 300 s; simulated by removing it).
#[test]
fn adopted_copy_is_not_read_again_after_its_ghost_expired() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    fs::copy(&f, dir.path().join("a.log.1")).unwrap();
    poll(&mut input, &mut sink);
    truncate(&f);
    poll(&mut input, &mut sink);
    std::thread::sleep(Duration::from_millis(60));
    poll(&mut input, &mut sink);
    append(&f, &lines("c", 0, 2)); // the live file gets new lines
    poll(&mut input, &mut sink);
    drop(input);
    // 300 s later the ghost is forgotten
    let ghosts: Vec<_> = sink
        .positions
        .keys()
        .filter(|k| identity::is_ghost_key("t", k))
        .cloned()
        .collect();
    assert!(!ghosts.is_empty());
    for g in ghosts {
        sink.positions.remove(&g);
    }
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &sink.positions, Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(
        sink.texts(),
        [expected("a", 0, 5), expected("c", 0, 2)].concat(),
        "every line once"
    );
}

/// Regression (second review): an empty file deleted while unsettled was
/// never released (a file-handle leak).
#[test]
fn deleted_empty_file_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "*.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    let e = dir.path().join("e.log");
    fs::File::create(&e).unwrap();
    poll(&mut input, &mut sink);
    fs::remove_file(&e).unwrap();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(60));
        poll(&mut input, &mut sink);
    }
    assert_eq!(input.stats().tracked, 0, "deleted empty file still open");
}
