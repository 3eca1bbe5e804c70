#!/usr/bin/env bash
# The Windows build and the Wine tests: installs what is missing
# (scripts/wine-setup.sh), builds regmon.exe for x86_64-pc-windows-gnu,
# checks clippy for that target, runs the unit tests built for Windows under
# Wine, then crates/regmon/tests/wine.rs against regmon.exe under wine64, in
# a fresh WINEPREFIX removed afterwards, then the MSI under Wine
# (scripts/msi-wine-test.sh).
#
#   scripts/wine-test.sh            build + clippy + tests
#   scripts/wine-test.sh --bench    also the benchmark: a scan of
#                                   HKLM\Software (Recursive) beside
#                                   'wine reg export HKLM\Software', and
#                                   the Incremental hinted rescan
#   scripts/wine-test.sh --bench-only   the build and the benchmark alone
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET=x86_64-pc-windows-gnu
log() { printf '==> %s\n' "$*" >&2; }

eval "$(scripts/wine-setup.sh --env)"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

BENCH_ONLY=; [ "${1:-}" = "--bench-only" ] && BENCH_ONLY=1
if [ -z "$BENCH_ONLY" ]; then
    log "cargo clippy --target $TARGET --workspace --all-targets -- -D warnings"
    cargo clippy --target "$TARGET" --workspace ${REGMON_WIN_CLIPPY_ARGS:-} --all-targets -- -D warnings
fi

log "cargo build --release --target $TARGET -p regmon"
cargo build --release --target "$TARGET" -p regmon
EXE="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/regmon.exe"
[ -f "$(dirname "$EXE")/bcryptprimitives.dll" ] || { log "shim missing beside $EXE"; exit 1; }

WINE=/usr/lib/wine/wine64
[ -x "$WINE" ] || WINE=$(command -v wine64 || command -v wine)
export WINE

PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/regmon-wineprefix.XXXXXX")
cleanup() {
    WINEPREFIX="$PREFIX" wineserver -k 2>/dev/null || true
    WINEPREFIX="$PREFIX" wineserver -w 2>/dev/null || true
    rm -rf "$PREFIX"
}
trap cleanup EXIT
export WINEDEBUG=-all
# No Mono / Gecko install prompts when a prefix is created (no network).
export WINEDLLOVERRIDES="mscoree,mshtml="
# The prefix made whole before any test runs in it (seen once in a prefix
# made by the first test binary: a unit test that restarts its runtime got
# an event it never gets in a prefix already made).
WINEPREFIX="$PREFIX" "$WINE" wineboot --init >/dev/null 2>&1 || true
WINEPREFIX="$PREFIX" wineserver -w

if [ -z "$BENCH_ONLY" ]; then
# The unit tests of the three crates and nxconf's integration tests, built
# for Windows and run under Wine (cargo's runner); test binaries live in
# deps/, so the shim goes there too.
cp "$(dirname "$EXE")/bcryptprimitives.dll" "$(dirname "$EXE")/deps/"
log "Windows unit tests under Wine (WINEPREFIX=$PREFIX, $("$WINE" --version 2>/dev/null || echo wine))"
WINEPREFIX="$PREFIX" CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE" \
    cargo test --release --target "$TARGET" -p hive -p nxconf -p regmon --lib --bins
WINEPREFIX="$PREFIX" CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE" \
    cargo test --release --target "$TARGET" -p nxconf --tests
# Users' hives loaded and unloaded under HKEY_USERS (regmon's library in the
# test process, which calls RegLoadKeyW / RegUnLoadKeyW itself).
WINEPREFIX="$PREFIX" CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE" \
    cargo test --release --target "$TARGET" -p regmon --test users_live
# Incremental on the live registry: hinted scans report what full scans do.
WINEPREFIX="$PREFIX" CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE" \
    cargo test --release --target "$TARGET" -p regmon --test incremental_live

log "Wine tests of regmon.exe (WINEPREFIX=$PREFIX)"
REGMON_EXE="$EXE" REGMON_WINEPREFIX="$PREFIX" \
    cargo test --release -p regmon --test wine -- --include-ignored --test-threads 2

# The MSI: install, upgrade, uninstall with wine msiexec in a prefix of its
# own (the artifacts of scripts/package.sh, made when missing).
log "scripts/msi-wine-test.sh"
scripts/msi-wine-test.sh
fi
case "${1:-}" in --bench | --bench-only) ;; *) exit 0 ;; esac

# ---------------------------------------------------------------------------
# Events go to a file: om_file cannot open 'NUL' under Wine (error 87), and
# a --once run with an event it cannot deliver retries it with backoff (1 s,
# 2 s) before it exits, which the rescan's time would include (Wine's own
# background writes to HKLM\Software in a new prefix are real changes).
#
# Benchmark: regmon's scan of HKLM\Software (Recursive, SHA1 of every value)
# beside 'reg export HKLM\Software', which walks the same keys through the
# same API (RegEnumKeyExW / RegEnumValueW) and writes them out. Both run in
# the same prefix, best of $RUNS runs each after a warm-up.
RUNS=${REGMON_BENCH_RUNS:-5}
B=$(mktemp -d "${TMPDIR:-/tmp}/regmon-winebench.XXXXXX")
cat >"$B/bench.conf" <<'CONF'
<Input regmon>
Module im_regmon
RegValue 'HKLM\Software\*'
Recursive TRUE
ScanInterval 0
</Input>
<Output null>
Module om_file
File 'bench-out.log'
</Output>
<Route r>
Path regmon => null
</Route>
CONF
# The baseline key and side records in a folder of the bench's own, removed
# with the baseline for a first run (otherwise the side record remembers the
# removed baseline: a restart notice, which om_file cannot write to NUL).
export REGMON_KEY_DIR='C:\regmon-bench-keys'
w() { (cd "$B" && WINEPREFIX="$PREFIX" "$WINE" "$@"); }
now() { date +%s.%N; }
min() { echo "$1 $2" | awk '{print ($1 < $2) ? $1 : $2}'; }
regmon_first() { rm -rf "$B/regmon-cache" "$PREFIX/drive_c/regmon-bench-keys" "$B/bench-out.log"; w "$EXE" -c bench.conf --once; }
regmon_scan() { w "$EXE" -c bench.conf --once; }
reg_export() { rm -f "$B/export.reg"; w reg export 'HKLM\Software' export.reg /y; }
w cmd /c exit
regmon_first >/dev/null 2>&1; reg_export >/dev/null 2>&1 # warm-up
# Interleaved runs, so that a change in the machine's load hits both alike;
# the best of each.
t_first=1e9 t_regmon=1e9 t_export=1e9 scan_log=
for _ in $(seq "$RUNS"); do
    t0=$(now); regmon_first >/dev/null 2>&1; t1=$(now)
    t_first=$(min "$t_first" "$(echo "$t0 $t1" | awk '{print $2-$1}')")
    t0=$(now); line=$(regmon_scan 2>&1 | grep 'scan done' | tail -1 || true); t1=$(now)
    t_regmon=$(min "$t_regmon" "$(echo "$t0 $t1" | awk '{print $2-$1}')")
    scan_log=${scan_log:-$line}
    t0=$(now); reg_export >/dev/null 2>&1; t1=$(now)
    t_export=$(min "$t_export" "$(echo "$t0 $t1" | awk '{print $2-$1}')")
done
t0=$(now); w cmd /c exit; t1=$(now)
t_start=$(echo "$t0 $t1" | awk '{print $2-$1}')

# Incremental TRUE: a service process (ScanInterval 1) whose first scan
# builds the baseline (a full rehash) and whose next $RUNS scans use the
# hints that scan left in memory (nothing changes meanwhile); each scan's
# own time, from its 'scan done' line (without process start), the best.
sed -e 's/^<Input regmon>/<Input inc>/' -e 's/^ScanInterval 0/ScanInterval 1\nIncremental TRUE/' \
    -e 's/^Path regmon => null/Path inc => null/' "$B/bench.conf" >"$B/bench-inc.conf"
rm -f "$B/inc.log"
(cd "$B" && WINEPREFIX="$PREFIX" exec "$WINE" "$EXE" -c bench-inc.conf >/dev/null 2>"$B/inc.log") &
inc_pid=$!
for _ in $(seq 600); do
    [ "$(grep -c 'scan done' "$B/inc.log" 2>/dev/null || true)" -ge "$RUNS" ] && break
    sleep 1
done
kill "$inc_pid" 2>/dev/null || true
wait "$inc_pid" 2>/dev/null || true
scan_secs() { sed -n 's/.*scan done: .* changes, \([0-9.]*\)s.*/\1/p'; }
t_hinted=$(grep 'scan done' "$B/inc.log" | scan_secs | sort -g | head -1)
hinted_log=$(grep 'scan done' "$B/inc.log" | tail -1)
t_rescan_own=$(echo "$scan_log" | scan_secs)
keys=$(iconv -f UTF-16 -t UTF-8 "$B/export.reg" 2>/dev/null | grep -c '^\[' || true)
log "benchmark: HKLM\\Software under Wine, $keys keys; best of $RUNS interleaved runs"
log "  (regmon's last line: ${scan_log##*INFO })"
printf '  regmon --once, first (baseline) %.3f s\n' "$t_first"
printf '  regmon --once (scan + SHA1)     %.3f s\n' "$t_regmon"
printf '  wine reg export                 %.3f s\n' "$t_export"
printf '  (wine process start, cmd /c)    %.3f s\n' "$t_start"
echo "$t_regmon $t_export" | awk '{printf "  ratio regmon / reg export       %.2f\n", $1/$2}'
log "  (Incremental, last line: ${hinted_log##*INFO })"
printf '  scan times inside the process (no process start):\n'
printf '    no-change rescan, full read   %.3f s\n' "${t_rescan_own:-0}"
printf '    Incremental: hinted rescan    %.3f s (best of %s)\n' "${t_hinted:-0}" "$RUNS"
echo "${t_hinted:-0} $t_export" | awk '{printf "  ratio hinted rescan / reg export %.3f (target <= 0.15)\n", $1/$2}'
rm -rf "$B"
