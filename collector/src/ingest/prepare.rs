//! A checked batch, decoded and sealed, owning its bytes: everything the
//! commit thread needs, computed on the request's own thread so that the
//! single commit thread only appends.
//!
//! Preparing a batch recomputes each event's chain hash (see
//! [`auditship_core::wire::decode`]), checks the signature under the key
//! the header names, writes every event in its sealed form (the bytes the
//! store keeps and the Merkle leaf covers) and computes its leaf hash.
//! Whether the named key is the agent's enrolled key is decided by the
//! commit thread, which owns enrolment.

use std::net::IpAddr;

use auditship_core::identity::PublicKey;
use auditship_core::wire::{self, WireError};
use auditship_core::{seal, Hash};

use crate::store::{IndexKey, NewEvent};

/// A decoded batch that owns its bytes, ready for the commit thread.
#[derive(Debug)]
pub struct PreparedBatch {
    /// Sending agent.
    pub agent_id: String,
    /// Queue identity.
    pub queue: u64,
    /// First `seq` covered.
    pub first: u64,
    /// Last `seq` covered.
    pub last: u64,
    /// Chain hash before the first event.
    pub prev_hash: Hash,
    /// The key the header names.
    pub key: PublicKey,
    /// Whether the signature verifies under `key`.
    pub signed: bool,
    /// Whether the events hash to the signed `last_hash`.
    pub chained: bool,
    /// Sent before the agent had the answer to its previous batch.
    pub pipelined: bool,
    sealed: Vec<u8>,
    pub(super) events: Vec<Prepared>,
    arena: String,
}

/// `(start, len)` in the arena; `len == u32::MAX` is "absent".
type Span = (u32, u32);
const NONE: Span = (0, u32::MAX);

#[derive(Debug)]
pub(super) struct Prepared {
    pub seq: u64,
    /// Chain hash.
    pub hash: Hash,
    /// Merkle leaf hash of the sealed form.
    pub leaf: Hash,
    payload: (u32, u32),
    ts: i64,
    src_ip: Option<IpAddr>,
    host: Span,
    actor: Span,
    action: Span,
    category: Span,
    outcome: Span,
}

impl PreparedBatch {
    /// Decodes and checks an inflated body (see [`wire::decode`]).
    pub fn prepare(body: Vec<u8>) -> Result<PreparedBatch, WireError> {
        let decoded = wire::decode(&body)?;
        let n = decoded.events.len();
        let sealed_len = body.len() + n * seal::SUFFIX_LEN;
        if sealed_len > u32::MAX as usize {
            return Err(WireError::TooLarge {
                limit: u32::MAX as usize - n * seal::SUFFIX_LEN,
            });
        }
        let mut sealed = Vec::with_capacity(sealed_len);
        let mut arena = String::with_capacity(n * 32);
        let mut put = |s: Option<&str>| -> Span {
            match s {
                None => NONE,
                Some(s) => {
                    let start = arena.len() as u32;
                    arena.push_str(s);
                    (start, s.len() as u32)
                }
            }
        };
        let mut events = Vec::with_capacity(n);
        let mut prev = decoded.prev_hash;
        for e in &decoded.events {
            let start = sealed.len();
            seal::write_sealed(&mut sealed, e.bytes, &e.hash, &prev);
            prev = e.hash;
            let view = &e.view;
            events.push(Prepared {
                seq: e.seq,
                hash: e.hash,
                leaf: seal::leaf_of_hash(&e.hash),
                payload: (start as u32, (sealed.len() - start) as u32),
                ts: view.time_millis(),
                src_ip: view.src_ip,
                host: put(view.host.as_deref()),
                actor: put(view.actor.user.as_deref()),
                action: put(Some(&view.action)),
                category: put(Some(&view.category)),
                outcome: put(Some(&view.outcome)),
            });
        }
        let signed = decoded.self_signed();
        let pipelined = decoded.header.pipelined;
        let chained = decoded.chain_intact();
        let header = decoded.header;
        Ok(PreparedBatch {
            agent_id: header.agent_id,
            queue: decoded.queue,
            first: header.first,
            last: header.last,
            prev_hash: decoded.prev_hash,
            key: decoded.key,
            signed,
            chained,
            pipelined,
            sealed,
            events,
            arena,
        })
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// `prev_hash` of event `i` (the batch's, or the hash of event `i - 1`).
    pub(super) fn prev_of(&self, i: usize) -> Hash {
        if i == 0 {
            self.prev_hash
        } else {
            self.events[i - 1].hash
        }
    }

    fn span(&self, s: Span) -> Option<&str> {
        (s.1 != u32::MAX).then(|| &self.arena[s.0 as usize..(s.0 + s.1) as usize])
    }

    /// Event `i`, as the store takes it.
    pub(super) fn event(&self, i: usize) -> NewEvent<'_> {
        let e = &self.events[i];
        NewEvent {
            seq: e.seq,
            payload: &self.sealed[e.payload.0 as usize..(e.payload.0 + e.payload.1) as usize],
            hash: e.hash,
            prev: self.prev_of(i),
            key: IndexKey {
                ts_millis: e.ts,
                host: self.span(e.host),
                actor: self.span(e.actor),
                action: self.span(e.action).unwrap_or(""),
                category: self.span(e.category).unwrap_or(""),
                outcome: self.span(e.outcome).unwrap_or(""),
                src_ip: e.src_ip,
            },
        }
    }
}
