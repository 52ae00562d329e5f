//! Sealing at the source: the agent's identity key and its hash chain.
//!
//! # Identity
//!
//! At first start the agent creates `<state_dir>/identity.key`, an Ed25519
//! secret key with mode 0600 (format in [`auditship_core::identity`]), and
//! logs its public key. `auditship agent --config F --print-identity`
//! prints the agent id and the public key (creating the key if needed) for
//! enrolment at the collector. The key signs every batch the collector
//! output sends.
//!
//! # The chain
//!
//! Every event the agent queues is *sealed* (see [`auditship_core::seal`]):
//! its `seq` is the id of its queue record, and it is stored in the queue as
//! its canonical bytes with its chain link (its hash and the hash of the
//! event sealed before it: 64 bytes in the record, beside the payload; see
//! [`crate::queue`]). Outputs that write the sealed form join the two. The
//! [`Sealer`] keeps the chain head (the last sealed event's hash) in memory.
//! Lines a filter dropped leave position-only records, which spend a `seq`
//! but are not in the chain; heartbeats ([`heartbeat`]) are sealed events
//! like any other.
//!
//! The head is sealed into an event, the event is appended to the queue, and
//! only when the append succeeded does the head move. A refused append (a
//! full queue, waited out and retried; a record too large, replaced by the
//! truncated event) is sealed again from the same head, so the chain never
//! advances twice for one event.
//!
//! # Where the head lives: the `\0chain` pseudo-stream
//!
//! There is no separate state file that could disagree with the queue. The
//! head is recovered from the queue itself, and it also travels in the
//! queue's positions map under a reserved stream:
//!
//! ```text
//! stream   "\0chain"                         (6 bytes; no input's key can be this:
//!                                             input names are non-empty and free of NUL)
//! position as_of u64 LE ‖ hash [32]          (40 bytes: the chain head after every
//!                                             queue record up to id as_of)
//! ```
//!
//! * Every sealed event's record sets this position in the writer's map
//!   *together with* the record ([`QueueWriter::append_implying`]): it is
//!   written in no record of its own, but every segment's opening snapshot
//!   carries the head as of the last event before it. So once every segment
//!   holding events is acknowledged and deleted, the newest segment still
//!   knows the head.
//! * A heartbeat's record uses `\0chain` as its stream, with the same
//!   position.
//! * The file input only resumes and forgets streams whose key starts with
//!   its own name, so it never sees or forgets this one; the queue forgets a
//!   stream only when an input asks.
//!
//! # Recovery
//!
//! When the queue is opened, its records are folded in order ([`ChainFold`]):
//!
//! ```text
//! snapshot holding "\0chain"       head := its position
//! linked event record (kind 4)     head := (record id, its link's hash)
//! event record whose payload is    head := (record id, the hash in it)
//!   in the sealed form (kind 1,
//!   from an older agent)
//! position-only "\0chain" record   head := its position
//! bytes quarantined as corrupt     head := (last id, the hash of the last link that
//!                                           can be made out in the bad bytes (bodies
//!                                           in the clear only), or of
//!                                           the last sealed suffix in them, else
//!                                           SHA-256(head ‖ bad bytes))
//! ```
//!
//! The result is written into the snapshot that opens the new segment, so
//! the next start finds it even if the segments it came from are deleted in
//! between.
//!
//! Why a crash at any moment neither forks nor breaks the chain: a record is
//! delivered only after the fsync that covers it, and a segment is deleted
//! only after it was delivered. Every event that reached an output is
//! therefore either still in a segment, where the fold reads its hash, or
//! older than the snapshot of a newer segment, which carries a head at least
//! as new (snapshots are written only when nothing is buffered, after the
//! fsync of the segment before). Events whose records were not durable (a
//! torn tail) never reached an output and are read again from the input, so
//! sealing continues from the last durable event: no two delivered events
//! share a `prev_hash`, and each one's `prev_hash` is its predecessor's hash.
//!
//! Corruption at rest is not a crash. An event record that fails its
//! checksum is quarantined: the event is lost and its `seq` becomes a gap at
//! the collector. If it was the newest event, the head is taken from the
//! hash still readable in its bytes, or else made up from them; either way
//! the next event can only continue the chain or visibly break it, never
//! fork it from the event before. With `fsync = "interval"` a power loss
//! can lose delivered records, and then the chain breaks (the same
//! documented risk as duplicates). A queue that lost every segment starts a
//! new chain from [`GENESIS`].

pub mod heartbeat;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use auditship_core::identity::{Identity, KeyError};
use auditship_core::seal::{self as core_seal, GENESIS};
use auditship_core::{hex, Hash};

use crate::queue::{last_link_in_damage, ChainLink, QueueError, QueueWriter};

/// The reserved stream that carries the chain head in the queue.
pub const CHAIN_STREAM: &[u8] = b"\0chain";

/// Name of the identity key file in the state directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// Where the agent keeps its identity key.
pub fn identity_path(state_dir: &Path) -> PathBuf {
    state_dir.join(IDENTITY_FILE)
}

/// Loads the agent's identity, creating it (and logging its public key) at
/// first start.
pub fn load_identity(state_dir: &Path) -> Result<Identity, KeyError> {
    let path = identity_path(state_dir);
    let (identity, created) = Identity::load_or_create(&path)?;
    let public = identity.public();
    if created {
        tracing::info!(
            path = %path.display(),
            public_key = %public.to_hex(),
            key_id = %public.key_id(),
            "created this agent's identity key; enrol its public key at the collector"
        );
    } else {
        tracing::info!(key_id = %public.key_id(), "agent identity loaded");
    }
    Ok(identity)
}

/// The chain head: the hash of the last sealed event, as of a queue record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// The id of the last queue record the head accounts for.
    pub as_of: u64,
    /// The last sealed event's hash ([`GENESIS`] before the first).
    pub hash: Hash,
}

impl ChainHead {
    /// The head of a queue that never sealed anything.
    pub const START: ChainHead = ChainHead {
        as_of: 0,
        hash: GENESIS,
    };

    /// The position form: `as_of u64 LE ‖ hash`.
    pub fn encode(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[..8].copy_from_slice(&self.as_of.to_le_bytes());
        b[8..].copy_from_slice(&self.hash);
        b
    }

    /// Parses the position form.
    pub fn decode(b: &[u8]) -> Option<ChainHead> {
        (b.len() == 40).then(|| ChainHead {
            as_of: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            hash: b[8..].try_into().expect("32 bytes"),
        })
    }
}

/// Folds queue records, in the order recovery reads them, into the chain
/// head (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct ChainFold {
    head: Option<ChainHead>,
}

impl ChainFold {
    /// A segment's opening snapshot.
    pub fn snapshot(&mut self, positions: &BTreeMap<Vec<u8>, Vec<u8>>) {
        if let Some(h) = positions
            .get(CHAIN_STREAM)
            .and_then(|p| ChainHead::decode(p))
        {
            self.head = Some(h);
        }
    }

    /// An intact event record.
    pub fn event(
        &mut self,
        id: u64,
        stream: &[u8],
        position: &[u8],
        link: Option<&ChainLink>,
        payload: &[u8],
    ) {
        if let Some(l) = link {
            self.head = Some(ChainHead {
                as_of: id,
                hash: l.hash,
            });
            return;
        }
        if payload.is_empty() {
            if stream == CHAIN_STREAM {
                if let Some(h) = ChainHead::decode(position) {
                    self.head = Some(h);
                }
            }
            return;
        }
        // A payload in the sealed form was written by an agent before
        // chain links moved out of the payload (kind 1 records); one that
        // is not sealed at all says nothing about the chain.
        if let Some(u) = core_seal::unseal(payload) {
            self.head = Some(ChainHead {
                as_of: id,
                hash: u.hash,
            });
        }
    }

    /// Bytes quarantined as corrupt; `last_id` is the last intact id before.
    /// `encrypted`: the bytes are sealed record bodies, whose links cannot
    /// be read (bytes of ciphertext must not be taken for one).
    pub fn damage(&mut self, last_id: u64, bad: &[u8], encrypted: bool) {
        let prev = self.head.unwrap_or(ChainHead::START);
        let hash = (!encrypted)
            .then(|| last_link_in_damage(bad))
            .flatten()
            .map(|l| l.hash)
            .or_else(|| last_sealed_hash(bad))
            .unwrap_or_else(|| core_seal::chain_hash(&prev.hash, bad));
        self.head = Some(ChainHead {
            as_of: last_id.max(prev.as_of),
            hash,
        });
    }

    /// The head, if the queue held any sign of a chain.
    pub fn head(&self) -> Option<ChainHead> {
        self.head
    }
}

/// The `hash` of the last well-formed sealed suffix in `bytes`, if any.
fn last_sealed_hash(bytes: &[u8]) -> Option<Hash> {
    const MID: &[u8] = b"\",\"prev_hash\":\"";
    const START: &[u8] = b",\"hash\":\"";
    let mut end = bytes.len();
    while end >= MID.len() {
        let at = bytes[..end].windows(MID.len()).rposition(|w| w == MID)?;
        if at >= 64 + START.len() && bytes[..at - 64].ends_with(START) {
            let candidate = std::str::from_utf8(&bytes[at - 64..at]).ok();
            if let Some(h) = candidate.and_then(hex::decode_hash) {
                return Some(h);
            }
        }
        end = at;
    }
    None
}

/// Seals events: keeps the chain head and links every event to it.
#[derive(Debug)]
pub struct Sealer {
    head: ChainHead,
}

impl Sealer {
    /// A sealer continuing from a recovered head.
    pub fn new(head: ChainHead) -> Self {
        Sealer { head }
    }

    /// The current head.
    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// The chain link of the canonical bytes `canonical`, linked to the
    /// head. The head does not move until [`append`](Self::append) stores
    /// the event.
    pub fn link(&self, canonical: &[u8]) -> ChainLink {
        ChainLink {
            hash: core_seal::chain_hash(&self.head.hash, canonical),
            prev: self.head.hash,
        }
    }

    /// Appends the event `canonical` (whose `seq` is `writer.next_id()`)
    /// with its `link` to the queue, and moves the head to it. On error the
    /// head stays, and the caller may seal again. Under [`CHAIN_STREAM`]
    /// (heartbeats) `position` is ignored: the record's position is the new
    /// head.
    pub fn append(
        &mut self,
        writer: &mut QueueWriter,
        stream: &[u8],
        position: &[u8],
        canonical: &[u8],
        link: ChainLink,
    ) -> Result<u64, QueueError> {
        debug_assert_eq!(link.prev, self.head.hash, "linked to the head");
        let next = ChainHead {
            as_of: writer.next_id(),
            hash: link.hash,
        };
        let chain = next.encode();
        let id = if stream == CHAIN_STREAM {
            writer.append_linked(CHAIN_STREAM, &chain, &link, canonical, None)?
        } else {
            writer.append_linked(
                stream,
                position,
                &link,
                canonical,
                Some((CHAIN_STREAM, &chain)),
            )?
        };
        debug_assert_eq!(id, next.as_of, "the event's seq is its record id");
        self.head = next;
        Ok(id)
    }
}

#[cfg(test)]
mod tests;
