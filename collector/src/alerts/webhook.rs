//! Webhook delivery: each notification as one JSON POST per webhook.
//!
//! The body:
//!
//! ```json
//! {"version": 1, "source": "auditship", "collector": "<host>",
//!  "alert": {"id": "…", "rule": "ssh_brute_force", "kind": "threshold",
//!            "severity": "high", "status": "firing", "description": "…",
//!            "key": "src_ip=203.0.113.50", "group": {"src_ip": "203.0.113.50"},
//!            "count": 50, "first_ts": "…", "last_ts": "…", "opened": "…",
//!            "src_ip": "203.0.113.50", "user": "root", "host": "web-1",
//!            "samples": [17, 18, 19, 20, 21]},
//!  "stored": {"leaf": 1234, "seq": 56}}
//! ```
//!
//! `stored` is where the alert event sits in the log (`null` if it could
//! not be stored: the notification goes out regardless). Headers:
//! `Content-Type: application/json`, `Authorization: Bearer <token>` when
//! configured, and `Idempotency-Key: <alert id>:<status>`, the same on
//! every try, so a receiver can drop a retry whose first try did arrive.
//!
//! Retries: a connection error, a timeout, 408, 429 or 5xx is tried again
//! after an exponential backoff with full jitter (a uniformly random delay
//! between zero and `backoff_initial × 2^(try-1)`, capped at
//! `backoff_max`), and at least `Retry-After` when the answer gives one
//! (capped too). Any other answer, or `max_tries` tries, gives up: logged
//! as an error (`critical=true`) and counted in
//! `auditship_collector_alert_webhook_failures_total`. The alert itself is
//! stored in the log either way. Deliveries run concurrently (at most
//! [`CONCURRENCY`] per webhook), so one slow receiver does not hold up the
//! others; at most [`BACKLOG`] wait per webhook, beyond that a
//! notification is given up at once (counted as a failure). The sleeps
//! use `tokio::time`, so tests pause the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::TaskTracker;

use super::record::Alert;
use super::rules::{WebhookConfig, WebhookToken};

/// Deliveries in flight per webhook.
pub const CONCURRENCY: usize = 16;
/// Notifications waiting per webhook.
pub const BACKLOG: usize = 1024;

/// Delivery counters of one webhook.
#[derive(Debug, Default)]
pub struct HookStats {
    /// Webhook name.
    pub name: String,
    /// Notifications delivered (2xx).
    pub sent: AtomicU64,
    /// Tries after the first.
    pub retries: AtomicU64,
    /// Notifications given up.
    pub failures: AtomicU64,
}

/// The backoff schedule.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Tries in all.
    pub max_tries: u32,
    /// First delay bound.
    pub initial: Duration,
    /// Cap.
    pub max: Duration,
}

impl Policy {
    /// The delay before try `n + 1` after `n` failed tries, with `unit` a
    /// uniform random number in [0, 1) and the answer's Retry-After.
    pub fn delay(&self, n: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << n.saturating_sub(1).min(20))
            .min(self.max);
        let jittered = exp.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(r) => jittered.max(r.min(self.max)),
            None => jittered,
        }
    }
}

/// What one try came to.
#[derive(Debug)]
pub enum Attempt {
    /// Delivered.
    Delivered,
    /// Worth another try, after at least this long if given.
    Retry {
        /// Why it failed.
        why: String,
        /// Retry-After.
        after: Option<Duration>,
    },
    /// Not worth another try.
    Fatal(String),
}

/// A small random source for jitter (xorshift, seeded from the OS).
pub struct Jitter(u64);

impl Jitter {
    /// Seeded from the OS.
    pub fn new() -> Jitter {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Jitter(u64::from_le_bytes(seed) | 1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter::new()
    }
}

/// Runs `attempt` (given the try number, from 1) until it delivers, fails
/// fatally or `policy.max_tries` are spent, sleeping between tries.
/// Returns `Ok(tries)` or the last error.
pub async fn with_retries<F, Fut>(
    policy: Policy,
    stats: &HookStats,
    mut attempt: F,
) -> Result<u32, String>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Attempt>,
{
    let mut jitter = Jitter::new();
    let mut n = 1;
    loop {
        match attempt(n).await {
            Attempt::Delivered => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                return Ok(n);
            }
            Attempt::Fatal(why) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                return Err(why);
            }
            Attempt::Retry { why, after } => {
                if n >= policy.max_tries {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    return Err(format!("{why} (gave up after {n} tries)"));
                }
                stats.retries.fetch_add(1, Ordering::Relaxed);
                let d = policy.delay(n, jitter.unit(), after);
                tracing::warn!(webhook = %stats.name, try_ = n, retry_in = ?d, error = %why, "webhook delivery failed; retrying");
                tokio::time::sleep(d).await;
                n += 1;
            }
        }
    }
}

/// One try: POST `body` to the webhook.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    idempotency_key: &str,
    body: String,
) -> Attempt {
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", idempotency_key)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Err(e) => Attempt::Retry {
            why: error_chain(&e),
            after: None,
        },
        Ok(resp) => {
            let status = resp.status().as_u16();
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            match status {
                200..=299 => Attempt::Delivered,
                408 | 429 | 500..=599 => Attempt::Retry {
                    why: format!("answered {status}"),
                    after,
                },
                _ => Attempt::Fatal(format!("answered {status}; not retried")),
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// A notification for the webhooks.
#[derive(Clone, Debug)]
pub struct Notice {
    /// The alert.
    pub alert: Alert,
    /// Where it was stored: (leaf, seq).
    pub stored: Option<(u64, u64)>,
}

/// The body of a notification.
pub fn body(n: &Notice, collector: &str) -> serde_json::Value {
    serde_json::json!({
        "version": 1,
        "source": "auditship",
        "collector": collector,
        "alert": n.alert.to_json(),
        "stored": n.stored.map(|(leaf, seq)| serde_json::json!({"leaf": leaf, "seq": seq})),
    })
}

/// Why a webhook could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The token file.
    #[error("alerts.webhooks {name:?}: token_file {path}: {source}")]
    Token {
        /// Webhook.
        name: String,
        /// File.
        path: std::path::PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// TLS or the client.
    #[error("alerts.webhooks {name:?}: {message}")]
    Client {
        /// Webhook.
        name: String,
        /// What failed.
        message: String,
    },
}

/// One configured webhook, ready.
struct Hook {
    cfg: WebhookConfig,
    client: reqwest::Client,
    token: Option<String>,
    stats: Arc<HookStats>,
    slots: Arc<Semaphore>,
}

/// Sends notifications to every webhook.
pub struct Dispatcher {
    tx: Vec<mpsc::Sender<Notice>>,
    hooks: Vec<Arc<HookStats>>,
    tracker: TaskTracker,
}

impl Dispatcher {
    /// Sets up `hooks` (reading token files, building clients) and starts a
    /// task per webhook on `rt`.
    pub fn start(
        hooks: &[WebhookConfig],
        collector: String,
        rt: &tokio::runtime::Handle,
    ) -> Result<Dispatcher, WebhookError> {
        auditship_tls::install_default_provider();
        let tracker = TaskTracker::new();
        let mut txs = Vec::new();
        let mut all = Vec::new();
        for cfg in hooks {
            let token = match &cfg.token {
                WebhookToken::None => None,
                WebhookToken::Inline(t) => Some(t.clone()),
                WebhookToken::File(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|source| WebhookError::Token {
                            name: cfg.name.clone(),
                            path: p.clone(),
                            source,
                        })?
                        .trim_end()
                        .to_string(),
                ),
            };
            let client_err = |message: String| WebhookError::Client {
                name: cfg.name.clone(),
                message,
            };
            let mut b = reqwest::Client::builder()
                .timeout(cfg.timeout)
                .connect_timeout(cfg.timeout)
                .user_agent(concat!("auditship/", env!("CARGO_PKG_VERSION")));
            if let Some(ca) = &cfg.ca_file {
                let tls = auditship_tls::client_config(ca, None)
                    .map_err(|e| client_err(e.to_string()))?;
                b = b.tls_backend_preconfigured(tls);
            }
            let client = b.build().map_err(|e| client_err(error_chain(&e)))?;
            let stats = Arc::new(HookStats {
                name: cfg.name.clone(),
                ..HookStats::default()
            });
            let hook = Arc::new(Hook {
                cfg: cfg.clone(),
                client,
                token,
                stats: stats.clone(),
                slots: Arc::new(Semaphore::new(CONCURRENCY)),
            });
            let (tx, rx) = mpsc::channel(BACKLOG);
            rt.spawn(run_hook(hook, rx, collector.clone(), tracker.clone()));
            txs.push(tx);
            all.push(stats);
        }
        Ok(Dispatcher {
            tx: txs,
            hooks: all,
            tracker,
        })
    }

    /// Each webhook's counters.
    pub fn stats(&self) -> Vec<Arc<HookStats>> {
        self.hooks.clone()
    }

    /// Queues `n` for every webhook (never waits; a full backlog gives the
    /// notification up for that webhook, counted and logged).
    pub fn send(&self, n: &Notice) {
        for (tx, stats) in self.tx.iter().zip(&self.hooks) {
            if tx.try_send(n.clone()).is_err() {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(critical = true, webhook = %stats.name, alert = %n.alert.id, "webhook backlog full (receiver down for long?); this notification is given up");
            }
        }
    }

    /// Stops taking notifications and waits up to `grace` for deliveries
    /// in flight.
    pub async fn close(self, grace: Duration) {
        let Dispatcher { tx, tracker, .. } = self;
        drop(tx);
        // The per-webhook tasks end when their channel is empty and closed.
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("webhook deliveries still running at shutdown; abandoned");
        }
    }
}

async fn run_hook(
    hook: Arc<Hook>,
    mut rx: mpsc::Receiver<Notice>,
    collector: String,
    tracker: TaskTracker,
) {
    let _alive = tracker.token();
    while let Some(n) = rx.recv().await {
        if n.alert.severity < hook.cfg.min_severity {
            continue;
        }
        let Ok(permit) = hook.slots.clone().acquire_owned().await else {
            return;
        };
        let hook = hook.clone();
        let body = body(&n, &collector).to_string();
        tracker.spawn(async move {
            let _permit = permit;
            let key = format!("{}:{}", n.alert.id, n.alert.status.as_str());
            let policy = Policy {
                max_tries: hook.cfg.max_tries,
                initial: hook.cfg.backoff_initial,
                max: hook.cfg.backoff_max,
            };
            let r = with_retries(policy, &hook.stats, |_| {
                post(
                    &hook.client,
                    &hook.cfg.url,
                    hook.token.as_deref(),
                    &key,
                    body.clone(),
                )
            })
            .await;
            match r {
                Ok(tries) => tracing::info!(webhook = %hook.cfg.name, alert = %n.alert.id, status = n.alert.status.as_str(), tries, "alert delivered"),
                Err(why) => tracing::error!(critical = true, webhook = %hook.cfg.name, alert = %n.alert.id, rule = %n.alert.rule, error = %why, "alert NOT delivered to the webhook (it is stored in the log)"),
            }
        });
    }
}
