//! The collector's Prometheus metrics and health, served by
//! [`auditship_telemetry::serve`] on `[metrics] address` (a listener of its
//! own, without tokens: keep it on localhost or a scrape network).
//!
//! A scrape reads the counters ingest and the store already keep.
//! Families (all prefixed `auditship_collector_`):
//!
//! ```text
//! events_stored_total            agents' events newly stored (rate() = the ingest rate)
//! batches_total                  batches answered 200
//! duplicates_total               events already stored (absorbed retries)
//! commits_total / commit_failures_total   group commits (fsyncs) and failed ones
//! gaps_total                     gaps opened in agents' chains
//! forks_total                    forks and chain breaks found
//! verification_failures_total    batches refused for their signature or chain
//! integrity_events_total         integrity events stored in the collector's chain
//! checkpoints_total              checkpoints signed
//! store_events{chain}            stored events: chain="agents" or "collector"
//! store_bytes / store_segments   size of the store
//! store_quarantined_records      corrupt records set aside
//! merkle_size                    leaves in the Merkle log
//! checkpoint_size                records covered by the latest checkpoint
//! checkpoint_age_seconds         time since the latest checkpoint was signed
//! open_gaps                      gaps not yet filled
//! agents                         agents known
//! up, ready                      1 while live / ready
//! ```
//!
//! With alert rules on, the alert families of
//! [`crate::alerts::stats`] follow (alerts fired per rule, webhook
//! deliveries, retries and failures per webhook).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use auditship_core::Timestamp;
use auditship_telemetry::{Exposition, Health, Source};

use crate::checkpoints::Latest;
use crate::ingest::{IngestStats, IngestWatch};
use crate::merkle_log::MerkleReader;
use crate::server::AppState;
use crate::store::StoreReader;

type View = Arc<std::sync::Mutex<serde_json::Value>>;

/// Everything a scrape reads. It holds no [`crate::ingest::IngestHandle`]:
/// the commit thread ends when the last handle is dropped at shutdown, and
/// the endpoints must not keep it running.
pub struct CollectorMetrics {
    ingest: Arc<IngestStats>,
    commit_thread: IngestWatch,
    reader: Arc<dyn StoreReader>,
    own_events: Arc<std::sync::atomic::AtomicU64>,
    merkle: MerkleReader,
    latest: Latest,
    alerts: Option<Arc<crate::alerts::stats::AlertStats>>,
    gaps: View,
    agents: View,
    /// Set while the listener accepts connections.
    listening: Arc<AtomicBool>,
    /// Set when shutdown begins.
    stopping: Arc<AtomicBool>,
}

impl CollectorMetrics {
    /// Reads what `state` reads.
    pub(crate) fn new(
        state: &AppState,
        listening: Arc<AtomicBool>,
        stopping: Arc<AtomicBool>,
    ) -> Self {
        CollectorMetrics {
            ingest: state.ingest.stats.clone(),
            commit_thread: state.ingest.watch(),
            reader: state.reader.clone(),
            own_events: state.own_events.clone(),
            merkle: state.merkle.clone(),
            latest: state.latest.clone(),
            alerts: state.alerts.clone(),
            gaps: state.gaps.clone(),
            agents: state.agents.clone(),
            listening,
            stopping,
        }
    }

    fn view(v: &View) -> serde_json::Value {
        v.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Missing ranges in the gaps view (`{agent: {"queue":…, "ranges": [[a, b]…]}}`).
fn open_gaps(v: &serde_json::Value) -> usize {
    v.as_object().map_or(0, |agents| {
        agents
            .values()
            .map(|a| a["ranges"].as_array().map_or(0, Vec::len))
            .sum()
    })
}

impl Source for CollectorMetrics {
    fn render(&self, out: &mut Exposition) {
        let r = Ordering::Relaxed;
        let st = self;
        let i = &self.ingest;
        let c = |out: &mut Exposition, name: &str, help: &str, v: u64| {
            out.counter(name, help).value(v as f64);
        };
        c(
            out,
            "auditship_collector_events_stored_total",
            "Agents' events newly stored.",
            i.stored.load(r),
        );
        c(
            out,
            "auditship_collector_batches_total",
            "Batches answered 200.",
            i.batches.load(r),
        );
        c(
            out,
            "auditship_collector_duplicates_total",
            "Events that were already stored (absorbed retries).",
            i.duplicates.load(r),
        );
        c(
            out,
            "auditship_collector_commits_total",
            "Group commits (fsyncs).",
            i.commits.load(r),
        );
        c(
            out,
            "auditship_collector_commit_failures_total",
            "Commits that failed (a full disk among them).",
            i.failures.load(r),
        );
        c(
            out,
            "auditship_collector_gaps_total",
            "Gaps opened in agents' chains.",
            i.gaps.load(r),
        );
        c(
            out,
            "auditship_collector_forks_total",
            "Forks and chain breaks found.",
            i.forks.load(r),
        );
        c(
            out,
            "auditship_collector_verification_failures_total",
            "Batches refused for a bad signature or chain.",
            i.bad_signatures.load(r),
        );
        c(
            out,
            "auditship_collector_integrity_events_total",
            "Integrity events stored in the collector's own chain.",
            i.integrity_events.load(r),
        );
        c(
            out,
            "auditship_collector_checkpoints_total",
            "Checkpoints signed.",
            i.checkpoints.load(r),
        );
        let s = st.reader.stats();
        let own = st.own_events.load(r);
        out.gauge(
            "auditship_collector_store_events",
            "Stored events, by chain.",
        )
        .sample(&[("chain", "agents")], s.events.saturating_sub(own) as f64)
        .sample(&[("chain", "collector")], own as f64);
        out.gauge(
            "auditship_collector_store_bytes",
            "Bytes of the store on disk.",
        )
        .value(s.bytes as f64);
        out.gauge("auditship_collector_store_segments", "Store segment files.")
            .value(s.segments as f64);
        out.gauge(
            "auditship_collector_store_quarantined_records",
            "Corrupt store records set aside.",
        )
        .value(s.quarantined as f64);
        out.gauge(
            "auditship_collector_merkle_size",
            "Leaves in the Merkle log.",
        )
        .value(st.merkle.size() as f64);
        let cp = st.latest.read().unwrap_or_else(|p| p.into_inner()).clone();
        out.gauge(
            "auditship_collector_checkpoint_size",
            "Records covered by the latest signed checkpoint.",
        )
        .value(cp.as_ref().map_or(0.0, |c| c.size as f64));
        let age = cp
            .as_ref()
            .and_then(|c| Timestamp::parse_rfc3339(&c.time, 0))
            .map(|(t, _)| {
                let now = Timestamp::now_utc();
                ((now.unix_millis() - t.unix_millis()).max(0)) as f64 / 1000.0
            });
        out.gauge(
            "auditship_collector_checkpoint_age_seconds",
            "Seconds since the latest checkpoint was signed (NaN: none yet).",
        )
        .value(age.unwrap_or(f64::NAN));
        let gaps = open_gaps(&Self::view(&st.gaps));
        out.gauge(
            "auditship_collector_open_gaps",
            "Gaps in agents' chains not yet filled.",
        )
        .value(gaps as f64);
        out.gauge("auditship_collector_agents", "Agents known.")
            .value(Self::view(&st.agents).as_array().map_or(0, Vec::len) as f64);
        if let Some(a) = &self.alerts {
            a.render(out);
        }
        let h = self.health();
        out.gauge("auditship_collector_up", "1 while the collector is live.")
            .value(f64::from(u8::from(h.live)));
        out.gauge(
            "auditship_collector_ready",
            "1 while the collector accepts batches.",
        )
        .value(f64::from(u8::from(h.ready)));
    }

    fn health(&self) -> Health {
        let r = Ordering::Relaxed;
        let (live, ready, status) = if self.commit_thread.is_closed() {
            (false, false, "the commit thread stopped".to_string())
        } else if self.stopping.load(r) {
            (true, false, "stopping".into())
        } else if !self.listening.load(r) {
            (true, false, "starting".into())
        } else {
            (true, true, "ok".into())
        };
        Health {
            live,
            ready,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::open_gaps;

    #[test]
    fn open_gaps_counts_ranges_across_agents() {
        let v = serde_json::json!({
            "a": {"queue": "00", "ranges": [[3, 5], [9, 9]]},
            "b": {"queue": "01", "ranges": [[1, 2]]},
        });
        assert_eq!(open_gaps(&v), 3);
        assert_eq!(open_gaps(&serde_json::json!({})), 0);
    }
}
