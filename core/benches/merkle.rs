//! The Merkle tree's costs: leaf and node hashing, streaming leaves through
//! a [`Frontier`] (and its `root()`), proof generation over an in-memory
//! tree of about a million leaves with a ragged right edge, and proof
//! verification. The on-disk tree at ten million leaves is measured by the
//! collector's `merkle_log` bench.
//!
//! Run: `CARGO_TARGET_DIR=target cargo bench -p auditship-core --bench merkle`

use std::hint::black_box;

use auditship_core::merkle::{
    self, consistency_proof, inclusion_proof, leaf_hash, node_hash, verify_consistency,
    verify_inclusion, Frontier, MemoryTree,
};
use auditship_core::Hash;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// 2^20 + 12,345 leaves: the right edge is ragged.
const TREE_LEAVES: u64 = (1 << 20) + 12_345;

fn leaves(n: u64) -> impl Iterator<Item = Hash> {
    (0..n).map(|i| leaf_hash(&i.to_le_bytes()))
}

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash");
    // About the size of a canonical audit event.
    let event = vec![b'x'; 400];
    g.throughput(Throughput::Elements(1));
    g.bench_function("leaf_400B", |b| b.iter(|| leaf_hash(black_box(&event))));
    let (l, r) = (leaf_hash(b"l"), leaf_hash(b"r"));
    g.bench_function("node", |b| {
        b.iter(|| node_hash(black_box(&l), black_box(&r)))
    });
    g.finish();

    let mut g = c.benchmark_group("frontier");
    let input: Vec<_> = leaves(10_000).collect();
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("push_10k", |b| {
        b.iter(|| {
            let mut f = Frontier::new();
            for leaf in &input {
                f.push(*leaf);
            }
            f.size()
        })
    });
    let mut f = Frontier::new();
    leaves(TREE_LEAVES).for_each(|l| f.push(l));
    g.throughput(Throughput::Elements(1));
    g.bench_function("root_at_1M", |b| b.iter(|| black_box(&f).root()));
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let tree: MemoryTree = leaves(TREE_LEAVES).collect();
    let n = tree.size();
    let root = tree.root();
    let mut g = c.benchmark_group("proof_1M");
    let (index, old) = (n - 7, n / 3 + 5);
    g.bench_function("inclusion", |b| {
        b.iter(|| inclusion_proof(&tree, black_box(index), n).unwrap())
    });
    g.bench_function("consistency", |b| {
        b.iter(|| consistency_proof(&tree, black_box(old), n).unwrap())
    });
    let proof = inclusion_proof(&tree, index, n).unwrap();
    let leaf = tree.leaf(index).unwrap();
    g.bench_function("verify_inclusion", |b| {
        b.iter(|| verify_inclusion(&leaf, black_box(index), n, &proof, &root).unwrap())
    });
    let proof = consistency_proof(&tree, old, n).unwrap();
    let old_root = merkle::root(&tree, old).unwrap();
    g.bench_function("verify_consistency", |b| {
        b.iter(|| verify_consistency(black_box(old), n, &old_root, &root, &proof).unwrap())
    });
    g.finish();
}

criterion_group!(benches, hashing, proofs);
criterion_main!(benches);
