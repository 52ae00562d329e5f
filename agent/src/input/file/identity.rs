//! File identity and the position format the file input stores in queue
//! records.
//!
//! ```text
//! stream key:  input name | 0x00 | dev u64 LE | inode u64 LE
//! ghost key:   input name | 0x00 | 'G' | fp_hash u64 LE | fp_len u16 LE
//!              (how far a file was read before it was truncated, kept so
//!              that its copytruncate copy resumes there even after a crash)
//! position:    offset u64 LE | fp_len u16 LE | fp_hash u64 LE | marker_len u8 | marker
//! ```
//!
//! * `offset` is the byte after the last line delivered from the file.
//! * The fingerprint is a 64-bit hash (two CRC32C with different seeds) of
//!   the first `fp_len` bytes, where `fp_len` is the configured fingerprint
//!   size or the file's size if that was smaller when it was taken. A short
//!   fingerprint is upgraded when the file grows.
//! * The marker is up to 16 bytes immediately before `offset`. Before
//!   resuming at `offset`, the input checks that those bytes are still
//!   there, so a file that was truncated and rewritten to a similar length is
//!   not resumed in the middle of unrelated data.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Longest marker kept before an offset.
pub const MARKER_LEN: usize = 16;

/// A content fingerprint over the first `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// Bytes hashed.
    pub len: u16,
    /// Hash of those bytes.
    pub hash: u64,
}

impl Fingerprint {
    /// Fingerprints `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let a = crc32c::crc32c(bytes);
        let b = crc32c::crc32c_append(0x9e37_79b9, bytes);
        Fingerprint {
            len: bytes.len() as u16,
            hash: (u64::from(a) << 32) | u64::from(b),
        }
    }

    /// Reads and fingerprints the first `min(size, max)` bytes of `file`.
    pub fn read(file: &File, size: u64, max: usize) -> std::io::Result<Self> {
        let n = (size as usize).min(max);
        let mut buf = vec![0u8; n];
        file.read_exact_at(&mut buf, 0)?;
        Ok(Fingerprint::of(&buf))
    }

    /// Whether `file` (of `size` bytes) still starts with the bytes this
    /// fingerprint was taken over.
    pub fn matches(&self, file: &File, size: u64) -> bool {
        if size < u64::from(self.len) {
            return false;
        }
        Fingerprint::read(file, size, self.len.into()).is_ok_and(|f| f == *self)
    }
}

/// A decoded file position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePosition {
    /// Byte after the last delivered line.
    pub offset: u64,
    /// The file's fingerprint when the position was written.
    pub fp: Fingerprint,
    /// Bytes just before `offset`.
    pub marker: Vec<u8>,
}

impl FilePosition {
    /// Encodes into `out` (cleared first).
    pub fn encode_into(offset: u64, fp: Fingerprint, marker: &[u8], out: &mut Vec<u8>) {
        let marker = &marker[marker.len().saturating_sub(MARKER_LEN)..];
        out.clear();
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&fp.len.to_le_bytes());
        out.extend_from_slice(&fp.hash.to_le_bytes());
        out.push(marker.len() as u8);
        out.extend_from_slice(marker);
    }

    /// Decodes a position; `None` if it is malformed.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let offset = u64::from_le_bytes(b.get(0..8)?.try_into().ok()?);
        let len = u16::from_le_bytes(b.get(8..10)?.try_into().ok()?);
        let hash = u64::from_le_bytes(b.get(10..18)?.try_into().ok()?);
        let n = *b.get(18)? as usize;
        let marker = b.get(19..19 + n)?.to_vec();
        (b.len() == 19 + n).then_some(FilePosition {
            offset,
            fp: Fingerprint { len, hash },
            marker,
        })
    }

    /// Whether the bytes before `offset` in `file` are still the marker.
    pub fn marker_matches(&self, file: &File) -> bool {
        let n = self.marker.len() as u64;
        if n > self.offset {
            return false;
        }
        let mut buf = vec![0u8; self.marker.len()];
        file.read_exact_at(&mut buf, self.offset - n).is_ok() && buf == self.marker
    }
}

/// The stream key of a file in input `input`.
pub fn stream_key(input: &str, dev: u64, ino: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(input.len() + 17);
    k.extend_from_slice(input.as_bytes());
    k.push(0);
    k.extend_from_slice(&dev.to_le_bytes());
    k.extend_from_slice(&ino.to_le_bytes());
    k
}

/// The stream key under which input `input` remembers how far a truncated
/// file with fingerprint `fp` had been read (for its copy, across restarts).
pub fn ghost_key(input: &str, fp: Fingerprint) -> Vec<u8> {
    let mut k = Vec::with_capacity(input.len() + 12);
    k.extend_from_slice(input.as_bytes());
    k.push(0);
    k.push(b'G');
    k.extend_from_slice(&fp.hash.to_le_bytes());
    k.extend_from_slice(&fp.len.to_le_bytes());
    k
}

/// Whether `key` is a ghost key of input `input`.
pub fn is_ghost_key(input: &str, key: &[u8]) -> bool {
    key.strip_prefix(input.as_bytes())
        .and_then(|r| r.strip_prefix(&[0, b'G']))
        .is_some_and(|r| r.len() == 10)
}

/// `(dev, inode)` of a stream key of input `input`, if it is one.
pub fn parse_stream_key(input: &str, key: &[u8]) -> Option<(u64, u64)> {
    let rest = key.strip_prefix(input.as_bytes())?.strip_prefix(&[0])?;
    (rest.len() == 16).then(|| {
        (
            u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(rest[8..].try_into().expect("8 bytes")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_round_trips_and_keeps_the_last_marker_bytes() {
        let fp = Fingerprint::of(b"hello");
        let mut out = Vec::new();
        FilePosition::encode_into(1234, fp, b"0123456789abcdefXYZ\n", &mut out);
        let p = FilePosition::decode(&out).unwrap();
        assert_eq!(p.offset, 1234);
        assert_eq!(p.fp, fp);
        assert_eq!(p.marker, b"3456789abcdefXYZ\n"[1..].to_vec());
        assert!(FilePosition::decode(&out[..out.len() - 1]).is_none());
    }

    #[test]
    fn stream_keys_belong_to_their_input() {
        let k = stream_key("auth", 7, 99);
        assert_eq!(parse_stream_key("auth", &k), Some((7, 99)));
        assert_eq!(parse_stream_key("aut", &k), None);
        assert_eq!(parse_stream_key("nginx", &k), None);
    }

    #[test]
    fn fingerprints_differ_by_content_and_length() {
        assert_ne!(Fingerprint::of(b"abc"), Fingerprint::of(b"abd"));
        assert_ne!(Fingerprint::of(b"abc"), Fingerprint::of(b"abcd"));
        assert_eq!(Fingerprint::of(b"abc"), Fingerprint::of(b"abc"));
    }
}
