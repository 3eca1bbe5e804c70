#!/usr/bin/env bash
# The MSI under Wine (wine msiexec), in a fresh WINEPREFIX removed afterwards:
#   1. msiexec /i regmon.msi /qn: files in place, regmon.conf made from the
#      default, the service registered (automatic, LocalSystem, the command
#      line of `regmon service install`) and running, the product
#      registered; --version and --verify of the installed program;
#   2. (the service's first scan recorded the baseline; service stopped)
#      an administrator edits regmon.conf; a registry value changes;
#   3. msiexec /i of the next version (the same binary, a version one patch
#      higher, a changed regmon.conf.default): the old product is gone,
#      regmon.conf kept as edited, regmon.conf.default the new one; the
#      restarted service's first scan reports exactly the one change (the
#      baseline was kept); then the old version is refused
#      and another build of the same version replaces this one;
#   4. msiexec /x /qn: the program and the service gone; regmon.conf, the
#      baseline and the logs kept.
# regmon.exe needs, under Wine 8 only, the bcryptprimitives.dll shim
# (ProcessPrng), which the MSI must not ship (real Windows has it, and a DLL
# of that name beside the .exe would replace the system's). The test puts
# the shim in the prefix's system32 with a DLL override for regmon.exe
# alone, before the install: so the MSI's StartServices really starts the
# service (Wine's msi fails the install and rolls it back when a service
# does not start, as Windows does).
# What Wine shows differently: Wine's InstallServices writes ImagePath
# without quotes around the .exe path (Windows Installer quotes it); the
# test checks the arguments part and that the service runs.
#
#   scripts/msi-wine-test.sh      uses dist/ from scripts/package.sh (runs it
#                                 when the MSI is missing or older than the
#                                 release regmon.exe); scripts/wine-test.sh
#                                 runs it last
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
log() { printf '==> %s\n' "$*" >&2; }
# grep -q for pipes: reads all its input, so that under pipefail the writer
# never dies of SIGPIPE when the match comes early.
q() { grep "$@" >/dev/null; }
fail() { printf 'msi-wine-test.sh: FAILED: %s\n' "$*" >&2; exit 1; }
START=$(date +%s)
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=${REGMON_DIST:-$ROOT/dist}
WIN=x86_64-pc-windows-gnu

MSI1=$(ls "$DIST"/regmon-*-x64.msi 2>/dev/null | head -1 || true)
if [ -z "$MSI1" ] || [ "$TGT/$WIN/release/regmon.exe" -nt "$MSI1" ]; then
    log "no MSI in $DIST, or older than regmon.exe: scripts/package.sh"
    scripts/package.sh
    MSI1=$(ls "$DIST"/regmon-*-x64.msi | head -1)
fi
VERSION=$(basename "$MSI1" | sed 's/^regmon-\(.*\)-x64\.msi$/\1/')
SHIM=$TGT/$WIN/release/bcryptprimitives.dll
STAGED_EXE=$TGT/release/pkg/regmon.exe
[ -f "$SHIM" ] || fail "no $SHIM (scripts/wine-setup.sh builds it)"
[ -f "$STAGED_EXE" ] || fail "no $STAGED_EXE (scripts/package.sh stages it)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/regmon-msitest.XXXXXX")
PREFIX=$WORK/prefix
cleanup() {
    WINEPREFIX="$PREFIX" wineserver -k 2>/dev/null || true
    WINEPREFIX="$PREFIX" wineserver -w 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
export WINEPREFIX=$PREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
WINE=/usr/lib/wine/wine64
[ -x "$WINE" ] || WINE=$(command -v wine64 || command -v wine)

# The next version: the same binary, the patch number one higher, and a
# default configuration that differs (to see which copy an upgrade keeps).
NEXT=$(echo "$VERSION" | awk -F. '{printf "%d.%d.%d", $1, $2, $3 + 1}')
mkdir -p "$WORK/next"
cp "$STAGED_EXE" "$WORK/next/regmon.exe"
{ cat packaging/windows/regmon.conf; echo "# default of $NEXT"; } >"$WORK/next/regmon.conf"
AFTER=$(echo "$NEXT" | awk -F. '{printf "%d.%d.%d", $1, $2, $3 + 1}')
(cd "$WORK/next" && wixl -a x64 -D Version="$NEXT" -D NextVersion="$AFTER" -D Exe=regmon.exe -D Conf=regmon.conf \
    -o "$WORK/next.msi" "$ROOT/packaging/windows/regmon.wxs")
# Another build of that version (a new product code, the same version).
(cd "$WORK/next" && wixl -a x64 -D Version="$NEXT" -D NextVersion="$AFTER" -D Exe=regmon.exe -D Conf=regmon.conf \
    -o "$WORK/rebuild.msi" "$ROOT/packaging/windows/regmon.wxs")

log "wineboot (WINEPREFIX=$PREFIX, $("$WINE" --version 2>/dev/null || echo wine))"
"$WINE" wineboot -i >/dev/null 2>&1 || true
# Wait until the prefix' first start has settled: a service created by
# msiexec while wineboot's services.exe is still loading is lost
# (StartServices then fails with 1060 and the install rolls back).
wineserver -w
DRIVE=$PREFIX/drive_c
# The shim, for regmon.exe only (see above).
cp "$SHIM" "$DRIVE/windows/system32/bcryptprimitives.dll"
"$WINE" reg add 'HKCU\Software\Wine\AppDefaults\regmon.exe\DllOverrides' \
    /v bcryptprimitives /t REG_SZ /d native /f >/dev/null 2>&1
wineserver -w
mkdir -p "$DRIVE/msitest"
cp "$MSI1" "$DRIVE/msitest/this.msi"
cp "$WORK/next.msi" "$DRIVE/msitest/next.msi"
cp "$WORK/rebuild.msi" "$DRIVE/msitest/rebuild.msi"
DIR="$DRIVE/Program Files/regmon"
W() { "$WINE" "$@"; }
reg_query() { W reg query "$@" 2>/dev/null | tr -d '\r'; }
SVC='HKLM\System\CurrentControlSet\Services\regmon'
UNINSTALL='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall'
# The products registered (DisplayName regmon), as "DisplayVersion" lines.
products() { reg_query "$UNINSTALL" /s | awk '/^HKEY/ {k=$0} /DisplayName.*regmon/ {n[k]=1} /DisplayVersion/ {v[k]=$NF} END {for (k in n) print v[k]}' | sort; }
regmon() { (cd "$DIR" && W "C:\\Program Files\\regmon\\regmon.exe" "$@"); }

# --- 1. install -----------------------------------------------------------
# A value for the service's first scan to put in the baseline.
W reg add 'HKLM\Software\Policies' /v RegmonMsiTest /t REG_SZ /d one /f >/dev/null
log "1. wine msiexec /i regmon-$VERSION-x64.msi /qn"
W msiexec /i 'C:\msitest\this.msi' /qn /l*v 'C:\msitest\install.log' || fail "msiexec /i: exit $?"
for f in regmon.exe regmon.conf.default regmon.conf; do
    [ -f "$DIR/$f" ] || fail "no $DIR/$f after the install"
done
[ -d "$DIR/data" ] && [ -d "$DIR/log" ] || fail "no data\\ or log\\ folder"
[ ! -e "$DIR/bcryptprimitives.dll" ] || fail "the MSI ships the Wine-only shim"
cmp -s "$DIR/regmon.conf" "$DIR/regmon.conf.default" || fail "regmon.conf is not the default"
cmp -s "$DIR/regmon.exe" "$STAGED_EXE" || fail "regmon.exe is not the staged binary"
svc=$(reg_query "$SVC") || fail "no $SVC after the install"
echo "$svc" | sed 's/^/    /' >&2
echo "$svc" | q -F 'service run --name regmon -c "C:\Program Files\regmon\regmon.conf"' \
    || fail "the service's ImagePath"
echo "$svc" | q 'Start.*REG_DWORD.*0x2' || fail "the service does not start automatically"
echo "$svc" | q 'ObjectName.*LocalSystem' || fail "the service is not LocalSystem"
echo "$svc" | q 'Type.*REG_DWORD.*0x10' || fail "the service is not its own process"
[ "$(products)" = "$VERSION" ] || fail "products registered: '$(products)'"
grep -a -i 'StartServices\|Failed to start' "$DRIVE/msitest/install.log" 2>/dev/null | tr -d '\r' | tail -3 | sed 's/^/    install.log: /' >&2 || true

v=$(regmon --version | tr -d '\r')
log "   installed: $v"
echo "$v" | q "^regmon $VERSION (" || fail "regmon.exe --version: $v"
log "   regmon.exe -c regmon.conf --verify"
regmon -c 'C:\Program Files\regmon\regmon.conf' --verify >"$WORK/verify.txt" 2>&1 \
    || fail "--verify of the installed configuration: $(tr -d '\r' <"$WORK/verify.txt")"

# The install started the service: it logs so, and it scans (the events
# file appears; the policy key is empty, so the file may stay empty).
wait_for() { # FILE TEXT SECONDS
    local i
    for i in $(seq "$3"); do
        grep -aq "$2" "$1" 2>/dev/null && return 0
        sleep 1
    done
    return 1
}
wait_for "$DIR/log/regmon.log" 'started as a service' 60 \
    || fail "the service did not log 'started as a service' in log\\regmon.log: $(tr -d '\r' <"$DIR/log/regmon.log" 2>/dev/null)"
log "   service: $(grep -a 'started as a service' "$DIR/log/regmon.log" | head -1 | tr -d '\r')"
wait_for "$DIR/log/regmon.log" 'baseline built' 60 || fail "the service's first scan did not build the baseline"
W sc query regmon 2>/dev/null | tr -d '\r' | q 'RUNNING' || fail "sc query regmon: not RUNNING"
log "   wine net stop regmon"
W net stop regmon >/dev/null 2>&1 || fail "net stop regmon"
W sc query regmon 2>/dev/null | tr -d '\r' | q 'STOPPED' || fail "sc query regmon: not STOPPED after net stop"

# --- 2. a baseline, an edited configuration, a change -------------------
log "2. baseline, an administrator's edit, a registry change"
# Scans are the service's only: a console run under Wine finds another
# baseline key than the service (see the notes) and would restart the
# baseline.
ls "$DIR/data/"*.sqlite >/dev/null 2>&1 || fail "no baseline in data\\ after a scan"
EVENTS_BEFORE=0
[ -f "$DIR/log/regmon.json" ] && EVENTS_BEFORE=$(wc -l <"$DIR/log/regmon.json")
printf '# edited by the administrator\r\n' >>"$DIR/regmon.conf"
W reg add 'HKLM\Software\Policies' /v RegmonMsiTest /t REG_SZ /d two /f >/dev/null

# --- 3. upgrade -----------------------------------------------------------
log "3. wine msiexec /i regmon-$NEXT-x64.msi /qn (upgrade)"
W msiexec /i 'C:\msitest\next.msi' /qn /l*v 'C:\msitest\upgrade.log' || fail "msiexec /i (upgrade): exit $?"
[ "$(products)" = "$NEXT" ] || fail "products registered after the upgrade: '$(products | tr '\n' ' ')'"
[ -f "$DIR/regmon.exe" ] || fail "no regmon.exe after the upgrade"
grep -q '^# edited by the administrator' "$DIR/regmon.conf" || fail "the upgrade replaced regmon.conf"
grep -q "^# default of $NEXT" "$DIR/regmon.conf.default" || fail "regmon.conf.default is not the new default"
reg_query "$SVC" | q -F 'service run --name regmon' || fail "no service after the upgrade"
# The upgraded service's first scan reports the change made before the
# upgrade, from the kept baseline: one CHANGE, not a NEW for every value.
new_events() { tail -n +"$((EVENTS_BEFORE + 1))" "$DIR/log/regmon.json" | tr -d '\r'; }
for _ in $(seq 60); do
    new_events | q RegmonMsiTest && break
    sleep 1
done
log "   wine net stop regmon"
W net stop regmon >/dev/null 2>&1 || fail "net stop regmon (after the upgrade)"
new_events=$(new_events)
echo "$new_events" | sed 's/^/    /' >&2
[ "$(echo "$new_events" | grep -c .)" = 1 ] || fail "expected one event after the upgrade, got: $new_events"
echo "$new_events" | q '"EventType":"CHANGE"' && echo "$new_events" | q 'RegmonMsiTest' \
    || fail "the event after the upgrade is not the CHANGE of RegmonMsiTest"

log "   a downgrade is refused; another build of the same version replaces it"
if W msiexec /i 'C:\msitest\this.msi' /qn >/dev/null 2>&1; then fail "msiexec /i of $VERSION over $NEXT succeeded"; fi
[ "$(products)" = "$NEXT" ] || fail "products after the refused downgrade: '$(products | tr '\n' ' ')'"
W msiexec /i 'C:\msitest\rebuild.msi' /qn || fail "msiexec /i (same version, another build): exit $?"
[ "$(products)" = "$NEXT" ] || fail "products after a same-version rebuild: '$(products | tr '\n' ' ')'"
grep -q '^# edited by the administrator' "$DIR/regmon.conf" || fail "the rebuild replaced regmon.conf"

# --- 4. uninstall ---------------------------------------------------------
log "4. wine msiexec /x /qn"
# Under Wine the MSI's StopServices does not wait for regmon.exe to exit,
# and the .exe still in use is left behind: the test stops the service
# first (on Windows, ServiceControl Wait="yes" waits for it).
W net stop regmon >/dev/null 2>&1 || fail "net stop regmon (before the uninstall)"
W msiexec /x 'C:\msitest\rebuild.msi' /qn /l*v 'C:\msitest\uninstall.log' || fail "msiexec /x: exit $?"
[ -z "$(products)" ] || fail "still registered after the uninstall: $(products)"
for f in regmon.exe regmon.conf.default; do
    [ ! -e "$DIR/$f" ] || fail "$f is left after the uninstall"
done
if reg_query "$SVC" >/dev/null; then fail "the service is still registered after the uninstall"; fi
grep -q '^# edited by the administrator' "$DIR/regmon.conf" || fail "the uninstall removed regmon.conf"
ls "$DIR/data/"*.sqlite >/dev/null 2>&1 || fail "the uninstall removed the baseline"
[ -s "$DIR/log/regmon.json" ] && [ -s "$DIR/log/regmon.log" ] || fail "the uninstall removed the logs"
log "   kept: $(cd "$DIR" && find . -type f | sort | tr '\n' ' ')"
log "msi-wine-test.sh: all checks passed in $(($(date +%s) - START)) s"
