#!/usr/bin/env bash
# regmon's main job on the sample hive shipped in examples/sample: build a
# baseline, change the hive, scan again, show the NEW / CHANGE / DELETE events.
# Works on a fresh Debian machine: installs what the build needs when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" </dev/null
fi
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
command -v cargo >/dev/null 2>&1 || { echo "demo: cargo is missing (run scripts/test.sh once, or install rustup)" >&2; exit 1; }

cargo build --release -q -p regmon
R="$ROOT/target/release/regmon"
WORK=${REGMON_DEMO_DIR:-$(mktemp -d /tmp/regmon-demo.XXXXXX)}
mkdir -p "$WORK"
cp "$ROOT/examples/policies.conf" "$WORK/"
mkdir -p "$WORK/sample" && cp "$ROOT/examples/sample/SOFTWARE" "$WORK/sample/"
cd "$WORK"

echo "== in $WORK: examples/policies.conf (NXLog's first im_regmon example, HiveFile added)"
echo "== 1. first scan: records the baseline in regmon-cache/, reports nothing"
"$R" -c policies.conf --once

echo "== 2. change the hive: one value changed, one added, one deleted, and one"
echo "==    changed in a subkey (not covered: the configuration has no Recursive)"
"$R" hive edit sample/SOFTWARE \
    --set Policies NoAutoUpdate REG_DWORD 0 \
    --set Policies NewSetting REG_SZ "added by the demo" \
    --delete-value Policies Blob \
    --set 'Policies\Microsoft\Windows Defender' DisableAntiSpyware REG_DWORD 1

echo "== 3. second scan: the events, as JSON lines in regmon.log"
"$R" -c policies.conf --once
cat regmon.log
