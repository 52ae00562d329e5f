//! Offline verification of a whole collector data directory, with nothing
//! but the collector's public key: `auditship verify --store DIR --pubkey FILE`.
//!
//! One pass over every record in store order checks:
//!
//! 1. **Record checksums** (CRC32C) and segment headers.
//! 2. **Leaf numbering**: each record carries its leaf index, which must
//!    count up by one; a jump or a step back names a deleted, inserted or
//!    moved record.
//! 3. **Event hashes**: every stored event's `hash` is recomputed from its
//!    canonical bytes and `prev_hash` (`auditship_core::seal`).
//! 4. **Chains**: per agent and queue, each event must link to the previous
//!    one (`prev_hash` = its `hash`), seqs must increase, and no seq may
//!    appear twice. A discontinuity is accepted only where the collector
//!    recorded it when it happened (a `chain_gap`, `chain_fork`,
//!    `chain_break` or `agent_new_epoch` integrity event earlier in the
//!    log), and events replayed into a recorded gap may arrive later.
//! 5. **Merkle root against every signed checkpoint**: leaf hashes are
//!    streamed into a [`Frontier`]; at each checkpoint's size the root must
//!    equal the signed one, and the signature must verify. A store shorter
//!    than a checkpoint lost its tail. When a root differs, the collector's
//!    own Merkle log (`merkle/level-00.bin`), if present, names the first
//!    record whose leaf hash changed; otherwise the report names the range
//!    between the last matching checkpoint and the failing one.
//!
//! 6. **Expired records** (payloads removed by retention): their kept
//!    chain hashes give the leaf and the chain links as above; each must
//!    name a tombstone (a later event of the collector's own chain) whose
//!    signed statement verifies with the collector's key and whose count,
//!    leaf range and digest are exactly those of the expired records that
//!    name it. An expired record with no such tombstone is a failure. A
//!    tombstone no record names yet is a step a crash interrupted before
//!    the rewrite (the payloads are still there); it is counted, not failed.
//!
//! Memory stays small: per chain its head and recorded gaps, per tombstone
//! not yet reached a running digest, plus the O(log n) frontier.
//!
//! An encrypted store needs its keys as well (`--key-file`, once per key
//! the records were written under). Without them the check does not run:
//! the error names the key id the store needs. A record that fails
//! authentication under a key that was given is reported like a failed
//! checksum: altered or damaged.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use auditship_core::checkpoint::SignedCheckpoint;
use auditship_core::identity::PublicKey;
use auditship_core::merkle::Frontier;
use auditship_core::wire::format_queue;
use auditship_core::{hex, seal, Hash};

use crate::checkpoints;
use crate::integrity::COLLECTOR_AGENT;
use crate::retention::tombstone;
use crate::store::segments::walk::{self, Item};
use expired::Cover;

mod expired;

/// Where a problem is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// Segment number.
    pub segment: u64,
    /// Byte offset of the record in the segment.
    pub offset: u64,
    /// Leaf index (position in store order) when known.
    pub leaf: Option<u64>,
    /// Agent, when known.
    pub agent: Option<String>,
    /// Seq, when known.
    pub seq: Option<u64>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "segment {} offset {}", self.segment, self.offset)?;
        if let Some(l) = self.leaf {
            write!(f, " (record {l}")?;
            if let (Some(a), Some(s)) = (&self.agent, self.seq) {
                write!(f, ", agent {a}, seq {s}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// One thing wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where (None for a checkpoint problem with no record to name).
    pub at: Option<Location>,
    /// What.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.what),
            None => write!(f, "{}", self.what),
        }
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Event records read.
    pub records: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Segments.
    pub segments: u64,
    /// Agent chains (agent, queue).
    pub chains: u64,
    /// Checkpoints whose root matched.
    pub checkpoints_ok: u64,
    /// Recorded integrity events that explain discontinuities.
    pub explained: u64,
    /// Expired records (payload removed by retention).
    pub expired: u64,
    /// Tombstones whose statement matched the expired records naming them.
    pub tombstones: u64,
    /// Tombstones no expired record names yet (a step to be finished).
    pub tombstones_pending: u64,
    /// Problems, in store order; the first is the first bad record.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Progress, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Bytes read so far.
    pub bytes: u64,
    /// Bytes in total.
    pub total: u64,
    /// Records so far.
    pub records: u64,
}

#[derive(Default)]
struct Chain {
    queue: u64,
    seq: u64,
    head: Hash,
    /// Recorded gaps `(from, to)` not yet filled, with seqs seen in them.
    gaps: Vec<(u64, u64, Vec<u64>)>,
    /// Seqs at which a fork or break was recorded.
    breaks: Vec<u64>,
    /// A recorded new epoch is pending for this agent.
    new_epoch: bool,
}

/// Verifies the data directory `data_dir` (holding `store/` and
/// `checkpoints.ndjson`) against the collector's public key; `keys` open an
/// encrypted store.
pub fn verify_store(
    data_dir: &Path,
    key: &PublicKey,
    keys: Option<&auditship_crypt::Keyring>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, String> {
    let store = data_dir.join("store");
    if !store.join("segments").is_dir() {
        return Err(format!(
            "{}: no store here (expected store/segments)",
            data_dir.display()
        ));
    }
    let total = dir_bytes(&store.join("segments"));
    let cps = checkpoints::read_all(&data_dir.join("checkpoints.ndjson"))
        .map_err(|e| format!("checkpoints.ndjson: {e}"))?;
    let mut report = Report::default();
    let mut pending: BTreeMap<u64, Vec<(usize, SignedCheckpoint, Hash)>> = BTreeMap::new();
    let mut last_size = 0u64;
    for (i, (cp, _)) in cps.into_iter().enumerate() {
        match cp.verify(key) {
            Ok(root) => {
                if cp.size < last_size {
                    report.problems.push(Problem {
                        at: None,
                        what: format!("checkpoint #{} (signed {}) has size {}, smaller than an earlier one ({last_size})", i + 1, cp.time, cp.size),
                    });
                }
                last_size = last_size.max(cp.size);
                pending.entry(cp.size).or_default().push((i + 1, cp, root));
            }
            Err(e) => report.problems.push(Problem {
                at: None,
                what: format!(
                    "checkpoint #{} (size {}, signed {}): {e}: forged or altered",
                    i + 1,
                    cp.size,
                    cp.time
                ),
            }),
        }
    }
    let tree_leaves = File::open(data_dir.join("merkle").join("level-00.bin")).ok();
    let mut v = Walker {
        key: *key,
        covers: HashMap::new(),
        report,
        frontier: Frontier::new(),
        chains: HashMap::new(),
        pending,
        next_leaf: 0,
        last_good: (0, None),
        first_diff: None,
        tree_leaves,
        tree_buf: Vec::new(),
        tree_from: 0,
        bytes_done: 0,
    };
    if let Some(list) = v.pending.remove(&0) {
        for (n, cp, root) in list {
            v.check_checkpoint(n, &cp, &root);
        }
    }
    walk::walk(&store, keys, &mut |item| {
        v.item(item);
        if v.report.records % 65536 == 0 {
            progress(Progress {
                bytes: v.bytes_done,
                total,
                records: v.report.records,
            });
        }
    })
    .map_err(|e| e.to_string())?;
    progress(Progress {
        bytes: total,
        total,
        records: v.report.records,
    });
    for (size, list) in std::mem::take(&mut v.pending) {
        for (n, cp, _) in list {
            v.report.problems.push(Problem {
                at: v.last_good.1.clone(),
                what: format!(
                    "the store ends after {} records, but checkpoint #{n} (signed {}) covers {size}: records {}..{size} were removed (tail truncated)",
                    v.report.records, cp.time, v.report.records
                ),
            });
        }
    }
    let mut left: Vec<_> = std::mem::take(&mut v.covers).into_iter().collect();
    left.sort_by_key(|(t, _)| *t);
    for (t, c) in left {
        v.report.problems.push(Problem {
            at: Some(c.first),
            what: format!(
                "{} expired record(s) (payload removed) name a tombstone at record {t}, but there is no valid tombstone there: payloads were removed without a tombstone",
                c.digest.count
            ),
        });
    }
    v.report.chains = v.chains.len() as u64;
    v.report.bytes = total;
    Ok(v.report)
}

/// Reads as much of `buf` as the file has at `offset`.
fn read_up_to(f: &File, buf: &mut [u8], offset: u64) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

struct Walker {
    key: PublicKey,
    /// Per tombstone leaf not reached yet.
    covers: HashMap<u64, Cover>,
    report: Report,
    frontier: Frontier,
    chains: HashMap<String, Chain>,
    pending: BTreeMap<u64, Vec<(usize, SignedCheckpoint, Hash)>>,
    next_leaf: u64,
    /// Size of the last checkpoint that matched, and the location after it.
    last_good: (u64, Option<Location>),
    /// First record whose leaf hash differs from the collector's Merkle log.
    first_diff: Option<Location>,
    tree_leaves: Option<File>,
    /// A window of the collector's leaf file: leaf hashes from `tree_from`.
    tree_buf: Vec<u8>,
    tree_from: u64,
    bytes_done: u64,
}

impl Walker {
    fn problem(&mut self, at: Location, what: String) {
        self.report.problems.push(Problem { at: Some(at), what });
    }

    fn item(&mut self, item: Item<'_>) {
        match item {
            Item::Segment { len, .. } => {
                self.report.segments += 1;
                self.bytes_done += len;
            }
            Item::BadHeader { no, reason } => self.problem(
                Location {
                    segment: no,
                    ..Location::default()
                },
                format!("{reason}: the whole segment is unreadable"),
            ),
            Item::Corrupt {
                segment,
                offset,
                len,
                reason,
                tail,
            } => {
                if tail && len < 8 + (16 << 20) {
                    // A write in progress or a torn tail: never acknowledged.
                    return;
                }
                self.problem(
                    Location {
                        segment,
                        offset,
                        leaf: Some(self.next_leaf),
                        ..Location::default()
                    },
                    format!(
                        "{len} bytes fail verification ({reason}): a record was altered or damaged"
                    ),
                )
            }
            Item::Event {
                segment,
                offset,
                agent,
                queue,
                seq,
                leaf,
                payload,
            } => self.event(segment, offset, agent, queue, seq, leaf, payload),
            Item::Expired {
                segment,
                offset,
                record,
            } => self.expired(segment, offset, &record),
        }
    }

    /// Checks leaf numbering, compares with the collector's tree and feeds
    /// the frontier.
    fn leaf(&mut self, at: &Location, leaf: u64, leaf_hash: Hash) {
        if leaf != self.next_leaf {
            let what = if leaf > self.next_leaf {
                format!(
                    "record number {leaf} follows {}: records {}..{leaf} are missing (deleted)",
                    self.next_leaf.wrapping_sub(1),
                    self.next_leaf
                )
            } else {
                format!(
                    "record number {leaf} appears after {}: records were moved or inserted",
                    self.next_leaf.wrapping_sub(1)
                )
            };
            self.problem(at.clone(), what);
        }
        self.next_leaf = leaf.max(self.next_leaf) + 1;
        self.compare_tree(self.frontier.size(), &leaf_hash, at);
        self.frontier.push(leaf_hash);
    }

    /// Checks the checkpoints signed at the current size.
    fn checkpoints_here(&mut self, at: Location) {
        let size = self.frontier.size();
        if let Some(list) = self.pending.remove(&size) {
            for (n, cp, root) in list {
                self.check_checkpoint(n, &cp, &root);
            }
            self.last_good.1 = Some(at);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        segment: u64,
        offset: u64,
        agent: &str,
        queue: u64,
        seq: u64,
        leaf: u64,
        payload: &[u8],
    ) {
        self.report.records += 1;
        let at = Location {
            segment,
            offset,
            leaf: Some(leaf),
            agent: Some(agent.to_string()),
            seq: Some(seq),
        };
        let unsealed = seal::unseal(payload);
        let leaf_hash = match &unsealed {
            Some(u) => seal::leaf_of_hash(&u.hash),
            None => seal::leaf_of_sealed(payload),
        };
        self.leaf(&at, leaf, leaf_hash);
        match unsealed {
            None => self.problem(at.clone(), "the stored event has no chain fields".into()),
            Some(u) if !u.is_intact() => self.problem(
                at.clone(),
                "the event's hash does not match its content: the event was altered".into(),
            ),
            Some(u) => {
                let view = auditship_core::wire::EventView::parse(payload).ok();
                match view {
                    Some(v) if v.agent_id.as_deref() == Some(agent) && v.seq == Some(seq) => {
                        if agent == COLLECTOR_AGENT {
                            self.note_finding(&at, leaf, payload);
                        }
                        self.link(at.clone(), agent, queue, seq, u.prev, u.hash);
                    }
                    _ => self.problem(
                        at.clone(),
                        "the record's agent or seq differs from the event's".into(),
                    ),
                }
            }
        }
        self.checkpoints_here(at);
    }

    fn compare_tree(&mut self, index: u64, leaf: &Hash, at: &Location) {
        let Some(f) = &self.tree_leaves else { return };
        if self.first_diff.is_some() {
            return;
        }
        let in_window = |s: &Self| {
            index >= s.tree_from && (index - s.tree_from + 1) * 32 <= s.tree_buf.len() as u64
        };
        if !in_window(self) {
            // Read the leaf file in 64 KiB windows, not 32 bytes a record.
            self.tree_buf.resize(64 << 10, 0);
            let n = read_up_to(f, &mut self.tree_buf, index * 32);
            self.tree_buf.truncate(n - n % 32);
            self.tree_from = index;
            if !in_window(self) {
                return; // the collector's tree is shorter: nothing to compare
            }
        }
        let at_byte = ((index - self.tree_from) * 32) as usize;
        if &self.tree_buf[at_byte..at_byte + 32] != leaf {
            self.first_diff = Some(at.clone());
        }
    }

    fn check_checkpoint(&mut self, n: usize, cp: &SignedCheckpoint, root: &Hash) {
        let ours = self.frontier.root();
        if &ours == root {
            self.report.checkpoints_ok += 1;
            self.last_good.0 = cp.size;
            return;
        }
        let (good, _) = self.last_good;
        let named = match &self.first_diff {
            Some(at) => format!(
                "; the first record whose hash differs from the collector's Merkle log is {at}"
            ),
            None => format!("; the change lies in records {good}..{}", cp.size),
        };
        self.report.problems.push(Problem {
            at: self.first_diff.clone(),
            what: format!(
                "Merkle root over the first {} records is {}, but checkpoint #{n} (signed {}) says {}: records were altered, removed, inserted or re-chained{named}",
                cp.size,
                hex::encode(&ours),
                cp.time,
                cp.root
            ),
        });
    }

    /// Registers what an integrity event of the collector explains.
    fn note_finding(&mut self, at: &Location, leaf: u64, payload: &[u8]) {
        let Ok(ev) = serde_json::from_slice::<auditship_core::AuditEvent>(payload) else {
            return;
        };
        if ev.category == auditship_core::Category::Integrity && ev.action == tombstone::ACTION {
            self.tombstone(at, leaf, &ev);
            return;
        }
        let f = &ev.fields;
        let Some(agent) = f.get("agent_id") else {
            return;
        };
        let num = |k: &str| f.get(k).and_then(|v| v.parse::<u64>().ok());
        let chain = self.chains.entry(agent.clone()).or_default();
        match ev.action.as_ref() {
            "chain_gap" => {
                if let (Some(a), Some(b)) = (num("from"), num("to")) {
                    chain.gaps.push((a, b, Vec::new()));
                    self.report.explained += 1;
                }
            }
            "chain_fork" | "chain_break" => {
                if let Some(s) = num("seq") {
                    chain.breaks.push(s);
                    self.report.explained += 1;
                }
            }
            "agent_new_epoch" => {
                chain.new_epoch = true;
                self.report.explained += 1;
            }
            _ => {}
        }
    }

    fn link(&mut self, at: Location, agent: &str, queue: u64, seq: u64, prev: Hash, hash: Hash) {
        let fresh = !self.chains.contains_key(agent);
        let chain = self.chains.entry(agent.to_string()).or_default();
        if fresh || chain.queue != queue {
            let known = !fresh && chain.seq > 0;
            if known && !chain.new_epoch && agent != COLLECTOR_AGENT {
                let old = format_queue(chain.queue);
                self.report.problems.push(Problem {
                    at: Some(at.clone()),
                    what: format!("agent {agent}'s queue changed from {old} to {} with no record of a new epoch", format_queue(queue)),
                });
            }
            let gaps = std::mem::take(&mut chain.gaps);
            let breaks = std::mem::take(&mut chain.breaks);
            *chain = Chain {
                queue,
                seq: 0,
                head: seal::GENESIS,
                gaps,
                breaks,
                new_epoch: false,
            };
        }
        if seq > chain.seq {
            let linked = prev == chain.head;
            let explained = chain
                .gaps
                .iter()
                .any(|g| g.0 == chain.seq + 1 && g.1 + 1 >= seq)
                || chain.breaks.contains(&seq)
                || chain.breaks.contains(&chain.seq);
            if !linked && !explained {
                let what = if chain.seq == 0 {
                    "the chain's first event does not start at genesis and no gap was recorded: earlier events are missing".to_string()
                } else {
                    format!(
                        "does not link to the previous event of agent {agent} (seq {}): events between were removed or altered, and no gap or fork was recorded",
                        chain.seq
                    )
                };
                chain.seq = seq;
                chain.head = hash;
                self.problem(at, what);
                return;
            }
            chain.seq = seq;
            chain.head = hash;
            return;
        }
        if let Some(g) = chain.gaps.iter_mut().find(|g| g.0 <= seq && seq <= g.1) {
            if !g.2.contains(&seq) {
                g.2.push(seq);
                return;
            }
        }
        let what = format!(
            "seq {seq} of agent {agent} appears after seq {}: a duplicate or a fork (two events with one seq), or records swapped",
            chain.seq
        );
        self.problem(at, what);
    }
}
