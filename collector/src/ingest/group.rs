//! One commit round: verify and append every waiting batch, commit once,
//! extend the Merkle log, sign a checkpoint when one is due.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use auditship_core::wire::{self, IngestAck};
use auditship_core::{hex, seal, AuditEvent, Hash, Timestamp};
use tokio::sync::oneshot;

use super::own::OwnChain;
use super::{IngestError, IngestStats, Parts, PreparedBatch, Recorded, Views};
use crate::alerts::feed::{Payload, Tap};
use crate::checkpoints::Checkpointer;
use crate::enrol::{Enrolment, KeyVerdict};
use crate::gaps::Gaps;
use crate::integrity::{Finding, COLLECTOR_AGENT};
use crate::liveness::Liveness;
use crate::merkle_log::MerkleLog;
use crate::store::{NewEvent, StoreError, StoreReader, StoreWriter, Watermark};

/// Where a batch's answer goes.
pub type Reply = oneshot::Sender<Result<IngestAck, IngestError>>;

/// Where a collector event's answer goes.
pub type RecordReply = oneshot::Sender<Result<Recorded, IngestError>>;

/// What a batch gets once the round is durable.
enum Pending {
    Ack {
        stored: u64,
        duplicates: u64,
    },
    Refused {
        status: u16,
        message: String,
    },
    /// Pipelined, and its predecessor has not arrived: held, not answered.
    Held,
}

/// The commit thread's state.
pub struct Committer {
    store: Box<dyn StoreWriter>,
    reader: Arc<dyn StoreReader>,
    gaps: Gaps,
    enrol: Enrolment,
    merkle: MerkleLog,
    /// The Merkle log must be caught up from the store before it grows.
    merkle_behind: bool,
    checkpoints: Checkpointer,
    liveness: Liveness,
    host: String,
    views: Views,
    pub stats: Arc<IngestStats>,
    /// Queue identity of the collector's chain if the store has none yet.
    own_queue: u64,
    /// Agents already reported as not enrolled (once per run).
    unenrolled: HashSet<String>,
    /// Hands committed events to the alert rules.
    pub tap: Option<Tap>,
}

/// What one round appended, in store order.
struct Round<'a> {
    store: &'a mut dyn StoreWriter,
    own: OwnChain,
    /// Store size (leaf index of the round's first event) at its start.
    base: u64,
    leaves: Vec<Hash>,
    findings: Vec<Finding>,
    now: Timestamp,
    host: &'a str,
    /// Collects the round's events the alert rules may match.
    tap: Option<&'a mut Tap>,
}

impl Round<'_> {
    fn record(&mut self, f: Finding) -> Result<(), StoreError> {
        let ev = f.to_event(self.now, self.host);
        if let Some(t) = self.tap.as_deref_mut() {
            if t.wants("integrity", f.action()) {
                let index = self.base + self.leaves.len() as u64;
                t.push(index, Payload::Event(Box::new(ev.clone())));
            }
        }
        let leaf = self.own.append(self.store, ev, self.now)?;
        self.leaves.push(leaf);
        self.findings.push(f);
        Ok(())
    }

    /// Appends a collector event; returns its leaf index.
    fn record_event(&mut self, ev: AuditEvent) -> Result<u64, StoreError> {
        let index = self.base + self.leaves.len() as u64;
        let leaf = self.own.append(self.store, ev, self.now)?;
        self.leaves.push(leaf);
        Ok(index)
    }
}

impl Committer {
    /// Takes over the parts.
    pub fn new(parts: Parts, views: Views, stats: Arc<IngestStats>) -> Committer {
        let known = parts
            .store
            .watermarks()
            .keys()
            .filter(|a| a.as_str() != COLLECTOR_AGENT)
            .cloned()
            .collect::<Vec<_>>();
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Committer {
            liveness: Liveness::new(parts.silent_after, known, Instant::now()),
            store: parts.store,
            reader: parts.reader,
            gaps: parts.gaps,
            enrol: parts.enrol,
            merkle: parts.merkle,
            merkle_behind: true,
            checkpoints: parts.checkpoints,
            host: parts.host,
            views,
            stats,
            own_queue: u64::from_le_bytes(seed).max(1),
            unenrolled: HashSet::new(),
            tap: None,
        }
    }

    /// Brings the Merkle log level with the store (it is written without
    /// fsync, so a crash may have cost it its tail), then signs a checkpoint
    /// if one is due. Failures are logged; the next round tries again.
    pub fn catch_up(&mut self) {
        if let Err(e) = self.try_catch_up() {
            tracing::error!(error = %e, "merkle log: cannot catch up with the store; proofs and checkpoints wait");
            return;
        }
        self.merkle_behind = false;
        let size = self.store.size();
        if size < self.checkpoints.last_size() {
            tracing::error!(
                critical = true,
                store = size,
                checkpoint = self.checkpoints.last_size(),
                "the store holds fewer records than the last signed checkpoint: records were lost or removed; run auditship verify"
            );
        }
        self.maybe_checkpoint();
        self.publish_own();
        self.publish_agents(Instant::now());
    }

    fn try_catch_up(&mut self) -> Result<(), String> {
        let target = self.store.size();
        if self.merkle.size() > target {
            tracing::warn!(
                tree = self.merkle.size(),
                store = target,
                "merkle log: longer than the store; cut back"
            );
            self.merkle.truncate(target).map_err(|e| e.to_string())?;
        }
        if self.merkle.size() == target {
            return Ok(());
        }
        let from = self.merkle.size();
        tracing::info!(
            from,
            to = target,
            "merkle log: rebuilding leaves from the store"
        );
        let mut next = from;
        let mut buf = Vec::with_capacity(1 << 14);
        let merkle = &mut self.merkle;
        let stats = self.stats.clone();
        let mut flush = |buf: &mut Vec<Hash>| -> Result<(), StoreError> {
            merkle
                .append(buf)
                .map_err(|e| StoreError::io("merkle", std::io::Error::other(e.to_string())))?;
            buf.clear();
            // A long rebuild is progress too (the systemd watchdog looks).
            stats.rounds.fetch_add(1, Ordering::Relaxed);
            Ok(())
        };
        self.reader
            .for_each_from(from, &mut |leaf, stored| {
                if leaf != next {
                    return Err(StoreError::io(
                        "store",
                        std::io::Error::other(format!(
                            "leaf {next} missing from the store (found {leaf})"
                        )),
                    ));
                }
                next += 1;
                buf.push(stored.leaf_hash());
                if buf.len() == buf.capacity() {
                    flush(&mut buf)?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        flush(&mut buf).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Signs a checkpoint of everything stored, if the last one is older.
    pub fn final_checkpoint(&mut self) {
        if !self.merkle_behind && self.merkle.size() > self.checkpoints.last_size() {
            let (size, root) = (self.merkle.size(), self.merkle.root());
            if let Err(e) = self.checkpoints.sign(size, &root) {
                tracing::error!(error = %e, "cannot write the final checkpoint");
            }
        }
    }

    fn maybe_checkpoint(&mut self) {
        if self.merkle_behind || !self.checkpoints.due(self.merkle.size()) {
            return;
        }
        let (size, root) = (self.merkle.size(), self.merkle.root());
        match self.checkpoints.sign(size, &root) {
            Ok(_) => {
                self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write a checkpoint; retrying at the next commit")
            }
        }
    }

    fn publish_own(&self) {
        let own = self
            .store
            .watermarks()
            .get(COLLECTOR_AGENT)
            .map_or(0, |w| w.seq);
        self.views.own_events.store(own, Ordering::Relaxed);
    }

    fn publish_agents(&self, now: Instant) {
        let keys: HashMap<String, (String, bool)> = self
            .enrol
            .all()
            .into_iter()
            .map(|(a, k, pinned)| (a, (k.key_id(), pinned)))
            .collect();
        let marks = self.store.watermarks();
        let list: Vec<serde_json::Value> = self
            .liveness
            .status(now)
            .into_iter()
            .map(|(agent, quiet, silent)| {
                let m = marks.get(&agent);
                let key = keys.get(&agent);
                serde_json::json!({
                    "agent_id": agent,
                    "queue": m.map(|m| wire::format_queue(m.queue)),
                    "seq": m.map(|m| m.seq),
                    "head": m.map(|m| hex::encode(&m.head)),
                    "seconds_since_last_batch": quiet,
                    "silent": silent,
                    "key_id": key.map(|k| k.0.clone()),
                    "key_pinned": key.map(|k| k.1),
                })
            })
            .collect();
        *self.views.agents.lock().unwrap_or_else(|p| p.into_inner()) =
            serde_json::Value::Array(list);
    }

    /// Verifies and stores a group of batches with one commit. A pipelined
    /// batch that would open a gap is held (`None`): the caller offers it
    /// again with the next round.
    pub fn commit_group(
        &mut self,
        group: &[(PreparedBatch, Reply)],
        records: Vec<(AuditEvent, RecordReply)>,
        now: Instant,
        tick: bool,
    ) -> Vec<Option<Result<IngestAck, IngestError>>> {
        if self.merkle_behind {
            self.catch_up();
        }
        let gaps_before = self.gaps.clone();
        let before_size = self.store.size();
        let mut round = Round {
            own: OwnChain::new(self.store.watermarks(), self.own_queue, &self.host),
            store: self.store.as_mut(),
            base: before_size,
            leaves: Vec::new(),
            findings: Vec::new(),
            now: Timestamp::now_utc(),
            host: &self.host,
            tap: self.tap.as_mut(),
        };
        let mut marks: HashMap<String, Watermark> = HashMap::new();
        let outcome = append_group(
            &mut round,
            &mut marks,
            group,
            &mut self.gaps,
            &mut self.enrol,
            &mut self.liveness,
            &mut self.unenrolled,
            &self.stats,
            now,
            tick,
        );
        // Collector events (access records, alerts, tombstones) follow the
        // agents' events of the round.
        let (events, replies): (Vec<_>, Vec<_>) = records.into_iter().unzip();
        let outcome = outcome.and_then(|(pending, gaps_opened)| {
            let mut recorded = Vec::with_capacity(events.len());
            for ev in events {
                recorded.push(round.record_event(ev)?);
            }
            Ok((pending, gaps_opened, recorded))
        });
        let Round {
            leaves, findings, ..
        } = round;
        let result = outcome.and_then(|(pending, gaps_opened, recorded)| {
            if gaps_opened {
                self.gaps.save().map_err(|e| IngestError::Unavailable {
                    full: e.raw_os_error() == Some(28),
                    message: format!("cannot record a gap: {e}"),
                })?;
            }
            self.store.commit()?;
            Ok((pending, recorded))
        });
        let (pending, recorded) = match result {
            Ok(p) => p,
            Err(e) => {
                self.gaps = gaps_before;
                if let Some(t) = &mut self.tap {
                    t.discard();
                }
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, batches = group.len(), records = replies.len(), "cannot store; agents will retry");
                for r in replies {
                    let _ = r.send(Err(e.clone()));
                }
                return group.iter().map(|_| Some(Err(e.clone()))).collect();
            }
        };
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = &mut self.tap {
            t.committed(before_size);
        }
        if self.gaps.all() != gaps_before.all() {
            if let Err(e) = self.gaps.save() {
                tracing::error!(error = %e, "cannot record filled gaps; they stay listed until the next save");
            }
            *self.views.gaps.lock().unwrap_or_else(|p| p.into_inner()) =
                serde_json::to_value(self.gaps.all()).unwrap_or_default();
        }
        self.extend_merkle(before_size, &leaves);
        if !findings.is_empty() || !recorded.is_empty() {
            self.publish_own();
        }
        let own_seq = self
            .store
            .watermarks()
            .get(COLLECTOR_AGENT)
            .map_or(0, |w| w.seq);
        let n = recorded.len() as u64;
        for (i, (leaf, reply)) in recorded.into_iter().zip(replies).enumerate() {
            let _ = reply.send(Ok(Recorded {
                leaf,
                seq: own_seq + 1 + i as u64 - n,
            }));
        }
        for f in &findings {
            f.log();
        }
        self.stats
            .integrity_events
            .fetch_add(findings.len() as u64, Ordering::Relaxed);
        self.maybe_checkpoint();
        if tick
            || findings
                .iter()
                .any(|f| matches!(f, Finding::KeyPinned { .. }))
        {
            self.publish_agents(now);
        }
        group
            .iter()
            .zip(pending)
            .map(|((b, _), p)| match p {
                Pending::Held => None,
                Pending::Refused { status, message } => {
                    Some(Err(IngestError::Refused { status, message }))
                }
                Pending::Ack { stored, duplicates } => {
                    self.stats.stored.fetch_add(stored, Ordering::Relaxed);
                    self.stats
                        .duplicates
                        .fetch_add(duplicates, Ordering::Relaxed);
                    let queue = wire::format_queue(b.queue);
                    let high = marks.get(b.agent_id.as_str()).map_or(b.last, |m| m.seq);
                    let durable_seq = self
                        .gaps
                        .lowest(&b.agent_id, &queue)
                        .map_or(high, |low| low - 1);
                    Some(Ok(IngestAck {
                        agent_id: b.agent_id.clone(),
                        queue,
                        durable_seq,
                        stored,
                        duplicates,
                    }))
                }
            })
            .collect()
    }

    fn extend_merkle(&mut self, before: u64, leaves: &[Hash]) {
        if leaves.is_empty() {
            return;
        }
        if self.merkle_behind || self.merkle.size() != before {
            self.merkle_behind = true;
            self.catch_up();
            return;
        }
        if let Err(e) = self.merkle.append(leaves) {
            tracing::error!(error = %e, "merkle log: append failed; rebuilding from the store");
            self.merkle_behind = true;
            self.catch_up();
        }
    }
}

/// Judges and appends every batch of the group; returns each batch's
/// pending answer and whether a gap was opened.
#[allow(clippy::too_many_arguments)]
fn append_group(
    round: &mut Round<'_>,
    marks: &mut HashMap<String, Watermark>,
    group: &[(PreparedBatch, Reply)],
    gaps: &mut Gaps,
    enrol: &mut Enrolment,
    liveness: &mut Liveness,
    unenrolled: &mut HashSet<String>,
    stats: &IngestStats,
    now: Instant,
    tick: bool,
) -> Result<(Vec<Pending>, bool), IngestError> {
    let mut pending: Vec<Option<Pending>> = (0..group.len()).map(|_| None).collect();
    let mut gaps_opened = false;
    let mut fresh: Vec<NewEvent<'_>> = Vec::new();
    // Each agent's batches in seq order: pipelined requests may arrive in
    // any order, and a held batch comes back in a later group.
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by(|&x, &y| {
        let (a, b) = (&group[x].0, &group[y].0);
        (a.agent_id.as_str(), a.queue, a.first).cmp(&(b.agent_id.as_str(), b.queue, b.first))
    });
    for &i in &order {
        let b = &group[i].0;
        let agent = b.agent_id.as_str();
        match enrol.judge(agent, &b.key, b.signed, b.chained) {
            KeyVerdict::Accept => {}
            KeyVerdict::Pin => {
                enrol
                    .pin(agent, b.key)
                    .map_err(|e| IngestError::Unavailable {
                        full: e.raw_os_error() == Some(28),
                        message: format!("cannot pin agent {agent}'s key: {e}"),
                    })?;
                round.record(Finding::KeyPinned {
                    agent: agent.into(),
                    key: b.key.to_hex(),
                    key_id: b.key.key_id(),
                })?;
            }
            KeyVerdict::Bad(why) => {
                stats.bad_signatures.fetch_add(1, Ordering::Relaxed);
                round.record(Finding::BadSignature {
                    agent: agent.into(),
                    queue: b.queue,
                    first: b.first,
                    last: b.last,
                    why: why.clone(),
                })?;
                pending[i] = Some(Pending::Refused {
                    status: 422,
                    message: format!(
                        "batch refused, its signature or chain does not verify: {why}"
                    ),
                });
                continue;
            }
            KeyVerdict::NotEnrolled => {
                if unenrolled.insert(agent.to_string()) {
                    round.record(Finding::NotEnrolled {
                        agent: agent.into(),
                        key_id: b.key.key_id(),
                    })?;
                }
                pending[i] = Some(Pending::Refused {
                    status: 403,
                    message: format!(
                        "agent {agent:?} is not enrolled: add its key ({}) under [[agents]] in the collector's config",
                        b.key.to_hex()
                    ),
                });
                continue;
            }
        }
        let queue_hex = wire::format_queue(b.queue);
        let store_mark = round.store.watermarks().get(agent).copied();
        if b.pipelined {
            // Sent before its predecessor was answered: if that has not
            // arrived, wait for it rather than record a gap.
            let next = match marks.get(agent).copied().or(store_mark) {
                Some(m) if m.queue == b.queue => m.seq + 1,
                _ => 1,
            };
            if b.first > next {
                pending[i] = Some(Pending::Held);
                continue;
            }
        }
        let mark = marks.entry(b.agent_id.clone()).or_insert_with(|| {
            store_mark.unwrap_or(Watermark {
                queue: b.queue,
                seq: 0,
                head: seal::GENESIS,
            })
        });
        if mark.queue != b.queue {
            if mark.seq > 0 {
                round.record(Finding::NewEpoch {
                    agent: agent.into(),
                    old: mark.queue,
                    old_seq: mark.seq,
                    new: b.queue,
                })?;
            }
            *mark = Watermark {
                queue: b.queue,
                seq: 0,
                head: seal::GENESIS,
            };
            gaps.new_epoch(agent, &queue_hex);
        }
        let gap = b.first > mark.seq + 1;
        if gap {
            round.record(Finding::Gap {
                agent: agent.into(),
                queue: b.queue,
                from: mark.seq + 1,
                to: b.first - 1,
            })?;
            gaps_opened |= gaps.open(agent, &queue_hex, mark.seq + 1, b.first - 1);
            stats.gaps.fetch_add(1, Ordering::Relaxed);
        }
        let mut forked = false;
        if mark.seq > 0 {
            if let Some(e) = b.events.iter().find(|e| e.seq == mark.seq) {
                if e.hash != mark.head {
                    forked = true;
                    stats.forks.fetch_add(1, Ordering::Relaxed);
                    round.record(Finding::Fork {
                        agent: agent.into(),
                        queue: b.queue,
                        seq: mark.seq,
                        stored: mark.head,
                        received: e.hash,
                    })?;
                }
            }
        }
        if let Some(j) = b.events.iter().position(|e| e.seq > mark.seq) {
            let prev = b.prev_of(j);
            if !gap && !forked && prev != mark.head {
                stats.forks.fetch_add(1, Ordering::Relaxed);
                round.record(Finding::Break {
                    agent: agent.into(),
                    queue: b.queue,
                    seq: b.events[j].seq,
                    expected: mark.head,
                    got: prev,
                })?;
            }
        }
        fresh.clear();
        let mut duplicates = 0u64;
        for (i, e) in b.events.iter().enumerate() {
            if e.seq > mark.seq || gaps.contains(agent, &queue_hex, e.seq) {
                let ne = b.event(i);
                if let Some(t) = round.tap.as_deref_mut() {
                    if t.wants(ne.key.category, ne.key.action) {
                        let index = round.base + round.leaves.len() as u64;
                        t.push(index, Payload::Sealed(ne.payload.to_vec()));
                    }
                }
                fresh.push(ne);
                round.leaves.push(e.leaf);
            } else {
                duplicates += 1;
            }
        }
        if b.first <= mark.seq {
            gaps.fill(agent, &queue_hex, b.first, b.last.min(mark.seq));
        }
        if !fresh.is_empty() {
            round.store.append(agent, b.queue, &fresh)?;
        }
        if b.last > mark.seq {
            mark.seq = b.last;
            if let Some(e) = b.events.last() {
                mark.head = e.hash;
            }
        }
        if let Some(f) = liveness.seen(agent, now) {
            round.record(f)?;
        }
        pending[i] = Some(Pending::Ack {
            stored: fresh.len() as u64,
            duplicates,
        });
    }
    if tick {
        for f in liveness.check(now) {
            round.record(f)?;
        }
    }
    let pending = pending
        .into_iter()
        .map(|p| p.expect("every batch of the group was judged"))
        .collect();
    Ok((pending, gaps_opened))
}
