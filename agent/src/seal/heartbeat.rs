//! Heartbeats: a sealed event when the agent has sealed nothing for a while,
//! so that silence, or a chain cut off at its tail, shows at the collector.
//!
//! ```text
//! timer task (tokio):  sleeps `interval`; any pass that sealed an event
//!                      restarts the sleep; when it runs out, it marks a
//!                      heartbeat due
//! ingest thread:       at the start of each pass, if one is due, seals a
//!                      heartbeat event and appends it to the queue
//! ```
//!
//! The heartbeat is an ordinary sealed event (category `integrity`, action
//! `agent_heartbeat`, outcome `success`, `host` and `agent_id` set, `raw` a
//! short text, `fields` with `idle_s`, `uptime_s` and `prev_seq`, the `seq`
//! of the event before it). It bypasses filters, is queued with the
//! `\0chain` stream (see [`crate::seal`]), and reaches every output like any
//! event; the collector sees it in the chain. Sealing a heartbeat restarts
//! the timer, so an idle agent sends one every `interval`. A full queue
//! delays it like any event. The timer runs on `tokio::time`, so tests can
//! pause the clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auditship_core::{AuditEvent, Category, Outcome, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ChainHead;

/// Action of heartbeat events.
pub const ACTION: &str = "agent_heartbeat";

/// The heartbeat timer, shared by its task and the ingest thread.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    interval: Duration,
    activity: Notify,
    due: AtomicBool,
}

impl Heartbeat {
    /// A timer for `interval` of idleness.
    pub fn new(interval: Duration) -> Self {
        Heartbeat {
            inner: Arc::new(Inner {
                interval,
                activity: Notify::new(),
                due: AtomicBool::new(false),
            }),
        }
    }

    /// The idle time after which a heartbeat is sealed.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// Tells the timer that events were sealed (once per pass is enough).
    pub fn sealed(&self) {
        self.inner.activity.notify_one();
    }

    /// Whether a heartbeat is due; clears the request.
    pub fn take_due(&self) -> bool {
        self.inner.due.swap(false, Ordering::AcqRel)
    }

    /// The timer task: runs until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.inner.interval) => {
                    self.inner.due.store(true, Ordering::Release);
                }
                _ = self.inner.activity.notified() => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// The heartbeat event (without `seq`, which the caller sets). `prev` is the
/// chain head it will follow.
pub fn event(
    agent_id: &str,
    host: &str,
    prev: ChainHead,
    idle: Duration,
    uptime: Duration,
) -> AuditEvent {
    let now = Timestamp::now_utc();
    let idle_s = idle.as_secs();
    let mut ev = AuditEvent::new(
        Category::Integrity,
        ACTION,
        Outcome::Success,
        format!(
            "auditship agent {agent_id} heartbeat: no events for {idle_s}s, chain continues after seq {}",
            prev.as_of
        ),
    );
    ev.ts = Some(now);
    ev.observed_ts = Some(now);
    ev.host = Some(host.to_string());
    ev.program = Some("auditship".into());
    ev.pid = Some(std::process::id());
    ev.agent_id = Some(agent_id.to_string());
    ev.fields.insert("idle_s".into(), idle_s.to_string());
    ev.fields
        .insert("uptime_s".into(), uptime.as_secs().to_string());
    ev.fields.insert("prev_seq".into(), prev.as_of.to_string());
    ev
}
