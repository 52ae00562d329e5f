//! Configuration: TOML into [`FilterConfig`] (stage one), then validation
//! and its error messages (stage two).

use std::collections::BTreeMap;

use super::*;

// ---- configuration, stage one ----

#[test]
fn the_issue_example_deserializes() {
    let got = configs(ISSUE_EXAMPLE);
    let want = vec![
        FilterConfig::Enrich(EnrichConfig {
            host: Some("web-01".into()),
            fields: BTreeMap::from([
                ("env".into(), "prod".into()),
                ("team".into(), "payments".into()),
            ]),
            tags: vec!["pci".into()],
            ..EnrichConfig::default()
        }),
        FilterConfig::Redact(RedactConfig {
            query_params: vec!["sessionid".into()],
            fields: vec!["fields.card".into()],
            patterns: vec![PatternConfig {
                regex: "(?i)bearer [a-z0-9._-]+".into(),
                replacement: "Bearer [REDACTED]".into(),
            }],
            ..RedactConfig::default()
        }),
        FilterConfig::Drop(DropConfig {
            rules: vec![
                DropRuleConfig {
                    action: Some("http_request".into()),
                    url_prefix: Some("/healthz".into()),
                    ..DropRuleConfig::default()
                },
                DropRuleConfig {
                    program: Some("CRON".into()),
                    ..DropRuleConfig::default()
                },
                DropRuleConfig {
                    user_agent_regex: Some("kube-probe".into()),
                    ..DropRuleConfig::default()
                },
            ],
        }),
    ];
    assert_eq!(got, want);
    let kinds: Vec<_> = got.iter().map(FilterConfig::kind).collect();
    assert_eq!(kinds, ["enrich", "redact", "drop"]);
    assert!(build_chain(&got).is_ok());
}

#[test]
fn redact_defaults_turn_the_built_in_rules_on() {
    let got = configs("[[filters]]\ntype = \"redact\"\n");
    assert_eq!(got, [FilterConfig::Redact(RedactConfig::default())]);
    let FilterConfig::Redact(r) = &got[0] else {
        unreachable!()
    };
    assert!(r.failed_login_user && r.url_query_secrets);
    let p = configs("[[filters]]\ntype = \"redact\"\npatterns = [{ regex = \"x+\" }]\n");
    let FilterConfig::Redact(r) = &p[0] else {
        unreachable!()
    };
    assert_eq!(r.patterns[0].replacement, REDACTED);
}

#[test]
fn unknown_keys_and_types_are_rejected() {
    for bad in [
        "[[filters]]\ntype = \"enrich\"\nhots = \"web-01\"\n",
        "[[filters]]\ntype = \"redact\"\nquery_param = [\"x\"]\n",
        "[[filters]]\ntype = \"redact\"\npatterns = [{ regex = \"x\", replace = \"y\" }]\n",
        "[[filters]]\ntype = \"drop\"\nrules = [{ programm = \"CRON\" }]\n",
        "[[filters]]\ntype = \"rename\"\n",
        "[[filters]]\nhost = \"web-01\"\n",
        "[[filters]]\ntype = \"drop\"\n",
        "[[filters]]\ntype = \"drop\"\nrules = [{ category = \"webb\" }]\n",
        "[[filters]]\ntype = \"drop\"\nrules = [{ status = [\"200\"] }]\n",
        "[[filters]]\ntype = \"drop\"\nrules = [{ status = [70000] }]\n",
    ] {
        let err = toml::from_str::<Doc>(bad).expect_err(bad);
        assert!(!err.to_string().is_empty());
    }
    let err = toml::from_str::<Doc>("[[filters]]\ntype = \"enrich\"\nhots = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("hots"), "{err}");
}

// ---- configuration, stage two ----

#[test]
fn a_rule_without_conditions_is_an_error() {
    let e = chain_err("[[filters]]\ntype = \"drop\"\nrules = [{ program = \"CRON\" }, {}]\n");
    assert_eq!(
        e,
        "filters[0].rules[1]: a drop rule needs at least one condition"
    );
    let e = chain_err("[[filters]]\ntype = \"drop\"\nrules = []\n");
    assert!(e.starts_with("filters[0].rules: "), "{e}");
}

#[test]
fn a_bad_regex_names_the_filter_and_key() {
    let doc = r#"
[[filters]]
type = "enrich"
host = "h"
[[filters]]
type = "redact"
[[filters]]
type = "drop"
rules = [ { url_regex = "(unclosed" } ]
"#;
    let err = try_chain(doc).unwrap_err();
    assert!(matches!(err, FilterError::Regex { .. }), "{err:?}");
    assert_eq!((err.index(), err.key()), (2, "rules[0].url_regex"));
    let msg = err.to_string();
    assert!(
        msg.starts_with("filters[2].rules[0].url_regex: regex parse error"),
        "{msg}"
    );
    // The same through build_chain.
    assert_eq!(build_chain(&configs(doc)).unwrap_err().to_string(), msg);

    let e = chain_err(
        "[[filters]]\ntype = \"redact\"\npatterns = [{ regex = \"a\" }, { regex = \"[\" }]\n",
    );
    assert!(
        e.starts_with("filters[0].patterns[1].regex: regex parse error"),
        "{e}"
    );
    for (key, rule) in [
        ("user_agent_regex", "{ user_agent_regex = \"*\" }"),
        ("raw_regex", "{ raw_regex = \"(?P<x\" }"),
    ] {
        let e = chain_err(&format!("[[filters]]\ntype = \"drop\"\nrules = [{rule}]\n"));
        assert!(
            e.starts_with(&format!("filters[0].rules[0].{key}: ")),
            "{e}"
        );
    }
}

#[test]
fn other_bad_values_name_their_key() {
    let cases = [
        (
            "type = \"drop\"\nrules = [{ src_ip = \"10.1.0.0/8\" }]",
            "filters[0].rules[0].src_ip: \"10.1.0.0/8\" has host bits set; did you mean \"10.0.0.0/8\"?",
        ),
        (
            "type = \"drop\"\nrules = [{ src_ip = \"localhost\" }]",
            "filters[0].rules[0].src_ip: \"localhost\" is not an IP address or CIDR block",
        ),
        (
            "type = \"drop\"\nrules = [{ status = [] }]",
            "filters[0].rules[0].status: empty list: this condition would never match",
        ),
        (
            "type = \"drop\"\nrules = [{ status = [200, 42] }]",
            "filters[0].rules[0].status: 42 is not an HTTP status (100-599)",
        ),
        (
            "type = \"redact\"\nfields = [\"actor.user\", \"password\"]",
            "filters[0].fields[1]: unknown field \"password\"",
        ),
        (
            "type = \"redact\"\nfields = [\"fields.\"]",
            "filters[0].fields[0]: unknown field",
        ),
        (
            "type = \"redact\"\nurl_query_secrets = false\nquery_params = [\"sid\"]",
            "filters[0].query_params: has no effect",
        ),
        (
            "type = \"redact\"\nquery_params = [\"a=b\"]",
            "filters[0].query_params[0]: ",
        ),
        (
            "type = \"redact\"\npatterns = [{ regex = \"x*\" }]",
            "filters[0].patterns[0].regex: \"x*\" can match empty text",
        ),
        (
            "type = \"redact\"\npatterns = [{ regex = \"\\\\b\" }]",
            "filters[0].patterns[0].regex: ",
        ),
        (
            "type = \"redact\"\npatterns = [{ regex = \"(a)b\", replacement = \"$2\" }]",
            "filters[0].patterns[0].replacement: $2 names no capture group",
        ),
        (
            "type = \"redact\"\npatterns = [{ regex = \"(a)b\", replacement = \"$1x\" }]",
            "filters[0].patterns[0].replacement: $1x names no capture group",
        ),
        (
            "type = \"enrich\"\ntags = [\"a,b\"]",
            "filters[0].tags[0]: ",
        ),
        (
            "type = \"enrich\"\nfields = { tags = \"x\" }",
            "filters[0].fields.tags: use the `tags` key",
        ),
        (
            "type = \"enrich\"\nfields = { redacted = \"false\" }",
            "filters[0].fields.redacted: reserved",
        ),
        (
            "type = \"enrich\"\nhost = \"\"",
            "filters[0].host: ",
        ),
    ];
    for (body, want) in cases {
        let e = chain_err(&format!("[[filters]]\n{body}\n"));
        assert!(e.starts_with(want), "{body}\n got: {e}\nwant: {want}");
    }
    // Good replacements: groups that exist, named groups, `$$`, `${1}x`.
    chain(
        r#"
[[filters]]
type = "redact"
patterns = [
  { regex = "(a)(?P<n>b)", replacement = "$1${n}$$ ${1}x $n" },
  { regex = "c", replacement = "$ {}" },
]
"#,
    );
}

#[test]
fn host_from_system_needs_a_host_name() {
    let doc = "[[filters]]\ntype = \"enrich\"\nhost_from_system = true\n";
    let cfg = &configs(doc)[0];
    assert!(cfg.needs_system_host());
    let err = cfg.validate(0, None).unwrap_err();
    assert!(matches!(err, FilterError::Hostname { index: 0, .. }));
    assert!(err.to_string().starts_with("filters[0].host_from_system: "));
    let Filter::Enrich(f) = cfg.validate(0, Some(" node-7\n")).unwrap() else {
        unreachable!()
    };
    let mut ev = cron();
    ev.host = None;
    f.apply(&mut ev);
    assert_eq!(ev.host.as_deref(), Some("node-7"));

    // An explicit host wins and needs no system name.
    let cfg =
        &configs("[[filters]]\ntype = \"enrich\"\nhost = \"web-01\"\nhost_from_system = true\n")[0];
    assert!(!cfg.needs_system_host());
    assert!(cfg.validate(0, None).is_ok());
    // The real machine has a host name.
    assert!(system_hostname().is_some_and(|h| !h.is_empty() && h.trim() == h));
}
