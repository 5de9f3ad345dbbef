#!/usr/bin/python3
"""tests/compat/compare.py - the comparing half of patroni_side_by_side.sh.

    compare.py MANIFEST ALLOWED DIFFERENCES_OUT

MANIFEST: one line per request sent to both sides, tab separated:
    ROLE  METHOD  PATH  PATRONI_CODE  PATRONI_BODY_FILE  BATON_CODE  BATON_BODY_FILE
Writes every difference (the forms are in patroni_side_by_side.sh's header)
to DIFFERENCES_OUT, matches them against ALLOWED ("PATTERN | reason" lines,
`*` the only wildcard), prints "UNLISTED: ..." for a difference no entry
matches and "STALE: ..." for an entry that matches no difference, and exits
1 if there is either. Bodies are compared for GET only: their kind (empty,
json, text), then the JSON field paths with their types (array indices
folded to []), never the values.
"""
import json
import re
import sys


def kind(data):
    if not data.strip():
        return "empty", None
    try:
        doc = json.loads(data)
    except ValueError:
        return "text", None
    if isinstance(doc, (dict, list)):
        return "json", doc
    return "text", None


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def shape(doc, path="", out=None):
    """Every field path of doc with its JSON type, as jq would spell it."""
    if out is None:
        out = {"(root):" + jtype(doc)}
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = path + "." + k
            out.add(p + ":" + jtype(v))
            shape(v, p, out)
    elif isinstance(doc, list):
        for v in doc:
            p = path + "[]"
            out.add(p + ":" + jtype(v))
            shape(v, p, out)
    return out


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def differences(manifest):
    diffs = []
    with open(manifest) as f:
        for line in f:
            role, method, path, pc, pf, bc, bf = line.rstrip("\n").split("\t")
            what = "%s %s %s" % (role, method, path)
            if pc != bc:
                diffs.append("code %s patroni=%s baton=%s" % (what, pc, bc))
            if method != "GET":
                continue
            pk, pdoc = kind(read(pf))
            bk, bdoc = kind(read(bf))
            if pk != bk:
                diffs.append("body %s patroni=%s baton=%s" % (what, pk, bk))
                continue
            if pk != "json":
                continue
            ps, bs = shape(pdoc), shape(bdoc)
            diffs += ["field %s only-patroni %s" % (what, s) for s in sorted(ps - bs)]
            diffs += ["field %s only-baton %s" % (what, s) for s in sorted(bs - ps)]
    return diffs


def allowed(path):
    entries = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            if " | " not in line:
                sys.exit("%s:%d: no ' | reason' in: %s" % (path, n, line))
            pat, reason = line.split(" | ", 1)
            if not reason.strip():
                sys.exit("%s:%d: an entry without a reason: %s" % (path, n, line))
            rx = re.compile("^" + ".*".join(re.escape(p) for p in pat.strip().split("*")) + "$")
            entries.append((pat.strip(), rx))
    return entries


def main():
    manifest, allowed_path, out_path = sys.argv[1:4]
    diffs = differences(manifest)
    with open(out_path, "w") as f:
        f.writelines(d + "\n" for d in diffs)
    entries = allowed(allowed_path)
    used = [False] * len(entries)
    unlisted = 0
    for d in diffs:
        hit = False
        for i, (_, rx) in enumerate(entries):
            if rx.match(d):
                used[i] = hit = True
        if not hit:
            print("UNLISTED: " + d)
            unlisted += 1
    stale = [entries[i][0] for i in range(len(entries)) if not used[i]]
    for s in stale:
        print("STALE (no such difference any more): " + s)
    print("%d differences, %d listed entries: %d unlisted, %d stale" % (len(diffs), len(entries), unlisted, len(stale)))
    return 1 if unlisted or stale else 0


if __name__ == "__main__":
    sys.exit(main())
