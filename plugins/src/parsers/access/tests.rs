//! Access-log tests on the project's own fixture lines.

use auditship_core::{AuditEvent, Category, Outcome};

use super::format::CompiledFormat;
use super::*;

fn nginx(line: &str) -> AuditEvent {
    AccessParser::builtin(Flavor::Nginx)
        .parse(line)
        .expect("line parses")
}

fn apache(line: &str) -> AuditEvent {
    AccessParser::builtin(Flavor::Apache)
        .parse(line)
        .expect("line parses")
}

fn ip(ev: &AuditEvent) -> Option<String> {
    ev.src_ip.map(|i| i.to_string())
}

#[test]
fn nginx_combined() {
    let ev = nginx(
        r#"192.0.2.10 - alice [22/Nov/2026:08:15:30 +0100] "GET /admin/users?page=2 HTTP/1.1" 200 5316 "https://example.com/admin" "Mozilla/5.0 (X11; Linux x86_64)""#,
    );
    assert_eq!(
        (ev.category, ev.action.as_ref(), ev.outcome),
        (Category::Web, "http_request", Outcome::Success)
    );
    assert_eq!(ip(&ev).as_deref(), Some("192.0.2.10"));
    assert_eq!(ev.actor.user.as_deref(), Some("alice"));
    assert_eq!(ev.ts.unwrap().to_string(), "2026-11-22T08:15:30+01:00");
    assert_eq!(ev.raw_ts.as_deref(), Some("22/Nov/2026:08:15:30 +0100"));
    assert_eq!(ev.target.url.as_deref(), Some("/admin/users?page=2"));
    let h = ev.http.as_ref().unwrap();
    assert_eq!(
        (h.method.as_deref(), h.version.as_deref(), h.status, h.bytes),
        (Some("GET"), Some("1.1"), Some(200), Some(5316))
    );
    assert_eq!(h.referrer.as_deref(), Some("https://example.com/admin"));
    assert_eq!(
        ev.user_agent.as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
    assert_eq!(ev.program.as_deref(), Some("nginx"));
    assert!(h.forwarded_for.is_empty());
}

#[test]
fn nginx_main_format_trailing_forwarded_for() {
    let ev = nginx(
        r#"10.0.0.5 - - [22/Nov/2026:08:15:31 +0000] "POST /login HTTP/2.0" 401 12 "-" "curl/8.5" "203.0.113.70, 10.0.0.4""#,
    );
    assert_eq!(ev.outcome, Outcome::Failure);
    assert_eq!(
        ip(&ev).as_deref(),
        Some("203.0.113.70"),
        "first public address"
    );
    let h = ev.http.as_ref().unwrap();
    assert_eq!(h.forwarded_for, ["203.0.113.70", "10.0.0.4", "10.0.0.5"]);
    assert_eq!(h.referrer, None);
    let ev =
        nginx(r#"10.0.0.5 - - [22/Nov/2026:08:15:31 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" "-""#);
    assert!(ev.fields.is_empty() && ev.http.unwrap().forwarded_for.is_empty());
}

#[test]
fn client_field_lists_and_quoted_forwarded_for() {
    // All private: the first is the client.
    let ev = nginx(
        r#"10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "ua""#,
    );
    assert_eq!(ip(&ev).as_deref(), Some("10.0.0.2"));
    assert_eq!(
        ev.http.unwrap().forwarded_for,
        ["10.0.0.2", "10.0.0.1", "127.0.0.1"]
    );
    let ev = nginx(
        r#""10.5.102.222, 198.51.100.1, 203.0.113.1" 10.2.1.185 - - [22/Jan/2016:13:18:29 +0000] "GET /assets/x?q=100 HTTP/1.1" 200 25507 "-" "Amazon CloudFront""#,
    );
    assert_eq!(ip(&ev).as_deref(), Some("198.51.100.1"));
    assert_eq!(ev.http.unwrap().forwarded_for.len(), 4);
}

#[test]
fn ipv6_clients_are_canonicalised() {
    let ev = nginx(
        r#"2a02:cf40:10ff:f00f:0000:0000:0:8000, 10.225.192.17 10.2.2.121 - - [30/Dec/2016:06:47:09 +0000] "GET /test.html HTTP/1.1" 404 8571 "-" "bot""#,
    );
    assert_eq!(ip(&ev).as_deref(), Some("2a02:cf40:10ff:f00f::8000"));
    let ev = apache(r#"::1 - - [26/Dec/2016:16:16:29 +0200] "GET /favicon.ico HTTP/1.1" 404 209"#);
    assert_eq!(ip(&ev).as_deref(), Some("::1"));
    assert_eq!(ev.ts.unwrap().to_utc().to_string(), "2016-12-26T14:16:29Z");
}

#[test]
fn dash_and_empty_requests() {
    let ev = apache(r#"::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 -"#);
    let h = ev.http.as_ref().unwrap();
    assert_eq!(
        (h.method.as_deref(), h.request.as_deref(), h.status, h.bytes),
        (None, None, Some(408), None)
    );
    assert_eq!(ev.target.url, None);
    let ev = nginx(r#"127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-""#);
    let h = ev.http.as_ref().unwrap();
    assert_eq!(
        (h.method.as_deref(), h.status, h.bytes),
        (None, Some(400), Some(0))
    );
    assert_eq!(ev.user_agent, None);
}

#[test]
fn escaped_binary_request_is_kept_whole() {
    let ev = nginx(
        r#"198.51.100.9 - - [22/Nov/2026:08:00:00 +0000] "\x16\x03\x01\x00\xA5\x01\x00\x00\xA1\x03\x03" 400 157 "-" "-""#,
    );
    let h = ev.http.as_ref().unwrap();
    assert_eq!(
        h.request.as_deref(),
        Some(r"\x16\x03\x01\x00\xA5\x01\x00\x00\xA1\x03\x03")
    );
    assert_eq!(h.method, None);
    assert_eq!(ev.outcome, Outcome::Failure);
}

#[test]
fn unix_socket_and_hostname_clients() {
    let ev = nginx(r#"unix: - - [26/Feb/2019:15:39:42 +0100] "hello" 400 173 "-" "-""#);
    assert_eq!((ev.src_ip, ev.src_addr.as_deref()), (None, Some("unix:")));
    assert_eq!(ev.http.unwrap().request.as_deref(), Some("hello"));
    let ev = apache(
        r#"monitoring-server - - [29/May/2017:19:02:48 +0000] "GET /status HTTP/1.1" 200 612 "-" "check" "-""#,
    );
    assert_eq!(ev.src_addr.as_deref(), Some("monitoring-server"));
}

#[test]
fn very_long_url() {
    let url = format!("/search?q={}", "a".repeat(200_000));
    let line =
        format!(r#"192.0.2.1 - - [22/Nov/2026:08:00:00 +0000] "GET {url} HTTP/1.1" 414 0 "-" "-""#);
    let ev = nginx(&line);
    assert_eq!(ev.target.url.as_deref(), Some(url.as_str()));
    assert_eq!(ev.http.unwrap().status, Some(414));
}

#[test]
fn apache_escaped_quote_inside_user_agent() {
    let ev = apache(
        r#"192.0.2.7 - bob [22/Nov/2026:08:00:00 -0500] "GET / HTTP/1.1" 200 10 "-" "evil \"agent\" 1.0""#,
    );
    assert_eq!(ev.user_agent.as_deref(), Some(r#"evil \"agent\" 1.0"#));
    assert_eq!(ev.actor.user.as_deref(), Some("bob"));
    assert_eq!(ev.ts.unwrap().offset_secs(), -5 * 3600);
}

#[test]
fn apache_common_and_vhost_combined() {
    let ev =
        apache(r#"192.0.2.8 - - [22/Nov/2026:08:00:00 +0000] "DELETE /api/item/7 HTTP/1.1" 204 -"#);
    assert_eq!(ev.http.as_ref().unwrap().method.as_deref(), Some("DELETE"));
    assert_eq!(ev.http.unwrap().bytes, None);
    let ev = apache(
        r#"shop.example.com:443 192.0.2.9 - - [22/Nov/2026:08:00:00 +0000] "GET /cart HTTP/1.1" 302 1234 "-" "ua""#,
    );
    assert_eq!(ip(&ev).as_deref(), Some("192.0.2.9"));
    let h = ev.http.unwrap();
    assert_eq!(
        (h.host.as_deref(), h.bytes),
        (Some("shop.example.com"), Some(1234))
    );
    assert_eq!(ev.fields["server_port"], "443");
    let ev = nginx(
        r#"api.example.com:8443 192.0.2.9 - - [22/Nov/2026:08:00:00 +0000] "GET /v1 HTTP/1.1" 200 1 "-" "ua""#,
    );
    assert_eq!(ev.http.unwrap().host.as_deref(), Some("api.example.com"));
}

#[test]
fn custom_nginx_log_format() {
    let f = CompiledFormat::nginx(
        "custom",
        r#"$time_iso8601 $remote_addr:$remote_port "$request_method $request_uri $server_protocol" $status $body_bytes_sent rt=$request_time req=$request_id ua="$http_user_agent" up=$upstream_addr"#,
    )
    .unwrap();
    let mut p = AccessParser::custom(f, Some("nginx"));
    let ev = p
        .parse(r#"2026-11-22T08:00:00+01:00 203.0.113.4:55123 "PUT /api/v2/users/7?token=x HTTP/2.0" 201 88 rt=0.042 req=8f2c1a ua="app/3.1" up=10.0.0.9:8080"#)
        .unwrap();
    assert_eq!(ev.ts.unwrap().to_string(), "2026-11-22T08:00:00+01:00");
    assert_eq!(
        (ip(&ev).as_deref(), ev.src_port),
        (Some("203.0.113.4"), Some(55123))
    );
    assert_eq!(ev.target.url.as_deref(), Some("/api/v2/users/7?token=x"));
    assert_eq!(ev.request_id.as_deref(), Some("8f2c1a"));
    assert_eq!(ev.user_agent.as_deref(), Some("app/3.1"));
    let h = ev.http.as_ref().unwrap();
    assert_eq!(
        (
            h.method.as_deref(),
            h.version.as_deref(),
            h.status,
            h.duration_us
        ),
        (Some("PUT"), Some("2.0"), Some(201), Some(42_000))
    );
    assert_eq!(ev.fields["upstream_addr"], "10.0.0.9:8080");
    assert!(p.parse("garbage that does not fit").is_none());
}

#[test]
fn custom_apache_log_format_with_duration() {
    let f = CompiledFormat::apache("custom", r#"%a %u %t "%r" %>s %B %D "%{X-Forwarded-For}i""#)
        .unwrap();
    let ev = AccessParser::custom(f, Some("apache"))
        .parse(r#"192.0.2.3 - [22/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 0 1500 "198.51.100.77""#)
        .unwrap();
    assert_eq!(ev.http.as_ref().unwrap().duration_us, Some(1500));
    assert_eq!(ip(&ev).as_deref(), Some("198.51.100.77"));
}

#[test]
fn mismatched_lines_are_rejected_not_misread() {
    let mut p = AccessParser::builtin(Flavor::Any);
    for line in [
        "",
        "hello",
        r#"192.0.2.1 - - [99/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 1"#,
        r#"192.0.2.1 - - [22/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 2000 1"#,
        r#"192.0.2.1 - - [22/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 lots"#,
        r#"bad!addr - - [22/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 1"#,
    ] {
        assert!(p.parse(line).is_none(), "{line:?}");
    }
}

/// The byte-at-a-time scan `find_closing_quote` replaced, kept as its
/// specification: a backslash skips the next byte, and the first `"` at
/// which `next` matches ends the field.
fn closing_quote_by_bytes(b: &[u8], next: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' if b[i..].starts_with(next) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

proptest::proptest! {
    /// The memchr-driven scan finds the same quote as the byte scan, on
    /// text dense in quotes, backslashes and the literals after them.
    #[test]
    fn closing_quote_scan_agrees_with_the_byte_scan(
        s in "[a\"\\\\ -]{0,40}",
        next in proptest::sample::select(vec!["\"", "\" ", "\" \"", "\"-"]),
    ) {
        proptest::prop_assert_eq!(
            find_closing_quote(s.as_bytes(), next.as_bytes()),
            closing_quote_by_bytes(s.as_bytes(), next.as_bytes())
        );
    }
}

/// A quoted field whose last byte is a backslash has no closing quote: the
/// line does not match (and the scan does not read past the line).
#[test]
fn a_backslash_at_the_end_of_a_quoted_field_does_not_match() {
    assert_eq!(find_closing_quote(br#"abc\"#, b"\" "), None);
    assert_eq!(find_closing_quote(br#"abc\" x" "#, b"\" "), Some(7));
    let mut p = AccessParser::builtin(Flavor::Nginx);
    assert!(p
        .parse(r#"192.0.2.1 - - [22/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua\"#)
        .is_none());
}
