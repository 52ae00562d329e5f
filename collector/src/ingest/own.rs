//! The collector's own chain: integrity findings, access records, alerts
//! and retention tombstones sealed into events of agent
//! [`COLLECTOR_AGENT`], ready to append.
//!
//! The chain's durable state is the store's watermark for
//! [`COLLECTOR_AGENT`] (queue identity, last seq, head hash), so it needs no
//! file of its own and survives exactly what the store survives. Each
//! commit round starts a fresh [`OwnChain`] from that watermark; a failed
//! commit therefore leaves nothing to undo.

use std::collections::HashMap;

use auditship_core::{canonical, seal, AuditEvent, Hash, Timestamp};

use crate::integrity::COLLECTOR_AGENT;
use crate::store::{IndexKey, NewEvent, StoreError, StoreWriter, Watermark};

/// One round's view of the collector's chain.
pub struct OwnChain {
    queue: u64,
    seq: u64,
    head: Hash,
    host: String,
}

impl OwnChain {
    /// Continues from the store's watermark, or starts `fresh_queue` at
    /// genesis when the store has none.
    pub fn new(marks: &HashMap<String, Watermark>, fresh_queue: u64, host: &str) -> OwnChain {
        let (queue, seq, head) = marks
            .get(COLLECTOR_AGENT)
            .map_or((fresh_queue, 0, seal::GENESIS), |w| {
                (w.queue, w.seq, w.head)
            });
        OwnChain {
            queue,
            seq,
            head,
            host: host.to_string(),
        }
    }

    /// Seals `ev` as the chain's next event (setting its `agent_id`,
    /// `seq`, host and times where unset) and appends it to the store;
    /// returns its leaf hash.
    pub fn append(
        &mut self,
        store: &mut dyn StoreWriter,
        mut ev: AuditEvent,
        now: Timestamp,
    ) -> Result<Hash, StoreError> {
        self.seq += 1;
        ev.seq = Some(self.seq);
        ev.agent_id = Some(COLLECTOR_AGENT.into());
        ev.ts.get_or_insert(now);
        ev.observed_ts.get_or_insert(now);
        if ev.host.is_none() {
            ev.host = Some(self.host.clone());
        }
        let mut payload = Vec::with_capacity(512);
        canonical::encode_into(&ev, &mut payload);
        let prev = self.head;
        let hash = seal::seal_in_place(&mut payload, &prev);
        self.head = hash;
        let new = NewEvent {
            seq: self.seq,
            payload: &payload,
            hash,
            prev,
            key: IndexKey {
                ts_millis: ev.ts.unwrap_or(now).unix_millis(),
                host: ev.host.as_deref(),
                actor: ev.actor.user.as_deref(),
                action: &ev.action,
                category: ev.category.as_str(),
                outcome: ev.outcome.as_str(),
                src_ip: ev.src_ip,
            },
        };
        store.append(COLLECTOR_AGENT, self.queue, &[new])?;
        Ok(seal::leaf_of_hash(&hash))
    }
}
