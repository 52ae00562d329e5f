//! Known-answer vectors for the Merkle tree tests, copied as data from
//! public RFC 6962 / RFC 9162 implementations.
//!
//! # Where the vectors come from
//!
//! Only data was copied (hex strings, node ids), no code:
//!
//! * `LEAF_INPUTS`, `NODE_HASHES`, `ROOTS`, `COMPACT_TREES`: repository
//!   transparency-dev/merkle, file `testonly/constants.go`, commit
//!   582a6ad190b6848f1d26f8bf08ddef29955d9db1 (`LeafInputs`, `NodeHashes`,
//!   `RootHashes`, `CompactTrees`, `EmptyRootHash`). The same inputs and
//!   roots are in google/certificate-transparency,
//!   `cpp/merkletree/merkle_tree_test.cc`, commit
//!   0e901cacd1388fa16f78b184612f6cd16e5ceec1 (`kInputs`, `kSHA256Roots`,
//!   `kSHA256EmptyTreeHash`).
//! * `INCLUSION`, `CONSISTENCY`: transparency-dev/merkle,
//!   `proof/verify_test.go`, commit 02194e9afb6c1d95b5381350007963aa70fff472
//!   (`inclusionProofs`, `consistencyProofs`; their leaf numbers are
//!   1-based, ours 0-based). All but the 6 -> 7 consistency proof are also
//!   google/certificate-transparency's `kSHA256Paths` and `kSHA256Proofs`
//!   (same file and commit as above).
//! * `INCLUSION_SHAPES`, `CONSISTENCY_SHAPES`: which nodes make up a proof,
//!   for trees up to 95 leaves: transparency-dev/merkle,
//!   `proof/proof_test.go`, commit 02a3e2029520f515596d5238c54fb0ac9e19bff4
//!   (`TestInclusion`, `TestConsistency`). There a proof is a list of node
//!   ids `(level, index)` of which the range `rehash` is folded into one
//!   ephemeral node: `h = ids[begin]; h = node_hash(ids[i], h)` for the rest.

pub(super) const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

pub(super) const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// Roots by tree size, 0 through 8.
pub(super) const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// The right-edge nodes of the tree of each size 0 through 8, as
/// `(level, index)` into `NODE_HASHES`.
pub(super) const COMPACT_TREES: [&[(u32, u64)]; 9] = [
    &[],
    &[(0, 0)],
    &[(1, 0)],
    &[(1, 0), (0, 2)],
    &[(2, 0)],
    &[(2, 0), (0, 4)],
    &[(2, 0), (1, 2)],
    &[(2, 0), (1, 2), (0, 6)],
    &[(3, 0)],
];

/// `(leaf index, tree size, proof)`.
pub(super) const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// `(old size, new size, proof)`.
pub(super) const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

pub(super) type Shape = (u64, u64, &'static [(u32, u64)], Option<(usize, usize)>);

/// `(tree size, leaf index, node ids, rehash range)`.
pub(super) const INCLUSION_SHAPES: &[Shape] = &[
    (1, 0, &[], None),
    (2, 0, &[(0, 1)], None),
    (2, 1, &[(0, 0)], None),
    (3, 1, &[(0, 0), (0, 2)], None),
    (7, 0, &[(0, 1), (1, 1), (0, 6), (1, 2)], Some((2, 4))),
    (7, 1, &[(0, 0), (1, 1), (0, 6), (1, 2)], Some((2, 4))),
    (7, 2, &[(0, 3), (1, 0), (0, 6), (1, 2)], Some((2, 4))),
    (7, 3, &[(0, 2), (1, 0), (0, 6), (1, 2)], Some((2, 4))),
    (7, 4, &[(0, 5), (0, 6), (2, 0)], None),
    (7, 5, &[(0, 4), (0, 6), (2, 0)], None),
    (7, 6, &[(1, 2), (2, 0)], None),
    (4, 2, &[(0, 3), (1, 0)], None),
    (5, 3, &[(0, 2), (1, 0), (0, 4)], None),
    (6, 3, &[(0, 2), (1, 0), (1, 2)], None),
    (6, 4, &[(0, 5), (2, 0)], None),
    (
        15,
        10,
        &[(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)],
        Some((2, 4)),
    ),
    (
        31,
        24,
        &[(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)],
        Some((2, 4)),
    ),
    (
        95,
        81,
        &[
            (0, 80),
            (1, 41),
            (2, 21),
            (0, 94),
            (1, 46),
            (2, 22),
            (4, 4),
            (6, 0),
        ],
        Some((3, 6)),
    ),
];

/// `(old size, new size, node ids, rehash range)`.
pub(super) const CONSISTENCY_SHAPES: &[Shape] = &[
    (1, 2, &[(0, 1)], None),
    (1, 4, &[(0, 1), (1, 1)], None),
    (1, 6, &[(0, 1), (1, 1), (1, 2)], None),
    (2, 3, &[(0, 2)], None),
    (2, 8, &[(1, 1), (2, 1)], None),
    (
        3,
        7,
        &[(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)],
        Some((3, 5)),
    ),
    (4, 7, &[(0, 6), (1, 2)], Some((0, 2))),
    (5, 7, &[(0, 4), (0, 5), (0, 6), (2, 0)], None),
    (6, 7, &[(1, 2), (0, 6), (2, 0)], None),
    (7, 8, &[(0, 6), (0, 7), (1, 2), (2, 0)], None),
    (1, 1, &[], None),
    (2, 2, &[], None),
    (3, 3, &[], None),
    (4, 4, &[], None),
    (5, 5, &[], None),
    (7, 7, &[], None),
    (8, 8, &[], None),
    (2, 4, &[(1, 1)], None),
    (3, 5, &[(0, 2), (0, 3), (1, 0), (0, 4)], None),
    (3, 6, &[(0, 2), (0, 3), (1, 0), (1, 2)], None),
    (4, 6, &[(1, 2)], None),
    (1, 7, &[(0, 1), (1, 1), (0, 6), (1, 2)], Some((2, 4))),
    (
        10,
        15,
        &[(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)],
        Some((2, 4)),
    ),
    (
        24,
        31,
        &[(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)],
        Some((1, 4)),
    ),
    (
        81,
        95,
        &[
            (0, 80),
            (0, 81),
            (1, 41),
            (2, 21),
            (0, 94),
            (1, 46),
            (2, 22),
            (4, 4),
            (6, 0),
        ],
        Some((4, 7)),
    ),
];
