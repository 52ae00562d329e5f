//! Masking secret parameters in URL query strings: `?token=abc&x=1`
//! becomes `?token=[REDACTED]&x=1`.
//!
//! The same scanner runs on a bare URL (`target.url`, `http.referrer`) and
//! on a whole log line (`raw`), so that a field and the line it came from
//! stay consistent. It looks for `?`, then reads `name=value` pairs
//! separated by `&`. A query ends at whitespace, a quote, `#`, `<`, `>` or
//! the next `?` (which starts a new query, so a URL nested in a parameter
//! value is scanned too). Parameter names are compared ASCII
//! case-insensitively and are not percent-decoded. Empty values and values
//! already equal to `[REDACTED]` are left alone.
//!
//! A text without `?` is rejected after one byte scan, with no allocation;
//! a text is copied only when something is replaced.

use super::REDACTED;

/// Query parameters whose values are always redacted by `url_query_secrets`.
pub const SECRET_QUERY_PARAMS: [&str; 13] = [
    "token",
    "access_token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "api_key",
    "apikey",
    "key",
    "auth",
    "session",
    "sig",
    "signature",
];

/// Redacts the values of a fixed set of query parameter names.
#[derive(Clone, Debug)]
pub(crate) struct QueryRedactor {
    /// Extra names from `query_params`, besides [`SECRET_QUERY_PARAMS`].
    extra: Vec<String>,
}

impl QueryRedactor {
    /// A redactor for the built-in names plus `extra`.
    pub(crate) fn new(extra: Vec<String>) -> Self {
        QueryRedactor { extra }
    }

    /// Whether `name` is a query parameter name the config accepts: not
    /// empty, and none of the bytes that delimit a query.
    pub(crate) fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && !name
                .bytes()
                .any(|b| b == b'=' || b == b'&' || ends_query(b))
    }

    fn is_secret(&self, name: &str) -> bool {
        SECRET_QUERY_PARAMS
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
            || self.extra.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// `s` with secret parameter values replaced, or `None` when there was
    /// nothing to replace.
    pub(crate) fn redact(&self, s: &str) -> Option<String> {
        let b = s.as_bytes();
        if !b.contains(&b'?') {
            return None;
        }
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut p = 0;
        while p < b.len() {
            if b[p] != b'?' {
                p += 1;
                continue;
            }
            p += 1;
            // One `name[=value]` pair per turn, until the query ends.
            loop {
                let name_start = p;
                while p < b.len() && b[p] != b'=' && b[p] != b'&' && !ends_query(b[p]) {
                    p += 1;
                }
                let name = &s[name_start..p];
                if p < b.len() && b[p] == b'=' {
                    p += 1;
                    let value_start = p;
                    while p < b.len() && b[p] != b'&' && !ends_query(b[p]) {
                        p += 1;
                    }
                    let value = &s[value_start..p];
                    if !value.is_empty() && value != REDACTED && self.is_secret(name) {
                        let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
                        o.push_str(&s[copied..value_start]);
                        o.push_str(REDACTED);
                        copied = p;
                    }
                }
                if p < b.len() && b[p] == b'&' {
                    p += 1;
                } else {
                    break;
                }
            }
        }
        out.map(|mut o| {
            o.push_str(&s[copied..]);
            o
        })
    }
}

/// Bytes that end a query string inside a URL or a log line. All ASCII, so
/// slicing at them stays on UTF-8 boundaries.
fn ends_query(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'#' | b'<' | b'>' | b'?')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(s: &str) -> Option<String> {
        QueryRedactor::new(vec!["sessionid".into()]).redact(s)
    }

    #[test]
    fn secret_values_are_replaced() {
        assert_eq!(
            redact("/a?token=abc&x=1").as_deref(),
            Some("/a?token=[REDACTED]&x=1")
        );
        assert_eq!(
            redact("/a?x=1&PassWord=s3cr=t#frag").as_deref(),
            Some("/a?x=1&PassWord=[REDACTED]#frag")
        );
        assert_eq!(
            redact("/a?api_key=1&sig=2&SessionId=3&keep=4").as_deref(),
            Some("/a?api_key=[REDACTED]&sig=[REDACTED]&SessionId=[REDACTED]&keep=4")
        );
        assert_eq!(
            redact("/login?next=/cb?access_token=xyz").as_deref(),
            Some("/login?next=/cb?access_token=[REDACTED]")
        );
        assert_eq!(
            redact("/é?token=ü€&x").as_deref(),
            Some("/é?token=[REDACTED]&x")
        );
    }

    #[test]
    fn whole_log_lines_are_scanned_query_by_query() {
        let line = r#"1.2.3.4 - - [t] "GET /a?token=abc&x=1 HTTP/1.1" 200 5 "https://r.example/?key=k1" "ua?auth=no""#;
        assert_eq!(
            redact(line).as_deref(),
            Some(
                r#"1.2.3.4 - - [t] "GET /a?token=[REDACTED]&x=1 HTTP/1.1" 200 5 "https://r.example/?key=[REDACTED]" "ua?auth=[REDACTED]""#
            )
        );
    }

    #[test]
    fn nothing_to_redact_returns_none() {
        for s in [
            "",
            "/healthz",
            "/a?x=1&y=2",
            "/a?token=&x=1",
            "/a?token",
            "/a?tokens=1&mytoken=2",
            "/a?token=[REDACTED]",
            "what? token=abc",
            "?",
            "??&&==",
        ] {
            assert_eq!(redact(s), None, "{s:?}");
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(QueryRedactor::valid_name("sessionid"));
        for bad in ["", "a=b", "a&b", "a b", "a?", "a#"] {
            assert!(!QueryRedactor::valid_name(bad), "{bad:?}");
        }
    }
}
