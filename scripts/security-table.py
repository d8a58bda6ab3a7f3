#!/usr/bin/env python3
"""Renders the bad-input table of docs/security.md from the refusals that
tests/integration/test_bad_input.py asserted (the JSON file it writes when
$SIGNUM_BADINPUT_TABLE is set), and checks or rewrites the document.

  security-table.py --rows ROWS.json --check docs/security.md   # exit 1 if they disagree
  security-table.py --rows ROWS.json --write docs/security.md   # rewrite the table in place
"""

import argparse
import json
import sys

BEGIN = "<!-- bad-input-table:begin -->"
END = "<!-- bad-input-table:end -->"
MAX_ROWS = 5000  # a rows file larger than any real run is refused, not rendered


def describe(row):
    what = row["test"][len("test_"):] if row["test"].startswith("test_") else row["test"]
    what = what.replace("_", " ")
    return "%s: %s" % (what, row["case"]) if row.get("case") else what


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(rows):
    out = ["| request | input | status | code |", "|---|---|---|---|"]
    seen = set()
    for row in sorted(rows, key=lambda r: r["test"]):
        code = "`%s`" % row["code"] if row.get("code") else "(bare, no JSON body)"
        line = "| %s | %s | %d | %s |" % (cell(row.get("request") or ""), cell(describe(row)),
                                          row["status"], code)
        if line not in seen:
            seen.add(line)
            out.append(line)
    return "\n".join(out)


def splice(doc, table):
    head, sep, rest = doc.partition(BEGIN)
    if not sep or END not in rest:
        raise ValueError("the document has no %s ... %s markers" % (BEGIN, END))
    return head + BEGIN + "\n" + table + "\n" + END + rest.partition(END)[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", required=True, help="JSON rows written by test_bad_input.py")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="DOC", help="exit 1 if DOC's table differs")
    mode.add_argument("--write", metavar="DOC", help="rewrite DOC's table")
    args = ap.parse_args()
    try:
        with open(args.rows) as f:
            rows = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("security-table: cannot read the rows (%s); run integration.bad_input first" % e)
    if not isinstance(rows, list) or not rows or len(rows) > MAX_ROWS:
        sys.exit("security-table: %s holds no rows (or more than %d)" % (args.rows, MAX_ROWS))
    doc_path = args.check or args.write
    with open(doc_path) as f:
        doc = f.read()
    try:
        new = splice(doc, render(rows))
    except ValueError as e:
        sys.exit("security-table: %s: %s" % (doc_path, e))
    if args.write:
        with open(doc_path, "w") as f:
            f.write(new)
        print("security-table: %d rows written to %s" % (len(rows), doc_path))
        return 0
    if new != doc:
        sys.stderr.write("security-table: %s is out of date with the tests; regenerate it:\n"
                         "  python3 scripts/security-table.py --rows %s --write %s\n"
                         % (doc_path, args.rows, doc_path))
        return 1
    print("security-table: %s matches the %d asserted refusals" % (doc_path, len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
