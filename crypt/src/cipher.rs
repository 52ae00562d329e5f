//! The record cipher: XChaCha20-Poly1305 around one record body at a time.
//!
//! # Sealed record
//!
//! ```text
//! key_id  8 bytes   id of the key that sealed it (see crate::key)
//! nonce  24 bytes   random
//! ct      n bytes   the plaintext body, encrypted (same length)
//! tag    16 bytes   Poly1305 tag over the associated data and ct
//! ```
//!
//! 48 bytes of overhead ([`OVERHEAD`]) per record.
//!
//! # Associated data
//!
//! ```text
//! domain text | 0x00 | key_id (8) | context (the caller's bytes)
//! ```
//!
//! * The **domain** says what kind of thing the ciphertext is (a store
//!   record, a store index section, a queue record; [`Domain`]), so a
//!   ciphertext of one kind is never accepted as another even under one key.
//! * The **key id** is bound so that the id in the clear header cannot be
//!   swapped to make a reader try, and report, another key.
//! * The **context** is the caller's: the store binds the segment number, so
//!   a record copied into another segment fails to open (offsets are not
//!   bound: a segment rewriter may move records within their segment).
//!
//! Everything about a record that matters for integrity (its leaf index, its
//! chain hash) is inside the encrypted body and therefore authenticated too.
//!
//! # Nonces
//!
//! Random 24-byte nonces: with XChaCha20's 192-bit nonce the chance that
//! two records under one key ever share a nonce stays negligible at any
//! volume (about 2^-97 after 2^48 records), with no counter to keep across
//! restarts, rotations or processes. They come from the operating system's
//! `getrandom`, drawn 4 KiB at a time into a per-thread pool: one
//! `getrandom` call costs about 480 ns on the reference machine (glibc 2.36
//! has no vDSO `getrandom`), as much as sealing a 400-byte record, while the
//! pool costs a few ns per nonce. The pool holds nothing secret (nonces are
//! written in the clear).

use std::cell::RefCell;
use std::path::PathBuf;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use crate::key::{Key, KeyId};

/// Bytes of the key id in a sealed record.
pub const KEY_ID_LEN: usize = 8;
/// Bytes of the nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes before the ciphertext: key id and nonce.
pub const HEADER_LEN: usize = KEY_ID_LEN + NONCE_LEN;
/// Bytes of the Poly1305 tag after it.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a body.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Longest domain text plus context kept on the stack.
const AAD_STACK: usize = 128;

/// What a sealed record is: the first part of its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain(&'static str);

impl Domain {
    /// A record body of a collector store segment.
    pub const STORE_RECORD: Domain = Domain("auditship store record v1");
    /// A section of a collector store segment index.
    pub const STORE_INDEX: Domain = Domain("auditship store index v1");
    /// A record body of an agent queue segment.
    pub const QUEUE_RECORD: Domain = Domain("auditship queue record v1");
    /// The collector's alert state (first-seen memory: users and addresses).
    pub const ALERT_STATE: Domain = Domain("auditship alert state v1");

    /// The domain text.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// Sealing failures.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The operating system's random source failed.
    #[error("no randomness for a nonce: {0}")]
    Random(String),
    /// The body is beyond what one nonce may encrypt (256 GiB).
    #[error("record too large to encrypt")]
    TooLarge,
}

/// Why a sealed record does not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Too short to be a sealed record.
    #[error("too short to be an encrypted record")]
    Short,
    /// Sealed under a key that is not in the keyring.
    #[error("encrypted under key {0}, which was not given")]
    UnknownKey(KeyId),
    /// The key is known but the tag does not match: the record (or its
    /// associated data) was altered or damaged.
    #[error("fails authentication under key {0}: altered or damaged")]
    Forged(KeyId),
}

struct Slot {
    id: KeyId,
    origin: Option<PathBuf>,
    aead: XChaCha20Poly1305,
}

/// The keys a process holds: the current one, which seals, and previous
/// ones, which only open records sealed before a rotation. Share it with an
/// `Arc`; it is not `Clone`.
pub struct Keyring {
    /// `slots[0]` is the current key.
    slots: Vec<Slot>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({})", self.describe())
    }
}

thread_local! {
    static POOL: RefCell<(Box<[u8; 4096]>, usize)> = RefCell::new((Box::new([0; 4096]), 4096));
}

fn nonce() -> Result<[u8; NONCE_LEN], SealError> {
    POOL.with(|p| {
        let (buf, used) = &mut *p.borrow_mut();
        if *used + NONCE_LEN > buf.len() {
            getrandom::fill(&mut buf[..]).map_err(|e| SealError::Random(e.to_string()))?;
            *used = 0;
        }
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(&buf[*used..*used + NONCE_LEN]);
        // Never hand out the same pool bytes twice.
        buf[*used..*used + NONCE_LEN].fill(0);
        *used += NONCE_LEN;
        Ok(n)
    })
}

/// Calls `f` with the associated data of `domain`, `id` and `context`.
fn with_aad<R>(domain: Domain, id: KeyId, context: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let d = domain.0.as_bytes();
    let n = d.len() + 1 + KEY_ID_LEN + context.len();
    let fill = |out: &mut [u8]| {
        out[..d.len()].copy_from_slice(d);
        out[d.len()] = 0;
        out[d.len() + 1..d.len() + 1 + KEY_ID_LEN].copy_from_slice(&id.0);
        out[d.len() + 1 + KEY_ID_LEN..].copy_from_slice(context);
    };
    if n <= AAD_STACK {
        let mut buf = [0u8; AAD_STACK];
        fill(&mut buf[..n]);
        f(&buf[..n])
    } else {
        let mut buf = vec![0u8; n];
        fill(&mut buf);
        f(&buf)
    }
}

impl Keyring {
    /// A keyring sealing with `current` and also opening with `previous`
    /// (a key listed twice counts once).
    pub fn new(current: Key, previous: impl IntoIterator<Item = Key>) -> Keyring {
        let mut slots: Vec<Slot> = Vec::new();
        for k in std::iter::once(current).chain(previous) {
            if slots.iter().any(|s| s.id == k.id()) {
                continue;
            }
            slots.push(Slot {
                id: k.id(),
                origin: k.origin().map(|p| p.to_path_buf()),
                aead: XChaCha20Poly1305::new(k.bytes().into()),
            });
        }
        Keyring { slots }
    }

    /// Loads the current key from `key_file` and earlier ones from
    /// `previous` (see [`Key::load`]).
    pub fn load(
        key_file: &std::path::Path,
        previous: &[PathBuf],
    ) -> Result<Keyring, crate::KeyError> {
        let current = Key::load(key_file)?;
        let previous = previous
            .iter()
            .map(|p| Key::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keyring::new(current, previous))
    }

    /// The id of the key that seals.
    pub fn current(&self) -> KeyId {
        self.slots[0].id
    }

    /// Every key id, the current first.
    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.slots.iter().map(|s| s.id)
    }

    /// Whether the keyring holds key `id`.
    pub fn knows(&self, id: KeyId) -> bool {
        self.slots.iter().any(|s| s.id == id)
    }

    /// The keys for an error message: ids and the files they came from,
    /// never key bytes. E.g. `key 1a2b… (from /etc/x.key); previous keys: none`.
    pub fn describe(&self) -> String {
        let one = |s: &Slot| match &s.origin {
            Some(p) => format!("{} (from {})", s.id, p.display()),
            None => s.id.to_string(),
        };
        let prev: Vec<String> = self.slots[1..].iter().map(one).collect();
        format!(
            "key {}; previous keys: {}",
            one(&self.slots[0]),
            if prev.is_empty() {
                "none".to_string()
            } else {
                prev.join(", ")
            }
        )
    }

    /// Reserves the header of a sealed record at the end of `buf`; the
    /// plaintext is appended after it, then [`Keyring::seal_in_place`]
    /// is called with the returned offset.
    pub fn begin(buf: &mut Vec<u8>) -> usize {
        let at = buf.len();
        buf.extend_from_slice(&[0; HEADER_LEN]);
        at
    }

    /// Seals the plaintext `buf[at + HEADER_LEN..]` in place under the
    /// current key: fills the header reserved by [`Keyring::begin`],
    /// encrypts, and appends the tag.
    pub fn seal_in_place(
        &self,
        domain: Domain,
        context: &[u8],
        buf: &mut Vec<u8>,
        at: usize,
    ) -> Result<(), SealError> {
        let slot = &self.slots[0];
        let n = nonce()?;
        buf[at..at + KEY_ID_LEN].copy_from_slice(&slot.id.0);
        buf[at + KEY_ID_LEN..at + HEADER_LEN].copy_from_slice(&n);
        let tag = with_aad(domain, slot.id, context, |aad| {
            slot.aead.encrypt_in_place_detached(
                XNonce::from_slice(&n),
                aad,
                &mut buf[at + HEADER_LEN..],
            )
        })
        .map_err(|_| SealError::TooLarge)?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Appends `plaintext`, sealed under the current key, to `out`.
    pub fn seal(
        &self,
        domain: Domain,
        context: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        let at = Keyring::begin(out);
        out.extend_from_slice(plaintext);
        self.seal_in_place(domain, context, out, at)
    }

    /// Opens the sealed record `sealed` into `out` (replacing its content);
    /// returns the id of the key that opened it.
    pub fn open(
        &self,
        domain: Domain,
        context: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<KeyId, OpenError> {
        let id = key_id_of(sealed).ok_or(OpenError::Short)?;
        let slot = self
            .slots
            .iter()
            .find(|s| s.id == id)
            .ok_or(OpenError::UnknownKey(id))?;
        let nonce = XNonce::from_slice(&sealed[KEY_ID_LEN..HEADER_LEN]);
        let (ct, tag) = sealed[HEADER_LEN..].split_at(sealed.len() - OVERHEAD);
        out.clear();
        out.extend_from_slice(ct);
        with_aad(domain, id, context, |aad| {
            slot.aead
                .decrypt_in_place_detached(nonce, aad, out, Tag::from_slice(tag))
        })
        .map_err(|_| {
            out.clear();
            OpenError::Forged(id)
        })?;
        Ok(id)
    }
}

/// The key id in the header of a sealed record (`None` if it is too short
/// to be one).
pub fn key_id_of(sealed: &[u8]) -> Option<KeyId> {
    if sealed.len() < OVERHEAD {
        return None;
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[..KEY_ID_LEN]);
    Some(KeyId(id))
}
