#!/usr/bin/env python3
"""scripts/check-duplicates.py on small trees: a run of 6 counted lines shared by two files (or
twice in one) fails the check, the allow-list lets a listed pair pass, an entry needs a
reason, and shorter or cosmetic-only overlaps do not count (ctest style.duplicates_selftest)."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "..", "..", "scripts", "check-duplicates.py")

# Six statements that count, wrapped in declarations, braces and comments that do not.
BODY = """    int rc;
    char *end;
    /* a comment */
    rc = parse(text, &end);
    if (rc < 0)
        return fail(err, "cannot parse %s", text);
    total += rc * 2;
    {
        log_line("parsed", total);
    }
    return finish(total, end);
"""


def func(name, body=BODY):
    return f"int {name}(const char *text)\n{{\n{body}}}\n"


class CheckDuplicates(unittest.TestCase):
    def tree(self, files, allow=None):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        for path, text in files.items():
            full = os.path.join(tmp.name, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as fh:
                fh.write(text)
        if allow is not None:
            os.makedirs(os.path.join(tmp.name, "scripts"), exist_ok=True)
            with open(os.path.join(tmp.name, "scripts", "duplicates.allow"), "w") as fh:
                fh.write(allow)
        return tmp.name

    def run_checker(self, root, *extra):
        p = subprocess.run([sys.executable, CHECKER, "--root", root, *extra],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    def test_pair_between_components_fails_with_places(self):
        root = self.tree({"server/src/a.c": func("a"),
                          "agent-core/src/util/b.c": "/* header */\n\n" + func("b")})
        rc, out = self.run_checker(root)
        self.assertEqual(rc, 1, out)
        self.assertIn("agent-core/src/util/b.c:8-15 ~ server/src/a.c:6-13: duplicate: 6 lines "
                      "(NEW)", out)

    def test_repeat_within_one_file_fails(self):
        root = self.tree({"linux-pkcs11/src/p.c": func("a") + "\n" + func("b")})
        rc, out = self.run_checker(root)
        self.assertEqual(rc, 1, out)
        self.assertIn("linux-pkcs11/src/p.c:6-13 ~ linux-pkcs11/src/p.c:21-28", out)

    def test_allowed_pair_passes_and_stale_entry_is_named(self):
        files = {"server/src/a.c": func("a"), "windows-ksp/src/b.c": func("b")}
        allow = ("# comment\n"
                 "windows-ksp/src/b.c ~ server/src/a.c | both stay until the merge\n"
                 "server/src/x.c ~ server/src/y.c | gone already\n")
        rc, out = self.run_checker(self.tree(files, allow))
        self.assertEqual(rc, 0, out)
        self.assertIn("0 not allowed", out)
        self.assertIn("note: server/src/x.c ~ server/src/y.c is in duplicates.allow but no "
                      "longer shares a run", out)

    def test_entry_without_reason_is_refused(self):
        files = {"server/src/a.c": func("a"), "windows-ksp/src/b.c": func("b")}
        rc, out = self.run_checker(self.tree(files, "server/src/a.c ~ windows-ksp/src/b.c\n"))
        self.assertEqual(rc, 1, out)
        self.assertIn("duplicates.allow:1: expected `path ~ path | reason`", out)

    def test_five_lines_or_cosmetic_overlap_do_not_count(self):
        short = BODY.replace("    total += rc * 2;\n", "")
        renamed = BODY.replace("total", "sum")
        root = self.tree({"server/src/a.c": func("a", short),
                          "server/src/b.c": func("b", short).replace("int b", "long b"),
                          "windows-csp/src/c.c": func("c", renamed)})
        rc, out = self.run_checker(root)
        self.assertEqual(rc, 0, out)
        self.assertIn("0 pairs", out)
        # Folding names finds the renamed copy (and the short ones stay under the bar).
        rc, out = self.run_checker(root, "--fold")
        self.assertEqual(rc, 1, out)
        self.assertIn("windows-csp/src/c.c", out)

    def test_return_and_goto_lines_count(self):
        # "return CKR_OK;" has the shape of a declaration ("type name;") but is a statement.
        body = ("    if (!list) {\n        *count = n;\n        return CKR_OK;\n    }\n"
                "    if (*count < n) {\n        *count = n;\n        goto out;\n    }\n")
        root = self.tree({"linux-pkcs11/src/a.c": func("a", body),
                          "linux-pkcs11/src/b.c": func("b", body)})
        rc, out = self.run_checker(root)
        self.assertEqual(rc, 1, out)
        self.assertIn("linux-pkcs11/src/a.c:3-9 ~ linux-pkcs11/src/b.c:3-9: duplicate: 6 lines", out)

    def test_other_folders_are_not_read(self):
        root = self.tree({"tests/unit/a.c": func("a"), "tests/unit/b.c": func("b"),
                          "server/src/c.py": func("c"), "server/src/d.py": func("d")})
        rc, out = self.run_checker(root)
        self.assertEqual(rc, 0, out)
        self.assertIn("0 files", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
