//! The `redact` filter: failed-login user names, query secrets, listed
//! fields and patterns, always removed from `raw` too.

use proptest::prelude::*;

use super::*;

// ---- redact ----

#[test]
fn a_password_typed_as_user_name_is_redacted_in_the_field_and_raw() {
    let c = chain(REDACT);
    let mut ev = ssh_failed("Hunter2!pass");
    assert_eq!(
        ev.raw,
        "Nov 20 10:01:01 bastion sshd[2003]: Failed password for invalid user Hunter2!pass from 203.0.113.9 port 22 ssh2"
    );
    assert_eq!(c.apply(&mut ev), Verdict::Keep);
    assert_eq!(ev.actor.user.as_deref(), Some(REDACTED));
    assert_eq!(
        ev.raw,
        "Nov 20 10:01:01 bastion sshd[2003]: Failed password for invalid user [REDACTED] from 203.0.113.9 port 22 ssh2"
    );
    assert_eq!(ev.fields[REDACTED_FIELD], "true");
    assert!(!serde_json::to_string(&ev).unwrap().contains("Hunter2"));
    assert_eq!(c.redacted(), [("redact[0]".to_owned(), 1)]);

    let mut ev = ssh_failed("P@ssw0rd123");
    let _ = c.apply(&mut ev);
    assert!(!ev.raw.contains("P@ssw0rd123") && ev.actor.user.as_deref() == Some(REDACTED));
    assert_eq!(c.redacted_total(), 2);
}

/// auditd writes a typed "user name" with a space in hex: the password is
/// taken out of `raw` in that spelling, and out of the decoded fields.
#[test]
fn a_password_in_an_audit_record_is_redacted_in_its_hex_spelling() {
    let mut parser = auditship_plugins::Parser::new(&auditship_plugins::ParserOptions {
        format: auditship_plugins::Format::Auditd,
        ..Default::default()
    })
    .unwrap();
    // acct = "Hunter2 pass!" in hex (a space, so auditd encodes it).
    let line = "type=USER_AUTH msg=audit(1700000000.000:7): pid=9 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication grantors=? acct=48756E746572322070617373 exe=\"/usr/bin/login\" hostname=? addr=? terminal=tty1 res=failed'";
    let mut ev = parser.parse(line.as_bytes());
    assert_eq!(ev.actor.user.as_deref(), Some("Hunter2 pass"));
    let c = chain(REDACT);
    assert_eq!(c.apply(&mut ev), Verdict::Keep);
    assert_eq!(ev.actor.user.as_deref(), Some(REDACTED));
    // "[REDACTED]" in hex.
    assert!(ev.raw.contains("acct=5B52454441435445445D "), "{}", ev.raw);
    assert!(!ev.raw.contains("48756E746572322070617373"));
    assert_eq!(ev.fields["user_auth.acct"], REDACTED);
    assert!(!serde_json::to_string(&ev).unwrap().contains("Hunter2"));
}

#[test]
fn plausible_user_names_are_not_redacted() {
    let c = chain(REDACT);
    for user in ["admin", "root", "deploy", "ubuntu71", "svc-backup"] {
        let mut ev = ssh_failed(user);
        let before = ev.clone();
        assert_eq!(c.apply(&mut ev), Verdict::Keep);
        assert_eq!(ev, before, "{user}");
    }
    assert_eq!(c.redacted_total(), 0);
}

#[test]
fn only_failed_authentications_have_their_user_checked() {
    let c = chain(REDACT);
    let mut ok = ssh_failed("Hunter2!pass");
    ok.outcome = Outcome::Success;
    let mut sudo = ssh_failed("Hunter2!pass");
    sudo.category = Category::Privilege;
    for mut ev in [ok, sudo] {
        let before = ev.clone();
        let _ = c.apply(&mut ev);
        assert_eq!(ev, before);
    }
    let off = chain("[[filters]]\ntype = \"redact\"\nfailed_login_user = false\n");
    let mut ev = ssh_failed("Hunter2!pass");
    let before = ev.clone();
    let _ = off.apply(&mut ev);
    assert_eq!(ev, before);
}

#[test]
fn real_sshd_line_through_the_parser() {
    let mut parser = auditship_plugins::Parser::new(&auditship_plugins::ParserOptions {
        format: auditship_plugins::Format::Auth,
        timezone: Some("UTC".into()),
        ..Default::default()
    })
    .unwrap();
    let line = "Nov 20 10:01:01 bastion sshd[2003]: Failed password for invalid user Hunter2!pass from 203.0.113.9 port 22 ssh2";
    let mut ev = parser.parse(line.as_bytes());
    assert_eq!(ev.actor.user.as_deref(), Some("Hunter2!pass"));
    let _ = chain(REDACT).apply(&mut ev);
    let json = serde_json::to_string(&ev).unwrap();
    assert!(!json.contains("Hunter2"), "{json}");
    assert!(json.contains(r#""redacted":"true""#), "{json}");
}

#[test]
fn secret_query_parameters_are_redacted_in_url_referrer_and_raw() {
    let c = chain(REDACT);
    let mut ev = web("203.0.113.7", "/api?token=abc&x=1", 200, "curl/8");
    ev.http_mut().referrer = Some("https://a.example/cb?code=1&Access_Token=xyz".into());
    ev.raw = ev.raw.replace(
        "https://example.com/?q=1",
        "https://a.example/cb?code=1&Access_Token=xyz",
    );
    let _ = c.apply(&mut ev);
    assert_eq!(ev.target.url.as_deref(), Some("/api?token=[REDACTED]&x=1"));
    assert_eq!(
        ev.http.as_ref().unwrap().referrer.as_deref(),
        Some("https://a.example/cb?code=1&Access_Token=[REDACTED]")
    );
    assert!(
        ev.raw
            .contains("\"GET /api?token=[REDACTED]&x=1 HTTP/1.1\""),
        "{}",
        ev.raw
    );
    assert!(ev.raw.contains("Access_Token=[REDACTED]\""), "{}", ev.raw);
    assert!(!ev.raw.contains("abc") && !ev.raw.contains("xyz"));
    assert_eq!(ev.fields[REDACTED_FIELD], "true");

    // Extra names, and the built-in rule switched off.
    let extra = chain("[[filters]]\ntype = \"redact\"\nquery_params = [\"SessionID\"]\n");
    let mut ev = web("203.0.113.7", "/a?sessionid=s1&page=2", 200, "curl/8");
    let _ = extra.apply(&mut ev);
    assert_eq!(
        ev.target.url.as_deref(),
        Some("/a?sessionid=[REDACTED]&page=2")
    );
    let off = chain("[[filters]]\ntype = \"redact\"\nurl_query_secrets = false\n");
    let mut ev = web("203.0.113.7", "/a?token=abc", 200, "curl/8");
    let before = ev.clone();
    let _ = off.apply(&mut ev);
    assert_eq!(ev, before);
}

#[test]
fn an_event_with_nothing_secret_is_left_untouched() {
    let c = chain(
        ISSUE_EXAMPLE
            .split("[[filters]]\ntype = \"drop\"")
            .next()
            .unwrap(),
    );
    let mut ev = web("203.0.113.7", "/admin/users?page=2", 200, "Mozilla/5.0");
    let _ = c.apply(&mut ev);
    let keys: Vec<_> = ev.fields.keys().map(String::as_str).collect();
    assert_eq!(keys, ["env", "tags", "team"]);
    assert_eq!(c.redacted_total(), 0);
}

#[test]
fn custom_patterns_apply_to_raw_and_fields() {
    let c = chain(
        r#"
[[filters]]
type = "redact"
patterns = [
  { regex = "(?i)bearer [a-z0-9._-]+", replacement = "Bearer [REDACTED]" },
  { regex = "^sk_live_[0-9a-z]+$" },
  { regex = "(card=)\\d{12}(\\d{4})", replacement = "${1}XXXX$2" },
]
"#,
    );
    let mut ev = AuditEvent::new(
        Category::Web,
        "api_call",
        Outcome::Success,
        r#"{"auth":"bearer eyJhbGciOi.x-y_z","key":"sk_live_abc123","q":"card=4111111111111111"}"#
            .into(),
    );
    ev.fields
        .insert("auth".into(), "bearer eyJhbGciOi.x-y_z".into());
    ev.fields.insert("key".into(), "sk_live_abc123".into());
    ev.fields.insert("q".into(), "card=4111111111111111".into());
    let _ = c.apply(&mut ev);
    assert_eq!(ev.fields["auth"], "Bearer [REDACTED]");
    assert_eq!(ev.fields["key"], REDACTED);
    assert_eq!(ev.fields["q"], "card=XXXX1111");
    // The anchored pattern does not match `raw`, yet what it took out of
    // the field is taken out of `raw` too.
    assert_eq!(
        ev.raw,
        r#"{"auth":"Bearer [REDACTED]","key":"[REDACTED]","q":"card=XXXX1111"}"#
    );
    assert_eq!(ev.fields[REDACTED_FIELD], "true");
}

#[test]
fn listed_fields_are_replaced_whole_and_removed_from_raw() {
    let c = chain("[[filters]]\ntype = \"redact\"\nfields = [\"fields.card\", \"http.referrer\", \"command\"]\n");
    let mut ev = web("203.0.113.7", "/pay", 200, "curl/8");
    ev.fields
        .insert("card".into(), "4111 1111 1111 1111".into());
    ev.raw.push_str(" card=\"4111 1111 1111 1111\"");
    let _ = c.apply(&mut ev);
    assert_eq!(ev.fields["card"], REDACTED);
    assert_eq!(
        ev.http.as_ref().unwrap().referrer.as_deref(),
        Some(REDACTED)
    );
    assert!(!ev.raw.contains("4111"), "{}", ev.raw);
    assert!(!ev.raw.contains("example.com"), "{}", ev.raw);
    assert_eq!(ev.command, None, "absent fields stay absent");
    // A second pass finds nothing new.
    let before = ev.clone();
    let _ = c.apply(&mut ev);
    assert_eq!(ev, before);
    assert_eq!(c.redacted_total(), 1);
}

proptest! {
    #[test]
    fn a_secret_query_value_never_survives(
        value in "[A-Za-z0-9%._~-]{1,24}",
        name in prop::sample::select(SECRET_QUERY_PARAMS.to_vec()),
        upper in any::<bool>(),
    ) {
        let name = if upper { name.to_ascii_uppercase() } else { name.to_owned() };
        let c = chain(REDACT);
        let url = format!("/p?a=1&{name}={value}&b=2");
        let mut ev = web("198.51.100.1", &url, 200, "x");
        let _ = c.apply(&mut ev);
        let want = format!("/p?a=1&{name}=[REDACTED]&b=2");
        prop_assert_eq!(ev.target.url.as_deref(), Some(want.as_str()));
        prop_assert!(ev.raw.contains(&want));
        let leaked = format!("{name}={value}");
        prop_assert!(!ev.raw.contains(&leaked));
    }

    #[test]
    fn a_redacted_failed_login_leaves_no_trace(user in "[!-~]{1,20}") {
        prop_assume!(!SSH_FAILED.replace("USER", "").contains(&user));
        let c = chain(REDACT);
        let mut ev = ssh_failed(&user);
        let _ = c.apply(&mut ev);
        if looks_like_password(&user) {
            prop_assert_eq!(ev.actor.user.as_deref(), Some(REDACTED));
            prop_assert!(!ev.raw.contains(&user), "{}", ev.raw);
        } else {
            prop_assert_eq!(ev.actor.user.as_deref(), Some(user.as_str()));
        }
    }
}
