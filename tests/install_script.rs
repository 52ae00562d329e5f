//! `packaging/install.sh`, the install for Linux systems without dpkg, run
//! for real with `DESTDIR` into temporary roots: the tree it builds, that
//! it never overwrites a config, that `BINDIR` moves the units'
//! `ExecStart`, that `--dry-run` changes nothing, and (as root) that it
//! creates the user in the staged root's account files.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs install.sh with `DESTDIR=dest` and more arguments; its stdout.
fn install(dest: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new(format!("{REPO}/packaging/install.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_auditship")])
        .args(args)
        .env("DESTDIR", dest)
        .env_remove("BINDIR")
        .env_remove("UNITDIR")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn shipped(rel: &str) -> String {
    fs::read_to_string(format!("{REPO}/packaging/{rel}")).unwrap()
}

#[test]
fn install_sh_stages_the_tree_and_keeps_existing_configs() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path();
    install(dest, &[], &["--no-user"]);

    let bin = dest.join("usr/bin/auditship");
    assert_eq!(mode(&bin), 0o755);
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("auditship "));
    for unit in ["auditship-agent.service", "auditship-collector.service"] {
        let path = dest.join("etc/systemd/system").join(unit);
        assert_eq!(mode(&path), 0o644);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            shipped(&format!("systemd/{unit}"))
        );
    }
    for conf in ["agent.toml", "collector.toml"] {
        let path = dest.join("etc/auditship").join(conf);
        assert_eq!(mode(&path), 0o644);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            shipped(&format!("etc/{conf}"))
        );
    }
    for d in [
        "var/lib/auditship/agent",
        "var/lib/auditship/collector",
        "var/log/auditship",
    ] {
        assert_eq!(mode(&dest.join(d)), 0o750, "{d}");
    }

    // Again, over an edited config: kept, the shipped one beside it.
    let conf = dest.join("etc/auditship/agent.toml");
    fs::write(&conf, "# the operator's\n").unwrap();
    let said = install(dest, &[], &["--no-user"]);
    assert!(said.contains("keeping"), "{said}");
    assert_eq!(fs::read_to_string(&conf).unwrap(), "# the operator's\n");
    assert_eq!(
        fs::read_to_string(dest.join("etc/auditship/agent.toml.dist")).unwrap(),
        shipped("etc/agent.toml")
    );
}

#[test]
fn install_sh_bindir_moves_exec_start() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), &[("BINDIR", "/usr/local/bin")], &["--no-user"]);
    assert!(dir.path().join("usr/local/bin/auditship").exists());
    assert!(!dir.path().join("usr/bin").exists());
    let unit = fs::read_to_string(
        dir.path()
            .join("etc/systemd/system/auditship-collector.service"),
    )
    .unwrap();
    assert!(unit.contains(
        "\nExecStart=/usr/local/bin/auditship collector --config /etc/auditship/collector.toml\n"
    ));
}

#[test]
fn install_sh_dry_run_changes_nothing_and_says_what_it_would_do() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("root");
    let said = install(&dest, &[], &["--dry-run"]);
    assert!(!dest.exists(), "a dry run created {}", dest.display());
    for expect in [
        "would run: install -m 0755",
        "/usr/bin/auditship",
        "would write: ",
        "auditship-agent.service",
        "would run: groupadd --prefix",
        "would run: useradd --prefix",
        "/var/lib/auditship/agent",
    ] {
        assert!(said.contains(expect), "{expect:?} not in:\n{said}");
    }
}

/// With the user step, into a staged root that has account files: the user
/// and group are created there (`useradd --prefix`), in adm, and own the
/// state directories. Needs root, as useradd does.
#[test]
fn install_sh_creates_the_user_in_the_staged_root() {
    let root_uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if String::from_utf8_lossy(&root_uid).trim() != "0" {
        eprintln!("skipped: useradd --prefix needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path();
    let etc = dest.join("etc");
    fs::create_dir_all(&etc).unwrap();
    fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(etc.join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(etc.join("group"), "root:x:0:\nadm:x:4:\n").unwrap();
    fs::write(etc.join("gshadow"), "root:*::\nadm:*::\n").unwrap();
    fs::copy("/etc/login.defs", etc.join("login.defs")).unwrap();
    let host_passwd = fs::read("/etc/passwd").unwrap();

    install(dest, &[], &[]);
    let passwd = fs::read_to_string(etc.join("passwd")).unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("auditship:"))
        .unwrap_or_else(|| panic!("{passwd}"));
    let f: Vec<&str> = line.split(':').collect();
    let (uid, gid): (u32, u32) = (f[2].parse().unwrap(), f[3].parse().unwrap());
    assert_eq!(f[6], "/usr/sbin/nologin");
    let group = fs::read_to_string(etc.join("group")).unwrap();
    assert!(group.contains("\nadm:x:4:auditship\n"), "{group}");
    let m = fs::metadata(dest.join("var/lib/auditship/agent")).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid, gid));

    // Idempotent: a second run adds nothing.
    install(dest, &[], &[]);
    assert_eq!(fs::read_to_string(etc.join("passwd")).unwrap(), passwd);
    assert_eq!(fs::read_to_string(etc.join("group")).unwrap(), group);
    assert_eq!(fs::read("/etc/passwd").unwrap(), host_passwd);
}
