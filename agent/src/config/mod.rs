//! The agent's TOML configuration, in two stages.
//!
//! Stage one ([`RawConfig`]) is what the file says: serde structs that
//! reject unknown keys, with a doc comment on every field. Stage two
//! ([`RawConfig::validate`]) is a pure function into the runtime types
//! ([`AgentConfig`]); it checks everything that can be checked without
//! starting (globs, format strings, time zones, JSON mappings, filters,
//! sizes) and reports *every* problem, each with the file, line and key.
//!
//! `auditship validate --config FILE` runs both stages and nothing else.
//! A commented example of every key is in `config/agent.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use auditship_plugins::framing::Overlong;
use auditship_plugins::{Format, Parser, ParserError, ParserOptions};
use serde::Deserialize;

use crate::filter::{build_chain, FilterConfig};
use crate::input::file::{FileInputConfig, ReadFrom};
use crate::input::http::HttpConfig;
use crate::input::journald::JournaldConfig;
use crate::input::syslog::SyslogConfig;
use crate::output::CollectorOutputConfig;
use crate::queue::{Fsync, QueueConfig};

mod collector_output;
mod http;
mod journald;
mod listen;
mod syslog;

pub use collector_output::RawCollectorOutput;
pub use http::RawHttpInput;
pub use journald::RawJournaldInput;
pub use listen::RawServerTls;
pub use syslog::RawSyslogInput;
pub use tomlconf::{
    parse_bytes, parse_duration, ByteSize, ConfigError, ConfigErrors, HumanDuration, LogFormat,
    RawEncryption, RawLog, RawMetrics,
};

/// The agent configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory for the queue and all other agent state. Must be writable.
    pub state_dir: PathBuf,
    /// This agent's identity in events; defaults to the host name.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// How long SIGTERM waits for outputs to deliver what is queued (default "30s").
    #[serde(default)]
    pub shutdown_grace: Option<HumanDuration>,
    /// After this long without a sealed event, the agent seals a heartbeat
    /// event, so silence is visible at the collector (default "60s"; "0s"
    /// disables; at least "1s" otherwise).
    #[serde(default)]
    pub heartbeat: Option<HumanDuration>,
    /// The disk queue.
    #[serde(default)]
    pub queue: RawQueue,
    /// Where lines come from.
    #[serde(default)]
    pub inputs: Vec<RawInput>,
    /// Applied in order to every event, before it is queued.
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    /// Where queued events go.
    #[serde(default)]
    pub outputs: Vec<RawOutput>,
    /// The agent's own logs.
    #[serde(default)]
    pub log: RawLog,
    /// Prometheus `/metrics` and `/health` (default on, 127.0.0.1:9750).
    #[serde(default)]
    pub metrics: RawMetrics,
}

/// `[queue]`: the disk queue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// Most bytes on disk (default "1GiB").
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// Segment size (default "32MiB", at most half of max_bytes).
    #[serde(default)]
    pub segment_bytes: Option<ByteSize>,
    /// "always" (default): nothing is acknowledged before the fsync that covers
    /// it. "interval": fsync at most every `fsync_interval`; see the queue docs
    /// for the risk on power loss.
    #[serde(default)]
    pub fsync: Option<FsyncMode>,
    /// With fsync = "interval", the longest time between fsyncs (default "500ms").
    #[serde(default)]
    pub fsync_interval: Option<HumanDuration>,
    /// What to do when the queue is full. Only "block" exists: inputs pause and
    /// nothing is dropped.
    #[serde(default)]
    pub when_full: Option<WhenFull>,
    /// Encryption at rest of the queue's records (default off).
    #[serde(default)]
    pub encryption: Option<RawEncryption>,
}

/// `fsync` values.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FsyncMode {
    /// Every commit.
    Always,
    /// At most once per interval.
    Interval,
}

/// `when_full` values.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Pause inputs until outputs catch up.
    Block,
}

/// `[[inputs]]`: one input.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawInput {
    /// Tail files.
    File(RawFileInput),
    /// Follow the systemd journal.
    Journald(RawJournaldInput),
    /// Receive events POSTed by applications.
    Http(RawHttpInput),
    /// Receive syslog over UDP, TCP or TLS.
    Syslog(RawSyslogInput),
}

/// `[[inputs]]` with `type = "file"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileInput {
    /// Unique name; part of every position the queue keeps for it.
    pub name: String,
    /// Glob patterns of files to tail (e.g. "/var/log/nginx/access.log*").
    pub include: Vec<String>,
    /// Glob patterns to leave out (e.g. "*.gz").
    #[serde(default)]
    pub exclude: Vec<String>,
    /// For files present at startup without a saved position: "beginning" (default) or "end".
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Parser: "auto" (default), "nginx", "apache", "auth", "json",
    /// "auditd" or "journald" (files holding `journalctl -o json` output).
    #[serde(default)]
    pub format: Format,
    /// format = "auditd": an event whose file has had no new line for this
    /// long is complete (default "1s").
    #[serde(default)]
    pub group_timeout: Option<HumanDuration>,
    /// A custom nginx `log_format` string.
    #[serde(default)]
    pub nginx_log_format: Option<String>,
    /// A custom Apache `LogFormat` string.
    #[serde(default)]
    pub apache_log_format: Option<String>,
    /// Zone of timestamps written without one: "local" (default), "UTC", "+HH:MM" or an IANA name.
    #[serde(default)]
    pub timezone: Option<String>,
    /// JSON field path -> schema field, for format = "json".
    #[serde(default)]
    pub json_mapping: BTreeMap<String, String>,
    /// Longest line (default "64KiB"); longer lines are split or truncated.
    #[serde(default)]
    pub max_line_bytes: Option<ByteSize>,
    /// "split" (default) or "truncate" lines longer than max_line_bytes.
    #[serde(default)]
    pub overlong: Overlong,
    /// Bytes at the start of a file used to recognise it (default 256).
    #[serde(default)]
    pub fingerprint_bytes: Option<usize>,
    /// Emit a last line that has no newline after this long without new data (default "5s").
    #[serde(default)]
    pub partial_line_timeout: Option<HumanDuration>,
    /// Keep a deleted or rotated-away file open this long after its last data (default "5s").
    #[serde(default)]
    pub rotate_wait: Option<HumanDuration>,
    /// Rescan the globs at least this often, besides inotify (default "1s").
    #[serde(default)]
    pub rescan_interval: Option<HumanDuration>,
}

/// `[[outputs]]`: one output.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawOutput {
    /// Append NDJSON to a file, exactly once.
    File(RawFileOutput),
    /// Write NDJSON to standard output, at least once.
    Stdout(RawStdoutOutput),
    /// Send batches to an auditship collector over HTTPS, exactly once.
    Collector(Box<RawCollectorOutput>),
}

/// `[[outputs]]` with `type = "file"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileOutput {
    /// Unique name (default "file"); it names the output's acknowledgements in the queue.
    #[serde(default)]
    pub name: Option<String>,
    /// File to append events to, one JSON object per line.
    pub path: PathBuf,
}

/// `[[outputs]]` with `type = "stdout"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStdoutOutput {
    /// Unique name (default "stdout").
    #[serde(default)]
    pub name: Option<String>,
}

/// The validated, runtime configuration.
#[derive(Debug)]
pub struct AgentConfig {
    /// State directory.
    pub state_dir: PathBuf,
    /// Agent identity.
    pub agent_id: String,
    /// SIGTERM drain time.
    pub shutdown_grace: Duration,
    /// Idle time before a heartbeat; `None` disables heartbeats.
    pub heartbeat: Option<Duration>,
    /// Queue settings.
    pub queue: QueueConfig,
    /// Inputs and their parsers.
    pub inputs: Vec<InputConfig>,
    /// Filters (validated; built into a chain at start).
    pub filters: Vec<FilterConfig>,
    /// Outputs.
    pub outputs: Vec<OutputConfig>,
    /// Log level filter.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Where to serve `/metrics` and `/health`; `None`: not served.
    pub metrics: Option<std::net::SocketAddr>,
}

/// One validated input.
#[derive(Debug, Clone)]
pub struct InputConfig {
    /// What kind of input, with its settings.
    pub kind: InputKind,
    /// Parser settings.
    pub parser: ParserOptions,
}

/// The kinds of input.
#[derive(Debug, Clone)]
pub enum InputKind {
    /// Tail files.
    File(FileInputConfig),
    /// Follow the journal.
    Journald(JournaldConfig),
    /// Receive events over HTTP.
    Http(HttpConfig),
    /// Receive syslog.
    Syslog(SyslogConfig),
}

impl InputConfig {
    /// The input's name.
    pub fn name(&self) -> &str {
        match &self.kind {
            InputKind::File(f) => &f.name,
            InputKind::Journald(j) => &j.name,
            InputKind::Http(h) => &h.name,
            InputKind::Syslog(s) => &s.name,
        }
    }

    /// The file settings, for a file input.
    pub fn file(&self) -> Option<&FileInputConfig> {
        match &self.kind {
            InputKind::File(f) => Some(f),
            _ => None,
        }
    }
}

/// One validated output.
#[derive(Debug, Clone)]
pub enum OutputConfig {
    /// NDJSON file.
    File {
        /// Name.
        name: String,
        /// Path.
        path: PathBuf,
    },
    /// Standard output.
    Stdout {
        /// Name.
        name: String,
    },
    /// An auditship collector.
    Collector(Box<CollectorOutputConfig>),
}

impl OutputConfig {
    /// The output's name.
    pub fn name(&self) -> &str {
        match self {
            OutputConfig::File { name, .. } | OutputConfig::Stdout { name } => name,
            OutputConfig::Collector(c) => &c.name,
        }
    }
}

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<AgentConfig, ConfigErrors> {
    tomlconf::load(path, RawConfig::validate)
}

/// Parses and validates config text; `path` is used in error messages.
pub fn parse(source: &str, path: &Path) -> Result<AgentConfig, ConfigErrors> {
    tomlconf::parse(source, path, RawConfig::validate)
}

impl RawConfig {
    /// Stage two: checks everything and builds the runtime config. Errors are
    /// `(key path, message)` pairs, all of them.
    pub fn validate(self) -> Result<AgentConfig, Vec<(String, String)>> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let mut err = |key: String, msg: String| errs.push((key, msg));
        if self.state_dir.as_os_str().is_empty() {
            err("state_dir".into(), "must not be empty".into());
        }
        let q = &self.queue;
        let max_bytes = q.max_bytes.map_or(1 << 30, |b| b.0);
        let segment_bytes = q
            .segment_bytes
            .map_or((32 << 20).min(max_bytes / 2), |b| b.0);
        if max_bytes < 1 << 20 {
            err(
                "queue.max_bytes".into(),
                format!("{max_bytes} bytes is too small; use at least 1MiB"),
            );
        }
        if segment_bytes > max_bytes / 2 {
            err(
                "queue.segment_bytes".into(),
                format!("{segment_bytes} must be at most half of queue.max_bytes ({max_bytes})"),
            );
        }
        let fsync = match (q.fsync.unwrap_or(FsyncMode::Always), q.fsync_interval) {
            (FsyncMode::Always, Some(_)) => {
                err(
                    "queue.fsync_interval".into(),
                    "only applies with fsync = \"interval\"".into(),
                );
                Fsync::Always
            }
            (FsyncMode::Always, None) => Fsync::Always,
            (FsyncMode::Interval, i) => {
                let d = i.map_or(Duration::from_millis(500), |d| d.0);
                if d.is_zero() {
                    err(
                        "queue.fsync_interval".into(),
                        "must be greater than zero".into(),
                    );
                }
                Fsync::Interval(d)
            }
        };
        let encryption = self
            .queue
            .encryption
            .map(|e| e.validate("queue.encryption", |p| p, &mut |k, m| err(k, m)));
        let heartbeat = self.heartbeat.map_or(Duration::from_secs(60), |d| d.0);
        if !heartbeat.is_zero() && heartbeat < Duration::from_secs(1) {
            err(
                "heartbeat".into(),
                format!("{heartbeat:?} is too short; use at least \"1s\", or \"0s\" to disable"),
            );
        }
        if self.inputs.is_empty() {
            err(
                "inputs".into(),
                "at least one [[inputs]] is required".into(),
            );
        }
        if self.outputs.is_empty() {
            err(
                "outputs".into(),
                "at least one [[outputs]] is required".into(),
            );
        }
        let mut names = BTreeSet::new();
        let mut largest_line = 0usize;
        let mut inputs = Vec::new();
        for (i, raw) in self.inputs.into_iter().enumerate() {
            let k = |key: &str| format!("inputs[{i}].{key}");
            let name = match &raw {
                RawInput::File(f) => &f.name,
                RawInput::Journald(j) => &j.name,
                RawInput::Http(h) => &h.name,
                RawInput::Syslog(s) => &s.name,
            };
            if name.is_empty() || name.contains('\0') {
                err(k("name"), "must be a non-empty name".into());
            } else if !names.insert(name.clone()) {
                err(k("name"), format!("{name:?} is used by another input"));
            }
            let f = match raw {
                RawInput::File(f) => f,
                RawInput::Journald(j) => {
                    let mut e = |key: &str, msg: String| err(k(key), msg);
                    let j = j.validate(&mut e);
                    largest_line = largest_line.max(j.max_line_bytes);
                    inputs.push(InputConfig {
                        kind: InputKind::Journald(j),
                        parser: ParserOptions {
                            format: Format::Journald,
                            ..ParserOptions::default()
                        },
                    });
                    continue;
                }
                RawInput::Http(h) => {
                    let (h, parser) = h.validate(&mut |key, msg| err(k(key), msg));
                    largest_line = largest_line.max(h.max_event_bytes);
                    inputs.push(InputConfig {
                        kind: InputKind::Http(h),
                        parser,
                    });
                    continue;
                }
                RawInput::Syslog(s) => {
                    let (s, parser) = s.validate(&mut |key, msg| err(k(key), msg));
                    largest_line = largest_line.max(s.max_message_bytes);
                    inputs.push(InputConfig {
                        kind: InputKind::Syslog(s),
                        parser,
                    });
                    continue;
                }
            };
            if f.include.is_empty() {
                err(k("include"), "needs at least one glob pattern".into());
            }
            for (list, key) in [(&f.include, "include"), (&f.exclude, "exclude")] {
                for (j, p) in list.iter().enumerate() {
                    if let Err(e) = globset::GlobBuilder::new(p).literal_separator(true).build() {
                        err(
                            format!("inputs[{i}].{key}[{j}]"),
                            format!("invalid glob {p:?}: {e}"),
                        );
                    }
                }
            }
            let max_line = f.max_line_bytes.map_or(64 * 1024, |b| b.0 as usize);
            if !(256..=16 << 20).contains(&max_line) {
                err(
                    k("max_line_bytes"),
                    format!("{max_line} must be between 256 bytes and 16MiB"),
                );
            }
            largest_line = largest_line.max(max_line);
            let fingerprint = f.fingerprint_bytes.unwrap_or(256);
            if !(16..=4096).contains(&fingerprint) {
                err(
                    k("fingerprint_bytes"),
                    format!("{fingerprint} must be between 16 and 4096"),
                );
            }
            if let Some(t) = f.group_timeout {
                if f.format != Format::Auditd {
                    err(
                        k("group_timeout"),
                        "only applies to format = \"auditd\"".into(),
                    );
                } else if !(Duration::from_millis(10)..=Duration::from_secs(600)).contains(&t.0) {
                    err(
                        k("group_timeout"),
                        format!("{:?} must be between \"10ms\" and \"10m\"", t.0),
                    );
                }
            }
            let parser = ParserOptions {
                format: f.format,
                nginx_log_format: f.nginx_log_format,
                apache_log_format: f.apache_log_format,
                year: None,
                timezone: f.timezone,
                json_mapping: f.json_mapping,
                group_timeout: f.group_timeout.map(|t| t.0),
            };
            if let Err(e) = Parser::new(&parser) {
                let key = match &e {
                    ParserError::LogFormat(fe) if fe.dialect == "apache" => "apache_log_format",
                    ParserError::LogFormat(_) => "nginx_log_format",
                    ParserError::TimeZone(_) => "timezone",
                    ParserError::JsonMapping(_) => "json_mapping",
                };
                err(k(key), e.to_string());
            }
            let dur = |d: Option<HumanDuration>, default: u64| {
                d.map_or(Duration::from_secs(default), |d| d.0)
            };
            let mut file = FileInputConfig::new(&f.name, f.include);
            file.exclude = f.exclude;
            file.read_from = f.read_from;
            file.fingerprint_bytes = fingerprint;
            file.max_line_bytes = max_line;
            file.overlong = f.overlong;
            file.partial_line_timeout = dur(f.partial_line_timeout, 5);
            file.rotate_wait = dur(f.rotate_wait, 5);
            file.rescan_interval = dur(f.rescan_interval, 1);
            inputs.push(InputConfig {
                kind: InputKind::File(file),
                parser,
            });
        }
        // A record holds the event's canonical JSON: the raw line escaped (a
        // control byte becomes six bytes, \u00XX) plus the parsed fields.
        // Six times the line plus room for fields; the ingest falls back to a
        // truncated event for anything larger, so no line can stall an input.
        let max_record_bytes = (largest_line * 6 + (64 << 10)).max(1 << 20);
        if (max_record_bytes as u64) * 2 > segment_bytes {
            err(
                "queue.segment_bytes".into(),
                format!(
                    "{segment_bytes} is too small for lines of {largest_line} bytes; \
                     use at least {} or lower max_line_bytes",
                    max_record_bytes * 2
                ),
            );
        }
        if let Err(e) = build_chain(&self.filters) {
            let key = if e.key().is_empty() {
                format!("filters[{}]", e.index())
            } else {
                format!("filters[{}].{}", e.index(), e.key())
            };
            err(key, e.to_string());
        }
        let mut out_names = BTreeSet::new();
        let mut witness_files = BTreeSet::new();
        let mut outputs = Vec::new();
        for (i, o) in self.outputs.into_iter().enumerate() {
            let out = match o {
                RawOutput::File(f) => OutputConfig::File {
                    name: f.name.unwrap_or_else(|| "file".into()),
                    path: f.path,
                },
                RawOutput::Stdout(s) => OutputConfig::Stdout {
                    name: s.name.unwrap_or_else(|| "stdout".into()),
                },
                RawOutput::Collector(c) => {
                    let mut e = |key: &str, msg: String| err(format!("outputs[{i}].{key}"), msg);
                    OutputConfig::Collector(Box::new(c.validate(&self.state_dir, &mut e)))
                }
            };
            if !out_names.insert(out.name().to_string()) {
                err(
                    format!("outputs[{i}].name"),
                    format!(
                        "{:?} is used by another output; give each output a unique name",
                        out.name()
                    ),
                );
            }
            if let OutputConfig::File { path, .. } = &out {
                if path.as_os_str().is_empty() {
                    err(format!("outputs[{i}].path"), "must not be empty".into());
                }
            }
            if let OutputConfig::Collector(c) = &out {
                if c.witness.interval.is_some() && !witness_files.insert(c.witness.file.clone()) {
                    err(
                        format!("outputs[{i}].witness_file"),
                        format!(
                            "{} is the witness file of another collector output; give each its own",
                            c.witness.file.display()
                        ),
                    );
                }
            }
            outputs.push(out);
        }
        let log_level = self.log.level.unwrap_or_else(|| "info".into());
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            err(
                "log.level".into(),
                format!("{log_level:?}: expected error, warn, info, debug or trace"),
            );
        }
        let metrics = self.metrics.validate(9750, &mut err);
        if !errs.is_empty() {
            return Err(errs);
        }
        let agent_id = self
            .agent_id
            .or_else(crate::filter::system_hostname)
            .unwrap_or_else(|| "unknown-host".into());
        Ok(AgentConfig {
            queue: QueueConfig {
                dir: self.state_dir.join("queue"),
                max_bytes,
                segment_bytes,
                max_record_bytes,
                fsync,
                encryption,
            },
            state_dir: self.state_dir,
            agent_id,
            shutdown_grace: self.shutdown_grace.map_or(Duration::from_secs(30), |d| d.0),
            heartbeat: (!heartbeat.is_zero()).then_some(heartbeat),
            inputs,
            filters: self.filters,
            outputs,
            log_level,
            log_format: self.log.format.unwrap_or_default(),
            metrics,
        })
    }
}

#[cfg(test)]
mod tests;
