//! Agent enrolment: which Ed25519 key may sign each agent's batches.
//!
//! A key comes from the configuration (`[[agents]]` with `public_key` or
//! `public_key_file`; the operator copies it from
//! `auditship agent --print-identity`), or, under trust on first use
//! (`[integrity] enrolment = "tofu"`, the default), from the first batch of
//! an agent that has no configured key, whose signature and chain verify
//! under the key it names. A pinned key is kept in `<data_dir>/pinned_keys.json`
//! (written to a temporary file, fsynced, renamed, directory fsynced) before
//! the batch that pinned it is stored, and recorded in the log as an
//! `agent_key_pinned` integrity event. Under `enrolment = "strict"` an agent
//! without a configured key is refused (403, so it keeps its data queued
//! and retries until it is enrolled).
//!
//! A configured key always wins over a pinned one, so an operator corrects a
//! wrong pin by configuring the right key.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use auditship_core::identity::PublicKey;

/// How agents without a configured key are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Trust on first use: pin the key of the first valid batch.
    #[default]
    Tofu,
    /// Refuse agents that are not configured.
    Strict,
}

/// The decision about a batch's key and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// Signed by the enrolled key; chain intact.
    Accept,
    /// No key yet (trust on first use) and the batch verifies under the key
    /// it names: pin it, then accept.
    Pin,
    /// Signed by a key other than the enrolled one, or the signature or
    /// chain does not verify (`why`).
    Bad(String),
    /// Strict enrolment and no key configured.
    NotEnrolled,
}

/// Enrolled and pinned keys.
#[derive(Debug)]
pub struct Enrolment {
    mode: Mode,
    configured: HashMap<String, PublicKey>,
    pinned: HashMap<String, PublicKey>,
    path: PathBuf,
}

impl Enrolment {
    /// Loads the pins in `data_dir`, next to the configured keys.
    pub fn load(
        data_dir: &Path,
        configured: HashMap<String, PublicKey>,
        mode: Mode,
    ) -> Result<Enrolment, String> {
        let path = data_dir.join("pinned_keys.json");
        let pinned = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let raw: BTreeMap<String, String> = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                raw.into_iter()
                    .map(|(a, k)| {
                        PublicKey::parse(&k)
                            .map(|k| (a.clone(), k))
                            .map_err(|e| format!("{}: agent {a:?}: {e}", path.display()))
                    })
                    .collect::<Result<_, _>>()?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Enrolment {
            mode,
            configured,
            pinned,
            path,
        })
    }

    /// The key that signs `agent`'s batches, if any.
    pub fn key_for(&self, agent: &str) -> Option<&PublicKey> {
        self.configured.get(agent).or_else(|| self.pinned.get(agent))
    }

    /// Judges a batch: `claimed` is the key its header names, `signed`
    /// whether its signature verifies under `claimed`, `chained` whether its
    /// events hash to the signed `last_hash`.
    pub fn judge(&self, agent: &str, claimed: &PublicKey, signed: bool, chained: bool) -> KeyVerdict {
        let problem = if !signed {
            Some(format!(
                "signature does not verify under the key it names ({})",
                claimed.key_id()
            ))
        } else if !chained {
            Some("events do not hash to the signed last_hash (altered after signing)".to_string())
        } else {
            None
        };
        match self.key_for(agent) {
            Some(k) if k != claimed => KeyVerdict::Bad(format!(
                "signed with key {}, but the agent's enrolled key is {}",
                claimed.key_id(),
                k.key_id()
            )),
            Some(_) => problem.map_or(KeyVerdict::Accept, KeyVerdict::Bad),
            None if self.mode == Mode::Strict => KeyVerdict::NotEnrolled,
            None => problem.map_or(KeyVerdict::Pin, KeyVerdict::Bad),
        }
    }

    /// Pins `key` for `agent`, durably.
    pub fn pin(&mut self, agent: &str, key: PublicKey) -> std::io::Result<()> {
        let mut all: BTreeMap<&str, String> = self
            .pinned
            .iter()
            .map(|(a, k)| (a.as_str(), k.to_hex()))
            .collect();
        all.insert(agent, key.to_hex());
        let text = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        self.pinned.insert(agent.to_string(), key);
        Ok(())
    }

    /// Every agent with a key: `(agent, key, pinned rather than configured)`.
    pub fn all(&self) -> Vec<(String, PublicKey, bool)> {
        let mut out: Vec<_> = self
            .configured
            .iter()
            .map(|(a, k)| (a.clone(), *k, false))
            .chain(
                self.pinned
                    .iter()
                    .filter(|(a, _)| !self.configured.contains_key(*a))
                    .map(|(a, k)| (a.clone(), *k, true)),
            )
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use auditship_core::identity::Identity;

    use super::*;

    fn key(n: u8) -> PublicKey {
        Identity::from_seed([n; 32]).public()
    }

    #[test]
    fn trust_on_first_use_pins_durably_and_then_holds_agents_to_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Enrolment::load(dir.path(), HashMap::new(), Mode::Tofu).unwrap();
        assert_eq!(e.judge("a", &key(1), true, true), KeyVerdict::Pin);
        assert!(matches!(e.judge("a", &key(1), false, true), KeyVerdict::Bad(_)), "never pin a bad batch");
        e.pin("a", key(1)).unwrap();
        let e = Enrolment::load(dir.path(), HashMap::new(), Mode::Tofu).unwrap();
        assert_eq!(e.judge("a", &key(1), true, true), KeyVerdict::Accept);
        match e.judge("a", &key(2), true, true) {
            KeyVerdict::Bad(why) => assert!(why.contains(&key(1).key_id()), "{why}"),
            other => panic!("{other:?}"),
        }
        match e.judge("a", &key(1), true, false) {
            KeyVerdict::Bad(why) => assert!(why.contains("altered"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn strict_enrolment_refuses_unknown_agents_and_configured_keys_win_over_pins() {
        let dir = tempfile::tempdir().unwrap();
        let mut tofu = Enrolment::load(dir.path(), HashMap::new(), Mode::Tofu).unwrap();
        tofu.pin("a", key(1)).unwrap();
        let configured = HashMap::from([("a".to_string(), key(3))]);
        let e = Enrolment::load(dir.path(), configured, Mode::Strict).unwrap();
        assert_eq!(e.judge("b", &key(1), true, true), KeyVerdict::NotEnrolled);
        assert_eq!(e.judge("a", &key(3), true, true), KeyVerdict::Accept);
        assert!(matches!(e.judge("a", &key(1), true, true), KeyVerdict::Bad(_)));
        assert_eq!(e.all().len(), 1);
    }
}
