#!/usr/bin/env bash
# The project's test command (see README): installs what the tests need when
# it is missing, then runs the format check, clippy and the whole test suite,
# then the Windows build (clippy for x86_64-pc-windows-gnu, regmon.exe) and
# the Wine tests (scripts/wine-test.sh).
# Works on a fresh Debian machine (as root, or with sudo) and in CI (CI=true,
# no stdin). Real-hive conformance tests read $REGMON_HIVES, which defaults
# to ../shared/hives beside the repository; a missing folder fails them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# ---------------------------------------------------------------------------
# What the tests need. Add to these lists; the code below installs whatever
# is missing.
#
# Debian packages:
APT_PACKAGES=(
    python3           # /usr/bin/python3 runs crates/hive/tests/hivex_dump.py
    python3-hivex     # hivex: reference dumps for the conformance tests
    libwin-hivex-perl # hivexregedit --export
    python3-libregf   # libregf (pyregf): reads what our writer writes
    reglookup         # a third reader for written hives
    gcc               # linker for Rust, C compiler for bundled SQLite
    libc6-dev
    # The Windows build and the Wine tests (scripts/wine-test.sh):
    wine                        # wineboot, reg, cmd in the prefix
    wine64                      # the 64-bit loader
    gcc-mingw-w64-x86-64        # linker + C compiler for the Windows target
    binutils-mingw-w64-x86-64
)
# rustup targets:
RUST_TARGETS=(x86_64-pc-windows-gnu)
# rustup components:
RUST_COMPONENTS=(rustfmt clippy)
# ---------------------------------------------------------------------------

log() { printf '==> %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

apt_updated=false
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing packages ($*) and no apt-get: install them by hand"
        exit 1
    fi
    if ! $apt_updated; then
        log "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
        apt_updated=true
    fi
    log "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@" </dev/null
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# Rust: rustup's cargo when present; install rustup (stable) when there is none.
if [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
    for pkg in curl ca-certificates; do
        installed "$pkg" || apt_install "$pkg"
    done
    log "installing rustup (stable toolchain)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --default-toolchain stable </dev/null
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
if command -v rustup >/dev/null 2>&1; then
    have_components=$(rustup component list --installed 2>/dev/null || true)
    for c in "${RUST_COMPONENTS[@]}"; do
        grep -q "^$c" <<<"$have_components" || rustup component add "$c"
    done
    if [ ${#RUST_TARGETS[@]} -gt 0 ]; then
        have_targets=$(rustup target list --installed 2>/dev/null || true)
        for t in "${RUST_TARGETS[@]}"; do
            grep -qx "$t" <<<"$have_targets" || rustup target add "$t"
        done
    fi
fi

# Real hives for the conformance tests (never copied into the repository).
if [ -z "${REGMON_HIVES:-}" ]; then
    REGMON_HIVES="$(dirname "$ROOT")/shared/hives"
fi
export REGMON_HIVES
[ -d "$REGMON_HIVES" ] || log "warning: REGMON_HIVES=$REGMON_HIVES is not a folder; the real-hive tests will fail"
log "REGMON_HIVES=$REGMON_HIVES"

log "cargo fmt --all -- --check"
cargo fmt --all -- --check

log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

log "cargo test --workspace --release"
cargo test --workspace --release

# The tests that need something outside the repository are #[ignore]d (a
# plain cargo test lists them as ignored): the real-hive corpus and the
# reference readers installed above. The Wine tests (also ignored) are run
# by scripts/wine-test.sh below.
log "cargo test (ignored: the real-hive corpus and reference readers)"
# One workspace-wide command, so that nothing is built again.
cargo test --workspace --release --lib --test conformance --test e2e --test identity -- --ignored

# The Windows build and the Wine tests (crates/regmon/tests/wine.rs run for
# real against regmon.exe in a fresh WINEPREFIX; under the plain cargo test
# above they are listed as ignored, having no REGMON_EXE).
log "scripts/wine-test.sh"
exec scripts/wine-test.sh
