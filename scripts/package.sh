#!/usr/bin/env bash
# The release artifacts in one command, into dist/ (or $REGMON_DIST):
#   regmon_<version>-1_amd64.deb         Debian package (cargo deb)
#   regmon-<version>-x64.msi             Windows installer (wixl, from
#                                        packaging/windows/regmon.wxs)
#   regmon-<version>-windows-x86_64.zip  regmon.exe + regmon.conf + README
#   regmon-<version>-linux-x86_64.debug  separate debug symbols of the
#   regmon-<version>-windows-x86_64.debug   stripped binaries (gdb finds
#                                        them through their debug link)
#   SHA256SUMS                           sha256sum -c SHA256SUMS
# and prints their sizes. The binaries are the `cargo build --release`
# outputs (built when missing or stale, for Linux and x86_64-pc-windows-gnu),
# stripped on copy: the build outputs are left as they are.
#
#   scripts/package.sh           build the artifacts
#   scripts/package.sh --check   and check them: lintian, the MSI's tables
#                                (msiinfo), the zip and the checksums; as
#                                root, install the .deb on this machine, run
#                                regmon --version and --verify, check the
#                                conffile survives a reinstall, purge it.
#                                (The MSI under Wine: scripts/msi-wine-test.sh.)
# Installs what is missing: wixl, msitools, lintian, zip (apt), cargo-deb.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
CHECK=false
case "${1:-}" in
    --check) CHECK=true ;;
    "") ;;
    *) echo "usage: scripts/package.sh [--check]" >&2; exit 2 ;;
esac
log() { printf '==> %s\n' "$*" >&2; }
# grep -q for pipes: reads all its input, so that under pipefail the writer
# never dies of SIGPIPE when the match comes early.
q() { grep "$@" >/dev/null; }
fail() { printf 'package.sh: FAILED: %s\n' "$*" >&2; exit 1; }
START=$(date +%s)

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=${REGMON_DIST:-$ROOT/dist}
WIN=x86_64-pc-windows-gnu

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | q 'install ok installed'; }
missing=()
for p in wixl msitools lintian zip; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2
fi
if ! cargo deb --version >/dev/null 2>&1; then
    log "cargo install cargo-deb --locked"
    cargo install cargo-deb --locked
fi

# The binaries: no-ops on a warm target folder.
log "cargo build --release -p regmon"
cargo build --release -p regmon
eval "$(scripts/wine-setup.sh --env)"
log "cargo build --release --target $WIN -p regmon"
cargo build --release --target "$WIN" -p regmon
BIN=$TGT/release/regmon
EXE=$TGT/$WIN/release/regmon.exe

VERSION_LINE=$("$BIN" --version)
VERSION=$(echo "$VERSION_LINE" | awk '{print $2}')
log "$VERSION_LINE"
case "$VERSION" in [0-9]*.[0-9]*.[0-9]*) ;; *) fail "no version in '$VERSION_LINE'" ;; esac
# The .exe must come from the same commit (strings are UTF-8 in the binary).
COMMIT=$(echo "$VERSION_LINE" | sed -n 's/.*(\(commit [0-9a-f]*\|unknown commit\),.*/\1/p')
grep -aq "$COMMIT" "$EXE" || fail "$EXE does not say '$COMMIT' (stale Windows build?)"

rm -rf "$DIST"
mkdir -p "$DIST"
PKG=$TGT/release/pkg
rm -rf "$PKG"
mkdir -p "$PKG/man" "$PKG/completions"

# Stripped copies, the debug information kept aside with a debug link.
LINUX_DEBUG=regmon-$VERSION-linux-x86_64.debug
WIN_DEBUG=regmon-$VERSION-windows-x86_64.debug
objcopy --only-keep-debug "$BIN" "$DIST/$LINUX_DEBUG"
# .comment (compiler versions) goes too (lintian: binary-has-unneeded-section).
objcopy --strip-all --remove-section=.comment --add-gnu-debuglink="$DIST/$LINUX_DEBUG" "$BIN" "$PKG/regmon"
x86_64-w64-mingw32-objcopy --only-keep-debug "$EXE" "$DIST/$WIN_DEBUG"
x86_64-w64-mingw32-objcopy --strip-all --remove-section=.comment --add-gnu-debuglink="$DIST/$WIN_DEBUG" "$EXE" "$PKG/regmon.exe"

# Man pages and completions from the CLI definition (regmon generate).
"$PKG/regmon" generate man "$PKG/man" >/dev/null
gzip -9n "$PKG"/man/*.1
"$PKG/regmon" generate completions "$PKG/completions" >/dev/null
# The sample hive the Debian configuration watches as installed.
mkdir -p "$PKG/sample"
"$PKG/regmon" hive sample "$PKG/sample/SOFTWARE" >/dev/null

log "cargo deb"
# --no-build: the binary above; --no-strip: already stripped.
cargo deb -p regmon --no-build --no-strip --output "$DIST" >&2
DEB=$(ls "$DIST"/regmon_*.deb)

log "wixl"
MSI=$DIST/regmon-$VERSION-x64.msi
# wixl resolves Source= relative to the current folder (absolute paths
# fail), and only warns about attributes it does not know: a warning fails.
mkdir -p "$PKG/msi"
cp "$PKG/regmon.exe" packaging/windows/regmon.conf "$PKG/msi/"
NEXT=$(echo "$VERSION" | awk -F. '{printf "%d.%d.%d", $1, $2, $3 + 1}')
(cd "$PKG/msi" && wixl -a x64 -D Version="$VERSION" -D NextVersion="$NEXT" -D Exe=regmon.exe -D Conf=regmon.conf \
    -o "$MSI" "$ROOT/packaging/windows/regmon.wxs") 2>"$PKG/wixl.err" || { cat "$PKG/wixl.err" >&2; fail "wixl"; }
if grep -q . "$PKG/wixl.err"; then cat "$PKG/wixl.err" >&2; fail "wixl warned"; fi

ZIP=$DIST/regmon-$VERSION-windows-x86_64.zip
ZDIR=$PKG/zip/regmon-$VERSION-windows-x86_64
mkdir -p "$ZDIR"
cp "$PKG/regmon.exe" "$ZDIR/"
cp packaging/windows/regmon.conf "$ZDIR/regmon.conf"
cp README.md "$ZDIR/"
(cd "$PKG/zip" && zip -q -X -r "$ZIP" "regmon-$VERSION-windows-x86_64")

(cd "$DIST" && sha256sum -- *.deb *.msi *.zip *.debug >SHA256SUMS)

size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
log "artifacts in $DIST ($VERSION_LINE)"
{
    printf '  %-44s %10s  %s\n' "release build, Linux (with debug info)" "$(size "$BIN")" "$(mib "$(size "$BIN")")"
    printf '  %-44s %10s  %s\n' "release build, Windows (with debug info)" "$(size "$EXE")" "$(mib "$(size "$EXE")")"
    printf '  %-44s %10s  %s\n' "regmon, stripped" "$(size "$PKG/regmon")" "$(mib "$(size "$PKG/regmon")")"
    printf '  %-44s %10s  %s\n' "regmon.exe, stripped" "$(size "$PKG/regmon.exe")" "$(mib "$(size "$PKG/regmon.exe")")"
    for f in "$DIST"/*; do
        printf '  %-44s %10s  %s\n' "$(basename "$f")" "$(size "$f")" "$(mib "$(size "$f")")"
    done
} >&2

$CHECK || { log "done in $(($(date +%s) - START)) s"; exit 0; }

# ---------------------------------------------------------------------------
log "check: SHA256SUMS"
(cd "$DIST" && sha256sum --quiet -c SHA256SUMS) || fail "checksums"

log "check: the zip"
unzip -l "$ZIP" | q "regmon-$VERSION-windows-x86_64/regmon.exe" || fail "regmon.exe not in $ZIP"

log "check: the MSI's tables (msiinfo)"
# Each table read whole first: `msiinfo ... | grep -q` under pipefail fails
# when grep stops reading early.
msi_table() { local t; t=$(msiinfo export "$MSI" "$1") || fail "msiinfo export $1"; printf '%s\n' "$t"; }
msi_table File | q $'\tregmon.exe\t' || fail "MSI: no regmon.exe in the File table"
msi_table File | q $'\tregmon.conf.default\t' || fail "MSI: no regmon.conf.default"
msi_table ServiceInstall | q $'^Service\tregmon\t' || fail "MSI: no ServiceInstall row"
# Start=auto (2), LocalSystem, the arguments of `regmon service install`.
msi_table ServiceInstall | grep -P '^Service\tregmon\t[^\t]*\t16\t2\t1\t[^\t]*\t[^\t]*\tLocalSystem\t' >/dev/null \
    || fail "MSI: the service is not own-process, automatic, LocalSystem: $(msi_table ServiceInstall | tail -1)"
msi_table ServiceInstall | q -F 'service run --name regmon -c "[INSTALLDIR]regmon.conf"' \
    || fail "MSI: the service's arguments"
msi_table ServiceControl | q $'^ServiceControl\tregmon\t' || fail "MSI: no ServiceControl row"
msi_table CustomAction | q '^DefaultConfigCopy' || fail "MSI: no DefaultConfigCopy action"
msi_table InstallExecuteSequence | q '^DefaultConfigCopy' || fail "MSI: DefaultConfigCopy not scheduled"
# Every version below the next patch version (this one included) is
# removed first; a newer one is detected (and stops the install).
msi_table Upgrade | q -P "FA10F6B4-7B37-425A-AA21-44210F3FB015\}\t0\.0\.0\t$NEXT\t\t256\t" || fail "MSI: the Upgrade row: $(msi_table Upgrade)"
msi_table LaunchCondition | q 'NOT REGMON_NEWER_FOUND' || fail "MSI: no downgrade condition"
msi_table InstallExecuteSequence | q -P '^RemoveExistingProducts\t\t1401\r?$' || fail "MSI: RemoveExistingProducts not right after InstallValidate"
suminfo=$(msiinfo suminfo "$MSI")
echo "$suminfo" | q 'x64' || fail "MSI: not an x64 package: $suminfo"

log "check: lintian"
# Errors and warnings fail; the info tags are printed for the record. Left
# out: initial-upload-closes-no-bugs (the package is not uploaded to
# Debian: there is no ITP bug to close).
lintian --display-level '>=info' --suppress-tags initial-upload-closes-no-bugs \
    --fail-on error,warning "$DEB" >&2 || fail "lintian"

if [ "$(id -u)" -ne 0 ] || ! command -v dpkg >/dev/null; then
    log "NOT CHECKED: installing the .deb needs root and dpkg (run as root)"
    [ -n "${CI:-}" ] && fail "CI runs as root: the install check must run"
    exit 0
fi
if dpkg-query -W -f='${Status}' regmon 2>/dev/null | q 'ok installed'; then
    fail "a package regmon is already installed here: the check would replace it (dpkg --purge regmon first)"
fi
log "check: dpkg -i $DEB"
DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" >&2 || fail "dpkg -i"
trap 'dpkg --purge regmon >/dev/null 2>&1 || true' EXIT
installed_version=$(/usr/bin/regmon --version)
log "  /usr/bin/regmon --version: $installed_version"
[ "$installed_version" = "$VERSION_LINE" ] || fail "installed --version '$installed_version' != '$VERSION_LINE'"
log "  regmon -c /etc/regmon/regmon.conf --verify"
/usr/bin/regmon -c /etc/regmon/regmon.conf --verify >&2 || fail "--verify of the packaged configuration"
getent passwd regmon >/dev/null || fail "no user regmon"
# What the service runs, as its user (systemd is not running here: the
# unit's sandbox is checked by systemd-analyze verify below, not enforced).
log "  runuser -u regmon -- regmon -c /etc/regmon/regmon.conf --once"
(cd / && runuser -u regmon -- /usr/bin/regmon -c /etc/regmon/regmon.conf --once) >&2 || fail "--once as the user regmon"
[ -f /var/lib/regmon/regmon-regmon.sqlite ] || fail "no baseline in /var/lib/regmon after --once"
for d in /var/lib/regmon /var/log/regmon; do
    [ "$(stat -c %U:%a "$d")" = "regmon:750" ] || fail "$d: $(stat -c %U:%a "$d")"
done
dpkg-query -W -f='${Conffiles}\n' regmon | q '/etc/regmon/regmon.conf' || fail "regmon.conf is not a conffile"
[ -f /usr/share/man/man1/regmon.1.gz ] || fail "no man page"
man -l /usr/share/man/man1/regmon.1.gz 2>/dev/null | q -- '--verify' || zcat /usr/share/man/man1/regmon.1.gz | q 'verify' || fail "the man page does not describe --verify"
[ -f /usr/share/bash-completion/completions/regmon ] || fail "no bash completion"
[ -f /lib/systemd/system/regmon.service ] || [ -f /usr/lib/systemd/system/regmon.service ] || fail "no regmon.service"
if command -v systemd-analyze >/dev/null; then
    unit=$(ls /lib/systemd/system/regmon.service /usr/lib/systemd/system/regmon.service 2>/dev/null | head -1)
    log "  systemd-analyze verify $unit"
    systemd-analyze verify "$unit" >&2 || fail "systemd-analyze verify"
fi
log "  a changed conffile survives a reinstall"
echo '# changed by the administrator' >>/etc/regmon/regmon.conf
DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$DEB" >/dev/null || fail "dpkg -i (again)"
grep -q '^# changed by the administrator' /etc/regmon/regmon.conf || fail "the conffile was replaced"
log "check: dpkg --purge regmon"
dpkg --purge regmon >&2 || fail "dpkg --purge"
trap - EXIT
for p in /usr/bin/regmon /etc/regmon /var/lib/regmon /var/log/regmon /usr/share/man/man1/regmon.1.gz; do
    [ ! -e "$p" ] || fail "$p is left after the purge"
done
log "package.sh --check: all checks passed in $(($(date +%s) - START)) s"
