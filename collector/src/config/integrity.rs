//! `[integrity]` and `[[agents]]`: enrolment, silence, checkpoints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auditship_core::identity::PublicKey;
use serde::Deserialize;
use tomlconf::HumanDuration;

pub use crate::enrol::Mode as Enrolment;

/// `[integrity]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntegrity {
    /// "tofu" (default): an agent without a configured key is trusted with
    /// the key of its first valid batch, which is pinned and recorded.
    /// "strict": only agents listed under [[agents]] are accepted.
    #[serde(default)]
    pub enrolment: Option<Enrolment>,
    /// An agent that sends no batch or heartbeat for longer is reported as
    /// silent (default "5m"; "0s" never). Agents send a heartbeat every
    /// minute by default, so keep this well above their heartbeat.
    #[serde(default)]
    pub silent_after: Option<HumanDuration>,
    /// Sign a checkpoint at least this often while records arrive
    /// (default "10s").
    #[serde(default)]
    pub checkpoint_interval: Option<HumanDuration>,
    /// Sign a checkpoint after this many new records (default 100000).
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// The log's name in checkpoints (default "auditship/<host name>").
    #[serde(default)]
    pub origin: Option<String>,
}

/// `[[agents]]`: an enrolled agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// The agent id (its `agent_id`).
    pub id: String,
    /// Its Ed25519 public key, 64 hex digits, as `auditship agent
    /// --print-identity` shows it.
    #[serde(default)]
    pub public_key: Option<String>,
    /// A file holding that key instead.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

/// Where an enrolled key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentKey {
    /// Given in the config.
    Inline(PublicKey),
    /// Read from this file at startup.
    File(PathBuf),
}

/// Validated integrity settings.
#[derive(Clone, Debug)]
pub struct IntegrityConfig {
    /// Enrolment mode.
    pub enrolment: Enrolment,
    /// Silence threshold (zero: off).
    pub silent_after: Duration,
    /// Checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Checkpoint every this many records.
    pub checkpoint_every: u64,
    /// Checkpoint origin (None: derived from the host name at startup).
    pub origin: Option<String>,
    /// Enrolled agents: `(id, key, config key path)`.
    pub agents: Vec<(String, AgentKey, String)>,
}

impl IntegrityConfig {
    /// Resolves the enrolled keys, reading key files.
    pub fn keys(&self) -> Result<HashMap<String, PublicKey>, String> {
        self.agents
            .iter()
            .map(|(id, k, path)| match k {
                AgentKey::Inline(k) => Ok((id.clone(), *k)),
                AgentKey::File(f) => PublicKey::load(f)
                    .map(|k| (id.clone(), k))
                    .map_err(|e| format!("{path}.public_key_file: {e}")),
            })
            .collect()
    }
}

/// Validates `[integrity]` and `[[agents]]`.
pub fn validate(
    raw: RawIntegrity,
    agents: Vec<RawAgent>,
    base: &Path,
    err: &mut dyn FnMut(&str, String),
) -> IntegrityConfig {
    let checkpoint_every = raw.checkpoint_every.unwrap_or(100_000);
    if checkpoint_every == 0 {
        err("integrity.checkpoint_every", "must be at least 1".into());
    }
    let checkpoint_interval = raw
        .checkpoint_interval
        .map_or(Duration::from_secs(10), |d| d.0);
    if checkpoint_interval < Duration::from_millis(100) {
        err(
            "integrity.checkpoint_interval",
            "must be at least 100ms".into(),
        );
    }
    if let Some(o) = &raw.origin {
        if o.is_empty() || o.contains('\n') {
            err(
                "integrity.origin",
                "must be one non-empty line".into(),
            );
        }
    }
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, a) in agents.into_iter().enumerate() {
        let key = format!("agents[{i}]");
        if a.id.is_empty() || a.id.starts_with('@') {
            err(
                &format!("{key}.id"),
                "must be a non-empty agent id not starting with '@'".into(),
            );
            continue;
        }
        if !seen.insert(a.id.clone()) {
            err(
                &format!("{key}.id"),
                format!("{:?} is enrolled twice", a.id),
            );
        }
        let k = match (a.public_key, a.public_key_file) {
            (Some(text), None) => match PublicKey::parse(&text) {
                Ok(k) => AgentKey::Inline(k),
                Err(e) => {
                    err(&format!("{key}.public_key"), e);
                    continue;
                }
            },
            (None, Some(f)) => AgentKey::File(if f.is_absolute() { f } else { base.join(f) }),
            _ => {
                err(
                    &key,
                    "set exactly one of public_key and public_key_file".into(),
                );
                continue;
            }
        };
        out.push((a.id, k, key));
    }
    IntegrityConfig {
        enrolment: raw.enrolment.unwrap_or_default(),
        silent_after: raw.silent_after.map_or(Duration::from_secs(300), |d| d.0),
        checkpoint_interval,
        checkpoint_every: checkpoint_every.max(1),
        origin: raw.origin,
        agents: out,
    }
}
