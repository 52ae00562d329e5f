//! The collector's TOML configuration, in two stages.
//!
//! [`RawConfig`] is what the file says (unknown keys are errors, every field
//! documented); [`RawConfig::validate`] is a pure function into
//! [`CollectorConfig`] that reports every problem as a key path and a
//! message, which `tomlconf` locates to a file and line. Secrets named by
//! `token_file` are read at startup ([`crate::auth::Tokens::load`]), not
//! here. A commented example of every key is in `config/collector.toml`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tomlconf::{ByteSize, ConfigErrors, HumanDuration};
pub use tomlconf::{Encryption, LogFormat, RawEncryption, RawLog, RawMetrics};

pub mod integrity;
pub mod retention;

/// The collector configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Directory for the store and all other collector state.
    pub data_dir: PathBuf,
    /// Address and port to listen on, e.g. "0.0.0.0:8443".
    pub listen: String,
    /// Serve plain HTTP instead of HTTPS. Only for a collector and agents on
    /// one machine (the quickstart); tokens then cross the wire in clear.
    #[serde(default)]
    pub insecure_plain_http: bool,
    /// HTTPS settings; required unless insecure_plain_http = true.
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// Request limits.
    #[serde(default)]
    pub limits: RawLimits,
    /// The store.
    #[serde(default)]
    pub store: RawStore,
    /// Who may send and read.
    #[serde(default)]
    pub tokens: Vec<RawToken>,
    /// Verification of agents, and checkpoints.
    #[serde(default)]
    pub integrity: integrity::RawIntegrity,
    /// Enrolled agents and their public keys.
    #[serde(default)]
    pub agents: Vec<integrity::RawAgent>,
    /// How long SIGTERM waits for in-flight requests (default "10s").
    #[serde(default)]
    pub shutdown_grace: Option<HumanDuration>,
    /// The collector's own logs.
    #[serde(default)]
    pub log: RawLog,
    /// Prometheus `/metrics` and `/health` (default on, 127.0.0.1:9751).
    #[serde(default)]
    pub metrics: RawMetrics,
    /// Retention policies, schedule and archive.
    #[serde(default)]
    pub retention: retention::RawRetention,
    /// Alert rules and webhooks.
    #[serde(default)]
    pub alerts: crate::alerts::rules::RawAlerts,
}

/// `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain the collector presents (leaf first).
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates that sign client certificates. Setting it turns on
    /// mutual TLS: a client without a certificate signed by one of them is
    /// refused during the handshake.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Client certificates mapped to roles (needs client_ca_file). A
    /// request without a bearer token is identified by its certificate.
    #[serde(default)]
    pub identities: Vec<RawIdentity>,
}

/// `[[tls.identities]]`: a client certificate mapped to a role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Name recorded in access records.
    pub name: String,
    /// "reader", "auditor" or "admin" (ingest needs a token bound to agents).
    pub role: Role,
    /// Match the certificate's subject common name.
    #[serde(default)]
    pub common_name: Option<String>,
    /// Match one of its DNS or URI subject alternative names.
    #[serde(default)]
    pub san: Option<String>,
    /// Match its SHA-256 fingerprint (64 hex digits, of the DER form).
    #[serde(default)]
    pub cert_sha256: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest request body as sent, compressed (default "16MiB"); larger gets 413.
    #[serde(default)]
    pub max_body_bytes: Option<ByteSize>,
    /// Largest body after decompression (default "128MiB"); a body that
    /// inflates past it (a gzip or zstd bomb) gets 413 without being held in memory.
    #[serde(default)]
    pub max_decompressed_bytes: Option<ByteSize>,
    /// Seconds an agent is told to wait (Retry-After) when the store cannot
    /// take data, e.g. a full disk (default "5s").
    #[serde(default)]
    pub retry_after: Option<HumanDuration>,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// Segment file size (default "64MiB").
    #[serde(default)]
    pub segment_bytes: Option<ByteSize>,
    /// Encryption at rest of segments and their indexes (default off).
    #[serde(default)]
    pub encryption: Option<RawEncryption>,
}

/// `[[tokens]]`: one bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// Name for logs (never the secret).
    pub name: String,
    /// "ingest" (send events as the listed agents), "reader" (query),
    /// "auditor" (query, export, proofs) or "admin" (tokens, retention,
    /// holds).
    pub role: Role,
    /// For role = "ingest": the agent ids this token may send as.
    #[serde(default)]
    pub agents: Vec<String>,
    /// The secret itself. Prefer token_file or token_sha256.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the secret (trailing whitespace ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The SHA-256 of the secret, 64 hex digits; the secret is then not on this host.
    #[serde(default)]
    pub token_sha256: Option<String>,
}

/// Roles (see [`crate::access`] for what each may do).
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sends events as its agents.
    Ingest,
    /// Queries events and status.
    Reader,
    /// A reader that may also export bundles and request inclusion proofs.
    Auditor,
    /// Manages tokens, retention and legal holds; reads no events.
    Admin,
}

impl Role {
    /// The name used in configs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Reader => "reader",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "ingest" => Role::Ingest,
            "reader" => Role::Reader,
            "auditor" => Role::Auditor,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// Where a token's secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// Given in the config.
    Inline(String),
    /// Read from this file at startup.
    File(PathBuf),
    /// Only its SHA-256 is known.
    Sha256([u8; 32]),
}

/// A validated token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Agents it may send as (ingest).
    pub agents: BTreeSet<String>,
    /// The secret.
    pub secret: Secret,
    /// Key path in the config, for startup errors.
    pub key: String,
}

/// Validated TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// Certificate chain.
    pub cert_file: PathBuf,
    /// Private key.
    pub key_file: PathBuf,
    /// Client CAs, for mutual TLS.
    pub client_ca_file: Option<PathBuf>,
    /// Client certificates mapped to roles.
    pub identities: crate::identities::CertIdentities,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// State directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// TLS, or `None` for plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Compressed body limit.
    pub max_body_bytes: usize,
    /// Decompressed body limit.
    pub max_decompressed_bytes: usize,
    /// Retry-After for 503s.
    pub retry_after: Duration,
    /// Store segment size.
    pub segment_bytes: u64,
    /// Encryption at rest of the store (`None`: in the clear).
    pub encryption: Option<Encryption>,
    /// Tokens.
    pub tokens: Vec<TokenConfig>,
    /// Enrolment, silence and checkpoints.
    pub integrity: integrity::IntegrityConfig,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Log level.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Where to serve `/metrics` and `/health`; `None`: not served.
    pub metrics: Option<std::net::SocketAddr>,
    /// Retention.
    pub retention: retention::RetentionConfig,
    /// Alert rules and webhooks.
    pub alerts: crate::alerts::rules::AlertsConfig,
}

/// Reads, parses and validates the config file at `path`. A relative
/// `data_dir` or file path is taken relative to the config's directory.
pub fn load(path: &Path) -> Result<CollectorConfig, ConfigErrors> {
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    tomlconf::load(path, |raw: RawConfig| raw.validate(&base))
}

/// Parses and validates config text (`path` names it in errors).
pub fn parse(source: &str, path: &Path) -> Result<CollectorConfig, ConfigErrors> {
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    tomlconf::parse(source, path, |raw: RawConfig| raw.validate(&base))
}

impl RawConfig {
    /// Stage two: every problem as `(key path, message)`; relative paths are
    /// joined to `base`.
    pub fn validate(self, base: &Path) -> Result<CollectorConfig, Vec<(String, String)>> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let mut err = |k: &str, m: String| errs.push((k.to_string(), m));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        if self.data_dir.as_os_str().is_empty() {
            err("data_dir", "must not be empty".into());
        }
        let listen = self.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            err(
                "listen",
                format!(
                    "{:?} is not an address:port such as \"0.0.0.0:8443\"",
                    self.listen
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let tls = match (self.tls, self.insecure_plain_http) {
            (Some(_), true) => {
                err(
                    "insecure_plain_http",
                    "cannot be true together with a [tls] section".into(),
                );
                None
            }
            (None, false) => {
                err(
                    "tls",
                    "a [tls] section is required (or insecure_plain_http = true for local use)"
                        .into(),
                );
                None
            }
            (None, true) => None,
            (Some(t), false) => {
                let identities = identities(t.identities, t.client_ca_file.is_some(), &mut err);
                Some(TlsConfig {
                    cert_file: rel(t.cert_file),
                    key_file: rel(t.key_file),
                    client_ca_file: t.client_ca_file.map(rel),
                    identities,
                })
            }
        };
        let l = &self.limits;
        let max_body = l.max_body_bytes.map_or(16 << 20, |b| b.0);
        let max_inflated = l.max_decompressed_bytes.map_or(128 << 20, |b| b.0);
        if !(1024..=1 << 30).contains(&max_body) {
            err(
                "limits.max_body_bytes",
                format!("{max_body} must be between 1KiB and 1GiB"),
            );
        }
        if max_inflated < max_body || max_inflated > 4 << 30 {
            err(
                "limits.max_decompressed_bytes",
                format!("{max_inflated} must be at least max_body_bytes and at most 4GiB"),
            );
        }
        let segment_bytes = self.store.segment_bytes.map_or(64 << 20, |b| b.0);
        if !(1 << 20..=1 << 30).contains(&segment_bytes) {
            err(
                "store.segment_bytes",
                format!("{segment_bytes} must be between 1MiB and 1GiB"),
            );
        }
        let encryption = self
            .store
            .encryption
            .map(|e| e.validate("store.encryption", rel, &mut |k, m| err(&k, m)));
        let mut tokens = Vec::new();
        let mut names = BTreeSet::new();
        for (i, t) in self.tokens.into_iter().enumerate() {
            let key = format!("tokens[{i}]");
            let k = |f: &str| format!("{key}.{f}");
            if t.name.is_empty() {
                err(&k("name"), "must not be empty".into());
            } else if !names.insert(t.name.clone()) {
                err(&k("name"), format!("{:?} is used by another token", t.name));
            }
            match t.role {
                Role::Ingest if t.agents.is_empty() => err(
                    &k("agents"),
                    "an ingest token must name the agent ids it may send as".into(),
                ),
                Role::Reader | Role::Auditor | Role::Admin if !t.agents.is_empty() => err(
                    &k("agents"),
                    "only ingest tokens are bound to agents".into(),
                ),
                _ => {}
            }
            if t.agents.iter().any(|a| a.is_empty() || a.starts_with('@')) {
                err(
                    &k("agents"),
                    "agent ids must not be empty or start with '@' (reserved for the collector)"
                        .into(),
                );
            }
            let secret = match (t.token, t.token_file, t.token_sha256) {
                (Some(s), None, None) if s.len() >= 16 => Some(Secret::Inline(s)),
                (Some(_), None, None) => {
                    err(&k("token"), "must be at least 16 characters".into());
                    None
                }
                (None, Some(f), None) => Some(Secret::File(rel(f))),
                (None, None, Some(h)) => match parse_sha256(&h) {
                    Some(d) => Some(Secret::Sha256(d)),
                    None => {
                        err(&k("token_sha256"), "must be 64 hex digits".into());
                        None
                    }
                },
                _ => {
                    err(
                        &key,
                        "set exactly one of token, token_file and token_sha256".into(),
                    );
                    None
                }
            };
            if let Some(secret) = secret {
                tokens.push(TokenConfig {
                    name: t.name,
                    role: t.role,
                    agents: t.agents.into_iter().collect(),
                    secret,
                    key,
                });
            }
        }
        if !tokens.iter().any(|t| t.role == Role::Ingest) {
            err(
                "tokens",
                "at least one [[tokens]] with role = \"ingest\" is required".into(),
            );
        }
        let integrity = integrity::validate(self.integrity, self.agents, base, &mut err);
        let level = self.log.level.unwrap_or_else(|| "info".into());
        if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
            err(
                "log.level",
                format!("{level:?} is not error, warn, info, debug or trace"),
            );
        }
        let metrics = self.metrics.validate(9751, &mut |k, m| err(&k, m));
        let retention = retention::validate(self.retention, base, &mut err);
        let alerts = self.alerts.validate(base, &mut err);
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(CollectorConfig {
            data_dir: rel(self.data_dir),
            listen,
            tls,
            max_body_bytes: max_body as usize,
            max_decompressed_bytes: max_inflated as usize,
            retry_after: l.retry_after.map_or(Duration::from_secs(5), |d| d.0),
            segment_bytes,
            encryption,
            tokens,
            integrity,
            shutdown_grace: self.shutdown_grace.map_or(Duration::from_secs(10), |d| d.0),
            log_level: level,
            log_format: self.log.format.unwrap_or_default(),
            metrics,
            retention,
            alerts,
        })
    }
}

/// Stage two of `[[tls.identities]]`.
fn identities(
    raw: Vec<RawIdentity>,
    mtls: bool,
    err: &mut impl FnMut(&str, String),
) -> crate::identities::CertIdentities {
    use crate::identities::{CertIdentity, CertMatch};
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = format!("tls.identities[{i}]");
        if !mtls {
            err(
                &key,
                "client certificates can only identify callers with client_ca_file set".into(),
            );
        }
        if r.name.is_empty() || !names.insert(r.name.clone()) {
            err(
                &format!("{key}.name"),
                "must be non-empty and unique".into(),
            );
        }
        if r.role == Role::Ingest {
            err(
                &format!("{key}.role"),
                "ingest needs a token bound to agent ids; use reader, auditor or admin".into(),
            );
        }
        let matcher = match (r.common_name, r.san, r.cert_sha256) {
            (Some(cn), None, None) => CertMatch::CommonName(cn),
            (None, Some(san), None) => CertMatch::San(san),
            (None, None, Some(h)) => match parse_sha256(&h) {
                Some(_) => CertMatch::Sha256(h.trim().to_ascii_lowercase()),
                None => {
                    err(
                        &format!("{key}.cert_sha256"),
                        "must be 64 hex digits".into(),
                    );
                    continue;
                }
            },
            _ => {
                err(
                    &key,
                    "set exactly one of common_name, san and cert_sha256".into(),
                );
                continue;
            }
        };
        out.push(CertIdentity {
            name: r.name,
            role: r.role,
            matcher,
        });
    }
    crate::identities::CertIdentities(out)
}

/// Parses 64 hex digits.
pub fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
