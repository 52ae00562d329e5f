//! [`EventView`]: the fields of one event line the collector checks and
//! indexes, read by a hand-written scanner.
//!
//! # Why a scanner
//!
//! The collector reads these eleven fields from every event it ingests,
//! verifies or re-indexes. Through serde_json's derived `Deserialize` this
//! took about a fifth of the ingest CPU (string parsing, the derived field
//! visitors, UTF-8 checks and an allocation for every `Option<Cow<str>>`,
//! which serde never borrows). [`EventView::parse`] makes one pass over
//! the line, borrows every string that has no escape, and allocates only
//! to decode strings with escapes.
//!
//! # What it accepts
//!
//! Events are normally in the canonical encoding, but a collector must not
//! rely on that: any sender can send any bytes. The scanner therefore
//! accepts exactly the lines serde_json's `from_slice::<EventView>`
//! accepts, with the same values (the derive is kept on [`EventView`] as
//! the reference, and the tests compare the two on generated and mutated
//! lines):
//!
//! * one JSON object, with whitespace wherever JSON allows it, and nothing
//!   but whitespace after it;
//! * keys may be escaped (`"r\u0061w"` is `raw`); the event's keys and the
//!   actor's must be valid UTF-8, with paired surrogate escapes;
//! * a known field given twice is an error, even when both are `null`;
//! * `category`, `action`, `outcome` and `raw` are required strings;
//!   `ts`, `observed_ts`, `host`, `agent_id` and `actor.user` are strings
//!   or `null`; `src_ip` is `null` or a string that `IpAddr` parses; `seq`
//!   is `null` or an integer from 0 to 2^64-1 without sign, fraction or
//!   exponent (`1.0`, `-0`, `1e3` and `18446744073709551616` are errors);
//!   string values must be valid UTF-8 after decoding, with paired
//!   surrogate escapes;
//! * `actor` is an object (unknown members ignored) or, as serde reads a
//!   struct, an array of at most one element, `user`;
//! * any other key is ignored with its value, which may be of any type and
//!   depth but must be valid JSON: numbers of any size, strings with valid
//!   escapes and no raw control characters. As in serde_json, the UTF-8 of
//!   strings inside ignored values is *not* checked, nor are surrogates in
//!   their escapes;
//! * bytes outside strings must be JSON syntax, so any byte above 0x7F
//!   there is an error.
//!
//! One deliberate difference: serde reads a struct from an array as well
//! as from an object, so it took a whole line `[ts, observed_ts, host, …]`
//! as an event. The scanner refuses a line that is not an object. Such a
//! line was refused anyway by [`super::decode`] (an event line must end in
//! `}`), and no other reader of stored events gets one.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Deserialize;

use super::jscan::{Scanner, ViewError};
use crate::Timestamp;

/// The fields of an event the collector checks and indexes, borrowed from
/// the event's bytes. Every other field is carried through untouched.
///
/// Read it with [`EventView::parse`]. The serde derive is the reference
/// the scanner is tested against (see the module docs) and is not used on
/// any hot path.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct EventView<'a> {
    /// When it happened (RFC 3339), if known.
    #[serde(default, borrow)]
    pub ts: Option<Cow<'a, str>>,
    /// When the agent read it.
    #[serde(default, borrow)]
    pub observed_ts: Option<Cow<'a, str>>,
    /// Host.
    #[serde(default, borrow)]
    pub host: Option<Cow<'a, str>>,
    /// Category (snake_case).
    #[serde(borrow)]
    pub category: Cow<'a, str>,
    /// Action.
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    /// Outcome.
    #[serde(borrow)]
    pub outcome: Cow<'a, str>,
    /// Actor.
    #[serde(default, borrow)]
    pub actor: ActorView<'a>,
    /// Client address.
    #[serde(default)]
    pub src_ip: Option<IpAddr>,
    /// The raw line.
    #[serde(borrow)]
    pub raw: Cow<'a, str>,
    /// Sending agent.
    #[serde(default, borrow)]
    pub agent_id: Option<Cow<'a, str>>,
    /// Sequence number in the agent's queue.
    #[serde(default)]
    pub seq: Option<u64>,
}

/// The actor part of [`EventView`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ActorView<'a> {
    /// User name.
    #[serde(default, borrow)]
    pub user: Option<Cow<'a, str>>,
}

impl EventView<'_> {
    /// Event time in Unix milliseconds: `ts`, else `observed_ts`, else 0.
    pub fn time_millis(&self) -> i64 {
        [&self.ts, &self.observed_ts]
            .into_iter()
            .flatten()
            .find_map(|s| Timestamp::parse_rfc3339(s, 0).map(|(t, _)| t.unix_millis()))
            .unwrap_or(0)
    }
}

/// The event's fields the view reads, in the order of [`NAMES`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Ts,
    ObservedTs,
    Host,
    Category,
    Action,
    Outcome,
    Actor,
    SrcIp,
    Raw,
    AgentId,
    Seq,
}

const NAMES: [&str; 11] = [
    "ts",
    "observed_ts",
    "host",
    "category",
    "action",
    "outcome",
    "actor",
    "src_ip",
    "raw",
    "agent_id",
    "seq",
];

/// The field `key` names: one comparison, with the candidate picked by
/// length (and a first letter).
#[inline]
fn field(key: &[u8]) -> Option<Field> {
    let f = match (key.len(), key.first()) {
        (2, _) => Field::Ts,
        (3, Some(b'r')) => Field::Raw,
        (3, _) => Field::Seq,
        (4, _) => Field::Host,
        (5, _) => Field::Actor,
        (6, Some(b'a')) => Field::Action,
        (6, _) => Field::SrcIp,
        (7, _) => Field::Outcome,
        (8, Some(b'c')) => Field::Category,
        (8, _) => Field::AgentId,
        (11, _) => Field::ObservedTs,
        _ => return None,
    };
    eq_short(key, NAMES[f as usize].as_bytes()).then_some(f)
}

/// `a == b` for short slices without a call to `memcmp` (which is most of
/// the cost of comparing a key otherwise): two overlapping words.
#[inline]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    fn w64(s: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default())
    }
    fn w32(s: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or_default())
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => w32(a, 0) == w32(b, 0) && w32(a, n - 4) == w32(b, n - 4),
        8..=16 => w64(a, 0) == w64(b, 0) && w64(a, n - 8) == w64(b, n - 8),
        _ => a == b,
    }
}

type Result<T> = std::result::Result<T, ViewError>;

impl<'a> EventView<'a> {
    /// Reads the view of one event line (without its newline). See the
    /// module docs for what is accepted.
    pub fn parse(line: &'a [u8]) -> Result<EventView<'a>> {
        let mut s = Scanner::new(line);
        match s.ws() {
            Some(b'{') => s.i += 1,
            other => return Err(s.unexpected(other, "'{' (an event is a JSON object)")),
        }
        let mut v = Partial::default();
        let mut seen = 0u16;
        members(&mut s, |s, key| {
            let Some(f) = field(key) else {
                return s.skip_value();
            };
            let bit = 1u16 << f as u16;
            if seen & bit != 0 {
                return Err(s.err(format!("duplicate field `{}`", NAMES[f as usize])));
            }
            seen |= bit;
            let name = NAMES[f as usize];
            // The values are written in place: results stay one word.
            match f {
                Field::Ts => opt_string(s, name, &mut v.ts),
                Field::ObservedTs => opt_string(s, name, &mut v.observed_ts),
                Field::Host => opt_string(s, name, &mut v.host),
                Field::AgentId => opt_string(s, name, &mut v.agent_id),
                Field::Category => string(s, name, &mut v.category),
                Field::Action => string(s, name, &mut v.action),
                Field::Outcome => string(s, name, &mut v.outcome),
                Field::Raw => string(s, name, &mut v.raw),
                Field::Actor => actor(s, &mut v.user),
                Field::SrcIp => src_ip(s, &mut v.src_ip),
                Field::Seq => match s.ws() {
                    Some(b'n') => s.literal(b"null"),
                    _ => s.uint("seq").map(|n| v.seq = Some(n)),
                },
            }
        })?;
        if !s.at_end() {
            return Err(s.err("trailing characters after the event object"));
        }
        let required = |x: Option<Cow<'a, str>>, f: Field| {
            x.ok_or_else(|| ViewError::whole(format!("missing field `{}`", NAMES[f as usize])))
        };
        Ok(EventView {
            ts: v.ts,
            observed_ts: v.observed_ts,
            host: v.host,
            category: required(v.category, Field::Category)?,
            action: required(v.action, Field::Action)?,
            outcome: required(v.outcome, Field::Outcome)?,
            actor: ActorView { user: v.user },
            src_ip: v.src_ip,
            raw: required(v.raw, Field::Raw)?,
            agent_id: v.agent_id,
            seq: v.seq,
        })
    }
}

/// The view while it is being read.
#[derive(Default)]
struct Partial<'a> {
    ts: Option<Cow<'a, str>>,
    observed_ts: Option<Cow<'a, str>>,
    host: Option<Cow<'a, str>>,
    category: Option<Cow<'a, str>>,
    action: Option<Cow<'a, str>>,
    outcome: Option<Cow<'a, str>>,
    user: Option<Cow<'a, str>>,
    src_ip: Option<IpAddr>,
    raw: Option<Cow<'a, str>>,
    agent_id: Option<Cow<'a, str>>,
    seq: Option<u64>,
}

/// Reads the members of an object whose `{` has been consumed, through
/// its `}`, calling `member` with each key (its value is next, after the
/// colon). Keys are decoded and must be UTF-8, as serde_json reads the
/// keys of a struct.
fn members<'a>(
    s: &mut Scanner<'a>,
    mut member: impl FnMut(&mut Scanner<'a>, &[u8]) -> Result<()>,
) -> Result<()> {
    match s.ws() {
        Some(b'}') => {
            s.i += 1;
            return Ok(());
        }
        Some(b'"') => {}
        other => return Err(s.unexpected(other, "a key or '}'")),
    }
    loop {
        // At the opening quote of a key.
        s.i += 1;
        let start = s.i;
        match s.plain_string()? {
            Some(raw) => {
                if !raw.is_ascii() {
                    s.utf8(start, start + raw.len())?;
                }
                s.expect(b':', "':'")?;
                member(s, raw)?;
            }
            None => {
                let key = s.escaped_string(start)?;
                s.expect(b':', "':'")?;
                member(s, key.as_bytes())?;
            }
        }
        match s.ws() {
            Some(b',') => {
                s.i += 1;
                match s.ws() {
                    Some(b'"') => {}
                    other => return Err(s.unexpected(other, "a key after ','")),
                }
            }
            Some(b'}') => {
                s.i += 1;
                return Ok(());
            }
            other => return Err(s.unexpected(other, "',' or '}'")),
        }
    }
}

#[cold]
fn not_a(s: &Scanner<'_>, name: &str, what: &str) -> ViewError {
    s.err(format!("`{name}` must be {what}"))
}

/// A required string field's value, into `slot`.
#[inline]
fn string<'a>(s: &mut Scanner<'a>, name: &str, slot: &mut Option<Cow<'a, str>>) -> Result<()> {
    match s.ws() {
        Some(b'"') => {
            s.i += 1;
            *slot = Some(s.string()?);
            Ok(())
        }
        _ => Err(not_a(s, name, "a string")),
    }
}

/// An optional string field's value (a string or `null`), into `slot`.
#[inline]
fn opt_string<'a>(s: &mut Scanner<'a>, name: &str, slot: &mut Option<Cow<'a, str>>) -> Result<()> {
    match s.ws() {
        Some(b'"') => {
            s.i += 1;
            *slot = Some(s.string()?);
            Ok(())
        }
        Some(b'n') => s.literal(b"null"),
        _ => Err(not_a(s, name, "a string or null")),
    }
}

fn src_ip(s: &mut Scanner<'_>, slot: &mut Option<IpAddr>) -> Result<()> {
    let at = s.i;
    let mut text = None;
    opt_string(s, "src_ip", &mut text)?;
    if let Some(text) = text {
        let ip = text
            .parse()
            .map_err(|_| ViewError::at(at, "`src_ip` is not an IP address"))?;
        *slot = Some(ip);
    }
    Ok(())
}

/// The actor's `user`, into `slot`: from an object, or from an array of
/// at most one element (serde reads a struct from either).
fn actor<'a>(s: &mut Scanner<'a>, slot: &mut Option<Cow<'a, str>>) -> Result<()> {
    match s.ws() {
        Some(b'{') => {
            s.i += 1;
            let mut seen = false;
            members(s, |s, key| {
                if !eq_short(key, b"user") {
                    return s.skip_value();
                }
                if seen {
                    return Err(s.err("duplicate field `actor.user`"));
                }
                seen = true;
                opt_string(s, "actor.user", slot)
            })
        }
        Some(b'[') => {
            s.i += 1;
            if s.ws() == Some(b']') {
                s.i += 1;
                return Ok(());
            }
            opt_string(s, "actor.user", slot)?;
            s.expect(b']', "']' after the actor's one element")
        }
        _ => Err(not_a(s, "actor", "an object")),
    }
}

#[cfg(test)]
mod tests;
