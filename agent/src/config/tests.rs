use std::path::Path;

use super::*;

/// Asserts that each `(key, line)` is among the located errors in `e`.
pub(crate) fn assert_located(e: &ConfigErrors, expected: &[(&str, Option<usize>)]) {
    let keys: Vec<(&str, Option<usize>)> = e.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
    for (key, line) in expected {
        assert!(
            keys.contains(&(key, *line)),
            "{key} at {line:?} missing from {keys:?}"
        );
    }
}

fn parse_str(s: &str) -> Result<AgentConfig, ConfigErrors> {
    parse(s, Path::new("agent.toml"))
}

const MINIMAL: &str = r#"
state_dir = "/tmp/x"

[[inputs]]
type = "file"
name = "auth"
include = ["/var/log/auth.log"]

[[outputs]]
type = "file"
path = "/tmp/x/out.ndjson"
"#;

#[test]
fn every_example_in_config_dir_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if (name.starts_with("agent") || name == "quickstart.toml") && name.ends_with(".toml") {
            let cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!cfg.inputs.is_empty());
            n += 1;
        }
    }
    assert!(n >= 2, "agent examples missing in {}", dir.display());
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse_str(MINIMAL).unwrap();
    assert_eq!(c.queue.dir, Path::new("/tmp/x/queue"));
    assert_eq!(c.queue.fsync, Fsync::Always);
    assert_eq!(c.queue.max_bytes, 1 << 30);
    assert_eq!(c.inputs[0].file().unwrap().max_line_bytes, 64 * 1024);
    assert_eq!(c.outputs[0].name(), "file");
    assert_eq!(c.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.heartbeat, Some(Duration::from_secs(60)));
}

#[test]
fn heartbeat_is_set_disabled_by_zero_and_refused_when_too_short() {
    let with = |v: &str| {
        MINIMAL.replace(
            "state_dir = \"/tmp/x\"",
            &format!("state_dir = \"/tmp/x\"\nheartbeat = \"{v}\""),
        )
    };
    assert_eq!(
        parse_str(&with("15s")).unwrap().heartbeat,
        Some(Duration::from_secs(15))
    );
    assert_eq!(parse_str(&with("0s")).unwrap().heartbeat, None);
    let e = parse_str(&with("10ms")).unwrap_err();
    assert_eq!(e.0[0].key, "heartbeat");
    assert!(e.0[0].message.contains("too short"), "{}", e.0[0]);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let src = MINIMAL.replace("include =", "includes =");
    let e = parse_str(&src).unwrap_err();
    assert_eq!(e.0.len(), 1);
    let e = &e.0[0];
    assert_eq!(e.line, Some(7));
    assert_eq!(e.key, "includes");
    assert!(e.message.contains("unknown field"), "{e}");
    assert!(e.to_string().starts_with("agent.toml:7: includes: "), "{e}");
}

#[test]
fn type_error_is_located() {
    let src = MINIMAL.replace("state_dir = \"/tmp/x\"", "state_dir = 5");
    let e = parse_str(&src).unwrap_err();
    assert_eq!(e.0[0].line, Some(2));
}

#[test]
fn every_semantic_error_is_reported_with_its_line() {
    let src = r#"
state_dir = "/tmp/x"

[queue]
max_bytes = "4MiB"
segment_bytes = "3MiB"

[[inputs]]
type = "file"
name = "a"
include = ["/var/log/[.log"]
format = "nginx"
nginx_log_format = "$remote_addr$remote_user"

[[inputs]]
type = "file"
name = "a"
include = ["/var/log/b.log"]
timezone = "Mars/Olympus"

[[filters]]
type = "drop"
rules = [{ url_regex = "(" }]

[[outputs]]
type = "stdout"

[[outputs]]
type = "stdout"
"#;
    let e = parse_str(src).unwrap_err();
    assert_located(
        &e,
        &[
            ("queue.segment_bytes", Some(6)),
            ("inputs[0].include[0]", Some(11)),
            ("inputs[0].nginx_log_format", Some(13)),
            ("inputs[1].name", Some(17)),
            ("inputs[1].timezone", Some(19)),
            ("filters[0].rules[0].url_regex", Some(23)),
            ("outputs[1].name", Some(28)),
        ],
    );
}

#[test]
fn sizes_and_durations_in_units() {
    let src = MINIMAL.replace(
        "include = [\"/var/log/auth.log\"]",
        "include = [\"/var/log/auth.log\"]\nmax_line_bytes = \"16KiB\"\npartial_line_timeout = \"250ms\"",
    ) + "\n[queue]\nmax_bytes = \"64MiB\"\nsegment_bytes = \"8MiB\"\nfsync = \"interval\"\nfsync_interval = \"1s\"\n";
    let c = parse_str(&src).unwrap();
    assert_eq!(c.inputs[0].file().unwrap().max_line_bytes, 16 << 10);
    assert_eq!(
        c.inputs[0].file().unwrap().partial_line_timeout,
        Duration::from_millis(250)
    );
    assert_eq!(c.queue.max_bytes, 64 << 20);
    assert_eq!(c.queue.fsync, Fsync::Interval(Duration::from_secs(1)));
}

const COLLECTOR: &str = r#"
state_dir = "/tmp/x"

[[inputs]]
type = "file"
name = "auth"
include = ["/var/log/auth.log"]

[[outputs]]
type = "collector"
endpoints = ["http://127.0.0.1:8080"]
token = "t"
"#;

#[test]
fn the_witness_defaults_to_every_minute_into_state_dir() {
    let c = parse_str(COLLECTOR).unwrap();
    let OutputConfig::Collector(o) = &c.outputs[0] else {
        panic!("a collector output");
    };
    assert_eq!(o.witness.interval, Some(Duration::from_secs(60)));
    assert_eq!(o.witness.file, Path::new("/tmp/x/witness.json"));
    assert_eq!(o.witness.collector_key, None);
    let off = parse_str(&format!("{COLLECTOR}witness_interval = \"0s\"\n")).unwrap();
    let OutputConfig::Collector(o) = &off.outputs[0] else {
        panic!("a collector output");
    };
    assert_eq!(o.witness.interval, None);
}

#[test]
fn witness_keys_are_checked() {
    let key = auditship_core::identity::Identity::from_seed([1; 32])
        .public()
        .to_hex();
    let ok = parse_str(&format!("{COLLECTOR}collector_public_key = \"{key}\"\n")).unwrap();
    let OutputConfig::Collector(o) = &ok.outputs[0] else {
        panic!("a collector output");
    };
    assert!(matches!(
        o.witness.collector_key,
        Some(crate::output::CollectorKey::Inline(_))
    ));
    let bad = parse_str(&format!("{COLLECTOR}collector_public_key = \"abcd\"\n")).unwrap_err();
    assert_eq!(bad.0[0].key, "outputs[0].collector_public_key", "{bad}");
    let both = parse_str(&format!(
        "{COLLECTOR}collector_public_key = \"{key}\"\ncollector_public_key_file = \"/k\"\n"
    ))
    .unwrap_err();
    assert!(both.0[0].message.contains("at most one"), "{both}");
    // Two collector outputs cannot share the witness file.
    let two = format!(
        "{COLLECTOR}\n[[outputs]]\ntype = \"collector\"\nname = \"b\"\nendpoints = [\"http://127.0.0.1:9\"]\ntoken = \"t\"\n"
    );
    let e = parse_str(&two).unwrap_err();
    assert_eq!(e.0[0].key, "outputs[1].witness_file", "{e}");
    let fixed = format!("{two}witness_file = \"/tmp/x/witness-b.json\"\n");
    assert!(parse_str(&fixed).is_ok());
}

#[test]
fn compression_defaults_to_zstd_level_1_and_gzip_level_still_means_gzip() {
    use auditship_core::wire::Compression;
    let compression = |extra: &str| match parse_str(&format!("{COLLECTOR}{extra}\n")) {
        Ok(c) => match &c.outputs[0] {
            OutputConfig::Collector(o) => Ok(o.compression),
            _ => panic!("a collector output"),
        },
        Err(e) => Err(e),
    };
    let ok = |extra: &str| compression(extra).unwrap_or_else(|e| panic!("{extra}: {e}"));
    assert_eq!(ok(""), Compression::Zstd(1));
    assert_eq!(
        ok("compression = \"zstd\"\ncompression_level = 19"),
        Compression::Zstd(19)
    );
    assert_eq!(ok("compression = \"gzip\""), Compression::Gzip(1));
    assert_eq!(
        ok("compression = \"gzip\"\ncompression_level = 6"),
        Compression::Gzip(6)
    );
    assert_eq!(ok("compression = \"none\""), Compression::None);
    // Configs from before zstd keep their meaning.
    assert_eq!(ok("gzip_level = 4"), Compression::Gzip(4));
    assert_eq!(
        ok("compression = \"gzip\"\ngzip_level = 9"),
        Compression::Gzip(9)
    );
    // Errors name the key and its line (`extra` starts at line 13).
    let bad = |extra: &str, key: &str, words: &str| {
        let e = compression(extra).unwrap_err();
        let name = format!("{} ", key.rsplit('.').next().unwrap());
        let line = 13 + extra.lines().position(|l| l.starts_with(&name)).unwrap();
        assert_located(&e, &[(key, Some(line))]);
        assert!(e.to_string().contains(words), "{extra}: {e}");
    };
    bad(
        "compression = \"brotli\"",
        "outputs[0].compression",
        "is not zstd, gzip or none",
    );
    bad(
        "compression_level = 20",
        "outputs[0].compression_level",
        "20 must be -7 to 19 for zstd",
    );
    bad(
        "compression_level = -8",
        "outputs[0].compression_level",
        "-8 must be -7 to 19 for zstd",
    );
    bad(
        "compression_level = 0",
        "outputs[0].compression_level",
        "0 is not a zstd level",
    );
    bad(
        "compression = \"gzip\"\ncompression_level = 0",
        "outputs[0].compression_level",
        "0 must be 1 to 9 for gzip",
    );
    bad(
        "gzip_level = 10",
        "outputs[0].gzip_level",
        "10 must be 1 to 9 for gzip",
    );
    bad(
        "compression = \"zstd\"\ngzip_level = 3",
        "outputs[0].gzip_level",
        "use compression_level",
    );
    bad(
        "compression_level = 3\ngzip_level = 3",
        "outputs[0].gzip_level",
        "not both",
    );
    bad(
        "compression = \"none\"\ncompression_level = 3",
        "outputs[0].compression_level",
        "no level",
    );
}

#[test]
fn journald_inputs_are_checked_with_their_keys() {
    let src = r#"state_dir = "/tmp/x"

[[inputs]]
type = "journald"
name = "journal"
matches = ["_SYSTEMD_UNIT=ssh.service", "sshd"]
directory = "/var/log/journal"
files = ["/srv/*.journal"]
max_line_bytes = "10"

[[inputs]]
type = "journald"
name = "journal"

[[outputs]]
type = "stdout"
"#;
    let e = parse_str(src).unwrap_err();
    assert_located(
        &e,
        &[
            ("inputs[0].matches[1]", Some(6)),
            ("inputs[0].files", Some(8)),
            ("inputs[0].max_line_bytes", Some(9)),
            ("inputs[1].name", Some(13)),
        ],
    );
    let ok = parse_str(
        "state_dir = \"/tmp/x\"\n[[inputs]]\ntype = \"journald\"\nname = \"j\"\nunits = [\"ssh.service\"]\n[[outputs]]\ntype = \"stdout\"\n",
    )
    .unwrap();
    match &ok.inputs[0].kind {
        crate::config::InputKind::Journald(j) => {
            assert_eq!(j.units, ["ssh.service"]);
            assert_eq!(j.max_line_bytes, 1 << 20);
        }
        other => panic!("not a journald input: {other:?}"),
    }
    assert_eq!(
        ok.inputs[0].parser.format,
        auditship_plugins::Format::Journald
    );
}

#[test]
fn metrics_default_to_localhost_and_a_bad_address_is_located() {
    let base = "state_dir = \"/tmp/x\"\n[[inputs]]\ntype = \"file\"\nname = \"a\"\ninclude = [\"/x\"]\n[[outputs]]\ntype = \"stdout\"\n";
    let c = parse_str(base).unwrap();
    assert_eq!(c.metrics, Some("127.0.0.1:9750".parse().unwrap()));
    let off = parse_str(&format!("{base}[metrics]\nenabled = false\n")).unwrap();
    assert_eq!(off.metrics, None);
    let e = parse_str(&format!("{base}[metrics]\naddress = \"localhost\"\n")).unwrap_err();
    let keys: Vec<(&str, Option<usize>)> = e.0.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(keys, [("metrics.address", Some(9))]);
}

#[test]
fn several_syntax_and_type_errors_are_all_reported() {
    let src = r#"state_dir = "/tmp/x"
shutdown_grace = "soon"

[queue]
max_bytez = "1GiB"

[[inputs]]
type = "file"
name = "a"
include = ["/var/log/auth.log"]
colour = "blue"

[[outputs]]
type = "stdout"
"#;
    let e = parse_str(src).unwrap_err();
    let got: Vec<(Option<usize>, &str)> = e.0.iter().map(|e| (e.line, e.key.as_str())).collect();
    let mut got = got;
    got.sort();
    assert_eq!(
        got,
        [
            (Some(2), "shutdown_grace"),
            (Some(5), "max_bytez"),
            (Some(11), "colour"),
        ],
        "{e}"
    );
}

#[test]
fn variables_come_from_the_environment_with_defaults() {
    // A variable name no other test or the environment uses.
    std::env::set_var("AUDITSHIP_TEST_STATE_7F3A", "/srv/agent-state");
    let src = "state_dir = \"${AUDITSHIP_TEST_STATE_7F3A}\"\nagent_id = \"${AUDITSHIP_TEST_UNSET_7F3A:-web-9}\"\n[[inputs]]\ntype = \"file\"\nname = \"a\"\ninclude = [\"/x\"]\n[[outputs]]\ntype = \"file\"\npath = \"${AUDITSHIP_TEST_UNSET_7F3A}/out\"\n";
    let e = parse_str(src).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!((e.0[0].line, e.0[0].key.as_str()), (Some(9), "path"));
    assert!(e.0[0]
        .message
        .contains("AUDITSHIP_TEST_UNSET_7F3A is not set"));
    let ok = parse_str(&src.replace("${AUDITSHIP_TEST_UNSET_7F3A}/out", "/tmp/out")).unwrap();
    assert_eq!(ok.state_dir, std::path::Path::new("/srv/agent-state"));
    assert_eq!(ok.agent_id, "web-9");
}

#[test]
fn group_timeout_is_for_auditd_only_and_bounded() {
    let with = |format: &str, t: &str| {
        MINIMAL.replace(
            "include = [\"/var/log/auth.log\"]",
            &format!("include = [\"/var/log/audit/audit.log\"]\nformat = \"{format}\"\ngroup_timeout = \"{t}\""),
        )
    };
    let c = parse_str(&with("auditd", "250ms")).unwrap();
    assert_eq!(c.inputs[0].parser.format, Format::Auditd);
    assert_eq!(
        c.inputs[0].parser.group_timeout,
        Some(Duration::from_millis(250))
    );
    let e = parse_str(&with("auth", "1s")).unwrap_err();
    assert_eq!(e.0[0].key, "inputs[0].group_timeout");
    assert!(e.0[0].message.contains("auditd"), "{}", e.0[0]);
    let e = parse_str(&with("auditd", "1h")).unwrap_err();
    assert_eq!(e.0[0].key, "inputs[0].group_timeout");
    let default = MINIMAL.replace("name = \"auth\"", "name = \"audit\"\nformat = \"auditd\"");
    assert_eq!(
        parse_str(&default).unwrap().inputs[0].parser.group_timeout,
        None
    );
}

#[test]
fn queue_encryption_is_off_by_default_and_validated() {
    assert!(parse_str(MINIMAL).unwrap().queue.encryption.is_none());
    let with = |t: &str| {
        MINIMAL.replace(
            "state_dir = \"/tmp/x\"",
            &format!("state_dir = \"/tmp/x\"\n[queue.encryption]\n{t}\n"),
        )
    };
    let c = parse_str(&with(
        "key_file = \"/run/credentials/a/queue-key\"\nprevious_key_files = [\"/k/old\"]",
    ))
    .unwrap();
    let e = c.queue.encryption.unwrap();
    assert_eq!(e.key_file, Path::new("/run/credentials/a/queue-key"));
    assert_eq!(e.previous_key_files, [Path::new("/k/old")]);
    let e = parse_str(&with(
        "key_file = \"/k/a\"\nprevious_key_files = [\"/k/a\"]",
    ))
    .unwrap_err();
    assert_located(&e, &[("queue.encryption.previous_key_files[0]", Some(5))]);
    let e = parse_str(&with("keyfile = \"/k/a\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `keyfile`"), "{e}");
}
