#!/bin/sh
# Fills fuzz/corpus/hive_walk (gitignored) with seed hives: small samples
# written by our own writer (regmon-bench --make-seeds) and the real hives
# of ../shared/hives up to 1 MiB (copied into the corpus, not the repo).
# Run from the repository root: sh fuzz/seed.sh [SHARED_HIVES_DIR]
set -eu
hives=${1:-../shared/hives}
out=fuzz/corpus/hive_walk
mkdir -p "$out"
cargo run --release -q -p regmon-bench -- --make-seeds "$out"
find "$hives" -type f -size -1025k ! -name '*.json' ! -name '*.md' | while read -r f; do
    install -m 644 "$f" "$out/real-$(echo "$f" | sed "s|^$hives/||; s|/|_|g")"
done
ls "$out" | wc -l
