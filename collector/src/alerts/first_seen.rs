//! What first-seen rules remember: per rule, per key (a user), the values
//! seen (source addresses) with when each was last seen.
//!
//! Kept in `data_dir/alerts/first_seen.json` so a restart does not make
//! every known address new again. The file is replaced atomically (written
//! to a temporary file, fsynced, renamed over the old one, directory
//! fsynced), after a round that learned something, at most once a second,
//! and at shutdown; a crash can cost the last second of learning, which
//! means at worst one repeated "new source" alert. Memory and file are
//! bounded by `first_seen_max` pairs in total: past it, the least recently
//! seen tenth is forgotten. A file that cannot be read is set aside as
//! `first_seen.json.corrupt` and learning starts over (logged as an
//! error): the collector must start.
//!
//! With store encryption on, the state holds the same kind of data as the
//! store (user names, addresses), so it is sealed the same way: the file
//! is `first_seen.sealed`, the JSON below sealed whole under the store's
//! current key (XChaCha20-Poly1305, domain "auditship alert state v1";
//! layout `key_id 8 | nonce 24 | ciphertext | tag 16`). A plaintext
//! `first_seen.json` left from before encryption was turned on is read
//! once and removed after the first sealed save.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What an observation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The value was known for the key.
    Known,
    /// A new value for a key that had others: what first-seen rules fire on.
    NewValue,
    /// The key's first value: learned, not alerted.
    NewKey,
}

type Values = HashMap<String, i64>;

/// The remembered values.
pub struct FirstSeen {
    path: Option<PathBuf>,
    keys: Option<std::sync::Arc<auditship_crypt::Keyring>>,
    /// A plaintext file to remove once the sealed one is written.
    stale_plain: Option<PathBuf>,
    max: usize,
    rules: HashMap<String, HashMap<String, Values>>,
    total: usize,
    dirty: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct File {
    version: u32,
    rules: HashMap<String, HashMap<String, Values>>,
}

impl FirstSeen {
    /// Empty, kept in memory only.
    pub fn in_memory(max: usize) -> FirstSeen {
        FirstSeen {
            path: None,
            keys: None,
            stale_plain: None,
            max,
            rules: HashMap::new(),
            total: 0,
            dirty: false,
        }
    }

    /// Loads `dir/first_seen.json` (or, with `keys`, `first_seen.sealed`),
    /// creating `dir`, or starts empty.
    pub fn load(
        dir: &Path,
        max: usize,
        keys: Option<std::sync::Arc<auditship_crypt::Keyring>>,
    ) -> std::io::Result<FirstSeen> {
        std::fs::create_dir_all(dir)?;
        let plain = dir.join("first_seen.json");
        let mut s = FirstSeen::in_memory(max);
        let (path, read) = match &keys {
            Some(k) => {
                let sealed = dir.join("first_seen.sealed");
                let read = match std::fs::read(&sealed) {
                    Ok(b) => {
                        let mut out = Vec::new();
                        match k.open(auditship_crypt::Domain::ALERT_STATE, &[], &b, &mut out) {
                            Ok(id) => {
                                // Sealed under a previous key: reseal under
                                // the current one at the next save, so the
                                // old key can be retired.
                                s.dirty |= id != k.current();
                                Ok(out)
                            }
                            Err(e) => Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                format!("cannot open: {e}"),
                            )),
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Encryption was just turned on: take the old state.
                        let r = std::fs::read(&plain);
                        if r.is_ok() {
                            s.stale_plain = Some(plain.clone());
                            s.dirty = true;
                        }
                        r
                    }
                    Err(e) => Err(e),
                };
                (sealed, read)
            }
            None => (plain.clone(), std::fs::read(&plain)),
        };
        s.path = Some(path.clone());
        s.keys = keys;
        match read.and_then(|bytes| {
            serde_json::from_slice::<File>(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        }) {
            Ok(f) if f.version == 1 => {
                s.total = f
                    .rules
                    .values()
                    .flat_map(|k| k.values())
                    .map(|v| v.len())
                    .sum();
                s.rules = f.rules;
                s.trim();
            }
            Ok(f) => {
                tracing::error!(file = %path.display(), version = f.version, "first-seen state of an unknown version; starting over")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let mut aside = path.clone().into_os_string();
                aside.push(".corrupt");
                let aside = PathBuf::from(aside);
                tracing::error!(file = %path.display(), error = %e, moved_to = %aside.display(), "first-seen state unreadable; set aside, starting over");
                if path.exists() {
                    std::fs::rename(&path, &aside)?;
                }
            }
            Err(e) => return Err(e),
        }
        Ok(s)
    }

    /// Records `value` for `key` under `rule` at `ts` (Unix ms).
    pub fn observe(&mut self, rule: &str, key: &str, value: &str, ts: i64) -> Seen {
        let keys = match self.rules.get_mut(rule) {
            Some(k) => k,
            None => self.rules.entry(rule.to_string()).or_default(),
        };
        let values = match keys.get_mut(key) {
            Some(v) => v,
            None => keys.entry(key.to_string()).or_default(),
        };
        if let Some(last) = values.get_mut(value) {
            if ts > *last {
                *last = ts;
            }
            return Seen::Known;
        }
        let seen = if values.is_empty() {
            Seen::NewKey
        } else {
            Seen::NewValue
        };
        values.insert(value.to_string(), ts);
        self.total += 1;
        self.dirty = true;
        if self.total > self.max {
            self.trim();
        }
        seen
    }

    /// Forgets the least recently seen tenth when over the bound.
    fn trim(&mut self) {
        if self.total <= self.max {
            return;
        }
        let keep = self.max - self.max / 10;
        let mut all: Vec<i64> = self
            .rules
            .values()
            .flat_map(|k| k.values())
            .flat_map(|v| v.values().copied())
            .collect();
        let drop = all.len() - keep;
        let (_, cut, _) = all.select_nth_unstable(drop);
        let cut = *cut;
        let mut left = self.total;
        for keys in self.rules.values_mut() {
            for values in keys.values_mut() {
                values.retain(|_, ts| {
                    let forget = *ts < cut && left > keep;
                    left -= usize::from(forget);
                    !forget
                });
            }
            keys.retain(|_, v| !v.is_empty());
        }
        self.rules.retain(|_, k| !k.is_empty());
        tracing::info!(
            forgotten = self.total - left,
            kept = left,
            "first-seen memory full; forgot the least recently seen values"
        );
        self.total = left;
        self.dirty = true;
    }

    /// Pairs remembered.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether there is something to save.
    pub fn dirty(&self) -> bool {
        self.dirty && self.path.is_some()
    }

    /// Writes the state atomically, if it changed.
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let file = File {
            version: 1,
            rules: std::mem::take(&mut self.rules),
        };
        let bytes = serde_json::to_vec(&file);
        self.rules = file.rules;
        let mut bytes = bytes.map_err(std::io::Error::other)?;
        if let Some(k) = &self.keys {
            let mut sealed = Vec::with_capacity(bytes.len() + auditship_crypt::OVERHEAD);
            k.seal(
                auditship_crypt::Domain::ALERT_STATE,
                &[],
                &bytes,
                &mut sealed,
            )
            .map_err(std::io::Error::other)?;
            bytes = sealed;
        }
        crate::durable::replace(path, &bytes)?;
        if let Some(stale) = self.stale_plain.take() {
            std::fs::remove_file(&stale)?;
        }
        self.dirty = false;
        Ok(())
    }
}
