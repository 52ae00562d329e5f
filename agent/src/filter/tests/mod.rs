//! Tests of the filter module as a whole: TOML configs in, events through
//! the chain, verdicts, redactions and counters out. Small units (CIDR,
//! query scanning, the password heuristic) are tested in their own files.
//!
//! This file holds the shared helpers and sample configs; the tests are in
//! [`config`] (both configuration stages), [`redact`] and [`runtime`]
//! (enrich, drop and the chain).

mod config;
mod redact;
mod runtime;

pub(super) use auditship_core::{AuditEvent, Category, Outcome};
use serde::Deserialize;

pub(super) use super::*;

/// The agent config's shape, as far as filters go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Doc {
    pub(super) filters: Vec<FilterConfig>,
}

pub(super) fn configs(toml_text: &str) -> Vec<FilterConfig> {
    match toml::from_str::<Doc>(toml_text) {
        Ok(doc) => doc.filters,
        Err(e) => panic!("config does not parse: {e}"),
    }
}

/// Builds a chain from TOML, with `sys-host` as the system host name.
pub(super) fn chain(toml_text: &str) -> FilterChain {
    try_chain(toml_text).unwrap_or_else(|e| panic!("config does not validate: {e}"))
}

pub(super) fn try_chain(toml_text: &str) -> Result<FilterChain, FilterError> {
    let filters = configs(toml_text)
        .iter()
        .enumerate()
        .map(|(i, c)| c.validate(i, Some("sys-host")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FilterChain::new(filters))
}

pub(super) fn chain_err(toml_text: &str) -> String {
    match try_chain(toml_text) {
        Ok(_) => panic!("config accepted: {toml_text}"),
        Err(e) => e.to_string(),
    }
}

pub(super) const SSH_FAILED: &str =
    "Nov 20 10:01:01 bastion sshd[2003]: Failed password for invalid user USER from 203.0.113.9 port 22 ssh2";

/// A failed sshd password login by `user`, as the sshd parser builds it.
pub(super) fn ssh_failed(user: &str) -> AuditEvent {
    let mut ev = AuditEvent::new(
        Category::Authentication,
        "ssh_login",
        Outcome::Failure,
        SSH_FAILED.replace("USER", user),
    );
    ev.host = Some("bastion".into());
    ev.program = Some("sshd".into());
    ev.pid = Some(2003);
    ev.reason = Some("invalid user".into());
    ev.actor.user = Some(user.into());
    ev.src_ip = Some("203.0.113.9".parse().unwrap());
    ev.src_port = Some(22);
    ev.auth_method = Some("password".into());
    ev
}

/// An nginx `combined` request for `url` from `ip`.
pub(super) fn web(ip: &str, url: &str, status: u16, ua: &str) -> AuditEvent {
    let raw = format!(
        r#"{ip} - - [22/Nov/2026:08:15:30 +0100] "GET {url} HTTP/1.1" {status} 5316 "https://example.com/?q=1" "{ua}""#
    );
    let mut ev = AuditEvent::new(Category::Web, "http_request", Outcome::Success, raw);
    ev.program = Some("nginx".into());
    ev.src_ip = Some(ip.parse().unwrap());
    ev.target.url = Some(url.into());
    ev.user_agent = Some(ua.into());
    let http = ev.http_mut();
    http.method = Some("GET".into());
    http.version = Some("1.1".into());
    http.status = Some(status);
    http.bytes = Some(5316);
    http.referrer = Some("https://example.com/?q=1".into());
    ev
}

pub(super) fn cron() -> AuditEvent {
    let mut ev = AuditEvent::unparsed(
        "Nov 20 16:00:01 bastion CRON[13]: (root) CMD (run-parts /etc/cron.hourly)".into(),
    );
    ev.host = Some("bastion".into());
    ev.program = Some("CRON".into());
    ev
}

/// The `[[filters]]` example of the issue.
pub(super) const ISSUE_EXAMPLE: &str = r#"
[[filters]]
type = "enrich"
host = "web-01"
fields = { env = "prod", team = "payments" }
tags = ["pci"]

[[filters]]
type = "redact"
failed_login_user = true
url_query_secrets = true
query_params = ["sessionid"]
fields = ["fields.card"]
patterns = [ { regex = "(?i)bearer [a-z0-9._-]+", replacement = "Bearer [REDACTED]" } ]

[[filters]]
type = "drop"
rules = [ { action = "http_request", url_prefix = "/healthz" }, { program = "CRON" }, { user_agent_regex = "kube-probe" } ]
"#;

/// A `redact` filter with the defaults.
pub(super) const REDACT: &str = "[[filters]]\ntype = \"redact\"\n";
