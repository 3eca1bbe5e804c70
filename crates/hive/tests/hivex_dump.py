#!/usr/bin/python3
"""Test helper for crates/hive/tests/conformance.rs: dumps a hive as a third
party reader sees it, in a compact line format the Rust test streams.

Usage:
  hivex_dump.py hivex   HIVE   dump with hivex (python3-hivex)
  hivex_dump.py libregf HIVE   dump with libregf (python3-libregf, pyregf)
  hivex_dump.py manifest JSON  list the primary hives all five readers open
  hivex_dump.py check MODULE   exit 0 if MODULE (hivex, pyregf) imports

Dump lines (space separated; "x<hex>" is a byte string, "x" alone is empty,
"!" marks a field the reader failed to return):
  K depth name timestamp class nsubkeys nvalues   one per key, pre-order,
                                                  subkeys in list order
  V name type data                                the key's values, in order
  W message                                       a problem the reader reported
  E message                                       the reader could not open it
  END keys values                                 last line of a full dump
Names and class names are the UTF-8 encoding of what the reader returns;
timestamps are FILETIME integers; class is "-" when absent, "?" when the
reader does not expose class names (hivex).

Manifest lines: "H file keys values" (the hivex counts), tab separated.
"""

import json
import re
import sys

out = sys.stdout


def hx(b):
    return "x" + b.hex()


def name_field(get):
    """A reader's name as UTF-8 hex, or "!" when the reader fails on it."""
    try:
        s = get()
    except Exception:  # hivex raises RuntimeError on undecodable UTF-16
        return "!"
    if s is None:
        return "x"
    if isinstance(s, bytes):
        return hx(s)
    return hx(s.encode("utf-8", "surrogatepass"))


def warn(msg):
    out.write("W " + str(msg).replace("\n", " ") + "\n")


def dump_hivex(path):
    import hivex

    try:
        h = hivex.Hivex(path)
        root = h.root()
    except Exception as e:
        out.write("E %s\n" % e)
        return
    keys = values = 0
    seen = set()
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if node in seen:
            warn("key at %#x visited twice" % node)
            continue
        seen.add(node)
        keys += 1
        name = name_field(lambda: h.node_name(node))
        try:
            ts = str(h.node_timestamp(node) & 0xFFFFFFFFFFFFFFFF)
        except Exception:
            ts = "!"
        try:
            children = h.node_children(node)
        except Exception as e:
            warn("children of key %#x: %s" % (node, e))
            children = []
        try:
            vals = h.node_values(node)
        except Exception as e:
            warn("values of key %#x: %s" % (node, e))
            vals = []
        out.write("K %d %s %s ? %d %d\n" % (depth, name, ts, len(children), len(vals)))
        for v in vals:
            values += 1
            vname = name_field(lambda: h.value_key(v))
            try:
                ty, data = h.value_value(v)
                out.write("V %s %d %s\n" % (vname, ty & 0xFFFFFFFF, hx(data)))
            except Exception:
                try:
                    ty = h.value_type(v)[0] & 0xFFFFFFFF
                except Exception:
                    ty = "!"
                out.write("V %s %s !\n" % (vname, ty))
        for c in reversed(children):
            stack.append((c, depth + 1))
    out.write("END %d %d\n" % (keys, values))


def dump_libregf(path):
    import pyregf

    # Note: libregf decodes compressed (Latin-1) names with its ASCII code
    # page, windows-1252 by default, and accepts no ISO-8859-1: names with
    # bytes 0x80..0x9F differ from the spec's reading (see conformance.rs).
    f = pyregf.file()
    try:
        f.open(path)
        root = f.get_root_key()
    except Exception as e:
        out.write("E %s\n" % e)
        return
    keys = values = 0
    seen = set()
    stack = [(root, 0)]
    while stack:
        key, depth = stack.pop()
        off = key.get_offset()
        if off in seen:
            warn("key at %#x visited twice" % off)
            continue
        seen.add(off)
        keys += 1
        name = name_field(key.get_name)
        try:
            ts = str(key.get_last_written_time_as_integer())
        except Exception:
            ts = "!"
        try:
            cls = key.get_class_name()
            cls = "-" if cls is None else name_field(lambda: cls)
        except Exception:
            cls = "!"
        nsub = key.get_number_of_sub_keys()
        nval = key.get_number_of_values()
        out.write("K %d %s %s %s %d %d\n" % (depth, name, ts, cls, nsub, nval))
        for i in range(nval):
            values += 1
            try:
                v = key.get_value(i)
            except Exception as e:
                warn("value %d: %s" % (i, e))
                out.write("V ! ! !\n")
                continue
            vname = name_field(v.get_name)
            try:
                data = v.get_data()
                data = hx(data if data is not None else b"")
            except Exception:
                data = "!"
            out.write("V %s %d %s\n" % (vname, v.get_type() & 0xFFFFFFFF, data))
        children = []
        for i in range(nsub):
            try:
                children.append(key.get_sub_key(i))
            except Exception as e:
                warn("subkey %d: %s" % (i, e))
        for c in reversed(children):
            stack.append((c, depth + 1))
    out.write("END %d %d\n" % (keys, values))


def manifest(path):
    readers = ("hivex", "libregf", "regipy", "python-registry", "reglookup")
    with open(path, encoding="utf-8") as fh:
        rows = json.load(fh)
    for row in rows:
        if row.get("base_block", {}).get("file_type") != 0:
            continue
        kv = row.get("keys_values") or {}
        if not all(re.fullmatch(r"\d+ \d+", kv.get(r, "")) for r in readers):
            continue
        k, v = kv["hivex"].split()
        out.write("H\t%s\t%s\t%s\n" % (row["file"], k, v))


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    mode, arg = sys.argv[1], sys.argv[2]
    if mode == "check":
        __import__(arg)
        return 0
    {"hivex": dump_hivex, "libregf": dump_libregf, "manifest": manifest}[mode](arg)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
