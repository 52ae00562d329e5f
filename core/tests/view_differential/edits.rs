//! (b) Byte-wise edits of real lines, events with arbitrary text, and
//! (c) meaning-preserving rewrites (whitespace, escapes) of canonical lines.

use std::net::IpAddr;

use auditship_core::{AuditEvent, Category, Outcome, Timestamp};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::gen::{u_escape, Ws};

/// A byte-wise edit.
#[derive(Clone, Debug)]
pub enum Edit {
    Insert(Index, u8),
    Delete(Index),
    Flip(Index, u8),
    Set(Index, u8),
}

pub fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"\"\\{}[],:0123456789-+.eEnulltrfasx \t\r\n/".to_vec()),
        1 => prop::sample::select(vec![0x00, 0x01, 0x0b, 0x0c, 0x1f, 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xed, 0xf0, 0xff]),
        1 => any::<u8>(),
    ]
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Edit::Flip(i, 1 << bit)),
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Edit::Set(i, b)),
    ]
}

pub fn apply(line: &mut Vec<u8>, edit: &Edit) {
    if line.is_empty() {
        return;
    }
    match *edit {
        Edit::Insert(ref i, b) => {
            let at = i.index(line.len() + 1);
            line.insert(at, b);
        }
        Edit::Delete(ref i) => {
            line.remove(i.index(line.len()));
        }
        Edit::Flip(ref i, mask) => {
            let at = i.index(line.len());
            line[at] ^= mask;
        }
        Edit::Set(ref i, b) => {
            let at = i.index(line.len());
            line[at] = b;
        }
    }
}

/// An event with arbitrary text in its string fields, canonically encoded.
pub fn arbitrary_event() -> impl Strategy<Value = AuditEvent> {
    let text = || any::<String>();
    (
        (
            text(),
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
        ),
        (
            proptest::option::of(any::<IpAddr>()),
            proptest::option::of(any::<u64>()),
        ),
        (0usize..11, 0usize..3, vec((text(), text()), 0..3)),
        proptest::option::of((0i64..4_000_000_000, 0u32..1_000_000_000, -50_000i32..50_000)),
    )
        .prop_map(
            |((raw, action, host, user), (src_ip, seq), (cat, out, fields), ts)| {
                let cats = [
                    Category::Authentication,
                    Category::Session,
                    Category::Privilege,
                    Category::Account,
                    Category::Web,
                    Category::Network,
                    Category::System,
                    Category::Integrity,
                    Category::Access,
                    Category::Alert,
                    Category::Unknown,
                ];
                let outs = [Outcome::Success, Outcome::Failure, Outcome::Unknown];
                let mut ev = AuditEvent::new(cats[cat], action, outs[out], raw);
                ev.host = host;
                ev.actor.user = user;
                ev.src_ip = src_ip;
                ev.seq = seq;
                ev.agent_id = Some("web-1".into());
                ev.fields = fields.into_iter().collect();
                ev.ts = ts.and_then(|(s, n, off)| Timestamp::new(s, n, off - off % 60));
                ev
            },
        )
}

/// `line` (canonical, so valid UTF-8 with only the canonical escapes)
/// re-written with whitespace between tokens and characters of strings
/// escaped, as `seed` chooses. It means exactly the same.
pub fn rewrite(line: &[u8], seed: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(line).expect("canonical lines are UTF-8");
    let mut pick = seed.iter().copied().cycle();
    let mut next = move || pick.next().unwrap_or(0);
    let mut ws = Ws {
        seed,
        at: 7,
        defects: false,
    };
    let mut out = Vec::with_capacity(line.len() * 2);
    ws.put(&mut out);
    let mut chars = text.chars();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if !in_string {
            if matches!(c, '}' | ']' | ',' | ':') {
                ws.put(&mut out);
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            if matches!(c, '{' | '[' | ',' | ':') {
                ws.put(&mut out);
            }
            in_string = c == '"';
            continue;
        }
        match c {
            '"' => {
                out.push(b'"');
                in_string = false;
            }
            '\\' => {
                let e = chars.next().expect("escape");
                let code = match e {
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        u16::from_str_radix(&hex, 16).expect("hex")
                    }
                    '"' => 0x22,
                    '\\' => 0x5c,
                    'b' => 8,
                    'f' => 12,
                    'n' => 10,
                    'r' => 13,
                    't' => 9,
                    other => panic!("not canonical: \\{other}"),
                };
                out.extend_from_slice(u_escape(code, next() % 2 == 0).as_bytes());
            }
            c => match next() % 4 {
                0 => {
                    let mut units = [0u16; 2];
                    let upper = next() % 2 == 0;
                    for &u in c.encode_utf16(&mut units).iter() {
                        out.extend_from_slice(u_escape(u, upper).as_bytes());
                    }
                }
                1 if c == '/' => out.extend_from_slice(b"\\/"),
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            },
        }
    }
    ws.put(&mut out);
    out
}
