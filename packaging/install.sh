#!/bin/sh
# Installs auditship on a Linux system without dpkg: the binary, the systemd
# units, the default configurations (never overwriting existing ones), the
# system user and group auditship (in group adm, to read /var/log) and the
# state and log directories. It enables and starts nothing.
#
#   packaging/install.sh [--binary PATH] [--no-user] [--dry-run]
#
#   --binary PATH  the auditship binary (default: target/release/auditship)
#   --no-user      do not create the user and group, nor chown directories
#   --dry-run      print what would be done, change nothing
#
# Environment: DESTDIR (stage into this root instead of /; the user is then
# created in DESTDIR/etc/passwd with useradd --prefix, and systemd is not
# reloaded), BINDIR (default /usr/bin; the units' ExecStart follows it),
# UNITDIR (default /etc/systemd/system).
#
# Then: edit /etc/auditship/agent.toml (or collector.toml), and
#   systemctl enable --now auditship-agent
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
binary=$repo/target/release/auditship
user=yes
dry=no
dest=${DESTDIR:-}
bindir=${BINDIR:-/usr/bin}
unitdir=${UNITDIR:-/etc/systemd/system}

while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --no-user) user=no; shift ;;
        --dry-run) dry=yes; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$binary" ] || { echo "install.sh: no executable at $binary (cargo build --release first)" >&2; exit 1; }

# Runs a command, or only shows it with --dry-run.
act() {
    if [ "$dry" = yes ]; then
        echo "would run: $*"
    else
        "$@"
    fi
}

# Whether the account database (DESTDIR's files when staging) has `name`.
has() { # passwd|group name
    if [ -n "$dest" ]; then
        [ -f "$dest/etc/$1" ] && awk -F: -v n="$2" '$1 == n { f = 1 } END { exit !f }' "$dest/etc/$1"
    else
        getent "$1" "$2" >/dev/null
    fi
}
members() { # group
    if [ -n "$dest" ]; then
        awk -F: -v n="$1" '$1 == n { print $4 }' "$dest/etc/group"
    else
        getent group "$1" | cut -d: -f4
    fi
}

act install -d -m 0755 "$dest$bindir" "$dest$unitdir" "$dest/etc/auditship"
act install -m 0755 "$binary" "$dest$bindir/auditship"
for unit in auditship-agent.service auditship-collector.service; do
    if [ "$dry" = yes ]; then
        echo "would write: $dest$unitdir/$unit (ExecStart=$bindir/auditship ...)"
    else
        sed "s|^ExecStart=/usr/bin/auditship |ExecStart=$bindir/auditship |" \
            "$here/systemd/$unit" > "$dest$unitdir/$unit"
        chmod 0644 "$dest$unitdir/$unit"
    fi
done
for conf in agent.toml collector.toml; do
    target=$dest/etc/auditship/$conf
    if [ -e "$target" ]; then
        echo "keeping $target; the shipped one is $target.dist"
        act install -m 0644 "$here/etc/$conf" "$target.dist"
    else
        act install -m 0644 "$here/etc/$conf" "$target"
    fi
done

owner=
if [ "$user" = yes ]; then
    prefix=
    [ -z "$dest" ] || prefix="--prefix $dest"
    if ! has group auditship; then
        act groupadd $prefix --system auditship
    fi
    if ! has passwd auditship; then
        act useradd $prefix --system --gid auditship --no-create-home \
            --home-dir /var/lib/auditship --shell /usr/sbin/nologin \
            --comment "auditship audit-log pipeline" auditship
    fi
    if has group adm && ! members adm | tr ',' '\n' | grep -qx auditship; then
        act usermod $prefix --append --groups adm auditship
    fi
    if [ "$dry" = no ]; then
        if [ -n "$dest" ]; then
            owner=$(awk -F: '$1 == "auditship" { print $3 ":" $4 }' "$dest/etc/passwd")
        else
            owner=auditship:auditship
        fi
    fi
fi
act install -d -m 0755 "$dest/var/lib/auditship"
for d in /var/lib/auditship/agent /var/lib/auditship/collector /var/log/auditship; do
    act install -d -m 0750 "$dest$d"
    [ -z "$owner" ] || act chown "$owner" "$dest$d"
done

if [ -z "$dest" ] && [ -d /run/systemd/system ]; then
    act systemctl daemon-reload
fi
cat <<DONE
auditship installed${dest:+ into $dest}. Nothing is enabled or started. Next:
  edit /etc/auditship/agent.toml (or collector.toml), then
  auditship validate --config /etc/auditship/agent.toml
  systemctl enable --now auditship-agent
DONE
