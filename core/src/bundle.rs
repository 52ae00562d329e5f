//! Export bundles: events with the proofs that they are in the collector's
//! log, checkable anywhere with nothing but the collector's public key.
//!
//! # Format, version 1
//!
//! NDJSON, UTF-8. The first line is the header, then one line per event in
//! log order (strictly ascending `leaf_index`: a repeated index is an
//! error). The final newline is optional; empty lines are skipped, but
//! count in the line numbers that errors name:
//!
//! ```text
//! {"auditship_bundle":1,
//!  "checkpoint":{"origin":…,"size":N,"root":"<64 hex>","time":…,"key_id":…,"signature":"<128 hex>"},
//!  "query":{<the filters of the export, as given>},
//!  "events":<number of event lines>}
//! {"leaf_index":I,"queue":"<16 hex>","event":"<the stored event, sealed form, as a JSON string>",
//!  "proof":["<64 hex>",…]}
//! ```
//!
//! `queue` is the agent's queue identity, which with the event's `agent_id`
//! names one chain (see `seal`). It is outside the event bytes, so no hash
//! or signature covers it: it only groups events for counting links.
//!
//! A verifier:
//!
//! 1. checks the checkpoint's Ed25519 signature with the collector's public
//!    key (a file of 64 hex digits, see `identity`) over the bytes
//!    `auditship_core::checkpoint` documents;
//! 2. for each event line, takes `event` as UTF-8 bytes (exactly the bytes
//!    the collector stored), checks its chain hash as in step 3, computes
//!    the leaf hash `SHA-256(0x00 ‖ hash)` over the 32 raw bytes of the
//!    event's `hash` (see `seal`, "Merkle leaves"), and checks `proof` as an
//!    RFC 9162 inclusion proof of leaf `leaf_index` in a tree of
//!    `checkpoint.size` leaves whose root is `checkpoint.root`
//!    (RFC 9162 §2.1.3.2);
//! 3. parses `event` as JSON, removes `hash` and `prev_hash`, encodes the
//!    rest canonically (see `canonical`), and checks
//!    `SHA-256(prev_hash bytes ‖ canonical) == hash` (see `seal`), and that
//!    `event` is exactly the sealed form of those canonical bytes (the
//!    canonical bytes without their final `}`, then the `hash`/`prev_hash`
//!    suffix of `seal`): an event that parses to the same object but is
//!    written differently is rejected;
//! 4. where two events of one agent and queue are neighbours in its chain
//!    (one's `prev_hash` is the other's `hash`), they are linked; an export
//!    with filters holds pieces of chains, so links are counted, not
//!    required.
//!
//! `tests/interop/verify.py` does all of this with the Python standard
//! library, from this description alone.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::checkpoint::SignedCheckpoint;
use crate::identity::PublicKey;
use crate::{canonical, hex, merkle, seal, AuditEvent, Hash};

/// Version in the header.
pub const BUNDLE_VERSION: u32 = 1;

/// The first line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    /// Always [`BUNDLE_VERSION`].
    pub auditship_bundle: u32,
    /// The checkpoint every proof leads to.
    pub checkpoint: SignedCheckpoint,
    /// The export's filters.
    pub query: serde_json::Value,
    /// Event lines that follow.
    pub events: u64,
}

/// One event line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEntry {
    /// The event's leaf index in the log.
    pub leaf_index: u64,
    /// The agent's queue identity.
    pub queue: String,
    /// The stored event (sealed form).
    pub event: String,
    /// Inclusion proof (hex hashes).
    pub proof: Vec<String>,
}

/// What a good bundle holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleSummary {
    /// Events verified.
    pub events: u64,
    /// Tree size of the checkpoint.
    pub size: u64,
    /// Pairs of events linked in a chain.
    pub links: u64,
    /// Distinct agent chains.
    pub chains: u64,
}

/// The first problem found, naming the line and the event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {what}", event.as_ref().map(|e| format!(" (leaf {}, agent {}, seq {})", e.0, e.1, e.2)).unwrap_or_default())]
pub struct BundleError {
    /// 1-based line number.
    pub line: usize,
    /// `(leaf index, agent, seq)` of the event, when the line has one.
    pub event: Option<(u64, String, u64)>,
    /// What is wrong.
    pub what: String,
}

/// Verifies a whole bundle (see the module docs).
pub fn verify(text: &str, key: &PublicKey) -> Result<BundleSummary, BundleError> {
    let bad = |line: usize, what: String| BundleError {
        line,
        event: None,
        what,
    };
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next().ok_or_else(|| bad(1, "empty bundle".into()))?;
    let header: BundleHeader =
        serde_json::from_str(first).map_err(|e| bad(1, format!("bad header: {e}")))?;
    if header.auditship_bundle != BUNDLE_VERSION {
        return Err(bad(
            1,
            format!(
                "bundle version {} is not supported",
                header.auditship_bundle
            ),
        ));
    }
    let root = header
        .checkpoint
        .verify(key)
        .map_err(|e| bad(1, e.to_string()))?;
    let size = header.checkpoint.size;
    let mut summary = BundleSummary {
        size,
        ..BundleSummary::default()
    };
    let mut hashes: HashMap<Hash, ()> = HashMap::new();
    let mut prevs: Vec<Hash> = Vec::new();
    let mut chains = std::collections::BTreeSet::new();
    let mut last_leaf = None;
    for (i, line) in lines {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let entry: BundleEntry =
            serde_json::from_str(line).map_err(|e| bad(n, format!("bad event line: {e}")))?;
        let ev: AuditEvent = serde_json::from_str(&entry.event)
            .map_err(|e| bad(n, format!("event is not an audit event: {e}")))?;
        let who = (
            entry.leaf_index,
            ev.agent_id.clone().unwrap_or_default(),
            ev.seq.unwrap_or(0),
        );
        let fail = |what: String| BundleError {
            line: n,
            event: Some(who.clone()),
            what,
        };
        if last_leaf.is_some_and(|l| entry.leaf_index <= l) {
            return Err(fail("events are not in ascending leaf order".into()));
        }
        last_leaf = Some(entry.leaf_index);
        let bytes = entry.event.as_bytes();
        let proof: Vec<Hash> = entry
            .proof
            .iter()
            .map(|h| {
                hex::decode_hash(h)
                    .ok_or_else(|| fail(format!("proof hash {h:?} is not 64 hex digits")))
            })
            .collect::<Result<_, _>>()?;
        merkle::verify_inclusion(
            &seal::leaf_of_sealed(bytes),
            entry.leaf_index,
            size,
            &proof,
            &root,
        )
        .map_err(|e| fail(format!("not in the log at checkpoint size {size}: {e}")))?;
        let sealed = seal::unseal(bytes).ok_or_else(|| fail("event has no chain fields".into()))?;
        let mut canon = Vec::with_capacity(bytes.len());
        canonical::encode_into(&ev, &mut canon);
        if canon != sealed.canonical() {
            return Err(fail("event is not in canonical form".into()));
        }
        if !sealed.is_intact() {
            return Err(fail(
                "event hash does not match its content: altered".into(),
            ));
        }
        hashes.insert(sealed.hash, ());
        prevs.push(sealed.prev);
        chains.insert((who.1.clone(), entry.queue.clone()));
        summary.events += 1;
    }
    if summary.events != header.events {
        return Err(bad(
            1,
            format!(
                "header says {} events, bundle holds {}",
                header.events, summary.events
            ),
        ));
    }
    summary.links = prevs.iter().filter(|p| hashes.contains_key(*p)).count() as u64;
    summary.chains = chains.len() as u64;
    Ok(summary)
}
