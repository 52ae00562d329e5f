//! Open alerts: one per (rule, key), counted, notified once, closed once.
//!
//! The life of an alert, on the collector's clock:
//!
//! ```text
//! opened (rule fired for key K)      notify_at = opened + notify_delay
//!   | every further match for (rule, K): count += 1, last_ts, samples
//! notify_at: "firing" with the count so far  -> stored + webhook
//!   | further matches keep counting
//! close_at = opened + dedup: "closed" with the final count, only if the
//!   count grew since "firing"                 -> stored + webhook
//! after close: the rule must fire afresh (a new threshold crossing) to
//! open the next alert for K
//! ```
//!
//! So a burst (a brute-force run of a few seconds) is exactly one
//! notification carrying its full count: every event of the burst arrives
//! within `notify_delay` of the one that crossed the threshold. A long
//! attack is one "firing" early and one "closed" with the final count per
//! dedup window, never one message per event. At shutdown every open
//! alert is notified as it stands (see [`Dedup::drain`]).

use std::collections::HashMap;

use super::record::{Alert, Status, SAMPLES};

struct Open {
    alert: Alert,
    /// Count when "firing" was notified; `None` before.
    notified: Option<u64>,
    notify_at: i64,
    close_at: i64,
}

/// Open alerts by rule (index) and key.
pub struct Dedup {
    open: Vec<HashMap<String, Open>>,
    notify_delay_ms: i64,
}

impl Dedup {
    /// For `rules` rules.
    pub fn new(rules: usize, notify_delay_ms: i64) -> Dedup {
        Dedup {
            open: (0..rules).map(|_| HashMap::new()).collect(),
            notify_delay_ms,
        }
    }

    /// Counts a match into the open alert of (`rule`, `key`), if there is
    /// one; returns whether there was.
    pub fn bump(&mut self, rule: usize, key: &str, ts: i64, leaf: u64) -> bool {
        let Some(o) = self.open[rule].get_mut(key) else {
            return false;
        };
        let a = &mut o.alert;
        a.count += 1;
        a.first_ts = a.first_ts.min(ts);
        a.last_ts = a.last_ts.max(ts);
        if a.samples.len() < SAMPLES {
            a.samples.push(leaf);
        }
        true
    }

    /// Opens `alert` (status firing) for `rule` at `now`, closing after
    /// `dedup_ms`.
    pub fn open(&mut self, rule: usize, alert: Alert, now: i64, dedup_ms: i64) {
        let o = Open {
            notify_at: now + self.notify_delay_ms,
            close_at: now + dedup_ms.max(self.notify_delay_ms + 1),
            notified: None,
            alert,
        };
        self.open[rule].insert(o.alert.key.clone(), o);
    }

    /// Notifications due at `now`: alerts reaching their notification
    /// time ("firing"), and alerts whose window ended having counted more
    /// since ("closed"; they are removed either way).
    pub fn due(&mut self, now: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for alerts in &mut self.open {
            alerts.retain(|_, o| {
                if o.notified.is_none() && now >= o.notify_at {
                    o.notified = Some(o.alert.count);
                    out.push(o.alert.clone());
                }
                if now >= o.close_at {
                    if o.notified.is_some_and(|n| o.alert.count > n) {
                        let mut a = o.alert.clone();
                        a.status = Status::Closed;
                        out.push(a);
                    }
                    return false;
                }
                true
            });
        }
        out
    }

    /// Everything still to say, at shutdown: alerts not notified yet as
    /// "firing", notified ones that counted more as "closed". Empties the
    /// set.
    pub fn drain(&mut self) -> Vec<Alert> {
        let mut out = Vec::new();
        for alerts in &mut self.open {
            for (_, o) in alerts.drain() {
                match o.notified {
                    None => out.push(o.alert),
                    Some(n) if o.alert.count > n => {
                        let mut a = o.alert;
                        a.status = Status::Closed;
                        out.push(a);
                    }
                    Some(_) => {}
                }
            }
        }
        out
    }

    /// The earliest time something is due, if anything is open.
    pub fn next_due(&self) -> Option<i64> {
        self.open
            .iter()
            .flat_map(|m| m.values())
            .map(|o| {
                if o.notified.is_none() {
                    o.notify_at
                } else {
                    o.close_at
                }
            })
            .min()
    }

    /// Open alerts.
    pub fn len(&self) -> usize {
        self.open.iter().map(HashMap::len).sum()
    }

    /// Whether no alert is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
