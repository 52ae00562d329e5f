//! Event fields a rule can name, and conditions on them.
//!
//! A rule names fields by the path they have in the native JSON rendering
//! of an event (`action`, `actor.user`, `target.uid`, `fields.attribute`).
//! Every value is compared as text, exactly (numbers too: `target.uid = 0`
//! matches the uid 0), except `src_ip`, whose values are addresses or CIDR
//! blocks (`10.0.0.0/8`). A condition on a field the event does not have
//! never holds.

use std::borrow::Cow;
use std::fmt;

use auditship_core::cidr::IpNet;
use auditship_core::AuditEvent;

/// A field of an event, by its path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `category`.
    Category,
    /// `action`.
    Action,
    /// `outcome`.
    Outcome,
    /// `host`.
    Host,
    /// `program`.
    Program,
    /// `source`.
    Source,
    /// `agent_id`.
    AgentId,
    /// `reason`.
    Reason,
    /// `auth_method`.
    AuthMethod,
    /// `actor.user`.
    ActorUser,
    /// `actor.uid`.
    ActorUid,
    /// `target.user`.
    TargetUser,
    /// `target.uid`.
    TargetUid,
    /// `target.group`.
    TargetGroup,
    /// `target.gid`.
    TargetGid,
    /// `target.resource`.
    TargetResource,
    /// `target.url`.
    TargetUrl,
    /// `src_ip`.
    SrcIp,
    /// `tty`.
    Tty,
    /// `command`.
    Command,
    /// `http.method`.
    HttpMethod,
    /// `http.status`.
    HttpStatus,
    /// `fields.<name>`: a source-specific field.
    Extra(String),
}

const NAMED: [(&str, Field); 22] = [
    ("category", Field::Category),
    ("action", Field::Action),
    ("outcome", Field::Outcome),
    ("host", Field::Host),
    ("program", Field::Program),
    ("source", Field::Source),
    ("agent_id", Field::AgentId),
    ("reason", Field::Reason),
    ("auth_method", Field::AuthMethod),
    ("actor.user", Field::ActorUser),
    ("actor.uid", Field::ActorUid),
    ("target.user", Field::TargetUser),
    ("target.uid", Field::TargetUid),
    ("target.group", Field::TargetGroup),
    ("target.gid", Field::TargetGid),
    ("target.resource", Field::TargetResource),
    ("target.url", Field::TargetUrl),
    ("src_ip", Field::SrcIp),
    ("tty", Field::Tty),
    ("command", Field::Command),
    ("http.method", Field::HttpMethod),
    ("http.status", Field::HttpStatus),
];

impl Field {
    /// Parses a path such as `actor.user` or `fields.uid`.
    pub fn parse(path: &str) -> Result<Field, String> {
        if let Some(name) = path.strip_prefix("fields.") {
            if name.is_empty() {
                return Err("fields. needs a field name, e.g. fields.attribute".into());
            }
            return Ok(Field::Extra(name.to_string()));
        }
        NAMED
            .iter()
            .find(|(n, _)| *n == path)
            .map(|(_, f)| f.clone())
            .ok_or_else(|| {
                let names: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown field {path:?}; known: {}, fields.<name>",
                    names.join(", ")
                )
            })
    }

    /// The path, as written in rules.
    pub fn name(&self) -> Cow<'static, str> {
        match self {
            Field::Extra(n) => Cow::Owned(format!("fields.{n}")),
            f => Cow::Borrowed(NAMED.iter().find(|(_, g)| g == f).map_or("?", |(n, _)| *n)),
        }
    }

    /// The field's value in `ev`, as text; `None` when it is not set.
    pub fn get<'a>(&self, ev: &'a AuditEvent) -> Option<Cow<'a, str>> {
        let s = |o: &'a Option<String>| o.as_deref().map(Cow::Borrowed);
        let n = |o: Option<u32>| o.map(|v| Cow::Owned(v.to_string()));
        match self {
            Field::Category => Some(Cow::Borrowed(ev.category.as_str())),
            Field::Action => Some(Cow::Borrowed(ev.action.as_ref())),
            Field::Outcome => Some(Cow::Borrowed(ev.outcome.as_str())),
            Field::Host => s(&ev.host),
            Field::Program => s(&ev.program),
            Field::Source => s(&ev.source),
            Field::AgentId => s(&ev.agent_id),
            Field::Reason => s(&ev.reason),
            Field::AuthMethod => s(&ev.auth_method),
            Field::ActorUser => s(&ev.actor.user),
            Field::ActorUid => n(ev.actor.uid),
            Field::TargetUser => s(&ev.target.user),
            Field::TargetUid => n(ev.target.uid),
            Field::TargetGroup => s(&ev.target.group),
            Field::TargetGid => n(ev.target.gid),
            Field::TargetResource => s(&ev.target.resource),
            Field::TargetUrl => s(&ev.target.url),
            Field::SrcIp => ev.src_ip.map(|ip| Cow::Owned(ip.to_string())),
            Field::Tty => s(&ev.tty),
            Field::Command => s(&ev.command),
            Field::HttpMethod => ev
                .http
                .as_ref()
                .and_then(|h| h.method.as_deref())
                .map(Cow::Borrowed),
            Field::HttpStatus => ev
                .http
                .as_ref()
                .and_then(|h| h.status)
                .map(|v| Cow::Owned(v.to_string())),
            Field::Extra(name) => ev.fields.get(name).map(|v| Cow::Borrowed(v.as_str())),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One condition: the field has one of the values.
#[derive(Clone, Debug)]
pub struct Condition {
    /// The field.
    pub field: Field,
    /// Accepted values (text fields).
    pub values: Vec<String>,
    /// Accepted blocks (`src_ip`).
    pub nets: Vec<IpNet>,
}

impl Condition {
    /// A condition on `field`; values of `src_ip` must be addresses or CIDR
    /// blocks.
    pub fn new(field: Field, values: Vec<String>) -> Result<Condition, String> {
        if values.is_empty() {
            return Err(format!("{field}: give at least one value"));
        }
        let mut nets = Vec::new();
        if field == Field::SrcIp {
            for v in &values {
                nets.push(IpNet::parse(v).map_err(|m| format!("{field}: {m}"))?);
            }
        }
        Ok(Condition {
            field,
            values,
            nets,
        })
    }

    /// Whether `ev` satisfies it.
    pub fn holds(&self, ev: &AuditEvent) -> bool {
        if self.field == Field::SrcIp {
            return ev
                .src_ip
                .is_some_and(|ip| self.nets.iter().any(|n| n.contains(ip)));
        }
        match self.field.get(ev) {
            Some(v) => self.values.iter().any(|w| *w == *v),
            None => false,
        }
    }
}

/// Conditions that must all hold.
#[derive(Clone, Debug, Default)]
pub struct Conditions(pub Vec<Condition>);

impl Conditions {
    /// Whether every condition holds (true when there is none).
    pub fn hold(&self, ev: &AuditEvent) -> bool {
        self.0.iter().all(|c| c.holds(ev))
    }

    /// The accepted values of `field`, if a condition names it.
    pub fn values_of(&self, field: &Field) -> Option<&[String]> {
        self.0
            .iter()
            .find(|c| c.field == *field)
            .map(|c| c.values.as_slice())
    }
}
