#!/usr/bin/env python3
"""The top-level README stays short (issue 19: at most 100 lines) and its relative links
lead to files that exist. `--selftest` shows both rules catching a violation."""
import os
import re
import sys
import tempfile

MAX_LINES = 100
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def problems(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = []
    lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    if lines > MAX_LINES:
        found.append(f"{path}: {lines} lines, at most {MAX_LINES} (move detail into docs/)")
    base = os.path.dirname(os.path.abspath(path))
    for target in LINK.findall(text):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not os.path.exists(os.path.join(base, target)):
            found.append(f"{path}: link to a missing file: {target}")
    return found


def selftest():
    with tempfile.TemporaryDirectory() as d:
        readme = os.path.join(d, "README.md")
        with open(os.path.join(d, "there.md"), "w") as f:
            f.write("x\n")
        cases = [
            ("[ok](there.md)\n" + "x\n" * (MAX_LINES - 1), 0),
            ("x\n" * (MAX_LINES + 1), 1),
            ("[gone](missing.md) [ok](there.md#a) [web](https://example.org/x)\n", 1),
        ]
        for text, want in cases:
            with open(readme, "w") as f:
                f.write(text)
            got = len(problems(readme))
            if got != want:
                print(f"selftest: {got} problems, expected {want}, for {text[:40]!r}")
                return 1
    print("selftest: both rules catch a violation")
    return 0


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    path = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    found = problems(path)
    for p in found:
        print(p)
    if not found:
        print(f"{path}: fine")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
