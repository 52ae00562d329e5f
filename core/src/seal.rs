//! Sealing: the per-agent hash chain that makes every event tamper-evident
//! from the moment the agent read it.
//!
//! Each agent queue identity has one chain. The agent's sealer gives every
//! event its `seq`, then links it to the event before it:
//!
//! ```text
//! hash(e_n)      = SHA-256( prev_hash(e_n) ‖ canonical_v1(e_n) )     (32 raw bytes ‖ bytes)
//! prev_hash(e_n) = hash(e_{n-1});   prev_hash of a queue's first event = 32 zero bytes (GENESIS)
//! ```
//!
//! `canonical_v1` (see [`crate::canonical`]) leaves out `hash` and
//! `prev_hash`, and includes `agent_id` and `seq`, so a hash commits to the
//! event, its place in the chain and everything before it. Sequence numbers
//! of one chain increase but need not be consecutive: the agent's queue
//! spends numbers on position-only records too. The chain itself has no
//! holes: removing, inserting, reordering or altering any event breaks
//! every link after it.
//!
//! # Sealed form
//!
//! Where an event travels or rests with its chain fields (the agent's
//! queue, the collector's store, export bundles), it is written in the
//! *sealed form*: the canonical bytes with the two fields appended, in this
//! order and in exactly these bytes:
//!
//! ```text
//! sealed_v1(e) = canonical_v1(e) without its final "}"
//!                ‖ ,"hash":"<64 lowercase hex>","prev_hash":"<64 lowercase hex>"}
//! ```
//!
//! The suffix has a fixed length ([`SUFFIX_LEN`] bytes), so the canonical
//! bytes are recovered without parsing. A sealed line is ordinary JSON: a
//! third party checks it with `obj = json.loads(line)`, removes `hash` and
//! `prev_hash`, re-encodes the rest canonically (see `canonical`) and
//! compares `SHA-256(bytes.fromhex(prev_hash) + canonical)` with `hash`.
//!
//! # Merkle leaves
//!
//! In the collector's Merkle log (RFC 9162), the leaf input of a stored
//! event is its chain hash, the 32 raw bytes of `hash`:
//!
//! ```text
//! leaf_hash(e) = SHA-256( 0x00 ‖ hash(e) )
//! ```
//!
//! The chain hash already commits to every byte of the sealed form (the
//! canonical bytes and `prev_hash`), so hashing it again costs one SHA-256
//! block instead of another pass over the whole event. A verifier must
//! recompute `hash` from the event (above) before it trusts the leaf.
//!
//! # Batch signatures
//!
//! A wire batch (see [`crate::wire`]) carries the chain hash before its
//! first event and the hash of its last event, and the agent signs, with its
//! Ed25519 identity key ([`crate::identity`]), the bytes of
//! [`batch_message`]:
//!
//! ```text
//! "auditship-batch-v2\n" agent_id "\n" queue "\n" first "\n" last "\n"
//!   events "\n" prev_hash "\n" last_hash "\n"
//! ```
//!
//! (numbers in decimal, queue as its 16 hex digits, hashes in lowercase
//! hex). Because every event hash folds in the one before it, the signature
//! over the two ends covers every event between them.

use sha2::{Digest, Sha256};

use crate::{hex, Hash};

/// `prev_hash` of a chain's first event.
pub const GENESIS: Hash = [0u8; 32];

/// Bytes of the sealed suffix, which replaces the canonical form's final
/// `}`: `,"hash":"` (9) + 64 + `","prev_hash":"` (15) + 64 + `"}` (2).
pub const SUFFIX_LEN: usize = 9 + 64 + 15 + 64 + 2;

/// The chain hash of an event: `SHA-256(prev ‖ canonical)`.
pub fn chain_hash(prev: &Hash, canonical: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// Turns the canonical bytes in `buf` (which end in `}`) into the sealed
/// form in place, linking to `prev`; returns the event's hash.
pub fn seal_in_place(buf: &mut Vec<u8>, prev: &Hash) -> Hash {
    debug_assert_eq!(buf.last(), Some(&b'}'));
    let hash = chain_hash(prev, buf);
    buf.pop();
    append_suffix(buf, &hash, prev);
    hash
}

/// Appends the sealed form of `canonical` with the given hashes to `out`.
/// The caller vouches that `hash` is `chain_hash(prev, canonical)`.
pub fn write_sealed(out: &mut Vec<u8>, canonical: &[u8], hash: &Hash, prev: &Hash) {
    out.reserve(canonical.len() + SUFFIX_LEN);
    out.extend_from_slice(&canonical[..canonical.len().saturating_sub(1)]);
    append_suffix(out, hash, prev);
}

/// Appends the sealed suffix, built on the stack and copied once.
fn append_suffix(out: &mut Vec<u8>, hash: &Hash, prev: &Hash) {
    out.extend_from_slice(&suffix(hash, prev));
}

/// The sealed suffix for `hash` and `prev`, exactly as [`write_sealed`]
/// writes it.
pub fn suffix(hash: &Hash, prev: &Hash) -> [u8; SUFFIX_LEN] {
    const HASH_AT: usize = 9;
    const PREV_AT: usize = HASH_AT + 64 + 15;
    let mut s = [0u8; SUFFIX_LEN];
    s[..HASH_AT].copy_from_slice(b",\"hash\":\"");
    hex::encode_to_slice(hash, &mut s[HASH_AT..HASH_AT + 64]);
    s[HASH_AT + 64..PREV_AT].copy_from_slice(b"\",\"prev_hash\":\"");
    hex::encode_to_slice(prev, &mut s[PREV_AT..PREV_AT + 64]);
    s[PREV_AT + 64..].copy_from_slice(b"\"}");
    s
}

/// The Merkle leaf hash of an event with chain hash `hash` (see the
/// module docs).
pub fn leaf_of_hash(hash: &Hash) -> Hash {
    crate::merkle::leaf_hash(hash)
}

/// The Merkle leaf hash of a stored sealed line: that of its `hash` field.
/// Bytes that are not a sealed line (never written by a collector) hash as
/// themselves, so that they still count as a leaf and change the root.
pub fn leaf_of_sealed(line: &[u8]) -> Hash {
    match unseal(line) {
        Some(u) => leaf_of_hash(&u.hash),
        None => crate::merkle::leaf_hash(line),
    }
}

/// A sealed line taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsealed<'a> {
    /// The canonical bytes without their final `}`.
    pub head: &'a [u8],
    /// The `hash` field.
    pub hash: Hash,
    /// The `prev_hash` field.
    pub prev: Hash,
}

impl Unsealed<'_> {
    /// Recomputes the chain hash from the canonical bytes and `prev`.
    pub fn recompute(&self) -> Hash {
        let mut h = Sha256::new();
        h.update(self.prev);
        h.update(self.head);
        h.update(b"}");
        h.finalize().into()
    }

    /// Whether the stored `hash` is the recomputed one.
    pub fn is_intact(&self) -> bool {
        self.recompute() == self.hash
    }

    /// The canonical bytes (copied: they are `head` plus `}`).
    pub fn canonical(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.head.len() + 1);
        v.extend_from_slice(self.head);
        v.push(b'}');
        v
    }
}

/// The `hash` and `prev_hash` of a sealed line as their 64 hex digits,
/// checking the suffix's shape but not decoding the digits (the agent's
/// output compares neighbours' links for every event and decodes only the
/// two it signs). `None` when the line does not end in the suffix.
pub fn suffix_hex(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.len() < SUFFIX_LEN + 2 {
        return None;
    }
    let suffix = &line[line.len() - SUFFIX_LEN..];
    let rest = suffix.strip_prefix(b",\"hash\":\"")?;
    let (hash, rest) = rest.split_at(64);
    let rest = rest.strip_prefix(b"\",\"prev_hash\":\"")?;
    let (prev, rest) = rest.split_at(64);
    (rest == b"\"}").then_some((hash, prev))
}

/// Splits a sealed line into the canonical head and its two hashes, or
/// `None` when the line does not end in a well-formed suffix.
pub fn unseal(line: &[u8]) -> Option<Unsealed<'_>> {
    if line.len() < SUFFIX_LEN + 2 {
        return None;
    }
    let (head, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let rest = suffix.strip_prefix(b",\"hash\":\"")?;
    let (hash, rest) = rest.split_at(64);
    let rest = rest.strip_prefix(b"\",\"prev_hash\":\"")?;
    let (prev, rest) = rest.split_at(64);
    if rest != b"\"}" || head.last() == Some(&b'{') {
        return None;
    }
    Some(Unsealed {
        head,
        hash: hex::decode_hash(std::str::from_utf8(hash).ok()?)?,
        prev: hex::decode_hash(std::str::from_utf8(prev).ok()?)?,
    })
}

/// The bytes an agent signs for a batch (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn batch_message(
    agent_id: &str,
    queue: &str,
    first: u64,
    last: u64,
    events: u64,
    prev_hash: &Hash,
    last_hash: &Hash,
) -> Vec<u8> {
    format!(
        "auditship-batch-v2\n{agent_id}\n{queue}\n{first}\n{last}\n{events}\n{}\n{}\n",
        hex::encode(prev_hash),
        hex::encode(last_hash)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{canonical, AuditEvent};

    fn canonical_of(raw: &str, seq: u64) -> Vec<u8> {
        let mut ev = AuditEvent::unparsed(raw.into());
        ev.seq = Some(seq);
        ev.agent_id = Some("web-1".into());
        let mut out = Vec::new();
        canonical::encode_into(&ev, &mut out);
        out
    }

    #[test]
    fn a_sealed_line_is_json_with_both_hashes_and_unseals_to_its_parts() {
        let canon = canonical_of("line \"one\"", 7);
        let prev = chain_hash(&GENESIS, b"something earlier");
        let mut buf = canon.clone();
        let hash = seal_in_place(&mut buf, &prev);
        assert_eq!(buf.len(), canon.len() - 1 + SUFFIX_LEN);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["hash"], hex::encode(&hash));
        assert_eq!(v["prev_hash"], hex::encode(&prev));
        assert_eq!(v["seq"], 7);
        // The hash is over prev's raw bytes followed by the canonical bytes.
        let mut h = Sha256::new();
        h.update(prev);
        h.update(&canon);
        assert_eq!(hash, <[u8; 32]>::from(h.finalize()));

        let u = unseal(&buf).unwrap();
        assert_eq!((u.hash, u.prev), (hash, prev));
        assert_eq!(u.canonical(), canon);
        assert!(u.is_intact());

        let mut again = Vec::new();
        write_sealed(&mut again, &canon, &hash, &prev);
        assert_eq!(again, buf);
    }

    #[test]
    fn any_changed_byte_of_the_event_breaks_its_hash() {
        let mut buf = canonical_of("Accepted password for root", 1);
        seal_in_place(&mut buf, &GENESIS);
        let n = buf.len() - SUFFIX_LEN;
        for i in 0..n {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            if let Some(u) = unseal(&bad) {
                assert!(!u.is_intact(), "byte {i} changed unnoticed");
            }
        }
    }

    #[test]
    fn lines_without_a_proper_suffix_do_not_unseal() {
        let canon = canonical_of("x", 1);
        assert!(unseal(&canon).is_none());
        let mut buf = canon.clone();
        seal_in_place(&mut buf, &GENESIS);
        let mut upper = buf.clone();
        let at = upper.len() - 5;
        upper[at] = b'g';
        assert!(unseal(&upper).is_none(), "non-hex digit");
        assert!(unseal(&buf[..buf.len() - 1]).is_none(), "cut short");
        let mut swapped = buf.clone();
        let s = swapped.len() - SUFFIX_LEN;
        swapped[s + 2] = b'H';
        assert!(unseal(&swapped).is_none(), "renamed field");
    }

    #[test]
    fn the_batch_message_names_every_signed_field() {
        let m = batch_message("a", "00000000000000ff", 3, 9, 5, &GENESIS, &[1u8; 32]);
        let text = String::from_utf8(m).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..6],
            ["auditship-batch-v2", "a", "00000000000000ff", "3", "9", "5"]
        );
        assert_eq!(lines[6], "0".repeat(64));
        assert_eq!(lines[7], "01".repeat(32));
        assert!(text.ends_with('\n'));
    }
}
