//! Inclusion and consistency proofs: generation over any [`Nodes`]
//! (RFC 9162 §2.1.3.1 and §2.1.4.1) and verification without a tree
//! (§2.1.3.2 and §2.1.4.2). The proof formats are in the parent module's
//! docs.
//!
//! Generation walks the RFC's recursion iteratively from the root down,
//! reading one node per step, and hashes at most one ragged right edge from
//! its complete parts, so a proof costs O(log n) node reads and memory.

use super::{empty_root, node_hash, split_point, subtree_hash, MerkleError, Nodes};
use crate::Hash;

/// Why a proof did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The old tree is larger than the new one.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizesOutOfOrder {
        /// The claimed older size.
        old: u64,
        /// The claimed newer size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for the claimed index and
    /// sizes.
    #[error("proof has {actual} hashes, the sizes call for {expected}")]
    WrongProofLength {
        /// Hashes the claimed index and sizes call for.
        expected: usize,
        /// Hashes in the proof.
        actual: usize,
    },
    /// The root computed from the inclusion proof is not the given root.
    #[error(
        "inclusion proof leads to root {computed}, not the expected root",
        computed = crate::hex::encode(.computed)
    )]
    RootMismatch {
        /// The root the proof leads to.
        computed: Hash,
    },
    /// The consistency proof does not lead to the old root.
    #[error("consistency proof does not lead to the old root")]
    OldRootMismatch,
    /// The consistency proof does not lead to the new root.
    #[error("consistency proof does not lead to the new root")]
    NewRootMismatch,
    /// Two trees of the same size have different roots.
    #[error("two trees of size {size} have different roots")]
    SameSizeRootsDiffer {
        /// The size of both trees.
        size: u64,
    },
    /// A tree of size 0 claimed a root other than [`empty_root`].
    #[error("the empty tree's root is not SHA-256 of the empty string")]
    EmptyRootMismatch,
}

/// Bit length of `x` (0 for 0).
fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Hashes in the inclusion proof of leaf `index` in a tree of `size`
/// leaves (`index < size`).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    debug_assert!(index < size);
    let inner = bit_len(index ^ (size - 1));
    (inner + (index >> inner).count_ones()) as usize
}

/// Hashes in the consistency proof from `old` to `new` leaves
/// (`old <= new`): 0 when `old` is 0 or equals `new`.
pub fn consistency_proof_len(old: u64, new: u64) -> usize {
    debug_assert!(old <= new);
    if old == 0 || old == new {
        return 0;
    }
    // An inclusion proof of the level-s node that ends at `old`, plus that
    // node itself unless it is the whole old tree.
    let s = old.trailing_zeros();
    let node = (old - 1) >> s;
    let last = (new - 1) >> s;
    let inner = bit_len(node ^ last);
    let own = usize::from(!old.is_power_of_two());
    (inner + (node >> inner).count_ones()) as usize + own
}

/// The inclusion proof (RFC 9162 PATH) of leaf `index` in the tree of the
/// first `size` leaves: sibling hashes from the leaf up.
pub fn inclusion_proof<N: Nodes + ?Sized>(
    nodes: &N,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    // Collected root end first, reversed at the end. The current subtree is
    // leaves [lo, lo + n); `index` lies in it.
    let mut path = Vec::with_capacity(inclusion_proof_len(index, size));
    let (mut lo, mut n) = (0u64, size);
    while n > 1 {
        if n.is_power_of_two() {
            // A complete subtree: every sibling below is a stored node.
            for level in (0..n.trailing_zeros()).rev() {
                path.push(nodes.node(level, (index >> level) ^ 1)?);
            }
            break;
        }
        let k = split_point(n);
        if index - lo < k {
            path.push(subtree_hash(nodes, lo + k, lo + n)?);
            n = k;
        } else {
            path.push(nodes.node(k.trailing_zeros(), lo >> k.trailing_zeros())?);
            lo += k;
            n -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof (RFC 9162 PROOF) that the tree of `new` leaves
/// extends the tree of its first `old` leaves. Empty when `old` is 0 or
/// equals `new`.
pub fn consistency_proof<N: Nodes + ?Sized>(
    nodes: &N,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if old > new {
        return Err(MerkleError::SizesOutOfOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:lo+n], whole), unrolled. `extra` collects the hash
    // each level appends, outermost first; the result is the innermost
    // subproof followed by those in reverse.
    let mut out = Vec::with_capacity(consistency_proof_len(old, new));
    let (mut lo, mut n, mut m, mut whole) = (0u64, new, old, true);
    loop {
        if m == n {
            if !whole {
                out.push(subtree_hash(nodes, lo, lo + m)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            out.push(subtree_hash(nodes, lo + k, lo + n)?);
            n = k;
        } else {
            out.push(nodes.node(k.trailing_zeros(), lo >> k.trailing_zeros())?);
            lo += k;
            n -= k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves
/// whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return Err(wrong_length);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch { computed: r });
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with root `new_root` extends
/// the tree of `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
///
/// Sizes the RFC leaves out: equal sizes need an empty proof and equal
/// roots; an old size of 0 needs an empty proof and `old_root` equal to
/// [`empty_root`] (every tree extends the empty one).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    let expected = consistency_proof_len(old_size, new_size);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    if old_size == new_size {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::SameSizeRootsDiffer { size: old_size })
        };
    }
    if old_size == 0 {
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(ProofError::EmptyRootMismatch)
        };
    }
    // Step 2: a power-of-two old tree is itself the first node of the path.
    let mut path = proof.iter();
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        *path.next().ok_or(wrong_length.clone())?
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in path {
        if snode == 0 {
            return Err(wrong_length);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}
