#!/usr/bin/env python3
"""Checks the layering of the tree (ctest style.layers); standard library only.

Rules:
  size     no source file outside tests/ longer than MAX_LINES lines;
  cycle    no include cycle between folders: the folder graph is built from the
           #include "..." lines of the C, C++ and Objective-C sources and headers, an edge
           A -> B for every file in A that includes a file in B;
  layer    forbidden includes between named folders (FORBIDDEN below): the server's store/
           includes nothing from audit/, hsm/ or ca/; audit/ nothing from ca/; hsm/ and
           common/ nothing from the layers above them; no folder of the core library
           anything from cli/; agent-core's util/ nothing from agent/. A rule can be
           entered as not enforced yet (a note, not a failure) while the tree catches up.

Every violation is printed as `path:line: rule: message` (a cycle as the chain of folders
with the include line that makes each step). Exit status: 0 clean, 1 violations, 2 usage.

  scripts/check-layers.py [--root DIR] [--max-lines N] [--enforce-all]
"""

import argparse
import os
import re
import subprocess
import sys

MAX_LINES = 800

# Files that count as source for the size rule (prose and data do not).
SOURCE_EXT = (".c", ".h", ".m", ".cc", ".cpp", ".py", ".sh", ".ps1", ".cmake", ".js", ".mjs")
SOURCE_NAMES = ("CMakeLists.txt",)
# Files whose #include lines make the folder graph.
C_EXT = (".c", ".h", ".m", ".cc", ".cpp")
# Folders never looked at: tests, build trees, cross-built third-party libraries.
SKIP_TOP = ("tests",)
SKIP_PREFIX = ("build",)

# (from folder, to folder, why, enforced). A file under `from` may not include a file under
# `to`. An entry with enforced=False is reported as a note and does not fail the check: it
# states a rule the tree does not keep yet (switch it on once it does; the checker says so).
FORBIDDEN = [
    ("server/src/store", "server/src/audit", "storage does not depend on the audit ledger", True),
    ("server/src/store", "server/src/hsm", "storage does not depend on the HSM", True),
    ("server/src/store", "server/src/ca", "storage does not depend on the CA", True),
    # The audit ledger signs its checkpoints through the HSM layer (hsm/sig_encoding.h).
    ("server/src/audit", "server/src/ca", "the audit ledger signs through hsm/, not the CA", True),
    # The command line is the signum-server executable's; the core library never needs it.
    ("server/src", "server/src/cli", "the core library does not depend on the CLI", True),
    # signum-util uses the agent's public headers and its HTTPS transport only (issue 19).
    ("agent-core/src/util", "agent-core/src/agent", "signum-util uses public headers only", True),
]

# The bottom layers of the server include nothing of the layers above them.
_SERVER_UPPER = ("store", "audit", "ca", "api", "policy", "auth", "http", "cli")
FORBIDDEN += [("server/src/hsm", f"server/src/{x}", "the HSM layer sits below it", True)
              for x in _SERVER_UPPER if x != "hsm"]
FORBIDDEN += [("server/src/common", f"server/src/{x}", "common/ sits below every layer", True)
              for x in _SERVER_UPPER + ("hsm",)]

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def list_files(root):
    """Tracked and untracked-but-not-ignored files when root is a git checkout, else a walk."""
    try:
        out = subprocess.run(
            ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True, capture_output=True).stdout
        files = [f for f in out.decode("utf-8", "replace").split("\0") if f]
        files = [f for f in files if os.path.isfile(os.path.join(root, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                 and not (rel == "." and d.startswith(SKIP_PREFIX)))
            for name in filenames:
                files.append(os.path.normpath(os.path.join(rel, name)))
    keep = []
    for f in files:
        f = f.replace(os.sep, "/")
        top = f.split("/", 1)[0]
        if top in SKIP_TOP or top.startswith(SKIP_PREFIX) or "/node_modules/" in "/" + f:
            continue
        keep.append(f)
    return sorted(keep)


def is_source(path):
    name = os.path.basename(path)
    return name.endswith(SOURCE_EXT) or name in SOURCE_NAMES


def read_lines(root, path):
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
        return fh.read().splitlines()


def check_size(root, files, max_lines):
    problems = []
    for f in files:
        if not is_source(f):
            continue
        n = len(read_lines(root, f))
        if n > max_lines:
            problems.append(f"{f}:{n}: size: {n} lines, more than {max_lines} "
                            "(split it by concern)")
    return problems


class Resolver:
    """Finds the file an #include "..." names: beside the including file first (what the
    compiler does), then in each folder above it and in their include/ folders (the -I
    directories of this tree), then in any top-level component's include/ folder."""

    def __init__(self, files):
        self.files = set(files)
        tops = sorted({f.split("/", 1)[0] for f in files if "/" in f})
        self.global_roots = [t + "/include" for t in tops]

    def resolve(self, src, name):
        d = os.path.dirname(src)
        roots = []
        while True:
            roots.append(d)
            roots.append((d + "/include") if d else "include")
            if not d:
                break
            d = os.path.dirname(d)
        for r in roots + self.global_roots:
            cand = os.path.normpath(os.path.join(r, name)).replace(os.sep, "/")
            if cand in self.files:
                return cand
        return None


def include_edges(root, files):
    """(src file, line, included file) for every #include "..." that names a file of the tree."""
    res = Resolver(files)
    edges = []
    for f in files:
        if not f.endswith(C_EXT):
            continue
        for no, line in enumerate(read_lines(root, f), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            target = res.resolve(f, m.group(1))
            if target:
                edges.append((f, no, target))
    return edges


def folder(path):
    return os.path.dirname(path) or "."


def strongly_connected(nodes, succ):
    """Tarjan's algorithm, iterative: the strongly connected components of the graph."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(succ.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(succ.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(sorted(comp))
    return comps


def shortest_cycle(start, members, succ):
    """A shortest cycle from `start` back to it within one component (breadth-first)."""
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(succ.get(v, ())):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                path.reverse()
                return path + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return None


MAX_CYCLES_SHOWN = 10  # per group of folders that reach each other


def check_cycles(edges):
    succ, example = {}, {}
    for src, no, dst in edges:
        a, b = folder(src), folder(dst)
        if a == b:
            continue
        succ.setdefault(a, set()).add(b)
        example.setdefault((a, b), (src, no, dst))
    nodes = set(succ) | {b for bs in succ.values() for b in bs}
    problems = []
    for comp in strongly_connected(nodes, succ):
        if len(comp) < 2:
            continue
        # One shortest cycle through each folder of the group, each set of steps once: every
        # folder caught in a cycle is named, with the include lines that close it.
        seen = set()
        for start in comp:
            path = shortest_cycle(start, set(comp), succ)
            if not path:
                continue
            steps = frozenset(zip(path, path[1:]))
            if steps in seen:
                continue
            seen.add(steps)
            if len(seen) > MAX_CYCLES_SHOWN:
                problems.append(f"{comp[0]}: cycle: more cycles among {', '.join(comp)}")
                break
            lines = []
            for a, b in zip(path, path[1:]):
                src, no, dst = example[(a, b)]
                lines.append(f"    {a} -> {b}  ({src}:{no} includes {dst})")
            src, no, _ = example[(path[0], path[1])]
            problems.append(f"{src}:{no}: cycle: include cycle between folders "
                            f"{' -> '.join(path)}\n" + "\n".join(lines))
    return problems


def under(path, folder_name):
    return path == folder_name or path.startswith(folder_name.rstrip("/") + "/")


def check_forbidden(edges, rules):
    problems, notes = [], []
    for frm, to, why, enforced in rules:
        hits = [(s, n, d) for s, n, d in edges
                if under(s, frm) and under(d, to) and not under(s, to)]
        for s, n, d in hits:
            msg = f"{s}:{n}: layer: {frm}/ includes {d} ({why})"
            (problems if enforced else notes).append(msg)
        if not enforced and not hits:
            notes.append(f"layer: {frm}/ no longer includes {to}/: the rule can be enforced "
                         "(set it to True in scripts/check-layers.py)")
    return problems, notes


def main(argv):
    ap = argparse.ArgumentParser(description="Checks the layering of the tree.")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   ".."))
    ap.add_argument("--max-lines", type=int, default=MAX_LINES)
    ap.add_argument("--enforce-all", action="store_true",
                    help="also fail on the layer rules not enforced yet")
    args = ap.parse_args(argv)
    root = os.path.abspath(args.root)
    files = list_files(root)
    edges = include_edges(root, files)
    problems = check_size(root, files, args.max_lines)
    problems += check_cycles(edges)
    rules = [(f, t, w, e or args.enforce_all) for f, t, w, e in FORBIDDEN]
    forbidden, notes = check_forbidden(edges, rules)
    problems += forbidden
    for n in notes:
        print("note (not enforced): " + n)
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} violation(s) in {len(files)} files")
        return 1
    print(f"check-layers: {len(files)} files, {len(edges)} includes: sizes, folder cycles "
          "and layer rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
