//! How a wire batch is compressed, and bounded decompression.
//!
//! A body travels as gzip, zstd or uncompressed, named by its
//! `Content-Encoding`. zstd is the agents' default: on batches of canonical
//! events, level 1 compresses about 10.9:1 against gzip level 1's 7.5:1 for
//! about the same CPU in the agent (zlib-rs level 1 is a very fast deflate;
//! the command-line `gzip -1` is three times slower than `zstd -1`), and it
//! inflates about 25 % faster in the collector (BENCHMARKS.md). It is the
//! reference C library (libzstd, through the `zstd` crate), the de-facto
//! implementation; the pure-Rust zstd encoders are much slower.
//!
//! [`inflate`] streams the body through the decoder and stops as soon as
//! the output passes the caller's limit, so a bomb (a few KB that inflate to
//! gigabytes) costs at most the limit in memory before it is refused. The
//! zstd decoder's window is capped too ([`zstd_window_log_max`]: the limit,
//! but no less than 1 MiB and no more than 8 MiB): a frame that asks for a
//! larger window is refused before anything is allocated for it.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
use zstd::zstd_safe::CParameter;

use super::WireError;

/// A body's `Content-Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentEncoding {
    /// Not compressed (no header, or `identity`).
    Identity,
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// `zstd`.
    Zstd,
}

impl ContentEncoding {
    /// The `Content-Encoding` header to send, `None` for an uncompressed body.
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            ContentEncoding::Identity => None,
            ContentEncoding::Gzip => Some("gzip"),
            ContentEncoding::Zstd => Some("zstd"),
        }
    }

    /// Its name: `identity`, `gzip` or `zstd`.
    pub fn name(self) -> &'static str {
        self.header_value().unwrap_or("identity")
    }

    /// Parses a request's `Content-Encoding` header (absent or empty means
    /// identity; names are case-insensitive).
    pub fn parse(header: Option<&str>) -> Result<Self, WireError> {
        match header.map(str::trim) {
            None | Some("") => Ok(ContentEncoding::Identity),
            Some(e) if e.eq_ignore_ascii_case("identity") => Ok(ContentEncoding::Identity),
            Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
                Ok(ContentEncoding::Gzip)
            }
            Some(e) if e.eq_ignore_ascii_case("zstd") => Ok(ContentEncoding::Zstd),
            Some(other) => Err(WireError::Encoding(other.to_string())),
        }
    }
}

/// How a sender compresses a batch: the algorithm and its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip at a level in [`Compression::GZIP_LEVELS`] (higher is clamped).
    Gzip(u32),
    /// zstd at a level in [`Compression::ZSTD_LEVELS`] (outside is clamped).
    Zstd(i32),
}

impl Compression {
    /// gzip levels: 1 (fastest) to 9 (smallest).
    pub const GZIP_LEVELS: RangeInclusive<u32> = 1..=9;
    /// zstd levels offered: -7 (fastest, largest) to 19 (smallest).
    /// Negative levels are zstd's fast levels (`zstd --fast=N` is level
    /// -N): less CPU for a larger body. Level 0 is not offered (the library
    /// reads it as its default, 3). Levels 20 to 22 need windows the
    /// receivers refuse.
    pub const ZSTD_LEVELS: RangeInclusive<i32> = -7..=19;

    /// The `Content-Encoding` of bodies compressed this way.
    pub fn encoding(self) -> ContentEncoding {
        match self {
            Compression::None => ContentEncoding::Identity,
            Compression::Gzip(_) => ContentEncoding::Gzip,
            Compression::Zstd(_) => ContentEncoding::Zstd,
        }
    }

    /// Compresses each of `parts` on its own, into one zstd frame or gzip
    /// member each, and concatenates them: a body that inflates to the
    /// parts' concatenation (receivers read every frame or member). For a
    /// short header before a long run of events this is faster than
    /// [`compress`](Self::compress): each frame is compressed from one
    /// contiguous input, where a stream over both compresses the second
    /// against the first as an external dictionary (~17 % slower; ~25 % of
    /// a shipping agent's CPU is zstd).
    pub fn compress_each(self, parts: &[&[u8]]) -> Vec<u8> {
        if self == Compression::None {
            return parts.concat();
        }
        let mut body = Vec::new();
        for p in parts.iter().filter(|p| !p.is_empty()) {
            let frame = self.compress(&[p]);
            if body.is_empty() {
                body = frame;
            } else {
                body.extend_from_slice(&frame);
            }
        }
        body
    }

    /// Compresses the concatenation of `parts` into one body.
    pub fn compress(self, parts: &[&[u8]]) -> Vec<u8> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        match self {
            Compression::None => parts.concat(),
            Compression::Gzip(level) => {
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(total / 4 + 64),
                    flate2::Compression::new(level.min(*Self::GZIP_LEVELS.end())),
                );
                for p in parts {
                    gz.write_all(p).expect("writing to memory");
                }
                gz.finish().expect("writing to memory")
            }
            Compression::Zstd(level) => zstd_compress(parts, total, level),
        }
    }
}

/// The default level and the faster ones below it use
/// [`FAST_HASH_LOG`].
const FAST_LEVEL: i32 = 1;

/// The hash table of zstd's fastest levels, as a power of two: 2^13
/// entries instead of libzstd 1.5.7's 2^14 for inputs over 256 KiB. The
/// table then fits the L1 cache, and a 3 MB batch of events compresses
/// 4 % faster to the same size (`compress/zstd1` in `benches/wire.rs`:
/// 664 -> 693 MiB/s, 308,879 -> 308,669 bytes; 2^12 was 7 % faster but
/// 1.5 % larger).
const FAST_HASH_LOG: u32 = 13;

/// One zstd frame holding `parts`: with its content size (the receiver's
/// window is then at most the body's size) and a checksum (a body damaged
/// in transit is refused as broken zstd, rather than reaching the chain
/// check as a batch that looks tampered with).
fn zstd_compress(parts: &[&[u8]], total: usize, level: i32) -> Vec<u8> {
    let (lo, hi) = (
        Compression::ZSTD_LEVELS.start(),
        Compression::ZSTD_LEVELS.end(),
    );
    let level = level.clamp(*lo, *hi);
    if let [one] = parts {
        // One contiguous input: the one-shot API, ~17 % faster than the
        // stream (which compresses a second part against the first as an
        // external dictionary). Same frame: content size and checksum.
        let mut c = zstd::bulk::Compressor::new(level).expect("zstd context");
        c.set_parameter(CParameter::ChecksumFlag(true))
            .expect("zstd checksum flag");
        if level <= FAST_LEVEL {
            c.set_parameter(CParameter::HashLog(FAST_HASH_LOG))
                .expect("zstd hash log");
        }
        return c.compress(one).expect("compressing to memory");
    }
    let out = Vec::with_capacity(total / 4 + 64);
    let mut enc = zstd::stream::write::Encoder::new(out, level).expect("zstd context");
    enc.include_checksum(true).expect("zstd checksum flag");
    if level <= FAST_LEVEL {
        enc.set_parameter(CParameter::HashLog(FAST_HASH_LOG))
            .expect("zstd hash log");
    }
    enc.set_pledged_src_size(Some(total as u64))
        .expect("zstd pledged size");
    for p in parts {
        enc.write_all(p).expect("writing to memory");
    }
    enc.finish().expect("writing to memory")
}

/// The zstd decoder's largest window, as a power of two, for a limit of
/// `limit` bytes: the limit rounded up to a power of two (a frame whose
/// content size is known uses that size as its window, so every such body
/// within the limit fits), but at least 1 MiB (2^20: what zstd's levels 1
/// and 2 use for a stream of unknown size) and at most 8 MiB (2^23, the most
/// levels 1 to 19 use). Frames made with `--ultra` levels or `--long` need
/// more and are refused ([`WireError::ZstdWindow`]) before their window is
/// allocated; so is a stream of unknown size compressed at a level whose
/// window is larger than a small limit.
pub fn zstd_window_log_max(limit: usize) -> u32 {
    limit.max(1).next_power_of_two().ilog2().clamp(20, 23)
}

/// Inflates `body` according to `content_encoding` (`gzip`, `zstd`,
/// `identity` or none), refusing to produce more than `limit` bytes: past
/// that, decompression stops and the answer is [`WireError::TooLarge`].
/// The output buffer never grows past `limit + 1` bytes.
pub fn inflate<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Cow<'a, [u8]>, WireError> {
    let out = match ContentEncoding::parse(content_encoding)? {
        ContentEncoding::Identity => {
            return if body.len() > limit {
                Err(WireError::TooLarge { limit })
            } else {
                Ok(Cow::Borrowed(body))
            };
        }
        ContentEncoding::Gzip => {
            let dec = flate2::read::MultiGzDecoder::new(body);
            read_bounded(dec, body.len().saturating_mul(4), limit).map_err(WireError::Gzip)?
        }
        ContentEncoding::Zstd => {
            let window_log = zstd_window_log_max(limit);
            let zstd_error = |e: std::io::Error| {
                let window = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<zstd::Error>())
                    .is_some_and(|z| {
                        z.is(ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge)
                    });
                if window {
                    WireError::ZstdWindow {
                        max: 1 << window_log,
                    }
                } else {
                    WireError::Zstd(e)
                }
            };
            // The first frame's declared size, when it has one: past the
            // limit, the body is refused at once; otherwise it is the best
            // first guess of the output's size (the decoder checks it).
            let declared = zstd::zstd_safe::get_frame_content_size(body).ok().flatten();
            if declared.is_some_and(|n| n > limit as u64) {
                return Err(WireError::TooLarge { limit });
            }
            // (One byte more, so that reaching the end needs no more room.)
            let hint = declared.map_or(body.len().saturating_mul(4), |n| {
                (n as usize).saturating_add(1)
            });
            let mut dec = zstd::stream::read::Decoder::with_buffer(body).map_err(zstd_error)?;
            dec.window_log_max(window_log).map_err(zstd_error)?;
            read_bounded(dec, hint, limit).map_err(zstd_error)?
        }
    };
    if out.len() > limit {
        return Err(WireError::TooLarge { limit });
    }
    Ok(Cow::Owned(out))
}

/// Reads `r` to its end or to `limit + 1` bytes, whichever comes first,
/// starting with room for `hint` bytes and never reserving past `limit + 1`.
fn read_bounded(mut r: impl Read, hint: usize, limit: usize) -> std::io::Result<Vec<u8>> {
    let max = limit.saturating_add(1);
    let mut out = Vec::with_capacity(hint.max(4096).min(max));
    loop {
        let room = out.capacity() - out.len();
        // Reading at most `room` keeps read_to_end from growing the buffer.
        let got = (&mut r).take(room as u64).read_to_end(&mut out)?;
        if got < room || out.len() >= max {
            return Ok(out);
        }
        out.reserve_exact(out.len().min(max - out.len()).max(1));
    }
}

#[cfg(test)]
mod tests;
