//! Segment files: naming, the fixed header, and what the queue remembers
//! about each one.

use std::path::{Path, PathBuf};

/// `ASQ1`: auditship queue, format 1.
pub const MAGIC: [u8; 4] = *b"ASQ1";
/// Header: magic (4) | version u16 | reserved u16 | segment number u64 | created unix ms u64.
pub const HEADER_LEN: usize = 24;
/// Format version of a segment whose record bodies are in the clear.
pub const VERSION: u16 = 1;
/// Format version of a segment whose record bodies are sealed (encrypted).
/// A build without encryption refuses it as an unsupported version.
pub const VERSION_ENCRYPTED: u16 = 2;

/// What the queue knows about one segment on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    /// Segment number (also its file name).
    pub no: u64,
    /// Bytes in the file (for the active segment: committed bytes).
    pub bytes: u64,
    /// Highest record id in the segment, or the id before it if it holds no event.
    pub last_id: u64,
    /// Its record bodies are sealed (format version 2).
    pub encrypted: bool,
}

/// The file name of segment `no`.
pub fn file_name(no: u64) -> String {
    format!("{no:020}.seg")
}

/// The path of segment `no` in `dir`.
pub fn path(dir: &Path, no: u64) -> PathBuf {
    dir.join(file_name(no))
}

/// Parses a segment number from a file name.
pub fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The header of segment `no`; `encrypted` when its bodies are sealed.
pub fn header(no: u64, encrypted: bool) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    let v = if encrypted {
        VERSION_ENCRYPTED
    } else {
        VERSION
    };
    h[4..6].copy_from_slice(&v.to_le_bytes());
    h[8..16].copy_from_slice(&no.to_le_bytes());
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    h[16..24].copy_from_slice(&ms.to_le_bytes());
    h
}

/// Checks a header read from the file of segment `no`; whether its bodies
/// are sealed.
pub fn check_header(data: &[u8], no: u64) -> Result<bool, String> {
    let h = data
        .get(..HEADER_LEN)
        .ok_or_else(|| format!("shorter than the {HEADER_LEN}-byte header"))?;
    if h[..4] != MAGIC {
        return Err(format!("bad magic {:?}", &h[..4]));
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != VERSION && version != VERSION_ENCRYPTED {
        return Err(format!("unsupported version {version}"));
    }
    let in_header = u64::from_le_bytes(h[8..16].try_into().map_err(|_| "bad header")?);
    if in_header != no {
        return Err(format!(
            "header says segment {in_header}, file name says {no}"
        ));
    }
    Ok(version == VERSION_ENCRYPTED)
}
