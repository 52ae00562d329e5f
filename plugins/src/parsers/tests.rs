//! Parser-level behaviour: detection, the unparsed fallback, lossless text,
//! and robustness on arbitrary bytes.

use auditship_core::{Category, Flags, Timestamp};
use proptest::prelude::*;

use super::*;

fn parser(format: Format) -> Parser {
    Parser::new(&ParserOptions {
        format,
        timezone: Some("UTC".into()),
        ..ParserOptions::default()
    })
    .unwrap()
}

fn reference() -> Timestamp {
    Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap()
}

#[test]
fn auto_detects_each_format_per_line() {
    let mut p = parser(Format::Auto);
    let lines = [
        (r#"192.0.2.1 - - [22/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua""#, Category::Web),
        ("Nov 22 07:59:00 h sshd[1]: Accepted password for a from 192.0.2.2 port 1 ssh2", Category::Authentication),
        ("<86>1 2026-11-22T07:59:00Z h sudo - - - bob : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/true", Category::Privilege),
        (r#"{"action":"export","category":"account","actor":{"user":"x"}}"#, Category::Account),
        ("something else entirely", Category::Unknown),
    ];
    for (line, cat) in lines {
        let ev = p.parse_at(line.as_bytes(), reference());
        assert_eq!(ev.category, cat, "{line}");
        assert_eq!(ev.raw, line);
    }
    assert_eq!(
        p.stats(),
        ParseStats {
            parsed: 4,
            unparsed: 1,
            escaped: 0
        }
    );
}

#[test]
fn forced_format_does_not_guess() {
    let mut p = parser(Format::Nginx);
    let ev = p.parse_at(
        b"Nov 22 07:59:00 h sshd[1]: Accepted password for a from 192.0.2.2 port 1 ssh2",
        reference(),
    );
    assert!(ev.is_unparsed());
    let mut p = parser(Format::Json);
    assert!(p
        .parse_at(
            b"192.0.2.1 - - [22/Nov/2026:08:00:00 +0000] \"GET / HTTP/1.1\" 200 1",
            reference()
        )
        .is_unparsed());
}

#[test]
fn invalid_utf8_is_escaped_flagged_and_still_parsed() {
    let mut p = parser(Format::Auth);
    let line = b"Nov 22 07:59:00 h sshd[1]: Invalid user \xff\xfeadmin from 192.0.2.9 port 22";
    let ev = p.parse_at(line, reference());
    assert!(ev.flags.contains(Flags::RAW_ESCAPED));
    assert_eq!(ev.action, "ssh_invalid_user");
    assert_eq!(ev.actor.user.as_deref(), Some("\\xff\\xfeadmin"));
    assert_eq!(auditship_core::lossless::unescape(&ev.raw).unwrap(), line);
    assert_eq!(p.stats().escaped, 1);
}

#[test]
fn unparsed_keeps_raw_and_program_and_crlf() {
    let mut p = parser(Format::Auto);
    let ev = p.parse_at(
        b"Nov 22 07:59:00 h kernel: [  1.0] usb 1-1: new device\r",
        reference(),
    );
    assert!(ev.is_unparsed());
    assert_eq!(ev.program.as_deref(), Some("kernel"));
    assert_eq!(
        ev.raw,
        "Nov 22 07:59:00 h kernel: [  1.0] usb 1-1: new device\r"
    );
}

#[test]
fn syslog_pri_and_5424_metadata_go_to_fields() {
    let mut p = parser(Format::Auth);
    let ev = p.parse_at(b"<86>1 2026-11-22T07:59:00Z h sshd 7 AUTH [m a=\"1\"] Failed password for root from 192.0.2.1 port 2 ssh2", reference());
    assert_eq!(ev.action, "ssh_login");
    assert_eq!(ev.fields["syslog_msgid"], "AUTH");
    assert_eq!(ev.fields["syslog_structured_data"], "[m a=\"1\"]");
    assert_eq!(ev.fields["syslog_facility"], "10");
    assert_eq!(ev.fields["syslog_severity"], "6");
}

#[test]
fn bad_options_are_reported() {
    let bad_tz = ParserOptions {
        timezone: Some("Nowhere/Land".into()),
        ..Default::default()
    };
    assert!(matches!(
        Parser::new(&bad_tz),
        Err(ParserError::TimeZone(_))
    ));
    let bad_fmt = ParserOptions {
        format: Format::Nginx,
        nginx_log_format: Some("$a$b".into()),
        ..Default::default()
    };
    assert!(matches!(
        Parser::new(&bad_fmt),
        Err(ParserError::LogFormat(_))
    ));
    assert!("xml".parse::<Format>().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No parser panics on arbitrary bytes, and the raw line always survives.
    #[test]
    fn no_parser_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for format in [Format::Auto, Format::Nginx, Format::Apache, Format::Auth, Format::Json] {
            let ev = parser(format).parse_at(&bytes, reference());
            let back = if ev.flags.contains(Flags::RAW_ESCAPED) {
                auditship_core::lossless::unescape(&ev.raw).unwrap()
            } else {
                ev.raw.clone().into_bytes()
            };
            prop_assert_eq!(back, bytes.clone());
        }
    }

    /// Structured-looking garbage: valid prefixes of real formats with random tails.
    #[test]
    fn no_parser_panics_on_mangled_log_lines(
        prefix in prop::sample::select(vec![
            "Nov 22 07:59:00 h sshd[1]: ",
            "<13>1 2026-11-22T07:59:00Z h app 1 - ",
            "2026-11-22T07:59:00.1+01:00 h sudo: ",
            "192.0.2.1 - - [22/Nov/2026:08:00:00 +0000] \"",
            "{\"ts\":",
            "h:80 192.0.2.1 - - [",
        ]),
        tail in "[ -~]{0,120}",
    ) {
        let line = format!("{prefix}{tail}");
        for format in [Format::Auto, Format::Nginx, Format::Apache, Format::Auth, Format::Json] {
            let ev = parser(format).parse_at(line.as_bytes(), reference());
            prop_assert_eq!(&ev.raw, &line);
        }
    }
}
