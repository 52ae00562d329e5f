//! The JSON primitives of [`super::view`]'s event scanner: whitespace,
//! literals, strings (decoded or skipped), numbers and whole ignored values,
//! over one line of bytes, without allocating except to decode a string
//! that contains escapes (and, past 64 levels of nesting inside an ignored
//! value, to remember the kinds of the enclosing brackets).
//!
//! Each primitive accepts exactly the bytes serde_json's `from_slice`
//! accepts in the same place, so that the scanner as a whole accepts what
//! the serde-derived decoding of `EventView` accepted (see `view`'s docs):
//!
//! * whitespace is space, tab, `\n` and `\r`;
//! * a string is anything but `"`, `\` and the control bytes 0x00–0x1F,
//!   plus the escapes `\" \\ \/ \b \f \n \r \t \uXXXX` (hex digits in
//!   either case);
//! * a string that is decoded ([`Scanner::string`]: field values and the
//!   keys of the event and its actor) must be valid UTF-8 after decoding,
//!   and `\u` escapes of surrogates must come in high–low pairs;
//! * a string that is skipped ([`Scanner::skip_string`]: inside ignored
//!   values) is only checked for the above syntax: serde_json does not
//!   validate its UTF-8 or its surrogates either;
//! * numbers follow the JSON grammar (`-`? int frac? exp?, no leading
//!   zeros); skipped numbers have no range.

use std::borrow::Cow;

/// Why a line is not an event the collector can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewError(Box<Problem>);

/// Boxed so that results stay small on the hot path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Problem {
    at: Option<usize>,
    what: Cow<'static, str>,
}

impl ViewError {
    #[cold]
    pub(super) fn at(at: usize, what: impl Into<Cow<'static, str>>) -> Self {
        ViewError(Box::new(Problem {
            at: Some(at),
            what: what.into(),
        }))
    }

    #[cold]
    pub(super) fn whole(what: impl Into<Cow<'static, str>>) -> Self {
        ViewError(Box::new(Problem {
            at: None,
            what: what.into(),
        }))
    }

    /// Byte offset in the line where the problem was found, if it is at
    /// one place (a missing field is not).
    pub fn offset(&self) -> Option<usize> {
        self.0.at
    }
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.at {
            Some(at) => write!(f, "{} at column {}", self.0.what, at + 1),
            None => f.write_str(&self.0.what),
        }
    }
}

impl std::error::Error for ViewError {}

type Result<T> = std::result::Result<T, ViewError>;

/// A position in one line of bytes.
pub(super) struct Scanner<'a> {
    b: &'a [u8],
    /// The line as text, when all of it is UTF-8 (nearly always): strings
    /// are then sliced from it instead of being checked one by one. When
    /// it is not, each decoded string is checked on its own, so that bytes
    /// in ignored strings stay unchecked, as in serde_json.
    text: Option<&'a str>,
    /// Index of the next unread byte.
    pub(super) i: usize,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = ONES << 7;

/// Whether a byte ends the plain run of a string: `"`, `\` or a control.
const fn special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// Index of the first byte at or after `i` that is `"`, `\` or below 0x20,
/// or `b.len()`. Eight bytes at a time: in each word, the lowest byte
/// flagged by a "byte below n" / "byte equal to c" test is exact (false
/// positives only occur above a true one), which is the byte wanted.
#[inline]
fn special_at(b: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let ctrl = x.wrapping_sub(ONES * 0x20) & !x;
        let q = x ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let s = x ^ (ONES * u64::from(b'\\'));
        let slash = s.wrapping_sub(ONES) & !s;
        let m = (ctrl | quote | slash) & HIGH;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !special(b[i]) {
        i += 1;
    }
    i
}

fn hex_digit(c: u8) -> Option<u16> {
    match c {
        b'0'..=b'9' => Some(u16::from(c - b'0')),
        b'a'..=b'f' => Some(u16::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u16::from(c - b'A' + 10)),
        _ => None,
    }
}

impl<'a> Scanner<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Scanner {
            b,
            text: std::str::from_utf8(b).ok(),
            i: 0,
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline]
    pub(super) fn ws(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    /// An error at the current position.
    #[cold]
    pub(super) fn err(&self, what: impl Into<Cow<'static, str>>) -> ViewError {
        ViewError::at(self.i, what)
    }

    /// The error for `found` (from [`Scanner::ws`]) where something else
    /// was expected.
    #[cold]
    pub(super) fn unexpected(&self, found: Option<u8>, expected: &str) -> ViewError {
        match found {
            None => self.err(format!("end of line where {expected} was expected")),
            Some(c) if c.is_ascii_graphic() => {
                self.err(format!("{:?} where {expected} was expected", c as char))
            }
            Some(c) => self.err(format!("byte 0x{c:02x} where {expected} was expected")),
        }
    }

    /// Consumes `c` after optional whitespace.
    #[inline]
    pub(super) fn expect(&mut self, c: u8, expected: &str) -> Result<()> {
        match self.ws() {
            Some(x) if x == c => {
                self.i += 1;
                Ok(())
            }
            other => Err(self.unexpected(other, expected)),
        }
    }

    /// Consumes the literal `word` (`null`, `true` or `false`), whose first
    /// byte is the next one.
    pub(super) fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        match self.b.get(self.i..self.i + word.len()) {
            Some(w) if w == word => {
                self.i += word.len();
                Ok(())
            }
            _ => Err(self.err("invalid literal (expected null, true or false)")),
        }
    }

    /// Reads four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u16> {
        let Some(d) = self.b.get(self.i..self.i + 4) else {
            return Err(self.err("end of line inside a \\u escape"));
        };
        let mut n = 0u16;
        for &c in d {
            let Some(v) = hex_digit(c) else {
                return Err(self.err("invalid \\u escape"));
            };
            n = n << 4 | v;
        }
        self.i += 4;
        Ok(n)
    }

    /// The error for the special byte at `at`, which is not `"` or `\`.
    #[cold]
    fn bad_string_byte(&mut self, at: usize) -> ViewError {
        self.i = at;
        if at == self.b.len() {
            self.err("end of line inside a string")
        } else {
            self.err("control character (U+0000 to U+001F) in a string")
        }
    }

    /// Skips a string whose opening quote has been consumed, checking only
    /// its syntax (see the module docs).
    pub(super) fn skip_string(&mut self) -> Result<()> {
        loop {
            let at = special_at(self.b, self.i);
            match self.b.get(at) {
                Some(b'"') => {
                    self.i = at + 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i = at + 1;
                    self.skip_escape()?;
                }
                _ => return Err(self.bad_string_byte(at)),
            }
        }
    }

    fn skip_escape(&mut self) -> Result<()> {
        match self.b.get(self.i) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 1;
                Ok(())
            }
            Some(b'u') => {
                self.i += 1;
                self.hex4().map(drop)
            }
            _ => Err(self.err("invalid escape")),
        }
    }

    /// The raw bytes of a string whose opening quote has been consumed, up
    /// to its closing quote (consumed), when it contains no escape; `None`
    /// with the position at the first `\` otherwise.
    #[inline]
    pub(super) fn plain_string(&mut self) -> Result<Option<&'a [u8]>> {
        let start = self.i;
        let at = special_at(self.b, start);
        match self.b.get(at) {
            Some(b'"') => {
                self.i = at + 1;
                Ok(Some(&self.b[start..at]))
            }
            Some(b'\\') => Ok(None),
            _ => Err(self.bad_string_byte(at)),
        }
    }

    /// The bytes `start..end` of the line as text, if they are UTF-8.
    #[inline]
    pub(super) fn utf8(&self, start: usize, end: usize) -> Result<&'a str> {
        if let Some(s) = self.text.and_then(|t| t.get(start..end)) {
            return Ok(s);
        }
        std::str::from_utf8(&self.b[start..end])
            .map_err(|e| ViewError::at(start + e.valid_up_to(), "invalid UTF-8 in a string"))
    }

    /// Decodes a string whose opening quote has been consumed.
    #[inline]
    pub(super) fn string(&mut self) -> Result<Cow<'a, str>> {
        let start = self.i;
        match self.plain_string()? {
            Some(raw) => self.utf8(start, start + raw.len()).map(Cow::Borrowed),
            None => self.escaped_string(start).map(Cow::Owned),
        }
    }

    /// Decodes a string that starts at `start` and has an escape at the
    /// current position.
    ///
    /// serde_json checks the UTF-8 of the decoded bytes as a whole; here
    /// each raw run between escapes is checked on its own, which is the
    /// same: an escape decodes to whole characters, so a run cannot borrow
    /// bytes from its neighbours to become valid.
    pub(super) fn escaped_string(&mut self, start: usize) -> Result<String> {
        // Decoding never lengthens a string, so the rest of the line is
        // enough for all but very long strings, which grow as usual. A
        // large excess is given back below: what a view holds stays
        // within twice what it needs.
        let mut out = String::with_capacity((self.b.len() - start).min(4096));
        let mut run = start;
        loop {
            let at = special_at(self.b, self.i);
            match self.b.get(at) {
                Some(b'"') => {
                    out.push_str(self.utf8(run, at)?);
                    self.i = at + 1;
                    if out.capacity() > 2 * out.len() + 64 {
                        out.shrink_to_fit();
                    }
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(self.utf8(run, at)?);
                    self.i = at + 1;
                    self.escape(&mut out)?;
                    run = self.i;
                }
                _ => return Err(self.bad_string_byte(at)),
            }
        }
    }

    /// Decodes the escape after a `\` into `out`.
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let c = match self.b.get(self.i) {
            Some(&c) => c,
            None => return Err(self.err("end of line inside an escape")),
        };
        self.i += 1;
        let ch = match c {
            b'"' | b'\\' | b'/' => c as char,
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode_escape()?,
            _ => {
                self.i -= 1;
                return Err(self.err("invalid escape"));
            }
        };
        out.push(ch);
        Ok(())
    }

    /// The character of a `\u` escape (and of a second one, for a
    /// surrogate pair) whose `\u` has been consumed.
    fn unicode_escape(&mut self) -> Result<char> {
        let n = self.hex4()?;
        let code = match n {
            0xDC00..=0xDFFF => return Err(self.err("lone low surrogate in a \\u escape")),
            0xD800..=0xDBFF => {
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(self.err("high surrogate not followed by a \\u escape"));
                }
                self.i += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.err("high surrogate not followed by a low surrogate"));
                }
                0x1_0000 + ((u32::from(n) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
            }
            _ => u32::from(n),
        };
        // Surrogates are excluded above, so this is always a char.
        Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Skips a number whose first byte (`-` or a digit) is the next one.
    pub(super) fn skip_number(&mut self) -> Result<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => {
                self.i += 1;
                if self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                    return Err(self.err("invalid number (leading zero)"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                return Err(self.err("invalid number (no digit after '.')"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if !self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                return Err(self.err("invalid number (no digit in the exponent)"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    /// Reads a number that must be an integer from 0 to `u64::MAX`, written
    /// without sign, fraction or exponent (serde_json reads any other
    /// number as a signed or floating-point value, which `u64` refuses).
    /// `what` names the field for the error.
    pub(super) fn uint(&mut self, what: &'static str) -> Result<u64> {
        let start = self.i;
        let not_uint = |s: &Self| {
            ViewError::at(
                start,
                format!(
                    "{what} must be an integer from 0 to 2^64-1 or null, not {:?}",
                    s.snippet(start)
                ),
            )
        };
        let mut n: u64 = match self.b.get(self.i) {
            Some(b'0') => 0,
            Some(&c @ b'1'..=b'9') => u64::from(c - b'0'),
            _ => return Err(not_uint(self)),
        };
        self.i += 1;
        if n == 0 {
            if self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                return Err(not_uint(self));
            }
        } else {
            while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
                self.i += 1;
                n = match n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(c - b'0')))
                {
                    Some(n) => n,
                    None => return Err(not_uint(self)),
                };
            }
        }
        if let Some(b'.' | b'e' | b'E') = self.b.get(self.i) {
            return Err(not_uint(self));
        }
        Ok(n)
    }

    /// Up to 24 bytes from `start`, for an error message.
    #[cold]
    fn snippet(&self, start: usize) -> String {
        let end = (start + 24).min(self.b.len());
        String::from_utf8_lossy(&self.b[start..end]).into_owned()
    }

    /// Skips one JSON value of any kind, checking its syntax. Nesting is
    /// followed with a bit per level (object or array), so any depth is
    /// accepted, as serde_json accepts it for ignored values.
    pub(super) fn skip_value(&mut self) -> Result<()> {
        let mut nest = Nest::default();
        loop {
            // A value is expected here.
            match self.ws() {
                Some(b'"') => {
                    self.i += 1;
                    self.skip_string()?;
                }
                Some(b'n') => self.literal(b"null")?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'-' | b'0'..=b'9') => self.skip_number()?,
                Some(b'[') => {
                    self.i += 1;
                    if self.ws() == Some(b']') {
                        self.i += 1;
                    } else {
                        nest.push(false);
                        continue;
                    }
                }
                Some(b'{') => {
                    self.i += 1;
                    match self.ws() {
                        Some(b'}') => self.i += 1,
                        Some(b'"') => {
                            nest.push(true);
                            self.member_key()?;
                            continue;
                        }
                        other => return Err(self.unexpected(other, "a key or '}'")),
                    }
                }
                other => return Err(self.unexpected(other, "a value")),
            }
            // A value ended: close containers until one goes on.
            loop {
                let Some(object) = nest.top() else {
                    return Ok(());
                };
                match self.ws() {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            match self.ws() {
                                Some(b'"') => self.member_key()?,
                                other => return Err(self.unexpected(other, "a key")),
                            }
                        }
                        break;
                    }
                    Some(b']') if !object => {
                        self.i += 1;
                        nest.pop();
                    }
                    Some(b'}') if object => {
                        self.i += 1;
                        nest.pop();
                    }
                    other => {
                        let expected = if object { "',' or '}'" } else { "',' or ']'" };
                        return Err(self.unexpected(other, expected));
                    }
                }
            }
        }
    }

    /// Skips a key of an ignored object (at its opening quote) and the
    /// colon after it.
    fn member_key(&mut self) -> Result<()> {
        self.i += 1;
        self.skip_string()?;
        self.expect(b':', "':'")
    }

    /// Whether every byte has been consumed, after trailing whitespace.
    pub(super) fn at_end(&mut self) -> bool {
        self.ws().is_none()
    }
}

/// The kinds of the open brackets while skipping a value: one bit per
/// level (1 for an object), 64 levels in a word, deeper ones spilled.
#[derive(Default)]
struct Nest {
    depth: usize,
    bits: u64,
    spill: Vec<u64>,
}

impl Nest {
    fn push(&mut self, object: bool) {
        if self.depth != 0 && self.depth % 64 == 0 {
            self.spill.push(self.bits);
            self.bits = 0;
        }
        self.bits = self.bits << 1 | u64::from(object);
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth -= 1;
        self.bits >>= 1;
        if self.depth != 0 && self.depth % 64 == 0 {
            self.bits = self.spill.pop().unwrap_or(0);
        }
    }

    fn top(&self) -> Option<bool> {
        (self.depth != 0).then_some(self.bits & 1 == 1)
    }
}
