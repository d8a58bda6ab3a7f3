#!/usr/bin/env python3
"""Finds code written twice in the C sources (ctest style.duplicates); standard library only.

Each C file is cut into tokens (comments dropped, white space folded) and read as a list of
normalised lines; blank lines, lines of lone punctuation ("}", "});", ...), declarations
without an initialiser ("int rc;") and #include lines do not count. A duplicate is a run of
at least --min-lines (6) consecutive counted lines that stands again elsewhere, in another
file or further on in the same one. With --fold, identifiers, numbers and strings are folded
first (runs alike but for names and values count too: many more, mostly boilerplate); the
gate runs without it.

A pair of files that share a run fails the check unless scripts/duplicates.allow lists it:
one line a pair, `path ~ path | reason`, the reason saying why the two stay as they are (or
that they are to be merged). Pairs listed but no longer found are reported, so that the list
shrinks as duplicates go.

  scripts/check-duplicates.py [--root DIR] [--min-lines N] [--fold] [--allow FILE] [--all]
Exit status: 0 no pair outside the list, 1 new pairs (or a malformed list), 2 usage.
"""

import argparse
import hashlib
import os
import re
import sys

DIRS = ("server/src", "agent-core/src", "linux-pkcs11/src", "windows-ksp/src",
        "windows-csp/src", "common")
C_EXT = (".c", ".h", ".m")
MIN_LINES = 6
# A run that stands in more places than this is a pattern of the language or of the project
# (a cleanup tail, a table shape), not code to share: it is passed over.
MAX_PLACES = 8

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
  | (?P<number>\.?\d(?:[\w.]|[eEpP][+-])*)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<punct>->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!=<>]=|\.\.\.|\#\#|.)
""", re.S | re.X)

KEYWORDS = frozenset("""
    auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while _Bool _Static_assert NULL
""".split())

PUNCT_ONLY_RE = re.compile(r"^[{}()\[\];,\s]*$")
# A declaration without initialiser ("srv_key key ;", "char * end ;"): every function of a
# family opens with the same few, which says nothing about the code that follows.
DECL_RE = re.compile(r"^(?!(?:return|goto|case|else|do|sizeof|typedef) )"
                     r"(?:(?:const|struct|enum|unsigned|signed|static) )*\w+(?: \*)* \w+"
                     r"(?: \[ \w* \])*(?: , (?:\* )*\w+(?: \[ \w* \])*)* ;$")


def normalised_lines(text, fold):
    """[(line number, normalised text)] of the lines that count."""
    lines = {}
    line = 1
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:  # cannot happen (the last alternative takes any character), but be safe
            pos += 1
            continue
        kind, tok = m.lastgroup, m.group()
        if kind not in ("ws", "comment"):
            if fold and kind == "ident" and tok not in KEYWORDS:
                tok = "$id"
            elif fold and kind == "number":
                tok = "$num"
            elif fold and kind == "string":
                tok = "$str"
            lines.setdefault(line, []).append(tok)
        line += tok.count("\n") if kind in ("ws", "comment", "string") else 0
        pos = m.end()
    out = []
    for no in sorted(lines):
        s = " ".join(lines[no])
        if PUNCT_ONLY_RE.match(s) or DECL_RE.match(s) or s.startswith(("# include", "#include")):
            continue
        out.append((no, s))
    return out


def list_files(root, dirs):
    files = []
    for d in dirs:
        base = os.path.join(root, d)
        if not os.path.isdir(base):
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(C_EXT):
                    files.append(os.path.relpath(os.path.join(dirpath, name), root)
                                 .replace(os.sep, "/"))
    return files


def find_runs(root, files, min_lines, fold):
    """[(length, file a, first line, last line, file b, first line, last line)]."""
    norm = {}
    windows = {}
    for f in files:
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            norm[f] = normalised_lines(fh.read(), fold)
        texts = [s for _, s in norm[f]]
        for i in range(len(texts) - min_lines + 1):
            h = hashlib.blake2b("\n".join(texts[i:i + min_lines]).encode(),
                                digest_size=12).digest()
            windows.setdefault(h, []).append((f, i))
    starts = {}
    for places in windows.values():
        if len(places) < 2 or len(places) > MAX_PLACES:
            continue
        for x in range(len(places)):
            for y in range(x + 1, len(places)):
                (fa, ia), (fb, ib) = sorted((places[x], places[y]))
                if fa == fb and ib - ia < min_lines:
                    continue  # overlaps itself: a repetitive block, not a copy
                starts.setdefault((fa, fb, ia - ib), []).append(ia)
    runs = []
    for (fa, fb, d), ias in starts.items():
        ias.sort()
        first = prev = ias[0]
        for ia in ias[1:] + [None]:
            if ia is not None and ia == prev + 1:
                prev = ia
                continue
            last = prev + min_lines - 1
            a, b = norm[fa], norm[fb]
            runs.append((last - first + 1, fa, a[first][0], a[last][0],
                         fb, b[first - d][0], b[last - d][0]))
            if ia is not None:
                first = prev = ia
    runs.sort(key=lambda r: (-r[0], r[1], r[2], r[4], r[5]))
    return runs


def read_allow(path):
    """{(a, b): reason} and a list of problems with the file."""
    allow, problems = {}, []
    if not os.path.exists(path):
        return allow, problems
    with open(path, encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(\S+)\s+~\s+(\S+)\s*\|\s*(.*)$", line)
            if not m or not m.group(3).strip():
                problems.append(f"{path}:{no}: expected `path ~ path | reason`, with a reason")
                continue
            a, b = sorted((m.group(1), m.group(2)))
            allow[(a, b)] = m.group(3).strip()
    return allow, problems


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Finds code written twice in the C sources.")
    ap.add_argument("--root", default=os.path.join(here, ".."))
    ap.add_argument("--min-lines", type=int, default=MIN_LINES)
    ap.add_argument("--fold", action="store_true",
                    help="fold identifiers, numbers and strings (alike but for names)")
    ap.add_argument("--allow", help="the allow-list (default: scripts/duplicates.allow)")
    ap.add_argument("--all", action="store_true", help="list allowed pairs too")
    args = ap.parse_args(argv)
    if args.min_lines < 2:
        ap.error("--min-lines must be 2 or more")
    root = os.path.abspath(args.root)
    allow_path = args.allow or os.path.join(root, "scripts", "duplicates.allow")
    allow, problems = read_allow(allow_path)
    files = list_files(root, DIRS)
    runs = find_runs(root, files, args.min_lines, args.fold)

    by_pair = {}
    for r in runs:
        by_pair.setdefault((r[1], r[4]), []).append(r)
    new = [p for p in by_pair if p not in allow]
    for pair in sorted(by_pair, key=lambda p: -by_pair[p][0][0]):
        allowed = pair in allow
        if allowed and not args.all:
            continue
        tag = "allowed" if allowed else "NEW"
        for n, fa, a1, a2, fb, b1, b2 in by_pair[pair]:
            print(f"{fa}:{a1}-{a2} ~ {fb}:{b1}-{b2}: duplicate: {n} lines ({tag})")
    for pair in sorted(set(allow) - set(by_pair)):
        print(f"note: {pair[0]} ~ {pair[1]} is in {os.path.basename(allow_path)} "
              "but no longer shares a run: take it out")
    for p in problems:
        print(p)
    print(f"check-duplicates: {len(files)} files, runs of {args.min_lines}+ lines"
          f"{' (folded)' if args.fold else ''}: {len(by_pair)} pairs, {len(new)} not allowed")
    if new:
        print("Share the code (one function both call), or, if the two must stay apart, add the "
              "pair to scripts/duplicates.allow with the reason.")
    return 1 if new or problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
