//! One retention run: plan per sealed segment, archive, tombstone, rewrite.
//!
//! See the parent module for the order of steps and crash recovery.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use auditship_core::{hex, seal, Hash, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::archive::{self, Manifest};
use super::holds::HoldSet;
use super::policy::{Policies, Subject};
use super::tombstone::{AgentRange, LeafDigest, Statement};
use super::{PolicyReport, Progress, Retention, RetentionError, RunReport};
use crate::integrity::COLLECTOR_AGENT;
use crate::store::segments::rewrite::SealedSegment;
use crate::store::segments::walk::{self, Record};
use crate::store::Query;

/// What retention needs of an event's payload.
#[derive(Deserialize)]
struct View<'a> {
    #[serde(borrow)]
    category: Cow<'a, str>,
    #[serde(default, borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    host: Option<Cow<'a, str>>,
}

/// The plan for one segment.
pub(super) struct Plan {
    pub no: u64,
    pub sha256: Hash,
    /// Leaves to expire, ascending, with their chain hashes.
    pub leaves: Vec<(u64, Hash)>,
    /// Per policy index: events and payload bytes removed.
    pub per_policy: BTreeMap<usize, (u64, u64)>,
    /// Per policy index: events due but held.
    pub held: BTreeMap<usize, u64>,
    pub agents: BTreeMap<(String, u64), (u64, u64, u64)>,
    pub first_leaf: Option<u64>,
    pub last_leaf: Option<u64>,
    pub events: u64,
    pub expired_before: u64,
}

/// A step written down before its tombstone, so that a crash between the
/// tombstone and the rewrite is finished by the next run.
///
/// `<data_dir>/retention/pending-<segment>.json`:
/// `{"segment":N,"leaves":[...],"statement":"<tombstone statement>"}`
#[derive(Serialize, Deserialize)]
pub(super) struct Pending {
    pub segment: u64,
    pub leaves: Vec<u64>,
    pub statement: String,
}

pub(super) fn plan_segment(
    seg: &SealedSegment,
    data: &[u8],
    keys: Option<&auditship_crypt::Keyring>,
    policies: &Policies,
    holds: &HoldSet,
    now: i64,
) -> Result<Plan, String> {
    let mut p = Plan {
        no: seg.no,
        sha256: Sha256::digest(data).into(),
        leaves: Vec::new(),
        per_policy: BTreeMap::new(),
        held: BTreeMap::new(),
        agents: BTreeMap::new(),
        first_leaf: None,
        last_leaf: None,
        events: 0,
        expired_before: 0,
    };
    let min_age = policies.min_age_millis().unwrap_or(i64::MAX);
    // What an expired record's body gains when the segment is sealed.
    let overhead = if crate::store::segments::format::is_encrypted(data) {
        auditship_crypt::OVERHEAD
    } else {
        0
    };
    walk::records(data, seg.no, keys, &mut |r| {
        let leaf = match r {
            Record::Event {
                agent,
                queue,
                seq,
                ts_millis,
                leaf,
                payload,
                frame,
            } => {
                p.events += 1;
                if ts_millis != 0 && now.saturating_sub(ts_millis) >= min_age {
                    let view: Option<View<'_>> = serde_json::from_slice(payload).ok();
                    if let Some(v) = view {
                        let s = Subject {
                            agent,
                            category: &v.category,
                            source: v.source.as_deref(),
                            ts_millis,
                        };
                        if let (Some(i), Some(u)) = (policies.due(&s, now), seal::unseal(payload)) {
                            if holds.holds(ts_millis, v.host.as_deref()) {
                                *p.held.entry(i).or_default() += 1;
                            } else {
                                let saved =
                                    frame.saturating_sub(walk::expired_frame_len(agent, overhead));
                                let e = p.per_policy.entry(i).or_default();
                                e.0 += 1;
                                e.1 += saved as u64;
                                p.leaves.push((leaf, u.hash));
                                let a = p.agents.entry((agent.to_string(), queue)).or_insert((
                                    0,
                                    u64::MAX,
                                    0,
                                ));
                                a.0 += 1;
                                a.1 = a.1.min(seq);
                                a.2 = a.2.max(seq);
                            }
                        }
                    }
                }
                leaf
            }
            Record::Expired { leaf } => {
                p.expired_before += 1;
                leaf
            }
        };
        p.first_leaf.get_or_insert(leaf);
        p.last_leaf = Some(leaf);
    })?;
    Ok(p)
}

impl Retention {
    pub(super) fn pending_dir(&self) -> PathBuf {
        self.data_dir.join("retention")
    }

    fn pending_path(&self, no: u64) -> PathBuf {
        self.pending_dir().join(format!("pending-{no:020}.json"))
    }

    /// The statement of a plan.
    fn statement(&self, plan: &Plan, policies: &Policies, archive: Option<String>) -> Statement {
        let mut digest = LeafDigest::default();
        for (leaf, hash) in &plan.leaves {
            digest.push(*leaf, hash);
        }
        let range = digest.range;
        let checkpoint = self
            .latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|c| c.root_hash().ok().map(|r| (c.size, r)));
        Statement {
            origin: self.origin.clone(),
            segment: plan.no,
            segment_sha256: plan.sha256,
            expired: plan.leaves.len() as u64,
            leaves: range,
            digest: digest.finish(),
            policies: plan
                .per_policy
                .iter()
                .map(|(i, (n, _))| (policies.0[*i].config.name.clone(), *n))
                .collect(),
            agents: plan
                .agents
                .iter()
                .map(|((agent, queue), (n, a, b))| AgentRange {
                    agent: agent.clone(),
                    queue: *queue,
                    count: *n,
                    first_seq: *a,
                    last_seq: *b,
                })
                .collect(),
            checkpoint,
            archive,
            time: Timestamp::now_utc().to_string(),
        }
    }

    /// The leaf of the tombstone with this statement's digest, if the
    /// collector already stored it.
    fn find_tombstone(&self, st: &Statement) -> Result<Option<u64>, RetentionError> {
        let q = Query {
            category: Some("integrity".into()),
            action: Some(super::tombstone::ACTION.into()),
            text: Some(hex::encode(&st.digest)),
            limit: 16,
            ..Query::default()
        };
        let page = self
            .reader
            .query(&q)
            .map_err(|e| RetentionError::Store(e.to_string()))?;
        Ok(page
            .events
            .into_iter()
            .find(|e| e.agent_id == COLLECTOR_AGENT)
            .map(|e| e.leaf))
    }

    /// Tombstone (unless stored already), then rewrite; the pending file
    /// makes it resumable.
    fn apply(&self, st: &Statement, leaves: &[u64]) -> Result<(u64, u64), RetentionError> {
        let tomb = match self.find_tombstone(st)? {
            Some(t) => t,
            None => {
                let ev = st.to_event(&self.key);
                self.ingest
                    .record_blocking(ev)
                    .map_err(|e| RetentionError::Store(format!("cannot store the tombstone: {e}")))?
                    .leaf
            }
        };
        let set: BTreeSet<u64> = leaves.iter().copied().collect();
        let data = self
            .maintenance
            .read(st.segment)
            .map_err(|e| RetentionError::Store(e.to_string()))?;
        let done = self
            .maintenance
            .rewrite_until(
                st.segment,
                &data,
                &|l| set.contains(&l).then_some(tomb),
                self.crash,
            )
            .map_err(|e| RetentionError::Store(e.to_string()))?;
        if self.crash == crate::store::segments::rewrite::CrashPoint::None {
            let path = self.pending_path(st.segment);
            std::fs::remove_file(&path)
                .map_err(|e| RetentionError::Store(format!("{}: {e}", path.display())))?;
        }
        Ok((tomb, done.expired))
    }

    /// Finishes steps a crash interrupted. A step that cannot be finished
    /// (its segment unreadable, say) is reported in `report.errors` and
    /// left pending for the next run; it does not stop the others or the
    /// run (a review found one bad step blocked retention for good).
    pub(super) fn resume(&self, report: &mut RunReport) -> Result<(), RetentionError> {
        let dir = self.pending_dir();
        let Ok(list) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = list
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let step = || -> Result<u64, RetentionError> {
                let bad = |e: String| RetentionError::Store(format!("{}: {e}", path.display()));
                let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
                let p: Pending = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
                let st = Statement::parse(&p.statement).map_err(bad)?;
                tracing::warn!(
                    segment = p.segment,
                    "retention: finishing a step a crash interrupted"
                );
                Ok(self.apply(&st, &p.leaves)?.0)
            };
            match step() {
                Ok(tomb) => {
                    report.resumed += 1;
                    report.tombstones.push(tomb);
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "retention: an interrupted step cannot be finished; it stays pending");
                    report
                        .errors
                        .push(format!("pending step {}: {e}", path.display()));
                }
            }
        }
        Ok(())
    }

    /// The run itself (the caller holds the run lock).
    pub(super) fn run_locked(
        &self,
        dry_run: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RunReport, RetentionError> {
        let start = Instant::now();
        let mut report = RunReport {
            dry_run,
            started: Timestamp::now_utc().to_string(),
            ..RunReport::default()
        };
        let policies = &self.policies;
        report.policies = policies
            .0
            .iter()
            .map(|p| PolicyReport {
                policy: p.config.name.clone(),
                max_age_days: p.config.max_age.as_secs() / 86_400,
                ..PolicyReport::default()
            })
            .collect();
        if !dry_run {
            self.resume(&mut report)?;
        }
        let now = Timestamp::now_utc().unix_millis();
        let segments = self.maintenance.sealed();
        let total: u64 = segments.iter().map(|s| s.len).sum();
        let min_age = policies.min_age_millis();
        let mut done = Progress {
            segments: segments.len() as u64,
            bytes: total,
            ..Progress::default()
        };
        for seg in &segments {
            progress(done);
            done.segments_done += 1;
            done.bytes_done += seg.len;
            // Nothing can be due in a segment whose events are all younger
            // than the shortest policy (events without a time never are).
            let young = min_age.is_none_or(|m| seg.entries == 0 || seg.min_ts > now - m);
            if young {
                continue;
            }
            // The holds in force for this segment, unchanged until it is
            // done: a hold added meanwhile waits, then covers later ones.
            let (holds, _steady) = self.holds.steady();
            let data = self
                .maintenance
                .read(seg.no)
                .map_err(|e| RetentionError::Store(e.to_string()))?;
            report.segments_scanned += 1;
            report.bytes_scanned += data.len() as u64;
            let plan = plan_segment(seg, &data, self.maintenance.keys(), policies, &holds, now)
                .map_err(RetentionError::Store)?;
            for (i, n) in &plan.held {
                report.policies[*i].held += n;
                report.held += n;
            }
            if plan.leaves.is_empty() {
                continue;
            }
            for (i, (n, b)) in &plan.per_policy {
                let r = &mut report.policies[*i];
                r.events += n;
                r.bytes += b;
                r.segments += 1;
            }
            report.expired += plan.leaves.len() as u64;
            report.segments += 1;
            if dry_run {
                continue;
            }
            if let Err(e) = self.expire_segment(&plan, &data, policies, &mut report) {
                tracing::error!(segment = seg.no, error = %e, "retention: segment left as it was");
                report.errors.push(format!("segment {}: {e}", seg.no));
            }
        }
        progress(done);
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }

    fn expire_segment(
        &self,
        plan: &Plan,
        data: &[u8],
        policies: &Policies,
        report: &mut RunReport,
    ) -> Result<(), RetentionError> {
        let archived = match &self.archive {
            None => None,
            Some(a) => {
                let manifest = Manifest {
                    auditship_archive: 1,
                    segment: plan.no,
                    object: format!("{}.seg", archive::stem(plan.no, &plan.sha256)),
                    bytes: data.len() as u64,
                    sha256: hex::encode(&plan.sha256),
                    first_leaf: plan.first_leaf,
                    last_leaf: plan.last_leaf,
                    events: plan.events,
                    expired: plan.expired_before,
                    checkpoint: self
                        .latest
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                    archived: Timestamp::now_utc().to_string(),
                };
                let at = a
                    .put_segment(data, &manifest)
                    .map_err(|e| RetentionError::Archive(e.to_string()))?;
                report.archived.push(at.clone());
                Some(at)
            }
        };
        let st = self.statement(plan, policies, archived);
        let leaves: Vec<u64> = plan.leaves.iter().map(|(l, _)| *l).collect();
        let pending = Pending {
            segment: plan.no,
            leaves: leaves.clone(),
            statement: st.text(),
        };
        let dir = self.pending_dir();
        if !dir.exists() {
            // The directory entry must be durable before the pending file
            // in it is relied on.
            std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::File::open(&self.data_dir)?.sync_all())
                .map_err(|e| RetentionError::Store(format!("{}: {e}", dir.display())))?;
        }
        let bytes =
            serde_json::to_vec(&pending).map_err(|e| RetentionError::Store(e.to_string()))?;
        let path = self.pending_path(plan.no);
        archive::write_durably(&path, &bytes)
            .map_err(|e| RetentionError::Store(format!("{}: {e}", path.display())))?;
        let (tomb, _) = self.apply(&st, &leaves)?;
        report.tombstones.push(tomb);
        Ok(())
    }
}
