//! Bearer tokens and what they allow.
//!
//! Only the SHA-256 of each secret is kept in memory; a presented token is
//! hashed and looked up. An ingest token is bound to agent ids, so an agent
//! holding it cannot write as any other agent: ingest checks the batch's
//! `agent_id` (and every event's) against [`Grant::may_send_as`].

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use crate::config::{Role, Secret, TokenConfig};

/// What a valid token allows.
#[derive(Clone, Debug)]
pub struct Grant {
    /// Token name, for logs.
    pub name: String,
    /// Its role.
    pub role: Role,
    agents: BTreeSet<String>,
}

impl Grant {
    /// A grant.
    pub fn new(name: &str, role: Role, agents: BTreeSet<String>) -> Grant {
        Grant {
            name: name.into(),
            role,
            agents,
        }
    }

    /// The agents an ingest token may send as.
    pub fn agents(&self) -> &BTreeSet<String> {
        &self.agents
    }

    /// Whether this token may send events as `agent_id`.
    pub fn may_send_as(&self, agent_id: &str) -> bool {
        self.role == Role::Ingest && self.agents.contains(agent_id)
    }
}

/// Every configured token, by the hash of its secret.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], Grant>,
}

impl Tokens {
    /// Resolves the configured secrets (reading `token_file`s). The error
    /// names the token's config key and the file.
    pub fn load(tokens: &[TokenConfig]) -> Result<Tokens, String> {
        let mut by_hash = HashMap::new();
        for t in tokens {
            let hash = match &t.secret {
                Secret::Inline(s) => sha256(s.as_bytes()),
                Secret::Sha256(h) => *h,
                Secret::File(path) => {
                    let s = std::fs::read_to_string(path).map_err(|e| {
                        format!("{}.token_file: cannot read {}: {e}", t.key, path.display())
                    })?;
                    let s = s.trim_end();
                    if s.len() < 16 {
                        return Err(format!(
                            "{}.token_file: {} holds fewer than 16 characters",
                            t.key,
                            path.display()
                        ));
                    }
                    sha256(s.as_bytes())
                }
            };
            let grant = Grant {
                name: t.name.clone(),
                role: t.role,
                agents: t.agents.clone(),
            };
            if by_hash.insert(hash, grant).is_some() {
                return Err(format!(
                    "{}: the same secret is used by another token",
                    t.key
                ));
            }
        }
        Ok(Tokens { by_hash })
    }

    /// Every grant.
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.by_hash.values()
    }

    /// Adds a grant under the hash of its secret; refused when another
    /// grant has the same secret or the same name.
    pub fn insert(&mut self, hash: [u8; 32], grant: Grant) -> Result<(), String> {
        if self.by_hash.values().any(|g| g.name == grant.name) {
            return Err("the name is used by another token".into());
        }
        if self.by_hash.contains_key(&hash) {
            return Err("the same secret is used by another token".into());
        }
        self.by_hash.insert(hash, grant);
        Ok(())
    }

    /// The grant of an `Authorization` header value (`Bearer <token>`).
    pub fn check(&self, authorization: Option<&str>) -> Option<&Grant> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        self.by_hash.get(&sha256(token.as_bytes()))
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn token(name: &str, role: Role, agents: &[&str], secret: Secret) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            role,
            agents: agents.iter().map(|s| s.to_string()).collect(),
            secret,
            key: format!("tokens[{name}]"),
        }
    }

    #[test]
    fn tokens_are_bound_to_their_agents_and_roles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        std::fs::write(&file, "from-a-file-0123456789\n").unwrap();
        let hashed = sha256(b"hashed-secret-0123456789");
        let t = Tokens::load(&[
            token(
                "web",
                Role::Ingest,
                &["web-1"],
                Secret::Inline("inline-secret-0123".into()),
            ),
            token("db", Role::Ingest, &["db-1"], Secret::File(file)),
            token("ro", Role::Reader, &[], Secret::Sha256(hashed)),
        ])
        .unwrap();
        let web = t.check(Some("Bearer inline-secret-0123")).unwrap();
        assert!(web.may_send_as("web-1"));
        assert!(!web.may_send_as("db-1"));
        let db = t.check(Some("Bearer from-a-file-0123456789")).unwrap();
        assert!(db.may_send_as("db-1") && !db.may_send_as("web-1"));
        let ro = t.check(Some("Bearer hashed-secret-0123456789")).unwrap();
        assert_eq!(ro.role, Role::Reader);
        assert!(!ro.may_send_as("web-1"));
        assert!(t.check(Some("Bearer wrong")).is_none());
        assert!(t.check(Some("inline-secret-0123")).is_none());
        assert!(t.check(None).is_none());
    }

    #[test]
    fn an_unreadable_token_file_names_the_key_and_file() {
        let e = Tokens::load(&[token(
            "x",
            Role::Reader,
            &[],
            Secret::File(PathBuf::from("/nonexistent/secret")),
        )])
        .unwrap_err();
        assert!(
            e.starts_with("tokens[x].token_file: cannot read /nonexistent/secret"),
            "{e}"
        );
    }
}
