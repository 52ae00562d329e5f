//! One audit record (one line of `audit.log`): its header and its fields.
//!
//! ```text
//! [node=NODE ]type=TYPE msg=audit(SECS.MILLIS:SERIAL): key=value key="value" …[\x1dKEY="value" …]
//! ```
//!
//! * `node=` is present when the writer was told to name the host
//!   (`name_format`), or in logs aggregated from several hosts.
//! * `TYPE` is a name (`SYSCALL`, `USER_LOGIN`, `UNKNOWN[1334]`), or a number
//!   in kernel messages that did not go through auditd (`type=1300`, also
//!   accepted without `msg=`); known numbers are translated to names.
//! * `SECS.MILLIS:SERIAL` identifies the event: every record of one event
//!   carries the same one.
//! * The fields are `key=value` pairs separated by spaces. Userspace records
//!   wrap their own message in `msg='…'`, whose content is more pairs; those
//!   are read as fields of the record too. Words that are not pairs (the
//!   `avc:  denied  { read } for` of an AVC record) are kept as text.
//! * With `log_format = ENRICHED`, auditd appends a GS byte (0x1d) and
//!   interpretations in uppercase (`AUID="alice" UID="root" ARCH=x86_64
//!   SYSCALL=execve`); they are fields flagged `enriched`.
//!
//! Parsing works on bytes: a record is ASCII by construction (untrusted
//! strings are hex-encoded), but a damaged line may not be, and its values
//! are still decoded losslessly by [`super::value`].

/// A value as written, before decoding (see [`super::value`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raw<'a> {
    /// `key=value`.
    Bare(&'a [u8]),
    /// `key="value"`.
    Quoted(&'a [u8]),
    /// `key='value'` (other than a userspace `msg`).
    Single(&'a [u8]),
    /// `KEY={ … }`.
    Braced(&'a [u8]),
}

/// One `key=value` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The key, as written.
    pub key: &'a str,
    /// The value, as written.
    pub value: Raw<'a>,
    /// Whether it follows the GS byte (an ENRICHED interpretation).
    pub enriched: bool,
}

/// What identifies a record and its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// `node=` value.
    pub node: Option<&'a [u8]>,
    /// Record type name (numbers translated).
    pub rtype: &'a str,
    /// Seconds since the epoch.
    pub secs: i64,
    /// Milliseconds.
    pub millis: u32,
    /// The event identifier as written: `SECS.MILLIS:SERIAL`.
    pub id: &'a str,
    /// The timestamp part of `id`.
    pub ts: &'a str,
    /// Offset of the first field.
    pub body: usize,
}

/// A parsed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The header.
    pub header: Header<'a>,
    /// Every pair, in order, the contents of `msg='…'` in its place.
    pub fields: Vec<Field<'a>>,
    /// Words that are not pairs.
    pub text: Vec<&'a [u8]>,
}

/// The byte that separates raw fields from enriched ones.
pub const GS: u8 = 0x1d;

/// Reads the header of `line`; `None` if it is not an audit record.
pub fn header(line: &[u8]) -> Option<Header<'_>> {
    let mut at = 0;
    let mut node = None;
    if let Some(rest) = line.strip_prefix(b"node=") {
        let end = rest.iter().position(|c| *c == b' ')?;
        node = Some(&rest[..end]);
        at = 5 + end;
        at += skip_spaces(&line[at..]);
    }
    let rest = line[at..].strip_prefix(b"type=")?;
    at += 5;
    let tlen = rest
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'[' | b']')))
        .unwrap_or(rest.len());
    if tlen == 0 {
        return None;
    }
    let rtype = std::str::from_utf8(&rest[..tlen]).ok()?;
    let rtype = super::tables::type_name(rtype);
    at += tlen;
    at += skip_spaces(&line[at..]);
    let rest = &line[at..];
    let rest = match rest.strip_prefix(b"msg=audit(") {
        Some(r) => {
            at += 10;
            r
        }
        None => {
            at += 6;
            rest.strip_prefix(b"audit(")?
        }
    };
    let close = rest.iter().position(|c| *c == b')')?;
    let id = std::str::from_utf8(&rest[..close]).ok()?;
    let (ts, serial) = id.split_once(':')?;
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    if secs.is_empty()
        || secs.len() > 12
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    // Milliseconds as written (auditd writes three digits).
    let mut millis: u32 = 0;
    for (i, d) in frac.bytes().take(3).enumerate() {
        millis += u32::from(d - b'0') * [100, 10, 1][i];
    }
    at += close + 1;
    let mut body = at;
    if line.get(body) == Some(&b':') {
        body += 1;
    }
    Some(Header {
        node,
        rtype,
        secs,
        millis,
        id,
        ts,
        body,
    })
}

fn skip_spaces(b: &[u8]) -> usize {
    b.iter().take_while(|c| **c == b' ').count()
}

/// Parses a whole record; `None` if `line` is not an audit record.
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let header = header(line)?;
    let mut rec = Record {
        header,
        fields: Vec::with_capacity(24),
        text: Vec::new(),
    };
    let body = &line[header.body..];
    let (plain, enriched) = match body.iter().position(|c| *c == GS) {
        Some(gs) => (&body[..gs], Some(&body[gs + 1..])),
        None => (body, None),
    };
    pairs(plain, false, true, &mut rec);
    if let Some(e) = enriched {
        pairs(e, true, false, &mut rec);
    }
    Some(rec)
}

/// Reads `key=value` pairs (and stray words) from `b` into `rec`; a
/// `msg='…'` is opened when `nest` (once: its content has no `msg`).
fn pairs<'a>(b: &'a [u8], enriched: bool, nest: bool, rec: &mut Record<'a>) {
    let mut i = 0;
    while i < b.len() {
        i += skip_spaces(&b[i..]);
        if i >= b.len() {
            break;
        }
        let word_end = b[i..]
            .iter()
            .position(|c| *c == b' ')
            .map_or(b.len(), |e| i + e);
        let eq = b[i..word_end]
            .iter()
            .position(|c| *c == b'=')
            .map(|e| i + e);
        let key = eq
            .filter(|e| *e > i)
            .and_then(|e| std::str::from_utf8(&b[i..e]).ok())
            .filter(|k| {
                k.bytes()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, b'"' | b'\'' | b'{' | b'}'))
            });
        let (Some(key), Some(eq)) = (key, eq) else {
            rec.text.push(&b[i..word_end]);
            i = word_end;
            continue;
        };
        let v = eq + 1;
        let (value, next): (Option<Raw<'a>>, usize) = match b.get(v) {
            Some(b'"') => match b[v + 1..].iter().position(|c| *c == b'"') {
                Some(e) => (Some(Raw::Quoted(&b[v + 1..v + 1 + e])), v + 2 + e),
                // A torn line: the value runs to the end.
                None => (Some(Raw::Quoted(&b[v + 1..])), b.len()),
            },
            Some(b'\'') => {
                let end = closing_single(&b[v + 1..]).map_or(b.len(), |e| v + 1 + e);
                let inner = &b[v + 1..end];
                let next = (end + 1).min(b.len());
                if nest && key == "msg" {
                    pairs(inner, enriched, false, rec);
                    (None, next)
                } else {
                    (Some(Raw::Single(inner)), next)
                }
            }
            Some(b'{') => match b[v + 1..].iter().position(|c| *c == b'}') {
                Some(e) => (Some(Raw::Braced(&b[v + 1..v + 1 + e])), v + 2 + e),
                None => (Some(Raw::Braced(&b[v + 1..])), b.len()),
            },
            _ => {
                let mut end = b[v..]
                    .iter()
                    .position(|c| *c == b' ')
                    .map_or(b.len(), |e| v + e);
                if key == "op" {
                    // Older userspace writes `op=adding user id=…`: the
                    // words up to the next pair belong to the operation.
                    while end < b.len() {
                        let next = end + 1;
                        let word_end = b[next..]
                            .iter()
                            .position(|c| *c == b' ')
                            .map_or(b.len(), |e| next + e);
                        if next >= word_end || b[next..word_end].contains(&b'=') {
                            break;
                        }
                        end = word_end;
                    }
                }
                (Some(Raw::Bare(&b[v..end])), end)
            }
        };
        if let Some(value) = value {
            rec.fields.push(Field {
                key,
                value,
                enriched,
            });
        }
        i = next;
    }
}

/// The closing `'` of a single-quoted value: the first one followed by a
/// space or the end.
fn closing_single(b: &[u8]) -> Option<usize> {
    (0..b.len()).find(|&e| b[e] == b'\'' && matches!(b.get(e + 1), None | Some(b' ')))
}
