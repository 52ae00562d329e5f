//! Expired records and the tombstones that cover them (check 6 of the
//! parent module).

use auditship_core::{hex, seal};

use super::{Location, Walker};
use crate::retention::tombstone::{self, LeafDigest};
use crate::store::segments::format::ExpiredRecord;

/// Expired records naming one tombstone, seen so far.
pub(super) struct Cover {
    pub(super) digest: LeafDigest,
    pub(super) segment: u64,
    pub(super) first: Location,
}

impl Walker {
    pub(super) fn expired(&mut self, segment: u64, offset: u64, r: &ExpiredRecord<'_>) {
        self.report.records += 1;
        self.report.expired += 1;
        let at = Location {
            segment,
            offset,
            leaf: Some(r.leaf),
            agent: Some(r.agent.to_string()),
            seq: Some(r.seq),
        };
        self.leaf(&at, r.leaf, seal::leaf_of_hash(&r.hash));
        self.link(at.clone(), r.agent, r.queue, r.seq, r.prev, r.hash);
        if r.tombstone <= r.leaf {
            self.problem(
                at.clone(),
                format!(
                    "the expired record names a tombstone at record {}, which is not after it: payload removed without a tombstone",
                    r.tombstone
                ),
            );
        } else {
            let c = self.covers.entry(r.tombstone).or_insert_with(|| Cover {
                digest: LeafDigest::default(),
                segment,
                first: at.clone(),
            });
            c.digest.push(r.leaf, &r.hash);
        }
        self.checkpoints_here(at);
    }

    /// Checks the tombstone event at `leaf` against the expired records
    /// that name it.
    pub(super) fn tombstone(&mut self, at: &Location, leaf: u64, ev: &auditship_core::AuditEvent) {
        let cover = self.covers.remove(&leaf);
        let st = match tombstone::verify_event(ev, &self.key) {
            Ok(st) => st,
            Err(e) => {
                let what = match &cover {
                    Some(c) => format!("{e}; {} expired record(s) name it: payloads removed without a valid tombstone", c.digest.count),
                    None => e,
                };
                self.problem(at.clone(), what);
                return;
            }
        };
        let Some(c) = cover else {
            self.report.tombstones_pending += 1;
            return;
        };
        let (count, range, segment) = (c.digest.count, c.digest.range, c.segment);
        let digest = c.digest.finish();
        if count != st.expired || range != st.leaves || digest != st.digest || segment != st.segment
        {
            self.problem(
                at.clone(),
                format!(
                    "the tombstone states {} expired record(s) of segment {} (digest {}), but {count} expired record(s) of segment {segment} name it (digest {}): records were expired beyond, or other than, what it covers",
                    st.expired,
                    st.segment,
                    hex::encode(&st.digest),
                    hex::encode(&digest)
                ),
            );
            return;
        }
        self.report.tombstones += 1;
    }
}
