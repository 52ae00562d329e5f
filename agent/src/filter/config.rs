//! Filter configuration, stage one: what the `[[filters]]` tables of the
//! agent's TOML config deserialize into.
//!
//! These types only describe; they hold strings, not compiled regexes.
//! Unknown keys and wrongly typed values are rejected here by serde
//! (`deny_unknown_fields`). Stage two, the `validate` methods and
//! [`crate::filter::build_chain`], checks the values and compiles them into
//! the runtime filters.
//!
//! ```toml
//! [[filters]]
//! type = "enrich"
//! host = "web-01"
//! fields = { env = "prod", team = "payments" }
//! tags = ["pci"]
//!
//! [[filters]]
//! type = "redact"
//! query_params = ["sessionid"]
//! fields = ["fields.card"]
//! patterns = [ { regex = "(?i)bearer [a-z0-9._-]+", replacement = "Bearer [REDACTED]" } ]
//!
//! [[filters]]
//! type = "drop"
//! rules = [ { action = "http_request", url_prefix = "/healthz" }, { program = "CRON" } ]
//! ```

use std::collections::BTreeMap;

use auditship_core::{Category, Outcome};
use serde::Deserialize;

use super::chain::Filter;
use super::error::FilterError;

/// One `[[filters]]` table; `type` says which filter it is.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FilterConfig {
    /// `type = "enrich"`: add host, tags and static fields.
    Enrich(EnrichConfig),
    /// `type = "redact"`: mask secrets by field, query parameter or regex.
    Redact(RedactConfig),
    /// `type = "drop"`: discard events matching a rule, counting them.
    Drop(DropConfig),
}

impl FilterConfig {
    /// The filter's kind as written in `type`: `enrich`, `redact` or `drop`.
    pub fn kind(&self) -> &'static str {
        match self {
            FilterConfig::Enrich(_) => "enrich",
            FilterConfig::Redact(_) => "redact",
            FilterConfig::Drop(_) => "drop",
        }
    }

    /// Whether validating this filter needs the system host name.
    pub fn needs_system_host(&self) -> bool {
        matches!(self, FilterConfig::Enrich(c) if c.host.is_none() && c.host_from_system)
    }

    /// Stage two: checks the values and compiles the runtime filter.
    ///
    /// `index` is the filter's position in the list, used in errors.
    /// `system_host` is the host name for `host_from_system`; reading it is
    /// left to the caller so that validation stays pure.
    pub fn validate(&self, index: usize, system_host: Option<&str>) -> Result<Filter, FilterError> {
        Ok(match self {
            FilterConfig::Enrich(c) => Filter::Enrich(c.validate(index, system_host)?),
            FilterConfig::Redact(c) => Filter::Redact(c.validate(index)?),
            FilterConfig::Drop(c) => Filter::Drop(c.validate(index)?),
        })
    }
}

/// `type = "enrich"`: adds the host, static fields and tags to every event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// Host name to set on events (`host`).
    #[serde(default)]
    pub host: Option<String>,
    /// With no `host`, use this machine's host name, read once at startup
    /// from `/proc/sys/kernel/hostname` (fallback `/etc/hostname`).
    #[serde(default)]
    pub host_from_system: bool,
    /// Static fields added to the event's `fields`. The names `tags` and
    /// `redacted` are reserved.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Tags merged into `fields["tags"]`, a comma-separated list without
    /// duplicates. A tag may not be empty or contain a comma.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Replace an event's existing `host` and existing `fields` entries.
    /// Without it (the default) values the source already set are kept.
    #[serde(default)]
    pub overwrite: bool,
}

/// `type = "redact"`: masks secrets so they never reach the queue or store.
///
/// Every redaction replaces the secret in its field *and* in `raw`, and
/// marks the event with `fields["redacted"] = "true"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// On failed authentications (category `authentication`, outcome
    /// `failure`) whose `actor.user` looks like a password rather than a
    /// login name, replace it with `[REDACTED]`, in `raw` too. See
    /// [`crate::filter::looks_like_password`] for the heuristic. Default on.
    #[serde(default = "yes")]
    pub failed_login_user: bool,
    /// Replace the values of secret query parameters (`token`,
    /// `access_token`, `password`, `passwd`, `pwd`, `secret`, `api_key`,
    /// `apikey`, `key`, `auth`, `session`, `sig`, `signature`, and
    /// `query_params`; case-insensitive) in `target.url`, `http.referrer`,
    /// `http.request` and `raw` with `[REDACTED]`. Default on.
    #[serde(default = "yes")]
    pub url_query_secrets: bool,
    /// Extra query parameter names to redact (case-insensitive), added to the
    /// built-in list. Needs `url_query_secrets`.
    #[serde(default)]
    pub query_params: Vec<String>,
    /// Schema fields whose whole value is replaced with `[REDACTED]`:
    /// `actor.user`, `target.user`, `target.url`, `user_agent`, `command`,
    /// `reason`, `src_addr`, `http.referrer`, or `fields.NAME`.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Regex replacements applied to `raw` and to every string field listed
    /// under `fields` (all `fields.*` values included).
    #[serde(default)]
    pub patterns: Vec<PatternConfig>,
}

fn yes() -> bool {
    true
}

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            failed_login_user: true,
            url_query_secrets: true,
            query_params: Vec::new(),
            fields: Vec::new(),
            patterns: Vec::new(),
        }
    }
}

/// One regex replacement of a `redact` filter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// The regular expression (Rust `regex` syntax; `(?i)` for case-insensitive).
    pub regex: String,
    /// What each match becomes. `$1`, `${name}` insert capture groups and
    /// `$$` is a literal `$`; a reference to a group the regex lacks is an
    /// error. Default `[REDACTED]`.
    #[serde(default = "redacted_marker")]
    pub replacement: String,
}

fn redacted_marker() -> String {
    super::REDACTED.to_owned()
}

/// `type = "drop"`: discards noise. An event is dropped when *all*
/// conditions of *any* rule match.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropConfig {
    /// The rules, at least one.
    pub rules: Vec<DropRuleConfig>,
}

/// One drop rule: every condition that is set must match, and at least one
/// must be set. A condition on a field the event lacks does not match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRuleConfig {
    /// Event category equals this (`web`, `authentication`…).
    #[serde(default)]
    pub category: Option<Category>,
    /// Event action equals this (`http_request`, `ssh_login`…).
    #[serde(default)]
    pub action: Option<String>,
    /// Event outcome equals this (`success`, `failure`, `unknown`).
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// `program` equals this, case-sensitively (`CRON`).
    #[serde(default)]
    pub program: Option<String>,
    /// `host` equals this.
    #[serde(default)]
    pub host: Option<String>,
    /// `actor.user` equals this.
    #[serde(default)]
    pub actor_user: Option<String>,
    /// `src_ip` equals this address, or lies in this CIDR block
    /// (`10.0.0.0/8`, `2001:db8::/32`). IPv4-mapped IPv6 addresses match
    /// IPv4 blocks.
    #[serde(default)]
    pub src_ip: Option<String>,
    /// `target.url` starts with this string (`/healthz`).
    #[serde(default)]
    pub url_prefix: Option<String>,
    /// `target.url` matches this regex (unanchored).
    #[serde(default)]
    pub url_regex: Option<String>,
    /// `user_agent` matches this regex (unanchored).
    #[serde(default)]
    pub user_agent_regex: Option<String>,
    /// `raw` matches this regex (unanchored).
    #[serde(default)]
    pub raw_regex: Option<String>,
    /// `http.status` is one of these codes (100–599).
    #[serde(default)]
    pub status: Option<Vec<u16>>,
}
