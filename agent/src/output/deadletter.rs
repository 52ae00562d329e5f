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
//! <dir>/<unix ms>-<first seq>-<last seq>.batch   the request body as sent (zstd, gzip or plain)
//! <dir>/<unix ms>-<first seq>-<last seq>.json    what happened: Letter, below
//! ```
//!
//! The `.json` names the body's `Content-Encoding` (`"encoding": "zstd"`,
//! `"gzip"` or `"identity"`), and still carries `"gzip": true|false` as
//! letters did before zstd, so an older `auditship deadletter replay` can
//! still send gzip letters; a letter with only the `gzip` flag (written by
//! an older agent) is read as gzip or identity.
//!
//! The body is written and fsynced first, then the `.json`, then the
//! directory is fsynced; a `.batch` without its `.json` is the remains of a
//! crash in between and is listed as such (its batch is still queued and
//! will be sent again, so it is safe to delete).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use auditship_core::wire::{BatchHeader, ContentEncoding};
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
    /// How the body is compressed.
    pub encoding: ContentEncoding,
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
    /// The `.batch` file's `Content-Encoding` (absent in letters written
    /// before zstd: see [`Letter::encoding`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<ContentEncoding>,
    /// Whether the `.batch` file is gzip (kept for older readers).
    #[serde(default)]
    pub gzip: bool,
}

impl Letter {
    /// The `.batch` file's `Content-Encoding`: `encoding`, or for a letter
    /// written before zstd, gzip or identity as its `gzip` flag says.
    pub fn encoding(&self) -> ContentEncoding {
        self.encoding.unwrap_or(if self.gzip {
            ContentEncoding::Gzip
        } else {
            ContentEncoding::Identity
        })
    }
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
            encoding: Some(r.encoding),
            gzip: r.encoding == ContentEncoding::Gzip,
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
            encoding: ContentEncoding::Zstd,
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
        assert_eq!(letter.encoding(), ContentEncoding::Zstd);
        let json = fs::read_to_string(path.with_extension("json")).unwrap();
        assert!(json.contains("\"encoding\": \"zstd\""), "{json}");
        assert!(json.contains("\"gzip\": false"), "{json}");
        DeadLetter::remove(&path).unwrap();
        assert_eq!(dl.list().unwrap().len(), 1);
    }

    #[test]
    fn letters_from_before_zstd_are_read_by_their_gzip_flag() {
        let old = |gzip: bool| {
            format!(
                r#"{{"time":"2026-01-01T00:00:00Z","agent_id":"a","queue":"00000000000000aa",
                "first":1,"last":2,"events":2,"status":400,"response":"x","endpoint":"e",
                "gzip":{gzip}}}"#
            )
        };
        let l: Letter = serde_json::from_str(&old(true)).unwrap();
        assert_eq!((l.encoding, l.encoding()), (None, ContentEncoding::Gzip));
        let l: Letter = serde_json::from_str(&old(false)).unwrap();
        assert_eq!(l.encoding(), ContentEncoding::Identity);
        // A gzip letter written now still says gzip to an older reader.
        let dir = tempfile::tempdir().unwrap();
        let dl = DeadLetter::new(dir.path().to_path_buf());
        let header: BatchHeader = serde_json::from_str(
            r#"{"auditship_batch":2,"agent_id":"a","queue":"00000000000000aa","first":1,
            "last":2,"events":2,"prev_hash":"","last_hash":"","key":"","sig":""}"#,
        )
        .unwrap();
        let r = Rejection {
            status: 400,
            response: "x".into(),
            endpoint: "e".into(),
            body: bytes::Bytes::from_static(b"b"),
            encoding: ContentEncoding::Gzip,
            events: 2,
        };
        let path = dl.write(&header, &r).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(path.with_extension("json")).unwrap()).unwrap();
        assert_eq!(
            (&json["gzip"], &json["encoding"]),
            (&true.into(), &"gzip".into())
        );
    }
}
