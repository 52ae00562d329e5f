//! The cipher step of a segment: how its record bodies (and its index
//! sections) are stored, in the clear or sealed with the record cipher of
//! `auditship_crypt` (XChaCha20-Poly1305).
//!
//! A segment's header says which: format version 2 is in the clear,
//! version 3 sealed. The step sits between a record's frame (length and
//! CRC32C, over what is stored) and its body (what [`super::format`]
//! encodes), so every caller of the format is unchanged apart from naming
//! the segment's [`SegmentCipher`].
//!
//! Associated data of a sealed record: the domain "auditship store record
//! v1", the key id, and the segment number (u64 LE). The segment number
//! binds a record to its file, so a record moved into another segment does
//! not open; offsets are not bound, so a rewriter (retention) may drop or
//! shorten records and move the rest within the segment. Everything else
//! (kind, leaf index, agent, seq, payload) is inside the body.
//!
//! # For a segment rewriter
//!
//! To rewrite segment `no` (e.g. retention replacing payloads), read each
//! record with [`super::format::open_frame`] and the segment's cipher
//! ([`SegmentCipher::for_header`]), and write new ones with
//! [`super::format::frame_body`] (or `encode_event`/`encode_snapshot`)
//! and [`SegmentCipher::for_writing`] with the store's current keys, under
//! a header from [`super::format::header`] with the same mode. Records
//! kept as they are may be copied as raw frames only into a segment of the
//! same number.

use std::path::Path;

use auditship_crypt::{BodyCipher, Domain, KeyId, Keyring, OpenError, SealError};

use super::format;
use crate::store::StoreError;

/// How the bodies of one segment are stored: a [`BodyCipher`] bound to
/// the segment's number.
#[derive(Clone, Copy, Debug)]
pub struct SegmentCipher<'k> {
    body: BodyCipher<'k>,
    no: u64,
}

impl<'k> SegmentCipher<'k> {
    /// Bodies in the clear (format version 2).
    pub fn plain(no: u64) -> Self {
        SegmentCipher {
            body: BodyCipher::plain(),
            no,
        }
    }

    /// Bodies sealed under `keys` (format version 3): new ones under the
    /// current key, existing ones under whichever key they name.
    pub fn sealed(keys: &'k Keyring, no: u64) -> Self {
        SegmentCipher {
            body: BodyCipher::sealed(keys, Domain::STORE_RECORD, no),
            no,
        }
    }

    /// The cipher new segment `no` is written with: sealed when the store
    /// has keys.
    pub fn for_writing(keys: Option<&'k Keyring>, no: u64) -> Self {
        match keys {
            Some(k) => SegmentCipher::sealed(k, no),
            None => SegmentCipher::plain(no),
        }
    }

    /// The cipher to read segment `no`, whose file starts with `data` (a
    /// valid header). An encrypted segment without keys is an error
    /// naming the key it needs.
    pub fn for_header(
        data: &[u8],
        no: u64,
        keys: Option<&'k Keyring>,
        path: &Path,
    ) -> Result<Self, StoreError> {
        if !format::is_encrypted(data) {
            return Ok(SegmentCipher::plain(no));
        }
        match keys {
            Some(k) => Ok(SegmentCipher::sealed(k, no)),
            None => Err(key_error(path, format::first_key_id(data), None)),
        }
    }

    /// Whether bodies are sealed.
    pub fn encrypted(&self) -> bool {
        self.body.encrypted()
    }

    /// The segment number.
    pub fn segment(&self) -> u64 {
        self.no
    }

    /// Bytes a stored body has beyond its plaintext.
    pub fn overhead(&self) -> usize {
        self.body.overhead()
    }

    /// See [`BodyCipher::begin`].
    pub fn begin(&self, out: &mut Vec<u8>) -> usize {
        self.body.begin(out)
    }

    /// See [`BodyCipher::finish`].
    pub fn finish(&self, out: &mut Vec<u8>, at: usize) -> Result<(), SealError> {
        self.body.finish(out, at)
    }

    /// See [`BodyCipher::open`].
    pub fn open<'a>(
        &self,
        stored: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], OpenError> {
        self.body.open(stored, scratch)
    }
}

/// The error for a store encrypted under a key that was not given: names
/// the file, the key id the store needs and the keys (ids and files) given.
pub fn key_error(path: &Path, needed: Option<KeyId>, keys: Option<&Keyring>) -> StoreError {
    let needed = needed.map_or_else(|| "(unreadable)".to_string(), |k| k.to_string());
    let given = match keys {
        None => "no key was given: set [store.encryption] key_file (auditship verify and store commands: --key-file)".to_string(),
        Some(k) => format!(
            "the keys given are {}: add the key with id {needed} (key_file or previous_key_files; --key-file)",
            k.describe()
        ),
    };
    StoreError::Key {
        path: path.to_path_buf(),
        needed,
        given,
    }
}
