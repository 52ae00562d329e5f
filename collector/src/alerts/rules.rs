//! `[alerts]`: alert rules and webhooks, as written and as validated.
//!
//! [`RawAlerts`] is what the TOML says (unknown keys are errors, every
//! field documented); [`RawAlerts::validate`] is a pure function into
//! [`AlertsConfig`] that reports every problem as `(key path, message)`,
//! like the rest of the collector's config, so `tomlconf` puts a file and
//! line on it. Tokens named by `token_file` are read when the alerts start,
//! not here.
//!
//! The shipped rule set ([`super::defaults`]) is written in the same form
//! as `[[alerts.rules]]` and validated by the same code. A rule of the
//! config with the name of a default rule replaces it (to tune a threshold,
//! or to switch it off with `enabled = false`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tomlconf::HumanDuration;

use super::fields::{Condition, Conditions, Field};
pub use super::hooks::{RawWebhook, WebhookConfig, WebhookToken};
pub use super::hours::{parse_days, parse_hours, Hours};
use crate::integrity::COLLECTOR_AGENT;

/// `[alerts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// Evaluate alert rules (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Include the shipped default rule set (default true); see
    /// `config/alerts.default.toml`.
    #[serde(default)]
    pub defaults: Option<bool>,
    /// How long an alert waits after it opens before its first
    /// notification, so that a burst arrives as one alert with its count
    /// (default "10s"; "0s" notifies at once).
    #[serde(default)]
    pub notify_delay: Option<HumanDuration>,
    /// Dedup window of rules that set none (default "15m"): further matches
    /// for the same rule and key within it are counted into the open alert.
    #[serde(default)]
    pub dedup: Option<HumanDuration>,
    /// Most (key, value) pairs first-seen rules remember, across rules
    /// (default 100000); the least recently seen are forgotten first.
    #[serde(default)]
    pub first_seen_max: Option<usize>,
    /// Where alerts are sent (besides being stored in the log).
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    /// Rules, added to (or replacing, by name) the default rules.
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// `[[alerts.rules]]`: one rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique name: letters, digits, `_` and `-`.
    pub name: String,
    /// "threshold", "match", "first_seen", "time_of_day" or "integrity".
    pub kind: Kind,
    /// A sentence for people, in the alert.
    #[serde(default)]
    pub description: Option<String>,
    /// "info", "low", "medium" (default), "high" or "critical".
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Evaluate the rule (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Conditions an event must meet, all of them: field path = value or
    /// list of values (any of them), e.g.
    /// `{ action = "ssh_login", outcome = "failure" }`.
    #[serde(default)]
    pub when: Option<BTreeMap<String, RawValue>>,
    /// Events that also meet all of these conditions are ignored (e.g.
    /// `{ src_ip = ["10.0.0.0/8"] }`).
    #[serde(default)]
    pub unless: Option<BTreeMap<String, RawValue>>,
    /// Field paths whose values make the alert's key: one alert (and, for
    /// thresholds, one count) per distinct key. An event without one of
    /// them is not counted.
    #[serde(default)]
    pub by: Option<Vec<String>>,
    /// Dedup window (default [alerts] dedup).
    #[serde(default)]
    pub dedup: Option<HumanDuration>,
    /// threshold: fire at this many matching events per key ...
    #[serde(default)]
    pub threshold: Option<u64>,
    /// threshold: ... within this window of event time.
    #[serde(default)]
    pub window: Option<HumanDuration>,
    /// first_seen: the field that owns the remembered values (e.g. "actor.user").
    #[serde(default)]
    pub key: Option<String>,
    /// first_seen: the field whose new values fire (e.g. "src_ip").
    #[serde(default)]
    pub value: Option<String>,
    /// time_of_day: the allowed hours, "HH:MM-HH:MM" (start included, end
    /// excluded; may wrap midnight, e.g. "22:00-06:00").
    #[serde(default)]
    pub hours: Option<String>,
    /// time_of_day: the allowed days ("mon" … "sun", or ranges such as
    /// "mon-fri"); default every day.
    #[serde(default)]
    pub days: Option<Vec<String>>,
    /// time_of_day: the offset the hours are in, "+01:00", "-05:00" or "Z"
    /// (default "Z").
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// integrity: the integrity actions that fire (default chain_gap,
    /// chain_fork, chain_break, bad_signature, agent_silent).
    #[serde(default)]
    pub actions: Option<Vec<String>>,
}

/// A condition's value: text, a number, a list, or a table of deeper
/// field names (`target = { uid = 0 }` is `target.uid = 0`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawValue {
    /// One text value.
    Text(String),
    /// One number.
    Int(i64),
    /// True or false.
    Bool(bool),
    /// Any of these.
    List(Vec<RawScalar>),
    /// Deeper fields.
    Table(BTreeMap<String, RawValue>),
}

/// One value of a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawScalar {
    /// Text.
    Text(String),
    /// A number.
    Int(i64),
}

/// Rule kinds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// N matching events per key within a window.
    Threshold,
    /// Every matching event (deduplicated).
    Match,
    /// A value not seen before for a key (a new source IP for a user).
    FirstSeen,
    /// A matching event outside the allowed hours.
    TimeOfDay,
    /// An integrity finding of the collector (gap, fork, bad signature…).
    Integrity,
}

impl Kind {
    /// The name used in configs and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Threshold => "threshold",
            Kind::Match => "match",
            Kind::FirstSeen => "first_seen",
            Kind::TimeOfDay => "time_of_day",
            Kind::Integrity => "integrity",
        }
    }
}

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Look when convenient.
    Low,
    /// Look today.
    Medium,
    /// Look now.
    High,
    /// Evidence may be lost or forged, or an attack succeeded.
    Critical,
}

impl Severity {
    /// The name used in configs and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// Integrity actions an `integrity` rule fires on unless it lists its own.
pub const INTEGRITY_ALARMS: [&str; 5] = [
    "chain_gap",
    "chain_fork",
    "chain_break",
    "bad_signature",
    "agent_silent",
];

/// What makes a rule fire.
#[derive(Clone, Debug)]
pub enum Trigger {
    /// `threshold` matching events per key within `window` (event time).
    /// `match` and `integrity` rules are thresholds of 1.
    Count {
        /// Events.
        threshold: u64,
        /// Window.
        window: Duration,
    },
    /// A value of `value` not seen before for the value of `key`.
    FirstSeen {
        /// Owner field.
        key: Field,
        /// Remembered field.
        value: Field,
    },
    /// Outside the allowed hours.
    OffHours(Hours),
}

/// A validated rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Name.
    pub name: String,
    /// Kind, as configured.
    pub kind: Kind,
    /// For people.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Conditions.
    pub when: Conditions,
    /// Exclusions.
    pub unless: Conditions,
    /// Key fields.
    pub by: Vec<Field>,
    /// Dedup window.
    pub dedup: Duration,
    /// What fires it.
    pub trigger: Trigger,
}

/// Validated `[alerts]`.
#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// Whether rules are evaluated.
    pub enabled: bool,
    /// Delay of the first notification.
    pub notify_delay: Duration,
    /// First-seen memory bound.
    pub first_seen_max: usize,
    /// Enabled rules, defaults first.
    pub rules: Vec<Rule>,
    /// Webhooks.
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: false,
            notify_delay: Duration::from_secs(10),
            first_seen_max: 100_000,
            rules: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

pub(super) type Err<'a> = &'a mut dyn FnMut(&str, String);

impl RawAlerts {
    /// Stage two: every problem goes to `err` as (key path, message);
    /// relative paths are joined to `base`.
    pub fn validate(self, base: &Path, err: Err<'_>) -> AlertsConfig {
        let notify_delay = self.notify_delay.map_or(Duration::from_secs(10), |d| d.0);
        if notify_delay > Duration::from_secs(3600) {
            err("alerts.notify_delay", "must be at most 1h".into());
        }
        let dedup = self.dedup.map_or(Duration::from_secs(900), |d| d.0);
        if dedup <= notify_delay {
            err(
                "alerts.dedup",
                "must be longer than notify_delay (an alert notifies within its dedup window)"
                    .into(),
            );
        }
        let first_seen_max = self.first_seen_max.unwrap_or(100_000);
        if !(1..=10_000_000).contains(&first_seen_max) {
            err(
                "alerts.first_seen_max",
                "must be between 1 and 10000000".into(),
            );
        }
        let mut raw: Vec<(String, RawRule)> = Vec::new();
        if self.defaults.unwrap_or(true) {
            for (i, r) in super::defaults::raw_rules().into_iter().enumerate() {
                raw.push((format!("alerts.defaults[{i}] ({})", r.name), r));
            }
        }
        let mut names = BTreeSet::new();
        for (i, r) in self.rules.into_iter().enumerate() {
            let key = format!("alerts.rules[{i}]");
            if !names.insert(r.name.clone()) {
                err(
                    &format!("{key}.name"),
                    format!("{:?} names another rule too", r.name),
                );
                continue;
            }
            // A rule named like a default replaces it.
            raw.retain(|(k, d)| !(k.starts_with("alerts.defaults") && d.name == r.name));
            raw.push((key, r));
        }
        let mut rules = Vec::new();
        for (key, r) in raw {
            if let Some(rule) = validate_rule(r, dedup, notify_delay, &key, err) {
                rules.push(rule);
            }
        }
        let mut webhooks = Vec::new();
        let mut hook_names = BTreeSet::new();
        for (i, w) in self.webhooks.into_iter().enumerate() {
            let key = format!("alerts.webhooks[{i}]");
            if !hook_names.insert(w.name.clone()) {
                err(
                    &format!("{key}.name"),
                    format!("{:?} names another webhook too", w.name),
                );
            }
            if let Some(w) = super::hooks::validate(w, base, &key, err) {
                webhooks.push(w);
            }
        }
        AlertsConfig {
            enabled: self.enabled.unwrap_or(true),
            notify_delay,
            first_seen_max,
            rules,
            webhooks,
        }
    }
}

/// Validates one rule; `None` when it is disabled or wrong.
pub fn validate_rule(
    r: RawRule,
    default_dedup: Duration,
    notify_delay: Duration,
    key: &str,
    err: Err<'_>,
) -> Option<Rule> {
    if r.enabled == Some(false) {
        // Switched off (often a default, by name): nothing else needs to
        // be right.
        return None;
    }
    let mut bad = false;
    let mut fail = |f: &str, m: String| {
        bad = true;
        err(&format!("{key}.{f}"), m);
    };
    if r.name.is_empty()
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        fail(
            "name",
            format!("{:?} must be letters, digits, '_' and '-'", r.name),
        );
    }
    let mut when = conditions(r.when.as_ref(), &mut |m| fail("when", m));
    let unless = conditions(r.unless.as_ref(), &mut |m| fail("unless", m));
    let mut by = Vec::new();
    for f in r.by.iter().flatten() {
        match Field::parse(f) {
            Ok(f) => by.push(f),
            Err(m) => fail("by", m),
        }
    }
    let dedup = r.dedup.map_or(default_dedup, |d| d.0);
    if dedup <= notify_delay || dedup > Duration::from_secs(7 * 86_400) {
        fail(
            "dedup",
            "must be longer than [alerts] notify_delay and at most 7 days".into(),
        );
    }
    // Keys that belong to other kinds are errors, not silently ignored.
    let own: &[&str] = match r.kind {
        Kind::Threshold => &["threshold", "window"],
        Kind::Match => &[],
        Kind::FirstSeen => &["key", "value"],
        Kind::TimeOfDay => &["hours", "days", "utc_offset"],
        Kind::Integrity => &["actions"],
    };
    let given = [
        ("threshold", r.threshold.is_some()),
        ("window", r.window.is_some()),
        ("key", r.key.is_some()),
        ("value", r.value.is_some()),
        ("hours", r.hours.is_some()),
        ("days", r.days.is_some()),
        ("utc_offset", r.utc_offset.is_some()),
        ("actions", r.actions.is_some()),
    ];
    for (name, set) in given {
        if set && !own.contains(&name) {
            fail(
                name,
                format!("is not a key of kind = {:?} rules", r.kind.as_str()),
            );
        }
    }
    let trigger = match r.kind {
        Kind::Threshold => {
            let threshold = r.threshold.unwrap_or(0);
            if threshold == 0 {
                fail(
                    "threshold",
                    "a threshold rule needs threshold = N (at least 1)".into(),
                );
            }
            let window = r.window.map(|d| d.0).unwrap_or_default();
            if window.is_zero() || window > Duration::from_secs(7 * 86_400) {
                fail(
                    "window",
                    "a threshold rule needs a window between 1ms and 7 days, e.g. \"5m\"".into(),
                );
            }
            Trigger::Count { threshold, window }
        }
        Kind::Match | Kind::Integrity => Trigger::Count {
            threshold: 1,
            window: Duration::ZERO,
        },
        Kind::FirstSeen => {
            let mut field = |f: &str, v: &Option<String>| match v {
                None => {
                    fail(f, format!("a first_seen rule needs {f} = \"<field>\""));
                    Field::Action
                }
                Some(v) => Field::parse(v).unwrap_or_else(|m| {
                    fail(f, m);
                    Field::Action
                }),
            };
            let key_f = field("key", &r.key);
            let value_f = field("value", &r.value);
            if !by.is_empty() {
                fail(
                    "by",
                    "a first_seen rule is keyed by its key and value fields".into(),
                );
            }
            by = vec![key_f.clone(), value_f.clone()];
            Trigger::FirstSeen {
                key: key_f,
                value: value_f,
            }
        }
        Kind::TimeOfDay => {
            let hours = match r.hours.as_deref().map(parse_hours) {
                Some(Ok(h)) => h,
                Some(Err(m)) => {
                    fail("hours", m);
                    (0, 1440)
                }
                None => {
                    fail(
                        "hours",
                        "a time_of_day rule needs hours = \"HH:MM-HH:MM\"".into(),
                    );
                    (0, 1440)
                }
            };
            let days = match &r.days {
                None => [true; 7],
                Some(d) => parse_days(d).unwrap_or_else(|m| {
                    fail("days", m);
                    [true; 7]
                }),
            };
            let offset = match r.utc_offset.as_deref() {
                None => 0,
                Some(o) => {
                    auditship_core::time::parse_offset(o.trim().as_bytes()).unwrap_or_else(|| {
                        fail(
                            "utc_offset",
                            format!(
                                "{o:?} is not an offset such as \"+01:00\", \"-05:00\" or \"Z\""
                            ),
                        );
                        0
                    })
                }
            };
            Trigger::OffHours(Hours {
                start: hours.0,
                end: hours.1,
                days,
                offset,
            })
        }
    };
    if r.kind == Kind::Integrity {
        if r.when.is_some() {
            fail(
                "when",
                "an integrity rule matches the collector's integrity events; use actions".into(),
            );
        }
        let actions: Vec<String> = r
            .actions
            .clone()
            .unwrap_or_else(|| INTEGRITY_ALARMS.iter().map(|s| s.to_string()).collect());
        if actions.is_empty() {
            fail("actions", "give at least one integrity action".into());
        }
        when = Conditions(vec![
            cond(Field::Category, &["integrity"]),
            cond(Field::AgentId, &[COLLECTOR_AGENT]),
            Condition {
                field: Field::Action,
                values: actions,
                nets: Vec::new(),
            },
        ]);
        if by.is_empty() {
            by = vec![Field::Extra("agent_id".into())];
        }
    } else if when.0.is_empty() && r.when.is_none() {
        fail(
            "when",
            "give conditions, e.g. when = { action = \"ssh_login\", outcome = \"failure\" }".into(),
        );
    }
    if bad {
        return None;
    }
    Some(Rule {
        description: r
            .description
            .unwrap_or_else(|| format!("{} rule {}", r.kind.as_str(), r.name)),
        name: r.name,
        kind: r.kind,
        severity: r.severity.unwrap_or(Severity::Medium),
        when,
        unless,
        by,
        dedup,
        trigger,
    })
}

fn cond(field: Field, values: &[&str]) -> Condition {
    Condition {
        field,
        values: values.iter().map(|s| s.to_string()).collect(),
        nets: Vec::new(),
    }
}

/// Flattens a `when`/`unless` table into conditions.
fn conditions(
    raw: Option<&BTreeMap<String, RawValue>>,
    fail: &mut dyn FnMut(String),
) -> Conditions {
    let mut flat: Vec<(String, Vec<String>)> = Vec::new();
    fn walk(prefix: &str, t: &BTreeMap<String, RawValue>, out: &mut Vec<(String, Vec<String>)>) {
        for (k, v) in t {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let scalar = |s: &RawScalar| match s {
                RawScalar::Text(t) => t.clone(),
                RawScalar::Int(i) => i.to_string(),
            };
            match v {
                RawValue::Text(t) => out.push((path, vec![t.clone()])),
                RawValue::Int(i) => out.push((path, vec![i.to_string()])),
                RawValue::Bool(b) => out.push((path, vec![b.to_string()])),
                RawValue::List(l) => out.push((path, l.iter().map(scalar).collect())),
                RawValue::Table(t) => walk(&path, t, out),
            }
        }
    }
    if let Some(t) = raw {
        walk("", t, &mut flat);
    }
    let mut out = Vec::new();
    for (path, values) in flat {
        match Field::parse(&path).and_then(|f| Condition::new(f, values)) {
            Ok(c) => out.push(c),
            Err(m) => fail(m),
        }
    }
    Conditions(out)
}
