//! Tokens managed at runtime (`auditship token create|list|revoke`), kept
//! next to the ones the config file names.
//!
//! A token is stored as the SHA-256 of its secret, never the secret: the
//! secret is shown once, to the admin who created it. Config tokens are
//! read-only here (change the config to change them); managed tokens live
//! in `<data_dir>/tokens.json`, replaced atomically (write a temporary file,
//! fsync, rename, fsync the directory) on every change, so a crash leaves
//! the old list or the new one. A revoked token stays in the file, marked,
//! so the list shows who revoked it and when; its name may then be reused.
//!
//! ```text
//! tokens.json: {"version":1,"tokens":[
//!   {"name":"ci-reader","role":"reader","agents":[],"sha256":"<64 hex>",
//!    "created_at":"2026-11-22T10:00:00Z","created_by":"admin",
//!    "revoked_at":null,"revoked_by":null}, ...]}
//! ```
//!
//! Name rules are the config's: unique among active tokens (config and
//! managed together), ingest tokens name their agents, other roles none,
//! and agent ids never start with `@`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use auditship_core::{hex, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::{sha256, Grant, Tokens};
use crate::config::Role;

/// Why a token change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The request itself is wrong (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// It conflicts with what exists (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// No such token (HTTP 404).
    #[error("no active token named {0:?}")]
    NotFound(String),
    /// The file could not be written (HTTP 503).
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A managed token as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManagedToken {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Agents (ingest).
    #[serde(default)]
    pub agents: Vec<String>,
    /// SHA-256 of the secret, hex.
    pub sha256: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// When it was revoked.
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// Who revoked it.
    #[serde(default)]
    pub revoked_by: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    tokens: Vec<ManagedToken>,
}

/// What `GET /v1/tokens` shows of a token: never its secret or hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenInfo {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Agents (ingest).
    pub agents: Vec<String>,
    /// "config" or "managed".
    pub source: String,
    /// When it was created (managed tokens).
    pub created_at: Option<String>,
    /// Who created it.
    pub created_by: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// Config tokens and managed tokens, looked up together.
pub struct TokenRegistry {
    config: Vec<(String, Role, Vec<String>)>,
    config_tokens: Tokens,
    path: PathBuf,
    managed: Mutex<Vec<ManagedToken>>,
    current: RwLock<Arc<Tokens>>,
}

impl TokenRegistry {
    /// Loads `<data_dir>/tokens.json` (absent: none) beside the config's tokens.
    pub fn open(data_dir: &Path, config_tokens: Tokens) -> Result<TokenRegistry, String> {
        let path = data_dir.join("tokens.json");
        let managed = match std::fs::read(&path) {
            Ok(b) => {
                let f: File =
                    serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display()))?;
                if f.version != 1 {
                    return Err(format!(
                        "{}: version {} is not 1",
                        path.display(),
                        f.version
                    ));
                }
                f.tokens
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut config: Vec<(String, Role, Vec<String>)> = config_tokens
            .grants()
            .map(|g| (g.name.clone(), g.role, g.agents().iter().cloned().collect()))
            .collect();
        config.sort_by(|a, b| a.0.cmp(&b.0));
        let reg = TokenRegistry {
            config,
            config_tokens,
            path,
            managed: Mutex::new(Vec::new()),
            current: RwLock::new(Arc::new(Tokens::default())),
        };
        reg.install(
            reg.managed.lock().unwrap_or_else(|p| p.into_inner()),
            managed,
        )?;
        Ok(reg)
    }

    /// The grant of an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Option<Grant> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .check(authorization)
            .cloned()
    }

    /// Every token, config ones first; revoked ones too.
    pub fn list(&self) -> Vec<TokenInfo> {
        let mut out: Vec<TokenInfo> = self
            .config
            .iter()
            .map(|(name, role, agents)| TokenInfo {
                name: name.clone(),
                role: *role,
                agents: agents.clone(),
                source: "config".into(),
                created_at: None,
                created_by: None,
                revoked_at: None,
                revoked_by: None,
            })
            .collect();
        let managed = self.managed.lock().unwrap_or_else(|p| p.into_inner());
        out.extend(managed.iter().map(|t| TokenInfo {
            name: t.name.clone(),
            role: t.role,
            agents: t.agents.clone(),
            source: "managed".into(),
            created_at: Some(t.created_at.clone()),
            created_by: Some(t.created_by.clone()),
            revoked_at: t.revoked_at.clone(),
            revoked_by: t.revoked_by.clone(),
        }));
        out
    }

    /// Creates a token; returns its secret (shown once).
    pub fn create(
        &self,
        name: &str,
        role: Role,
        agents: Vec<String>,
        by: &str,
    ) -> Result<String, TokenError> {
        check_shape(name, role, &agents)?;
        let managed = self.managed.lock().unwrap_or_else(|p| p.into_inner());
        let taken = self.config.iter().any(|(n, ..)| n == name)
            || managed
                .iter()
                .any(|t| t.name == name && t.revoked_at.is_none());
        if taken {
            return Err(TokenError::Conflict(format!(
                "a token named {name:?} exists; revoke it first or choose another name"
            )));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| TokenError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let secret = format!("ast_{}", hex::encode(&raw));
        let mut next = managed.clone();
        next.push(ManagedToken {
            name: name.into(),
            role,
            agents,
            sha256: hex::encode(&sha256(secret.as_bytes())),
            created_at: Timestamp::now_utc().to_string(),
            created_by: by.into(),
            revoked_at: None,
            revoked_by: None,
        });
        self.save(&next)?;
        self.install(managed, next).map_err(TokenError::Invalid)?;
        Ok(secret)
    }

    /// Revokes the active managed token `name`.
    pub fn revoke(&self, name: &str, by: &str) -> Result<TokenInfo, TokenError> {
        if self.config.iter().any(|(n, ..)| n == name) {
            return Err(TokenError::Conflict(format!(
                "token {name:?} is defined in the config file; remove it there and restart"
            )));
        }
        let managed = self.managed.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = managed.clone();
        let Some(t) = next
            .iter_mut()
            .find(|t| t.name == name && t.revoked_at.is_none())
        else {
            return Err(TokenError::NotFound(name.into()));
        };
        t.revoked_at = Some(Timestamp::now_utc().to_string());
        t.revoked_by = Some(by.into());
        let info = TokenInfo {
            name: t.name.clone(),
            role: t.role,
            agents: t.agents.clone(),
            source: "managed".into(),
            created_at: Some(t.created_at.clone()),
            created_by: Some(t.created_by.clone()),
            revoked_at: t.revoked_at.clone(),
            revoked_by: t.revoked_by.clone(),
        };
        self.save(&next)?;
        self.install(managed, next).map_err(TokenError::Invalid)?;
        Ok(info)
    }

    /// Removes the token whose secret hashes to `sha256` (hex): a creation
    /// whose access record could not be written is refused as a whole. By
    /// hash, not name: the name may meanwhile belong to another token.
    pub fn undo_create(&self, sha256: &str) -> Result<(), TokenError> {
        let managed = self.managed.lock().unwrap_or_else(|p| p.into_inner());
        let next: Vec<ManagedToken> = managed
            .iter()
            .filter(|t| t.sha256 != sha256)
            .cloned()
            .collect();
        self.save(&next)?;
        self.install(managed, next).map_err(TokenError::Invalid)
    }

    /// Makes `managed` the active set. The caller holds the list's lock
    /// from reading it to here, so concurrent changes cannot lose each other.
    fn install(
        &self,
        mut guard: std::sync::MutexGuard<'_, Vec<ManagedToken>>,
        managed: Vec<ManagedToken>,
    ) -> Result<(), String> {
        let mut tokens = self.config_tokens.clone();
        for t in managed.iter().filter(|t| t.revoked_at.is_none()) {
            let hash = crate::config::parse_sha256(&t.sha256).ok_or_else(|| {
                format!("{}: token {:?}: bad sha256", self.path.display(), t.name)
            })?;
            tokens
                .insert(
                    hash,
                    Grant::new(&t.name, t.role, t.agents.iter().cloned().collect()),
                )
                .map_err(|m| format!("{}: token {:?}: {m}", self.path.display(), t.name))?;
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tokens);
        *guard = managed;
        Ok(())
    }

    fn save(&self, tokens: &[ManagedToken]) -> Result<(), TokenError> {
        let io = |source| TokenError::Io {
            path: self.path.clone(),
            source,
        };
        let body = serde_json::to_vec_pretty(&File {
            version: 1,
            tokens: tokens.to_vec(),
        })
        .map_err(|e| io(std::io::Error::other(e)))?;
        crate::durable::replace(&self.path, &body).map_err(io)
    }
}

fn check_shape(name: &str, role: Role, agents: &[String]) -> Result<(), TokenError> {
    let bad = |m: &str| Err(TokenError::Invalid(m.into()));
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return bad("name: 1 to 64 characters among letters, digits, - _ . @");
    }
    match role {
        Role::Ingest if agents.is_empty() => {
            return bad("an ingest token must name the agent ids it may send as")
        }
        Role::Reader | Role::Auditor | Role::Admin if !agents.is_empty() => {
            return bad("only ingest tokens are bound to agents")
        }
        _ => {}
    }
    if agents.iter().any(|a| a.is_empty() || a.starts_with('@')) {
        return bad("agent ids must not be empty or start with '@' (reserved for the collector)");
    }
    let unique: BTreeSet<&String> = agents.iter().collect();
    if unique.len() != agents.len() {
        return bad("an agent id is listed twice");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(dir: &Path) -> TokenRegistry {
        let cfg = Tokens::load(&[crate::config::TokenConfig {
            name: "boot-admin".into(),
            role: Role::Admin,
            agents: Default::default(),
            secret: crate::config::Secret::Inline("admin-secret-0123456".into()),
            key: "tokens[0]".into(),
        }])
        .unwrap();
        TokenRegistry::open(dir, cfg).unwrap()
    }

    #[test]
    fn a_created_token_works_at_once_survives_a_restart_and_is_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let secret = reg
            .create("ci", Role::Reader, vec![], "boot-admin")
            .unwrap();
        let auth = format!("Bearer {secret}");
        assert_eq!(reg.check(Some(&auth)).unwrap().role, Role::Reader);
        let file = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert!(!file.contains(&secret), "the secret is never stored");
        assert!(file.contains(&hex::encode(&sha256(secret.as_bytes()))));
        drop(reg);
        let reg = registry(dir.path());
        assert_eq!(reg.check(Some(&auth)).unwrap().name, "ci");
        assert!(reg.check(Some("Bearer admin-secret-0123456")).is_some());
        let list = reg.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].created_by.as_deref(), Some("boot-admin"));
    }

    #[test]
    fn a_revoked_token_stops_working_at_once_and_stays_listed() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let secret = reg
            .create("shipper", Role::Ingest, vec!["web-1".into()], "boot-admin")
            .unwrap();
        let auth = format!("Bearer {secret}");
        assert!(reg.check(Some(&auth)).unwrap().may_send_as("web-1"));
        let info = reg.revoke("shipper", "boot-admin").unwrap();
        assert!(info.revoked_at.is_some());
        assert!(reg.check(Some(&auth)).is_none());
        drop(reg);
        let reg = registry(dir.path());
        assert!(
            reg.check(Some(&auth)).is_none(),
            "revoked after a restart too"
        );
        assert_eq!(reg.list()[1].revoked_by.as_deref(), Some("boot-admin"));
        // The name is free again.
        reg.create("shipper", Role::Ingest, vec!["web-1".into()], "x")
            .unwrap();
    }

    // Review finding: undoing an unrecorded creation by name could remove
    // another token that meanwhile took the same name.
    #[test]
    fn undoing_a_creation_removes_that_token_only_even_if_its_name_was_reused() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let first = reg.create("x", Role::Reader, vec![], "a").unwrap();
        reg.revoke("x", "a").unwrap();
        let second = reg.create("x", Role::Reader, vec![], "a").unwrap();
        reg.undo_create(&hex::encode(&sha256(first.as_bytes())))
            .unwrap();
        assert!(reg.check(Some(&format!("Bearer {second}"))).is_some());
        assert!(reg.check(Some(&format!("Bearer {first}"))).is_none());
        assert_eq!(reg.list().iter().filter(|t| t.name == "x").count(), 1);
    }

    #[test]
    fn bad_requests_and_conflicts_are_refused_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        assert!(matches!(
            reg.create("boot-admin", Role::Reader, vec![], "x"),
            Err(TokenError::Conflict(_))
        ));
        assert!(matches!(
            reg.revoke("boot-admin", "x"),
            Err(TokenError::Conflict(_))
        ));
        assert!(matches!(
            reg.create("i", Role::Ingest, vec![], "x"),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            reg.create("r", Role::Reader, vec!["a".into()], "x"),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            reg.create("i", Role::Ingest, vec!["@collector".into()], "x"),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            reg.create("bad name", Role::Reader, vec![], "x"),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            reg.revoke("nobody", "x"),
            Err(TokenError::NotFound(_))
        ));
        assert!(!dir.path().join("tokens.json").exists(), "nothing written");
    }
}
