//! The TOML config plumbing shared by the agent and the collector.
//!
//! Both roles read config in two stages: serde structs that reject unknown
//! keys, then a pure `validate()` into runtime types that reports every
//! problem as a `(key path, message)` pair. This crate runs the two stages
//! and turns every error, syntax or semantic, into a [`ConfigError`] with
//! the file, line and key ([`locate`]), and holds the human units the
//! configs use ([`units`]). Before parsing, `${VAR}` and `${VAR:-default}`
//! in string values are taken from the environment ([`interpolate`]).

pub mod interpolate;
pub mod locate;
pub mod units;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use units::{parse_bytes, parse_duration, ByteSize, HumanDuration};

/// `[log]`: a process's own logs (on stderr), the same for every role.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// "error", "warn", "info" (default), "debug" or "trace"; RUST_LOG overrides it.
    #[serde(default)]
    pub level: Option<String>,
    /// "text" (default) or "json".
    #[serde(default)]
    pub format: Option<LogFormat>,
}

/// `[metrics]`: the Prometheus `/metrics` and `/health` endpoints, the
/// same for every role.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Serve the endpoints (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Listen address, "IP:port" (default 127.0.0.1 and the role's port:
    /// 9750 for the agent, 9751 for the collector). No authentication: keep
    /// it on localhost or a scrape network.
    #[serde(default)]
    pub address: Option<String>,
}

impl RawMetrics {
    /// Stage two: the address to serve on, `None` when disabled. Problems go
    /// to `err` as (key, message).
    pub fn validate(
        self,
        default_port: u16,
        err: &mut dyn FnMut(String, String),
    ) -> Option<std::net::SocketAddr> {
        if self.enabled == Some(false) {
            return None;
        }
        match self.address {
            None => Some(std::net::SocketAddr::from(([127, 0, 0, 1], default_port))),
            Some(a) => {
                match a.parse() {
                    Ok(addr) => Some(addr),
                    Err(_) => {
                        err(
                        "metrics.address".into(),
                        format!("{a:?} is not an IP:port address (e.g. \"127.0.0.1:{default_port}\")"),
                    );
                        None
                    }
                }
            }
        }
    }
}

/// `[store.encryption]` (collector) and `[queue.encryption]` (agent):
/// encryption at rest, the same shape in both roles. The key files are
/// read at startup, not here.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    /// The key that encrypts what is written from now on: a file of 64 hex
    /// digits (`auditship key generate --out FILE`), or a systemd
    /// credential, "${CREDENTIALS_DIRECTORY}/name".
    pub key_file: PathBuf,
    /// Keys of earlier rotations, used only to read what was written under
    /// them (default none).
    #[serde(default)]
    pub previous_key_files: Vec<PathBuf>,
}

/// Validated encryption settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encryption {
    /// The current key's file.
    pub key_file: PathBuf,
    /// Earlier keys' files.
    pub previous_key_files: Vec<PathBuf>,
}

impl RawEncryption {
    /// Stage two: paths through `rel` (relative to the config, or as they
    /// are); problems go to `err` as (key, message) under `table` (e.g.
    /// "store.encryption").
    pub fn validate(
        self,
        table: &str,
        rel: impl Fn(PathBuf) -> PathBuf,
        err: &mut dyn FnMut(String, String),
    ) -> Encryption {
        if self.key_file.as_os_str().is_empty() {
            err(format!("{table}.key_file"), "must not be empty".into());
        }
        let key_file = rel(self.key_file);
        let mut previous: Vec<PathBuf> = Vec::new();
        for (i, p) in self.previous_key_files.into_iter().enumerate() {
            let p = rel(p);
            if p.as_os_str().is_empty() || p == key_file || previous.contains(&p) {
                err(
                    format!("{table}.previous_key_files[{i}]"),
                    "must be a file other than key_file and the other previous keys".into(),
                );
            }
            previous.push(p);
        }
        Encryption {
            key_file,
            previous_key_files: previous,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// One configuration problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path, e.g. `inputs[0].include[1]`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                l,
                self.key,
                self.message
            ),
            None => write!(f, "{}: {}: {}", self.file.display(), self.key, self.message),
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads the config file at `path`, then [`parse`]s it.
pub fn load<T, R: DeserializeOwned>(
    path: &Path,
    validate: impl FnOnce(R) -> Result<T, Vec<(String, String)>>,
) -> Result<T, ConfigErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse(&source, path, validate)
}

/// Most syntax or type errors reported from one file.
const MAX_PARSE_ERRORS: usize = 20;

/// A serde/TOML error with its line and key.
fn locate_error(source: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    // "unknown field `x`" names the key even when the span covers a whole
    // table (it does for tagged tables such as [[inputs]]).
    let named = e
        .message()
        .split('`')
        .nth(1)
        .filter(|_| e.message().starts_with("unknown field"))
        .map(str::to_string);
    let (line, key) = match e.span() {
        Some(span) => {
            let (mut line, _) = locate::line_col(source, span.start);
            let text = source.get(span).unwrap_or("").trim();
            let key = match &named {
                Some(k) => {
                    line = locate::key_line_from(source, line, k).unwrap_or(line);
                    k.clone()
                }
                None if text
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
                {
                    text.to_string()
                }
                None => String::new(),
            };
            (Some(line), key)
        }
        None => (None, named.unwrap_or_default()),
    };
    // A bad value's span is the value: name the key written on its line.
    let key = match line {
        Some(l) if key.is_empty() && locate::is_one_line_key(source, l) => {
            locate::key_on_line(source, l)
        }
        _ => key,
    };
    ConfigError {
        file: path.to_path_buf(),
        line,
        key,
        message: e.message().trim().to_string(),
    }
}

/// Parses config text into the raw structs `R`, then runs stage two,
/// `validate`, whose `(key path, message)` errors are located in `source`.
pub fn parse<T, R: DeserializeOwned>(
    source: &str,
    path: &Path,
    validate: impl FnOnce(R) -> Result<T, Vec<(String, String)>>,
) -> Result<T, ConfigErrors> {
    let source =
        &interpolate::interpolate(source, |name| std::env::var(name).ok()).map_err(|errs| {
            ConfigErrors(
                errs.into_iter()
                    .map(|e| ConfigError {
                        file: path.to_path_buf(),
                        line: Some(e.line),
                        key: e.key,
                        message: e.message,
                    })
                    .collect(),
            )
        })?;
    // Syntax and type errors stop serde at the first one. To report more,
    // the offending line is commented out (line numbers stay) and the text
    // parsed again, up to MAX_PARSE_ERRORS times; semantic validation runs
    // only once the text parses.
    let mut text = source.to_string();
    let mut found: Vec<ConfigError> = Vec::new();
    let mut elided: Vec<String> = Vec::new();
    let raw: R = loop {
        let e = match toml::from_str::<R>(&text) {
            Ok(raw) => break raw,
            Err(e) => e,
        };
        let ce = locate_error(&text, path, &e);
        // "missing field `x`" once a line was commented out may be that
        // line's problem again (`x = <bad value>`, or a misspelt `x`): stop
        // there; if it is real, it shows once the others are fixed.
        let follow_on = !elided.is_empty() && e.message().starts_with("missing field");
        if !follow_on {
            found.push(ce.clone());
        }
        match ce
            .line
            .filter(|_| found.len() < MAX_PARSE_ERRORS && !follow_on)
        {
            Some(line) if locate::is_one_line_key(&text, line) => {
                elided.push(locate::key_on_line(&text, line));
                text = locate::comment_out(&text, line);
            }
            _ => return Err(ConfigErrors(found)),
        }
    };
    if !found.is_empty() {
        return Err(ConfigErrors(found));
    }
    validate(raw).map_err(|errs| {
        ConfigErrors(
            errs.into_iter()
                .map(|(key, message)| ConfigError {
                    file: path.to_path_buf(),
                    line: locate::line_of(source, &key),
                    key,
                    message,
                })
                .collect(),
        )
    })
}
