//! The `enrich` filter: adds a host name, static fields and tags.
//!
//! * `host` is set on events that have none (a syslog line already names
//!   its host); with `overwrite = true` it replaces the event's host.
//! * Each static field is added to `fields` unless the event already has a
//!   value under that name (again, `overwrite = true` replaces it).
//! * Tags are merged into `fields["tags"]`, a comma-separated list: tags
//!   already present are not repeated, new ones are appended in config
//!   order. Existing text is kept as written.
//!
//! With `host_from_system = true` and no `host`, the host name is read once
//! when the chain is built ([`system_hostname`]), never per event.

use std::collections::BTreeMap;

use auditship_core::AuditEvent;

use super::config::EnrichConfig;
use super::error::FilterError;
use super::{REDACTED_FIELD, TAGS_FIELD};

/// A validated `enrich` filter.
#[derive(Clone, Debug)]
pub struct EnrichFilter {
    host: Option<String>,
    fields: BTreeMap<String, String>,
    tags: Vec<String>,
    overwrite: bool,
}

impl EnrichConfig {
    /// Stage two: checks the values. `system_host` is used when
    /// `host_from_system` is set and `host` is not; `index` names the
    /// filter in errors.
    pub fn validate(
        &self,
        index: usize,
        system_host: Option<&str>,
    ) -> Result<EnrichFilter, FilterError> {
        let host = match (&self.host, self.host_from_system) {
            (Some(h), _) => {
                if h.is_empty() || h.chars().any(char::is_whitespace) {
                    return Err(FilterError::invalid(
                        index,
                        "host",
                        format!("{h:?} is not a host name"),
                    ));
                }
                Some(h.clone())
            }
            (None, true) => match system_host.map(str::trim).filter(|h| !h.is_empty()) {
                Some(h) => Some(h.to_owned()),
                None => {
                    return Err(FilterError::Hostname {
                        index,
                        key: "host_from_system".into(),
                    })
                }
            },
            (None, false) => None,
        };
        for name in self.fields.keys() {
            let key = format!("fields.{name}");
            if name.is_empty() {
                return Err(FilterError::invalid(index, "fields", "empty field name"));
            }
            if name == TAGS_FIELD {
                return Err(FilterError::invalid(
                    index,
                    key,
                    "use the `tags` key for tags",
                ));
            }
            if name == REDACTED_FIELD {
                return Err(FilterError::invalid(
                    index,
                    key,
                    "reserved: set by the redact filter",
                ));
            }
        }
        let mut tags: Vec<String> = Vec::with_capacity(self.tags.len());
        for (i, tag) in self.tags.iter().enumerate() {
            if tag.is_empty() || tag.contains(',') || tag.trim() != tag {
                return Err(FilterError::invalid(
                    index,
                    format!("tags[{i}]"),
                    format!(
                        "{tag:?}: a tag must be non-empty, without commas or surrounding spaces"
                    ),
                ));
            }
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        Ok(EnrichFilter {
            host,
            fields: self.fields.clone(),
            tags,
            overwrite: self.overwrite,
        })
    }
}

impl EnrichFilter {
    /// Adds the host, fields and tags to `ev`.
    pub fn apply(&self, ev: &mut AuditEvent) {
        if let Some(host) = &self.host {
            match &mut ev.host {
                Some(h) if self.overwrite => h.clone_from(host),
                Some(_) => {}
                None => ev.host = Some(host.clone()),
            }
        }
        for (name, value) in &self.fields {
            match ev.fields.get_mut(name) {
                Some(v) if self.overwrite => v.clone_from(value),
                Some(_) => {}
                None => {
                    ev.fields.insert(name.clone(), value.clone());
                }
            }
        }
        if !self.tags.is_empty() {
            self.merge_tags(ev);
        }
    }

    fn merge_tags(&self, ev: &mut AuditEvent) {
        let existing = ev.fields.get(TAGS_FIELD).map(String::as_str).unwrap_or("");
        let has = |t: &str| existing.split(',').any(|e| e.trim() == t);
        if self.tags.iter().all(|t| has(t)) {
            return;
        }
        let mut merged = match existing.trim() {
            "" => String::new(),
            _ => existing.to_owned(),
        };
        for tag in &self.tags {
            if !has(tag) {
                if !merged.is_empty() {
                    merged.push(',');
                }
                merged.push_str(tag);
            }
        }
        ev.fields.insert(TAGS_FIELD.to_owned(), merged);
    }
}

/// This machine's host name: `/proc/sys/kernel/hostname`, else the first
/// line of `/etc/hostname`, trimmed; `None` when neither gives a name.
pub fn system_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .into_iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|text| {
            let name = text.lines().next()?.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
}
