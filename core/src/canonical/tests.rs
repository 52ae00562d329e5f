use super::*;
use crate::event::{Category, Flags, Outcome};
use proptest::prelude::*;

/// The spec's worked example, written out by hand from the rules in the
/// module docs, not produced by the encoder.
#[test]
fn known_answer_for_a_sudo_event() {
    let mut ev = AuditEvent::new(
        Category::Privilege,
        "sudo_command",
        Outcome::Success,
        "Feb 23 00:08:48 h sudo: bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/cat \"a\\b\"\t\u{1}é".into(),
    );
    ev.ts = Timestamp::from_civil(2026, 2, 23, 0, 8, 48, 0, 3600);
    ev.host = Some("h".into());
    ev.program = Some("sudo".into());
    ev.actor.user = Some("bob".into());
    ev.target.user = Some("root".into());
    ev.tty = Some("pts/1".into());
    ev.seq = Some(7);
    ev.hash = Some("ignored".into());
    ev.prev_hash = Some("ignored".into());
    let expected = concat!(
        r#"{"action":"sudo_command","actor":{"user":"bob"},"category":"privilege","#,
        r#""host":"h","outcome":"success","program":"sudo","#,
        r#""raw":"Feb 23 00:08:48 h sudo: bob : TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/cat \"a\\b\"\t\u0001é","#,
        r#""seq":7,"src_ip":null,"target":{"user":"root"},"ts":"2026-02-23T00:08:48+01:00","#,
        r#""tty":"pts/1","v":1}"#
    );
    assert_eq!(String::from_utf8(encode(&ev)).unwrap(), expected);
    assert_eq!(String::from_utf8(encode_reference(&ev)).unwrap(), expected);
}

#[test]
fn hash_and_prev_hash_do_not_change_the_encoding() {
    let mut ev = AuditEvent::unparsed("x".into());
    let before = encode(&ev);
    ev.hash = Some("aa".into());
    ev.prev_hash = Some("bb".into());
    assert_eq!(encode(&ev), before);
    ev.seq = Some(1);
    assert_ne!(encode(&ev), before, "seq is covered");
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any::<String>())
}

prop_compose! {
    fn arb_event()(
        raw in any::<String>(),
        strs in proptest::collection::vec(opt_text(), 22),
        nums in proptest::collection::vec(proptest::option::of(any::<u32>()), 6),
        seq in proptest::option::of(any::<u64>()),
        big in proptest::option::of(any::<u64>()),
        port in proptest::option::of(any::<u16>()),
        ip in proptest::option::of(any::<std::net::IpAddr>()),
        secs in proptest::option::of((-62_000_000_000i64..250_000_000_000, 0u32..1_000_000_000, -1439i32..1439)),
        fields in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4),
        ff in proptest::collection::vec(any::<String>(), 0..3),
        flags in 0u8..16,
        cat in 0usize..11,
        out in 0usize..3,
        with_http in any::<bool>(),
    ) -> AuditEvent {
        let cats = [Category::Authentication, Category::Session, Category::Privilege,
            Category::Account, Category::Web, Category::Network, Category::System,
            Category::Integrity, Category::Access, Category::Alert, Category::Unknown];
        let outs = [Outcome::Success, Outcome::Failure, Outcome::Unknown];
        let mut s = strs.into_iter();
        let mut n = nums.into_iter();
        let mut ev = AuditEvent::new(cats[cat], s.next().unwrap().unwrap_or_default(), outs[out], raw);
        ev.ts = secs.and_then(|(a, b, c)| Timestamp::new(a, b, c * 60));
        ev.observed_ts = secs.and_then(|(a, b, _)| Timestamp::new(a, b, 0));
        ev.raw_ts = s.next().unwrap();
        ev.host = s.next().unwrap();
        ev.source = s.next().unwrap();
        ev.program = s.next().unwrap();
        ev.pid = n.next().unwrap();
        ev.reason = s.next().unwrap();
        ev.actor.user = s.next().unwrap();
        ev.actor.uid = n.next().unwrap();
        ev.target.user = s.next().unwrap();
        ev.target.uid = n.next().unwrap();
        ev.target.group = s.next().unwrap();
        ev.target.gid = n.next().unwrap();
        ev.target.resource = s.next().unwrap();
        ev.target.url = s.next().unwrap();
        ev.src_ip = ip;
        ev.src_port = port;
        ev.src_addr = s.next().unwrap();
        ev.auth_method = s.next().unwrap();
        ev.key_type = s.next().unwrap();
        ev.key_fingerprint = s.next().unwrap();
        ev.session_id = s.next().unwrap();
        ev.tty = s.next().unwrap();
        ev.cwd = s.next().unwrap();
        ev.command = s.next().unwrap();
        ev.user_agent = s.next().unwrap();
        ev.request_id = s.next().unwrap();
        ev.agent_id = s.next().unwrap();
        ev.seq = seq;
        ev.fields = fields;
        for (f, _) in Flags::NAMES {
            if flags & f_bits(f) != 0 {
                ev.flags.insert(f);
            }
        }
        if with_http {
            let h = ev.http_mut();
            h.method = Some("GET".into());
            h.status = n.next().unwrap().map(|v| v as u16);
            h.bytes = big;
            h.duration_us = seq;
            h.forwarded_for = ff;
            h.referrer = Some("-\u{7f}\u{1f}".into());
        }
        ev
    }
}

fn f_bits(f: Flags) -> u8 {
    Flags::NAMES
        .iter()
        .position(|(g, _)| *g == f)
        .map(|i| 1u8 << i)
        .unwrap()
}

proptest! {
    /// The fast encoder and the generic derivation agree on arbitrary events.
    #[test]
    fn fast_encoder_matches_reference(ev in arb_event()) {
        prop_assert_eq!(
            String::from_utf8(encode(&ev)).unwrap(),
            String::from_utf8(encode_reference(&ev)).unwrap()
        );
    }

    /// The canonical bytes are valid JSON that parses back to the same event.
    #[test]
    fn canonical_bytes_parse_back(ev in arb_event()) {
        let back: AuditEvent = serde_json::from_slice(&encode(&ev)).unwrap();
        prop_assert_eq!(back, ev);
    }
}

proptest! {
    /// Strings dense in the bytes that must be escaped, at every length
    /// around the eight-byte words and the 32-byte long-text path, escape
    /// exactly as serde_json does (which the spec's rules match for these).
    #[test]
    fn strings_escape_like_serde_json_at_every_word_offset(
        s in "[a\"\\\\\\x00-\\x1f\\x7fé/ ]{0,70}"
    ) {
        let mut out = Vec::new();
        string(&mut out, &s);
        prop_assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&s).unwrap()
        );
    }
}

/// An object whose optional members are all absent is `{}`, and one whose
/// first member is optional still opens with `{` (the writer turns the
/// first member's comma into the brace).
#[test]
fn empty_and_sparse_objects_are_well_formed() {
    let mut ev = AuditEvent::new(Category::Web, "http_request", Outcome::Success, "r".into());
    let enc = String::from_utf8(encode(&ev)).unwrap();
    assert!(
        enc.starts_with("{\"action\":\"http_request\",\"actor\":{},"),
        "{enc}"
    );
    assert!(enc.contains(",\"target\":{},"), "{enc}");
    ev.actor.user = Some("alice".into());
    ev.target.url = Some("/".into());
    let enc = String::from_utf8(encode(&ev)).unwrap();
    assert!(enc.contains("\"actor\":{\"user\":\"alice\"},"), "{enc}");
    assert!(enc.contains("\"target\":{\"url\":\"/\"},"), "{enc}");
    assert_eq!(enc, String::from_utf8(encode_reference(&ev)).unwrap());
}
