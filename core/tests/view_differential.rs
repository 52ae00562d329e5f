//! Differential tests of `EventView::parse` (the hand-written scanner)
//! against serde_json's derived `Deserialize` for the same struct (the
//! reference, and the collector's decoder before the scanner).
//!
//! Agreement means both succeed with equal fields, or both fail. The one
//! documented difference, a whole line that is a JSON array (which serde
//! reads as a struct), is folded into [`reference`].
//!
//! Inputs:
//! * (a) generated objects: every known key (sometimes escaped, sometimes
//!   twice, sometimes missing) with values of every JSON type, unknown
//!   keys with arbitrary nested values, whitespace between all tokens,
//!   strings with every kind of escape and, rarely, defects (lone
//!   surrogates, raw control bytes, invalid UTF-8, bad escapes), numbers
//!   of every form, valid and not;
//! * (b) real events: lines from the benchmark generator parsed by the
//!   real parsers, and events with arbitrary strings, canonically encoded
//!   (and sealed), then mutated byte-wise (insert, delete, flip, set);
//! * (c) the same real events re-written with random whitespace and
//!   escapes, which must read exactly like the original.

use std::net::IpAddr;
use std::sync::OnceLock;

use auditship_bench::{Kind, LineGen};
use auditship_core::seal;
use auditship_core::wire::EventView;
use auditship_core::{canonical, AuditEvent, Category, Outcome, Timestamp};
use auditship_plugins::{Parser, ParserOptions};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// serde_json's reading, except that a top-level array is refused (the
/// scanner's documented difference).
fn reference(line: &[u8]) -> Result<EventView<'_>, String> {
    let first = line
        .iter()
        .find(|c| !matches!(c, b' ' | b'\n' | b'\t' | b'\r'));
    if first == Some(&b'[') {
        return Err("a top-level array".into());
    }
    serde_json::from_slice(line).map_err(|e| e.to_string())
}

/// Compares the two on `line`; returns whether both accepted it.
fn agree(line: &[u8]) -> Result<bool, TestCaseError> {
    let ours = EventView::parse(line);
    let theirs = reference(line);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => {
            prop_assert_eq!(a, b, "{}", String::from_utf8_lossy(line));
            Ok(true)
        }
        (Err(_), Err(_)) => Ok(false),
        _ => Err(TestCaseError::fail(format!(
            "disagree on {:?}: scanner {ours:?}, serde {theirs:?}",
            String::from_utf8_lossy(line)
        ))),
    }
}

/// `cases` cases, without regression files (an integration test has no
/// `lib.rs` for proptest to put them next to).
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------- (a)

/// A JSON value before rendering: leaves are already bytes.
#[derive(Clone, Debug)]
enum J {
    Leaf(Vec<u8>),
    Arr(Vec<J>),
    Obj(Vec<(Vec<u8>, J)>),
}

/// Whitespace drawn from a seed: mostly none.
struct Ws<'s> {
    seed: &'s [u8],
    at: usize,
    /// Whether [`Ws::defect`] may say yes.
    defects: bool,
}

impl Ws<'_> {
    fn put(&mut self, out: &mut Vec<u8>) {
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
            _ => b" \r\n\t ",
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

fn render(j: &J, ws: &mut Ws<'_>, out: &mut Vec<u8>) {
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
fn u_escape(u: u16, upper: bool) -> String {
    if upper {
        format!("\\u{u:04X}")
    } else {
        format!("\\u{u:04x}")
    }
}

/// One piece of a string's content, valid or (when `defects`) not.
fn piece(defects: bool) -> BoxedStrategy<Vec<u8>> {
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
fn string(defects: bool) -> impl Strategy<Value = Vec<u8>> {
    vec(piece(defects), 0..6).prop_map(|pieces| {
        let mut s = vec![b'"'];
        pieces.iter().for_each(|p| s.extend_from_slice(p));
        s.push(b'"');
        s
    })
}

fn number() -> impl Strategy<Value = Vec<u8>> {
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

fn leaf() -> impl Strategy<Value = J> {
    prop_oneof![
        1 => prop::sample::select(vec!["null", "true", "false", "null", "true", "false", "nul", "truex"])
            .prop_map(|s| J::Leaf(s.as_bytes().to_vec())),
        2 => number().prop_map(J::Leaf),
        3 => string(true).prop_map(J::Leaf),
    ]
}

/// Any JSON value (sometimes slightly broken), nested a few levels.
fn value() -> impl Strategy<Value = J> {
    leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(J::Arr),
            vec((string(true), inner), 0..5).prop_map(J::Obj),
        ]
    })
}

const STRINGS: [&str; 8] = [
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
fn key(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
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

fn ip() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => any::<IpAddr>().prop_map(|ip| format!("\"{ip}\"").into_bytes()),
        1 => any::<std::net::Ipv6Addr>().prop_map(|ip| format!("\"{}\"", ip.to_string().to_uppercase()).into_bytes()),
        1 => prop::sample::select(vec!["\"1.2.3\"", "\"01.2.3.4\"", "\"::1%lo\"", "\"\"", "\"1.2.3.\\u0034\""])
            .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// A value for the known field `name`: mostly the right type.
fn value_for(name: &'static str) -> BoxedStrategy<J> {
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

/// A whole generated event line.
fn object() -> impl Strategy<Value = Vec<u8>> {
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

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn generated_objects(line in object()) {
        agree(&line)?;
    }

    /// Any value alone, and as the value of an unknown key of the event
    /// and of its actor, where it alone decides whether the line is read.
    #[test]
    fn generated_values_of_any_kind(v in value(), seed in vec(any::<u8>(), 1..16)) {
        let mut text = Vec::new();
        render(&v, &mut Ws { seed: &seed, at: 0, defects: true }, &mut text);
        agree(&text)?;
        let event = |member: &[u8]| {
            [&br#"{"action":"a","category":"c","#[..], member, br#","outcome":"o","raw":"r"}"#]
                .concat()
        };
        agree(&event(&[&b"\"x\":"[..], &text].concat()))?;
        agree(&event(&[&b"\"actor\":{\"x\":"[..], &text, b"}"].concat()))?;
        agree(&event(&[&b"\"actor\":{\"user\":\"u\",\"x\":"[..], &text, b"}"].concat()))?;
    }
}

/// The generator of (a) must produce both outcomes in quantity, or the
/// comparison above says little.
#[test]
fn generated_objects_are_often_valid_and_often_not() {
    let mut runner = TestRunner::deterministic();
    let strategy = object();
    let (mut ok, n) = (0, 2000);
    for _ in 0..n {
        let line = strategy.new_tree(&mut runner).unwrap().current();
        ok += usize::from(reference(&line).is_ok());
    }
    eprintln!("{ok} of {n} generated objects are events");
    assert!(ok > n / 8 && ok < n * 7 / 8, "{ok} of {n} valid");
}

// ---------------------------------------------------------------- (b)

/// Canonical lines of real events: generated log lines through the real
/// parsers, with the fields an agent adds; every fourth one sealed (with
/// `hash` and `prev_hash`, as stored events are read back).
fn real_lines() -> &'static [(AuditEvent, Vec<u8>)] {
    static LINES: OnceLock<Vec<(AuditEvent, Vec<u8>)>> = OnceLock::new();
    LINES.get_or_init(|| {
        let mut parser = Parser::new(&ParserOptions::default()).expect("parser");
        let mut gen = LineGen::new(7);
        let reference = Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 3600).expect("time");
        let mut prev = seal::GENESIS;
        let mut text = String::new();
        (0..300u64)
            .map(|i| {
                text.clear();
                let kind = [Kind::NginxCombined, Kind::Auth, Kind::ApacheCombined][i as usize % 3];
                gen.line(kind, &mut text);
                let mut ev = parser.parse_at(text.as_bytes(), reference);
                ev.seq = Some(i * 7 + 1);
                ev.agent_id = Some(format!("agent-{}", i % 5));
                ev.observed_ts = Some(reference);
                let mut line = canonical::encode(&ev);
                if i % 4 == 0 {
                    prev = seal::seal_in_place(&mut line, &prev);
                }
                (ev, line)
            })
            .collect()
    })
}

/// Checks that `v` holds the fields of `ev`.
fn same_as_event(v: &EventView<'_>, ev: &AuditEvent) -> Result<(), TestCaseError> {
    let fmt = |t: &Option<Timestamp>| {
        t.map(|t| {
            let mut buf = [0u8; 35];
            let n = t.write_rfc3339(&mut buf);
            String::from_utf8(buf[..n].to_vec()).unwrap()
        })
    };
    let (ts, observed_ts) = (fmt(&ev.ts), fmt(&ev.observed_ts));
    prop_assert_eq!(v.ts.as_deref(), ts.as_deref());
    prop_assert_eq!(v.observed_ts.as_deref(), observed_ts.as_deref());
    prop_assert_eq!(v.host.as_deref(), ev.host.as_deref());
    prop_assert_eq!(&*v.category, ev.category.as_str());
    prop_assert_eq!(&*v.action, &*ev.action);
    prop_assert_eq!(&*v.outcome, ev.outcome.as_str());
    prop_assert_eq!(v.actor.user.as_deref(), ev.actor.user.as_deref());
    prop_assert_eq!(v.src_ip, ev.src_ip);
    prop_assert_eq!(&*v.raw, &*ev.raw);
    prop_assert_eq!(v.agent_id.as_deref(), ev.agent_id.as_deref());
    prop_assert_eq!(v.seq, ev.seq);
    Ok(())
}

#[test]
fn real_events_read_as_the_events_they_encode() {
    for (ev, line) in real_lines() {
        let v = EventView::parse(line).unwrap_or_else(|e| panic!("{e}"));
        same_as_event(&v, ev).unwrap();
        assert!(agree(line).unwrap());
    }
}

/// A byte-wise edit.
#[derive(Clone, Debug)]
enum Edit {
    Insert(Index, u8),
    Delete(Index),
    Flip(Index, u8),
    Set(Index, u8),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"\"\\{}[],:0123456789-+.eEnulltrfasx \t\r\n/".to_vec()),
        1 => prop::sample::select(vec![0x00, 0x01, 0x1f, 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xed, 0xf0, 0xff]),
        1 => any::<u8>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Edit::Flip(i, 1 << bit)),
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Edit::Set(i, b)),
    ]
}

fn apply(line: &mut Vec<u8>, edit: &Edit) {
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
fn arbitrary_event() -> impl Strategy<Value = AuditEvent> {
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

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn mutated_real_events(pick in any::<Index>(), edits in vec(edit(), 1..4)) {
        let lines = real_lines();
        let mut line = lines[pick.index(lines.len())].1.clone();
        for e in &edits {
            apply(&mut line, e);
        }
        agree(&line)?;
    }

    #[test]
    fn arbitrary_events_and_their_mutations(ev in arbitrary_event(), edits in vec(edit(), 0..3)) {
        let mut line = canonical::encode(&ev);
        let v = EventView::parse(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        same_as_event(&v, &ev)?;
        prop_assert!(agree(&line)?);
        for e in &edits {
            apply(&mut line, e);
        }
        agree(&line)?;
    }
}

// ---------------------------------------------------------------- (c)

/// `line` (canonical, so valid UTF-8 with only the canonical escapes)
/// re-written with whitespace between tokens and characters of strings
/// escaped, as `seed` chooses. It means exactly the same.
fn rewrite(line: &[u8], seed: &[u8]) -> Vec<u8> {
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

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn rewritten_real_events_read_the_same(pick in any::<Index>(), seed in vec(any::<u8>(), 1..64)) {
        let lines = real_lines();
        let (ev, line) = &lines[pick.index(lines.len())];
        let variant = rewrite(line, &seed);
        let v = EventView::parse(&variant).map_err(|e| TestCaseError::fail(format!(
            "{e}: {}", String::from_utf8_lossy(&variant))))?;
        prop_assert_eq!(&v, &EventView::parse(line).unwrap());
        same_as_event(&v, ev)?;
        prop_assert!(agree(&variant)?);
    }

    #[test]
    fn rewritten_arbitrary_events_read_the_same(ev in arbitrary_event(), seed in vec(any::<u8>(), 1..64)) {
        let line = canonical::encode(&ev);
        let variant = rewrite(&line, &seed);
        let v = EventView::parse(&variant).map_err(|e| TestCaseError::fail(format!(
            "{e}: {}", String::from_utf8_lossy(&variant))))?;
        same_as_event(&v, &ev)?;
        prop_assert!(agree(&variant)?);
    }
}
