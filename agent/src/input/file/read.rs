//! Reading one tracked file: truncation and rewrite detection, copies that
//! are still being written, partial last lines, release of files that are
//! gone, and handing complete lines to the sink with their positions.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::Instant;

use auditship_plugins::framing::Framer;

use super::identity::{self, FilePosition, Fingerprint};
use super::{FileInput, FileInputStats, InputError, Line, Sink, Tracked, READ_CHUNK};

impl FileInput {
    /// Reads new data of one file and hands complete lines to the sink.
    pub(super) fn read_file(
        &mut self,
        key: (u64, u64),
        sink: &mut dyn Sink,
        budget: usize,
    ) -> Result<u64, InputError> {
        let Some(t) = self.files.get_mut(&key) else {
            return Ok(0);
        };
        let size = match t.file.metadata() {
            Ok(m) => m.len(),
            Err(_) => return Ok(0),
        };
        if let Some(since) = t.frozen_since {
            let truncated = size < t.offset + t.partial.len() as u64;
            if !truncated && since.elapsed() < self.cfg.rotate_wait {
                return Ok(0);
            }
            if !truncated {
                tracing::warn!(path = %t.path.display(), "a copy of this file appeared but it was not truncated; reading on (lines in the copy after the split point may be delivered twice)");
            }
            t.frozen_since = None;
        }
        if let Some(seen) = t.unsettled {
            if size >= self.cfg.fingerprint_bytes as u64 {
                // Grown to a full fingerprint: it may be a copy still being written.
                let fp = Fingerprint::read(&t.file, size, self.cfg.fingerprint_bytes);
                let (own, path) = ((t.dev, t.ino), t.path.clone());
                if let Ok(fp) = fp {
                    let from = self.adopt_copy(fp, own, &path);
                    let t = self.files.get_mut(&key).expect("present");
                    t.fp = fp;
                    t.unsettled = None;
                    if let Some((from, marker)) = from {
                        t.offset = from;
                        t.marker.clear();
                        t.copy_pending = Some((Instant::now(), marker));
                    }
                }
                return Ok(0);
            }
            if size != seen || size == 0 {
                // Still growing, or empty (a copy may be about to be written).
                t.unsettled = Some(size);
                // Regression: an empty file deleted (or renamed away) while
                // unsettled was never released, leaking its handle.
                if t.gone_since
                    .is_some_and(|g| g.elapsed() >= self.cfg.rotate_wait)
                {
                    let t = self.files.remove(&key).expect("present");
                    sink.forget(&t.stream);
                    self.stats.released += 1;
                }
                return Ok(0);
            }
            // Stable, short and not empty: a genuinely small file. Read it.
            t.unsettled = None;
        }
        if let Some((since, marker)) = &t.copy_pending {
            if size >= t.offset {
                if marker_at(&t.file, t.offset, marker) {
                    t.marker = marker.clone();
                    // Regression: a confirmed copy recorded no position until
                    // a line was read from it; when nothing followed, a restart
                    // (or the ghost's expiry) had it read again from 0.
                    FilePosition::encode_into(t.offset, t.fp, &t.marker, &mut self.pos_buf);
                    sink.position(&t.stream, &self.pos_buf)?;
                } else {
                    // Regression: a new file that merely starts like the old one
                    // (a shared header) was taken for its copy and skipped.
                    tracing::info!(path = %t.path.display(), "not a copy after all; reading it from the beginning");
                    t.offset = 0;
                    t.marker.clear();
                }
                t.copy_pending = None;
            } else if since.elapsed() >= self.cfg.rotate_wait {
                // It never grew to where the original was read: not (usable as)
                // a copy. Reading it all may duplicate; skipping it could lose.
                tracing::info!(path = %t.path.display(), "file did not grow into a copy; reading it from the beginning");
                t.offset = 0;
                t.marker.clear();
                t.copy_pending = None;
            } else {
                return Ok(0);
            }
        }
        let read_to = t.offset + t.partial.len() as u64;
        // Truncated, or truncated and rewritten past the old offset between
        // two reads: the start of the file, or the bytes before the offset,
        // are no longer what they were (short fingerprints included).
        let rewritten = size > read_to && !unchanged(t, size);
        if size < read_to || rewritten {
            // Truncated in place (or copytruncate): remember how far the old
            // content was read, for its copy, and start over.
            self.stats.truncations += 1;
            let (fp, offset) = (t.fp, t.offset);
            let marker = t.marker.clone();
            tracing::info!(path = %t.path.display(), from = offset, "file truncated; reading it from the beginning");
            self.add_ghost(fp, offset, &marker, sink);
            let t = self.files.get_mut(&key).expect("present");
            t.offset = 0;
            t.partial.clear();
            t.marker.clear();
            t.framer = Framer::new(self.cfg.max_line_bytes, self.cfg.overlong);
            t.fp = Fingerprint::read(&t.file, size, self.cfg.fingerprint_bytes).unwrap_or(t.fp);
        } else if usize::from(t.fp.len) < self.cfg.fingerprint_bytes && size > u64::from(t.fp.len) {
            if let Ok(fp) = Fingerprint::read(&t.file, size, self.cfg.fingerprint_bytes) {
                t.fp = fp;
            }
        }
        let t = self.files.get_mut(&key).expect("present");
        let mut total = 0u64;
        loop {
            let read_to = t.offset + t.partial.len() as u64;
            let avail = size.saturating_sub(read_to);
            if avail == 0 || total >= budget as u64 {
                break;
            }
            // The buffer keeps its length between reads, so it is not
            // zero-filled again for every chunk.
            let start = t.partial.len();
            let want = (avail as usize).min(READ_CHUNK);
            if self.buf.len() < start + want {
                self.buf.resize(start + want, 0);
            }
            self.buf[..start].copy_from_slice(&t.partial);
            let n = match t.file.read_at(&mut self.buf[start..start + want], read_to) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Regression: logrotate truncated and the writer refilled the file
            // between the checks above and this read, which then returned the
            // middle of unrelated new content. If the file's start changed,
            // drop what was read; the next pass sees the truncation.
            if !unchanged(t, read_to + n as u64) {
                break;
            }
            total += n as u64;
            t.last_data = Instant::now();
            let data = &self.buf[..start + n];
            let used = emit_frames(t, data, false, &mut self.pos_buf, sink, &mut self.stats)?;
            t.partial.clear();
            t.partial.extend_from_slice(&data[used..]);
        }
        self.stats.bytes += total;
        let idle = t.last_data.elapsed();
        if total == 0 && !t.partial.is_empty() && idle >= self.cfg.partial_line_timeout {
            // The writer left a last line without newline: emit it as it is.
            self.buf.clear();
            self.buf.extend_from_slice(&t.partial);
            let used = emit_frames(t, &self.buf, true, &mut self.pos_buf, sink, &mut self.stats)?;
            t.partial.drain(..used);
        }
        if total == 0
            && t.gone_since
                .is_some_and(|g| g.elapsed() >= self.cfg.rotate_wait)
            && idle >= self.cfg.rotate_wait
        {
            if !t.partial.is_empty() {
                self.buf.clear();
                self.buf.extend_from_slice(&t.partial);
                emit_frames(t, &self.buf, true, &mut self.pos_buf, sink, &mut self.stats)?;
            }
            tracing::debug!(path = %t.path.display(), "file gone and drained; releasing it");
            let t = self.files.remove(&key).expect("present");
            let deleted = t.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
            if deleted {
                sink.forget(&t.stream);
            } else {
                // Renamed out of the globs: if it comes back, resume it.
                let pos = FilePosition {
                    offset: t.offset,
                    fp: t.fp,
                    marker: t.marker.clone(),
                };
                self.released.insert(key, (t.stream, pos, Instant::now()));
            }
            self.stats.released += 1;
        }
        Ok(total)
    }
}

/// Whether `t`'s file still starts with its fingerprinted bytes and still has
/// its marker before the offset.
fn unchanged(t: &Tracked, size: u64) -> bool {
    t.fp.matches(&t.file, size) && marker_at(&t.file, t.offset, &t.marker)
}

/// Whether the bytes just before `offset` in `file` are `marker`.
fn marker_at(file: &File, offset: u64, marker: &[u8]) -> bool {
    let n = marker.len() as u64;
    if n > offset {
        return false;
    }
    let mut buf = vec![0u8; marker.len()];
    file.read_exact_at(&mut buf, offset - n).is_ok() && buf == marker
}

/// The marker bytes before `offset`, read while they may still be there.
pub(super) fn read_marker(file: &File, offset: u64) -> Vec<u8> {
    let n = offset.min(identity::MARKER_LEN as u64);
    let mut buf = vec![0u8; n as usize];
    match file.read_exact_at(&mut buf, offset - n) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// Hands every frame in `buf` (which starts at `t.offset`) to the sink;
/// returns the bytes used.
pub(super) fn emit_frames(
    t: &mut Tracked,
    buf: &[u8],
    eof: bool,
    pos_buf: &mut Vec<u8>,
    sink: &mut dyn Sink,
    stats: &mut FileInputStats,
) -> Result<usize, InputError> {
    let mut at = 0;
    while let Some(f) = t.framer.next(&buf[at..], eof) {
        let end = at + f.consumed;
        let new_offset = t.offset + f.consumed as u64;
        // Regression: the marker was not kept in step with the offset, so
        // the "is the file still the same" check saw a stale marker and took a
        // renamed file for a truncated one, reading it again from the start.
        // The marker is the last MARKER_LEN bytes before the offset: the old
        // marker followed by what this frame consumed.
        if end - at >= identity::MARKER_LEN {
            t.marker.clear();
            t.marker
                .extend_from_slice(&buf[end - identity::MARKER_LEN..end]);
        } else {
            t.marker.extend_from_slice(&buf[at..end]);
            let excess = t.marker.len().saturating_sub(identity::MARKER_LEN);
            t.marker.drain(..excess);
        }
        if f.bytes.is_empty() {
            // The end of a truncated line's skipped rest (or a blank line):
            // record the position, or after a crash the rest of the line
            // would come back as a line of its own.
            if f.consumed > 0 && buf[end - 1] == b'\n' {
                FilePosition::encode_into(new_offset, t.fp, &t.marker, pos_buf);
                sink.position(&t.stream, pos_buf)?;
            }
        } else {
            FilePosition::encode_into(new_offset, t.fp, &t.marker, pos_buf);
            sink.line(Line {
                stream: &t.stream,
                position: pos_buf,
                bytes: f.bytes,
                flags: f.flags,
                path: Some(&t.path),
                peer: None,
            })?;
            stats.lines += 1;
        }
        t.offset = new_offset;
        at = end;
    }
    Ok(at)
}
