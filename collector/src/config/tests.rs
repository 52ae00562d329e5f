use std::path::Path;

use super::*;

fn parse_str(s: &str) -> Result<CollectorConfig, ConfigErrors> {
    parse(s, Path::new("/etc/auditship/collector.toml"))
}

const MINIMAL: &str = r#"
data_dir = "data"
listen = "127.0.0.1:8443"
insecure_plain_http = true

[[tokens]]
name = "a"
role = "ingest"
agents = ["web-1"]
token = "0123456789abcdef"
"#;

#[test]
fn every_collector_example_in_config_dir_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("collector") && name.ends_with(".toml") {
            let cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!cfg.tokens.is_empty());
            n += 1;
        }
    }
    assert!(n >= 1, "collector examples missing in {}", dir.display());
}

#[test]
fn minimal_config_gets_defaults_and_relative_paths_follow_the_file() {
    let c = parse_str(MINIMAL).unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/auditship/data"));
    assert!(c.tls.is_none());
    assert_eq!(c.max_body_bytes, 16 << 20);
    assert_eq!(c.max_decompressed_bytes, 128 << 20);
    assert_eq!(c.tokens[0].agents.iter().next().unwrap(), "web-1");
    assert_eq!(
        c.tokens[0].secret,
        Secret::Inline("0123456789abcdef".into())
    );
}

#[test]
fn every_semantic_error_is_reported_with_its_line() {
    let src = r#"data_dir = "d"
listen = "nowhere"

[[tokens]]
name = "r"
role = "reader"
agents = ["x"]
token_sha256 = "abc"
"#;
    let errs = parse_str(src).unwrap_err().to_string();
    for want in [
        "collector.toml:2: listen:",
        "tls: a [tls] section is required",
        "collector.toml:7: tokens[0].agents: only ingest tokens",
        "collector.toml:8: tokens[0].token_sha256: must be 64 hex digits",
        "tokens: at least one [[tokens]] with role = \"ingest\"",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
}

#[test]
fn unknown_keys_and_two_secrets_are_refused() {
    let e = parse_str(&MINIMAL.replace("listen =", "listne =")).unwrap_err();
    assert!(e.to_string().contains("unknown field `listne`"), "{e}");
    let two = MINIMAL.replace(
        "token = \"0123456789abcdef\"",
        "token = \"0123456789abcdef\"\ntoken_file = \"x\"",
    );
    let e = parse_str(&two).unwrap_err().to_string();
    assert!(e.contains("set exactly one of token"), "{e}");
}

#[test]
fn integrity_settings_and_enrolled_agents_are_validated_with_their_keys() {
    let base = "data_dir = \"/var/lib/auditship\"\nlisten = \"127.0.0.1:1\"\ninsecure_plain_http = true\n[[tokens]]\nname = \"i\"\nrole = \"ingest\"\nagents = [\"web-1\"]\ntoken = \"0123456789abcdef\"\n";
    let good = format!("{base}[integrity]\nenrolment = \"strict\"\nsilent_after = \"2m\"\ncheckpoint_every = 10\n[[agents]]\nid = \"web-1\"\npublic_key = \"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"\n");
    let cfg = parse(&good, Path::new("/etc/auditship/collector.toml")).unwrap();
    let i = &cfg.integrity;
    assert_eq!(i.enrolment, crate::enrol::Mode::Strict);
    assert_eq!(i.silent_after, std::time::Duration::from_secs(120));
    assert_eq!(i.checkpoint_every, 10);
    assert_eq!(i.keys().unwrap().len(), 1);

    let bad = format!("{base}[[agents]]\nid = \"@collector\"\npublic_key = \"00\"\n[[agents]]\nid = \"web-2\"\npublic_key = \"zz\"\n[[agents]]\nid = \"web-3\"\n");
    let e = parse(&bad, Path::new("/etc/auditship/collector.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("agents[0].id: must be a non-empty agent id not starting with '@'"),
        "{e}"
    );
    assert!(
        e.contains("agents[1].public_key: a public key is 64 hex digits"),
        "{e}"
    );
    assert!(
        e.contains("agents[2]: set exactly one of public_key and public_key_file"),
        "{e}"
    );
    let reserved = base.replace("[\"web-1\"]", "[\"@collector\"]");
    let e = parse(&reserved, Path::new("/etc/auditship/collector.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("reserved for the collector"), "{e}");
}

#[test]
fn retention_policies_and_archive_are_validated_with_their_lines() {
    let c = parse_str(&format!(
        "{MINIMAL}\n[retention]\ninterval = \"0s\"\n[[retention.policies]]\nname = \"web\"\ncategories = [\"web\"]\nmax_age = \"90d\"\n[retention.archive]\ndir = \"arch\"\n"
    ))
    .unwrap();
    assert!(c.retention.interval.is_zero());
    assert_eq!(c.retention.policies[0].max_age.as_secs(), 90 * 86_400);
    assert_eq!(
        c.retention.archive,
        Some(retention::ArchiveConfig::Dir("/etc/auditship/arch".into()))
    );
    let bad = format!(
        r#"{MINIMAL}
[[retention.policies]]
name = "we b"
max_age = "30s"
[retention.archive]
dir = "a"
[retention.archive.s3]
bucket = "b"
endpoint = "http://127.0.0.1:9000"
object_lock_mode = "forever"
"#
    );
    let errs = parse_str(&bad).unwrap_err().to_string();
    for want in [
        "retention.policies[0].name: must be letters",
        "retention.policies[0]: set categories, sources or both",
        "retention.policies[0].max_age: must be at least 1m",
        "retention.archive: set exactly one of dir and [retention.archive.s3]",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
    let s3 = format!(
        "{MINIMAL}\n[retention.archive.s3]\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:9000\"\nobject_lock_mode = \"forever\"\naccess_key_id = \"k\"\n"
    );
    let errs = parse_str(&s3).unwrap_err().to_string();
    for want in [
        "retention.archive.s3.endpoint: is plain http://",
        "retention.archive.s3.access_key_id: set both",
        "retention.archive.s3.object_lock_mode: set object_lock_mode together",
    ] {
        assert!(errs.contains(want), "missing {want:?} in:\n{errs}");
    }
}

#[test]
fn store_encryption_paths_follow_the_file_and_a_repeated_key_is_located() {
    let with = |t: &str| format!("{MINIMAL}\n[store.encryption]\n{t}\n");
    let c = parse_str(&with(
        "key_file = \"keys/store.key\"\nprevious_key_files = [\"/k/old.key\"]",
    ))
    .unwrap();
    let e = c.encryption.unwrap();
    assert_eq!(e.key_file, Path::new("/etc/auditship/keys/store.key"));
    assert_eq!(e.previous_key_files, [Path::new("/k/old.key")]);
    assert!(
        parse_str(MINIMAL).unwrap().encryption.is_none(),
        "off by default"
    );
    let src = with(
        "key_file = \"keys/store.key\"\nprevious_key_files = [\"/k/old.key\", \"keys/store.key\"]",
    );
    let e = parse_str(&src).unwrap_err();
    let line = src
        .lines()
        .position(|l| l.starts_with("previous_key_files"))
        .unwrap()
        + 1;
    assert!(
        e.0.iter()
            .any(|e| e.key == "store.encryption.previous_key_files[1]"
                && e.line == Some(line)
                && e.message.contains("other than key_file")),
        "{e}"
    );
    let e = parse_str(&with("key_file = \"k\"\nkey = \"00\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `key`"), "{e}");
    let e = parse_str(&with("previous_key_files = []"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("key_file"), "{e}");
}
