//! The collector's Merkle tree on disk: every complete node of the RFC 9162
//! tree over the stored events, one file per level, so that roots and
//! proofs for any size cost O(log n) positioned reads and no tree in memory.
//!
//! The tree's hashing and proof algorithms are
//! [`auditship_core::merkle`]; this module stores the nodes they read
//! ([`Nodes`]) and uses a [`Frontier`] to know which nodes each append
//! completes and to keep the current root without reading anything. One
//! [`MerkleLog`] appends; any number of cloned [`MerkleReader`]s (in other
//! threads) read what has been published.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/           (the collector passes <data_dir>/merkle)
//!   level-00.bin   leaf hashes, 32 bytes each: leaf i at offset 32 * i
//!   level-01.bin   hashes of complete 2-leaf subtrees: node i at 32 * i
//!   ...
//!   level-LL.bin   node (LL, i) = MTH of leaves [i * 2^LL, (i + 1) * 2^LL),
//!                  at offset 32 * i; LL is two decimal digits, at most 63
//!
//! No header, no checksums: every node is recomputable from the level below,
//! and every leaf hash from the store.
//!
//! Invariants (after open, and whenever append or truncate returns):
//!   size (leaves)  = len(level-00.bin) / 32
//!   level L holds exactly floor(size / 2^L) nodes; files of levels with no
//!     node (2^L > size, L >= 1) are empty or absent
//!   node (L, i)    = SHA-256(0x01 || node (L-1, 2i) || node (L-1, 2i+1))
//!
//! Append (one call, n leaves):
//!   the new leaf hashes and every node they complete are buffered per level,
//!   then written with one positioned write per level file, lowest level
//!   first (level L's new nodes start at index floor(old size / 2^L));
//!   only then are the new size and root published to readers. No fsync.
//!   A failed write cuts the touched files back to their old lengths and
//!   leaves the tree at its old size.
//!
//! Truncate (to m leaves): readers are shut out, the size and root are set
//!   to m, then each level L is cut to floor(m / 2^L) nodes.
//!
//! Repair at open, level by level from the leaves up:
//!   1. a file whose length is not a multiple of 32 is cut to one (a torn
//!      node is dropped);
//!   2. level L+1 longer than floor(len(L) / 2) is cut back to that;
//!   3. level L+1 shorter than that is completed from level L;
//!   4. the last 64 nodes of level L+1 are recomputed from level L and
//!      rewritten from the first that differs (cheap insurance against a
//!      stale or garbled tail);
//!   5. files of levels above the top one are removed.
//! ```
//!
//! # Why appends are not fsynced
//!
//! The tree is derived data. Leaf `i` is the leaf hash of the `i`-th stored
//! event, which the store made durable before the collector acknowledged
//! it, and every node is a function of the leaves. The collector appends a
//! leaf only for a committed event, so after a crash the leaves the tree
//! lost (pages never written back, files of different ages) are rebuilt
//! from the store with identical hashes: at open it compares [`size`] with
//! the number of stored events, appends what is missing, or truncates if the
//! store itself lost a torn tail. Roots that were signed before the crash
//! come out the same. What this relies on is that a crash loses a file's
//! tail rather than showing garbage inside its length, which holds for ext4
//! (`data=ordered`, the default), XFS and btrfs; the repair above checks the
//! tail of the upper levels, and [`MerkleReader::leaf`] lets the collector
//! compare the last leaves with its store. [`MerkleLog::sync`] is there for
//! callers that want the tree durable anyway (before a backup, say).
//!
//! # Concurrency
//!
//! Readers read only nodes that are complete in the published size, and
//! appends write only beyond it, so both run at once under one shared lock
//! on the level files. Truncation (and creating a new level file, once per
//! doubling of the tree) takes that lock exclusively, so a proof never mixes
//! nodes from before and after a truncation. A proof reads the published
//! size once and works within it.
//!
//! [`size`]: MerkleLog::size

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use auditship_core::merkle::{self, node_hash, Frontier, MerkleError, Nodes};
use auditship_core::Hash;

/// Levels a 64-bit leaf count can have.
const MAX_LEVELS: usize = 64;
/// Upper-level nodes checked against the level below at open.
const TAIL_CHECK: u64 = 64;
/// Parent nodes recomputed per read of the level below during repair.
const REPAIR_CHUNK: u64 = 1 << 15;

/// The file of `level` in `dir`.
pub fn level_path(dir: &Path, level: u32) -> PathBuf {
    dir.join(format!("level-{level:02}.bin"))
}

fn io_err(path: PathBuf) -> impl FnOnce(std::io::Error) -> MerkleError {
    move |source| MerkleError::Io { path, source }
}

/// The published state: what readers may read.
#[derive(Clone, Copy, Debug)]
struct Head {
    size: u64,
    root: Hash,
}

struct Shared {
    dir: PathBuf,
    /// Level files, `files[L]` for level L. Read-locked by readers and by
    /// appends; write-locked to add a level file or to truncate.
    files: RwLock<Vec<File>>,
    head: Mutex<Head>,
}

impl Shared {
    fn files(&self) -> RwLockReadGuard<'_, Vec<File>> {
        self.files.read().unwrap_or_else(|p| p.into_inner())
    }

    fn head(&self) -> Head {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, head: Head) {
        *self.head.lock().unwrap_or_else(|p| p.into_inner()) = head;
    }
}

/// The nodes of a tree of `size` leaves in open level files.
struct View<'a> {
    dir: &'a Path,
    files: &'a [File],
    size: u64,
}

impl Nodes for View<'_> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        match self.files.get(level as usize) {
            Some(file) if index < self.size >> level => {
                read_hash(file, index, || level_path(self.dir, level))
            }
            _ => Err(MerkleError::MissingNode { level, index }),
        }
    }
}

/// Runs `f` over the published tree, with truncation shut out.
fn with_view<T>(
    shared: &Shared,
    f: impl FnOnce(&View<'_>, Head) -> Result<T, MerkleError>,
) -> Result<T, MerkleError> {
    let files = shared.files();
    let head = shared.head();
    f(
        &View {
            dir: &shared.dir,
            files: &files,
            size: head.size,
        },
        head,
    )
}

fn read_hash(file: &File, index: u64, path: impl FnOnce() -> PathBuf) -> Result<Hash, MerkleError> {
    let mut hash = [0u8; 32];
    file.read_exact_at(&mut hash, index * 32)
        .map_err(|e| io_err(path())(e))?;
    Ok(hash)
}

fn open_level(dir: &Path, level: u32) -> Result<File, MerkleError> {
    let path = level_path(dir, level);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(path))
}

/// The writer of the on-disk tree; see the module docs.
pub struct MerkleLog {
    shared: Arc<Shared>,
    frontier: Frontier,
}

/// A cloneable, thread-safe reader of what a [`MerkleLog`] has published.
#[derive(Clone)]
pub struct MerkleReader {
    shared: Arc<Shared>,
}

impl MerkleLog {
    /// Opens (creating if needed) the tree in `dir` and repairs it (see the
    /// module docs). Its size is then the number of leaf hashes on disk.
    pub fn open(dir: impl AsRef<Path>) -> Result<MerkleLog, MerkleError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err(dir.clone()))?;
        let mut files: Vec<File> = Vec::new();
        let mut size = 0u64;
        for level in 0..MAX_LEVELS as u32 {
            let want = if level == 0 {
                None
            } else {
                Some(size >> level)
            };
            if want == Some(0) {
                remove_levels_from(&dir, level)?;
                break;
            }
            let file = open_level(&dir, level)?;
            let path = level_path(&dir, level);
            let bytes = file.metadata().map_err(io_err(path.clone()))?.len();
            let mut len = bytes / 32;
            if bytes % 32 != 0 {
                file.set_len(len * 32).map_err(io_err(path.clone()))?;
            }
            files.push(file);
            let Some(want) = want else {
                size = len;
                continue;
            };
            if len > want {
                files[level as usize]
                    .set_len(want * 32)
                    .map_err(io_err(path.clone()))?;
                len = want;
            }
            let from = len.saturating_sub(TAIL_CHECK);
            let first_bad = first_stale_node(&dir, &files, level, from, len)?;
            fill_level(&dir, &files, level, first_bad.unwrap_or(len), want)?;
        }
        let view = View {
            dir: &dir,
            files: &files,
            size,
        };
        let frontier = Frontier::from_nodes(&view, size)?;
        let head = Head {
            size,
            root: frontier.root(),
        };
        let shared = Shared {
            dir,
            files: RwLock::new(files),
            head: Mutex::new(head),
        };
        Ok(MerkleLog {
            shared: Arc::new(shared),
            frontier,
        })
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The root at the current size (kept in memory: no read).
    pub fn root(&self) -> Hash {
        self.shared.head().root
    }

    /// The right edge of the tree at its current size.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The tree's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A reader of what this writer publishes.
    pub fn reader(&self) -> MerkleReader {
        MerkleReader {
            shared: self.shared.clone(),
        }
    }

    /// Appends leaf hashes and every node they complete, one write per level
    /// file, then publishes the new size to readers. Not fsynced (see the
    /// module docs). On error nothing is published and the tree stays at
    /// its old size.
    pub fn append(&mut self, leaves: &[Hash]) -> Result<(), MerkleError> {
        if leaves.is_empty() {
            return Ok(());
        }
        let old = self.frontier.size();
        let new = old + leaves.len() as u64;
        let levels = (64 - new.leading_zeros()) as usize;
        self.ensure_levels(levels)?;

        let mut frontier = self.frontier.clone();
        let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); levels];
        for leaf in leaves {
            frontier.push_with(*leaf, |level, index, hash| {
                let buf = &mut bufs[level as usize];
                debug_assert_eq!((old >> level) + buf.len() as u64 / 32, index);
                buf.extend_from_slice(hash);
            });
        }
        {
            let files = self.shared.files();
            for (level, buf) in bufs.iter().enumerate().filter(|(_, b)| !b.is_empty()) {
                let offset = (old >> level) * 32;
                if let Err(e) = files[level].write_all_at(buf, offset) {
                    // Best effort: cut back what this call wrote. If that
                    // fails too, the extra bytes are correct nodes beyond the
                    // published size; the next append overwrites them.
                    for (l, file) in files.iter().enumerate().take(level + 1) {
                        let _ = file.set_len((old >> l) * 32);
                    }
                    return Err(io_err(level_path(&self.shared.dir, level as u32))(e));
                }
            }
        }
        self.shared.publish(Head {
            size: new,
            root: frontier.root(),
        });
        self.frontier = frontier;
        Ok(())
    }

    /// Cuts the tree back to its first `size` leaves (the store lost a torn
    /// tail). Readers are shut out while it runs. If a file cannot be cut,
    /// the tree is still at `size` in memory and the next open repairs it.
    pub fn truncate(&mut self, size: u64) -> Result<(), MerkleError> {
        let current = self.frontier.size();
        if size > current {
            return Err(MerkleError::SizeOutOfRange {
                size,
                available: current,
            });
        }
        if size == current {
            return Ok(());
        }
        let dir = &self.shared.dir;
        let files = self.shared.files.write().unwrap_or_else(|p| p.into_inner());
        let frontier = Frontier::from_nodes(
            &View {
                dir,
                files: &files,
                size: current,
            },
            size,
        )?;
        self.shared.publish(Head {
            size,
            root: frontier.root(),
        });
        self.frontier = frontier;
        for (level, file) in files.iter().enumerate() {
            file.set_len((size >> level) * 32)
                .map_err(io_err(level_path(dir, level as u32)))?;
        }
        Ok(())
    }

    /// Makes the tree durable: `fdatasync` on every level file, then fsync
    /// of the directory.
    pub fn sync(&self) -> Result<(), MerkleError> {
        let dir = &self.shared.dir;
        for (level, file) in self.shared.files().iter().enumerate() {
            file.sync_data()
                .map_err(io_err(level_path(dir, level as u32)))?;
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir.clone()))
    }

    /// Opens level files up to `levels` (exclusive) that are not open yet.
    fn ensure_levels(&self, levels: usize) -> Result<(), MerkleError> {
        if self.shared.files().len() >= levels {
            return Ok(());
        }
        let mut files = self.shared.files.write().unwrap_or_else(|p| p.into_inner());
        while files.len() < levels {
            let file = open_level(&self.shared.dir, files.len() as u32)?;
            files.push(file);
        }
        Ok(())
    }
}

impl Nodes for MerkleLog {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        with_view(&self.shared, |view, _| view.node(level, index))
    }
}

/// Removes the level files from `level` up (those that exist).
fn remove_levels_from(dir: &Path, level: u32) -> Result<(), MerkleError> {
    for l in level..MAX_LEVELS as u32 {
        let path = level_path(dir, l);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
    Ok(())
}

/// Reads the children of nodes `[from, to)` of `level` from the level below.
fn children(
    dir: &Path,
    files: &[File],
    level: u32,
    from: u64,
    to: u64,
) -> Result<Vec<u8>, MerkleError> {
    let mut buf = vec![0u8; ((to - from) * 64) as usize];
    let below = level - 1;
    files[below as usize]
        .read_exact_at(&mut buf, from * 64)
        .map_err(io_err(level_path(dir, below)))?;
    Ok(buf)
}

fn parent(pair: &[u8]) -> Hash {
    let mut l = [0u8; 32];
    let mut r = [0u8; 32];
    l.copy_from_slice(&pair[..32]);
    r.copy_from_slice(&pair[32..]);
    node_hash(&l, &r)
}

/// The first node in `[from, to)` of `level` that differs from the hash of
/// its children, if any.
fn first_stale_node(
    dir: &Path,
    files: &[File],
    level: u32,
    from: u64,
    to: u64,
) -> Result<Option<u64>, MerkleError> {
    if from == to {
        return Ok(None);
    }
    let below = children(dir, files, level, from, to)?;
    let mut stored = vec![0u8; ((to - from) * 32) as usize];
    files[level as usize]
        .read_exact_at(&mut stored, from * 32)
        .map_err(io_err(level_path(dir, level)))?;
    let bad = below
        .chunks_exact(64)
        .zip(stored.chunks_exact(32))
        .position(|(pair, node)| parent(pair) != node);
    Ok(bad.map(|i| from + i as u64))
}

/// Computes nodes `[from, to)` of `level` from the level below and writes
/// them, in chunks.
fn fill_level(
    dir: &Path,
    files: &[File],
    level: u32,
    from: u64,
    to: u64,
) -> Result<(), MerkleError> {
    let mut i = from;
    let mut out = Vec::new();
    while i < to {
        let n = (to - i).min(REPAIR_CHUNK);
        let below = children(dir, files, level, i, i + n)?;
        out.clear();
        for pair in below.chunks_exact(64) {
            out.extend_from_slice(&parent(pair));
        }
        files[level as usize]
            .write_all_at(&out, i * 32)
            .map_err(io_err(level_path(dir, level)))?;
        i += n;
    }
    Ok(())
}

impl MerkleReader {
    fn with_view<T>(
        &self,
        f: impl FnOnce(&View<'_>, Head) -> Result<T, MerkleError>,
    ) -> Result<T, MerkleError> {
        with_view(&self.shared, f)
    }

    /// Published leaves.
    pub fn size(&self) -> u64 {
        self.shared.head().size
    }

    /// The published size and its root, read together.
    pub fn head(&self) -> (u64, Hash) {
        let h = self.shared.head();
        (h.size, h.root)
    }

    /// The root of the first `size` leaves (`size` at most the published
    /// size).
    pub fn root(&self, size: u64) -> Result<Hash, MerkleError> {
        self.with_view(|view, head| {
            check_size(size, head.size)?;
            if size == head.size {
                return Ok(head.root);
            }
            merkle::root(view, size)
        })
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.with_view(|view, head| {
            check_size(size, head.size)?;
            merkle::inclusion_proof(view, index, size)
        })
    }

    /// The consistency proof from `old` to `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, MerkleError> {
        self.with_view(|view, head| {
            check_size(new, head.size)?;
            merkle::consistency_proof(view, old, new)
        })
    }

    /// The stored hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Result<Hash, MerkleError> {
        self.with_view(|view, head| {
            if index >= head.size {
                return Err(MerkleError::IndexOutOfRange {
                    index,
                    size: head.size,
                });
            }
            view.node(0, index)
        })
    }
}

fn check_size(size: u64, available: u64) -> Result<(), MerkleError> {
    if size > available {
        return Err(MerkleError::SizeOutOfRange { size, available });
    }
    Ok(())
}

impl Nodes for MerkleReader {
    /// A node complete in the published size.
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        self.with_view(|view, _| view.node(level, index))
    }
}
