//! `auditship archive verify`: read every archived segment back and check
//! it against its manifest and against the log.
//!
//! For each manifest: the object's length and SHA-256 must be the
//! manifest's; the object must decode as segment `segment` with every
//! record valid and every event's hash matching its content; its leaves
//! must be the manifest's range; each leaf hash must equal the leaf of the
//! same index in the collector's Merkle log (`<data_dir>/merkle`, read, not
//! written); and the manifest's checkpoint must be signed by the
//! collector's key and its root must be the Merkle log's root at its size.
//! Together: the archived bytes are the events the signed log committed
//! to, even after their payloads left the store.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use auditship_core::identity::PublicKey;
use auditship_core::merkle::{self, MerkleError, Nodes};
use auditship_core::{hex, Hash};
use sha2::{Digest, Sha256};

use super::archive::{Archive, Manifest};
use crate::merkle_log::level_path;
use crate::store::segments::walk;

/// The outcome for one archived segment.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Manifest key.
    pub manifest: String,
    /// Segment number (0 when the manifest is unreadable).
    pub segment: u64,
    /// Leaves checked.
    pub leaves: u64,
    /// Of those, with payloads.
    pub events: u64,
    /// What is wrong (None: verified).
    pub problem: Option<String>,
}

/// Read-only nodes of the collector's Merkle log files.
struct Levels<'a> {
    dir: &'a Path,
}

impl Nodes for Levels<'_> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        let path = level_path(self.dir, level);
        let f = File::open(&path).map_err(|source| MerkleError::Io {
            path: path.clone(),
            source,
        })?;
        let mut h = [0u8; 32];
        f.read_exact_at(&mut h, index * 32)
            .map_err(|_| MerkleError::MissingNode { level, index })?;
        Ok(h)
    }
}

/// Verifies every archived segment (see the module docs).
pub fn verify_archive(
    archive: &Archive,
    data_dir: &Path,
    key: &PublicKey,
    keys: Option<&auditship_crypt::Keyring>,
) -> Result<Vec<Checked>, String> {
    let merkle_dir = data_dir.join("merkle");
    let levels = Levels { dir: &merkle_dir };
    let mut out = Vec::new();
    for m in archive.manifests().map_err(|e| e.to_string())? {
        let mut c = Checked {
            manifest: m.clone(),
            segment: 0,
            leaves: 0,
            events: 0,
            problem: None,
        };
        if let Err(p) = check_one(archive, &m, &levels, key, keys, &mut c) {
            c.problem = Some(p);
        }
        out.push(c);
    }
    Ok(out)
}

fn check_one(
    archive: &Archive,
    key_name: &str,
    levels: &Levels<'_>,
    key: &PublicKey,
    keys: Option<&auditship_crypt::Keyring>,
    c: &mut Checked,
) -> Result<(), String> {
    let bytes = archive.get(key_name).map_err(|e| e.to_string())?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| format!("manifest: {e}"))?;
    c.segment = m.segment;
    let data = archive.get(&m.object).map_err(|e| e.to_string())?;
    let sha = hex::encode(&Sha256::digest(&data));
    if data.len() as u64 != m.bytes || sha != m.sha256 {
        return Err(format!(
            "object {} is {} bytes with SHA-256 {sha}; the manifest says {} bytes, {}",
            m.object,
            data.len(),
            m.bytes,
            m.sha256
        ));
    }
    let leaves = walk::segment_leaves(&data, m.segment, keys)?;
    c.leaves = leaves.len() as u64;
    c.events = leaves.iter().filter(|l| l.payload).count() as u64;
    if leaves.first().map(|l| l.leaf) != m.first_leaf
        || leaves.last().map(|l| l.leaf) != m.last_leaf
    {
        return Err("the segment's leaves are not the manifest's range".into());
    }
    for l in &leaves {
        let logged = levels
            .node(0, l.leaf)
            .map_err(|e| format!("leaf {} not in the Merkle log: {e}", l.leaf))?;
        if logged != l.leaf_hash {
            return Err(format!(
                "leaf {}: the archived record's leaf hash differs from the Merkle log's",
                l.leaf
            ));
        }
    }
    if let Some(cp) = &m.checkpoint {
        let root = cp
            .verify(key)
            .map_err(|e| format!("the manifest's checkpoint: {e}"))?;
        let ours = merkle::root(levels, cp.size).map_err(|e| format!("Merkle log: {e}"))?;
        if ours != root {
            return Err(format!(
                "the Merkle log's root at size {} differs from the signed checkpoint's",
                cp.size
            ));
        }
        if m.last_leaf.is_some_and(|l| l >= cp.size) {
            return Err("the manifest's checkpoint does not cover the segment".into());
        }
    }
    Ok(())
}
