//! The Debian package and the systemd units, built from the test's own
//! `auditship` binary by `packaging/deb/build.sh` (no nested release build):
//! the package's files, modes, conffiles, control fields and maintainer
//! scripts; a real install, reinstall, removal and purge with dpkg into an
//! isolated root (`dpkg --root`, scripts run chrootless with `DPKG_ROOT`);
//! `systemd-analyze verify` on the shipped units over the unpacked package;
//! and the packaged configurations, parsed like every example.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const UNITS: [&str; 2] = ["auditship-agent.service", "auditship-collector.service"];

/// Runs a command; its stdout, or a panic with everything it said.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The package, built once per test run from this test's binary.
fn deb() -> &'static Path {
    static DEB: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DEB.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let printed = run(Command::new(format!("{REPO}/packaging/deb/build.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_auditship"), "--out"])
            .arg(out.path())
            .args(["--compress", "gzip"]));
        let path = PathBuf::from(printed.trim());
        assert!(path.starts_with(out.path()) && path.exists(), "{printed}");
        (out, path)
    });
    path
}

fn arch() -> String {
    run(Command::new("dpkg").arg("--print-architecture"))
        .trim()
        .to_string()
}

/// The workspace version, read from Cargo.toml the way cargo does.
fn cargo_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// `key: value` fields of a control file.
fn control_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `Key=value` lines of a unit file, every value of a repeated key.
fn unit_keys(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((k, v)) = l.split_once('=') {
            keys.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    keys
}

#[test]
fn the_package_holds_the_binary_units_and_configs_with_their_modes() {
    let deb = deb();
    assert_eq!(
        deb.file_name().unwrap().to_str().unwrap(),
        format!("auditship_{}_{}.deb", cargo_version(), arch())
    );
    // `dpkg-deb -c`: "-rwxr-xr-x root/root 123 2026-01-01 00:00 ./usr/bin/auditship"
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb));
    let files: BTreeMap<String, (String, String)> = listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let name = cols[5].trim_start_matches('.').to_string();
            (name, (cols[0].to_string(), cols[1].to_string()))
        })
        .collect();
    let expect = [
        ("/usr/bin/auditship", "-rwxr-xr-x"),
        ("/lib/systemd/system/auditship-agent.service", "-rw-r--r--"),
        (
            "/lib/systemd/system/auditship-collector.service",
            "-rw-r--r--",
        ),
        ("/etc/auditship/agent.toml", "-rw-r--r--"),
        ("/etc/auditship/collector.toml", "-rw-r--r--"),
        ("/usr/share/doc/auditship/copyright", "-rw-r--r--"),
        ("/usr/share/doc/auditship/README.md", "-rw-r--r--"),
        ("/usr/share/doc/auditship/examples/agent.toml", "-rw-r--r--"),
        (
            "/usr/share/doc/auditship/examples/collector.toml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/doc/auditship/examples/alerts.default.toml",
            "-rw-r--r--",
        ),
    ];
    for (path, mode) in expect {
        let (m, owner) = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing:\n{listing}"));
        assert_eq!((m.as_str(), owner.as_str()), (mode, "root/root"), "{path}");
    }
    assert!(
        listing.lines().all(|l| l.contains(" root/root ")),
        "{listing}"
    );

    // Control fields.
    let info = run(Command::new("dpkg-deb").arg("-I").arg(deb));
    let fields = control_fields(&info.replace("\n ", "\n"));
    assert_eq!(fields["Package"], "auditship");
    assert_eq!(fields["Version"], cargo_version());
    assert_eq!(fields["Architecture"], arch());
    assert!(fields["Maintainer"].contains('@'), "{info}");
    assert_eq!(fields["Depends"], "libc6, passwd");
    assert!(
        fields["Description"].starts_with("tamper-evident"),
        "{info}"
    );
    let size: u64 = fields["Installed-Size"].parse().unwrap();
    assert!(size > 1000, "{info}");

    // The control archive: conffiles and maintainer scripts.
    let dir = tempfile::tempdir().unwrap();
    let ctrl = dir.path().join("DEBIAN");
    run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&ctrl));
    assert_eq!(
        fs::read_to_string(ctrl.join("conffiles")).unwrap(),
        "/etc/auditship/agent.toml\n/etc/auditship/collector.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = ctrl.join(script);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{script}");
        run(Command::new("sh").arg("-n").arg(&path));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{script}");
        assert!(text.contains("\nset -e\n"), "{script}");
        // Nothing is ever enabled or started by the package.
        for word in [
            "systemctl enable",
            "systemctl start",
            "systemctl restart",
            "--now",
        ] {
            assert!(!text.contains(word), "{script} runs {word}");
        }
    }

    // The packaged binary is this build's, stripped, and runs.
    let unpacked = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&unpacked));
    let bin = unpacked.join("usr/bin/auditship");
    assert!(
        fs::metadata(&bin).unwrap().len()
            < fs::metadata(env!("CARGO_BIN_EXE_auditship")).unwrap().len()
    );
    let version = run(Command::new(&bin).arg("--version"));
    assert_eq!(version.trim(), format!("auditship {}", cargo_version()));
}

/// A root with just enough for dpkg and the shadow tools: the account
/// files (root, and the group adm) and an empty package database.
fn isolated_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    for d in [
        "etc",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let etc = root.join("etc");
    fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(etc.join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(etc.join("group"), "root:x:0:\nadm:x:4:syslog\n").unwrap();
    fs::write(etc.join("gshadow"), "root:*::\nadm:*::syslog\n").unwrap();
    fs::copy("/etc/login.defs", etc.join("login.defs")).unwrap();
    root
}

fn dpkg(root: &Path, args: &[&str]) -> String {
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends"])
        .args(args))
}

/// (uid, gid) of `name` in the root's passwd.
fn account(root: &Path, name: &str) -> Option<(u32, u32)> {
    fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f[0] == name)
        .map(|f| (f[2].parse().unwrap(), f[3].parse().unwrap()))
}

fn group_line(root: &Path, name: &str) -> Option<String> {
    fs::read_to_string(root.join("etc/group"))
        .unwrap()
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .map(str::to_string)
}

/// Installs the package for real with dpkg into an isolated root, whose
/// maintainer scripts then run against that root's files; the host's
/// accounts are untouched.
#[test]
fn dpkg_installs_reinstalls_removes_and_purges_in_an_isolated_root() {
    if !is_root() {
        eprintln!("skipped: dpkg --root and useradd --prefix need root");
        return;
    }
    let deb = deb().to_str().unwrap();
    let host_passwd = fs::read("/etc/passwd").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = isolated_root(dir.path());

    dpkg(&root, &["-i", deb]);
    let (uid, gid) = account(&root, "auditship").expect("user created");
    assert!(uid < 1000, "a system user: {uid}");
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains(":/var/lib/auditship:/usr/sbin/nologin\n"),
        "{passwd}"
    );
    assert_eq!(
        group_line(&root, "adm").unwrap(),
        "adm:x:4:syslog,auditship"
    );
    assert_eq!(
        group_line(&root, "auditship").unwrap(),
        format!("auditship:x:{gid}:")
    );
    for d in [
        "var/lib/auditship/agent",
        "var/lib/auditship/collector",
        "var/log/auditship",
    ] {
        let m = fs::metadata(root.join(d)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (uid, gid, 0o750),
            "{d}"
        );
    }
    let bin = fs::metadata(root.join("usr/bin/auditship")).unwrap();
    assert_eq!((bin.uid(), bin.mode() & 0o7777), (0, 0o755));
    let status = dpkg(&root, &["-s", "auditship"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    // Nothing enabled: no link in any .wants directory.
    assert!(!root.join("etc/systemd").exists());

    // Reinstalling is idempotent and keeps the operator's config.
    let conf = root.join("etc/auditship/agent.toml");
    let mut edited = fs::read_to_string(&conf).unwrap();
    edited.push_str("# edited by the operator\n");
    fs::write(&conf, &edited).unwrap();
    let accounts = fs::read_to_string(root.join("etc/passwd")).unwrap()
        + &fs::read_to_string(root.join("etc/group")).unwrap();
    dpkg(&root, &["--force-confold", "-i", deb]);
    assert_eq!(fs::read_to_string(&conf).unwrap(), edited);
    assert_eq!(
        fs::read_to_string(root.join("etc/passwd")).unwrap()
            + &fs::read_to_string(root.join("etc/group")).unwrap(),
        accounts
    );

    // Removal keeps configs, state and the user; purge takes them away.
    fs::write(root.join("var/lib/auditship/agent/identity.key"), "k").unwrap();
    dpkg(&root, &["-r", "auditship"]);
    assert!(!root.join("usr/bin/auditship").exists());
    assert!(conf.exists());
    assert!(root.join("var/lib/auditship/agent/identity.key").exists());
    assert!(account(&root, "auditship").is_some());
    dpkg(&root, &["--purge", "auditship"]);
    assert!(!conf.exists());
    assert!(!root.join("var/lib/auditship").exists());
    assert!(!root.join("var/log/auditship").exists());
    assert_eq!(account(&root, "auditship"), None);
    assert_eq!(group_line(&root, "auditship"), None);
    assert_eq!(group_line(&root, "adm").unwrap(), "adm:x:4:syslog");

    assert_eq!(fs::read("/etc/passwd").unwrap(), host_passwd);
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).trim() == "0"
}

/// `systemd-analyze verify` on the units as the package installs them:
/// over the unpacked package (so `ExecStart=/usr/bin/auditship` is the
/// packaged binary), with a copy of this host's systemd units for the
/// targets they refer to and of `/bin/kill` for `ExecReload=`. It must pass
/// without a single warning (unknown keys and bad values are only warnings).
#[test]
fn systemd_analyze_verifies_the_packaged_units() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let system = root.join("lib/systemd/system");
    fs::create_dir_all(&system).unwrap();
    for entry in fs::read_dir("/lib/systemd/system").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "target") {
            fs::copy(&path, system.join(path.file_name().unwrap())).unwrap();
        }
    }
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy("/bin/kill", root.join("bin/kill")).unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(deb()).arg(&root));
    let out = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .arg("verify")
        .args(UNITS)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze runs");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");

    // The same check fails when the binary is missing: it is really looked at.
    fs::remove_file(root.join("usr/bin/auditship")).unwrap();
    let out = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .args(["verify", UNITS[0]])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The hardening and lifecycle settings the units promise, and that they
/// agree with the packaged configs and the binary's defaults.
#[test]
fn the_units_are_hardened_and_agree_with_the_packaged_configs() {
    let agent_cfg =
        auditship_agent::config::load(Path::new(&format!("{REPO}/packaging/etc/agent.toml")))
            .unwrap_or_else(|e| panic!("{e}"));
    let collector_cfg = auditship_collector::config::load(Path::new(&format!(
        "{REPO}/packaging/etc/collector.toml"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    // The agent's default grace, from the real parser.
    let minimal = "state_dir = \"/x\"\n[[inputs]]\ntype = \"file\"\nname = \"a\"\ninclude = [\"/x\"]\n[[outputs]]\ntype = \"stdout\"\n";
    let default_grace = auditship_agent::config::parse(minimal, Path::new("a.toml"))
        .unwrap()
        .shutdown_grace;
    for (unit, role, state_dir, grace) in [
        (
            UNITS[0],
            "agent",
            agent_cfg.state_dir.clone(),
            agent_cfg.shutdown_grace,
        ),
        (
            UNITS[1],
            "collector",
            collector_cfg.data_dir.clone(),
            collector_cfg.shutdown_grace,
        ),
    ] {
        let keys =
            unit_keys(&fs::read_to_string(format!("{REPO}/packaging/systemd/{unit}")).unwrap());
        let one = |k: &str| -> &str {
            let v = keys.get(k).unwrap_or_else(|| panic!("{unit}: no {k}"));
            assert_eq!(v.len(), 1, "{unit}: {k}");
            &v[0]
        };
        assert_eq!(one("Type"), "notify");
        assert_eq!(
            one("ExecStart"),
            format!("/usr/bin/auditship {role} --config /etc/auditship/{role}.toml")
        );
        assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID");
        assert_eq!(one("User"), "auditship");
        assert_eq!(one("Restart"), "on-failure");
        assert_eq!(one("WatchdogSec"), "30s");
        for (k, v) in [
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("NoNewPrivileges", "yes"),
            ("CapabilityBoundingSet", ""),
            ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
            ("LockPersonality", "yes"),
            ("RestrictNamespaces", "yes"),
            ("SystemCallArchitectures", "native"),
            ("MemoryDenyWriteExecute", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectKernelLogs", "yes"),
            ("ProtectControlGroups", "yes"),
            ("ConfigurationDirectory", "auditship"),
            ("LogsDirectory", "auditship"),
        ] {
            assert_eq!(one(k), v, "{unit}: {k}");
        }
        // The config's state lives in the unit's StateDirectory=, the one
        // writable place under ProtectSystem=strict.
        assert_eq!(
            Path::new("/var/lib").join(one("StateDirectory")),
            state_dir,
            "{unit}"
        );
        // Stopping outlasts the drain.
        let stop = parse_secs(one("TimeoutStopSec"));
        assert!(stop > grace && stop > default_grace, "{unit}: {stop:?}");
    }
    let agent =
        unit_keys(&fs::read_to_string(format!("{REPO}/packaging/systemd/{}", UNITS[0])).unwrap());
    assert_eq!(agent["SupplementaryGroups"], ["adm"]);
    assert_eq!(agent["SuccessExitStatus"], ["3"]);
}

fn parse_secs(v: &str) -> Duration {
    Duration::from_secs(v.strip_suffix('s').unwrap().parse().unwrap())
}
