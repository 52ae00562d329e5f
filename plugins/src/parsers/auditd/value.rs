//! Decoding audit values: quoted, bare, braced and hex-encoded.
//!
//! The kernel and the audit userspace write a value in one of these forms:
//!
//! | form            | example                         | meaning                          |
//! |-----------------|---------------------------------|----------------------------------|
//! | quoted          | `exe="/usr/bin/ls"`             | the text between the quotes      |
//! | bare            | `uid=1000`, `res=success`       | the text up to the next space    |
//! | hex             | `proctitle=2F62696E2F7368002D63` | the bytes, two hex digits each  |
//! | braced          | `SADDR={ saddr_fam=inet … }`    | the text between the braces      |
//!
//! A string the writer does not trust (a file name, a command line, an
//! account name typed at a prompt) is written quoted when it holds no
//! space, quote, control byte or byte above 0x7e, and in hex otherwise, so
//! that the line stays parseable whatever the string holds. Whether a bare
//! value is hex therefore depends on its key: [`is_encoded`] lists the keys
//! whose bare values are hex ("untrusted strings": `proctitle`, EXECVE's
//! `aN` and `aN[i]`, `cmd`, `acct`, `exe`, `comm`, `name`, `cwd`, `key`,
//! `data`…). A bare value of such a key that is not even-length hex
//! (`(null)`, `?`) is kept as written.
//!
//! Decoded bytes become text losslessly: valid UTF-8 as is, anything else
//! in the escaped form of [`auditship_core::lossless`] (invalid bytes as
//! `\xNN`, backslashes doubled), and the caller lists such values in
//! `fields.audit_escaped` so that a reader knows which values to unescape.

use std::borrow::Cow;

use auditship_core::lossless;

use super::record::Raw;

/// A value as text, and whether the text is the escaped form of bytes that
/// were not valid UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    /// The text (escaped form when `escaped`).
    pub text: String,
    /// Whether `text` is [`lossless::escape`]d.
    pub escaped: bool,
}

impl Text {
    /// Text for `bytes`, escaped only if they are not valid UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Text {
        let (t, escaped) = lossless::to_text(bytes);
        Text {
            text: t.into_owned(),
            escaped,
        }
    }
}

/// Whether a bare value of `key` in a record of type `rtype` is hex: the
/// untrusted-string keys (EXECVE arguments are handled by
/// [`is_execve_arg`]).
pub fn is_encoded(rtype: &str, key: &str) -> bool {
    if rtype == "EXECVE" {
        return is_execve_arg(key).is_some();
    }
    matches!(
        key,
        "acct"
            | "cgroup"
            | "cmd"
            | "comm"
            | "cwd"
            | "data"
            | "dir"
            | "exe"
            | "file"
            | "grp"
            | "key"
            | "name"
            | "new_group"
            | "new-chardev"
            | "new-disk"
            | "new-fs"
            | "new-net"
            | "new-rng"
            | "ocomm"
            | "old-chardev"
            | "old-disk"
            | "old-fs"
            | "old-net"
            | "old-rng"
            | "path"
            | "profile"
            | "proctitle"
            | "root_dir"
            | "sw"
            | "vm"
            | "watch"
    )
}

/// For an EXECVE key `aN` or `aN[i]`: `(N, Some(i))` or `(N, None)`.
pub fn is_execve_arg(key: &str) -> Option<(usize, Option<usize>)> {
    let rest = key.strip_prefix('a')?;
    let (n, chunk) = match rest.split_once('[') {
        Some((n, i)) => (n, Some(i.strip_suffix(']')?)),
        None => (rest, None),
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = n.parse().ok()?;
    match chunk {
        None => Some((n, None)),
        Some(i) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => {
            Some((n, Some(i.parse().ok()?)))
        }
        Some(_) => None,
    }
}

/// Decodes even-length hex (either case); `None` if `b` is anything else.
pub fn hex_decode(b: &[u8]) -> Option<Vec<u8>> {
    if b.is_empty() || b.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    b.chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// The bytes a value stands for: the inside of quotes or braces, hex
/// decoded when `encoded` says the key carries hex and it is hex.
pub fn bytes(raw: Raw<'_>, encoded: bool) -> Cow<'_, [u8]> {
    match raw {
        Raw::Quoted(b) | Raw::Single(b) => Cow::Borrowed(b),
        Raw::Braced(b) => Cow::Borrowed(trim(b)),
        Raw::Bare(b) if encoded => match hex_decode(b) {
            Some(v) => Cow::Owned(v),
            None => Cow::Borrowed(b),
        },
        Raw::Bare(b) => Cow::Borrowed(b),
    }
}

/// A value of `key` in a record of type `rtype` as text (see the module docs).
pub fn decode(rtype: &str, key: &str, raw: Raw<'_>) -> Text {
    let encoded = matches!(raw, Raw::Bare(_)) && is_encoded(rtype, key);
    Text::from_bytes(&bytes(raw, encoded))
}

/// An enriched (uppercase) value: quoted names, or hex when the name is
/// not safe to quote; `ARCH`, `SYSCALL` and braced values are plain.
pub fn decode_enriched(key: &str, raw: Raw<'_>) -> Text {
    let encoded = !matches!(key, "ARCH" | "SYSCALL");
    Text::from_bytes(&bytes(raw, encoded))
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|c| *c != b' ').map_or(start, |e| e + 1);
    &b[start..end]
}

/// A socket address from a SOCKADDR record's `saddr` hex (struct sockaddr
/// in host byte order for the family, network order for port and address).
/// Returns `(family, address, port)`; `None` for families not decoded here.
pub fn sockaddr(hex: &[u8]) -> Option<(&'static str, String, Option<u16>)> {
    let b = hex_decode(hex)?;
    if b.len() < 2 {
        return None;
    }
    // The family is a host-order u16; audit logs come from the machine
    // itself, and every architecture auditd runs on in practice is
    // little-endian, but accept big-endian too (s390x).
    let fam = match (b[0], b[1]) {
        (f, 0) | (0, f) => f,
        _ => return None,
    };
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    match fam {
        1 => {
            // AF_UNIX: a path, NUL-terminated, or abstract (leading NUL).
            let path = &b[2..];
            let (abstract_, path) = match path.split_first() {
                Some((0, rest)) => (true, rest),
                _ => (false, path),
            };
            let end = if abstract_ {
                path.len()
            } else {
                path.iter().position(|c| *c == 0).unwrap_or(path.len())
            };
            let text = Text::from_bytes(&path[..end]).text;
            let text = if abstract_ {
                format!("@{}", text.trim_end_matches('\0'))
            } else {
                text
            };
            Some(("unix", text, None))
        }
        2 if b.len() >= 8 => {
            let ip = std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(("inet", ip.to_string(), Some(port(&b))))
        }
        10 if b.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            let ip = std::net::Ipv6Addr::from(a);
            Some(("inet6", ip.to_string(), Some(port(&b))))
        }
        16 => Some(("netlink", String::new(), None)),
        _ => None,
    }
}
