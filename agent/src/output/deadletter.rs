//! The dead-letter directory: batches a collector refused for good.
//!
//! A refused batch is not dropped: it is written here, exactly as it was
//! sent (its header chained and signed by the agent's key, see
//! [`super::collector`]), with the collector's answer, before the queue
//! acknowledges it. A replay therefore sends the same signed batch.
//! Once the cause is fixed, `auditship deadletter replay` sends every letter
//! again and deletes those the collector accepts. The collector keeps the
//! `seq` range of a refused batch as a gap, so a replay is stored even
//! though later batches arrived meanwhile.
//!
//! # Layout
//!
//! ```text
//! <dir>/<unix ms>-<first seq>-<last seq>.batch   the request body as sent (gzip or plain)
//! <dir>/<unix ms>-<first seq>-<last seq>.json    what happened: Letter, below
//! ```
//!
//! The body is written and fsynced first, then the `.json`, then the
//! directory is fsynced; a `.batch` without its `.json` is the remains of a
//! crash in between and is listed as such (its batch is still queued and
//! will be sent again, so it is safe to delete).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use auditship_core::wire::BatchHeader;
use serde::{Deserialize, Serialize};

/// A collector's refusal of a batch.
#[derive(Clone, Debug)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// The answer's body.
    pub response: String,
    /// The endpoint that answered.
    pub endpoint: String,
    /// The request body as sent.
    pub body: bytes::Bytes,
    /// Whether the body is gzip-compressed.
    pub gzip: bool,
    /// Number of events in it.
    pub events: usize,
}

/// The `.json` beside each dead-lettered body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// When it was written (RFC 3339, UTC).
    pub time: String,
    /// Sending agent.
    pub agent_id: String,
    /// Queue identity.
    pub queue: String,
    /// First seq covered.
    pub first: u64,
    /// Last seq covered.
    pub last: u64,
    /// Events.
    pub events: u64,
    /// HTTP status of the refusal.
    pub status: u16,
    /// The collector's answer.
    pub response: String,
    /// Endpoint that refused it.
    pub endpoint: String,
    /// Whether the `.batch` file is gzip.
    pub gzip: bool,
}

/// A dead-letter directory.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    dir: PathBuf,
}

impl DeadLetter {
    /// The directory (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        DeadLetter { dir }
    }

    /// Writes a refused batch durably; returns the `.batch` path.
    pub fn write(&self, header: &BatchHeader, r: &Rejection) -> std::io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        let now = auditship_core::Timestamp::now_utc();
        let stem = format!("{:013}-{}-{}", now.unix_millis(), header.first, header.last);
        let body = self.dir.join(format!("{stem}.batch"));
        write_synced(&body, &r.body)?;
        let letter = Letter {
            time: now.to_string(),
            agent_id: header.agent_id.clone(),
            queue: header.queue.clone(),
            first: header.first,
            last: header.last,
            events: header.events,
            status: r.status,
            response: r.response.clone(),
            endpoint: r.endpoint.clone(),
            gzip: r.gzip,
        };
        let meta = serde_json::to_vec_pretty(&letter).expect("letter serializes");
        write_synced(&self.dir.join(format!("{stem}.json")), &meta)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(body)
    }

    /// Every letter, oldest first: `(.batch path, its letter or why it has none)`.
    pub fn list(&self) -> std::io::Result<Vec<(PathBuf, Result<Letter, String>)>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "batch") {
                let meta = path.with_extension("json");
                let letter = fs::read(&meta)
                    .map_err(|e| {
                        format!(
                            "{}: {e} (a crash while writing it; the batch is still queued)",
                            meta.display()
                        )
                    })
                    .and_then(|b| {
                        serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", meta.display()))
                    });
                out.push((path, letter));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Deletes a letter (both files).
    pub fn remove(batch: &Path) -> std::io::Result<()> {
        fs::remove_file(batch.with_extension("json")).or_else(ignore_missing)?;
        fs::remove_file(batch).or_else(ignore_missing)
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_written_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dl = DeadLetter::new(dir.path().join("dl"));
        assert!(dl.list().unwrap().is_empty());
        let header = BatchHeader {
            auditship_batch: 2,
            agent_id: "web-1".into(),
            queue: "00000000000000aa".into(),
            first: 5,
            last: 9,
            events: 3,
            prev_hash: "00".repeat(32),
            last_hash: "11".repeat(32),
            key: "33".repeat(32),
            sig: "22".repeat(64),
            pipelined: false,
        };
        let r = Rejection {
            status: 400,
            response: "{\"error\":\"line 3: bad\"}".into(),
            endpoint: "https://c:8443".into(),
            body: bytes::Bytes::from_static(b"body bytes"),
            gzip: true,
            events: 3,
        };
        let path = dl.write(&header, &r).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"body bytes");
        // A body whose .json is missing is listed, not hidden.
        fs::write(dir.path().join("dl/0000000000001-1-2.batch"), b"x").unwrap();
        let list = dl.list().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].1.as_ref().unwrap_err().contains("still queued"));
        let letter = list[1].1.as_ref().unwrap();
        assert_eq!((letter.first, letter.last, letter.status), (5, 9, 400));
        assert_eq!(letter.response, r.response);
        DeadLetter::remove(&path).unwrap();
        assert_eq!(dl.list().unwrap().len(), 1);
    }
}
