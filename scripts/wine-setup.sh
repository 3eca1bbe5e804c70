#!/usr/bin/env bash
# Installs what the Windows build and the Wine tests need, when missing:
# Debian's wine64 (Wine 8 on Debian 12) and the mingw-w64 C toolchain, and
# rustup's x86_64-pc-windows-gnu target. Then builds the bcryptprimitives.dll
# shim (shim/bcryptprimitives.c) into the target folder.
#
# Source it or run it; it prints the environment the Windows build needs:
#   eval "$(scripts/wine-setup.sh --env)"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET=x86_64-pc-windows-gnu
PROFILE=${REGMON_WIN_PROFILE:-release}

log() { printf '==> %s\n' "$*" >&2; }

env_lines() {
    cat <<ENV
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
ENV
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Debian packages: wine64 is the 64-bit loader (/usr/lib/wine/wine64), wine
# the commands (wineboot, reg via the prefix); mingw for the linker and for
# the C code (bundled SQLite, the shim).
APT_PACKAGES=(wine wine64 gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2
fi

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
        log "rustup target add $TARGET"
        rustup target add "$TARGET" >&2
    fi
else
    log "no rustup: the $TARGET standard library must already be installed"
fi

# The shim: Wine 8's bcryptprimitives.dll lacks ProcessPrng, which Rust's
# std imports; a DLL beside the .exe is loaded first.
OUT="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/$PROFILE"
mkdir -p "$OUT"
if [ ! -f "$OUT/bcryptprimitives.dll" ] || [ shim/bcryptprimitives.c -nt "$OUT/bcryptprimitives.dll" ]; then
    log "building $OUT/bcryptprimitives.dll"
    x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -shared -s \
        -o "$OUT/bcryptprimitives.dll" shim/bcryptprimitives.c -ladvapi32
fi

if [ "${1:-}" = "--env" ]; then
    env_lines
fi
