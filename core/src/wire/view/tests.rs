//! Edge cases of the scanner, each checked against serde_json's derived
//! decoding (the reference). The generated and mutated comparisons are in
//! `core/tests/view_differential.rs`.

use super::*;

/// serde_json's reading of `line`, the reference.
fn serde(line: &[u8]) -> std::result::Result<EventView<'_>, String> {
    serde_json::from_slice(line).map_err(|e| e.to_string())
}

/// Parses `line` with both and asserts they agree; returns the scanner's
/// result.
#[track_caller]
fn agree(line: &str) -> Result<EventView<'_>> {
    agree_bytes(line.as_bytes())
}

#[track_caller]
fn agree_bytes(line: &[u8]) -> Result<EventView<'_>> {
    let ours = EventView::parse(line);
    let theirs = serde(line);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(line)),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "disagree on {:?}: scanner {ours:?}, serde {theirs:?}",
            String::from_utf8_lossy(line)
        ),
    }
    ours
}

#[track_caller]
fn ok(line: &str) -> EventView<'_> {
    agree(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[track_caller]
fn err(line: &str) -> String {
    match agree(line) {
        Ok(v) => panic!("{line} was accepted: {v:?}"),
        Err(e) => e.to_string(),
    }
}

const REQ: &str = r#""action":"a","category":"c","outcome":"o","raw":"r""#;

/// An event with the required fields and `extra` members.
fn ev(extra: &str) -> String {
    if extra.is_empty() {
        format!("{{{REQ}}}")
    } else {
        format!("{{{REQ},{extra}}}")
    }
}

#[test]
fn a_canonical_event_reads_every_field_and_borrows_its_strings() {
    let line = concat!(
        r#"{"action":"login","actor":{"uid":0,"user":"root"},"agent_id":"web-1","#,
        r#""category":"authentication","fields":{"k":"v"},"flags":["a","b"],"host":"h1","#,
        r#""http":{"bytes":12,"method":"GET"},"observed_ts":"2026-11-22T10:00:01Z","#,
        r#""outcome":"success","pid":42,"raw":"Accepted password for root","seq":7,"#,
        r#""src_ip":"192.0.2.1","target":{},"ts":"2026-11-22T10:00:00.250+01:00","v":1}"#
    );
    let v = ok(line);
    assert_eq!(v.action, "login");
    assert_eq!(v.actor.user.as_deref(), Some("root"));
    assert_eq!(v.agent_id.as_deref(), Some("web-1"));
    assert_eq!(v.category, "authentication");
    assert_eq!(v.host.as_deref(), Some("h1"));
    assert_eq!(v.observed_ts.as_deref(), Some("2026-11-22T10:00:01Z"));
    assert_eq!(v.outcome, "success");
    assert_eq!(v.raw, "Accepted password for root");
    assert_eq!(v.seq, Some(7));
    assert_eq!(v.src_ip, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(v.ts.as_deref(), Some("2026-11-22T10:00:00.250+01:00"));
    for s in [
        &v.action,
        &v.raw,
        v.host.as_ref().unwrap(),
        v.ts.as_ref().unwrap(),
    ] {
        assert!(matches!(s, Cow::Borrowed(_)), "{s:?} was copied");
    }
}

#[test]
fn absent_and_null_optional_fields_are_none_and_required_ones_must_be_there() {
    let line = ev("");
    let v = ok(&line);
    assert_eq!(
        (v.ts, v.host, v.seq, v.src_ip, v.actor.user),
        (None, None, None, None, None)
    );
    let line = ev(
        r#""ts":null,"observed_ts":null,"host":null,"agent_id":null,"src_ip":null,"seq":null,"actor":{"user":null}"#,
    );
    let v = ok(&line);
    assert_eq!((v.ts, v.agent_id, v.seq), (None, None, None));
    for f in ["action", "category", "outcome", "raw"] {
        let line = ev("").replace(&format!("\"{f}\""), "\"other\"");
        let e = err(&line);
        assert!(e.contains(&format!("missing field `{f}`")), "{e}");
        // null is not a string.
        let line = ev("").replace(
            &format!("\"{f}\":\"{}\"", &f[..1]),
            &format!("\"{f}\":null"),
        );
        err(&line);
    }
    err("{}");
    err("");
    err("   ");
}

#[test]
fn wrong_types_are_errors() {
    for (field, bad) in [
        ("ts", "1"),
        ("ts", "true"),
        ("ts", "[]"),
        ("ts", "{}"),
        ("host", "false"),
        ("agent_id", "0"),
        ("observed_ts", "[\"x\"]"),
        ("src_ip", "1"),
        ("src_ip", "\"\""),
        ("src_ip", "\"1.2.3\""),
        ("src_ip", "\" 1.2.3.4\""),
        ("src_ip", "\"01.2.3.4\""),
        ("src_ip", "[]"),
        ("seq", "\"1\""),
        ("seq", "true"),
        ("seq", "{}"),
        ("actor", "null"),
        ("actor", "\"bob\""),
        ("actor", "1"),
        ("actor", "{\"user\":1}"),
        ("actor", "{\"user\":{}}"),
    ] {
        err(&ev(&format!("\"{field}\":{bad}")));
    }
    for field in ["action", "category", "outcome", "raw"] {
        for bad in ["1", "true", "[]", "{}", "nul", "\"x"] {
            let line = ev("").replace(
                &format!("\"{field}\":\"{}\"", &field[..1]),
                &format!("\"{field}\":{bad}"),
            );
            err(&line);
        }
    }
}

#[test]
fn seq_is_a_plain_unsigned_64_bit_integer() {
    assert_eq!(ok(&ev("\"seq\":0")).seq, Some(0));
    assert_eq!(ok(&ev("\"seq\":18446744073709551615")).seq, Some(u64::MAX));
    assert_eq!(ok(&ev("\"seq\" : 12 ")).seq, Some(12));
    for bad in [
        "18446744073709551616",
        "99999999999999999999999",
        "-1",
        "-0",
        "1.0",
        "1e3",
        "1E0",
        "0e0",
        "0.0",
        "01",
        "00",
        "+1",
        "1.",
        ".5",
        "-",
        "1x",
        "0x1",
        "nulll",
        "nul",
        "NaN",
    ] {
        let e = err(&ev(&format!("\"seq\":{bad}")));
        assert!(!e.is_empty());
    }
}

#[test]
fn ignored_values_may_be_anything_valid() {
    for value in [
        "null",
        "true",
        "false",
        "0",
        "-0",
        "-0.5e-300",
        "1e999999",
        "123456789012345678901234567890.5E+7",
        "\"\"",
        "\"with \\\"escapes\\\" \\u0000 \\ud800 \\udc00 \\/\"",
        "[]",
        "{}",
        "[1,[2,[3,{\"a\":[{}]}]],\"x\",null]",
        "{\"seq\":\"not a number\",\"raw\":1,\"\":{}}",
        " [ 1 , 2 ] ",
    ] {
        ok(&ev(&format!("\"unknown\":{value}")));
        ok(&ev(&format!(
            "\"actor\":{{\"other\":{value},\"user\":\"u\"}}"
        )));
    }
    for value in [
        "01",
        "1.",
        ".1",
        "+1",
        "-",
        "1e",
        "1e+",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{1:2}",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        "nul",
        "tru",
        "falsey",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "[",
        "{",
        "[}",
        "{]",
        "\"open",
        "undefined",
        "'x'",
    ] {
        err(&ev(&format!("\"unknown\":{value}")));
    }
    // Duplicate unknown keys are fine; a duplicate known key is not, even
    // as null.
    ok(&ev("\"x\":1,\"x\":2"));
    for dup in [
        "\"ts\":null,\"ts\":null",
        "\"seq\":1,\"seq\":1",
        "\"actor\":{},\"actor\":{}",
    ] {
        assert!(err(&ev(dup)).contains("duplicate"));
    }
    err(&ev("\"raw\":\"again\""));
    err(&ev("\"actor\":{\"user\":\"a\",\"user\":null}"));
    ok(&ev("\"actor\":{\"x\":1,\"x\":2,\"user\":\"a\"}"));
}

#[test]
fn deep_nesting_inside_ignored_values_is_followed_without_recursion() {
    for depth in [1, 63, 64, 65, 128, 129, 5000] {
        let mixed: String = (0..depth)
            .map(|i| if i % 3 == 0 { "{\"k\":" } else { "[" })
            .collect();
        let close: String = (0..depth)
            .rev()
            .map(|i| if i % 3 == 0 { "}" } else { "]" })
            .collect();
        ok(&ev(&format!("\"deep\":{mixed}0{close}")));
        // One bracket of the wrong kind anywhere breaks it.
        let mut wrong = close.clone().into_bytes();
        let at = wrong.len() / 2;
        wrong[at] = if wrong[at] == b']' { b'}' } else { b']' };
        err(&ev(&format!(
            "\"deep\":{mixed}0{}",
            String::from_utf8(wrong).unwrap()
        )));
        err(&ev(&format!("\"deep\":{mixed}0{}", &close[1..])));
    }
}

#[test]
fn actor_reads_like_a_serde_struct_from_an_object_or_a_short_array() {
    assert_eq!(ok(&ev("\"actor\":{}")).actor.user, None);
    assert_eq!(ok(&ev("\"actor\":[]")).actor.user, None);
    assert_eq!(ok(&ev("\"actor\":[ ]")).actor.user, None);
    assert_eq!(ok(&ev("\"actor\":[null]")).actor.user, None);
    assert_eq!(
        ok(&ev("\"actor\":[\"bob\"]")).actor.user.as_deref(),
        Some("bob")
    );
    assert_eq!(
        ok(&ev("\"actor\":{\"uid\":0,\"us\\u0065r\":\"x\"}"))
            .actor
            .user
            .as_deref(),
        Some("x")
    );
    for bad in [
        "[\"bob\",1]",
        "[\"bob\",]",
        "[1]",
        "[[]]",
        "[",
        "{\"user\":\"a\"",
    ] {
        err(&ev(&format!("\"actor\":{bad}")));
    }
}

#[test]
fn whitespace_is_allowed_wherever_json_allows_it_and_nowhere_else() {
    let spaced = " \t\r\n{ \"action\" :\t\"a\" ,\n\"category\":\"c\",\"outcome\"\r:\"o\", \"raw\" : \"r\" , \"seq\" : 1 , \"actor\" : [ \"u\" ] , \"x\" : [ 1 , { \"y\" : null } ] } \n\t";
    let v = ok(spaced);
    assert_eq!((v.seq, v.actor.user.as_deref()), (Some(1), Some("u")));
    for (bad, name) in [
        ("\u{c}", "form feed"),
        ("\u{a0}", "no-break space"),
        ("\u{0}", "NUL"),
        ("\u{b}", "vertical tab"),
    ] {
        err(&format!("{bad}{}", ev("")));
        err(&format!("{}{bad}", ev("")));
        let inside = ev("").replacen(',', &format!("{bad},"), 1);
        assert!(agree(&inside).is_err(), "{name}");
    }
}

#[test]
fn trailing_characters_and_non_objects_are_errors() {
    let good = ev("");
    for tail in ["x", "}", "{}", ",", "\u{0}", "0", "\"\""] {
        assert!(err(&format!("{good}{tail}")).contains("trailing"));
    }
    err(&good[..good.len() - 1]);
    err(&format!("{},}}", &good[..good.len() - 1]));
    for not_object in ["null", "1", "\"x\"", "true"] {
        err(not_object);
    }
}

#[test]
fn a_top_level_array_is_refused_although_serde_reads_a_struct_from_one() {
    // The one documented difference (see the module docs): serde takes the
    // fields in declaration order from an array.
    let line = r#"[null,null,null,"c","a","o",{},null,"r","web-1",1]"#;
    let theirs = serde(line.as_bytes()).unwrap();
    assert_eq!(theirs.raw, "r");
    assert!(EventView::parse(line.as_bytes()).is_err());
}

#[test]
fn escapes_decode_like_serde_and_keys_may_be_escaped() {
    let line = ev(r#""host":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20AC\ud83d\ude00\u0000""#);
    let v = ok(&line);
    assert_eq!(v.host.as_deref(), Some("a\"b\\c/d\u{8}\u{c}\n\r\té€😀\0"));
    assert!(matches!(v.host, Some(Cow::Owned(_))));
    let v =
        ok(r#"{"\u0061ction":"a","c\u0061tegory":"c","outcome":"o","r\u0061w":"r","s\u0065q":5}"#);
    assert_eq!((v.action.as_ref(), v.seq), ("a", Some(5)));
    // An escaped key is still a duplicate.
    err(&ev(r#""\u0072aw":"x""#));
    for bad in [
        r#""\ud800""#,
        r#""\udc00""#,
        r#""\ud800\u0041""#,
        r#""\ud800\ud800""#,
        r#""\ud800x""#,
        r#""\ud800\n""#,
        r#""\ud83d\ude0""#,
        r#""\x""#,
        r#""\u00""#,
        r#""\U0041""#,
        "\"tab\there\"",
        "\"nl\nhere\"",
        "\"nul\u{0}\"",
        "\"\\",
    ] {
        err(&ev(&format!("\"host\":{bad}")));
        // A key with the same defect: keys of the event are decoded too.
        err(&ev(&format!("{bad}:1")));
        err(&ev(&format!("\"actor\":{{{bad}:1}}")));
    }
    // Inside ignored values, serde only checks the syntax of an escape.
    ok(&ev(r#""x":"\ud800","y":{"\udc00":"\ud800\u0041"}"#));
    // U+007F and non-ASCII are fine as themselves.
    assert_eq!(
        ok(&ev("\"host\":\"\u{7f}é😀\"")).host.as_deref(),
        Some("\u{7f}é😀")
    );
}

#[test]
fn invalid_utf8_is_refused_where_serde_checks_it_and_passed_where_it_does_not() {
    let with = |member: &[u8]| {
        let mut line = ev("").into_bytes();
        line.pop();
        line.push(b',');
        line.extend_from_slice(member);
        line.push(b'}');
        line
    };
    for bad in [
        &b"\xff"[..],
        b"\xc3",
        b"\xc3(",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
    ] {
        let quoted = |pre: &[u8], post: &[u8]| [pre, bad, post].concat();
        // Decoded strings: refused, with or without escapes around.
        assert!(agree_bytes(&with(&quoted(b"\"host\":\"", b"\""))).is_err());
        assert!(agree_bytes(&with(&quoted(b"\"host\":\"\\n", b"\\n\""))).is_err());
        assert!(agree_bytes(&with(&quoted(b"\"", b"\":1"))).is_err());
        assert!(agree_bytes(&with(&quoted(b"\"actor\":{\"", b"\":1}"))).is_err());
        // Outside strings: not JSON.
        assert!(agree_bytes(&with(&quoted(b"\"x\":", b""))).is_err());
        // Skipped strings: serde_json does not look.
        assert!(agree_bytes(&with(&quoted(b"\"x\":\"", b"\""))).is_ok());
        assert!(agree_bytes(&with(&quoted(b"\"x\":{\"", b"\":[\"\\t"))).is_err());
        assert!(agree_bytes(&with(&quoted(b"\"x\":{\"", b"\":[\"\\t\"]}"))).is_ok());
    }
    // A UTF-8 sequence split by an escape is not UTF-8.
    assert!(agree_bytes(&with(b"\"host\":\"\xc3\\u00a9\"")).is_err());
}

#[test]
fn errors_say_what_and_where() {
    let e = EventView::parse(br#"{"action":"a", oops}"#).unwrap_err();
    assert_eq!(e.offset(), Some(15));
    assert!(
        e.to_string()
            .contains("'o' where a key after ',' was expected at column 16"),
        "{e}"
    );
    let e = EventView::parse(br#"{"seq":-1}"#).unwrap_err().to_string();
    assert!(e.contains("seq must be an integer"), "{e}");
    let e = EventView::parse(&ev("\"src_ip\":\"nope\"").into_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("src_ip"), "{e}");
    let e = EventView::parse(br#"{"action":"a"}"#).unwrap_err();
    assert_eq!(
        (e.offset(), e.to_string().as_str()),
        (None, "missing field `category`")
    );
    let e = EventView::parse(b"").unwrap_err().to_string();
    assert!(e.contains("end of line"), "{e}");
}

#[test]
fn ip_addresses_parse_as_std_does() {
    for (text, ip) in [
        ("192.0.2.1", "192.0.2.1"),
        ("::1", "::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
    ] {
        let line = ev(&format!("\"src_ip\":\"{text}\""));
        let v = ok(&line);
        assert_eq!(v.src_ip, Some(ip.parse().unwrap()));
    }
    let line = ev("\"src_ip\":\"10.0.0.\\u0031\"");
    let v = ok(&line);
    assert_eq!(v.src_ip, Some("10.0.0.1".parse().unwrap()));
    for bad in [
        "fe80::1%eth0",
        "[::1]",
        "256.0.0.1",
        "1.2.3.4:80",
        "localhost",
    ] {
        err(&ev(&format!("\"src_ip\":\"{bad}\"")));
    }
}
