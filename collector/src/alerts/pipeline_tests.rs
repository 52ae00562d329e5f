//! The alerts behind the real commit thread and store: what is fed (new
//! events and integrity findings, not duplicates, not alerts), and an
//! alerts thread too far behind to be handed rounds catching up from the
//! store without losing a count.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use auditship_core::identity::Identity;
use auditship_core::wire::{self, BatchHeader};
use auditship_core::{canonical, hex, seal, AuditEvent, Category, Hash, Outcome};

use super::feed::{self, Prefilter};
use super::rules::AlertsConfig;
use crate::checkpoints::{self, Cadence, Checkpointer};
use crate::enrol::{Enrolment, Mode};
use crate::gaps::Gaps;
use crate::ingest::{self, IngestHandle, Parts, PreparedBatch, Views};
use crate::merkle_log::MerkleLog;
use crate::store::segments::{self, SegmentConfig};
use crate::store::StoreReader;

/// An agent sending ssh_login failures from one address.
struct Agent {
    key: Identity,
    head: Hash,
}

impl Agent {
    fn batch(&mut self, first: u64, n: u64, ip: &str) -> Vec<u8> {
        let prev = self.head;
        let mut body = Vec::new();
        for seq in first..first + n {
            let mut ev = AuditEvent::new(
                Category::Authentication,
                "ssh_login",
                Outcome::Failure,
                format!("Failed password for root from {ip} port {seq} ssh2"),
            );
            ev.actor.user = Some("root".into());
            ev.src_ip = Some(ip.parse().unwrap());
            ev.agent_id = Some("web-1".into());
            ev.seq = Some(seq);
            let bytes = canonical::encode(&ev);
            self.head = seal::chain_hash(&self.head, &bytes);
            body.extend(bytes);
            body.push(b'\n');
        }
        let mut h = BatchHeader {
            auditship_batch: wire::WIRE_VERSION,
            agent_id: "web-1".into(),
            queue: wire::format_queue(7),
            first,
            last: first + n - 1,
            events: n,
            prev_hash: hex::encode(&prev),
            last_hash: hex::encode(&self.head),
            key: String::new(),
            sig: String::new(),
            pipelined: false,
        };
        h.sign(&self.key);
        wire::encode(&h, &body, wire::Compression::None)
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    ingest: IngestHandle,
    thread: std::thread::JoinHandle<()>,
    reader: Arc<dyn StoreReader>,
    alerts: super::Alerts,
}

fn rig(cfg: &AlertsConfig, max_pending: usize) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader, _) = segments::open(SegmentConfig {
        dir: dir.path().join("store"),
        segment_bytes: 1 << 20,
        keys: None,
    })
    .unwrap();
    let parts = Parts {
        store: Box::new(writer),
        reader: reader.clone(),
        gaps: Gaps::load(dir.path()).unwrap(),
        enrol: Enrolment::load(dir.path(), Default::default(), Mode::Tofu).unwrap(),
        merkle: MerkleLog::open(dir.path().join("merkle")).unwrap(),
        checkpoints: Checkpointer::open(
            dir.path(),
            checkpoints::collector_identity(dir.path()).unwrap(),
            Cadence {
                origin: "t".into(),
                interval: Duration::from_secs(3600),
                every: 1_000_000,
            },
        )
        .unwrap(),
        silent_after: Duration::ZERO,
        host: "collector".into(),
    };
    let (tap, rx) = feed::channel(Prefilter::of(&cfg.rules), max_pending);
    let (ingest, thread) = ingest::start_with(parts, Views::default(), Some(tap));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let alerts = super::start(
        cfg,
        rx,
        dir.path(),
        super::Context {
            ingest: ingest.clone(),
            reader: reader.clone(),
            host: "collector".into(),
            runtime: rt.handle().clone(),
            keys: None,
        },
    )
    .unwrap();
    Rig {
        _dir: dir,
        rt,
        ingest,
        thread,
        reader,
        alerts,
    }
}

impl Rig {
    fn send(&self, body: Vec<u8>) {
        let b = PreparedBatch::prepare(body).unwrap();
        self.rt.block_on(self.ingest.submit(b)).unwrap();
    }

    /// Stops alerting (open alerts are notified) and the commit thread;
    /// returns the stored alerts (latest state each) and the counters.
    fn stop(self) -> (Vec<serde_json::Value>, Arc<super::stats::AlertStats>) {
        let stats = self.alerts.stats.clone();
        self.rt.block_on(self.alerts.stop(Duration::from_secs(5)));
        drop(self.ingest);
        self.thread.join().unwrap();
        let q = super::api::AlertQuery {
            since: None,
            rule: None,
            limit: 100,
        };
        (super::api::list(self.reader.as_ref(), &q).unwrap(), stats)
    }
}

fn wait(what: &str, f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

const CFG: &str = "defaults = true\nnotify_delay = \"1s\"\n";

#[test]
fn alerts_see_new_events_and_integrity_findings_once_never_duplicates_or_alerts() {
    let cfg = super::tests::config(CFG);
    let rig = rig(&cfg, feed::MAX_PENDING);
    let mut agent = Agent {
        key: Identity::from_seed([3; 32]),
        head: seal::GENESIS,
    };
    let b1 = agent.batch(1, 30, "203.0.113.50");
    rig.send(b1.clone());
    rig.send(b1); // a retried batch: duplicates, not evaluated again
    rig.send(agent.batch(31, 12, "203.0.113.50"));
    // A batch past the next seq: the collector records a chain_gap.
    rig.send(agent.batch(100, 1, "198.51.100.1"));
    let stats = rig.alerts.stats.clone();
    // 43 new agent events and one finding; the key pinning is not wanted.
    wait("evaluation", || {
        stats.evaluated.load(Ordering::Relaxed) == 44
    });
    wait("two alerts fired", || {
        stats
            .fired
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
            == 2
    });
    let (alerts, stats) = rig.stop();
    assert_eq!(
        stats.evaluated.load(Ordering::Relaxed),
        44,
        "alert events are not fed back"
    );
    assert_eq!(stats.feed.overflowed.load(Ordering::Relaxed), 0);
    let find = |rule: &str| alerts.iter().find(|a| a["rule"] == rule).cloned();
    let brute = find("ssh_brute_force").expect("brute force alert stored");
    assert_eq!(brute["count"], 42, "{brute:#}");
    assert_eq!(brute["src_ip"], "203.0.113.50");
    let gap = find("integrity_chain_gap").expect("gap alert stored");
    assert_eq!(gap["group"]["fields.agent_id"], "web-1");
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
}

#[test]
fn an_alerts_thread_too_far_behind_catches_up_from_the_store_and_loses_no_count() {
    let cfg = super::tests::config(CFG);
    // Rounds of 10 events never fit: everything overflows.
    let rig = rig(&cfg, 5);
    let mut agent = Agent {
        key: Identity::from_seed([4; 32]),
        head: seal::GENESIS,
    };
    for i in 0..6 {
        rig.send(agent.batch(1 + i * 10, 10, "203.0.113.77"));
    }
    let stats = rig.alerts.stats.clone();
    wait("catch-up", || stats.evaluated.load(Ordering::Relaxed) == 60);
    let (alerts, stats) = rig.stop();
    assert_eq!(stats.feed.overflowed.load(Ordering::Relaxed), 60);
    assert_eq!(stats.feed.caught_up.load(Ordering::Relaxed), 60);
    assert_eq!(stats.feed.fed.load(Ordering::Relaxed), 0);
    assert_eq!(stats.evaluated.load(Ordering::Relaxed), 60);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["rule"], "ssh_brute_force");
    assert_eq!(alerts[0]["count"], 60, "{:#}", alerts[0]);
}
