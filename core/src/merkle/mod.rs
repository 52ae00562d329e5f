//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0, §2.1) over
//! auditship's leaves: tree hashes, inclusion and consistency proofs, and
//! their verification.
//!
//! Every stored event becomes one leaf; a signed checkpoint commits to the
//! root of the first `n` leaves. A reader proves that an event is in a
//! checkpoint with an inclusion proof, and that a later checkpoint extends an
//! earlier one with a consistency proof. This module is pure code: it reads
//! node hashes through the [`Nodes`] trait and never holds the whole tree.
//! The collector's on-disk tree (`auditship_collector::merkle_log`)
//! implements [`Nodes`] with positioned file reads and reuses [`Frontier`]
//! to know which nodes each append completes; [`MemoryTree`] is the
//! in-memory implementation for tests and small uses.
//!
//! # Hashes and tree shape (a durable format: signatures cover roots)
//!
//! ```text
//! leaf hash     SHA-256(0x00 || leaf data)
//! node hash     SHA-256(0x01 || left child hash || right child hash)
//! empty tree    SHA-256("")        (e3b0c442...b855)
//!
//! MTH(D[0:n]), RFC 9162 §2.1.1:
//!   n = 1   MTH = leaf hash of d[0]
//!   n > 1   k = largest power of two < n
//!           MTH = node hash(MTH(D[0:k]), MTH(D[k:n]))
//!
//! node (level L, index i) = MTH of the complete subtree of leaves
//!                           [i * 2^L, (i + 1) * 2^L); level 0 are the leaf hashes.
//! A tree of n leaves has floor(n / 2^L) complete nodes at level L; its root
//! is made of the complete nodes named by the set bits of n (the "peaks",
//! largest first), folded right to left:
//!   root = node hash(peak_1, node hash(peak_2, ... node hash(peak_k-1, peak_k)))
//!
//! inclusion proof (index, n)   RFC 9162 §2.1.3.1 PATH: sibling hashes from
//!                              the leaf up to the root, leaf end first
//! consistency proof (m, n)     RFC 9162 §2.1.4.1 PROOF: for 0 < m < n; empty
//!                              when m = 0 or m = n
//! proof lengths                inclusion: inner + popcount(index >> inner),
//!                              inner = bit length of index XOR (n - 1);
//!                              consistency: the same for the level-s node
//!                              (m - 1) >> s in a tree of ((n - 1) >> s) + 1
//!                              nodes, s = trailing zeros of m, plus one
//!                              unless m is a power of two
//! ```
//!
//! Proof generation reads O(log n) nodes: a ragged right edge (a subtree
//! that is not complete) is hashed from its complete parts, at most one per
//! set bit of its size. Verification ([`verify_inclusion`],
//! [`verify_consistency`]) needs no tree at all and follows RFC 9162
//! §2.1.3.2 and §2.1.4.2 step by step, after first checking the proof's
//! length so that a wrong length is reported as such.

mod proof;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::Hash;

pub use proof::{
    consistency_proof, consistency_proof_len, inclusion_proof, inclusion_proof_len,
    verify_consistency, verify_inclusion, ProofError,
};

/// The domain-separation byte before a leaf's data.
pub const LEAF_PREFIX: u8 = 0x00;
/// The domain-separation byte before a node's two children.
pub const NODE_PREFIX: u8 = 0x01;

/// The leaf hash of `data`: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Failures of tree reads and proof generation.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size it was asked in.
        size: u64,
    },
    /// A tree size larger than the tree holds.
    #[error("tree size {size} is beyond the {available} leaves the tree holds")]
    SizeOutOfRange {
        /// The size asked for.
        size: u64,
        /// The leaves the tree holds (or has published).
        available: u64,
    },
    /// A consistency proof asked from a larger to a smaller tree.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizesOutOfOrder {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// A leaf range whose start is past its end.
    #[error("bad leaf range {start}..{end}")]
    BadRange {
        /// First leaf.
        start: u64,
        /// One past the last leaf.
        end: u64,
    },
    /// A node that the tree does not hold (not complete in its size).
    #[error("node (level {level}, index {index}) is not in the tree")]
    MissingNode {
        /// The node's level (0 = leaves).
        level: u32,
        /// The node's index within its level.
        index: u64,
    },
    /// A stored tree failed to read or write.
    #[error("Merkle tree I/O error: {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Read access to the complete nodes of a tree.
///
/// `node(level, index)` is the hash of the complete subtree of `2^level`
/// leaves starting at leaf `index * 2^level` (level 0: the leaf hashes).
/// The functions of this module only ask for complete subtrees inside the
/// tree size they were given; an implementation answers
/// [`MerkleError::MissingNode`] for a node it does not hold.
pub trait Nodes {
    /// The hash of node `(level, index)`.
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError>;
}

impl<N: Nodes + ?Sized> Nodes for &N {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        (**self).node(level, index)
    }
}

/// The largest power of two strictly below `n` (`n >= 2`): RFC 9162's `k`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH of leaves `[start, end)`, as a tree of its own (RFC 9162 §2.1.1).
///
/// Built from complete nodes: when `start` is a multiple of the largest
/// power of two not above `end - start` (every range the proofs need is
/// such a range), it costs one node read per set bit of `end - start`, so a
/// ragged right edge costs O(log n). Other ranges are correct but may read
/// more nodes. An empty range hashes to [`empty_root`].
pub fn subtree_hash<N: Nodes + ?Sized>(
    nodes: &N,
    start: u64,
    end: u64,
) -> Result<Hash, MerkleError> {
    if start > end {
        return Err(MerkleError::BadRange { start, end });
    }
    if start == end {
        return Ok(empty_root());
    }
    range_hash(nodes, start, end - start)
}

/// MTH of the `n >= 1` leaves from `start`.
fn range_hash<N: Nodes + ?Sized>(nodes: &N, start: u64, n: u64) -> Result<Hash, MerkleError> {
    // A complete, aligned subtree is one stored node (n = 1: a leaf).
    if n.is_power_of_two() && start % n == 0 {
        return nodes.node(n.trailing_zeros(), start >> n.trailing_zeros());
    }
    let k = split_point(n);
    let left = range_hash(nodes, start, k)?;
    let right = range_hash(nodes, start + k, n - k)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree of the first `size` leaves.
pub fn root<N: Nodes + ?Sized>(nodes: &N, size: u64) -> Result<Hash, MerkleError> {
    subtree_hash(nodes, 0, size)
}

/// A streaming accumulator of leaf hashes: the complete nodes along the
/// tree's right edge (the "compact range" of `[0, size)`), one per set bit
/// of the size, so O(log n) memory.
///
/// [`root`](Frontier::root) folds those peaks (at most 63 node hashes) and
/// can be called at any size. [`push_with`](Frontier::push_with) reports
/// every complete node a leaf completes, which is how the on-disk tree
/// learns what to write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One complete node per set bit of `size`, highest level first.
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The frontier of the first `size` leaves of a stored tree: reads one
    /// node per set bit of `size`.
    pub fn from_nodes<N: Nodes + ?Sized>(nodes: &N, size: u64) -> Result<Frontier, MerkleError> {
        let mut peaks = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                peaks.push(nodes.node(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Frontier { size, peaks })
    }

    /// Leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree's root at its current size ([`empty_root`] when empty).
    pub fn root(&self) -> Hash {
        match self.peaks.split_last() {
            None => empty_root(),
            Some((last, rest)) => rest
                .iter()
                .rev()
                .fold(*last, |acc, peak| node_hash(peak, &acc)),
        }
    }

    /// The complete nodes of the right edge as `(level, index, hash)`,
    /// highest level first.
    pub fn peaks(&self) -> impl Iterator<Item = (u32, u64, Hash)> + '_ {
        let mut start = 0u64;
        let levels = (0..64u32).rev().filter(move |l| self.size & (1 << l) != 0);
        levels.zip(&self.peaks).map(move |(level, hash)| {
            let index = start >> level;
            start += 1 << level;
            (level, index, *hash)
        })
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Appends one leaf hash, calling `on_node(level, index, hash)` for
    /// every complete node it completes, lowest level first: the leaf itself
    /// at `(0, old size)`, then each parent it closes.
    pub fn push_with(&mut self, leaf: Hash, mut on_node: impl FnMut(u32, u64, &Hash)) {
        let mut index = self.size;
        let mut level = 0u32;
        let mut hash = leaf;
        on_node(level, index, &hash);
        // Each trailing one bit of the old size is a peak that the new node
        // completes a pair with.
        while index & 1 == 1 {
            let left = self.peaks.pop().expect("one peak per set bit of the size");
            hash = node_hash(&left, &hash);
            index >>= 1;
            level += 1;
            on_node(level, index, &hash);
        }
        self.peaks.push(hash);
        self.size += 1;
    }
}

/// A whole tree in memory: every complete node of every level. For tests,
/// small trees and as a reference; 64 bytes per leaf.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    /// `levels[L]` holds the floor(size / 2^L) complete nodes of level L.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash and the nodes it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(hash);
            let n = nodes.len();
            if n % 2 == 1 {
                return;
            }
            hash = node_hash(&nodes[n - 2], &nodes[n - 1]);
            level += 1;
        }
    }

    /// The stored hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.node(0, index).ok()
    }

    /// The root at the current size.
    pub fn root(&self) -> Hash {
        root(self, self.size()).expect("a memory tree holds all its complete nodes")
    }
}

impl Extend<Hash> for MemoryTree {
    fn extend<I: IntoIterator<Item = Hash>>(&mut self, leaves: I) {
        for leaf in leaves {
            self.push(leaf);
        }
    }
}

impl FromIterator<Hash> for MemoryTree {
    fn from_iter<I: IntoIterator<Item = Hash>>(leaves: I) -> MemoryTree {
        let mut tree = MemoryTree::new();
        tree.extend(leaves);
        tree
    }
}

impl Nodes for MemoryTree {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(level as usize)?.get(i))
            .copied()
            .ok_or(MerkleError::MissingNode { level, index })
    }
}
