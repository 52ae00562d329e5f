//! Field values of access logs: client address lists, request lines, and
//! nginx/Apache local times.

use std::borrow::Cow;
use std::net::IpAddr;

use auditship_core::time::{digits, month_from_abbr, parse_offset};
use auditship_core::{AuditEvent, Timestamp};

/// One client address as written, and its IP when it is one.
#[derive(Clone, Debug)]
pub(super) struct Addr<'a> {
    pub text: &'a str,
    pub ip: Option<IpAddr>,
}

impl Addr<'_> {
    /// Not private, loopback, link-local, shared (CGNAT), ULA or unspecified.
    /// Documentation ranges count as public, as in Elastic's nginx module.
    pub fn is_public_ip(&self) -> bool {
        match self.ip {
            Some(IpAddr::V4(v4)) => {
                !(v4.is_private()
                    || v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
                    || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
            }
            Some(IpAddr::V6(v6)) => {
                let seg0 = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (seg0 & 0xfe00) == 0xfc00
                    || (seg0 & 0xffc0) == 0xfe80)
            }
            None => false,
        }
    }

    /// The IP in canonical text form, or the text as written.
    pub fn canonical(&self) -> Cow<'_, str> {
        match self.ip {
            Some(ip) => Cow::Owned(ip.to_string()),
            None => Cow::Borrowed(self.text),
        }
    }
}

/// Client addresses in the order they were written. Most lines have one, so
/// the first lives inline and only lists allocate.
#[derive(Clone, Debug, Default)]
pub(super) struct AddrList<'a> {
    first: Option<Addr<'a>>,
    more: Vec<Addr<'a>>,
}

impl<'a> AddrList<'a> {
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Addr<'a>> {
        self.first.iter().chain(self.more.iter())
    }

    fn push(&mut self, a: Addr<'a>) {
        if self.first.is_none() {
            self.first = Some(a);
        } else {
            self.more.push(a);
        }
    }
}

/// Parses a client field or X-Forwarded-For value: addresses separated by
/// commas, spaces or quotes. `-` entries are skipped. Each entry must be an
/// IP (optionally `[v6]`), `unix:`, or a host name; anything else means the
/// line does not fit this format, and `None` is returned.
pub(super) fn parse_addr_list(v: &str) -> Option<AddrList<'_>> {
    let mut list = AddrList::default();
    // Most client fields are one address: no separator to split on.
    if memchr::memchr3(b',', b' ', b'"', v.as_bytes()).is_none() {
        if !v.is_empty() && v != "-" {
            list.push(parse_addr(v)?);
        }
        return Some(list);
    }
    for tok in v
        .split([',', ' ', '"'])
        .filter(|t| !t.is_empty() && *t != "-")
    {
        list.push(parse_addr(tok)?);
    }
    Some(list)
}

/// One entry of an address list, or `None` if it is not an address.
fn parse_addr(tok: &str) -> Option<Addr<'_>> {
    let inner = tok
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(tok);
    let ip = inner.parse::<IpAddr>().ok();
    let valid = ip.is_some()
        || tok == "unix:"
        || tok
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'));
    valid.then_some(Addr { text: tok, ip })
}

/// Splits a request line into method, target and version on `ev`.
pub(super) fn parse_request(v: &str, ev: &mut AuditEvent) {
    if v.is_empty() || v == "-" {
        return;
    }
    let split = v.split_once(' ').and_then(|(method, rest)| {
        let method_ok = !method.is_empty()
            && method
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c == b'_' || c == b'-');
        if !method_ok || rest.is_empty() {
            return None;
        }
        match rest.rsplit_once(' ') {
            Some((target, version)) if version.starts_with("HTTP/") && !target.is_empty() => {
                Some((method, target, Some(&version[5..])))
            }
            // HTTP/0.9 "GET /" has no version; a space in the target is not that.
            None => Some((method, rest, None)),
            Some(_) => None,
        }
    });
    let http = ev.http_mut();
    match split {
        Some((method, target, version)) => {
            http.method = Some(method.to_string());
            http.version = version.map(str::to_string);
            ev.target.url = Some(target.to_string());
        }
        None => http.request = Some(v.to_string()),
    }
}

/// Parses `07/Dec/2016:11:05:07 +0100`.
pub(super) fn parse_time_local(v: &str) -> Option<Timestamp> {
    let b = v.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let day = digits(&b[0..2])? as u8;
    let month = month_from_abbr(&b[3..6])?;
    let year = digits(&b[7..11])? as i32;
    let hour = digits(&b[12..14])? as u8;
    let min = digits(&b[15..17])? as u8;
    let sec = digits(&b[18..20])? as u8;
    let offset = parse_offset(&b[21..26])?;
    Timestamp::from_civil(year, month, day, hour, min, sec, 0, offset)
}
