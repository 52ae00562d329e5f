//! Framing: cutting a byte stream into lines with a maximum length.
//!
//! Frame, then parse: inputs never hand a parser more than `max` bytes, and
//! an over-long line never stalls an input. [`Framer`] is a pure decoder over
//! a buffer the caller owns (so a tailer can keep file offsets exact), and
//! [`FrameReader`] wraps it around any [`std::io::Read`].
//!
//! Rules:
//! * a frame ends at `\n`, which is not part of the frame (a `\r` before it
//!   is kept; parsers ignore it and `raw` stays exact);
//! * a line longer than `max` is either **split** into pieces of at most
//!   `max` bytes, each flagged `split`, or **truncated** to `max` bytes,
//!   flagged `truncated`, with the rest of the line skipped up to its
//!   newline; cuts move back to a UTF-8 character boundary when one is
//!   within the last 3 bytes, so a split does not create invalid text;
//! * at end of input, bytes after the last newline form a final frame
//!   flagged `no_newline`; while input may still grow (a file being
//!   written), they are held back until the newline arrives or the caller
//!   decides the line is complete (the agent's idle timeout) and passes
//!   `eof = true`.

use auditship_core::Flags;

/// What to do with a line longer than the maximum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlong {
    /// Emit it in pieces, each flagged `split`.
    #[default]
    Split,
    /// Emit the first `max` bytes flagged `truncated` and skip the rest.
    Truncate,
}

/// One frame found in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame's bytes, without the newline.
    pub bytes: &'a [u8],
    /// `split`, `truncated` or `no_newline`, as they apply.
    pub flags: Flags,
    /// How many bytes of the buffer this frame used up (including the newline
    /// and any skipped remainder).
    pub consumed: usize,
}

/// Stateful line decoder; see the module docs.
#[derive(Clone, Debug)]
pub struct Framer {
    max: usize,
    overlong: Overlong,
    /// Inside a line that was truncated: skip to its newline.
    skipping: bool,
    /// Inside a line that is being split: later pieces are flagged too.
    splitting: bool,
}

impl Framer {
    /// A framer for lines of at most `max` bytes (at least 16).
    pub fn new(max: usize, overlong: Overlong) -> Self {
        Framer {
            max: max.max(16),
            overlong,
            skipping: false,
            splitting: false,
        }
    }

    /// Finds the next frame at the start of `buf`.
    ///
    /// Returns `None` when more input is needed. With `eof`, a trailing
    /// partial line is returned as a final frame. A frame with no bytes
    /// carries nothing to parse (an empty line, or the skipped rest of a
    /// truncated line): callers advance by `consumed` and emit nothing.
    pub fn next<'a>(&mut self, buf: &'a [u8], eof: bool) -> Option<Frame<'a>> {
        let empty = &buf[..0];
        if self.skipping {
            // The rest of a truncated line: drop it up to and including its newline.
            let consumed = match memchr::memchr(b'\n', buf) {
                Some(nl) => {
                    self.skipping = false;
                    nl + 1
                }
                None if buf.is_empty() => return None,
                None => {
                    self.skipping = !eof;
                    buf.len()
                }
            };
            return Some(Frame {
                bytes: empty,
                flags: Flags::default(),
                consumed,
            });
        }
        let mut flags = Flags::default();
        if self.splitting {
            flags.insert(Flags::SPLIT);
        }
        let window = &buf[..buf.len().min(self.max + 1)];
        if let Some(nl) = memchr::memchr(b'\n', window) {
            self.splitting = false;
            return Some(Frame {
                bytes: &buf[..nl],
                flags,
                consumed: nl + 1,
            });
        }
        if buf.len() > self.max {
            let cut = char_boundary(buf, self.max);
            match self.overlong {
                Overlong::Split => {
                    flags.insert(Flags::SPLIT);
                    self.splitting = true;
                    return Some(Frame {
                        bytes: &buf[..cut],
                        flags,
                        consumed: cut,
                    });
                }
                Overlong::Truncate => {
                    flags.insert(Flags::TRUNCATED);
                    let consumed = match memchr::memchr(b'\n', &buf[cut..]) {
                        Some(j) => cut + j + 1,
                        None => {
                            self.skipping = true;
                            buf.len()
                        }
                    };
                    return Some(Frame {
                        bytes: &buf[..cut],
                        flags,
                        consumed,
                    });
                }
            }
        }
        if eof && !buf.is_empty() {
            self.splitting = false;
            flags.insert(Flags::NO_NEWLINE);
            return Some(Frame {
                bytes: buf,
                flags,
                consumed: buf.len(),
            });
        }
        None
    }
}

/// Moves a cut at `max` back to a UTF-8 boundary if one is within 3 bytes.
fn char_boundary(buf: &[u8], max: usize) -> usize {
    for back in 0..4 {
        let i = max - back;
        // A boundary is any byte that is not a continuation byte (10xxxxxx).
        if i > 0 && buf.get(i).is_some_and(|b| b & 0xc0 != 0x80) {
            return i;
        }
    }
    max
}

/// Frames a blocking reader: an iterator of `(bytes, flags)`.
pub struct FrameReader<R> {
    inner: R,
    framer: Framer,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
}

impl<R: std::io::Read> FrameReader<R> {
    /// Wraps `inner` with a framer.
    pub fn new(inner: R, framer: Framer) -> Self {
        FrameReader {
            inner,
            framer,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            eof: false,
        }
    }

    /// The next non-empty frame, copied into `out`; `Ok(None)` at end of input.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> std::io::Result<Option<Flags>> {
        loop {
            if let Some(f) = self.framer.next(&self.buf[self.start..], self.eof) {
                let (len, flags, consumed) = (f.bytes.len(), f.flags, f.consumed);
                out.clear();
                out.extend_from_slice(&self.buf[self.start..self.start + len]);
                self.start += consumed;
                if len == 0 {
                    continue;
                }
                return Ok(Some(flags));
            }
            if self.eof {
                return Ok(None);
            }
            // Compact, then read more.
            self.buf.drain(..self.start);
            self.start = 0;
            let len = self.buf.len();
            self.buf.resize(len + 64 * 1024, 0);
            let n = self.inner.read(&mut self.buf[len..])?;
            self.buf.truncate(len + n);
            self.eof = n == 0;
        }
    }
}

#[cfg(test)]
mod tests;
