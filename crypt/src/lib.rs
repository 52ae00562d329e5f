//! Encryption at rest for auditship: key files and the record cipher.
//!
//! Two concepts, one file each:
//!
//! * [`key`]: a data-encryption key (32 random bytes, stored as 64 hex
//!   digits in a file or a systemd credential) and its public [`KeyId`].
//! * [`cipher`]: the record cipher, XChaCha20-Poly1305 with random 24-byte
//!   nonces, over a [`Keyring`] (the current key, which seals, and previous
//!   keys, which only open what was sealed before a rotation). A sealed
//!   record carries the id of its key, so a reader picks the right key and
//!   names a missing one.
//! * [`body`]: the cipher step of a file of framed records ([`BodyCipher`]),
//!   in the clear or sealed, as the store and the queue use it.
//!
//! The store (collector) and the disk queue (agent) put this cipher around
//! their record bodies; their module docs give the byte layouts and what
//! each binds into the associated data.

pub mod body;
pub mod cipher;
pub mod key;

pub use body::BodyCipher;
pub use cipher::{key_id_of, Domain, Keyring, OpenError, SealError, HEADER_LEN, OVERHEAD, TAG_LEN};
pub use key::{Key, KeyError, KeyId, KEY_LEN};

#[cfg(test)]
mod tests;
