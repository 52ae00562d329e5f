//! The file output: NDJSON appended to a file, exactly once.
//!
//! Next to the file sits `<path>.ack`, which records the id of the last
//! event written and the file's length just after it:
//!
//! ```text
//! <path>.ack: two 40-byte slots, written alternately in place
//!   slot: "ASAK" | seq u64 LE | id u64 LE | len u64 LE | queue u64 LE
//!         | crc32c u32 LE (of the 36 bytes before it)
//!   the valid slot (magic and checksum match) with the higher seq is current
//!   queue: the identity of the queue the ids belong to; an id from another
//!          queue (the state directory was replaced) is not trusted
//! ```
//!
//! Delivering a batch is: append the lines, fsync the file, write the next
//! slot, fsync the ack file. A torn write can only damage the slot being
//! written; the other still holds the previous state. On start the file is
//! cut back to `len` (removing lines written but never recorded as
//! delivered) and the queue is asked to resume after `id`. Whatever the
//! moment of a crash, every event is in the file exactly once after the next
//! start.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Output, OutputError};
use crate::queue::Batch;

/// See the module docs.
pub struct FileOutput {
    name: String,
    path: PathBuf,
    ack_path: PathBuf,
    file: Option<File>,
    ack: Option<File>,
    seq: u64,
    len: u64,
    /// Identity of the queue the ids come from.
    queue: u64,
    /// A delivery failed part-way: cut back to the last acknowledgement
    /// before writing again.
    needs_recover: bool,
    /// The lines of the batch being written, kept for the next.
    scratch: Vec<u8>,
    /// Test hook: fail the next acknowledgement write.
    #[cfg(test)]
    fail_next_ack: bool,
}

const SLOT: usize = 40;
const MAGIC: &[u8; 4] = b"ASAK";

/// Encodes one ack slot.
fn slot(seq: u64, id: u64, len: u64, queue: u64) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[..4].copy_from_slice(MAGIC);
    b[4..12].copy_from_slice(&seq.to_le_bytes());
    b[12..20].copy_from_slice(&id.to_le_bytes());
    b[20..28].copy_from_slice(&len.to_le_bytes());
    b[28..36].copy_from_slice(&queue.to_le_bytes());
    let crc = crc32c::crc32c(&b[..36]);
    b[36..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// A decoded ack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    seq: u64,
    id: u64,
    len: u64,
    queue: u64,
}

/// The current slot of an ack file's contents, if any slot is valid.
fn current(bytes: &[u8]) -> Option<Slot> {
    bytes
        .chunks_exact(SLOT)
        .filter(|s| &s[..4] == MAGIC && crc32c::crc32c(&s[..36]).to_le_bytes() == s[36..40])
        .map(|s| {
            let n =
                |r: std::ops::Range<usize>| u64::from_le_bytes(s[r].try_into().expect("8 bytes"));
            Slot {
                seq: n(4..12),
                id: n(12..20),
                len: n(20..28),
                queue: n(28..36),
            }
        })
        .max_by_key(|s| s.seq)
}

impl FileOutput {
    /// An output named `name` writing to `path`.
    pub fn new(name: &str, path: &Path) -> Self {
        let mut ack = path.as_os_str().to_owned();
        ack.push(".ack");
        FileOutput {
            name: name.to_string(),
            path: path.to_path_buf(),
            ack_path: PathBuf::from(ack),
            file: None,
            ack: None,
            seq: 0,
            len: 0,
            queue: 0,
            needs_recover: false,
            scratch: Vec::new(),
            #[cfg(test)]
            fail_next_ack: false,
        }
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
        let (output, path) = (self.name.clone(), path.to_path_buf());
        move |source| OutputError::Io {
            output,
            path,
            source,
        }
    }

    fn write_ack(&mut self, id: u64) -> Result<(), OutputError> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_ack) {
            return Err(self.io(&self.ack_path)(std::io::Error::other("injected")));
        }
        self.seq += 1;
        let ack = self.ack.as_ref().expect("recover() opens the ack file");
        let at = (self.seq % 2) * SLOT as u64;
        ack.write_all_at(&slot(self.seq, id, self.len, self.queue), at)
            .and_then(|_| ack.sync_data())
            .map_err(self.io(&self.ack_path))
    }
}

impl Output for FileOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn recover(&mut self, queue_id: u64) -> Result<Option<u64>, OutputError> {
        self.queue = queue_id;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(self.io(&self.path))?;
        let actual = file.metadata().map_err(self.io(&self.path))?.len();
        let existed = self.ack_path.exists();
        let ack = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.ack_path)
            .map_err(self.io(&self.ack_path))?;
        let mut bytes = vec![0u8; 2 * SLOT];
        let n = ack
            .read_at(&mut bytes, 0)
            .map_err(self.io(&self.ack_path))?;
        bytes.truncate(n);
        let (seq, id, len) = match current(&bytes) {
            Some(c) if c.queue == queue_id => (c.seq, c.id, c.len),
            Some(c) => {
                // Regression: after the state directory was replaced, the old
                // id made the new queue's first events look delivered.
                tracing::warn!(path = %self.path.display(),
                    "file output was written from another queue (state directory replaced?); keeping its lines and delivering this queue's events after them");
                (c.seq, 0, actual)
            }
            // Never delivered anything here: keep what the file already holds.
            None => (0, 0, actual),
        };
        if actual > len {
            tracing::warn!(path = %self.path.display(), bytes = actual - len,
                "file output: removing lines written but not acknowledged before a crash; they will be written again");
            file.set_len(len).map_err(self.io(&self.path))?;
            file.sync_all().map_err(self.io(&self.path))?;
        } else if actual < len {
            tracing::error!(path = %self.path.display(), expected = len, actual,
                "file output: file is shorter than what was delivered to it; was it truncated by someone else?");
        }
        self.len = actual.min(len);
        self.seq = seq;
        self.file = Some(file);
        self.ack = Some(ack);
        self.write_ack(id)?;
        if !existed {
            let dir = self
                .path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(self.io(dir))?;
        }
        Ok(Some(id))
    }

    fn deliver(&mut self, batch: &Batch) -> Result<(), OutputError> {
        let Some(last) = batch.last_id() else {
            return Ok(());
        };
        if self.needs_recover {
            // Regression: a retry after a failed acknowledgement appended the
            // batch a second time. Cut back to what is acknowledged first.
            let acked = self.recover(self.queue)?.unwrap_or(0);
            self.needs_recover = false;
            if acked >= last {
                return Ok(()); // The failed attempt's acknowledgement did land.
            }
        }
        let mut lines = std::mem::take(&mut self.scratch);
        lines.clear();
        batch.write_sealed_ndjson(&mut lines);
        let file = self.file.as_mut().expect("recover() runs before deliver()");
        let written = file.write_all(&lines).and_then(|_| file.sync_data());
        let written_len = lines.len() as u64;
        self.scratch = lines;
        if let Err(e) = written {
            self.needs_recover = true;
            return Err(self.io(&self.path)(e));
        }
        self.len += written_len;
        if let Err(e) = self.write_ack(last) {
            self.needs_recover = true;
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_valid_slot_with_the_higher_sequence_wins() {
        let mut b = [slot(4, 40, 400, 9), slot(5, 50, 500, 9)].concat();
        assert_eq!(
            current(&b).map(|s| (s.seq, s.id, s.len)),
            Some((5, 50, 500))
        );
        // A torn write of the newer slot leaves the older one.
        b[SLOT + 13] ^= 0xff;
        assert_eq!(
            current(&b).map(|s| (s.seq, s.id, s.len)),
            Some((4, 40, 400))
        );
        assert_eq!(current(&[]), None);
        assert_eq!(current(&[0u8; 80]), None);
    }

    fn batch_of(ids: std::ops::RangeInclusive<u64>) -> Batch {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::queue::QueueConfig {
            max_bytes: 1 << 22,
            segment_bytes: 1 << 21,
            max_record_bytes: 1 << 20,
            ..crate::queue::QueueConfig::new(dir.path())
        };
        let (mut w, mut r, _) = crate::queue::open(cfg, &["t"]).unwrap();
        for i in 1..=*ids.end() {
            w.append(b"s", b"p", format!("{{\"n\":{i}}}").as_bytes())
                .unwrap();
        }
        w.commit().unwrap();
        let all = r[0]
            .next_batch(1000, 1 << 20, std::time::Duration::from_secs(1))
            .unwrap();
        let mut b = Batch::default();
        for (id, p) in all.iter().filter(|(id, _)| ids.contains(id)) {
            b.push_for_test(id, p, None);
        }
        b
    }

    /// Regression: after a failed acknowledgement the retried batch was
    /// appended a second time.
    #[test]
    fn a_failed_acknowledgement_does_not_duplicate_the_retried_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let mut o = FileOutput::new("f", &path);
        o.recover(7).unwrap();
        o.deliver(&batch_of(1..=2)).unwrap();
        o.fail_next_ack = true;
        let second = batch_of(3..=4);
        assert!(o.deliver(&second).is_err());
        o.deliver(&second).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
        let mut again = FileOutput::new("f", &path);
        assert_eq!(again.recover(7).unwrap(), Some(4));
        // Another queue's ids are not trusted; the lines are kept.
        let mut other = FileOutput::new("f", &path);
        assert_eq!(other.recover(8).unwrap(), Some(0));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
    }

    #[test]
    fn cuts_back_lines_written_after_the_last_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let mut o = FileOutput::new("f", &path);
        assert_eq!(o.recover(7).unwrap(), Some(0));
        std::fs::write(&path, "").unwrap();
        // Simulate: one delivered batch, then a crash after writing more lines.
        o.len = 0;
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"a\":1}\n").unwrap();
        o.len = 8;
        o.write_ack(7).unwrap();
        f.write_all(b"{\"a\":2}\n{\"a\":").unwrap();
        let mut again = FileOutput::new("f", &path);
        assert_eq!(again.recover(7).unwrap(), Some(7));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
    }
}
