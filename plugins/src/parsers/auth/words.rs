//! Word-level pieces that recur across auth messages: client addresses with
//! ports, `key=value` lists, quoted names.
//!
//! User names in auth logs are attacker-controlled (`Invalid user admin from
//! x from 10.0.0.1 port 22`), so anything that follows a user name is found
//! from the right, where the daemon's own fixed text is.

use std::net::IpAddr;

use auditship_core::AuditEvent;

/// A client address as an IP or a host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer<'a> {
    /// An IP address.
    Ip(IpAddr),
    /// A host name (sshd with `UseDNS yes`, PAM rhost).
    Host(&'a str),
}

impl<'a> Peer<'a> {
    /// Reads an address; `None` for empty text or text with spaces.
    pub fn parse(s: &'a str) -> Option<Peer<'a>> {
        if s.is_empty() || s.contains(' ') {
            return None;
        }
        let inner = s
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(s);
        Some(match inner.parse::<IpAddr>() {
            Ok(ip) => Peer::Ip(ip),
            Err(_) => Peer::Host(s),
        })
    }

    /// Sets `src_ip` or `src_addr` on `ev`.
    pub fn apply(self, ev: &mut AuditEvent) {
        match self {
            Peer::Ip(ip) => ev.src_ip = Some(ip),
            Peer::Host(h) => ev.src_addr = Some(h.to_string()),
        }
    }
}

/// Splits `HEAD from ADDR[ port N][TAIL]` at the rightmost ` from ` whose
/// suffix is a valid address. Returns (head, peer, port, tail).
pub fn split_from(s: &str) -> Option<(&str, Peer<'_>, Option<u16>, &str)> {
    let mut end = s.len();
    while let Some(i) = s[..end].rfind(" from ") {
        if let Some((peer, port, tail)) = addr_port(&s[i + 6..]) {
            return Some((&s[..i], peer, port, tail));
        }
        end = i;
    }
    None
}

/// Splits `HEAD ADDR port N[TAIL]` where the address is the last word before
/// ` port `. Returns (head, peer, port, tail); head may be empty.
pub fn split_addr_port(s: &str) -> Option<(&str, Peer<'_>, Option<u16>, &str)> {
    let p = s.rfind(" port ")?;
    let before = &s[..p];
    let (head, addr) = match before.rfind(' ') {
        Some(i) => (&before[..i], &before[i + 1..]),
        None => ("", before),
    };
    let (peer, port, tail) = addr_port(&s[p - addr.len()..])?;
    Some((head, peer, port, tail))
}

/// Reads `ADDR[ port N]` at the start of `s`, returning what follows.
pub fn addr_port(s: &str) -> Option<(Peer<'_>, Option<u16>, &str)> {
    let mut word = &s[..s.find(' ').unwrap_or(s.len())];
    // "from 10.0.0.1: 11: Bye" (old sshd) puts a colon right after the address;
    // an IPv6 address keeps its colons.
    if word.parse::<IpAddr>().is_err() {
        word = word.strip_suffix(':').unwrap_or(word);
    }
    let peer = Peer::parse(word)?;
    let rest = &s[word.len()..];
    if let Some(p) = rest.strip_prefix(" port ") {
        let digits_end = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
        let port = p[..digits_end].parse().ok()?;
        return Some((peer, Some(port), &p[digits_end..]));
    }
    Some((peer, None, rest))
}

/// Iterates over `key=value` pairs separated by whitespace (PAM style:
/// `logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.1  user=root`).
pub fn kv_spaces(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split_whitespace().filter_map(|w| w.split_once('='))
}

/// Iterates over `key=value` pairs separated by `, ` (shadow-utils style:
/// `name=apache, UID=48, GID=48, home=/usr/share/httpd, shell=/sbin/nologin`).
pub fn kv_commas(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split(", ").filter_map(|w| w.trim().split_once('='))
}

/// Strips one pair of single or double quotes.
pub fn unquote(s: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// Reads `'a'` at the start of `s`, returning the name and the rest.
pub fn quoted(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix('\'')?;
    let end = s.find('\'')?;
    Some((&s[..end], &s[end + 1..]))
}

/// `Some(s.to_string())` unless `s` is empty.
pub fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_from_skips_from_inside_user_names() {
        let (head, peer, port, tail) =
            split_from("admin from evil from 203.0.113.7 port 2222 ssh2").unwrap();
        assert_eq!(head, "admin from evil");
        assert_eq!(peer, Peer::Ip("203.0.113.7".parse().unwrap()));
        assert_eq!(port, Some(2222));
        assert_eq!(tail, " ssh2");
    }

    #[test]
    fn ipv6_and_host_names_and_missing_ports() {
        let (_, peer, port, _) = split_from("bob from 2001:db8::1 port 22 ssh2").unwrap();
        assert_eq!(peer, Peer::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(port, Some(22));
        let (_, peer, port, tail) = split_from("x from host.example.com").unwrap();
        assert_eq!(
            (peer, port, tail),
            (Peer::Host("host.example.com"), None, "")
        );
        let (head, peer, port, tail) =
            split_addr_port("authenticating user root 10.1.2.3 port 51234").unwrap();
        assert_eq!(head, "authenticating user root");
        assert_eq!(peer, Peer::Ip("10.1.2.3".parse().unwrap()));
        assert_eq!((port, tail), (Some(51234), ""));
        let (_, port, tail) = addr_port("198.51.100.4 port 40022:11: bye").unwrap();
        assert_eq!((port, tail), (Some(40022), ":11: bye"));
    }

    #[test]
    fn key_values() {
        let kv: Vec<_> =
            kv_spaces("logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root").collect();
        assert_eq!(kv[0], ("logname", ""));
        assert_eq!(kv[5], ("rhost", "1.2.3.4"));
        assert_eq!(kv[6], ("user", "root"));
        let kv: Vec<_> = kv_commas("name=apache, UID=48, home=/usr/share/httpd").collect();
        assert_eq!(
            kv,
            [
                ("name", "apache"),
                ("UID", "48"),
                ("home", "/usr/share/httpd")
            ]
        );
        assert_eq!(
            quoted("'alice' to group 'sudo'"),
            Some(("alice", " to group 'sudo'"))
        );
    }
}
