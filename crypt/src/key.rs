//! Data-encryption keys: generating, writing and loading key files, and the
//! key id that names a key without revealing it.
//!
//! # Key file
//!
//! ```text
//! 64 hex digits (the 32 key bytes), then optional whitespace (a newline)
//! ```
//!
//! `auditship key generate --out FILE` writes one with mode 0600 and never
//! overwrites an existing file. A systemd credential holds the same text
//! (`LoadCredential=store-key:/etc/auditship/store.key`), and the config
//! reaches it as `key_file = "${CREDENTIALS_DIRECTORY}/store-key"`. A key
//! file that other users may read (any "other" permission bit) is refused:
//! the key would protect nothing. Group access is allowed, for the
//! packaged `root:auditship 0640` layout.
//!
//! # Key id
//!
//! ```text
//! id = SHA-256("auditship key id v1" || 0x00 || key)[0..8], shown as 16 hex digits
//! ```
//!
//! Sealed records carry it, so a reader picks the right key after a
//! rotation and an error names the key a store needs. It reveals nothing
//! useful about the key (a truncated hash of 256 random bits under its own
//! domain string); 64 bits keep accidental collisions among the handful of
//! keys an operator rotates through out of reach.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

const ID_DOMAIN: &[u8] = b"auditship key id v1\0";

/// The public name of a key: 8 bytes of a domain-separated SHA-256 of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A 256-bit data-encryption key. Its bytes are wiped when it is dropped
/// and never printed (`Debug` shows the id).
pub struct Key {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
    origin: Option<PathBuf>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Key file failures; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("key file {path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Other users may read the file.
    #[error(
        "key file {path} has mode {mode:o}: other users may read it; chmod o-rwx (0600 or 0640)"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `generate` refuses to replace a key: data sealed under it would be lost.
    #[error("key file {path} already exists; refusing to overwrite a key (data encrypted under it would become unreadable)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The operating system's random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

impl Key {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        let bytes = Zeroizing::new(bytes);
        let id = id_of(&bytes);
        Key {
            bytes,
            id,
            origin: None,
        }
    }

    /// A new random key (from the operating system's `getrandom`).
    pub fn generate() -> Result<Key, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Key::from_bytes(*bytes))
    }

    /// Parses key file text: 64 hex digits, trailing whitespace ignored.
    pub fn parse(text: &str) -> Result<Key, String> {
        let t = text.trim_end();
        if t.len() != 2 * KEY_LEN || !t.is_ascii() {
            return Err(format!(
                "expected 64 hex digits (32 key bytes), found {} characters; generate a key with `auditship key generate --out FILE`",
                t.chars().count()
            ));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16)
                .map_err(|_| format!("not a hex digit pair at offset {}", 2 * i))?;
        }
        Ok(Key::from_bytes(*bytes))
    }

    /// Loads the key file at `path` (see the module docs); the key
    /// remembers the path, for error messages.
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        let io = |source| KeyError::Io {
            path: path.into(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(KeyError::Exposed {
                path: path.into(),
                mode,
            });
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        let mut key = Key::parse(&text).map_err(|message| KeyError::Format {
            path: path.into(),
            message,
        })?;
        key.origin = Some(path.to_path_buf());
        Ok(key)
    }

    /// Writes the key to a new file at `path` with mode 0600, durably, and
    /// never over an existing file: the text goes to a temporary file,
    /// which is fsynced and then hard-linked to `path` (which fails if
    /// `path` exists), and the directory is fsynced.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.into(),
            source,
        };
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeyError::Exists { path: path.into() });
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".tmp-{}", std::process::id()));
        let tmp = dir.join(name);
        let _ = fs::remove_file(&tmp);
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            let mut text = Zeroizing::new(String::with_capacity(2 * KEY_LEN + 1));
            for b in self.bytes.iter() {
                text.push_str(&format!("{b:02x}"));
            }
            text.push('\n');
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::hard_link(&tmp, path)
        })();
        let _ = fs::remove_file(&tmp);
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(KeyError::Exists { path: path.into() })
            }
            r => r.map_err(io)?,
        }
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The file the key was loaded from, if any.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    /// The key bytes (for the cipher).
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

fn id_of(key: &[u8; KEY_LEN]) -> KeyId {
    let mut h = Sha256::new();
    h.update(ID_DOMAIN);
    h.update(key);
    let d = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    KeyId(id)
}
