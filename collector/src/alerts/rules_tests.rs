//! `[alerts]` validation: every error named by its key path and located
//! to its line, defaults replaced by name.

use std::path::Path;

use super::rules::RawAlerts;
use super::tests::config;

fn errors(text: &str) -> String {
    let raw: RawAlerts = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
    let mut errs = Vec::new();
    raw.validate(Path::new("/etc/auditship"), &mut |k, m| {
        errs.push(format!("{k}: {m}"))
    });
    errs.join("\n")
}

#[test]
fn rule_errors_name_their_key_path() {
    let e = errors(
        r#"
defaults = false
[[rules]]
name = "a b"
kind = "threshold"
when = { actor = { usr = "x" }, src_ip = "10.0.0.300" }
window = "0s"
hours = "08:00-18:00"

[[rules]]
name = "fs"
kind = "first_seen"
when = { action = "ssh_login" }
value = "src_ip"

[[rules]]
name = "fs"
kind = "match"
when = { action = "x" }

[[rules]]
name = "tod"
kind = "time_of_day"
when = { action = "ssh_login" }
hours = "8-18"
utc_offset = "CET"
"#,
    );
    for want in [
        "alerts.rules[0].name: \"a b\" must be letters",
        "alerts.rules[0].when: unknown field \"actor.usr\"",
        "alerts.rules[0].when: src_ip:",
        "alerts.rules[0].threshold: a threshold rule needs threshold",
        "alerts.rules[0].window: a threshold rule needs a window",
        "alerts.rules[0].hours: is not a key of kind = \"threshold\"",
        "alerts.rules[1].key: a first_seen rule needs key",
        "alerts.rules[2].name: \"fs\" names another rule too",
        "alerts.rules[3].hours: \"8-18\" is not a span",
        "alerts.rules[3].utc_offset: \"CET\" is not an offset",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let e = errors(
        r#"
notify_delay = "20s"
dedup = "10s"
[[webhooks]]
name = "w"
url = "http://alerts.example.net/hook"
token = "t"
token_file = "f"
max_tries = 0
"#,
    );
    for want in [
        "alerts.dedup: must be longer than notify_delay",
        "alerts.webhooks[0].url: http:// only to this machine",
        "alerts.webhooks[0].token: set at most one",
        "alerts.webhooks[0].max_tries: must be between 1 and 100",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[test]
fn a_rule_named_like_a_default_replaces_it() {
    let all = config("defaults = true");
    let n = all.rules.len();
    assert!(all.rules.iter().any(|r| r.name == "ssh_brute_force"));
    assert!(
        !all.rules.iter().any(|r| r.name == "ssh_login_off_hours"),
        "shipped disabled"
    );
    let tuned = config(
        r#"
[[rules]]
name = "ssh_brute_force"
kind = "threshold"
when = { action = "ssh_login", outcome = "failure" }
by = ["src_ip"]
threshold = 3
window = "1m"

[[rules]]
name = "ssh_new_source"
kind = "first_seen"
enabled = false
"#,
    );
    assert_eq!(tuned.rules.len(), n - 1);
    let r = tuned
        .rules
        .iter()
        .find(|r| r.name == "ssh_brute_force")
        .unwrap();
    assert!(matches!(
        r.trigger,
        super::rules::Trigger::Count { threshold: 3, .. }
    ));
}

#[test]
fn collector_config_locates_alert_rule_errors_to_their_line() {
    let src = r#"data_dir = "d"
listen = "127.0.0.1:1"
insecure_plain_http = true

[[tokens]]
name = "i"
role = "ingest"
agents = ["a"]
token = "0123456789abcdef"

[alerts]
defaults = false

[[alerts.rules]]
name = "ok"
kind = "match"
when = { action = "x" }

[[alerts.rules]]
name = "bad"
kind = "threshold"
when = { action = "x" }
threshold = 0
window = "1m"
"#;
    let e = crate::config::parse(src, Path::new("/etc/auditship/collector.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("collector.toml:23: alerts.rules[1].threshold: a threshold rule needs"),
        "{e}"
    );
}
