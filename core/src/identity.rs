//! Ed25519 identities: the agent's key that signs its batches, and the
//! collector's key that signs checkpoints.
//!
//! # Key files
//!
//! ```text
//! secret key file (mode 0600, created at first start):
//!   "auditship-ed25519-secret-v1 " <64 lowercase hex: the 32-byte Ed25519 seed> "\n"
//! public key (printed for enrolment, passed to `verify --pubkey`):
//!   <64 lowercase hex: the 32-byte Ed25519 public key>, surrounding whitespace ignored;
//!   a file holding the "auditship-ed25519-public-v1 <hex>" line is accepted too
//! key id:
//!   the first 16 hex digits of SHA-256(public key bytes)
//! ```
//!
//! A secret key file is created with a write to a temporary file opened
//! with mode 0600, `fsync`, rename, and `fsync` of the directory, so a
//! crash leaves either no key or the whole key. An existing key file that
//! others can read is refused rather than used: a signing key anyone on the
//! host can copy proves nothing.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hex;

const SECRET_TAG: &str = "auditship-ed25519-secret-v1";
const PUBLIC_TAG: &str = "auditship-ed25519-public-v1";

/// Why a key could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not hold a key in the documented form.
    #[error("{path}: {message}")]
    Format {
        /// The key file (or "<text>" for inline keys).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The secret key file is readable by group or others.
    #[error("{path}: secret key is readable by others (mode {mode:o}); run chmod 600 on it")]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The operating system had no randomness to give.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// A signing identity.
pub struct Identity {
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public().to_hex())
            .finish()
    }
}

impl Identity {
    /// Loads the key at `path`, or creates it (mode 0600) when there is no
    /// file. The flag says whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Identity, bool), KeyError> {
        match fs::metadata(path) {
            Ok(_) => Ok((Identity::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
                let id = Identity {
                    key: SigningKey::from_bytes(&seed),
                };
                id.write(path)?;
                Ok((id, true))
            }
            Err(source) => Err(KeyError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    /// Loads an existing secret key file.
    pub fn load(path: &Path) -> Result<Identity, KeyError> {
        let io = |source| KeyError::Io {
            path: path.into(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.into(),
                mode,
            });
        }
        let text = fs::read_to_string(path).map_err(io)?;
        let seed = text
            .trim()
            .strip_prefix(SECRET_TAG)
            .and_then(|rest| hex::decode_array::<32>(rest.trim()))
            .ok_or_else(|| KeyError::Format {
                path: path.into(),
                message: format!(
                    "not a secret key file (expected \"{SECRET_TAG} <64 hex digits>\")"
                ),
            })?;
        Ok(Identity {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// An identity from a seed (tests and benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> Identity {
        Identity {
            key: SigningKey::from_bytes(&seed),
        }
    }

    fn write(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.into(),
            source,
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        writeln!(f, "{SECRET_TAG} {}", hex::encode(self.key.as_bytes())).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = dir {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// Signs `message`; the 64-byte signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 64 hex digits (or the tagged line form).
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let t = text.trim();
        let t = t.strip_prefix(PUBLIC_TAG).map(str::trim).unwrap_or(t);
        let bytes = hex::decode_array::<32>(t)
            .ok_or_else(|| "a public key is 64 hex digits".to_string())?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| format!("not an Ed25519 public key: {e}"))
    }

    /// Reads a public key file.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.into(),
            source,
        })?;
        PublicKey::parse(&text).map_err(|message| KeyError::Format {
            path: path.into(),
            message,
        })
    }

    /// The 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The short id: 16 hex digits of SHA-256 of the key.
    pub fn key_id(&self) -> String {
        let d = Sha256::digest(self.0.as_bytes());
        hex::encode(&d[..8])
    }

    /// Whether `signature` is this key's signature of `message`. Strict
    /// verification: no malleable or small-order forms.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &sig).is_ok()
    }

    /// [`verify`](Self::verify) with the signature in hex.
    pub fn verify_hex(&self, message: &[u8], signature: &str) -> bool {
        hex::decode_array::<64>(signature).is_some_and(|s| self.verify(message, &s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_private_reloads_the_same_and_signs_verifiably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/identity.key");
        let (a, created) = Identity::load_or_create(&path).unwrap();
        assert!(created);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (b, created) = Identity::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.public(), b.public());

        let sig = b.sign(b"message");
        let public = PublicKey::parse(&format!("{}\n", a.public().to_hex())).unwrap();
        assert!(public.verify(b"message", &sig));
        assert!(!public.verify(b"messagE", &sig));
        let other = Identity::from_seed([7; 32]);
        assert!(!other.public().verify(b"message", &sig));
        assert_eq!(public.key_id().len(), 16);
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        Identity::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::Exposed { mode: 0o644, .. }),
            "{err}"
        );
    }

    #[test]
    fn malformed_keys_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "not a key\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = Identity::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a secret key file"), "{err}");
        assert!(PublicKey::parse("abcd").is_err());
        assert!(PublicKey::parse(&"zz".repeat(32)).is_err());
    }
}
