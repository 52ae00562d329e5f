//! Lowercase hexadecimal, the text form of every hash, key and signature
//! in auditship's formats (wire headers, sealed events, checkpoints,
//! bundles). Hex rather than base64 so that a verifier in any language
//! needs nothing beyond its standard library.

use crate::Hash;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The two lowercase hex digits of every byte value: one lookup and one
/// two-byte copy per byte (the collector writes two hashes in hex for
/// every event it stores).
static PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    t
};

/// Writes the lowercase hex form of `bytes` into `out`, which must be
/// exactly twice as long.
pub fn encode_to_slice(bytes: &[u8], out: &mut [u8]) {
    assert_eq!(out.len(), bytes.len() * 2, "hex output of the wrong length");
    for (o, &b) in out.chunks_exact_mut(2).zip(bytes) {
        o.copy_from_slice(&PAIRS[usize::from(b)]);
    }
}

/// Appends the lowercase hex form of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + bytes.len() * 2, 0);
    encode_to_slice(bytes, &mut out[start..]);
}

/// The lowercase hex form of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    encode_into(bytes, &mut out);
    // Only ASCII digits were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Decodes hex (either case) into exactly `N` bytes; `None` for any other
/// length or a non-hex character.
pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let t = text.as_bytes();
    if t.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    // Table lookups, and one check of every digit at the end: this runs
    // twice for every stored event that `verify` reads.
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(t.chunks_exact(2)) {
        let (hi, lo) = (VALUE[pair[0] as usize], VALUE[pair[1] as usize]);
        bad |= (hi | lo) & 0x80;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad == 0).then_some(out)
}

/// Value of each byte as a hex digit; 0x80 for a byte that is not one.
const VALUE: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut c = 0;
    while c < 256 {
        if let Some(v) = digit(c as u8) {
            t[c] = v;
        }
        c += 1;
    }
    t
};

/// Decodes a 64-digit hex hash.
pub fn decode_hash(text: &str) -> Option<Hash> {
    decode_array::<32>(text)
}

const fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_text() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = encode(&bytes);
        assert_eq!(&text[..8], "00010203");
        assert_eq!(&text[text.len() - 4..], "feff");
        let back: [u8; 256] = decode_array(&text).unwrap();
        assert_eq!(back.to_vec(), bytes);
        assert_eq!(decode_array::<2>("ABcd"), Some([0xab, 0xcd]));
        assert_eq!(decode_array::<2>("abc"), None);
        assert_eq!(decode_array::<2>("abcg"), None);
        assert_eq!(decode_array::<1>("abcd"), None);
        let mut out = vec![b'x'];
        encode_into(&[0x00, 0x9f, 0xa0, 0xff], &mut out);
        assert_eq!(out, b"x009fa0ff");
    }
}
