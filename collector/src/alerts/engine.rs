//! Evaluation: each event against each rule, as it arrives.
//!
//! Pure and single-threaded: [`Engine::observe`] takes an event, its leaf
//! index and the collector's clock, [`Engine::due`] returns the
//! notifications due at a time. The alerts thread drives it; tests drive
//! it with a clock of their own.
//!
//! Two clocks, on purpose. **Event time** (`ts`, else `observed_ts`, else
//! the collector's clock) decides what happened together: threshold
//! windows and time of day, so that a replayed or late-shipped log counts
//! as it happened, not as it arrived. **The collector's clock** decides
//! when to speak: notification delay and dedup windows, so an alert goes
//! out within a bounded time even when no further event arrives.
//!
//! Per rule kind:
//!
//! * **threshold**: per key, the event times of the last `threshold`
//!   matches, sorted (a late event takes its place); it fires when they
//!   span at most `window`. Memory per key is `threshold` entries; keys
//!   whose newest event left the window are swept every minute, and past
//!   [`MAX_KEYS`] keys per rule the stalest half is dropped (counted).
//! * **match** and **integrity**: a threshold of one.
//! * **first_seen**: fires on a new value for a key that had values
//!   ([`super::first_seen`]); a key's first value is learned silently, so
//!   day one is not a flood of "new" logins.
//! * **time_of_day**: fires on a match whose event time, in the rule's
//!   offset, is outside the allowed hours or days.
//!
//! While an alert is open for (rule, key), further matches are counted
//! into it ([`super::dedup`]) instead of being evaluated again.

use std::collections::{BTreeMap, HashMap, VecDeque};

use auditship_core::AuditEvent;
use sha2::{Digest, Sha256};

use super::dedup::Dedup;
use super::first_seen::{FirstSeen, Seen};
use super::record::{Alert, Status, SAMPLES};
use super::rules::{AlertsConfig, Rule, Trigger};

/// Most keys a threshold rule tracks at once.
pub const MAX_KEYS: usize = 100_000;

/// The rules and their state.
pub struct Engine {
    rules: Vec<Rule>,
    /// Per threshold rule: key -> (event time, leaf) of recent matches.
    windows: Vec<HashMap<String, VecDeque<(i64, u64)>>>,
    /// Per rule: the newest event time it matched (the sweep's clock).
    newest: Vec<i64>,
    first_seen: FirstSeen,
    dedup: Dedup,
    /// Keys dropped because a rule tracked too many.
    pub evicted: u64,
}

impl Engine {
    /// An engine for `cfg`'s rules.
    pub fn new(cfg: &AlertsConfig, first_seen: FirstSeen) -> Engine {
        let n = cfg.rules.len();
        Engine {
            rules: cfg.rules.clone(),
            windows: (0..n).map(|_| HashMap::new()).collect(),
            newest: vec![i64::MIN; n],
            first_seen,
            dedup: Dedup::new(n, cfg.notify_delay.as_millis() as i64),
            evicted: 0,
        }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Evaluates `ev` (stored at `leaf`) at collector time `now` (Unix ms).
    pub fn observe(&mut self, ev: &AuditEvent, leaf: u64, now: i64) {
        let ts = ev.ts.or(ev.observed_ts).map_or(now, |t| t.unix_millis());
        for i in 0..self.rules.len() {
            let rule = &self.rules[i];
            if !rule.when.hold(ev) || (!rule.unless.0.is_empty() && rule.unless.hold(ev)) {
                continue;
            }
            let Some((key, group)) = key_of(rule, ev) else {
                continue;
            };
            self.newest[i] = self.newest[i].max(ts);
            match &rule.trigger {
                Trigger::Count { threshold, window } => {
                    if self.dedup.bump(i, &key, ts, leaf) {
                        continue;
                    }
                    if *threshold <= 1 {
                        self.fire(i, key, group, ev, vec![(ts, leaf)], now);
                        continue;
                    }
                    let w = match self.windows[i].get_mut(&key) {
                        Some(w) => w,
                        None => self.windows[i].entry(key.clone()).or_default(),
                    };
                    let at = w.partition_point(|(t, _)| *t <= ts);
                    w.insert(at, (ts, leaf));
                    if w.len() as u64 > *threshold {
                        w.pop_front();
                    }
                    let span = w.back().map_or(0, |b| b.0) - w.front().map_or(0, |f| f.0);
                    if w.len() as u64 == *threshold && span <= window.as_millis() as i64 {
                        let hits: Vec<(i64, u64)> = w.drain(..).collect();
                        self.windows[i].remove(&key);
                        self.fire(i, key, group, ev, hits, now);
                    } else if self.windows[i].len() > MAX_KEYS {
                        self.shed(i);
                    }
                }
                Trigger::FirstSeen { key: kf, value: vf } => {
                    let (Some(k), Some(v)) = (kf.get(ev), vf.get(ev)) else {
                        continue;
                    };
                    let seen = self.first_seen.observe(&rule.name, &k, &v, ts);
                    if seen == Seen::NewValue && !self.dedup.bump(i, &key, ts, leaf) {
                        self.fire(i, key, group, ev, vec![(ts, leaf)], now);
                    }
                }
                Trigger::OffHours(hours) => {
                    if hours.allows(ts.div_euclid(1000)) || self.dedup.bump(i, &key, ts, leaf) {
                        continue;
                    }
                    self.fire(i, key, group, ev, vec![(ts, leaf)], now);
                }
            }
        }
    }

    fn fire(
        &mut self,
        i: usize,
        key: String,
        group: BTreeMap<String, String>,
        ev: &AuditEvent,
        hits: Vec<(i64, u64)>,
        now: i64,
    ) {
        let rule = &self.rules[i];
        let digest = Sha256::digest(key.as_bytes());
        let alert = Alert {
            id: format!(
                "{}-{}-{}",
                rule.name,
                now,
                auditship_core::hex::encode(&digest[..4])
            ),
            rule: rule.name.clone(),
            kind: rule.kind,
            severity: rule.severity,
            description: rule.description.clone(),
            key,
            group,
            count: hits.len() as u64,
            first_ts: hits.iter().map(|h| h.0).min().unwrap_or(now),
            last_ts: hits.iter().map(|h| h.0).max().unwrap_or(now),
            opened: now,
            status: Status::Firing,
            samples: hits.iter().take(SAMPLES).map(|h| h.1).collect(),
            src_ip: ev.src_ip,
            user: ev.actor.user.clone().or_else(|| ev.target.user.clone()),
            host: ev.host.clone(),
        };
        self.dedup
            .open(i, alert, now, rule.dedup.as_millis() as i64);
    }

    /// Drops the stalest half of a rule's keys (too many tracked).
    fn shed(&mut self, i: usize) {
        self.sweep_rule(i);
        let w = &mut self.windows[i];
        if w.len() <= MAX_KEYS {
            return;
        }
        let mut newest: Vec<i64> = w.values().map(|d| d.back().map_or(0, |b| b.0)).collect();
        let mid = newest.len() / 2;
        let (_, cut, _) = newest.select_nth_unstable(mid);
        let cut = *cut;
        let before = w.len();
        w.retain(|_, d| d.back().map_or(0, |b| b.0) > cut);
        self.evicted += (before - w.len()) as u64;
        tracing::warn!(
            rule = %self.rules[i].name,
            dropped = before - w.len(),
            "alert rule tracks too many keys; forgot the stalest half"
        );
    }

    fn sweep_rule(&mut self, i: usize) {
        if let Trigger::Count { window, .. } = &self.rules[i].trigger {
            let horizon = self.newest[i].saturating_sub(window.as_millis() as i64);
            self.windows[i].retain(|_, d| d.back().is_some_and(|b| b.0 >= horizon));
        }
    }

    /// Forgets counts whose newest event left the window.
    pub fn sweep(&mut self) {
        for i in 0..self.rules.len() {
            self.sweep_rule(i);
        }
    }

    /// Notifications due at `now`.
    pub fn due(&mut self, now: i64) -> Vec<Alert> {
        self.dedup.due(now)
    }

    /// Everything still to notify (shutdown).
    pub fn drain(&mut self) -> Vec<Alert> {
        self.dedup.drain()
    }

    /// When the next notification is due, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.dedup.next_due()
    }

    /// Open alerts.
    pub fn open_alerts(&self) -> usize {
        self.dedup.len()
    }

    /// Keys tracked by threshold rules.
    pub fn tracked_keys(&self) -> usize {
        self.windows.iter().map(HashMap::len).sum()
    }

    /// The first-seen state.
    pub fn first_seen(&mut self) -> &mut FirstSeen {
        &mut self.first_seen
    }
}

/// The key of `ev` under `rule`; `None` when a key field is missing.
fn key_of(rule: &Rule, ev: &AuditEvent) -> Option<(String, BTreeMap<String, String>)> {
    let mut key = String::new();
    let mut group = BTreeMap::new();
    for f in &rule.by {
        let v = f.get(ev)?;
        if !key.is_empty() {
            key.push(' ');
        }
        let name = f.name();
        key.push_str(&name);
        key.push('=');
        key.push_str(&v);
        group.insert(name.into_owned(), v.into_owned());
    }
    Some((key, group))
}
