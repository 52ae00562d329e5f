//! The `drop` filter: discards noise such as health checks, cron chatter or
//! monitoring probes.
//!
//! An event is dropped when *all* conditions of *any* rule match. A
//! condition on a field the event lacks does not match (a rule with
//! `url_prefix` never drops an event without `target.url`). String
//! conditions compare exactly and case-sensitively; regexes are unanchored
//! searches; `src_ip` takes an address or a CIDR block (see
//! [`super::cidr`]). Within a rule, cheap comparisons run before regexes,
//! and a rule stops at its first failing condition.
//!
//! Dropped events are counted per filter by the chain
//! ([`crate::filter::FilterChain::dropped`]).

use auditship_core::{AuditEvent, Category, Outcome};
use regex::Regex;

use super::config::{DropConfig, DropRuleConfig};
use super::error::{compile_regex, FilterError};
use auditship_core::cidr::IpNet;

/// A validated `drop` filter.
#[derive(Clone, Debug)]
pub struct DropFilter {
    rules: Vec<DropRule>,
}

/// One compiled rule; `None` means "no condition on this field".
#[derive(Clone, Debug, Default)]
struct DropRule {
    category: Option<Category>,
    action: Option<String>,
    outcome: Option<Outcome>,
    program: Option<String>,
    host: Option<String>,
    actor_user: Option<String>,
    src_ip: Option<IpNet>,
    url_prefix: Option<String>,
    status: Option<Vec<u16>>,
    url_regex: Option<Regex>,
    user_agent_regex: Option<Regex>,
    raw_regex: Option<Regex>,
}

impl DropConfig {
    /// Stage two: compiles every rule; `index` names the filter in errors.
    pub fn validate(&self, index: usize) -> Result<DropFilter, FilterError> {
        if self.rules.is_empty() {
            return Err(FilterError::invalid(
                index,
                "rules",
                "no rules: this filter would drop nothing",
            ));
        }
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| rule.validate(index, i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DropFilter { rules })
    }
}

impl DropRuleConfig {
    fn validate(&self, index: usize, rule: usize) -> Result<DropRule, FilterError> {
        let key = |name: &str| format!("rules[{rule}].{name}");
        let regex = |name: &str, pattern: &Option<String>| {
            pattern
                .as_deref()
                .map(|p| compile_regex(index, key(name), p))
                .transpose()
        };
        let src_ip = self
            .src_ip
            .as_deref()
            .map(|s| {
                IpNet::parse(s).map_err(|what| FilterError::invalid(index, key("src_ip"), what))
            })
            .transpose()?;
        if let Some(codes) = &self.status {
            if codes.is_empty() {
                return Err(FilterError::invalid(
                    index,
                    key("status"),
                    "empty list: this condition would never match",
                ));
            }
            if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
                return Err(FilterError::invalid(
                    index,
                    key("status"),
                    format!("{bad} is not an HTTP status (100-599)"),
                ));
            }
        }
        let compiled = DropRule {
            category: self.category,
            action: self.action.clone(),
            outcome: self.outcome,
            program: self.program.clone(),
            host: self.host.clone(),
            actor_user: self.actor_user.clone(),
            src_ip,
            url_prefix: self.url_prefix.clone(),
            status: self.status.clone(),
            url_regex: regex("url_regex", &self.url_regex)?,
            user_agent_regex: regex("user_agent_regex", &self.user_agent_regex)?,
            raw_regex: regex("raw_regex", &self.raw_regex)?,
        };
        if compiled.is_empty() {
            return Err(FilterError::EmptyRule {
                index,
                key: format!("rules[{rule}]"),
            });
        }
        Ok(compiled)
    }
}

impl DropFilter {
    /// Whether `ev` matches one of the rules and is to be dropped.
    pub fn matches(&self, ev: &AuditEvent) -> bool {
        self.rules.iter().any(|r| r.matches(ev))
    }
}

impl DropRule {
    fn is_empty(&self) -> bool {
        let DropRule {
            category,
            action,
            outcome,
            program,
            host,
            actor_user,
            src_ip,
            url_prefix,
            status,
            url_regex,
            user_agent_regex,
            raw_regex,
        } = self;
        category.is_none()
            && action.is_none()
            && outcome.is_none()
            && program.is_none()
            && host.is_none()
            && actor_user.is_none()
            && src_ip.is_none()
            && url_prefix.is_none()
            && status.is_none()
            && url_regex.is_none()
            && user_agent_regex.is_none()
            && raw_regex.is_none()
    }

    fn matches(&self, ev: &AuditEvent) -> bool {
        fn eq(want: &Option<String>, have: Option<&str>) -> bool {
            want.as_deref().is_none_or(|w| have == Some(w))
        }
        fn re(want: &Option<Regex>, have: Option<&str>) -> bool {
            want.as_ref()
                .is_none_or(|r| have.is_some_and(|h| r.is_match(h)))
        }
        let url = ev.target.url.as_deref();
        self.category.is_none_or(|c| ev.category == c)
            && self.outcome.is_none_or(|o| ev.outcome == o)
            && eq(&self.action, Some(&ev.action))
            && eq(&self.program, ev.program.as_deref())
            && eq(&self.host, ev.host.as_deref())
            && eq(&self.actor_user, ev.actor.user.as_deref())
            && self
                .src_ip
                .is_none_or(|net| ev.src_ip.is_some_and(|ip| net.contains(ip)))
            && self
                .url_prefix
                .as_deref()
                .is_none_or(|p| url.is_some_and(|u| u.starts_with(p)))
            && self.status.as_ref().is_none_or(|codes| {
                ev.http
                    .as_ref()
                    .and_then(|h| h.status)
                    .is_some_and(|s| codes.contains(&s))
            })
            && re(&self.url_regex, url)
            && re(&self.user_agent_regex, ev.user_agent.as_deref())
            && re(&self.raw_regex, Some(&ev.raw))
    }
}
