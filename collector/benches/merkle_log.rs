//! The on-disk Merkle tree at scale: builds a tree of
//! `MERKLE_LOG_BENCH_LEAVES` leaves (default 10,000,000) in a temporary
//! directory under /tmp (removed at the end) and prints:
//!
//! * append throughput, in batches of `MERKLE_LOG_BENCH_BATCH` leaves
//!   (default 1,000, about one group commit), timing `append` only (leaf
//!   hashing is timed apart), then one leaf per `append` for 100,000 more;
//! * `sync` and reopen (with its repair checks) times, bytes on disk;
//! * cold proof latency: the level files' pages are dropped from the page
//!   cache (`posix_fadvise(DONTNEED)` after `sync`) before *each* proof, so
//!   every node read goes to the disk; and semi-cold: the first proofs after
//!   one drop, when the small upper levels soon stay cached.
//!
//! Then, with every level file read once so that the whole tree is in the
//! page cache, criterion measures warm proofs at the full size: inclusion of a
//! random leaf, consistency from a random older size, a root at a random
//! size, and a leaf read. Every proof generated is verified outside the
//! timings.
//!
//! Run: `CARGO_TARGET_DIR=target cargo bench -p auditship-collector --bench merkle_log`

use std::fs::File;
use std::hint::black_box;
use std::time::{Duration, Instant};

use auditship_collector::merkle_log::{level_path, MerkleLog, MerkleReader};
use auditship_core::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use auditship_core::Hash;
use criterion::Criterion;
use rustix::fs::{fadvise, Advice};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_le_bytes())
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn drop_cache(log: &MerkleLog) {
    for level in 0..64 {
        let Ok(file) = File::open(level_path(log.dir(), level)) else {
            break;
        };
        fadvise(&file, 0, None, Advice::DontNeed).expect("fadvise");
    }
}

/// Reads every level file once, so that all of the tree is in the page cache.
fn warm_cache(log: &MerkleLog) {
    let mut buf = vec![0u8; 1 << 20];
    for level in 0..64 {
        let Ok(mut file) = File::open(level_path(log.dir(), level)) else {
            break;
        };
        while std::io::Read::read(&mut file, &mut buf).expect("read") > 0 {}
    }
}

fn rate(n: u64, d: Duration) -> String {
    format!("{:.2} M leaves/s", n as f64 / d.as_secs_f64() / 1e6)
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    format!(
        "median {:?}, p90 {:?}, p99 {:?}, max {:?} ({} proofs)",
        q(0.5),
        q(0.9),
        q(0.99),
        times[times.len() - 1],
        times.len()
    )
}

/// Times `count` proofs of each kind, calling `before` ahead of each.
fn proof_latency(log: &MerkleLog, count: usize, seed: u64, before: impl Fn()) {
    let reader = log.reader();
    let (n, root) = reader.head();
    let mut rng = Rng(seed);
    let mut incl = Vec::with_capacity(count);
    let mut cons = Vec::with_capacity(count);
    for _ in 0..count {
        let index = rng.below(n);
        before();
        let t = Instant::now();
        let proof = reader.inclusion_proof(index, n).unwrap();
        incl.push(t.elapsed());
        verify_inclusion(&leaf(index), index, n, &proof, &root).unwrap();
    }
    for _ in 0..count {
        let old = 1 + rng.below(n - 1);
        before();
        let t = Instant::now();
        let proof = reader.consistency_proof(old, n).unwrap();
        cons.push(t.elapsed());
        let old_root = reader.root(old).unwrap();
        verify_consistency(old, n, &old_root, &root, &proof).unwrap();
    }
    println!("  inclusion:   {}", summary(incl));
    println!("  consistency: {}", summary(cons));
}

fn warm(c: &mut Criterion, reader: &MerkleReader) {
    let (n, _) = reader.head();
    let mut g = c.benchmark_group(format!("merkle_log_{n}"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    g.bench_function("inclusion_proof", |b| {
        b.iter(|| reader.inclusion_proof(rng.below(n), n).unwrap())
    });
    g.bench_function("consistency_proof", |b| {
        b.iter(|| reader.consistency_proof(1 + rng.below(n - 1), n).unwrap())
    });
    g.bench_function("root_at_random_size", |b| {
        b.iter(|| reader.root(1 + rng.below(n)).unwrap())
    });
    g.bench_function("leaf", |b| b.iter(|| reader.leaf(rng.below(n)).unwrap()));
    g.finish();
}

fn main() {
    let n = env_u64("MERKLE_LOG_BENCH_LEAVES", 10_000_000).max(2);
    let batch = env_u64("MERKLE_LOG_BENCH_BATCH", 1000).max(1);
    let tmp = tempfile::Builder::new()
        .prefix("auditship-merkle-bench-")
        .tempdir_in("/tmp")
        .expect("temporary directory");
    let mut log = MerkleLog::open(tmp.path()).unwrap();

    let (mut hashing, mut appending) = (Duration::ZERO, Duration::ZERO);
    let mut leaves = Vec::with_capacity(batch as usize);
    let mut next = 0u64;
    while next < n {
        let t = Instant::now();
        leaves.clear();
        leaves.extend((next..(next + batch).min(n)).map(leaf));
        hashing += t.elapsed();
        let t = Instant::now();
        log.append(&leaves).unwrap();
        appending += t.elapsed();
        next += leaves.len() as u64;
    }
    println!(
        "append {n} leaves in batches of {batch}: {:.2?} ({}); leaf hashing apart: {:.2?} ({})",
        appending,
        rate(n, appending),
        hashing,
        rate(n, hashing)
    );
    let t = Instant::now();
    log.sync().unwrap();
    println!("sync: {:.2?}", t.elapsed());
    let bytes: u64 = (0..64)
        .map_while(|l| std::fs::metadata(level_path(tmp.path(), l)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "on disk: {:.1} MB ({:.1} bytes per leaf)",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64
    );

    let root = log.root();
    drop(log);
    let t = Instant::now();
    let mut log = MerkleLog::open(tmp.path()).unwrap();
    println!("reopen: {:.2?}", t.elapsed());
    assert_eq!(log.root(), root);

    drop_cache(&log);
    println!("cold (page cache dropped before each proof):");
    proof_latency(&log, 200, 1, || drop_cache(&log));
    drop_cache(&log);
    println!("semi-cold (first proofs after one drop):");
    proof_latency(&log, 1000, 2, || {});

    let t = Instant::now();
    warm_cache(&log);
    println!(
        "page cache filled (all levels read once): {:.2?}; warm proofs follow",
        t.elapsed()
    );
    let mut c = Criterion::default().configure_from_args();
    warm(&mut c, &log.reader());
    c.final_summary();

    let singles = 100_000u64;
    let t = Instant::now();
    for i in n..n + singles {
        log.append(&[black_box(leaf(i))]).unwrap();
    }
    let d = t.elapsed();
    println!(
        "append one leaf per call, {singles} calls at {n}: {:.2?} ({}, leaf hashing included)",
        d,
        rate(singles, d)
    );
    drop(log);
    tmp.close().expect("remove the temporary tree");
}
