//! Alert counters, and their families on the collector's `/metrics`:
//!
//! ```text
//! alerts_fired_total{rule}                    alerts notified as firing
//! alerts_closed_total{rule}                   closing notifications (count grew after firing)
//! alerts_open                                 alerts open (within their dedup window)
//! alerts_evaluated_events_total               events evaluated against the rules
//! alerts_feed_overflow_events_total           events the alerts thread was too far behind to be handed;
//!                                             read back from the store instead (none lost)
//! alerts_store_failures_total                 alert events that could not be stored (still notified)
//! alert_webhook_sent_total{webhook}           notifications delivered (2xx)
//! alert_webhook_retries_total{webhook}        tries after the first
//! alert_webhook_failures_total{webhook}       notifications given up
//! ```
//!
//! (all prefixed `auditship_collector_`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use auditship_telemetry::Exposition;

use super::feed::FeedStats;
use super::webhook::HookStats;

/// Everything the alerts count.
#[derive(Debug)]
pub struct AlertStats {
    /// Rule names, in order.
    pub rules: Vec<String>,
    /// Firing notifications per rule.
    pub fired: Vec<AtomicU64>,
    /// Closing notifications per rule.
    pub closed: Vec<AtomicU64>,
    /// Open alerts.
    pub open: AtomicU64,
    /// Events evaluated.
    pub evaluated: AtomicU64,
    /// Alert events not stored.
    pub store_failures: AtomicU64,
    /// The hand-over from the commit thread.
    pub feed: Arc<FeedStats>,
    /// Per webhook.
    pub webhooks: Vec<Arc<HookStats>>,
}

impl AlertStats {
    /// Counters for `rules`.
    pub fn new(rules: Vec<String>, feed: Arc<FeedStats>, webhooks: Vec<Arc<HookStats>>) -> Self {
        AlertStats {
            fired: rules.iter().map(|_| AtomicU64::new(0)).collect(),
            closed: rules.iter().map(|_| AtomicU64::new(0)).collect(),
            rules,
            open: AtomicU64::new(0),
            evaluated: AtomicU64::new(0),
            store_failures: AtomicU64::new(0),
            feed,
            webhooks,
        }
    }

    /// The index of `rule`.
    pub fn rule(&self, rule: &str) -> Option<usize> {
        self.rules.iter().position(|r| r == rule)
    }

    /// Writes the families.
    pub fn render(&self, out: &mut Exposition) {
        let r = Ordering::Relaxed;
        let per_rule = |out: &mut Exposition, name: &str, help: &str, v: &[AtomicU64]| {
            let m = out.counter(name, help);
            for (rule, c) in self.rules.iter().zip(v) {
                m.sample(&[("rule", rule)], c.load(r) as f64);
            }
        };
        per_rule(
            out,
            "auditship_collector_alerts_fired_total",
            "Alerts notified as firing, by rule.",
            &self.fired,
        );
        per_rule(
            out,
            "auditship_collector_alerts_closed_total",
            "Closing notifications with a final count, by rule.",
            &self.closed,
        );
        out.gauge(
            "auditship_collector_alerts_open",
            "Alerts within their dedup window.",
        )
        .value(self.open.load(r) as f64);
        let c = |out: &mut Exposition, name: &str, help: &str, v: u64| {
            out.counter(name, help).value(v as f64);
        };
        c(
            out,
            "auditship_collector_alerts_evaluated_events_total",
            "Events evaluated against the alert rules.",
            self.evaluated.load(r),
        );
        c(
            out,
            "auditship_collector_alerts_feed_overflow_events_total",
            "Events not handed to the alerts thread (it was behind); read back from the store instead.",
            self.feed.overflowed.load(r),
        );
        c(
            out,
            "auditship_collector_alerts_store_failures_total",
            "Alert events that could not be stored (still sent to webhooks).",
            self.store_failures.load(r),
        );
        let per_hook =
            |out: &mut Exposition, name: &str, help: &str, f: &dyn Fn(&HookStats) -> u64| {
                let m = out.counter(name, help);
                for h in &self.webhooks {
                    m.sample(&[("webhook", &h.name)], f(h) as f64);
                }
            };
        per_hook(
            out,
            "auditship_collector_alert_webhook_sent_total",
            "Alert notifications delivered to a webhook (2xx).",
            &|h| h.sent.load(r),
        );
        per_hook(
            out,
            "auditship_collector_alert_webhook_retries_total",
            "Webhook delivery tries after the first.",
            &|h| h.retries.load(r),
        );
        per_hook(
            out,
            "auditship_collector_alert_webhook_failures_total",
            "Alert notifications a webhook did not get (tries spent, refused, or backlog full).",
            &|h| h.failures.load(r),
        );
    }
}
