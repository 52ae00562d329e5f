//! Tests of the Merkle tree: known answers from public RFC 6962 / RFC 9162
//! implementations, a transcription of the RFC's recursive definitions as
//! an oracle, and property tests.
//!
//! The vectors, and where each one comes from, are in `vectors.rs`.

use proptest::prelude::*;

use super::*;
use crate::hex;

mod vectors;
use vectors::*;

fn h(text: &str) -> Hash {
    hex::decode_hash(text).expect("64 hex digits")
}

fn bytes(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn vector_tree() -> MemoryTree {
    LEAF_INPUTS.iter().map(|d| leaf_hash(&bytes(d))).collect()
}

/// Leaf hashes of distinct data, different for each `seed`.
fn leaves(seed: u64, n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&[seed.to_le_bytes(), i.to_le_bytes()].concat()))
        .collect()
}

// ---- the RFC 9162 definitions, transcribed recursively as an oracle ----

fn ref_mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
        }
    }
}

fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = split_point(d.len() as u64) as usize;
    let (mut path, sibling) = if m < k {
        (ref_path(m, &d[..k]), ref_mth(&d[k..]))
    } else {
        (ref_path(m - k, &d[k..]), ref_mth(&d[..k]))
    };
    path.push(sibling);
    path
}

fn ref_subproof(m: usize, d: &[Hash], whole: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if whole { Vec::new() } else { vec![ref_mth(d)] };
    }
    let k = split_point(n as u64) as usize;
    let (mut proof, extra) = if m <= k {
        (ref_subproof(m, &d[..k], whole), ref_mth(&d[k..]))
    } else {
        (ref_subproof(m - k, &d[k..], false), ref_mth(&d[..k]))
    };
    proof.push(extra);
    proof
}

// ---- known answers ----

#[test]
fn hashes_match_the_published_node_hashes_and_roots() {
    let tree = vector_tree();
    for (level, nodes) in NODE_HASHES.iter().enumerate() {
        for (index, want) in nodes.iter().enumerate() {
            assert_eq!(
                tree.node(level as u32, index as u64).unwrap(),
                h(want),
                "node {level},{index}"
            );
        }
    }
    assert!(tree.node(3, 1).is_err() && tree.node(0, 8).is_err() && tree.node(4, 0).is_err());
    assert_eq!(empty_root(), h(ROOTS[0]));
    let mut frontier = Frontier::new();
    for size in 0..=8u64 {
        let want = h(ROOTS[size as usize]);
        assert_eq!(root(&tree, size).unwrap(), want, "root({size})");
        assert_eq!(subtree_hash(&tree, 0, size).unwrap(), want);
        assert_eq!(frontier.root(), want, "frontier root at {size}");
        let peaks: Vec<_> = frontier.peaks().collect();
        let want_peaks: Vec<_> = COMPACT_TREES[size as usize]
            .iter()
            .map(|&(l, i)| (l, i, h(NODE_HASHES[l as usize][i as usize])))
            .collect();
        assert_eq!(peaks, want_peaks, "compact tree at {size}");
        assert_eq!(Frontier::from_nodes(&tree, size).unwrap(), frontier);
        if size < 8 {
            frontier.push(tree.leaf(size).unwrap());
        }
    }
    assert_eq!(tree.root(), h(ROOTS[8]));
}

#[test]
fn published_inclusion_proofs() {
    let tree = vector_tree();
    for (index, size, want) in INCLUSION {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(
            inclusion_proof(&tree, index, size).unwrap(),
            want,
            "PATH({index}, {size})"
        );
        let leaf = tree.leaf(index).unwrap();
        let root = h(ROOTS[size as usize]);
        verify_inclusion(&leaf, index, size, &want, &root).unwrap();

        // The corruptions of transparency-dev's verifier tests.
        let fails = |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash| {
            verify_inclusion(leaf, index, size, proof, root).is_err()
        };
        assert!(fails(&leaf, index.wrapping_sub(1), size, &want, &root));
        assert!(fails(&leaf, index + 1, size, &want, &root));
        assert!(fails(&leaf, index ^ 2, size, &want, &root));
        assert!(fails(&leaf, index, size * 2, &want, &root));
        assert!(fails(&leaf, index, size / 2, &want, &root));
        assert!(fails(&leaf_hash(b"WrongLeaf"), index, size, &want, &root));
        assert!(fails(&leaf, index, size, &want, &empty_root()));
        let extended = [want.as_slice(), &[root]].concat();
        assert!(fails(&leaf, index, size, &extended, &root));
        let prepended = [&[root], want.as_slice()].concat();
        assert!(fails(&leaf, index, size, &prepended, &root));
        for i in 0..want.len() {
            let mut bad = want.clone();
            bad[i][0] ^= 8;
            assert!(fails(&leaf, index, size, &bad, &root), "flipped proof[{i}]");
        }
        if !want.is_empty() {
            assert!(fails(&leaf, index, size, &want[..want.len() - 1], &root));
        }
    }
    assert_eq!(
        verify_inclusion(&[0; 32], 8, 8, &[], &[0; 32]),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert!(inclusion_proof(&tree, 8, 8).is_err());
}

#[test]
fn published_consistency_proofs() {
    let tree = vector_tree();
    for (old, new, want) in CONSISTENCY {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(
            consistency_proof(&tree, old, new).unwrap(),
            want,
            "PROOF({old}, {new})"
        );
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        verify_consistency(old, new, &r1, &r2, &want).unwrap();
        if want.is_empty() {
            continue;
        }
        let fails = |old: u64, new: u64, r1: &Hash, r2: &Hash, proof: &[Hash]| {
            verify_consistency(old, new, r1, r2, proof).is_err()
        };
        assert!(fails(old - 1, new, &r1, &r2, &want));
        assert!(fails(old + 1, new, &r1, &r2, &want));
        assert!(fails(old ^ 2, new, &r1, &r2, &want));
        assert!(fails(old, new * 2, &r1, &r2, &want));
        assert!(fails(old, new / 2, &r1, &r2, &want));
        assert!(fails(old, new, &r1, &empty_root(), &want));
        assert!(fails(old, new, &empty_root(), &r2, &want));
        assert!(fails(old, new, &r2, &r1, &want));
        assert!(fails(old, new, &r1, &r2, &[]));
        for extra in [r1, r2, want[0]] {
            assert!(fails(
                old,
                new,
                &r1,
                &r2,
                &[want.as_slice(), &[extra]].concat()
            ));
            assert!(fails(
                old,
                new,
                &r1,
                &r2,
                &[&[extra], want.as_slice()].concat()
            ));
        }
        assert!(fails(old, new, &r1, &r2, &want[..want.len() - 1]));
        for i in 0..want.len() {
            let mut bad = want.clone();
            bad[i][0] ^= 16;
            assert!(fails(old, new, &r1, &r2, &bad), "flipped proof[{i}]");
        }
    }
}

#[test]
fn edge_sizes_of_consistency() {
    let e = empty_root();
    let some = leaf_hash(b"x");
    assert_eq!(verify_consistency(0, 0, &e, &e, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 5, &e, &some, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 5, &some, &some, &[]),
        Err(ProofError::EmptyRootMismatch)
    );
    assert_eq!(verify_consistency(3, 3, &some, &some, &[]), Ok(()));
    assert_eq!(
        verify_consistency(3, 3, &some, &e, &[]),
        Err(ProofError::SameSizeRootsDiffer { size: 3 })
    );
    assert_eq!(
        verify_consistency(3, 3, &some, &some, &[e]),
        Err(ProofError::WrongProofLength {
            expected: 0,
            actual: 1
        })
    );
    assert_eq!(
        verify_consistency(2, 1, &e, &e, &[]),
        Err(ProofError::SizesOutOfOrder { old: 2, new: 1 })
    );
    assert_eq!(
        verify_consistency(1, 2, &e, &e, &[]),
        Err(ProofError::WrongProofLength {
            expected: 1,
            actual: 0
        })
    );
    let tree = vector_tree();
    assert!(matches!(
        consistency_proof(&tree, 5, 4),
        Err(MerkleError::SizesOutOfOrder { .. })
    ));
    assert_eq!(consistency_proof(&tree, 0, 8).unwrap(), Vec::<Hash>::new());
}

fn expected_from_shape(
    tree: &MemoryTree,
    ids: &[(u32, u64)],
    rehash: Option<(usize, usize)>,
) -> Vec<Hash> {
    let hashes: Vec<Hash> = ids.iter().map(|&(l, i)| tree.node(l, i).unwrap()).collect();
    let Some((begin, end)) = rehash else {
        return hashes;
    };
    let folded = hashes[begin + 1..end]
        .iter()
        .fold(hashes[begin], |acc, n| node_hash(n, &acc));
    [&hashes[..begin], &[folded], &hashes[end..]].concat()
}

#[test]
fn proofs_are_made_of_the_published_nodes() {
    let tree: MemoryTree = leaves(7, 128).into_iter().collect();
    for &(size, index, ids, rehash) in INCLUSION_SHAPES {
        let want = expected_from_shape(&tree, ids, rehash);
        assert_eq!(
            inclusion_proof(&tree, index, size).unwrap(),
            want,
            "PATH({index}, {size})"
        );
    }
    for &(old, new, ids, rehash) in CONSISTENCY_SHAPES {
        let want = expected_from_shape(&tree, ids, rehash);
        assert_eq!(
            consistency_proof(&tree, old, new).unwrap(),
            want,
            "PROOF({old}, {new})"
        );
    }
}

// ---- against the RFC's definitions ----

#[test]
fn every_small_tree_matches_the_rfc_definitions() {
    let all = leaves(1, 70);
    let tree: MemoryTree = all.iter().copied().collect();
    for n in 0..=70usize {
        let d = &all[..n];
        assert_eq!(root(&tree, n as u64).unwrap(), ref_mth(d), "MTH of {n}");
        for start in 0..=n {
            assert_eq!(
                subtree_hash(&tree, start as u64, n as u64).unwrap(),
                ref_mth(&d[start..])
            );
        }
        for m in 0..n {
            let proof = inclusion_proof(&tree, m as u64, n as u64).unwrap();
            assert_eq!(proof, ref_path(m, d), "PATH({m}, {n})");
            assert_eq!(proof.len(), inclusion_proof_len(m as u64, n as u64));
            verify_inclusion(&d[m], m as u64, n as u64, &proof, &ref_mth(d)).unwrap();
        }
        for m in 1..=n {
            let proof = consistency_proof(&tree, m as u64, n as u64).unwrap();
            assert_eq!(proof, ref_subproof(m, d, true), "PROOF({m}, {n})");
            assert_eq!(proof.len(), consistency_proof_len(m as u64, n as u64));
            verify_consistency(m as u64, n as u64, &ref_mth(&d[..m]), &ref_mth(d), &proof).unwrap();
        }
    }
    assert!(matches!(
        subtree_hash(&tree, 5, 4),
        Err(MerkleError::BadRange { .. })
    ));
}

#[test]
fn frontier_root_equals_tree_root_at_every_size() {
    let mut tree = MemoryTree::new();
    let mut frontier = Frontier::new();
    for (i, leaf) in leaves(3, 4200).into_iter().enumerate() {
        let mut reported = Vec::new();
        frontier.push_with(leaf, |level, index, hash| {
            reported.push((level, index, *hash))
        });
        tree.push(leaf);
        let size = i as u64 + 1;
        assert_eq!(frontier.size(), size);
        assert_eq!(frontier.root(), root(&tree, size).unwrap(), "size {size}");
        // Every node the push completed, and only those.
        let expected = (0..=size.trailing_zeros()).map(|l| (l, (size >> l) - 1));
        assert_eq!(
            reported.iter().map(|&(l, i, _)| (l, i)).collect::<Vec<_>>(),
            expected.collect::<Vec<_>>()
        );
        for (level, index, hash) in reported {
            assert_eq!(tree.node(level, index).unwrap(), hash);
        }
        if size % 97 == 0 {
            assert_eq!(Frontier::from_nodes(&tree, size).unwrap(), frontier);
        }
    }
}

// ---- properties ----

/// A proof for a claim the tree does not support must not verify.
fn tampered_inclusion_fails(
    tree: &MemoryTree,
    index: u64,
    size: u64,
    pick: u64,
    flip: (usize, u8),
) {
    let proof = inclusion_proof(tree, index, size).unwrap();
    let r = root(tree, size).unwrap();
    let leaf = tree.leaf(index).unwrap();
    verify_inclusion(&leaf, index, size, &proof, &r).unwrap();
    if !proof.is_empty() {
        let mut bad = proof.clone();
        bad[flip.0 % proof.len()][(flip.1 % 32) as usize] ^= 1 << (flip.1 % 8);
        assert!(
            verify_inclusion(&leaf, index, size, &bad, &r).is_err(),
            "flipped hash"
        );
    }
    if size > 1 {
        let other = (index + 1 + pick % (size - 1)) % size;
        assert!(
            verify_inclusion(&leaf, other, size, &proof, &r).is_err(),
            "index {other}"
        );
        let other_leaf = tree.leaf(other).unwrap();
        assert!(verify_inclusion(&other_leaf, other, size, &proof, &r).is_err());
    }
    // Another size the tree has, with that size's root.
    let total = tree.size();
    if total > index + 2 {
        let mut other = index + 1 + pick % (total - index);
        if other == size {
            other = if other == total { index + 1 } else { other + 1 };
        }
        let other_root = root(tree, other).unwrap();
        assert!(
            verify_inclusion(&leaf, index, other, &proof, &other_root).is_err(),
            "size {other}"
        );
    }
}

fn tampered_consistency_fails(tree: &MemoryTree, old: u64, new: u64, pick: u64, flip: (usize, u8)) {
    let proof = consistency_proof(tree, old, new).unwrap();
    let (r1, r2) = (root(tree, old).unwrap(), root(tree, new).unwrap());
    verify_consistency(old, new, &r1, &r2, &proof).unwrap();
    if !proof.is_empty() {
        let mut bad = proof.clone();
        bad[flip.0 % proof.len()][(flip.1 % 32) as usize] ^= 1 << (flip.1 % 8);
        assert!(
            verify_consistency(old, new, &r1, &r2, &bad).is_err(),
            "flipped hash"
        );
    }
    // A wrong old size in 1..new (the claims 0 -> new and new -> new hold
    // for every tree), with its root.
    if new > 2 {
        let mut other = 1 + pick % (new - 1);
        if other == old {
            other = if other + 1 < new { other + 1 } else { 1 };
        }
        if other != old {
            let r = root(tree, other).unwrap();
            assert!(
                verify_consistency(other, new, &r, &r2, &proof).is_err(),
                "old {other}"
            );
        }
    }
    // A wrong new size above `old`, with its root.
    let total = tree.size();
    if old > 0 && total > old + 1 {
        let mut other = old + 1 + pick % (total - old);
        if other == new {
            other = if other == total { old + 1 } else { other + 1 };
        }
        if other != new {
            let r = root(tree, other).unwrap();
            assert!(
                verify_consistency(old, other, &r1, &r, &proof).is_err(),
                "new {other}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random trees up to a few thousand leaves: every generated proof
    /// verifies, equals the RFC's definition, and tampering fails.
    #[test]
    fn generated_proofs_verify_and_tampering_fails(
        total in 1u64..3500,
        seed in any::<u64>(),
        picks in any::<(u64, u64, u64, u64)>(),
        flip in any::<(usize, u8)>(),
    ) {
        let all = leaves(seed, total);
        let tree: MemoryTree = all.iter().copied().collect();
        let size = 1 + picks.0 % total;
        let index = picks.1 % size;
        let old = picks.2 % (size + 1);
        tampered_inclusion_fails(&tree, index, size, picks.3, flip);
        tampered_consistency_fails(&tree, old, size, picks.3, flip);
        let d = &all[..size as usize];
        prop_assert_eq!(inclusion_proof(&tree, index, size).unwrap(), ref_path(index as usize, d));
        if old > 0 {
            prop_assert_eq!(
                consistency_proof(&tree, old, size).unwrap(),
                ref_subproof(old as usize, d, true)
            );
        }
    }

    /// Every index of a random size verifies, proofs of every old size too.
    #[test]
    fn all_proofs_of_one_size_verify(size in 1u64..600, seed in any::<u64>()) {
        let tree: MemoryTree = leaves(seed, size).into_iter().collect();
        let r = tree.root();
        for index in 0..size {
            let proof = inclusion_proof(&tree, index, size).unwrap();
            let leaf = tree.leaf(index).unwrap();
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &r).is_ok());
        }
        let mut frontier = Frontier::new();
        for old in 0..=size {
            let proof = consistency_proof(&tree, old, size).unwrap();
            prop_assert_eq!(frontier.root(), root(&tree, old).unwrap());
            prop_assert!(verify_consistency(old, size, &frontier.root(), &r, &proof).is_ok());
            if old < size {
                frontier.push(tree.leaf(old).unwrap());
            }
        }
    }
}
