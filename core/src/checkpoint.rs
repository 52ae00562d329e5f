//! Signed checkpoints: the collector's signed statement "my log holds
//! `size` records and their Merkle root is `root`".
//!
//! # Format
//!
//! A checkpoint travels and rests as one JSON object:
//!
//! ```text
//! {"origin":"<log name>","size":<records>,"root":"<64 lowercase hex>","time":"<RFC 3339, UTC>",
//!  "key_id":"<16 hex>","signature":"<128 hex>"}
//! ```
//!
//! The signature is Ed25519, by the collector's key, over exactly these
//! bytes (numbers in decimal, every line ending in `\n`; `origin`, `root`
//! and `time` are the values of the JSON strings as they stand, without
//! quotes and not reformatted, so an uppercase `root` does not verify):
//!
//! ```text
//! auditship-checkpoint-v1
//! <origin>
//! <size>
//! <root, 64 lowercase hex>
//! <time, as in the JSON>
//! ```
//!
//! `root` is the RFC 9162 Merkle tree hash of the first `size` records of
//! the log, in store order (leaves as `seal` defines them, hashing as in
//! `merkle`); for `size` 0 it is
//! SHA-256 of the empty string. `key_id` names the key (see
//! [`crate::identity`]) and is not signed: a verifier trusts the key it was
//! given, never one a checkpoint points to. The origin must not contain a
//! newline.

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, PublicKey};
use crate::{hex, Hash, Timestamp};

/// A checkpoint with its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    /// Which log this is.
    pub origin: String,
    /// Records covered.
    pub size: u64,
    /// Merkle root of the first `size` records (hex).
    pub root: String,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// Id of the signing key.
    pub key_id: String,
    /// Ed25519 signature of [`SignedCheckpoint::message`] (hex).
    pub signature: String,
}

/// Why a checkpoint is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// A field is malformed.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The signature does not verify with the given key.
    #[error("checkpoint signature does not verify with key {key_id} (size {size}, signed {time})")]
    BadSignature {
        /// The key tried.
        key_id: String,
        /// The checkpoint's size.
        size: u64,
        /// The checkpoint's time.
        time: String,
    },
}

impl SignedCheckpoint {
    /// Signs a checkpoint of `size` records with root `root`, now.
    pub fn sign(origin: &str, size: u64, root: &Hash, key: &Identity) -> SignedCheckpoint {
        Self::sign_at(origin, size, root, Timestamp::now_utc(), key)
    }

    /// Signs a checkpoint with the given time.
    pub fn sign_at(
        origin: &str,
        size: u64,
        root: &Hash,
        time: Timestamp,
        key: &Identity,
    ) -> SignedCheckpoint {
        let mut buf = [0u8; 35];
        let n = time.to_utc().write_rfc3339(&mut buf);
        let mut cp = SignedCheckpoint {
            origin: origin.replace('\n', " "),
            size,
            root: hex::encode(root),
            time: String::from_utf8_lossy(&buf[..n]).into_owned(),
            key_id: key.public().key_id(),
            signature: String::new(),
        };
        cp.signature = hex::encode(&key.sign(&cp.message()));
        cp
    }

    /// The signed bytes.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "auditship-checkpoint-v1\n{}\n{}\n{}\n{}\n",
            self.origin, self.size, self.root, self.time
        )
        .into_bytes()
    }

    /// The root as bytes.
    pub fn root_hash(&self) -> Result<Hash, CheckpointError> {
        hex::decode_hash(&self.root).ok_or_else(|| {
            CheckpointError::Malformed(format!("root {:?} is not 64 hex digits", self.root))
        })
    }

    /// The signing time in Unix milliseconds.
    pub fn time_millis(&self) -> Result<i64, CheckpointError> {
        Timestamp::parse_rfc3339(&self.time, 0)
            .map(|(t, _)| t.unix_millis())
            .ok_or_else(|| {
                CheckpointError::Malformed(format!("time {:?} is not RFC 3339", self.time))
            })
    }

    /// Checks the signature with `key`, and the shape of every field.
    pub fn verify(&self, key: &PublicKey) -> Result<Hash, CheckpointError> {
        let root = self.root_hash()?;
        self.time_millis()?;
        if self.origin.contains('\n') {
            return Err(CheckpointError::Malformed(
                "origin contains a newline".into(),
            ));
        }
        if !key.verify_hex(&self.message(), &self.signature) {
            return Err(CheckpointError::BadSignature {
                key_id: key.key_id(),
                size: self.size,
                time: self.time.clone(),
            });
        }
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_breaks_it() {
        let key = Identity::from_seed([3; 32]);
        let cp = SignedCheckpoint::sign("test log", 42, &[9; 32], &key);
        assert_eq!(cp.verify(&key.public()), Ok([9; 32]));
        assert_eq!(cp.key_id, key.public().key_id());
        let json = serde_json::to_string(&cp).unwrap();
        let back: SignedCheckpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cp);

        let mut bigger = cp.clone();
        bigger.size = 43;
        assert!(matches!(
            bigger.verify(&key.public()),
            Err(CheckpointError::BadSignature { .. })
        ));
        let mut other_root = cp.clone();
        other_root.root = hex::encode(&[8; 32]);
        assert!(other_root.verify(&key.public()).is_err());
        let mut later = cp.clone();
        later.time = "2099-01-01T00:00:00Z".into();
        assert!(later.verify(&key.public()).is_err());
        let forger = Identity::from_seed([4; 32]);
        assert!(cp.verify(&forger.public()).is_err());
        let mut resigned = SignedCheckpoint::sign("test log", 43, &[9; 32], &forger);
        resigned.key_id = cp.key_id.clone();
        assert!(
            resigned.verify(&key.public()).is_err(),
            "a key id claims nothing"
        );
    }

    #[test]
    fn the_signed_message_is_the_documented_text() {
        let key = Identity::from_seed([3; 32]);
        let t = Timestamp::parse_rfc3339("2026-11-22T10:00:00.5Z", 0)
            .unwrap()
            .0;
        let cp = SignedCheckpoint::sign_at("o", 7, &[0xab; 32], t, &key);
        let text = String::from_utf8(cp.message()).unwrap();
        let expected = format!(
            "auditship-checkpoint-v1\no\n7\n{}\n{}\n",
            "ab".repeat(32),
            cp.time
        );
        assert_eq!(text, expected);
        assert!(cp.time.starts_with("2026-11-22T10:00:00.5"), "{}", cp.time);
        assert_eq!(cp.time_millis().unwrap(), t.unix_millis());
    }
}
