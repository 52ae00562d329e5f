//! (a) Generated event lines: every known key (sometimes escaped,
//! sometimes twice, sometimes missing) with values of every JSON type,
//! unknown keys with arbitrary nested values, whitespace between tokens,
//! strings with every kind of escape and, rarely, defects (lone surrogates,
//! raw control bytes, invalid UTF-8, bad escapes, missing or extra commas
//! and colons), numbers of every form, valid and not.

use std::net::IpAddr;

use proptest::collection::vec;
use proptest::prelude::*;

/// A JSON value before rendering: leaves are already bytes.
#[derive(Clone, Debug)]
pub enum J {
    Leaf(Vec<u8>),
    Arr(Vec<J>),
    Obj(Vec<(Vec<u8>, J)>),
}

/// Whitespace drawn from a seed: mostly none.
pub struct Ws<'s> {
    pub seed: &'s [u8],
    pub at: usize,
    /// Whether [`Ws::defect`] may say yes.
    pub defects: bool,
}

impl Ws<'_> {
    pub fn put(&mut self, out: &mut Vec<u8>) {
        let c = self
            .seed
            .get(self.at % self.seed.len().max(1))
            .copied()
            .unwrap_or(0);
        self.at += 1;
        let ws: &[u8] = match c {
            0..=199 => b"",
            200..=219 => b" ",
            220..=229 => b"\n",
            230..=239 => b"\t",
            240..=247 => b"\r",
            248..=251 => b" \r\n\t ",
            // Not JSON whitespace: form feed, vertical tab, no-break space.
            252 if self.defects => [&b"\x0c"[..], b"\x0b", "\u{a0}".as_bytes()][self.at % 3],
            _ => b"  ",
        };
        out.extend_from_slice(ws);
    }

    /// Whether to break the syntax here (about one time in 128, when the
    /// seed allows defects).
    fn defect(&mut self) -> bool {
        let c = self
            .seed
            .get((self.at * 7 + 3) % self.seed.len().max(1))
            .copied();
        self.at += 1;
        self.defects && c.is_some_and(|c| c < 2)
    }
}

pub fn render(j: &J, ws: &mut Ws<'_>, out: &mut Vec<u8>) {
    ws.put(out);
    match j {
        J::Leaf(b) => out.extend_from_slice(b),
        J::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 && !ws.defect() {
                    out.push(b',');
                }
                render(item, ws, out);
            }
            if ws.defect() {
                out.push(b',');
            }
            ws.put(out);
            out.push(b']');
        }
        J::Obj(members) => {
            out.push(b'{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 && !ws.defect() {
                    out.push(b',');
                }
                ws.put(out);
                out.extend_from_slice(k);
                ws.put(out);
                if !ws.defect() {
                    out.push(b':');
                }
                render(v, ws, out);
            }
            if ws.defect() {
                out.push(b',');
            }
            ws.put(out);
            out.push(b'}');
        }
    }
    ws.put(out);
}

/// `\uXXXX` of `u`, hex in either case.
pub fn u_escape(u: u16, upper: bool) -> String {
    if upper {
        format!("\\u{u:04X}")
    } else {
        format!("\\u{u:04x}")
    }
}

/// One piece of a string's content, valid or (when `defects`) not.
pub fn piece(defects: bool) -> BoxedStrategy<Vec<u8>> {
    let valid = prop_oneof![
        8 => any::<char>().prop_map(|c| match c {
            '"' => b"\\\"".to_vec(),
            '\\' => b"\\\\".to_vec(),
            c if (c as u32) < 0x20 => u_escape(c as u16, false).into_bytes(),
            c => c.to_string().into_bytes(),
        }),
        4 => "[a-z0-9 ._:/-]{1,6}".prop_map(String::into_bytes),
        2 => prop::sample::select(vec!["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"])
            .prop_map(|s| s.as_bytes().to_vec()),
        2 => (any::<char>(), any::<bool>()).prop_map(|(c, upper)| {
            let mut units = [0u16; 2];
            c.encode_utf16(&mut units)
                .iter()
                .map(|&u| u_escape(u, upper))
                .collect::<String>()
                .into_bytes()
        }),
    ];
    if !defects {
        return valid.boxed();
    }
    let broken = prop_oneof![
        (0xd800u16..=0xdfff, any::<bool>()).prop_map(|(u, up)| u_escape(u, up).into_bytes()),
        (0u8..0x20).prop_map(|c| vec![c]),
        prop::sample::select(vec![
            &b"\xff"[..],
            b"\xc3",
            b"\xe2\x82",
            b"\xed\xa0\x80",
            b"\xc0\x80",
            b"\xf8\x88\x80\x80\x80",
            b"\\x",
            b"\\u12",
            b"\\u00g0",
            b"\\",
            b"\x7f",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop_oneof![150 => valid, 1 => broken].boxed()
}

/// A JSON string (quotes included).
pub fn string(defects: bool) -> impl Strategy<Value = Vec<u8>> {
    vec(piece(defects), 0..6).prop_map(|pieces| {
        let mut s = vec![b'"'];
        pieces.iter().for_each(|p| s.extend_from_slice(p));
        s.push(b'"');
        s
    })
}

pub fn number() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,4})?",
        6 => any::<u64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "1.e5", "0x10", "--1", "1ee2", "Infinity",
            "NaN", "-0", "1.0", "18446744073709551616",
        ])
        .prop_map(str::to_string),
    ]
    .prop_map(String::into_bytes)
}

pub fn leaf() -> impl Strategy<Value = J> {
    prop_oneof![
        1 => prop::sample::select(vec!["null", "true", "false", "null", "true", "false", "nul", "truex"])
            .prop_map(|s| J::Leaf(s.as_bytes().to_vec())),
        2 => number().prop_map(J::Leaf),
        3 => string(true).prop_map(J::Leaf),
    ]
}

/// Any JSON value (sometimes slightly broken), nested a few levels.
pub fn value() -> impl Strategy<Value = J> {
    leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(J::Arr),
            vec((string(true), inner), 0..5).prop_map(J::Obj),
        ]
    })
}

pub const STRINGS: [&str; 8] = [
    "ts",
    "observed_ts",
    "host",
    "agent_id",
    "action",
    "category",
    "outcome",
    "raw",
];

/// A key for `name`: usually plain, sometimes with characters escaped.
pub fn key(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => Just(format!("\"{name}\"").into_bytes()),
        1 => vec(any::<bool>(), name.len()).prop_map(move |esc| {
            let mut k = String::from("\"");
            for (c, e) in name.chars().zip(esc) {
                if e {
                    k.push_str(&u_escape(c as u16, c == 'a'));
                } else {
                    k.push(c);
                }
            }
            k.push('"');
            k.into_bytes()
        }),
    ]
}

pub fn ip() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => any::<IpAddr>().prop_map(|ip| format!("\"{ip}\"").into_bytes()),
        1 => any::<std::net::Ipv6Addr>().prop_map(|ip| format!("\"{}\"", ip.to_string().to_uppercase()).into_bytes()),
        1 => prop::sample::select(vec!["\"1.2.3\"", "\"01.2.3.4\"", "\"::1%lo\"", "\"\"", "\"1.2.3.\\u0034\""])
            .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// A value for the known field `name`: mostly the right type.
pub fn value_for(name: &'static str) -> BoxedStrategy<J> {
    let null = || Just(J::Leaf(b"null".to_vec()));
    let s = || string(true).prop_map(J::Leaf);
    match name {
        "action" | "category" | "outcome" | "raw" => prop_oneof![12 => s(), 1 => value()].boxed(),
        "ts" | "observed_ts" | "host" | "agent_id" => {
            prop_oneof![8 => s(), 3 => null(), 1 => value()].boxed()
        }
        "src_ip" => prop_oneof![6 => ip().prop_map(J::Leaf), 2 => null(), 1 => value()].boxed(),
        "seq" => prop_oneof![
            6 => any::<u64>().prop_map(|n| J::Leaf(n.to_string().into_bytes())),
            2 => null(),
            2 => number().prop_map(J::Leaf),
            1 => value(),
        ]
        .boxed(),
        "actor" => {
            let user = || prop_oneof![4 => s(), 1 => null(), 1 => value()];
            let member = (key("user"), user());
            let other = (string(true), value());
            prop_oneof![
                6 => (proptest::option::of(member), vec(other, 0..3), any::<bool>()).prop_map(
                    |(user, mut others, first)| {
                        if let Some(u) = user {
                            if first { others.insert(0, u) } else { others.push(u) }
                        }
                        J::Obj(others)
                    }
                ),
                2 => vec(user(), 0..3).prop_map(J::Arr),
                1 => value(),
            ]
            .boxed()
        }
        _ => value().boxed(),
    }
}

pub const NAMES: [&str; 11] = [
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

/// A whole generated event line.
pub fn object() -> impl Strategy<Value = Vec<u8>> {
    let known: Vec<_> = NAMES
        .iter()
        .map(|&n| {
            let p = if STRINGS[4..].contains(&n) { 0.97 } else { 0.6 };
            proptest::option::weighted(p, (key(n), value_for(n)))
        })
        .collect();
    let unknown = vec((string(true), value()), 0..4);
    let dup = proptest::option::weighted(
        0.05,
        prop::sample::select(NAMES.to_vec()).prop_flat_map(|n| (key(n), value_for(n))),
    );
    let members = (known, unknown, dup)
        .prop_map(|(known, mut unknown, dup)| {
            unknown.extend(known.into_iter().flatten());
            unknown.extend(dup);
            unknown
        })
        .prop_shuffle();
    (members, vec(any::<u8>(), 1..48)).prop_map(|(members, seed)| {
        let mut out = Vec::new();
        let mut ws = Ws {
            seed: &seed,
            at: 0,
            defects: true,
        };
        render(&J::Obj(members), &mut ws, &mut out);
        out
    })
}
