//! Canonical encoding: the one byte form of an event that hashes and
//! signatures cover.
//!
//! A third party must be able to recompute these bytes from an exported
//! event with nothing but a JSON library, so the form is defined in terms of
//! the native JSON rendering ([`crate::event`]):
//!
//! ```text
//! canonical_v1(event) =
//!   UTF-8 bytes of the native JSON object of the event
//!   - without the members "hash" and "prev_hash"
//!   - members of every object sorted by key, comparing keys as UTF-8 bytes
//!     (for the ASCII keys of the schema this is plain code-point order)
//!   - no whitespace anywhere: separators are exactly "," and ":"
//!   - absent optional fields omitted, as in the native rendering; the
//!     always-present fields ts and src_ip appear as null when unknown,
//!     actor and target as {} when empty
//!   - strings escaped exactly like this, and nothing else escaped:
//!       "  -> \"        \  -> \\
//!       U+0008 -> \b    U+000C -> \f    U+000A -> \n    U+000D -> \r    U+0009 -> \t
//!       other U+0000..U+001F -> \u00XX with lowercase hex
//!     every other character, including non-ASCII and U+007F, is written as itself
//!   - numbers are integers written in decimal without sign "+", leading
//!     zeros or exponent (the schema has no floating-point fields)
//!   - timestamps are strings in the fixed RFC 3339 form of crate::time
//!   - the version is the member "v" (currently 1); a change to any rule
//!     above bumps it
//! ```
//!
//! In Python this is `json.dumps(obj, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False).encode()` applied to `obj = json.loads(event)` of an
//! exported (sealed) event after deleting `hash` and `prev_hash`
//! (`sort_keys` compares code points, which orders like UTF-8 bytes), and
//! the interop tests (`tests/interop.rs`) check exactly that.
//!
//! [`encode`] is the fast hand-written encoder used on the hot path;
//! [`encode_reference`] derives the same bytes through `serde_json::Value` and
//! exists so tests can check the two against each other on arbitrary events.

use std::net::IpAddr;

use crate::event::{Actor, AuditEvent, Http, Target};
use crate::time::Timestamp;

/// `,"k":`, the bytes before the value of the schema key `k`.
///
/// Schema keys are literals of ASCII lowercase letters, digits and `_`,
/// which need no escaping; keys of `fields` come from data and go through
/// [`ObjectWriter::data_key`].
macro_rules! key {
    ($k:literal) => {
        concat!(",\"", $k, "\":").as_bytes()
    };
}

/// Appends the canonical encoding of `ev` to `out`.
pub fn encode_into(ev: &AuditEvent, out: &mut Vec<u8>) {
    let mut w = ObjectWriter::new(out);
    w.str(key!("action"), &ev.action);
    w.key(key!("actor"));
    actor(w.out, &ev.actor);
    w.opt_str(key!("agent_id"), ev.agent_id.as_deref());
    w.opt_str(key!("auth_method"), ev.auth_method.as_deref());
    w.str(key!("category"), ev.category.as_str());
    w.opt_str(key!("command"), ev.command.as_deref());
    w.opt_str(key!("cwd"), ev.cwd.as_deref());
    if !ev.fields.is_empty() {
        w.key(key!("fields"));
        let mut f = ObjectWriter::new(w.out);
        for (k, v) in &ev.fields {
            f.data_key(k);
            string(f.out, v);
        }
        f.finish();
    }
    if !ev.flags.is_empty() {
        w.str_array(key!("flags"), ev.flags.names());
    }
    w.opt_str(key!("host"), ev.host.as_deref());
    if let Some(h) = &ev.http {
        w.key(key!("http"));
        http(w.out, h);
    }
    w.opt_str(key!("key_fingerprint"), ev.key_fingerprint.as_deref());
    w.opt_str(key!("key_type"), ev.key_type.as_deref());
    if let Some(ts) = &ev.observed_ts {
        w.key(key!("observed_ts"));
        timestamp(w.out, ts);
    }
    w.str(key!("outcome"), ev.outcome.as_str());
    w.opt_uint(key!("pid"), ev.pid.map(u64::from));
    w.opt_str(key!("program"), ev.program.as_deref());
    w.str(key!("raw"), &ev.raw);
    w.opt_str(key!("raw_ts"), ev.raw_ts.as_deref());
    w.opt_str(key!("reason"), ev.reason.as_deref());
    w.opt_str(key!("request_id"), ev.request_id.as_deref());
    w.opt_uint(key!("seq"), ev.seq);
    w.opt_str(key!("session_id"), ev.session_id.as_deref());
    w.opt_str(key!("source"), ev.source.as_deref());
    w.opt_str(key!("src_addr"), ev.src_addr.as_deref());
    w.key(key!("src_ip"));
    match &ev.src_ip {
        Some(ip) => ip_addr(w.out, ip),
        None => w.out.extend_from_slice(b"null"),
    }
    w.opt_uint(key!("src_port"), ev.src_port.map(u64::from));
    w.key(key!("target"));
    target(w.out, &ev.target);
    w.key(key!("ts"));
    match &ev.ts {
        Some(ts) => timestamp(w.out, ts),
        None => w.out.extend_from_slice(b"null"),
    }
    w.opt_str(key!("tty"), ev.tty.as_deref());
    w.opt_str(key!("user_agent"), ev.user_agent.as_deref());
    w.opt_uint(key!("v"), Some(u64::from(ev.v)));
    w.finish();
}

/// The canonical encoding of `ev`.
pub fn encode(ev: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(ev.raw.len() * 2 + 256);
    encode_into(ev, &mut out);
    out
}

/// The canonical encoding derived generically from the native JSON value.
///
/// Slow; used to check [`encode`] and as the executable form of the spec.
pub fn encode_reference(ev: &AuditEvent) -> Vec<u8> {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<_> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                // Rebuild in sorted order; with or without serde_json's
                // `preserve_order` the result serializes sorted.
                serde_json::Value::Object(
                    entries.into_iter().map(|(k, v)| (k, sorted(v))).collect(),
                )
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sorted).collect())
            }
            other => other,
        }
    }
    let mut v = serde_json::to_value(ev).expect("events always serialize");
    if let Some(m) = v.as_object_mut() {
        m.remove("hash");
        m.remove("prev_hash");
    }
    serde_json::to_vec(&sorted(v)).expect("values always serialize")
}

/// Writes one JSON object. Every member is written with a leading `,`;
/// [`ObjectWriter::finish`] turns the first one into the object's `{`, so
/// that a member needs neither a "first" test nor a separate write for its
/// quotes, and a key is one copy of a literal of known length.
struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> ObjectWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        let start = out.len();
        ObjectWriter { out, start }
    }

    /// Writes a schema key made by [`key!`].
    #[inline(always)]
    fn key(&mut self, k: &'static [u8]) {
        debug_assert!(k.len() > 4 && k.starts_with(b",\"") && k.ends_with(b"\":"));
        debug_assert!(k[2..k.len() - 2]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_'));
        self.out.extend_from_slice(k);
    }

    /// Writes a key that comes from data, escaped like any string.
    fn data_key(&mut self, k: &str) {
        self.out.push(b',');
        string(self.out, k);
        self.out.push(b':');
    }

    #[inline(always)]
    fn str(&mut self, k: &'static [u8], v: &str) {
        self.key(k);
        string(self.out, v);
    }

    #[inline(always)]
    fn opt_str(&mut self, k: &'static [u8], v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    fn str_array<'s>(&mut self, k: &'static [u8], items: impl Iterator<Item = &'s str>) {
        self.key(k);
        self.out.push(b'[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            string(self.out, item);
        }
        self.out.push(b']');
    }

    #[inline(always)]
    fn opt_uint(&mut self, k: &'static [u8], v: Option<u64>) {
        if let Some(v) = v {
            self.key(k);
            uint(self.out, v);
        }
    }

    /// Closes the object: the first member's `,` becomes `{`, or the object
    /// is `{}` when it has no members.
    fn finish(self) {
        if self.out.len() == self.start {
            self.out.extend_from_slice(b"{}");
        } else {
            self.out[self.start] = b'{';
            self.out.push(b'}');
        }
    }
}

fn actor(out: &mut Vec<u8>, a: &Actor) {
    let mut w = ObjectWriter::new(out);
    w.opt_uint(key!("uid"), a.uid.map(u64::from));
    w.opt_str(key!("user"), a.user.as_deref());
    w.finish();
}

fn target(out: &mut Vec<u8>, t: &Target) {
    let mut w = ObjectWriter::new(out);
    w.opt_uint(key!("gid"), t.gid.map(u64::from));
    w.opt_str(key!("group"), t.group.as_deref());
    w.opt_str(key!("resource"), t.resource.as_deref());
    w.opt_uint(key!("uid"), t.uid.map(u64::from));
    w.opt_str(key!("url"), t.url.as_deref());
    w.opt_str(key!("user"), t.user.as_deref());
    w.finish();
}

fn http(out: &mut Vec<u8>, h: &Http) {
    let mut w = ObjectWriter::new(out);
    w.opt_uint(key!("bytes"), h.bytes);
    w.opt_uint(key!("duration_us"), h.duration_us);
    if !h.forwarded_for.is_empty() {
        w.str_array(
            key!("forwarded_for"),
            h.forwarded_for.iter().map(String::as_str),
        );
    }
    w.opt_str(key!("host"), h.host.as_deref());
    w.opt_str(key!("method"), h.method.as_deref());
    w.opt_str(key!("referrer"), h.referrer.as_deref());
    w.opt_str(key!("request"), h.request.as_deref());
    w.opt_uint(key!("status"), h.status.map(u64::from));
    w.opt_str(key!("version"), h.version.as_deref());
    w.finish();
}

fn timestamp(out: &mut Vec<u8>, ts: &Timestamp) {
    let mut buf = [0u8; 35];
    let n = ts.write_rfc3339(&mut buf);
    out.push(b'"');
    out.extend_from_slice(&buf[..n]);
    out.push(b'"');
}

fn ip_addr(out: &mut Vec<u8>, ip: &IpAddr) {
    out.push(b'"');
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                uint(out, u64::from(o));
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'"');
}

fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Escape for each byte: 0 = none, b'u' = `\u00XX`, otherwise the letter after `\`.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of the word `x` is below `n` (`n` <= 128): the classic
/// "has less" test, exact as a yes/no answer.
#[inline(always)]
fn has_below(x: u64, n: u8) -> bool {
    x.wrapping_sub(LOW * u64::from(n)) & !x & HIGH != 0
}

/// Whether any byte of the word `x` is `c`.
#[inline(always)]
fn has_byte(x: u64, c: u8) -> bool {
    has_below(x ^ (LOW * u64::from(c)), 1)
}

/// Whether any byte of `b` must be escaped: a control character, `"` or
/// `\`. Eight bytes at a time, the last word overlapping the one before
/// it; strings shorter than a word go through the table. (A tail copied
/// into a padded word on the stack and read back as one load stalled on
/// store forwarding: a third of this function's time.)
#[inline]
fn needs_escape(b: &[u8]) -> bool {
    let word = |c: &[u8]| {
        let x = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        has_below(x, 0x20) || has_byte(x, b'"') || has_byte(x, b'\\')
    };
    if b.len() < 8 {
        return b.iter().any(|&c| ESCAPE[usize::from(c)] != 0);
    }
    let mut chunks = b.chunks_exact(8);
    if chunks.any(word) {
        return true;
    }
    !chunks.remainder().is_empty() && word(&b[b.len() - 8..])
}

/// Whether any byte of `b` is a control character (below 0x20), eight
/// bytes at a time.
fn has_control(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        if has_below(u64::from_le_bytes(c.try_into().expect("8 bytes")), 0x20) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&c| c < 0x20)
}

/// Writes `s` as a JSON string with the escaping rules in the module docs.
pub fn string(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    if !needs_escape(b) {
        // Most values: copied as they are.
        out.extend_from_slice(b);
    } else if b.len() >= 32 && !has_control(b) {
        // Long text with quotes (a raw access-log line): only `"` and `\`
        // need escaping, and memchr finds them with SIMD.
        let mut start = 0;
        for i in memchr::memchr2_iter(b'"', b'\\', b) {
            out.extend_from_slice(&b[start..i]);
            out.push(b'\\');
            out.push(b[i]);
            start = i + 1;
        }
        out.extend_from_slice(&b[start..]);
    } else {
        escape_slow(out, b);
    }
    out.push(b'"');
}

fn escape_slow(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let e = ESCAPE[usize::from(c)];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        if e == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
        } else {
            out.push(b'\\');
            out.push(e);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

#[cfg(test)]
mod tests;
