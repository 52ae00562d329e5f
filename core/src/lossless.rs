//! Lossless conversion of raw log bytes into text.
//!
//! Log files are bytes. Almost every line is valid UTF-8, and then the text
//! is exactly the line. When a line is not valid UTF-8, replacing the bad
//! bytes with U+FFFD would destroy evidence, so instead the line is escaped:
//!
//! ```text
//! escaped form (used only when the input is NOT valid UTF-8):
//!   every byte that is part of a valid UTF-8 sequence   -> itself
//!   every backslash (0x5C)                               -> "\\"
//!   every byte that is not part of valid UTF-8           -> "\xNN" (lowercase hex)
//! ```
//!
//! The event then carries the `raw_escaped` flag, and [`unescape`] restores
//! the original bytes exactly. Valid lines are never touched, so nginx's own
//! `\x16\x03` escapes in a valid line stay as they were written.

/// Text for `bytes`, and whether it had to be escaped.
pub fn to_text(bytes: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (std::borrow::Cow::Borrowed(s), false),
        Err(_) => (std::borrow::Cow::Owned(escape(bytes)), true),
    }
}

/// Escapes bytes that are not valid UTF-8, as described in the module docs.
pub fn escape(mut bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() + 16);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                push_doubling_backslashes(&mut out, s);
                return out;
            }
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                // `good` was just validated; from_utf8 cannot fail on it.
                push_doubling_backslashes(&mut out, std::str::from_utf8(good).unwrap_or(""));
                let bad = e.error_len().unwrap_or(rest.len());
                for &b in &rest[..bad] {
                    out.push('\\');
                    out.push('x');
                    out.push(HEX[usize::from(b >> 4)] as char);
                    out.push(HEX[usize::from(b & 15)] as char);
                }
                bytes = &rest[bad..];
            }
        }
    }
}

fn push_doubling_backslashes(out: &mut String, s: &str) {
    for (i, part) in s.split('\\').enumerate() {
        if i > 0 {
            out.push_str("\\\\");
        }
        out.push_str(part);
    }
}

/// Reverses [`escape`]. Returns `None` if `s` is not a well-formed escaped form.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_utf8_is_untouched() {
        let (t, escaped) = to_text(br"GET /\x16\x03 caf\xc3\xa9");
        assert!(!escaped);
        assert_eq!(t, r"GET /\x16\x03 caf\xc3\xa9");
    }

    #[test]
    fn invalid_bytes_are_escaped_and_backslashes_doubled() {
        let (t, escaped) = to_text(b"user \xff\xfe a\\b \xc3\xa9");
        assert!(escaped);
        assert_eq!(t, "user \\xff\\xfe a\\\\b \u{e9}");
        assert_eq!(unescape(&t).unwrap(), b"user \xff\xfe a\\b \xc3\xa9");
    }

    proptest! {
        #[test]
        fn escape_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let (t, escaped) = to_text(&bytes);
            if escaped {
                prop_assert_eq!(unescape(&t).unwrap(), bytes);
            } else {
                prop_assert_eq!(t.as_bytes(), &bytes[..]);
            }
        }
    }
}
