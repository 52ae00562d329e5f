//! `${VAR}` and `${VAR:-default}` in config values, from the environment.
//!
//! Substitution happens inside TOML strings only, before the text is
//! parsed, so a value can never change the file's structure:
//!
//! * in a basic string (`"…"` or `"""…"""`) the value is escaped as a TOML
//!   basic string needs (`\`, `"`, control characters), so it arrives
//!   exactly as the variable holds it;
//! * in a literal string (`'…'` or `'''…'''`) nothing can be escaped: a
//!   value holding `'` (or a newline, in a one-line literal) is an error;
//! * comments, keys, numbers and booleans are left alone, and so is
//!   `$${…}`, which stands for a literal `${…}`.
//!
//! A variable that is not set (or set but empty, with `:-`) takes the
//! default after `:-`; without a default it is an error naming the variable
//! and the line. Every such problem is reported, not only the first.
//! `${CREDENTIALS_DIRECTORY}` is how a config reaches systemd credentials,
//! for example `token_file = "${CREDENTIALS_DIRECTORY}/ingest-token"`.
//! Escaped values never contain a newline, so line numbers do not move.

/// A `${…}` that cannot be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    /// 1-based line.
    pub line: usize,
    /// The key on that line (text before `=`), when there is one.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Code,
    Comment,
    Basic,
    MultiBasic,
    Literal,
    MultiLiteral,
}

/// Substitutes variables in `source` using `env` (e.g. `std::env::var`).
pub fn interpolate(
    source: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<InterpolationError>> {
    let mut out = String::with_capacity(source.len());
    let mut errs = Vec::new();
    let mut ctx = Ctx::Code;
    let mut line = 1;
    let mut line_start = 0;
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &source[i..];
        let c = bytes[i];
        match ctx {
            Ctx::Code => {
                if rest.starts_with("\"\"\"") {
                    ctx = Ctx::MultiBasic;
                    out.push_str("\"\"\"");
                    i += 3;
                    continue;
                } else if rest.starts_with("'''") {
                    ctx = Ctx::MultiLiteral;
                    out.push_str("'''");
                    i += 3;
                    continue;
                }
                ctx = match c {
                    b'"' => Ctx::Basic,
                    b'\'' => Ctx::Literal,
                    b'#' => Ctx::Comment,
                    _ => Ctx::Code,
                };
            }
            Ctx::Comment if c == b'\n' => ctx = Ctx::Code,
            Ctx::Basic | Ctx::MultiBasic if c == b'\\' => {
                // An escape: copy it and the escaped character as they are.
                let n = rest.chars().nth(1).map_or(1, |ch| 1 + ch.len_utf8());
                out.push_str(&rest[..n.min(rest.len())]);
                i += n;
                continue;
            }
            Ctx::Basic if c == b'"' => ctx = Ctx::Code,
            Ctx::MultiBasic if rest.starts_with("\"\"\"") => {
                out.push_str("\"\"\"");
                i += 3;
                ctx = Ctx::Code;
                continue;
            }
            Ctx::Literal if c == b'\'' => ctx = Ctx::Code,
            Ctx::MultiLiteral if rest.starts_with("'''") => {
                out.push_str("'''");
                i += 3;
                ctx = Ctx::Code;
                continue;
            }
            Ctx::Basic | Ctx::MultiBasic | Ctx::Literal | Ctx::MultiLiteral => {
                if rest.starts_with("$${") {
                    out.push_str("${");
                    i += 3;
                    continue;
                }
                if rest.starts_with("${") {
                    let key = || key_of(&source[line_start..]);
                    let Some(end) = rest.find('}') else {
                        errs.push(InterpolationError {
                            line,
                            key: key(),
                            message: "\"${\" without a closing \"}\" (write $${ for a literal ${)"
                                .into(),
                        });
                        out.push_str("${");
                        i += 2;
                        continue;
                    };
                    let inner = &rest[2..end];
                    match substitute(inner, &env) {
                        Ok(value) => match escape(&value, ctx) {
                            Ok(v) => out.push_str(&v),
                            Err(m) => errs.push(InterpolationError {
                                line,
                                key: key(),
                                message: format!("${{{inner}}}: {m}"),
                            }),
                        },
                        Err(m) => errs.push(InterpolationError {
                            line,
                            key: key(),
                            message: m,
                        }),
                    }
                    i += end + 1;
                    continue;
                }
            }
            _ => {}
        }
        if c == b'\n' {
            line += 1;
            line_start = i + 1;
        }
        let ch = rest.chars().next().expect("not at the end");
        out.push(ch);
        i += ch.len_utf8();
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// The value of `NAME` or `NAME:-default`.
fn substitute(inner: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match inner.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (inner, None),
    };
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "${{{inner}}}: {name:?} is not a variable name (letters, digits and _)"
        ));
    }
    match (env(name), default) {
        (Some(v), Some(d)) if v.is_empty() => Ok(d.to_string()),
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(format!(
            "environment variable {name} is not set (give a default with ${{{name}:-default}})"
        )),
    }
}

/// `value` as it must be written inside a string of kind `ctx`.
fn escape(value: &str, ctx: Ctx) -> Result<String, &'static str> {
    match ctx {
        Ctx::Literal | Ctx::MultiLiteral => {
            if value.contains('\'') {
                Err("the value holds ' which a literal '…' string cannot; use a \"…\" string")
            } else if ctx == Ctx::Literal && value.contains(['\n', '\r']) {
                Err("the value holds a line break; use a \"…\" string")
            } else {
                Ok(value.to_string())
            }
        }
        _ => {
            let mut s = String::with_capacity(value.len());
            for ch in value.chars() {
                match ch {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    '\r' => s.push_str("\\r"),
                    '\t' => s.push_str("\\t"),
                    c if c.is_control() => s.push_str(&format!("\\u{:04X}", c as u32)),
                    c => s.push(c),
                }
            }
            Ok(s)
        }
    }
}

/// The key written at the start of a line, if any.
fn key_of(line: &str) -> String {
    let line = line.lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((k, _)) if !k.contains(['"', '\'']) => k.trim().to_string(),
        Some((k, _)) => k.trim().trim_matches(['"', '\'']).to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("collector.example".into()),
            "EMPTY" => Some(String::new()),
            "NASTY" => Some("a\"b\\c\nd'e".into()),
            "CREDENTIALS_DIRECTORY" => Some("/run/credentials/auditship-agent.service".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_and_defaults_are_substituted_in_strings_only() {
        let src = "# ${HOST} in a comment stays\n\
                   url = \"https://${HOST}:8443\"\n\
                   dir = '${MISSING:-/var/lib/x}'\n\
                   empty = \"${EMPTY:-fallback}\"\n\
                   unset_but_plain = \"${EMPTY}\"\n\
                   token_file = \"${CREDENTIALS_DIRECTORY}/token\"\n\
                   literal = \"$${HOST}\"\n";
        let out = interpolate(src, env).unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert!(out.starts_with("# ${HOST} in a comment stays\n"));
        assert_eq!(v["url"].as_str(), Some("https://collector.example:8443"));
        assert_eq!(v["dir"].as_str(), Some("/var/lib/x"));
        assert_eq!(v["empty"].as_str(), Some("fallback"));
        assert_eq!(v["unset_but_plain"].as_str(), Some(""));
        assert_eq!(
            v["token_file"].as_str(),
            Some("/run/credentials/auditship-agent.service/token")
        );
        assert_eq!(v["literal"].as_str(), Some("${HOST}"));
    }

    #[test]
    fn a_value_cannot_change_the_structure_of_the_file() {
        let out = interpolate("a = \"${NASTY}\"\nb = 1\n", env).unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["a"].as_str(), Some("a\"b\\c\nd'e"));
        assert_eq!(v["b"].as_integer(), Some(1));
        assert_eq!(out.lines().count(), 2, "line numbers do not move");
        let e = interpolate("a = '${NASTY}'\n", env).unwrap_err();
        assert_eq!(e[0].line, 1);
        assert!(e[0].message.contains("literal"), "{e:?}");
    }

    #[test]
    fn every_problem_is_reported_with_its_line_and_key() {
        let src =
            "ok = \"${HOST}\"\n[out]\ntoken = \"${TOKEN}\"\nurl = \"${1BAD}\"\nx = \"${OPEN\"\n";
        let e = interpolate(src, env).unwrap_err();
        let got: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(got, [(3, "token"), (4, "url"), (5, "x")]);
        assert!(
            e[0].message.contains("TOKEN is not set"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn escapes_and_multiline_strings_are_respected() {
        let src = "a = \"\\\"${HOST}\\\"\"\nb = \"\"\"\nx ${HOST}\n\"\"\"\nc = 3 # \"${NOPE}\n";
        let out = interpolate(src, env).unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["a"].as_str(), Some("\"collector.example\""));
        assert_eq!(v["b"].as_str(), Some("x collector.example\n"));
        assert_eq!(v["c"].as_integer(), Some(3));
    }
}
