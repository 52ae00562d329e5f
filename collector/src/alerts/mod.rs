//! Alert rules, evaluated as events arrive.
//!
//! ```text
//! commit thread: round committed -> Tap (pre-filter by action/category,
//!                copy the sealed bytes) --bounded channel--> alerts thread
//!                (overflow: note the first leaf; the alerts thread reads
//!                 those events back from the store)
//! alerts thread: parse -> Engine::observe (windows, first seen, hours,
//!                integrity) -> Dedup (one open alert per rule and key)
//!                -> due: IngestHandle::record (every alert due at once:
//!                   one commit round) -> stored alert events
//!                -> webhook::Dispatcher (JSON POST, retries, backoff)
//! GET /v1/alerts, auditship alerts list: from the stored alert events
//! ```
//!
//! One concept per file: [`rules`] (config and validation), [`hours`]
//! (time of day), [`hooks`] (webhook config), [`fields`]
//! (field paths and conditions), [`defaults`] (the shipped rule set),
//! [`feed`] (the hand-over from ingest), [`engine`] (evaluation),
//! [`first_seen`] (persistent first-seen memory), [`dedup`] (an alert's
//! life), [`record`] (alert as event and JSON), [`webhook`] (delivery),
//! [`api`] (the HTTP route), [`stats`] (metrics).
//!
//! Why a thread of its own, fed after the commit, rather than evaluation in
//! the commit thread: the commit thread is the collector's throughput, and
//! alerting parses JSON, keeps state and writes events; after the commit
//! means alerts are only raised on events the log holds (an alert's sample
//! leaves always have inclusion proofs), and a failed commit raises
//! nothing. The alert event goes through the same commit thread, so it is
//! sealed, stored and Merkle-covered like everything else; since alert
//! events are never fed back, alerts cannot feed themselves.
//!
//! What survives a restart: the stored alerts, and first-seen memory
//! (`data_dir/alerts/first_seen.json`, or `first_seen.sealed` with store encryption). What does not: counts in threshold
//! windows and open alerts' further counting. A clean stop notifies every
//! open alert as it stands (firing, or closed with the count it reached);
//! after a crash, an alert opened less than `notify_delay` before is lost
//! with the windows, and an attack going on across the restart is counted
//! afresh. Events stored before the start are not evaluated again.

pub mod api;
pub mod dedup;
pub mod defaults;
pub mod engine;
pub mod feed;
pub mod fields;
pub mod first_seen;
pub mod hooks;
pub mod hours;
pub mod record;
pub mod rules;
pub mod stats;
pub mod webhook;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auditship_core::{AuditEvent, Category, Timestamp};

use crate::ingest::IngestHandle;
use crate::integrity::COLLECTOR_AGENT;
use crate::store::StoreReader;
use engine::Engine;
use feed::{FeedReceiver, FeedRound, Payload, Prefilter, Tap};
use first_seen::FirstSeen;
use record::{Alert, Status};
use rules::AlertsConfig;
use stats::AlertStats;
use webhook::{Dispatcher, Notice};

/// Why alerting could not start.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// The first-seen state.
    #[error("alerts: {path}: {source}")]
    State {
        /// File or directory.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A webhook.
    #[error(transparent)]
    Webhook(#[from] webhook::WebhookError),
}

/// The commit thread's tap and the alerts thread's end of the feed, if
/// alerting is on and has rules.
pub fn feed(cfg: &AlertsConfig) -> Option<(Tap, FeedReceiver)> {
    if !cfg.enabled || cfg.rules.is_empty() {
        return None;
    }
    Some(feed::channel(Prefilter::of(&cfg.rules), feed::MAX_PENDING))
}

/// Running alerting.
pub struct Alerts {
    /// Counters (for `/metrics`).
    pub stats: Arc<AlertStats>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Dispatcher>>,
}

/// What the alerts thread needs.
pub struct Context {
    /// Where to store alert events.
    pub ingest: IngestHandle,
    /// To read back events the feed could not carry.
    pub reader: Arc<dyn StoreReader>,
    /// The collector's host name, in webhook bodies.
    pub host: String,
    /// Runtime for webhook deliveries.
    pub runtime: tokio::runtime::Handle,
    /// The store's encryption keys: with them the first-seen memory (user
    /// names and addresses) is sealed on disk like the store.
    pub keys: Option<Arc<auditship_crypt::Keyring>>,
}

/// Starts the alerts thread and webhook tasks.
pub fn start(
    cfg: &AlertsConfig,
    feed: FeedReceiver,
    data_dir: &Path,
    ctx: Context,
) -> Result<Alerts, AlertsError> {
    let dir = data_dir.join("alerts");
    let fs = FirstSeen::load(&dir, cfg.first_seen_max, ctx.keys.clone()).map_err(|source| {
        AlertsError::State {
            path: dir.join("first_seen.json"),
            source,
        }
    })?;
    let dispatcher = Dispatcher::start(&cfg.webhooks, ctx.host.clone(), &ctx.runtime)?;
    let engine = Engine::new(cfg, fs);
    let stats = Arc::new(AlertStats::new(
        engine.rules().iter().map(|r| r.name.clone()).collect(),
        feed.stats.clone(),
        dispatcher.stats(),
    ));
    tracing::info!(
        rules = engine.rules().len(),
        webhooks = cfg.webhooks.len(),
        "alert rules loaded"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut worker = Worker {
        engine,
        feed,
        ingest: ctx.ingest,
        reader: ctx.reader,
        stats: stats.clone(),
        dispatcher,
        runtime: ctx.runtime,
        evaluated_upto: 0,
    };
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("alerts".into())
        .spawn(move || {
            worker.run(&flag);
            worker.dispatcher
        })
        .map_err(|source| AlertsError::State {
            path: dir.clone(),
            source,
        })?;
    Ok(Alerts {
        stats,
        stop,
        thread: Some(thread),
    })
}

impl Alerts {
    /// Stops the thread (open alerts are notified as they stand, which
    /// needs the commit thread still running) and waits up to `grace` for
    /// webhook deliveries in flight.
    pub async fn stop(mut self, grace: Duration) {
        self.stop.store(true, Ordering::Release);
        let Some(t) = self.thread.take() else {
            return;
        };
        match tokio::task::spawn_blocking(move || t.join()).await {
            Ok(Ok(d)) => d.close(grace).await,
            _ => tracing::error!("the alerts thread failed"),
        }
    }
}

/// The alerts thread's state.
struct Worker {
    engine: Engine,
    feed: FeedReceiver,
    ingest: IngestHandle,
    reader: Arc<dyn StoreReader>,
    stats: Arc<AlertStats>,
    dispatcher: Dispatcher,
    /// Where alert events are submitted from.
    runtime: tokio::runtime::Handle,
    /// Leaves below this were evaluated by reading the store back.
    evaluated_upto: u64,
}

fn now_ms() -> i64 {
    Timestamp::now_utc().unix_millis()
}

impl Worker {
    fn run(&mut self, stop: &AtomicBool) {
        let mut last_save = Instant::now();
        let mut last_sweep = Instant::now();
        while !stop.load(Ordering::Acquire) {
            let wait = self
                .engine
                .next_due()
                .map_or(500, |t| (t - now_ms()).clamp(0, 500)) as u64;
            match self.feed.rx.recv_timeout(Duration::from_millis(wait)) {
                Ok(round) => self.handle(round),
                Err(RecvTimeoutError::Timeout) => {
                    if self.feed.overflow_before(u64::MAX) {
                        self.catch_up();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let due = self.engine.due(now_ms());
            self.emit(due);
            self.stats
                .open
                .store(self.engine.open_alerts() as u64, Ordering::Relaxed);
            if self.engine.first_seen().dirty() && last_save.elapsed() >= Duration::from_secs(1) {
                self.save();
                last_save = Instant::now();
            }
            if last_sweep.elapsed() >= Duration::from_secs(60) {
                self.engine.sweep();
                last_sweep = Instant::now();
            }
        }
        // Whatever the feed still holds, or left to the store, was
        // committed: evaluate it before the last notifications.
        while let Ok(round) = self.feed.rx.try_recv() {
            self.handle(round);
        }
        if self.feed.overflow_before(u64::MAX) {
            self.catch_up();
        }
        let open = self.engine.drain();
        self.emit(open);
        self.stats.open.store(0, Ordering::Relaxed);
        self.save();
    }

    /// Evaluates one round from the feed (after what the store must give
    /// back first, if anything).
    fn handle(&mut self, round: FeedRound) {
        self.feed
            .stats
            .pending
            .fetch_sub(round.events.len(), Ordering::Relaxed);
        if self.feed.overflow_before(round.first) {
            self.catch_up();
        }
        let now = now_ms();
        for e in round.events {
            if e.leaf < self.evaluated_upto {
                continue;
            }
            match e.payload {
                Payload::Event(ev) => self.observe(&ev, e.leaf, now),
                Payload::Sealed(bytes) => match serde_json::from_slice::<AuditEvent>(&bytes) {
                    Ok(ev) => self.observe(&ev, e.leaf, now),
                    Err(err) => {
                        tracing::warn!(leaf = e.leaf, error = %err, "alerts: a stored event does not parse; not evaluated")
                    }
                },
            }
        }
    }

    fn observe(&mut self, ev: &AuditEvent, leaf: u64, now: i64) {
        self.stats.evaluated.fetch_add(1, Ordering::Relaxed);
        self.engine.observe(ev, leaf, now);
    }

    /// Evaluates, from the store, the events the feed could not carry.
    fn catch_up(&mut self) {
        let Some(from) = self.feed.take_overflow() else {
            return;
        };
        let from = from.max(self.evaluated_upto);
        let pre = self.feed.prefilter.clone();
        let reader = self.reader.clone();
        let mut n = 0u64;
        let mut upto = from;
        let now = now_ms();
        let r = reader.for_each_from(from, &mut |leaf, stored| {
            upto = leaf + 1;
            // An expired event (retention removed its payload) is past
            // every alert window.
            let crate::store::Leaf::Event(payload) = stored else {
                return Ok(());
            };
            let Ok(ev) = serde_json::from_slice::<AuditEvent>(payload) else {
                return Ok(());
            };
            // The collector's own events: only its integrity findings.
            let own = ev.agent_id.as_deref() == Some(COLLECTOR_AGENT);
            if (own && ev.category != Category::Integrity)
                || !pre.wants(ev.category.as_str(), &ev.action)
            {
                return Ok(());
            }
            n += 1;
            self.stats.evaluated.fetch_add(1, Ordering::Relaxed);
            self.engine.observe(&ev, leaf, now);
            Ok(())
        });
        if let Err(e) = r {
            tracing::error!(error = %e, from_leaf = from, "alerts: cannot read events back from the store; those after the error are not evaluated");
        }
        self.evaluated_upto = upto;
        self.feed.stats.caught_up.fetch_add(n, Ordering::Relaxed);
        tracing::info!(
            from_leaf = from,
            to_leaf = upto,
            evaluated = n,
            "alerts caught up from the store"
        );
    }

    /// Stores the alerts as events and hands them to the webhooks. All
    /// are submitted before any answer is awaited, so they share one commit
    /// round (one fsync) however many fall due together.
    fn emit(&mut self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let pending: Vec<_> = alerts
            .iter()
            .map(|a| {
                let (h, ev) = (self.ingest.clone(), a.to_event());
                self.runtime.spawn(async move { h.record(ev).await })
            })
            .collect();
        let stored = self.runtime.block_on(async {
            let mut out = Vec::with_capacity(pending.len());
            for p in pending {
                out.push(match p.await {
                    Ok(r) => r,
                    Err(e) => Err(crate::ingest::IngestError::Unavailable {
                        full: false,
                        message: e.to_string(),
                    }),
                });
            }
            out
        });
        for (a, r) in alerts.into_iter().zip(stored) {
            let stored = match r {
                Ok(r) => Some((r.leaf, r.seq)),
                Err(e) => {
                    self.stats.store_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(critical = true, alert = %a.id, error = %e, "cannot store an alert; sending it to the webhooks anyway");
                    None
                }
            };
            if let Some(i) = self.stats.rule(&a.rule) {
                let c = match a.status {
                    Status::Firing => &self.stats.fired[i],
                    Status::Closed => &self.stats.closed[i],
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!(alert = %a.id, rule = %a.rule, severity = a.severity.as_str(), status = a.status.as_str(), count = a.count, key = %a.key, "alert");
            self.dispatcher.send(&Notice { alert: a, stored });
        }
    }

    fn save(&mut self) {
        if let Err(e) = self.engine.first_seen().save() {
            tracing::error!(error = %e, "cannot save the first-seen state; retrying later");
        }
    }
}

#[cfg(test)]
mod defaults_tests;
#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod webhook_tests;
