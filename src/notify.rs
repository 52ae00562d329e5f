//! systemd service notification (`sd_notify`) for `auditship agent` and
//! `auditship collector`, which run as `Type=notify` units with a watchdog
//! (`packaging/systemd/`).
//!
//! Both roles use [`supervise`]: it waits until the role reports that it is
//! running (the agent: identity loaded, queue recovered, inputs and outputs
//! started; the collector: store opened and listening), then sends
//! `READY=1`; every half of `WATCHDOG_USEC` (every 10 s without a watchdog)
//! it sends `STATUS=` with the role's counters and, while the role is
//! healthy, `WATCHDOG=1`; when shutdown starts it sends `STOPPING=1`.
//! Without `NOTIFY_SOCKET` in the environment nothing is sent. A
//! `WATCHDOG_PID` naming another process turns the keep-alive off, as
//! `sd_watchdog_enabled(3)` says.
//!
//! What a keep-alive proves: it is sent from a task on the role's tokio
//! runtime, so the runtime still schedules tasks and fires timers; and only
//! while the role's [`Probe::progress`] counter moved within the allowed
//! staleness (half the watchdog timeout, and at least three of the role's
//! idle [`Probe::beat`]s). The agent's counter is turned by its ingest thread
//! on every pass over its inputs and every bounded wait for queue space; the
//! collector's by its commit thread on every round (the server ticks it
//! every second). A wedged ingest or commit thread, or a stalled runtime,
//! stops the keep-alives and systemd restarts the service (the next start
//! recovers from the queue or the store as after any crash). A collector
//! that is down, or a full queue, is not a wedge: the agent keeps turning.
//!
//! The messages are datagrams on a Unix socket, as `sd_notify(3)` sends them
//! (`@name` is an abstract socket); std's `UnixDatagram` suffices.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How often `STATUS=` is refreshed when there is no watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// What a running role shows the notifier.
pub trait Probe: Send + 'static {
    /// A counter that moves while the role is healthy.
    fn progress(&self) -> u64;
    /// How often [`progress`](Self::progress) moves when the role is idle.
    fn beat(&self) -> Duration;
    /// A short line for `systemctl status`.
    fn status(&self) -> String;
}

/// Where notifications go, from the environment systemd sets.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let target = var("NOTIFY_SOCKET").and_then(|name| match connect(&name) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(socket = %name, error = %e, "NOTIFY_SOCKET unusable; not notifying systemd");
                None
            }
        });
        let for_us = var("WATCHDOG_PID")
            .is_none_or(|pid| pid.trim().parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = var("WATCHDOG_USEC")
            .and_then(|us| us.trim().parse::<u64>().ok())
            .filter(|&us| us > 0 && for_us && target.is_some())
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// Whether systemd asked for notifications.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one message (newline-separated assignments). Never blocks:
    /// a notification that cannot be sent at once is dropped and logged.
    pub fn send(&self, msg: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(msg.as_bytes(), addr) {
                tracing::warn!(error = %e, "cannot notify systemd");
            }
        }
    }
}

fn connect(name: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(abstract_name.as_bytes())?
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)?
    } else {
        return Err(std::io::Error::other(
            "neither an absolute path nor an @abstract name",
        ));
    };
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    Ok((sock, addr))
}

/// Decides whether the role is alive: its counter moved within `allowed`.
struct Watch {
    allowed: Duration,
    last: u64,
    moved: Instant,
}

impl Watch {
    fn new(allowed: Duration, value: u64, now: Instant) -> Watch {
        Watch {
            allowed,
            last: value,
            moved: now,
        }
    }

    /// Records a sample; true while the counter moved recently enough.
    fn alive(&mut self, value: u64, now: Instant) -> bool {
        if value != self.last {
            self.last = value;
            self.moved = now;
        }
        now.saturating_duration_since(self.moved) <= self.allowed
    }
}

/// Notifies systemd for a role: `READY=1` when `ready` delivers the role's
/// probe, then status and keep-alives until `shutdown`, then `STOPPING=1`.
/// Returns at once when there is no `NOTIFY_SOCKET`.
pub async fn supervise<P: Probe>(
    notifier: Notifier,
    ready: oneshot::Receiver<P>,
    shutdown: CancellationToken,
) {
    if !notifier.enabled() {
        return;
    }
    let probe = tokio::select! {
        p = ready => p.ok(),
        _ = shutdown.cancelled() => None,
    };
    let Some(probe) = probe else {
        // Stopping before ready, or the role failed to start.
        notifier.send("STOPPING=1");
        return;
    };
    notifier.send(&format!("READY=1\nSTATUS={}", probe.status()));
    let period = notifier.watchdog.map_or(STATUS_EVERY, |w| w / 2);
    let allowed = notifier
        .watchdog
        .map_or(Duration::MAX, |w| (w / 2).max(probe.beat() * 3));
    let mut watch = Watch::new(allowed, probe.progress(), Instant::now());
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut withheld = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let mut msg = format!("STATUS={}", probe.status());
        if notifier.watchdog.is_some() {
            if watch.alive(probe.progress(), Instant::now()) {
                msg.insert_str(0, "WATCHDOG=1\n");
                withheld = false;
            } else if !withheld {
                tracing::error!(
                    stalled_for = ?allowed,
                    "the pipeline made no progress; withholding the watchdog keep-alive, systemd will restart the service"
                );
                withheld = true;
            }
        }
        notifier.send(&msg);
    }
    notifier.send("STOPPING=1\nSTATUS=stopping");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_allows_a_still_counter_only_for_the_allowed_time() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut w = Watch::new(3 * s, 7, t0);
        assert!(w.alive(7, t0 + 2 * s));
        assert!(w.alive(7, t0 + 3 * s));
        assert!(!w.alive(7, t0 + 4 * s), "still for longer than allowed");
        assert!(w.alive(8, t0 + 5 * s), "moving again revives it");
        assert!(w.alive(8, t0 + 8 * s));
        assert!(!w.alive(8, t0 + 9 * s));
    }

    #[test]
    fn socket_names_are_paths_or_abstract() {
        assert!(connect("relative/path").is_err());
        let (_, a) = connect("/run/systemd/notify").unwrap();
        assert_eq!(
            a.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let (_, a) = connect("@auditship-test").unwrap();
        use std::os::linux::net::SocketAddrExt;
        assert_eq!(a.as_abstract_name(), Some(&b"auditship-test"[..]));
    }
}
