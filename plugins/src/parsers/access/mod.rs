//! Access-log parsing for nginx and Apache.
//!
//! A line is matched against an ordered list of [`CompiledFormat`]s; the first
//! that matches and whose fields validate wins. Matching is a single left to
//! right walk: a field runs up to the next literal of the format, and a field
//! inside double quotes runs to the next unescaped quote that is followed by
//! that literal. There are no regular expressions and no backtracking beyond
//! trying the next format.
//!
//! Field handling that real logs need:
//! * the client field may be a list (`10.0.0.2, 10.0.0.1 127.0.0.1`, or an
//!   X-Forwarded-For value in quotes before it); every address is kept in
//!   `http.forwarded_for`, and `src_ip` is the first public address, or the
//!   first address when none is public (the rule Elastic's nginx module uses).
//!   X-Forwarded-For is written by clients and proxies, so an auditor should
//!   treat everything but the last trusted hop as a claim;
//! * `unix:` clients and host names go to `src_addr`;
//! * a request of `-` or `""` has no method or URL; a request that is not
//!   `METHOD TARGET [VERSION]` (garbage, TLS handshakes escaped as `\x16\x03…`)
//!   is kept whole in `http.request`;
//! * a trailing `"…"` after the format (nginx's `main` format adds
//!   `"$http_x_forwarded_for"`) is read as X-Forwarded-For; anything else
//!   left over is kept in `fields.trailing`.

pub mod format;
mod values;

use auditship_core::{AuditEvent, Category, Outcome};

pub use format::{CompiledFormat, FieldKind, FormatError, Token};
use values::{parse_addr_list, parse_request, parse_time_local, AddrList};

/// Which built-in set of formats to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// nginx `combined` (and `main`), `common`, `vhost_combined`.
    Nginx,
    /// Apache `combined`, `common`, `vhost_combined`.
    Apache,
    /// Both, for auto-detection.
    Any,
}

/// Parses access-log lines against a list of compiled formats.
#[derive(Clone, Debug)]
pub struct AccessParser {
    formats: Vec<CompiledFormat>,
    program: Option<&'static str>,
    spans: Vec<(usize, usize)>,
}

impl AccessParser {
    /// The built-in formats of `flavor`.
    pub fn builtin(flavor: Flavor) -> Self {
        use format::*;
        let compile_n = |n, f| CompiledFormat::nginx(n, f).expect("built-in format compiles");
        let compile_a = |n, f| CompiledFormat::apache(n, f).expect("built-in format compiles");
        let (formats, program) = match flavor {
            Flavor::Nginx => (
                vec![
                    compile_n("combined", NGINX_COMBINED),
                    compile_n("vhost_combined", NGINX_VHOST_COMBINED),
                    compile_n("common", NGINX_COMMON),
                ],
                Some("nginx"),
            ),
            Flavor::Apache => (
                vec![
                    compile_a("combined", APACHE_COMBINED),
                    compile_a("vhost_combined", APACHE_VHOST_COMBINED),
                    compile_a("common", APACHE_COMMON),
                ],
                Some("apache"),
            ),
            Flavor::Any => (
                vec![
                    compile_n("combined", NGINX_COMBINED),
                    compile_a("vhost_combined", APACHE_VHOST_COMBINED),
                    compile_a("combined", APACHE_COMBINED),
                    compile_a("common", APACHE_COMMON),
                ],
                None,
            ),
        };
        AccessParser {
            formats,
            program,
            spans: Vec::new(),
        }
    }

    /// A parser for one user-supplied format.
    pub fn custom(format: CompiledFormat, program: Option<&'static str>) -> Self {
        AccessParser {
            formats: vec![format],
            program,
            spans: Vec::new(),
        }
    }

    /// Parses `line` into a web event, or `None` if no format matches.
    ///
    /// The event's `raw` is left empty; the caller owns the raw line.
    pub fn parse(&mut self, line: &str) -> Option<AuditEvent> {
        for i in 0..self.formats.len() {
            let mut spans = std::mem::take(&mut self.spans);
            let matched = match_tokens(&self.formats[i].tokens, line, &mut spans);
            let ev = matched.and_then(|rest| build(&self.formats[i].tokens, line, &spans, rest));
            self.spans = spans;
            if let Some(mut ev) = ev {
                if let Some(p) = self.program {
                    ev.program = Some(p.to_string());
                }
                return Some(ev);
            }
        }
        None
    }
}

/// Matches `tokens` over `line`, recording each field's byte span in `spans`.
/// Returns the offset where the format ended.
fn match_tokens(tokens: &[Token], line: &str, spans: &mut Vec<(usize, usize)>) -> Option<usize> {
    spans.clear();
    let b = line.as_bytes();
    let mut pos = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Lit(l) => {
                if !b[pos..].starts_with(l.as_bytes()) {
                    return None;
                }
                pos += l.len();
            }
            Token::Field(_) => {
                let quoted = i > 0 && matches!(&tokens[i - 1], Token::Lit(l) if l.ends_with('"'));
                let end = match tokens.get(i + 1) {
                    None => b.len(),
                    Some(Token::Lit(next)) if quoted && next.starts_with('"') => {
                        find_closing_quote(&b[pos..], next.as_bytes())? + pos
                    }
                    Some(Token::Lit(next)) => find_literal(&b[pos..], next.as_bytes())? + pos,
                    Some(Token::Field(_)) => return None,
                };
                spans.push((pos, end));
                pos = end;
            }
        }
    }
    Some(pos)
}

/// Offset of the first occurrence of `lit` in `hay`.
///
/// Format literals are a few bytes long, so a `memchr` for the first byte
/// plus a comparison beats building a substring searcher per call.
fn find_literal(hay: &[u8], lit: &[u8]) -> Option<usize> {
    let (&first, rest) = lit.split_first()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Offset of the first unescaped `"` in `b` at which `next` matches.
///
/// Quoted fields (request, referrer, user agent) are most of a line, so the
/// scan jumps between quotes and backslashes with `memchr2` rather than
/// looking at every byte.
fn find_closing_quote(b: &[u8], next: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(at) = memchr::memchr2(b'"', b'\\', &b[i..]) {
        i += at;
        if b[i] == b'\\' {
            i += 2;
            if i >= b.len() {
                return None;
            }
        } else if b[i..].starts_with(next) {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

fn dash(s: &str) -> Option<&str> {
    (!s.is_empty() && s != "-").then_some(s)
}

fn build(
    tokens: &[Token],
    line: &str,
    spans: &[(usize, usize)],
    rest: usize,
) -> Option<AuditEvent> {
    let mut ev = AuditEvent::new(
        Category::Web,
        "http_request",
        Outcome::Unknown,
        String::new(),
    );
    let mut remote = AddrList::default();
    let mut xff = AddrList::default();
    let mut body_bytes = None;
    let mut bytes_sent = None;
    let mut uri = None;
    let mut path = None;
    let mut query = None;
    let fields = tokens.iter().filter_map(|t| match t {
        Token::Field(k) => Some(k),
        Token::Lit(_) => None,
    });
    for (kind, &(s, e)) in fields.zip(spans) {
        let v = &line[s..e];
        match kind {
            FieldKind::RemoteAddr => remote = parse_addr_list(v)?,
            FieldKind::ForwardedFor => xff = parse_addr_list(v)?,
            FieldKind::RemotePort => ev.src_port = dash(v).map(|p| p.parse()).transpose().ok()?,
            FieldKind::RemoteUser => ev.actor.user = dash(v).map(str::to_string),
            FieldKind::Ident => {}
            FieldKind::TimeLocal => {
                ev.ts = Some(parse_time_local(v)?);
                ev.raw_ts = Some(v.to_string());
            }
            FieldKind::TimeIso8601 => {
                ev.ts = Some(auditship_core::Timestamp::parse_rfc3339(v, 0)?.0);
                ev.raw_ts = Some(v.to_string());
            }
            FieldKind::Msec => {
                let (secs, ms) = v.split_once('.').unwrap_or((v, "0"));
                let ms = ms.get(..3).unwrap_or(ms);
                let nanos =
                    auditship_core::time::digits(ms.as_bytes())? * 10u32.pow(9 - ms.len() as u32);
                ev.ts = auditship_core::Timestamp::new(secs.parse().ok()?, nanos, 0);
                ev.raw_ts = Some(v.to_string());
            }
            FieldKind::Request => parse_request(v, &mut ev),
            FieldKind::Method => ev.http_mut().method = dash(v).map(str::to_string),
            FieldKind::RequestUri => uri = dash(v),
            FieldKind::Path => path = dash(v),
            FieldKind::Query => query = dash(v),
            FieldKind::Protocol => {
                ev.http_mut().version =
                    dash(v).map(|p| p.strip_prefix("HTTP/").unwrap_or(p).to_string())
            }
            FieldKind::Status => {
                if v.len() != 3 {
                    return None;
                }
                let status = auditship_core::time::digits(v.as_bytes())? as u16;
                ev.http_mut().status = Some(status);
                ev.outcome = if status < 400 {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
            }
            FieldKind::BodyBytes => body_bytes = bytes(v)?,
            FieldKind::BytesSent => bytes_sent = bytes(v)?,
            FieldKind::Referrer => ev.http_mut().referrer = dash(v).map(str::to_string),
            FieldKind::UserAgent => ev.user_agent = dash(v).map(str::to_string),
            FieldKind::Host => ev.http_mut().host = dash(v).map(str::to_string),
            FieldKind::RequestId => ev.request_id = dash(v).map(str::to_string),
            FieldKind::DurationSecs => {
                if let Some(v) = dash(v) {
                    ev.http_mut().duration_us = Some(secs_to_micros(v)?);
                }
            }
            FieldKind::DurationMicros => {
                if let Some(v) = dash(v) {
                    ev.http_mut().duration_us = Some(v.parse().ok()?);
                }
            }
            FieldKind::Other(name) => {
                if let Some(v) = dash(v) {
                    ev.fields.insert(name.clone(), v.to_string());
                }
            }
        }
    }
    let trailing = line[rest..].trim_start();
    if !trailing.is_empty() {
        match trailing
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|t| !t.contains('"'))
            .and_then(parse_addr_list)
        {
            Some(list) if xff.is_empty() => xff = list,
            _ => {
                ev.fields.insert("trailing".into(), trailing.to_string());
            }
        }
    }
    if let Some(b) = body_bytes.or(bytes_sent) {
        ev.http_mut().bytes = Some(b);
    }
    if ev.target.url.is_none() {
        ev.target.url = match (uri, path, query) {
            (Some(u), _, _) => Some(u.to_string()),
            (None, Some(p), Some(q)) => Some(format!("{p}?{}", q.trim_start_matches('?'))),
            (None, Some(p), None) => Some(p.to_string()),
            _ => None,
        };
    }
    // The chain in request order: X-Forwarded-For first, then the client field.
    let chain_len = xff.len() + remote.len();
    let choice = xff.iter().chain(remote.iter()).find(|a| a.is_public_ip());
    let choice = choice.or_else(|| xff.iter().chain(remote.iter()).next());
    match choice {
        Some(a) => match a.ip {
            Some(ip) => ev.src_ip = Some(ip),
            None => ev.src_addr = Some(a.text.to_string()),
        },
        None if remote.is_empty() && tokens_have(tokens, &FieldKind::RemoteAddr) => return None,
        None => {}
    }
    if chain_len > 1 {
        ev.http_mut().forwarded_for = xff
            .iter()
            .chain(remote.iter())
            .map(|a| a.canonical().into_owned())
            .collect();
    }
    Some(ev)
}

fn tokens_have(tokens: &[Token], kind: &FieldKind) -> bool {
    tokens
        .iter()
        .any(|t| matches!(t, Token::Field(k) if k == kind))
}

fn bytes(v: &str) -> Option<Option<u64>> {
    if v == "-" {
        return Some(None);
    }
    v.parse().ok().map(Some)
}

fn secs_to_micros(v: &str) -> Option<u64> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let mut us: u64 = s.parse::<u64>().ok()?.checked_mul(1_000_000)?;
    let mut scale = 100_000;
    for c in frac.bytes().take(6) {
        if !c.is_ascii_digit() {
            return None;
        }
        us += u64::from(c - b'0') * scale;
        scale /= 10;
    }
    Some(us)
}

#[cfg(test)]
mod tests;
