//! The `redact` filter: masks secrets so that they never reach the queue,
//! the wire or the store.
//!
//! Four kinds of redaction run in this order:
//!
//! 1. `failed_login_user`: a failed authentication whose `actor.user`
//!    [looks like a password](super::looks_like_password) gets
//!    `actor.user = "[REDACTED]"`.
//! 2. `fields`: listed schema fields have their whole value replaced with
//!    `[REDACTED]`.
//! 3. `url_query_secrets`: secret query parameter values are masked in
//!    `target.url`, `http.referrer`, `http.request` and `raw` (see
//!    [`super::query`]).
//! 4. `patterns`: each regex replacement runs over `raw` and over every text
//!    field: `actor.user`, `target.user`, `target.url`, `user_agent`,
//!    `command`, `reason`, `src_addr`, `http.referrer`, `http.request` and
//!    every `fields.*` value.
//!
//! **Consistency.** `raw` is the original line, so a secret removed from a
//! field must go from `raw` too. Whatever steps 1, 2 and 4 take out of a
//! field is also replaced, as literal text, in `raw` and in the other text
//! fields (a `fields = ["actor.user"]` rule therefore also masks that user
//! name wherever else it appears in the line), and in `raw` in uppercase hex
//! as well (the audit log's spelling of untrusted strings, e.g. a password
//! with a space typed at a login prompt: `acct=48756E74657232…`). A secret
//! that appears in `raw` only in another spelling (escaped,
//! percent-encoded) cannot be found there; use a `patterns` rule for those.
//!
//! **Marking.** An event that any step changed gets
//! `fields["redacted"] = "true"`, so that auditors can tell a masked line
//! from an original one. [`crate::filter::FilterChain::redacted`] counts
//! such events.
//!
//! **Cost.** An event with nothing to redact is not copied: the login check
//! only runs on failed authentications, the query scan only on text
//! containing `?`, and a pattern is only expanded where it matched.

use std::borrow::Cow;

use auditship_core::{AuditEvent, Category, Outcome};
use regex::Regex;

use super::config::RedactConfig;
use super::error::{compile_regex, FilterError};
use super::login::looks_like_password;
use super::query::QueryRedactor;
use super::{REDACTED, REDACTED_FIELD};

/// A validated `redact` filter.
#[derive(Clone, Debug)]
pub struct RedactFilter {
    failed_login_user: bool,
    query: Option<QueryRedactor>,
    fields: Vec<FieldRef>,
    patterns: Vec<Pattern>,
}

/// A compiled `patterns` entry.
#[derive(Clone, Debug)]
struct Pattern {
    regex: Regex,
    replacement: String,
}

/// A schema field that `fields` may name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FieldRef {
    ActorUser,
    TargetUser,
    TargetUrl,
    UserAgent,
    Command,
    Reason,
    SrcAddr,
    HttpReferrer,
    Extra(String),
}

/// The names `fields` accepts, for error messages.
const FIELD_NAMES: &str = "actor.user, target.user, target.url, user_agent, command, reason, \
                           src_addr, http.referrer or fields.NAME";

impl FieldRef {
    fn parse(name: &str) -> Option<FieldRef> {
        Some(match name {
            "actor.user" => FieldRef::ActorUser,
            "target.user" => FieldRef::TargetUser,
            "target.url" => FieldRef::TargetUrl,
            "user_agent" => FieldRef::UserAgent,
            "command" => FieldRef::Command,
            "reason" => FieldRef::Reason,
            "src_addr" => FieldRef::SrcAddr,
            "http.referrer" => FieldRef::HttpReferrer,
            other => {
                let extra = other.strip_prefix("fields.")?;
                if extra.is_empty() || extra == REDACTED_FIELD {
                    return None;
                }
                FieldRef::Extra(extra.to_owned())
            }
        })
    }

    fn get_mut<'e>(&self, ev: &'e mut AuditEvent) -> Option<&'e mut String> {
        match self {
            FieldRef::ActorUser => ev.actor.user.as_mut(),
            FieldRef::TargetUser => ev.target.user.as_mut(),
            FieldRef::TargetUrl => ev.target.url.as_mut(),
            FieldRef::UserAgent => ev.user_agent.as_mut(),
            FieldRef::Command => ev.command.as_mut(),
            FieldRef::Reason => ev.reason.as_mut(),
            FieldRef::SrcAddr => ev.src_addr.as_mut(),
            FieldRef::HttpReferrer => ev.http.as_mut()?.referrer.as_mut(),
            FieldRef::Extra(name) => ev.fields.get_mut(name),
        }
    }
}

impl RedactConfig {
    /// Stage two: checks names and compiles the patterns; `index` names the
    /// filter in errors.
    pub fn validate(&self, index: usize) -> Result<RedactFilter, FilterError> {
        if !self.url_query_secrets && !self.query_params.is_empty() {
            return Err(FilterError::invalid(
                index,
                "query_params",
                "has no effect with url_query_secrets = false",
            ));
        }
        for (i, name) in self.query_params.iter().enumerate() {
            if !QueryRedactor::valid_name(name) {
                return Err(FilterError::invalid(
                    index,
                    format!("query_params[{i}]"),
                    format!("{name:?} is not a query parameter name"),
                ));
            }
        }
        let fields = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, name)| {
                FieldRef::parse(name).ok_or_else(|| {
                    FilterError::invalid(
                        index,
                        format!("fields[{i}]"),
                        format!("unknown field {name:?}; expected {FIELD_NAMES}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let patterns = self
            .patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let regex = compile_regex(index, format!("patterns[{i}].regex"), &p.regex)?;
                if regex.is_match("") || regex.find_iter("a b-1.").any(|m| m.is_empty()) {
                    return Err(FilterError::invalid(
                        index,
                        format!("patterns[{i}].regex"),
                        format!("{:?} can match empty text", p.regex),
                    ));
                }
                check_replacement(&regex, &p.replacement).map_err(|what| {
                    FilterError::invalid(index, format!("patterns[{i}].replacement"), what)
                })?;
                Ok(Pattern {
                    regex,
                    replacement: p.replacement.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RedactFilter {
            failed_login_user: self.failed_login_user,
            query: self
                .url_query_secrets
                .then(|| QueryRedactor::new(self.query_params.clone())),
            fields,
            patterns,
        })
    }
}

/// Checks that every `$name`, `${name}` or `$N` in `replacement` names a
/// capture group of `regex`, following the `regex` crate's expansion rules.
fn check_replacement(regex: &Regex, replacement: &str) -> Result<(), String> {
    let b = replacement.as_bytes();
    let mut i = 0;
    while let Some(off) = replacement[i..].find('$') {
        let d = i + off + 1;
        let (name, next) = match b.get(d) {
            Some(b'$') => (&replacement[d..d], d + 1),
            Some(b'{') => match replacement[d + 1..].find('}') {
                Some(e) => (&replacement[d + 1..d + 1 + e], d + 2 + e),
                None => (&replacement[d..d], d),
            },
            _ => {
                let len = b[d..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (&replacement[d..d + len], d + len)
            }
        };
        let known = match name.parse::<usize>() {
            _ if name.is_empty() => true,
            Ok(n) => n < regex.captures_len(),
            Err(_) => regex.capture_names().flatten().any(|n| n == name),
        };
        if !known {
            return Err(format!(
                "${name} names no capture group of the regex (write $$ for a literal $, \
                 ${{1}}x to put text right after a group)"
            ));
        }
        i = next;
    }
    Ok(())
}

impl RedactFilter {
    /// Redacts `ev` in place; returns whether anything was changed (and
    /// `fields["redacted"]` set).
    pub fn apply(&self, ev: &mut AuditEvent) -> bool {
        let mut changed = false;
        // Literal texts taken out of fields, to be taken out of `raw` too.
        let mut secrets: Vec<(String, String)> = Vec::new();

        if self.failed_login_user
            && ev.category == Category::Authentication
            && ev.outcome == Outcome::Failure
        {
            if let Some(user) = ev.actor.user.as_mut() {
                if user != REDACTED && looks_like_password(user) {
                    secrets.push((
                        std::mem::replace(user, REDACTED.to_owned()),
                        REDACTED.into(),
                    ));
                }
            }
        }
        for field in &self.fields {
            if let Some(v) = field.get_mut(ev) {
                if !v.is_empty() && v != REDACTED {
                    secrets.push((std::mem::replace(v, REDACTED.to_owned()), REDACTED.into()));
                }
            }
        }
        if !secrets.is_empty() {
            changed = true;
            remove_everywhere(ev, &secrets);
            secrets.clear();
        }

        if let Some(q) = &self.query {
            changed |= rewrite(&mut ev.raw, |s| q.redact(s));
            if let Some(url) = ev.target.url.as_mut() {
                changed |= rewrite(url, |s| q.redact(s));
            }
            if let Some(http) = ev.http.as_mut() {
                for v in [http.referrer.as_mut(), http.request.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    changed |= rewrite(v, |s| q.redact(s));
                }
            }
        }

        for p in &self.patterns {
            changed |= rewrite(&mut ev.raw, |s| p.replace(s));
            text_fields(ev, |v| {
                if p.regex.is_match(v) {
                    for caps in p.regex.captures_iter(v) {
                        let mut expanded = String::new();
                        caps.expand(&p.replacement, &mut expanded);
                        let found = &caps[0];
                        if !found.is_empty() && found != expanded {
                            secrets.push((found.to_owned(), expanded));
                        }
                    }
                    changed |= rewrite(v, |s| p.replace(s));
                }
            });
        }
        if !secrets.is_empty() {
            remove_everywhere(ev, &secrets);
        }

        if changed {
            ev.fields
                .insert(REDACTED_FIELD.to_owned(), "true".to_owned());
        }
        changed
    }
}

impl Pattern {
    /// `s` with every match replaced, or `None` when nothing changed.
    fn replace(&self, s: &str) -> Option<String> {
        match self.regex.replace_all(s, self.replacement.as_str()) {
            Cow::Owned(new) if new != s => Some(new),
            _ => None,
        }
    }
}

/// Replaces `*s` with `f(s)` when that gives a new text; returns whether it did.
fn rewrite(s: &mut String, f: impl FnOnce(&str) -> Option<String>) -> bool {
    match f(s) {
        Some(new) => {
            *s = new;
            true
        }
        None => false,
    }
}

/// Replaces each secret with its replacement in `raw` and in every text
/// field, leaving alone values that already are a replacement.
fn remove_everywhere(ev: &mut AuditEvent, secrets: &[(String, String)]) {
    let replace = |v: &mut String| {
        for (secret, replacement) in secrets {
            if v != replacement && v.contains(secret.as_str()) {
                *v = v.replace(secret.as_str(), replacement);
            }
        }
    };
    replace(&mut ev.raw);
    // The Linux audit log writes an untrusted string holding a space, a
    // quote or a non-ASCII byte in uppercase hex (`acct=48756E…`): take the
    // secret out in that spelling too, keeping the record well-formed.
    for (secret, replacement) in secrets {
        if secret.len() >= 3 {
            let hex = upper_hex(secret.as_bytes());
            if ev.raw.contains(&hex) {
                ev.raw = ev.raw.replace(&hex, &upper_hex(replacement.as_bytes()));
            }
        }
    }
    text_fields(ev, replace);
}

fn upper_hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(b.len() * 2);
    for &c in b {
        s.push(HEX[usize::from(c >> 4)] as char);
        s.push(HEX[usize::from(c & 15)] as char);
    }
    s
}

/// Calls `f` on every text field redaction applies to: see the module docs.
fn text_fields(ev: &mut AuditEvent, mut f: impl FnMut(&mut String)) {
    let fixed = [
        ev.actor.user.as_mut(),
        ev.target.user.as_mut(),
        ev.target.url.as_mut(),
        ev.user_agent.as_mut(),
        ev.command.as_mut(),
        ev.reason.as_mut(),
        ev.src_addr.as_mut(),
    ];
    for v in fixed.into_iter().flatten() {
        f(v);
    }
    if let Some(http) = ev.http.as_mut() {
        for v in [http.referrer.as_mut(), http.request.as_mut()]
            .into_iter()
            .flatten()
        {
            f(v);
        }
    }
    for (name, v) in ev.fields.iter_mut() {
        if name != REDACTED_FIELD {
            f(v);
        }
    }
}
