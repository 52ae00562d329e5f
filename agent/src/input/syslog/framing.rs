//! Syslog over a stream (TCP, TLS): finding the messages in the bytes.
//!
//! RFC 6587 knows two framings, and senders differ, so the framing is
//! detected per message, the way rsyslog does it:
//!
//! * **octet counting** (`MSG-LEN SP SYSLOG-MSG`, always used over TLS by
//!   RFC 5425): the message starts with a digit; the digits up to the space
//!   are its length in bytes;
//! * **non-transparent framing**: anything else (a syslog message starts
//!   with `<`); the message ends at LF (a CR before it is dropped).
//!
//! Newlines, CRs and NULs between messages are skipped. The framer is
//! sans-IO: [`Framer::push`] takes whatever a read returned, however the
//! bytes are split across reads, and hands out every complete message.
//!
//! Bad framing is counted, never fatal, and nothing is thrown away:
//!
//! * digits not followed by a space (or more than 9 of them, or a length
//!   of 0) are not a count: the frame is read as an LF-terminated line
//!   instead, digits included;
//! * a message longer than `max` keeps its first `max` bytes and is
//!   flagged `truncated`; the rest of it is skipped (up to the LF, or the
//!   announced length);
//! * when the stream ends inside a message, what was read is handed out,
//!   flagged `no_newline` (a line) or `truncated` (a counted message).
//!
//! A line that happens to start with digits and a space (a sender using LF
//! framing without `<PRI>`) is taken as octet-counted, as every receiver
//! that detects framing does; such a sender should be switched to one
//! framing explicitly.

use auditship_core::Flags;

/// One message found in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message, without framing.
    pub bytes: Vec<u8>,
    /// `truncated` or `no_newline` when the framing was cut short.
    pub flags: Flags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between messages.
    Start,
    /// Reading the digits of a length; the digits so far are in `buf`.
    Count(usize),
    /// Reading a counted message; this many bytes remain.
    Counted(usize),
    /// Reading up to LF.
    Line,
}

/// Finds messages in a byte stream. See the module docs.
#[derive(Debug)]
pub struct Framer {
    max: usize,
    state: State,
    buf: Vec<u8>,
    cut: bool,
    /// Frames whose framing was wrong (not a count, cut off at the end).
    pub invalid: u64,
}

impl Framer {
    /// A framer keeping at most `max` bytes of a message.
    pub fn new(max: usize) -> Self {
        Framer {
            max,
            state: State::Start,
            buf: Vec::new(),
            cut: false,
            invalid: 0,
        }
    }

    /// Whether the framer is between messages (nothing half-read).
    pub fn is_idle(&self) -> bool {
        self.state == State::Start
    }

    /// Takes the next bytes of the stream; calls `out` for every message
    /// they complete.
    pub fn push(&mut self, mut data: &[u8], out: &mut impl FnMut(Frame)) {
        while !data.is_empty() {
            match self.state {
                State::Start => {
                    let skip = data
                        .iter()
                        .position(|b| !matches!(b, b'\n' | b'\r' | b'\0'))
                        .unwrap_or(data.len());
                    data = &data[skip..];
                    match data.first() {
                        None => {}
                        Some(b) if b.is_ascii_digit() => self.state = State::Count(0),
                        Some(_) => self.state = State::Line,
                    }
                }
                State::Count(len) => {
                    let b = data[0];
                    if b.is_ascii_digit() && self.buf.len() < 9 {
                        self.buf.push(b);
                        self.state = State::Count(len * 10 + usize::from(b - b'0'));
                        data = &data[1..];
                    } else if b == b' ' && len > 0 {
                        self.buf.clear();
                        self.state = State::Counted(len);
                        data = &data[1..];
                    } else {
                        // Not a count: a line that starts with digits.
                        self.invalid += 1;
                        self.state = State::Line;
                        if self.buf.len() > self.max {
                            self.buf.truncate(self.max);
                            self.cut = true;
                        }
                    }
                }
                State::Counted(remaining) => {
                    let n = remaining.min(data.len());
                    self.keep(&data[..n]);
                    data = &data[n..];
                    if n == remaining {
                        self.emit(Flags::default(), out);
                    } else {
                        self.state = State::Counted(remaining - n);
                    }
                }
                State::Line => match data.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.keep(&data[..i]);
                        data = &data[i + 1..];
                        if self.buf.last() == Some(&b'\r') {
                            self.buf.pop();
                        }
                        self.emit(Flags::default(), out);
                    }
                    None => {
                        self.keep(data);
                        data = &[];
                    }
                },
            }
        }
    }

    /// The stream ended: hands out a message it cut off, if any.
    pub fn finish(&mut self, out: &mut impl FnMut(Frame)) {
        let flags = match self.state {
            State::Start => return,
            State::Line if !self.cut => Flags::NO_NEWLINE,
            _ => Flags::TRUNCATED,
        };
        self.invalid += 1;
        if !self.buf.is_empty() {
            self.emit(flags, out);
        }
        self.state = State::Start;
        self.buf.clear();
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.cut |= bytes.len() > room;
    }

    fn emit(&mut self, mut flags: Flags, out: &mut impl FnMut(Frame)) {
        if std::mem::take(&mut self.cut) {
            flags.insert(Flags::TRUNCATED);
        }
        self.state = State::Start;
        out(Frame {
            bytes: std::mem::take(&mut self.buf),
            flags,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one push each; the frames as text with flag names.
    fn frames(max: usize, chunks: &[&[u8]]) -> (Vec<(String, Vec<&'static str>)>, u64) {
        let mut f = Framer::new(max);
        let mut got = Vec::new();
        let mut out = |fr: Frame| {
            got.push((
                String::from_utf8(fr.bytes).unwrap(),
                fr.flags.names().collect(),
            ))
        };
        for c in chunks {
            f.push(c, &mut out);
        }
        f.finish(&mut out);
        (got, f.invalid)
    }

    fn plain(v: &[&str]) -> Vec<(String, Vec<&'static str>)> {
        v.iter().map(|s| (s.to_string(), vec![])).collect()
    }

    #[test]
    fn both_framings_are_detected_per_message() {
        let stream = b"11 <13>hello 1\n<13>line two\r\n\n9 <13>x\ny z\n";
        let (got, invalid) = frames(1024, &[stream]);
        assert_eq!(got, plain(&["<13>hello 1", "<13>line two", "<13>x\ny z"]));
        assert_eq!(invalid, 0);
    }

    #[test]
    fn octet_counting_split_across_reads_at_every_byte() {
        let stream: &[u8] = b"10 <13>first!14 <13>second\nyes\n<13>third\n";
        let want = plain(&["<13>first!", "<13>second\nyes", "<13>third"]);
        // Every split into two reads, and one byte per read.
        for at in 0..=stream.len() {
            let (got, invalid) = frames(1024, &[&stream[..at], &stream[at..]]);
            assert_eq!(got, want, "split at {at}");
            assert_eq!(invalid, 0);
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(1024, &bytes).0, want);
    }

    #[test]
    fn garbage_framing_is_counted_and_kept_as_lines() {
        // Digits without a space, a zero length, too many digits: lines.
        let (got, invalid) = frames(
            1024,
            &[b"123abc\n0 <13>zero\n12345678901 x\n\0\0<13>after\n"],
        );
        assert_eq!(
            got,
            plain(&["123abc", "0 <13>zero", "12345678901 x", "<13>after"])
        );
        assert_eq!(invalid, 3);
    }

    #[test]
    fn long_messages_are_cut_and_the_rest_skipped() {
        let (got, _) = frames(5, &[b"0123456789\n<13>ok\n", b"10 abcdefghij<13>b\n"]);
        assert_eq!(
            got,
            vec![
                ("01234".into(), vec!["truncated"]),
                ("<13>o".into(), vec!["truncated"]),
                ("abcde".into(), vec!["truncated"]),
                ("<13>b".into(), vec![]),
            ]
        );
    }

    #[test]
    fn a_stream_ending_inside_a_message_hands_out_what_was_read() {
        let (got, invalid) = frames(1024, &[b"<13>complete\n<13>no newline"]);
        assert_eq!(got[1], ("<13>no newline".into(), vec!["no_newline"]));
        assert_eq!(invalid, 1);
        let (got, invalid) = frames(1024, &[b"20 <13>short"]);
        assert_eq!(got, vec![("<13>short".into(), vec!["truncated"])]);
        assert_eq!(invalid, 1);
        let (got, _) = frames(1024, &[b"<13>ok\n\n\r\n"]);
        assert_eq!(got, plain(&["<13>ok"]));
    }
}
