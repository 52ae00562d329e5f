#!/bin/sh
# Builds the auditship Debian package from an already-built binary, with
# nothing but dpkg-deb (and strip, when present): no cargo-deb, no debhelper,
# no nested cargo build.
#
#   packaging/deb/build.sh [--binary PATH] [--out DIR] [--compress xz|gzip|none] [--no-strip]
#
# Defaults: --binary target/release/auditship, --out target/debian,
# --compress xz. Prints the path of the .deb it wrote:
# DIR/auditship_<version>_<arch>.deb, the version from the workspace's
# Cargo.toml and the architecture from dpkg --print-architecture.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
binary=$repo/target/release/auditship
out=$repo/target/debian
compress=xz
strip=yes

while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --compress) compress=$2; shift 2 ;;
        --no-strip) strip=no; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

[ -x "$binary" ] || { echo "build.sh: no executable at $binary (cargo build --release first)" >&2; exit 1; }
version=$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version *= *"\([^"]*\)".*/\1/p' "$repo/Cargo.toml")
[ -n "$version" ] || { echo "build.sh: no version in $repo/Cargo.toml" >&2; exit 1; }
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
doc=$root/usr/share/doc/auditship

install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
    "$root/etc/auditship" "$doc/examples"
install -m 0755 "$binary" "$root/usr/bin/auditship"
if [ "$strip" = yes ] && command -v strip >/dev/null; then
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/auditship"
fi
install -m 0644 "$repo/packaging/systemd/auditship-agent.service" \
    "$repo/packaging/systemd/auditship-collector.service" "$root/lib/systemd/system/"
install -m 0644 "$repo/packaging/etc/agent.toml" "$repo/packaging/etc/collector.toml" \
    "$root/etc/auditship/"
install -m 0644 "$repo/README.md" "$doc/README.md"
install -m 0644 "$repo/packaging/README.md" "$doc/README.packaging.md"
install -m 0644 "$here/copyright" "$doc/copyright"
install -m 0644 "$repo/config/agent.toml" "$repo/config/collector.toml" \
    "$repo/config/alerts.default.toml" "$doc/examples/"

for script in postinst prerm postrm; do
    install -m 0755 "$here/$script" "$root/DEBIAN/$script"
done
printf '%s\n' /etc/auditship/agent.toml /etc/auditship/collector.toml > "$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"

size=$(du -sk "$root/usr" "$root/lib" "$root/etc" | awk '{ s += $1 } END { print s }')
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    "$here/control.in" > "$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

mkdir -p "$out"
deb=$out/auditship_${version}_${arch}.deb
dpkg-deb --root-owner-group -Z"$compress" --build "$root" "$deb" >/dev/null
echo "$deb"
