//! Tailer tests with a sink that records lines and simulates the queue's
//! recovered positions, so restarts can be replayed.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;

use super::*;

#[derive(Default)]
pub(super) struct Rec {
    pub(super) lines: Vec<(String, Vec<&'static str>)>,
    pub(super) positions: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Sink for Rec {
    fn line(&mut self, l: Line<'_>) -> Result<(), InputError> {
        self.lines.push((
            String::from_utf8_lossy(l.bytes).into_owned(),
            l.flags.names().collect(),
        ));
        self.positions
            .insert(l.stream.to_vec(), l.position.to_vec());
        Ok(())
    }
    fn position(&mut self, stream: &[u8], position: &[u8]) -> Result<(), InputError> {
        self.positions.insert(stream.to_vec(), position.to_vec());
        Ok(())
    }
    fn forget(&mut self, stream: &[u8]) {
        self.positions.remove(stream);
    }
    fn last_id(&self) -> u64 {
        self.lines.len() as u64
    }
}

impl Rec {
    pub(super) fn texts(&self) -> Vec<&str> {
        self.lines.iter().map(|(l, _)| l.as_str()).collect()
    }
}

pub(super) fn cfg(dir: &Path, pattern: &str) -> FileInputConfig {
    let mut c = FileInputConfig::new("t", vec![format!("{}/{pattern}", dir.display())]);
    c.rescan_interval = Duration::ZERO;
    c.partial_line_timeout = Duration::from_millis(50);
    c.rotate_wait = Duration::from_millis(50);
    c.fingerprint_bytes = 32;
    c
}

pub(super) fn append(path: &Path, s: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(s.as_bytes())
        .unwrap();
}

pub(super) fn lines(prefix: &str, from: usize, to: usize) -> String {
    (from..to)
        .map(|i| format!("{prefix} line {i:04} padding padding\n"))
        .collect()
}

pub(super) fn expected(prefix: &str, from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| format!("{prefix} line {i:04} padding padding"))
        .collect()
}

pub(super) fn poll(input: &mut FileInput, sink: &mut Rec) {
    for _ in 0..3 {
        input.poll(sink, usize::MAX).unwrap();
    }
}

#[test]
fn reads_lines_and_resumes_after_restart_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 10));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "*.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), expected("a", 0, 10));
    drop(input);
    append(&f, &lines("a", 10, 15));
    let saved = sink.positions.clone();
    let mut sink2 = Rec::default();
    let mut input = FileInput::new(cfg(dir.path(), "*.log"), &saved, Bell::new()).unwrap();
    poll(&mut input, &mut sink2);
    assert_eq!(sink2.texts(), expected("a", 10, 15));
}

#[test]
fn rename_and_create_drains_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    // The writer still appends to the old file after the rename, then to the new one.
    fs::rename(&f, dir.path().join("a.log.1")).unwrap();
    append(&dir.path().join("a.log.1"), &lines("a", 5, 8));
    append(&f, &lines("b", 0, 3));
    poll(&mut input, &mut sink);
    let mut got = sink.texts();
    got.sort();
    let mut want = [expected("a", 0, 8), expected("b", 0, 3)].concat();
    want.sort();
    assert_eq!(got, want);
    // After rotate_wait the renamed-away file's handle is released; its
    // position is kept a while in case it comes back.
    std::thread::sleep(Duration::from_millis(80));
    poll(&mut input, &mut sink);
    assert_eq!(input.stats().tracked, 1);
    assert_eq!(input.stats().released, 1);
    assert_eq!(sink.positions.len(), 2);
}

#[test]
fn copytruncate_continues_in_the_copy_and_restarts_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    // More lines arrive, then logrotate copies and truncates before we read them.
    append(&f, &lines("a", 5, 9));
    fs::copy(&f, dir.path().join("a.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&f, &lines("c", 0, 2));
    poll(&mut input, &mut sink);
    let mut got = sink.texts();
    got.sort();
    let mut want = [expected("a", 0, 9), expected("c", 0, 2)].concat();
    want.sort();
    assert_eq!(got, want, "every line once");
    assert_eq!(input.stats().copies, 1);
}

#[test]
fn truncation_in_place_reads_again_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&f, &lines("z", 0, 2));
    poll(&mut input, &mut sink);
    assert_eq!(
        sink.texts(),
        [expected("a", 0, 5), expected("z", 0, 2)].concat()
    );
    assert_eq!(input.stats().truncations, 1);
}

#[test]
fn deleted_file_is_drained_then_released() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 3));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    let mut w = OpenOptions::new().append(true).open(&f).unwrap();
    fs::remove_file(&f).unwrap();
    w.write_all(lines("a", 3, 5).as_bytes()).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), expected("a", 0, 5));
    std::thread::sleep(Duration::from_millis(80));
    poll(&mut input, &mut sink);
    assert_eq!(input.stats().tracked, 0, "handle released");
    assert!(sink.positions.is_empty(), "stream forgotten");
}

#[test]
fn short_files_and_last_line_without_newline() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tiny.log");
    append(&f, "hi\nno newline");
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "*.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), ["hi"], "partial line waits");
    std::thread::sleep(Duration::from_millis(80));
    poll(&mut input, &mut sink);
    assert_eq!(sink.texts(), ["hi", "no newline"]);
    assert_eq!(sink.lines[1].1, ["no_newline"]);
    // The short file grows past the fingerprint; a restart resumes correctly.
    append(&f, &format!("\n{}", lines("g", 0, 3)));
    poll(&mut input, &mut sink);
    drop(input);
    append(&f, &lines("g", 3, 4));
    let mut sink2 = Rec::default();
    let mut input = FileInput::new(cfg(dir.path(), "*.log"), &sink.positions, Bell::new()).unwrap();
    poll(&mut input, &mut sink2);
    assert_eq!(sink2.texts(), expected("g", 3, 4));
}

#[test]
fn read_from_end_skips_existing_content_of_files_present_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("old", 0, 3));
    let mut c = cfg(dir.path(), "*.log");
    c.read_from = ReadFrom::End;
    let mut sink = Rec::default();
    let mut input = FileInput::new(c, &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    append(&f, &lines("new", 0, 2));
    append(&dir.path().join("b.log"), &lines("b", 0, 1));
    poll(&mut input, &mut sink);
    let mut got = sink.texts();
    got.sort();
    assert_eq!(got, [expected("b", 0, 1), expected("new", 0, 2)].concat());
}

#[test]
fn many_files_and_exclusions() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..50 {
        append(
            &dir.path().join(format!("f{i:02}.log")),
            &lines(&format!("f{i:02}"), 0, 20),
        );
    }
    append(&dir.path().join("skip.log"), "nope\n");
    fs::create_dir(dir.path().join("sub")).unwrap();
    append(&dir.path().join("sub/deep.log"), "not matched by *.log\n");
    let mut c = cfg(dir.path(), "*.log");
    c.exclude = vec![format!("{}/skip.log", dir.path().display())];
    let mut sink = Rec::default();
    let mut input = FileInput::new(c, &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    assert_eq!(sink.lines.len(), 50 * 20);
    assert_eq!(input.stats().tracked, 50);
}

#[test]
fn copy_made_while_the_agent_was_down_is_not_read_twice() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    drop(input);
    append(&f, &lines("a", 5, 7));
    fs::copy(&f, dir.path().join("a.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&f, &lines("n", 0, 40));
    let mut sink2 = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &sink.positions, Bell::new()).unwrap();
    poll(&mut input, &mut sink2);
    let mut got = sink2.texts();
    got.sort();
    let mut want = [expected("a", 5, 7), expected("n", 0, 40)].concat();
    want.sort();
    assert_eq!(got, want);
}

/// Regression: the copy was found while the original was still live, and the
/// original was read further before logrotate truncated it, so lines after
/// the split point came from both files.
#[test]
fn copy_seen_before_truncation_freezes_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    append(&f, &lines("a", 5, 9));
    fs::copy(&f, dir.path().join("a.log.1")).unwrap();
    // The agent polls between the copy and the truncation.
    poll(&mut input, &mut sink);
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&f, &lines("c", 0, 2));
    poll(&mut input, &mut sink);
    let mut got = sink.texts();
    got.sort();
    let mut want = [expected("a", 0, 9), expected("c", 0, 2)].concat();
    want.sort();
    assert_eq!(got, want, "every line once");
}

/// Regression: the copy was found while `cp` had written nothing yet, was
/// taken for a new short file and read from the beginning.
#[test]
fn copy_seen_while_still_empty_is_not_read_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    let copy = dir.path().join("a.log.1");
    fs::File::create(&copy).unwrap();
    poll(&mut input, &mut sink);
    // cp writes the content, logrotate truncates the original.
    fs::write(&copy, fs::read(&f).unwrap()).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&f, &lines("c", 0, 2));
    poll(&mut input, &mut sink);
    poll(&mut input, &mut sink);
    let mut got = sink.texts();
    got.sort();
    let mut want = [expected("a", 0, 5), expected("c", 0, 2)].concat();
    want.sort();
    assert_eq!(got, want, "every line once");
}

/// Regression: the agent saw the truncation, read the original's new content,
/// and was killed before it found the copy; after the restart nothing said
/// how far the old content had been read, and the copy was read from the
/// beginning. The ghost position now lives in the queue.
#[test]
fn truncation_seen_before_a_crash_still_places_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 5));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    append(&f, &lines("a", 5, 7));
    let old = fs::read(&f).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&f, &lines("n", 0, 40));
    poll(&mut input, &mut sink);
    drop(input); // the crash
    fs::write(dir.path().join("a.log.1"), old).unwrap();
    let mut sink2 = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &sink.positions, Bell::new()).unwrap();
    poll(&mut input, &mut sink2);
    assert_eq!(sink2.texts(), expected("a", 5, 7));
}

/// Regression: a copy found while `cp` had written only part of it started
/// at its current end, which can be the middle of a line.
#[test]
fn copy_found_half_written_starts_exactly_where_the_original_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 20));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "a.log*"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    append(&f, &lines("a", 20, 22));
    let full = fs::read(&f).unwrap();
    // Half of what was already read is in the copy so far, cut mid-line.
    let copy = dir.path().join("a.log.1");
    fs::write(&copy, &full[..full.len() / 2 + 3]).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    poll(&mut input, &mut sink);
    fs::write(&copy, &full).unwrap();
    poll(&mut input, &mut sink);
    let mut got = sink.texts();
    got.sort();
    assert_eq!(got, expected("a", 0, 22), "every line once, none cut");
}

/// The queue's chain pseudo-stream (see `crate::seal`) sits in the same
/// positions map as the files' streams: no input may resume it as a file or
/// forget it, even when it forgets every stream it no longer finds.
#[test]
fn the_chain_stream_is_never_taken_for_a_file_nor_forgotten() {
    use crate::seal::CHAIN_STREAM;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.log");
    append(&f, &lines("a", 0, 3));
    let mut sink = Rec::default();
    let mut input =
        FileInput::new(cfg(dir.path(), "*.log"), &BTreeMap::new(), Bell::new()).unwrap();
    poll(&mut input, &mut sink);
    drop(input);
    fs::remove_file(&f).unwrap();
    sink.positions.insert(CHAIN_STREAM.to_vec(), vec![7; 40]);
    let mut input = FileInput::new(cfg(dir.path(), "*.log"), &sink.positions, Bell::new()).unwrap();
    assert_eq!(input.saved.len(), 1, "only the file's position is its own");
    assert!(input.ghosts.is_empty());
    poll(&mut input, &mut sink);
    // The gone file's position is kept a while, then forgotten.
    assert_eq!(input.released.len(), 1);
    let Some(long_ago) = Instant::now().checked_sub(GHOST_TTL) else {
        return; // a machine up for less than GHOST_TTL: nothing more to show
    };
    for v in input.released.values_mut() {
        v.2 = long_ago;
    }
    poll(&mut input, &mut sink);
    assert!(input.released.is_empty());
    assert_eq!(
        sink.positions.keys().collect::<Vec<_>>(),
        [&CHAIN_STREAM.to_vec()],
        "the file's stream is forgotten, the chain's is not"
    );
}
