//! Tests of the on-disk tree: it must give exactly the roots and proofs of
//! the in-memory reference tree (`auditship_core::merkle::MemoryTree`), after
//! appends in any batching, reopening, repair of damaged files and
//! truncation, and readers in other threads must only ever see published,
//! complete trees.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

use auditship_core::merkle::{
    self, leaf_hash, verify_consistency, verify_inclusion, MemoryTree, ProofError,
};

use super::*;

fn leaves(seed: u64, n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&[seed.to_le_bytes(), i.to_le_bytes()].concat()))
        .collect()
}

/// Batch sizes that cross many power-of-two boundaries.
fn batches(all: &[Hash]) -> impl Iterator<Item = &[Hash]> {
    let mut rest = all;
    let mut k = 0usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        k += 1;
        let n = ((k * 37) % 61 + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// Checks roots and proofs of `log` at `size` (and a spread of smaller
/// sizes) against the reference tree.
fn assert_same_tree(reader: &MerkleReader, reference: &MemoryTree, size: u64) {
    assert_eq!(
        reader.root(size).unwrap(),
        merkle::root(reference, size).unwrap(),
        "root {size}"
    );
    let sizes = [
        1,
        2,
        3,
        size / 3,
        size / 2 + 1,
        size.saturating_sub(1),
        size,
    ];
    for &m in sizes.iter().filter(|&&m| m <= size) {
        assert_eq!(
            reader.root(m).unwrap(),
            merkle::root(reference, m).unwrap(),
            "root {m}"
        );
        assert_eq!(
            reader.consistency_proof(m, size).unwrap(),
            merkle::consistency_proof(reference, m, size).unwrap(),
            "consistency {m} -> {size}"
        );
        if m > 0 {
            for index in [0, m / 2, m - 1] {
                assert_eq!(
                    reader.inclusion_proof(index, m).unwrap(),
                    merkle::inclusion_proof(reference, index, m).unwrap(),
                    "inclusion {index} in {m}"
                );
            }
        }
    }
}

#[test]
fn proofs_from_disk_equal_those_of_a_memory_tree() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = MerkleLog::open(dir.path()).unwrap();
    assert_eq!((log.size(), log.root()), (0, merkle::empty_root()));
    let all = leaves(1, 1500);
    let mut reference = MemoryTree::new();
    for batch in batches(&all) {
        log.append(batch).unwrap();
        reference.extend(batch.iter().copied());
        assert_eq!(log.size(), reference.size());
        assert_eq!(log.root(), reference.root());
        assert_same_tree(&log.reader(), &reference, log.size());
    }
    // Every proof of one ragged size.
    let reader = log.reader();
    let n = 1337;
    for index in 0..n {
        assert_eq!(
            reader.inclusion_proof(index, n).unwrap(),
            merkle::inclusion_proof(&reference, index, n).unwrap()
        );
        assert_eq!(reader.leaf(index).unwrap(), all[index as usize]);
    }
    for m in 0..=n {
        assert_eq!(
            reader.consistency_proof(m, n).unwrap(),
            merkle::consistency_proof(&reference, m, n).unwrap()
        );
    }
    // Each level file holds floor(size / 2^L) nodes.
    for level in 0..11u32 {
        let len = fs::metadata(level_path(dir.path(), level)).unwrap().len();
        assert_eq!(len, (1500 >> level) * 32, "level {level}");
    }
    assert!(!level_path(dir.path(), 11).exists());
}

#[test]
fn reopening_gives_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let all = leaves(2, 1000);
    let (root, frontier) = {
        let mut log = MerkleLog::open(dir.path()).unwrap();
        for batch in batches(&all) {
            log.append(batch).unwrap();
        }
        log.sync().unwrap();
        (log.root(), log.frontier().clone())
    };
    let log = MerkleLog::open(dir.path()).unwrap();
    assert_eq!(log.size(), 1000);
    assert_eq!(log.root(), root);
    assert_eq!(log.frontier(), &frontier);
    let reference: MemoryTree = all.iter().copied().collect();
    assert_same_tree(&log.reader(), &reference, 1000);
}

/// Every stored node of the published tree equals the reference's.
fn assert_same_nodes(reader: &MerkleReader, reference: &MemoryTree) {
    let size = reader.size();
    for level in 0..64 - size.leading_zeros() {
        for index in 0..size >> level {
            assert_eq!(
                reader.node(level, index).unwrap(),
                reference.node(level, index).unwrap(),
                "node ({level}, {index})"
            );
        }
    }
}

fn built(dir: &Path, all: &[Hash]) {
    let mut log = MerkleLog::open(dir).unwrap();
    log.append(all).unwrap();
}

#[test]
fn torn_and_missing_level_files_are_repaired_at_open() {
    let all = leaves(3, 777);
    let reference: MemoryTree = all.iter().copied().collect();
    let file = |dir: &Path, level| {
        OpenOptions::new()
            .write(true)
            .open(level_path(dir, level))
            .unwrap()
    };

    // A torn node at the end of the leaves and of level 3.
    let dir = tempfile::tempdir().unwrap();
    built(dir.path(), &all);
    file(dir.path(), 0)
        .write_all_at(&[0xee; 5], 777 * 32)
        .unwrap();
    file(dir.path(), 3)
        .write_all_at(&[0xee; 31], (777 >> 3) * 32)
        .unwrap();
    let log = MerkleLog::open(dir.path()).unwrap();
    assert_eq!(log.size(), 777);
    assert_same_nodes(&log.reader(), &reference);
    drop(log);

    // Leaves lost their tail (mid-node): the upper levels are cut to match.
    file(dir.path(), 0).set_len(600 * 32 + 7).unwrap();
    let log = MerkleLog::open(dir.path()).unwrap();
    assert_eq!(log.size(), 600);
    assert_same_tree(&log.reader(), &reference, 600);
    assert_same_nodes(&log.reader(), &reference);
    for level in 1..10u32 {
        let len = fs::metadata(level_path(dir.path(), level)).unwrap().len();
        assert_eq!(len, (600 >> level) * 32, "level {level}");
    }
    assert!(!level_path(dir.path(), 10).exists());
    drop(log);

    // Upper levels lost: one shortened, one deleted, one emptied.
    let dir = tempfile::tempdir().unwrap();
    built(dir.path(), &all);
    file(dir.path(), 1).set_len(100 * 32).unwrap();
    fs::remove_file(level_path(dir.path(), 2)).unwrap();
    file(dir.path(), 5).set_len(0).unwrap();
    let log = MerkleLog::open(dir.path()).unwrap();
    assert_eq!(log.size(), 777);
    assert_same_nodes(&log.reader(), &reference);
    drop(log);

    // A garbled node near the end of an upper level is rewritten; a stray
    // file above the top level goes.
    file(dir.path(), 4)
        .write_all_at(&[0xab; 32], 45 * 32)
        .unwrap();
    fs::write(level_path(dir.path(), 30), [1u8; 64]).unwrap();
    let log = MerkleLog::open(dir.path()).unwrap();
    assert_eq!(log.root(), reference.root());
    assert_same_nodes(&log.reader(), &reference);
    assert!(!level_path(dir.path(), 30).exists());
}

#[test]
fn truncate_then_append_gives_the_right_roots() {
    let dir = tempfile::tempdir().unwrap();
    let first = leaves(4, 900);
    let second = leaves(5, 700);
    let mut log = MerkleLog::open(dir.path()).unwrap();
    log.append(&first).unwrap();
    assert!(matches!(
        log.truncate(901),
        Err(MerkleError::SizeOutOfRange {
            size: 901,
            available: 900
        })
    ));
    for cut in [899u64, 512, 300, 1, 0] {
        log.truncate(cut).unwrap();
        assert_eq!(log.size(), cut);
        let reader = log.reader();
        assert_eq!(reader.size(), cut);
        assert!(reader.leaf(cut).is_err());
        let mut reference: MemoryTree = first[..cut as usize].iter().copied().collect();
        assert_eq!(log.root(), reference.root());
        // Grow again from the cut with different leaves.
        for batch in batches(&second[..(cut as usize + 200).min(700)]) {
            log.append(batch).unwrap();
            reference.extend(batch.iter().copied());
        }
        assert_eq!(log.root(), reference.root());
        assert_same_tree(&reader, &reference, log.size());
        drop(log);
        log = MerkleLog::open(dir.path()).unwrap();
        assert_eq!(
            log.root(),
            reference.root(),
            "after reopen at {}",
            log.size()
        );
        assert_same_tree(&log.reader(), &reference, log.size());
        // Back to the first sequence for the next cut.
        log.truncate(0).unwrap();
        log.append(&first).unwrap();
    }
}

#[test]
fn readers_see_only_published_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = MerkleLog::open(dir.path()).unwrap();
    let reader = log.reader();
    let all = leaves(6, 40);
    log.append(&all[..16]).unwrap();
    assert_eq!(reader.head(), (16, log.root()));
    assert!(matches!(
        reader.leaf(16),
        Err(MerkleError::IndexOutOfRange {
            index: 16,
            size: 16
        })
    ));
    assert!(matches!(
        reader.inclusion_proof(3, 17),
        Err(MerkleError::SizeOutOfRange { .. })
    ));
    assert!(matches!(
        reader.consistency_proof(3, 17),
        Err(MerkleError::SizeOutOfRange { .. })
    ));
    assert!(matches!(
        reader.root(17),
        Err(MerkleError::SizeOutOfRange { .. })
    ));
    assert!(matches!(
        reader.node(0, 16),
        Err(MerkleError::MissingNode { .. })
    ));
    assert!(matches!(
        reader.node(5, 0),
        Err(MerkleError::MissingNode { .. })
    ));
    assert_eq!(reader.node(4, 0).unwrap(), log.root());
    // Written beyond the published size by hand (as a failed append would
    // leave it): still invisible.
    OpenOptions::new()
        .write(true)
        .open(level_path(dir.path(), 0))
        .unwrap()
        .write_all_at(&all[16], 16 * 32)
        .unwrap();
    assert!(reader.leaf(16).is_err());
    log.append(&all[16..]).unwrap();
    assert_eq!(reader.leaf(16).unwrap(), all[16]);
    assert_eq!(reader.size(), 40);
}

#[test]
fn concurrent_readers_always_get_proofs_that_verify() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<MerkleReader>();

    let dir = tempfile::tempdir().unwrap();
    let mut log = MerkleLog::open(dir.path()).unwrap();
    let all = leaves(7, 5000);
    log.append(&all[..1]).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..3u64)
            .map(|t| {
                let reader = log.reader();
                let (done, all) = (&done, &all);
                s.spawn(move || {
                    let mut checked = 0u64;
                    let mut last = (1, reader.root(1).unwrap());
                    let mut x = t + 1;
                    while !done.load(Ordering::Relaxed) || checked < 50 {
                        let (size, root) = reader.head();
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let index = (x >> 33) % size;
                        let proof = reader.inclusion_proof(index, size).unwrap();
                        verify_inclusion(&all[index as usize], index, size, &proof, &root).unwrap();
                        let proof = reader.consistency_proof(last.0, size).unwrap();
                        verify_consistency(last.0, size, &last.1, &root, &proof).unwrap();
                        assert!(size >= last.0, "the published size never goes back");
                        last = (size, root);
                        checked += 1;
                    }
                    checked
                })
            })
            .collect();
        for batch in batches(&all[1..]) {
            log.append(batch).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() >= 50);
        }
    });
    assert_eq!(log.size(), 5000);
}

#[test]
fn a_forged_proof_from_disk_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = MerkleLog::open(dir.path()).unwrap();
    let all = leaves(8, 100);
    log.append(&all).unwrap();
    let reader = log.reader();
    let mut proof = reader.inclusion_proof(42, 100).unwrap();
    proof[2][7] ^= 1;
    let err = verify_inclusion(&all[42], 42, 100, &proof, &log.root()).unwrap_err();
    assert!(matches!(err, ProofError::RootMismatch { .. }));
}
