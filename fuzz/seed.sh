#!/bin/sh
# Fills fuzz/corpus/TARGET (gitignored) with seeds for every fuzz target:
#   hive_walk    small hives from our own writer (regmon-bench --make-seeds)
#                and the real hives up to 1 MiB
#   config_exec  every .conf in the repository (examples/, the tests' valid
#                and malformed configurations)
#   log_replay   each real primary hive with its transaction logs, packed as
#                the target reads them (8-byte header, primary, LOG1, LOG2),
#                when the three come to at most 2 MiB
# The real hives come from HIVES_DIR: by default the committed subset
# (testdata/hives, .xz files, decompressed here by python3's lzma module), so
# nothing outside the repository is needed; ../shared/hives (plain files)
# works too. Run from the repository root: sh fuzz/seed.sh [HIVES_DIR]
set -eu
hives=${1:-testdata/hives}
mkdir -p fuzz/corpus/hive_walk fuzz/corpus/config_exec fuzz/corpus/log_replay
cargo run --release -q -p regmon-bench -- --make-seeds fuzz/corpus/hive_walk
find examples crates -name '*.conf' ! -path '*/target/*' | while read -r f; do
    install -m 644 "$f" "fuzz/corpus/config_exec/$(echo "$f" | sed 's|/|_|g')"
done
python3 - "$hives" <<'PY'
import lzma, os, re, struct, sys

root = sys.argv[1]
files = {}  # relative path without .xz -> absolute path
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        rel = os.path.relpath(p, root)
        if rel.endswith(".xz"):
            rel = rel[:-3]
        elif n.endswith((".md", ".json", ".txt")) or n.startswith("LICENSE"):
            continue
        files[rel] = p

def read(rel):
    p = files[rel]
    with (lzma.open(p) if p.endswith(".xz") else open(p, "rb")) as f:
        return f.read()

def out(target, rel, data):
    name = "real-" + rel.replace("/", "_")
    with open(os.path.join("fuzz/corpus", target, name), "wb") as f:
        f.write(data)

n_walk = n_replay = 0
for rel in sorted(files):
    if re.search(r"\.log\d?$", rel, re.I):
        continue
    data = read(rel)
    if len(data) <= 1 << 20:
        out("hive_walk", rel, data)
        n_walk += 1
    # Logs beside it: NAME.LOG1, NAME.LOG2 (any case), else NAME.LOG.
    logs = [read(l) for l in sorted(files)
            if l.lower() in (rel.lower() + ".log1", rel.lower() + ".log2")]
    if not logs:
        logs = [read(l) for l in files if l.lower() == rel.lower() + ".log"]
    if not logs:
        continue
    log1 = logs[0]
    log2 = logs[1] if len(logs) > 1 else b""
    packed = struct.pack("<II", len(data), len(log1)) + data + log1 + log2
    if len(packed) <= 2 << 20:
        out("log_replay", rel, packed)
        n_replay += 1
print("seeded %d real hives (hive_walk), %d primary+log sets (log_replay)" % (n_walk, n_replay))
PY
for t in hive_walk config_exec log_replay; do
    echo "$t: $(ls fuzz/corpus/$t | wc -l) seeds"
done
