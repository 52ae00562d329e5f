//! Signed checkpoints of the Merkle log, written every `interval` or every
//! `every` records, whichever comes first, and once more when the collector
//! stops cleanly; published at `GET /v1/checkpoint`.
//!
//! # On disk
//!
//! ```text
//! <data_dir>/collector.key         the collector's Ed25519 key (mode 0600, created at first start)
//! <data_dir>/collector.pub         its public key, 64 hex digits: give it to verifiers and agents
//! <data_dir>/checkpoints.ndjson    every checkpoint ever signed, one JSON object per line, oldest first
//! ```
//!
//! A checkpoint is appended and `fdatasync`ed before it is published, so a
//! published checkpoint survives a crash. A line cut short by a crash (the
//! only possible damage of an append) is cut off at open. Checkpoint sizes
//! never decrease; `auditship verify` checks every line of the file against
//! the store, so the file is the log's history of signed statements.
//!
//! A checkpoint is signed only over leaves the store has already committed
//! (the Merkle log is appended after the store's commit), so every signed
//! size is backed by durable events. See [`auditship_core::checkpoint`] for
//! the format and the signed bytes.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use auditship_core::checkpoint::SignedCheckpoint;
use auditship_core::identity::Identity;
use auditship_core::Hash;

/// The latest checkpoint, shared with the HTTP handlers.
pub type Latest = Arc<RwLock<Option<SignedCheckpoint>>>;

/// When to sign.
#[derive(Clone, Debug)]
pub struct Cadence {
    /// Name of the log in every checkpoint.
    pub origin: String,
    /// Sign at least this often while records arrive.
    pub interval: Duration,
    /// Sign after this many new records.
    pub every: u64,
}

/// Signs and keeps checkpoints; owned by the commit thread.
pub struct Checkpointer {
    path: PathBuf,
    file: File,
    key: Identity,
    cadence: Cadence,
    last_at: Instant,
    latest: Latest,
}

impl Checkpointer {
    /// Opens `<data_dir>/checkpoints.ndjson`, cutting off a torn last line.
    pub fn open(data_dir: &Path, key: Identity, cadence: Cadence) -> std::io::Result<Checkpointer> {
        let path = data_dir.join("checkpoints.ndjson");
        let all = read_all(&path)?;
        let good_len: u64 = all.iter().map(|(_, len)| len).sum();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        if file.metadata()?.len() > good_len {
            tracing::warn!(file = %path.display(), "cutting a torn checkpoint line off");
            file.set_len(good_len)?;
            file.sync_all()?;
        }
        let latest = Arc::new(RwLock::new(all.into_iter().last().map(|(c, _)| c)));
        Ok(Checkpointer {
            path,
            file,
            key,
            cadence,
            last_at: Instant::now(),
            latest,
        })
    }

    /// The shared latest checkpoint.
    pub fn latest(&self) -> Latest {
        self.latest.clone()
    }

    /// Size of the latest checkpoint (0 when none).
    pub fn last_size(&self) -> u64 {
        self.read().map_or(0, |c| c.size)
    }

    fn read(&self) -> Option<SignedCheckpoint> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether a checkpoint of `size` is due now.
    pub fn due(&self, size: u64) -> bool {
        match self.read() {
            None => true,
            Some(c) if size <= c.size => false,
            Some(c) => {
                size - c.size >= self.cadence.every
                    || self.last_at.elapsed() >= self.cadence.interval
            }
        }
    }

    /// Signs, stores durably and publishes a checkpoint of `size` with
    /// `root`.
    pub fn sign(&mut self, size: u64, root: &Hash) -> std::io::Result<SignedCheckpoint> {
        let cp = SignedCheckpoint::sign(&self.cadence.origin, size, root, &self.key);
        let mut line = serde_json::to_vec(&cp).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.last_at = Instant::now();
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = Some(cp.clone());
        tracing::debug!(size, file = %self.path.display(), "checkpoint signed");
        Ok(cp)
    }
}

/// Every whole, parseable checkpoint line of `path` with its byte length.
/// Reading stops at the first line that is not one (a torn append).
pub fn read_all(path: &Path) -> std::io::Result<Vec<(SignedCheckpoint, u64)>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut r = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        match serde_json::from_slice::<SignedCheckpoint>(&line) {
            Ok(c) => out.push((c, n as u64)),
            Err(_) => break,
        }
    }
    Ok(out)
}

/// Loads the collector's key (creating it, and `collector.pub`, at first
/// start).
pub fn collector_identity(data_dir: &Path) -> Result<Identity, auditship_core::identity::KeyError> {
    let (key, created) = Identity::load_or_create(&data_dir.join("collector.key"))?;
    let public = key.public();
    let pub_path = data_dir.join("collector.pub");
    if created || !pub_path.exists() {
        std::fs::write(&pub_path, format!("{}\n", public.to_hex())).map_err(|source| {
            auditship_core::identity::KeyError::Io {
                path: pub_path.clone(),
                source,
            }
        })?;
    }
    if created {
        tracing::info!(public_key = %public.to_hex(), key_id = %public.key_id(), "created the collector's signing key");
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cadence() -> Cadence {
        Cadence {
            origin: "test".into(),
            interval: Duration::from_secs(3600),
            every: 10,
        }
    }

    #[test]
    fn checkpoints_are_kept_in_order_and_a_torn_line_is_cut_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = collector_identity(dir.path()).unwrap();
        let public = key.public();
        let mut c = Checkpointer::open(dir.path(), key, cadence()).unwrap();
        assert!(c.due(0), "the first checkpoint is always due");
        c.sign(0, &auditship_core::merkle::empty_root()).unwrap();
        assert!(!c.due(5));
        assert!(c.due(10));
        c.sign(10, &[1; 32]).unwrap();
        drop(c);
        let path = dir.path().join("checkpoints.ndjson");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"origin\":\"te").unwrap();
        drop(f);

        let key = collector_identity(dir.path()).unwrap();
        assert_eq!(key.public(), public, "the key is kept");
        let c = Checkpointer::open(dir.path(), key, cadence()).unwrap();
        assert_eq!(c.last_size(), 10);
        let all = read_all(&path).unwrap();
        assert_eq!(all.len(), 2);
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("}\n"));
        for (cp, _) in all {
            cp.verify(&public).unwrap();
        }
        let pub_text = std::fs::read_to_string(dir.path().join("collector.pub")).unwrap();
        assert_eq!(pub_text.trim(), public.to_hex());
    }
}
