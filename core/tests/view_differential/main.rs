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
//!   surrogates, raw control bytes, invalid UTF-8, bad escapes, missing or
//!   extra commas and colons), numbers of every form, valid and not
//!   (`gen.rs`); any value alone and as the value of an unknown key;
//! * (b) real events: lines from the benchmark generator parsed by the
//!   real parsers, and events with arbitrary strings, canonically encoded
//!   (and sealed), then mutated byte-wise (insert, delete, flip, set),
//!   and the unmutated ones compared with the events' own fields;
//! * (c) the same events re-written with random whitespace and escapes,
//!   which must read exactly like the original (`edits.rs`).

use std::sync::OnceLock;

use auditship_bench::{Kind, LineGen};
use auditship_core::seal;
use auditship_core::wire::EventView;
use auditship_core::{canonical, AuditEvent, Timestamp};
use auditship_plugins::{Parser, ParserOptions};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

mod edits;
mod gen;

use edits::{apply, arbitrary_event, edit, rewrite};
use gen::{object, render, value, Ws};

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
