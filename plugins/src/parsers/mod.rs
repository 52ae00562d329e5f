//! Parsers: one frame (a line of bytes) in, one [`AuditEvent`] out.
//!
//! [`Parser`] is the single entry point. It owns the per-format state (the
//! compiled access-log formats, the syslog [`Clock`] that infers years, the
//! JSON mapping) and never fails: a line that no parser understands becomes
//! an `unparsed` event that keeps the raw text and whatever the framing
//! found (program, host, time). Invalid UTF-8 is escaped losslessly (see
//! [`auditship_core::lossless`]) and flagged, never replaced.
//!
//! Formats:
//! * `nginx`, `apache`: access logs ([`access`]); a user-supplied
//!   `log_format`/`LogFormat` replaces the built-in list;
//! * `auth`: syslog-framed auth logs ([`syslog`] then [`auth`]);
//! * `json`: application JSON lines ([`json`]);
//! * `journald`: journal entries from `journalctl -o json` ([`journald`]);
//!   the journald input always uses it;
//! * `auditd`: the Linux audit log ([`auditd`]), whose events span several
//!   lines: see "Grouping formats" below;
//! * `auto`: per line, `{` means JSON, a syslog header means auth, anything
//!   else is tried as an access log.
//!
//! # Grouping formats
//!
//! For `auditd`, one event is several lines (records). [`Parser::parse_at`]
//! still maps a single line, but a caller that reads a stream uses
//! [`Parser::push_line`] instead: lines go in with their stream and
//! position, and [`Grouped`] events come out, each with the position after
//! its last line, once the group is complete (see [`auditd::group`] for the
//! rule and why positions stay safe). [`Parser::flush_idle`] must be called
//! regularly (the idle timeout ends groups nothing follows),
//! [`Parser::flush_stream`] or [`Parser::flush_all`] at the end of input,
//! [`Parser::defer_position`] before recording a position that comes
//! without a line, and [`Parser::forget_stream`] when a stream is gone. For
//! the other formats, `push_line` emits each line's event at once and the
//! rest does nothing, so a caller may use one API for every format.

pub mod access;
pub mod auditd;
pub mod auth;
pub mod journald;
pub mod json;
pub mod syslog;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use auditship_core::{lossless, AuditEvent, Flags, Timestamp};

use access::{AccessParser, CompiledFormat, Flavor, FormatError};
pub use auditd::{Grouped, StreamLine, DEFAULT_GROUP_TIMEOUT};
use syslog::{Clock, YearMode, Zone};

/// Which parser to apply to lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Detect per line.
    #[default]
    Auto,
    /// nginx access logs.
    Nginx,
    /// Apache access logs.
    Apache,
    /// Syslog-framed auth logs.
    Auth,
    /// JSON lines.
    Json,
    /// Journal entries as `journalctl -o json` prints them.
    Journald,
    /// The Linux audit log; several lines make one event.
    Auditd,
}

impl Format {
    /// The name used on the command line, in configs and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Nginx => "nginx",
            Format::Apache => "apache",
            Format::Auth => "auth",
            Format::Json => "json",
            Format::Journald => "journald",
            Format::Auditd => "auditd",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Format::Auto,
            "nginx" => Format::Nginx,
            "apache" => Format::Apache,
            "auth" | "syslog" => Format::Auth,
            "json" => Format::Json,
            "journald" => Format::Journald,
            "auditd" | "audit" => Format::Auditd,
            other => {
                return Err(format!(
                    "unknown format {other:?}; expected auto, nginx, apache, auth, json, auditd or journald"
                ))
            }
        })
    }
}

/// Everything needed to build a [`Parser`].
#[derive(Clone, Debug, Default)]
pub struct ParserOptions {
    /// Which parser to apply.
    pub format: Format,
    /// A custom nginx `log_format` string (with `format = nginx` or `auto`).
    pub nginx_log_format: Option<String>,
    /// A custom Apache `LogFormat` string (with `format = apache` or `auto`).
    pub apache_log_format: Option<String>,
    /// Year for RFC 3164 timestamps of the first line; rolls over with the file.
    /// Without it, the year is inferred from the time each line is read.
    pub year: Option<i32>,
    /// Zone for timestamps written without one: `local` (default), `UTC`,
    /// `+HH:MM`, or an IANA name.
    pub timezone: Option<String>,
    /// JSON field path -> schema field.
    pub json_mapping: BTreeMap<String, String>,
    /// `auditd`: how long a stream may stay silent before its pending event
    /// is emitted (default [`DEFAULT_GROUP_TIMEOUT`]).
    pub group_timeout: Option<Duration>,
}

/// A configuration a parser cannot be built from.
#[derive(Debug, thiserror::Error)]
pub enum ParserError {
    /// The access-log format string does not compile.
    #[error(transparent)]
    LogFormat(#[from] FormatError),
    /// The time zone is unknown.
    #[error("{0}")]
    TimeZone(String),
    /// The JSON mapping names an unknown schema field.
    #[error("{0}")]
    JsonMapping(String),
}

/// Counts of what a parser saw, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Lines parsed into a known event.
    pub parsed: u64,
    /// Lines that became `unparsed` events.
    pub unparsed: u64,
    /// Lines that were not valid UTF-8 and were escaped.
    pub escaped: u64,
}

/// Turns lines into events. See the module docs.
#[derive(Clone, Debug)]
pub struct Parser {
    format: Format,
    access: AccessParser,
    clock: Clock,
    json: json::JsonMapping,
    auditd: auditd::Grouper,
    /// Groups finished by the last call, before they become events.
    finished: Vec<auditd::Finished>,
    stats: ParseStats,
}

impl Parser {
    /// Builds a parser, compiling formats and resolving the time zone.
    pub fn new(opts: &ParserOptions) -> Result<Self, ParserError> {
        let access = match (opts.format, &opts.nginx_log_format, &opts.apache_log_format) {
            (Format::Apache, _, Some(f)) => {
                AccessParser::custom(CompiledFormat::apache("custom", f)?, Some("apache"))
            }
            (Format::Nginx, Some(f), _) => {
                AccessParser::custom(CompiledFormat::nginx("custom", f)?, Some("nginx"))
            }
            (Format::Auto, Some(f), _) => {
                AccessParser::custom(CompiledFormat::nginx("custom", f)?, None)
            }
            (Format::Auto, None, Some(f)) => {
                AccessParser::custom(CompiledFormat::apache("custom", f)?, None)
            }
            (Format::Nginx, None, _) => AccessParser::builtin(Flavor::Nginx),
            (Format::Apache, _, None) => AccessParser::builtin(Flavor::Apache),
            _ => AccessParser::builtin(Flavor::Any),
        };
        let zone = Zone::parse(opts.timezone.as_deref().unwrap_or("local"))
            .map_err(ParserError::TimeZone)?;
        let year = match opts.year {
            Some(year) => YearMode::Fixed {
                year,
                last_month: None,
            },
            None => YearMode::Reference,
        };
        Ok(Parser {
            format: opts.format,
            access,
            clock: Clock::new(zone, year),
            json: json::JsonMapping::new(&opts.json_mapping).map_err(ParserError::JsonMapping)?,
            auditd: auditd::Grouper::new(opts.group_timeout.unwrap_or(DEFAULT_GROUP_TIMEOUT)),
            finished: Vec::new(),
            stats: ParseStats::default(),
        })
    }

    /// What this parser has seen so far.
    pub fn stats(&self) -> ParseStats {
        self.stats
    }

    /// The format this parser applies.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Parses `line` (without its newline), inferring years relative to now.
    pub fn parse(&mut self, line: &[u8]) -> AuditEvent {
        self.parse_at(line, Timestamp::now_utc())
    }

    /// Parses `line` (without its newline); `reference` is when it was read.
    pub fn parse_at(&mut self, line: &[u8], reference: Timestamp) -> AuditEvent {
        let (text, escaped) = lossless::to_text(line);
        let t = text.trim_end_matches(['\r', '\n']);
        let ev = match self.format {
            Format::Nginx | Format::Apache => self.access.parse(t),
            Format::Auth => Some(self.auth(t, reference)),
            Format::Json => json::parse(t, &self.json),
            Format::Journald => journald::parse(t),
            Format::Auditd => Some(auditd::single(line)),
            Format::Auto => {
                if t.starts_with('{') {
                    json::parse(t, &self.json)
                } else if syslog::looks_like_syslog(t) {
                    Some(self.auth(t, reference))
                } else {
                    self.access.parse(t)
                }
            }
        };
        let mut ev = ev.unwrap_or_else(|| AuditEvent::unparsed(String::new()));
        if ev.is_unparsed() {
            self.stats.unparsed += 1;
        } else {
            self.stats.parsed += 1;
        }
        if escaped {
            self.stats.escaped += 1;
            ev.flags.insert(Flags::RAW_ESCAPED);
        }
        ev.raw = text.into_owned();
        ev
    }

    /// Whether this parser makes one event of several lines (`auditd`), so
    /// that its caller must use [`Parser::push_line`] and the flushes (see
    /// the module docs).
    pub fn groups_lines(&self) -> bool {
        self.format == Format::Auditd
    }

    /// Takes one line of a stream; the events it completes are appended to
    /// `out` in order, each with the position after its last line. `now`
    /// drives the idle timeout; `reference` is when the line was read.
    pub fn push_line(
        &mut self,
        line: StreamLine<'_>,
        now: Instant,
        reference: Timestamp,
        out: &mut Vec<Grouped>,
    ) {
        if !self.groups_lines() {
            let mut event = self.parse_at(line.bytes, reference);
            event.flags.insert(line.flags);
            event.source = Some(line.source.to_string());
            out.push(Grouped {
                stream: line.stream.to_vec(),
                position: line.position.to_vec(),
                observed: reference,
                event,
            });
            return;
        }
        if auditd::record::header(line.bytes).is_some() || line.flags.contains(Flags::SPLIT) {
            self.stats.parsed += 1;
        } else {
            self.stats.unparsed += 1;
        }
        if std::str::from_utf8(line.bytes).is_err() {
            self.stats.escaped += 1;
        }
        self.auditd.push(&line, now, reference, &mut self.finished);
        self.drain(out);
    }

    /// Emits the pending events of streams silent for the idle timeout.
    pub fn flush_idle(&mut self, now: Instant, out: &mut Vec<Grouped>) {
        self.auditd.flush_idle(now, &mut self.finished);
        self.drain(out);
    }

    /// Emits `stream`'s pending event, if any.
    pub fn flush_stream(&mut self, stream: &[u8], out: &mut Vec<Grouped>) {
        self.auditd.flush_stream(stream, &mut self.finished);
        self.drain(out);
    }

    /// Emits every pending event (end of input).
    pub fn flush_all(&mut self, out: &mut Vec<Grouped>) {
        self.auditd.flush_all(&mut self.finished);
        self.drain(out);
    }

    /// For a position that comes without a line: `true` if `stream` has a
    /// pending event, which then takes the position (record nothing now);
    /// `false` if the caller should record it.
    pub fn defer_position(&mut self, stream: &[u8], position: &[u8]) -> bool {
        self.auditd.defer_position(stream, position)
    }

    /// Whether `stream` has a pending event.
    pub fn has_pending(&self, stream: &[u8]) -> bool {
        self.auditd.has_pending(stream)
    }

    /// Drops what is kept for `stream` (call [`Parser::flush_stream`] first
    /// to keep its pending event).
    pub fn forget_stream(&mut self, stream: &[u8]) {
        self.auditd.forget(stream);
    }

    fn drain(&mut self, out: &mut Vec<Grouped>) {
        out.extend(self.finished.drain(..).map(auditd::finish));
    }

    fn auth(&mut self, t: &str, reference: Timestamp) -> AuditEvent {
        let Some(h) = syslog::parse(t, &mut self.clock, reference) else {
            return AuditEvent::unparsed(String::new());
        };
        let mut ev =
            auth::parse(h.program, h.msg).unwrap_or_else(|| AuditEvent::unparsed(String::new()));
        ev.ts = h.ts;
        ev.raw_ts = Some(h.raw_ts.to_string()).filter(|s| !s.is_empty() && s != "-");
        ev.host = h.host.map(str::to_string);
        ev.program = h.program.map(str::to_string);
        ev.pid = h.pid;
        if let Some(m) = h.msgid {
            ev.fields.insert("syslog_msgid".into(), m.to_string());
        }
        if let Some(sd) = h.structured_data {
            ev.fields
                .insert("syslog_structured_data".into(), sd.to_string());
        }
        if let Some((facility, severity)) = h.pri {
            ev.fields
                .insert("syslog_facility".into(), facility.to_string());
            ev.fields
                .insert("syslog_severity".into(), severity.to_string());
        }
        ev
    }
}

#[cfg(test)]
mod tests;
