//! Splitting a request body into events, all or nothing.
//!
//! A body is one of:
//!
//! * a JSON array of objects: each element is an event;
//! * one or more JSON objects separated by whitespace, which covers one
//!   object (pretty-printed or not) and NDJSON (one object per line).
//!
//! Each event is kept as the exact text the client sent (its `raw`), as a
//! byte range of the body. Anything wrong anywhere refuses the whole body,
//! with a message that says where: `line 3: …` (NDJSON, counting from 1),
//! `element 2: …` (an array, counting from 1), or the line and column of a
//! syntax error. An empty body (or `[]`) holds no events and is fine.

use std::ops::Range;

use serde_json::value::RawValue;

/// Why a body was refused. The message names the line or element.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// JSON must be UTF-8.
    #[error("the body is not UTF-8 (at byte {0})")]
    NotUtf8(usize),
    /// Not JSON.
    #[error("line {line}: {message}")]
    Syntax {
        /// Line of the error (from 1).
        line: usize,
        /// serde_json's message, with the column.
        message: String,
    },
    /// An event that is not a JSON object.
    #[error("{at}: an event must be a JSON object, not {kind}")]
    NotObject {
        /// `line N` or `element N`.
        at: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// An event larger than the input's `max_event_bytes`.
    #[error("{at}: the event is {size} bytes, more than max_event_bytes ({max})")]
    TooLarge {
        /// `line N` or `element N`.
        at: String,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// The events of `body` as ranges of it; see the module docs.
pub fn split(body: &[u8], max_event: usize) -> Result<Vec<Range<usize>>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::NotUtf8(e.valid_up_to()))?;
    let Some(first) = text.find(|c: char| !c.is_ascii_whitespace()) else {
        return Ok(Vec::new());
    };
    let syntax = |e: serde_json::Error| BodyError::Syntax {
        line: e.line(),
        message: e.to_string(),
    };
    let span = |raw: &RawValue| {
        let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        start..start + raw.get().len()
    };
    let mut events = Vec::new();
    if text[first..].starts_with('[') {
        let elements: Vec<&RawValue> = serde_json::from_str(text).map_err(syntax)?;
        for (i, raw) in elements.into_iter().enumerate() {
            check(raw.get(), || format!("element {}", i + 1), max_event)?;
            events.push(span(raw));
        }
    } else {
        let mut line = 1;
        let mut counted = 0;
        for raw in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
            let raw = raw.map_err(syntax)?;
            let r = span(raw);
            line += text.as_bytes()[counted..r.start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted = r.start;
            check(raw.get(), || format!("line {line}"), max_event)?;
            events.push(r);
        }
    }
    Ok(events)
}

/// An event must be an object of at most `max` bytes.
fn check(raw: &str, at: impl Fn() -> String, max: usize) -> Result<(), BodyError> {
    let kind = match raw.as_bytes()[0] {
        b'{' => None,
        b'[' => Some("an array"),
        b'"' => Some("a string"),
        b't' | b'f' => Some("a boolean"),
        b'n' => Some("null"),
        _ => Some("a number"),
    };
    if let Some(kind) = kind {
        return Err(BodyError::NotObject { at: at(), kind });
    }
    if raw.len() > max {
        return Err(BodyError::TooLarge {
            at: at(),
            size: raw.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &str) -> Vec<&str> {
        split(body.as_bytes(), 1 << 20)
            .unwrap()
            .into_iter()
            .map(|r| &body[r])
            .collect()
    }

    #[test]
    fn objects_arrays_and_ndjson_keep_each_event_as_sent() {
        assert_eq!(texts(r#"{"a":1}"#), [r#"{"a":1}"#]);
        assert_eq!(
            texts("{\n  \"a\": 1,\n  \"b\": [2]\n}\n"),
            ["{\n  \"a\": 1,\n  \"b\": [2]\n}"]
        );
        assert_eq!(
            texts("{\"a\":1}\n{\"b\" : 2}\r\n\n{\"c\":3}"),
            [r#"{"a":1}"#, r#"{"b" : 2}"#, r#"{"c":3}"#]
        );
        assert_eq!(
            texts(r#" [ {"a":1} , {"b":{"c":[1,2]}} ] "#),
            [r#"{"a":1}"#, r#"{"b":{"c":[1,2]}}"#]
        );
        assert!(texts("").is_empty());
        assert!(texts(" \n ").is_empty());
        assert!(texts("[]").is_empty());
    }

    #[test]
    fn the_error_says_which_line_or_element() {
        let e = split(b"{\"a\":1}\n{\"b\":2}\n{\"c\":", 1024).unwrap_err();
        assert!(matches!(e, BodyError::Syntax { line: 3, .. }), "{e}");
        assert!(e.to_string().starts_with("line 3: "), "{e}");
        let e = split(b"{\"a\":1}\n\n42\n", 1024).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: an event must be a JSON object, not a number"
        );
        let e = split(br#"[{"a":1},{"b":2},"x"]"#, 1024).unwrap_err();
        assert_eq!(
            e.to_string(),
            "element 3: an event must be a JSON object, not a string"
        );
        let e = split(br#"[{"a":1},]"#, 1024).unwrap_err();
        assert!(e.to_string().starts_with("line 1: "), "{e}");
        // An array is one body, not a line of NDJSON.
        let e = split(b"[{\"a\":1}]\n[{\"b\":2}]", 1024).unwrap_err();
        assert!(e.to_string().contains("trailing characters"), "{e}");
        let e = split(b"{\"a\":1}\n{\"big\":\"xxxxxxxxxxxxxxxxxxxx\"}", 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: the event is 30 bytes, more than max_event_bytes (20)"
        );
        assert_eq!(split(b"{\"a\":\"\xff\"}", 1024), Err(BodyError::NotUtf8(6)));
        assert!(matches!(
            split(b"nonsense", 1024),
            Err(BodyError::Syntax { line: 1, .. })
        ));
    }
}
