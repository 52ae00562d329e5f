use super::*;

fn reference() -> Timestamp {
    Timestamp::from_civil(2026, 11, 22, 8, 0, 0, 0, 0).unwrap()
}

fn hdr(line: &str) -> Header<'_> {
    parse(line, &mut Clock::utc(), reference()).expect("header parses")
}

#[test]
fn rfc3164_with_space_padded_day_and_pid() {
    let h = hdr("Mar  7 10:01:02 web1 sshd[4242]: Accepted password for bob");
    assert_eq!(h.ts.unwrap().to_string(), "2026-03-07T10:01:02Z");
    assert_eq!(h.raw_ts, "Mar  7 10:01:02");
    assert_eq!(h.host, Some("web1"));
    assert_eq!(h.program, Some("sshd"));
    assert_eq!(h.pid, Some(4242));
    assert_eq!(h.msg, "Accepted password for bob");
}

#[test]
fn rfc3164_without_pid_and_with_padding_after_colon() {
    let h = hdr("Feb 24 00:13:02 precise32 sudo:      tsg : user NOT in sudoers");
    assert_eq!(h.program, Some("sudo"));
    assert_eq!(h.pid, None);
    assert_eq!(h.msg, "     tsg : user NOT in sudoers");
}

#[test]
fn rfc3164_with_pri_and_no_hostname() {
    let h = hdr("<38>Nov 21 23:59:59 sshd[1]: Server listening on :: port 22.");
    assert_eq!(h.pri, Some((4, 6)));
    assert_eq!(h.host, None);
    assert_eq!(h.program, Some("sshd"));
    assert_eq!(h.msg, "Server listening on :: port 22.");
}

#[test]
fn rfc3164_line_without_tag_keeps_message() {
    let h = hdr("Mar  7 10:01:02 web1 -- MARK --");
    assert_eq!(h.program, None);
    assert_eq!(h.msg, "-- MARK --");
}

#[test]
fn rsyslog_high_precision_form() {
    let h = hdr("2026-03-07T10:01:02.123456+01:00 web1 sudo: pam_unix(sudo:session): session closed for user root");
    assert_eq!(
        h.ts.unwrap().to_string(),
        "2026-03-07T10:01:02.123456+01:00"
    );
    assert_eq!(h.host, Some("web1"));
    assert_eq!(h.program, Some("sudo"));
    assert!(h.msg.starts_with("pam_unix("));
}

#[test]
fn zoneless_iso_timestamp_uses_the_clock_zone() {
    let mut c = Clock::new(Zone::Fixed(5400), YearMode::Reference);
    let h = parse(
        "2019-06-14T10:40:20.912134 localhost sudo: x",
        &mut c,
        reference(),
    )
    .unwrap();
    assert_eq!(
        h.ts.unwrap().to_string(),
        "2019-06-14T10:40:20.912134+01:30"
    );
}

#[test]
fn rfc5424_with_structured_data_and_bom() {
    let line = "<86>1 2026-03-07T10:01:02.003Z host1 sshd 812 AUTH [meta seq=\"1\" note=\"a]b\"][x y=\"\\\"\"] \u{feff}Accepted publickey for alice from 192.0.2.9 port 5022 ssh2";
    let h = hdr(line);
    assert_eq!(h.pri, Some((10, 6)));
    assert_eq!(h.ts.unwrap().to_string(), "2026-03-07T10:01:02.003Z");
    assert_eq!(h.host, Some("host1"));
    assert_eq!(h.program, Some("sshd"));
    assert_eq!(h.pid, Some(812));
    assert_eq!(h.msgid, Some("AUTH"));
    assert_eq!(
        h.structured_data,
        Some("[meta seq=\"1\" note=\"a]b\"][x y=\"\\\"\"]")
    );
    assert_eq!(
        h.msg,
        "Accepted publickey for alice from 192.0.2.9 port 5022 ssh2"
    );
}

#[test]
fn rfc5424_nil_values() {
    let h = hdr("<13>1 - - - - - - hello");
    assert_eq!(
        (h.ts, h.host, h.program, h.pid, h.msgid),
        (None, None, None, None, None)
    );
    assert_eq!(h.msg, "hello");
}

#[test]
fn not_syslog_is_rejected() {
    for line in [
        "",
        "hello world",
        "<999>Mar  7 10:01:02 h p: m",
        "Mar 7",
        "10.0.0.1 - - [07/Dec/2016:11:05:07 +0100] \"GET / HTTP/1.1\" 200 1",
    ] {
        assert!(
            parse(line, &mut Clock::utc(), reference()).is_none(),
            "{line:?}"
        );
    }
    assert!(looks_like_syslog("Mar  7 10:01:02 h p: m"));
    assert!(looks_like_syslog("<13>1 - - - - - - hello"));
    assert!(!looks_like_syslog("10.0.0.1 - - [07/Dec/2016"));
}
