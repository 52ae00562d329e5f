//! The audit event: one schema for every source.
//!
//! Every parser, whether it reads nginx access logs, sshd messages or
//! application JSON, produces an [`AuditEvent`]. The schema answers who did
//! what, to what, when, from where, and with what outcome, and it always keeps
//! the original line in `raw`.
//!
//! This is the *native* rendering, the one `auditship parse --schema native`
//! prints and the wire format carries. Its JSON shape is stable:
//!
//! * `ts`, `category`, `action`, `outcome`, `actor`, `target`, `src_ip` and
//!   `raw` are always present (`ts` and `src_ip` may be `null`; `actor` and
//!   `target` may be `{}`).
//! * Every other field is omitted when it has no value, never `null`.
//! * Field-by-field mapping to ECS and OCSF lives in [`crate::ecs`] and
//!   [`crate::ocsf`]; the byte form used for hashing lives in
//!   [`crate::canonical`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Version of the event schema and of its canonical encoding.
pub const SCHEMA_VERSION: u32 = 1;

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// One audit event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Schema version; see [`SCHEMA_VERSION`].
    #[serde(default = "schema_version")]
    pub v: u32,
    /// When the event happened, with the offset the source wrote (or inferred).
    pub ts: Option<Timestamp>,
    /// The timestamp exactly as it appeared in the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_ts: Option<String>,
    /// When the agent read the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ts: Option<Timestamp>,
    /// Host the event happened on (syslog hostname, or set by enrichment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Where the line came from: input name and file path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Program that wrote the line (syslog tag, or the web server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// Process id of `program`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Broad class of the event.
    pub category: Category,
    /// What happened, as a snake_case verb phrase: `ssh_login`, `sudo_command`,
    /// `user_created`, `http_request`, or `unparsed`.
    pub action: Cow<'static, str>,
    /// Whether it worked.
    pub outcome: Outcome,
    /// Why it failed or ended, in the source's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who did it.
    #[serde(default)]
    pub actor: Actor,
    /// What it was done to.
    #[serde(default)]
    pub target: Target,
    /// Client IP address.
    pub src_ip: Option<IpAddr>,
    /// Client port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Client address when it is not an IP: a host name, or `unix:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_addr: Option<String>,
    /// Authentication method: `password`, `publickey`, `keyboard-interactive/pam`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    /// Public key type for key-based logins (`RSA`, `ED25519`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// Public key fingerprint (`SHA256:…` or colon-separated MD5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// Login session identifier (logind session, sudo TSID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Terminal the action came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
    /// Working directory of a command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Command line that was run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// HTTP user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Request identifier for correlating with other systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Web request details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    /// Source-specific extra fields, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// Conditions on the raw line (escaped, truncated…).
    #[serde(default, skip_serializing_if = "Flags::is_empty")]
    pub flags: Flags,
    /// The original line, always; see [`crate::lossless`] for invalid UTF-8.
    pub raw: String,
    /// Identity of the agent that sealed the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Position in the agent's hash chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Hash of the previous event in the chain (hex); not part of the canonical form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    /// This event's chain hash (hex); not part of the canonical form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// The principal that acted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Numeric user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// What the action was done to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Target user: login user, sudo run-as user, created account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Target numeric user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Target numeric group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Any other resource (service, file, PAM service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Requested URL, as written in the request line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Web request details.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// Request method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Protocol version without the `HTTP/` prefix (`1.1`, `2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The request line as written, kept only when it is not `METHOD TARGET VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Response status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Response body bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Referer header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Virtual host or Host header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Every address of the X-Forwarded-For chain and client field, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarded_for: Vec<String>,
    /// Request duration in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
}

/// Broad class of an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Proving an identity: logins, password checks, key checks.
    Authentication,
    /// Session lifecycle: opened, closed, logind sessions.
    Session,
    /// Privilege changes: sudo, su.
    Privilege,
    /// Account and group management.
    Account,
    /// Web requests.
    Web,
    /// Connections and protocol-level events (banner errors, scans).
    Network,
    /// Daemon and host events.
    System,
    /// The pipeline's own integrity events (gaps, forks, heartbeats,
    /// retention tombstones).
    Integrity,
    /// Access to the log itself, recorded by the collector: queries,
    /// exports, proofs, token changes, retention runs, legal holds.
    Access,
    /// An alert rule fired (recorded by the collector).
    Alert,
    /// Not classified (unparsed lines).
    #[default]
    Unknown,
}

impl Category {
    /// The snake_case name used in every rendering.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::Session => "session",
            Category::Privilege => "privilege",
            Category::Account => "account",
            Category::Web => "web",
            Category::Network => "network",
            Category::System => "system",
            Category::Integrity => "integrity",
            Category::Access => "access",
            Category::Alert => "alert",
            Category::Unknown => "unknown",
        }
    }
}

/// Whether the action succeeded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It worked.
    Success,
    /// It was refused or failed.
    Failure,
    /// The line does not say.
    #[default]
    Unknown,
}

impl Outcome {
    /// The snake_case name used in every rendering.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// Conditions on the raw line, as a small bit set.
///
/// Rendered as a JSON array of names in the order of [`Flags::NAMES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// `raw` holds the escaped form of a line that was not valid UTF-8.
    pub const RAW_ESCAPED: Flags = Flags(1);
    /// The line was longer than the maximum and was cut.
    pub const TRUNCATED: Flags = Flags(2);
    /// The line was longer than the maximum and this is one of its pieces.
    pub const SPLIT: Flags = Flags(4);
    /// The line had no final newline and was emitted after an idle timeout.
    pub const NO_NEWLINE: Flags = Flags(8);
    /// Names of the flags, in bit order.
    pub const NAMES: [(Flags, &'static str); 4] = [
        (Flags::RAW_ESCAPED, "raw_escaped"),
        (Flags::TRUNCATED, "truncated"),
        (Flags::SPLIT, "split"),
        (Flags::NO_NEWLINE, "no_newline"),
    ];

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Whether every flag in `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags in `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Names of the set flags, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<Cow<'de, str>>::deserialize(d)?;
        let mut flags = Flags::default();
        for name in names {
            let (f, _) = Flags::NAMES
                .iter()
                .find(|(_, n)| *n == name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown flag {name:?}")))?;
            flags.insert(*f);
        }
        Ok(flags)
    }
}

impl AuditEvent {
    /// A new event with the given classification and raw line, every other field empty.
    pub fn new(
        category: Category,
        action: impl Into<Cow<'static, str>>,
        outcome: Outcome,
        raw: String,
    ) -> Self {
        AuditEvent {
            v: SCHEMA_VERSION,
            ts: None,
            raw_ts: None,
            observed_ts: None,
            host: None,
            source: None,
            program: None,
            pid: None,
            category,
            action: action.into(),
            outcome,
            reason: None,
            actor: Actor::default(),
            target: Target::default(),
            src_ip: None,
            src_port: None,
            src_addr: None,
            auth_method: None,
            key_type: None,
            key_fingerprint: None,
            session_id: None,
            tty: None,
            cwd: None,
            command: None,
            user_agent: None,
            request_id: None,
            http: None,
            fields: BTreeMap::new(),
            flags: Flags::default(),
            raw,
            agent_id: None,
            seq: None,
            prev_hash: None,
            hash: None,
        }
    }

    /// An event for a line no parser understood: action `unparsed`, raw kept.
    pub fn unparsed(raw: String) -> Self {
        AuditEvent::new(Category::Unknown, UNPARSED, Outcome::Unknown, raw)
    }

    /// Whether this event is the fallback for a line no parser understood.
    pub fn is_unparsed(&self) -> bool {
        self.action == UNPARSED
    }

    /// The web details, created empty on first use.
    pub fn http_mut(&mut self) -> &mut Http {
        self.http.get_or_insert_with(Http::default)
    }
}

/// The action of an event no parser understood.
pub const UNPARSED: &str = "unparsed";

impl Actor {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.uid.is_none()
    }
}

impl Target {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Target::default()
    }

    /// `url` split at the first `?` into path and query.
    pub fn url_path_query(&self) -> Option<(&str, Option<&str>)> {
        let url = self.url.as_deref()?;
        Some(match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_json_always_carries_the_core_fields() {
        let ev = AuditEvent::unparsed("hello".into());
        let v: serde_json::Value = serde_json::to_value(&ev).unwrap();
        for key in [
            "category", "action", "outcome", "actor", "target", "src_ip", "ts", "raw",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["action"], "unparsed");
        assert!(
            v.get("host").is_none(),
            "absent optional fields are omitted"
        );
    }

    #[test]
    fn native_json_round_trips_and_rejects_unknown_keys() {
        let mut ev = AuditEvent::new(
            Category::Authentication,
            "ssh_login",
            Outcome::Failure,
            "x".into(),
        );
        ev.flags.insert(Flags::TRUNCATED);
        ev.flags.insert(Flags::RAW_ESCAPED);
        ev.actor.user = Some("root".into());
        ev.http_mut().forwarded_for.push("10.0.0.1".into());
        let s = serde_json::to_string(&ev).unwrap();
        assert!(s.contains(r#""flags":["raw_escaped","truncated"]"#), "{s}");
        let back: AuditEvent = serde_json::from_str(&s).unwrap();
        assert_eq!(back, ev);
        let bad = s.replacen("\"raw\"", "\"rwa\"", 1);
        assert!(serde_json::from_str::<AuditEvent>(&bad).is_err());
    }
}
