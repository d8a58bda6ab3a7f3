#!/usr/bin/env python3
"""Finds circles between the source files of each built target (ctest style.call_cycles);
standard library only, reads the object files with nm.

File A depends on file B when A's object file refers to a symbol B's defines (a call, a
function table, a global). Within one target (a library or an executable: platform
alternatives such as os_posix.c and os_win.c are never in the same one) those dependencies
must form no circle: a circle means two files each need the other, so neither can be read,
tested or moved on its own (issue 19: session.c <-> transport.c, the p11-*.c function tables,
util/admin.c <-> util/main.c, csp_hash.c <-> csp_key.c).

  scripts/check-call-cycles.py --build DIR [--nm NM] [--enforce-all]
Every circle is printed as `path: circle: a.c -> b.c -> a.c` with the symbols of each step.
Exit status: 0 none (or only allowed ones), 1 circles, 2 usage or nothing to read.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

# Circles allowed for now, each with its reason (listed as notes, not failures, until
# --enforce-all). Keys are the sorted files of the circle, e.g.
#   ("dir/a.c", "dir/b.c"): "why the two still call each other".
ALLOWED = {}

# Files every circle through which is allowed for now, with the reason.
ALLOWED_THROUGH = {}

SKIP_TOP = ("tests",)
OBJ_RE = re.compile(r"^(?P<src>.+\.(?:c|m|cc|cpp))\.(?:o|obj)$")


def objects(build):
    """{target dir: {source path relative to the source tree: object path}}."""
    targets = {}
    for dirpath, dirnames, filenames in os.walk(build):
        dirnames.sort()
        rel = os.path.relpath(dirpath, build).replace(os.sep, "/")
        m = re.match(r"^(?:(?P<sub>.*)/)?CMakeFiles/(?P<target>[^/]+)\.dir(?:/(?P<inner>.*))?$",
                     rel)
        if not m:
            continue
        sub = m.group("sub") or ""
        if sub.split("/", 1)[0] in SKIP_TOP:
            continue
        key = (sub + "/" if sub else "") + m.group("target")
        for name in sorted(filenames):
            om = OBJ_RE.match(name)
            if not om:
                continue
            inner = m.group("inner")
            src = "/".join(p for p in (sub, inner, om.group("src")) if p)
            # Objects of sources outside the target's folder are stored under __/ (for ..).
            src = os.path.normpath(src.replace("__/", "../")).replace(os.sep, "/")
            targets.setdefault(key, {})[src] = os.path.join(dirpath, name)
    # A source taken out of a target leaves its object file behind: keep only the objects the
    # target's link command names (Makefile generators write it to link.txt).
    for key, files in targets.items():
        sub, _, target = key.rpartition("/")
        base = os.path.join(build, sub) if sub else build
        link = os.path.join(base, "CMakeFiles", target + ".dir", "link.txt")
        if not os.path.exists(link):
            continue
        linked = set()
        for tok in link_tokens(link):
            if tok.startswith("@"):  # a response file (mingw: the object list)
                rsp = os.path.join(base, tok[1:])
                toks = link_tokens(rsp) if os.path.isfile(rsp) else []
            else:
                toks = [tok]
            linked |= {os.path.normpath(os.path.join(base, t)) for t in toks
                       if t.endswith((".o", ".obj"))}
        for src in [s for s, obj in files.items() if os.path.normpath(obj) not in linked]:
            del files[src]
    return {k: v for k, v in targets.items() if v}


def link_tokens(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [tok for line in fh for tok in shlex.split(line)]


def symbols(nm, objs):
    """{object: (defined, undefined) global symbol names}, one nm call for all of them."""
    out = subprocess.run([nm, "-P", "-A", *objs], check=True, capture_output=True,
                         text=True).stdout
    result = {o: (set(), set()) for o in objs}
    for line in out.splitlines():
        # "path/to/x.c.o: name T value size" (-A names the file first)
        head, sep, rest = line.rpartition(": ")
        parts = rest.split()
        if not sep or head not in result or len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            result[head][1].add(name)
        elif kind in "TDBRCVWGS":  # global (upper case) definitions
            result[head][0].add(name)
    return result


def strongly_connected(nodes, succ):
    index, low, on_stack, stack, comps, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 4 * len(nodes) + 100))
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return comps


def shortest_cycle(start, members, succ):
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(succ.get(v, ())):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return None


def check_target(nm, files):
    defs, undef = {}, {}
    syms = symbols(nm, list(files.values()))
    for src, obj in files.items():
        d, u = syms[obj]
        undef[src] = u
        for name in d:
            defs.setdefault(name, set()).add(src)
    succ, why = {}, {}
    for src, names in undef.items():
        for name in names:
            for dst in defs.get(name, ()):
                if dst != src:
                    succ.setdefault(src, set()).add(dst)
                    why.setdefault((src, dst), set()).add(name)
    cycles = []
    for comp in strongly_connected(set(files), succ):
        if len(comp) < 2:
            continue
        seen = set()
        for start in comp:
            path = shortest_cycle(start, set(comp), succ)
            if not path or frozenset(path) in seen:
                continue
            seen.add(frozenset(path))
            steps = [(a, b, sorted(why[(a, b)])) for a, b in zip(path, path[1:])]
            cycles.append((path, steps))
    return cycles


def main(argv):
    ap = argparse.ArgumentParser(description="Finds circles between the files of each target.")
    ap.add_argument("--build", required=True, help="a configured and built CMake build tree")
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--enforce-all", action="store_true", help="fail on allowed circles too")
    args = ap.parse_args(argv)
    if not shutil.which(args.nm):
        print(f"check-call-cycles: {args.nm} not found")
        return 2
    targets = objects(args.build)
    if not targets:
        print(f"check-call-cycles: no object files under {args.build} (build it first)")
        return 2
    problems, notes, nfiles = [], [], 0
    for target in sorted(targets):
        files = targets[target]
        nfiles += len(files)
        for path, steps in check_target(args.nm, files):
            text = (f"{path[0]}: circle: {' -> '.join(os.path.basename(p) for p in path)} "
                    f"(target {target})\n" +
                    "\n".join(f"    {a} -> {b}  (uses {', '.join(names[:6])}"
                              f"{', ...' if len(names) > 6 else ''})" for a, b, names in steps))
            reason = ALLOWED.get(tuple(sorted(set(path))))
            hub = [f for f in path if f in ALLOWED_THROUGH]
            if not reason and hub:
                reason = ALLOWED_THROUGH[hub[0]]
            if reason and not args.enforce_all:
                notes.append(text.split("\n", 1)[0] + f"\n    allowed for now: {reason}")
            else:
                problems.append(text)
    for n in notes:
        print("note (allowed): " + n)
    for p in problems:
        print(p)
    print(f"check-call-cycles: {len(targets)} targets, {nfiles} object files: "
          f"{len(problems)} circle(s){f', {len(notes)} allowed' if notes else ''}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
