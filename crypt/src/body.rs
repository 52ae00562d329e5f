//! The cipher step of a file of framed records: record bodies either in the
//! clear or sealed with the [`Keyring`], chosen per file (its header says
//! which). The store and the queue put it between a record's frame (length
//! and CRC32C over what is stored) and its body encoding, so their
//! encoders and scanners change only by taking one.

use crate::cipher::{Domain, Keyring, OpenError, SealError, OVERHEAD};

/// How the bodies of one file are stored, and the associated data sealed
/// ones are bound to: a [`Domain`] and a 64-bit context (the store's
/// segment number; 0 for the queue).
#[derive(Clone, Copy, Debug)]
pub struct BodyCipher<'k> {
    /// `None`: in the clear.
    keys: Option<&'k Keyring>,
    domain: Domain,
    context: u64,
}

impl<'k> BodyCipher<'k> {
    /// Bodies in the clear.
    pub fn plain() -> Self {
        BodyCipher {
            keys: None,
            domain: Domain::STORE_RECORD,
            context: 0,
        }
    }

    /// Bodies sealed under `keys` (new ones under the current key, existing
    /// ones under whichever key they name), bound to `domain` and `context`.
    pub fn sealed(keys: &'k Keyring, domain: Domain, context: u64) -> Self {
        BodyCipher {
            keys: Some(keys),
            domain,
            context,
        }
    }

    /// Whether bodies are sealed.
    pub fn encrypted(&self) -> bool {
        self.keys.is_some()
    }

    /// Bytes a stored body has beyond its plaintext.
    pub fn overhead(&self) -> usize {
        if self.encrypted() {
            OVERHEAD
        } else {
            0
        }
    }

    /// Starts a body at the end of `out`; the plaintext body is appended
    /// next, then [`BodyCipher::finish`] is called with the result.
    pub fn begin(&self, out: &mut Vec<u8>) -> usize {
        if self.encrypted() {
            Keyring::begin(out)
        } else {
            out.len()
        }
    }

    /// Seals the body started at `at` (nothing to do in the clear).
    pub fn finish(&self, out: &mut Vec<u8>, at: usize) -> Result<(), SealError> {
        match self.keys {
            Some(k) => k.seal_in_place(self.domain, &self.context.to_le_bytes(), out, at),
            None => Ok(()),
        }
    }

    /// The plaintext of a stored body: `stored` itself in the clear,
    /// otherwise opened into `scratch`.
    pub fn open<'a>(
        &self,
        stored: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], OpenError> {
        let Some(k) = self.keys else {
            return Ok(stored);
        };
        k.open(self.domain, &self.context.to_le_bytes(), stored, scratch)?;
        let plain: &'a Vec<u8> = scratch;
        Ok(plain)
    }
}
