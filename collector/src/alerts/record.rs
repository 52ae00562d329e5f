//! An alert, and its two written forms: the stored event (category
//! `alert`, in the collector's own chain) and the JSON object the webhook
//! and `GET /v1/alerts` carry. [`Alert::from_event`] reads a stored alert
//! back, so the API answers from the log itself.
//!
//! The stored event: action `alert_fired` (status `firing`) or
//! `alert_closed` (status `closed`), outcome `unknown`, `actor.user` and
//! `src_ip` the alert's user and source address when it has them,
//! `target.resource` = `rule:<name>`, `reason` the rule's description, and
//! in `fields`: `alert_id`, `rule`, `kind`, `severity`, `status`, `key`,
//! `count`, `first_ts`, `last_ts`, `opened`, `samples` (leaf indexes of up
//! to five matching events, comma-separated: each has an inclusion proof),
//! `host` (where the events happened, when one host) and `group.<field>`
//! for each key field.

use std::collections::BTreeMap;
use std::net::IpAddr;

use auditship_core::{AuditEvent, Category, Outcome, Timestamp};
use serde_json::{json, Value};

use super::rules::{Kind, Severity};

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Opened: the first notification.
    Firing,
    /// Its dedup window ended and it counted more since it was notified:
    /// the final count.
    Closed,
}

impl Status {
    /// The name in events and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Closed => "closed",
        }
    }
}

/// One alert, as notified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Unique: rule, opening time and key.
    pub id: String,
    /// Rule name.
    pub rule: String,
    /// Rule kind.
    pub kind: Kind,
    /// Severity.
    pub severity: Severity,
    /// The rule's description.
    pub description: String,
    /// The key, `field=value` pairs joined by spaces (empty: one alert per rule).
    pub key: String,
    /// The key's fields and values.
    pub group: BTreeMap<String, String>,
    /// Matching events counted into it.
    pub count: u64,
    /// Event time of the first counted event, Unix ms.
    pub first_ts: i64,
    /// Event time of the last counted event, Unix ms.
    pub last_ts: i64,
    /// When it opened (collector clock), Unix ms.
    pub opened: i64,
    /// Firing or closed.
    pub status: Status,
    /// Leaf indexes of the first matching events (at most five).
    pub samples: Vec<u64>,
    /// Source address of the events, when they have one.
    pub src_ip: Option<IpAddr>,
    /// The user concerned (actor, else target), when there is one.
    pub user: Option<String>,
    /// Host the events happened on.
    pub host: Option<String>,
}

/// Most sample leaves kept per alert.
pub const SAMPLES: usize = 5;

/// RFC 3339 (UTC) of Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    Timestamp::new(
        ms.div_euclid(1000),
        (ms.rem_euclid(1000) as u32) * 1_000_000,
        0,
    )
    .map_or_else(|| ms.to_string(), |t| t.to_string())
}

fn parse_ms(s: &str) -> Option<i64> {
    Timestamp::parse_rfc3339(s, 0).map(|(t, _)| t.unix_millis())
}

impl Alert {
    /// The alert as an (unsealed) event of the collector.
    pub fn to_event(&self) -> AuditEvent {
        let action = match self.status {
            Status::Firing => "alert_fired",
            Status::Closed => "alert_closed",
        };
        let mut raw = format!(
            "alert {} ({}) {}: {} event(s)",
            self.rule,
            self.severity.as_str(),
            self.status.as_str(),
            self.count
        );
        if !self.key.is_empty() {
            raw.push_str(&format!(" [{}]", self.key));
        }
        raw.push_str(&format!(
            " {}..{}: {}",
            rfc3339(self.first_ts),
            rfc3339(self.last_ts),
            self.description
        ));
        let mut ev = AuditEvent::new(Category::Alert, action, Outcome::Unknown, raw);
        ev.program = Some("auditship-collector".into());
        ev.actor.user = self.user.clone();
        ev.src_ip = self.src_ip;
        ev.target.resource = Some(format!("rule:{}", self.rule));
        ev.reason = Some(self.description.clone());
        let mut f = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            f.insert(k.to_string(), v);
        };
        put("alert_id", self.id.clone());
        put("rule", self.rule.clone());
        put("kind", self.kind.as_str().into());
        put("severity", self.severity.as_str().into());
        put("status", self.status.as_str().into());
        put("key", self.key.clone());
        put("count", self.count.to_string());
        put("first_ts", rfc3339(self.first_ts));
        put("last_ts", rfc3339(self.last_ts));
        put("opened", rfc3339(self.opened));
        let samples: Vec<String> = self.samples.iter().map(u64::to_string).collect();
        put("samples", samples.join(","));
        if let Some(h) = &self.host {
            put("host", h.clone());
        }
        for (k, v) in &self.group {
            put(&format!("group.{k}"), v.clone());
        }
        ev.fields = f;
        ev
    }

    /// Reads a stored alert event back; `None` if it is not one.
    pub fn from_event(ev: &AuditEvent) -> Option<Alert> {
        if ev.category != Category::Alert {
            return None;
        }
        let f = &ev.fields;
        let get = |k: &str| f.get(k).cloned();
        let kind = match f.get("kind")?.as_str() {
            "threshold" => Kind::Threshold,
            "match" => Kind::Match,
            "first_seen" => Kind::FirstSeen,
            "time_of_day" => Kind::TimeOfDay,
            "integrity" => Kind::Integrity,
            _ => return None,
        };
        Some(Alert {
            id: get("alert_id")?,
            rule: get("rule")?,
            kind,
            severity: Severity::parse(f.get("severity")?)?,
            description: ev.reason.clone().unwrap_or_default(),
            key: get("key").unwrap_or_default(),
            group: f
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("group.").map(|k| (k.into(), v.clone())))
                .collect(),
            count: f.get("count")?.parse().ok()?,
            first_ts: parse_ms(f.get("first_ts")?)?,
            last_ts: parse_ms(f.get("last_ts")?)?,
            opened: parse_ms(f.get("opened")?)?,
            status: match f.get("status")?.as_str() {
                "firing" => Status::Firing,
                "closed" => Status::Closed,
                _ => return None,
            },
            samples: f
                .get("samples")
                .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
                .unwrap_or_default(),
            src_ip: ev.src_ip,
            user: ev.actor.user.clone(),
            host: get("host"),
        })
    }

    /// The JSON object of the webhook body and `GET /v1/alerts`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "rule": self.rule,
            "kind": self.kind.as_str(),
            "severity": self.severity.as_str(),
            "status": self.status.as_str(),
            "description": self.description,
            "key": self.key,
            "group": self.group,
            "count": self.count,
            "first_ts": rfc3339(self.first_ts),
            "last_ts": rfc3339(self.last_ts),
            "opened": rfc3339(self.opened),
            "src_ip": self.src_ip.map(|i| i.to_string()),
            "user": self.user,
            "host": self.host,
            "samples": self.samples,
        })
    }
}
