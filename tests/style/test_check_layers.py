#!/usr/bin/env python3
"""scripts/check-layers.py on small trees made for each rule: a clean tree passes, and each
rule reports its violation with the file and line (ctest style.layers_selftest)."""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "..", "..", "scripts", "check-layers.py")


def load_checker():
    spec = importlib.util.spec_from_file_location("check_layers", CHECKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(root, *extra):
    p = subprocess.run([sys.executable, CHECKER, "--root", root, *extra], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


class Tree:
    def __init__(self, test):
        tmp = tempfile.TemporaryDirectory()
        test.addCleanup(tmp.cleanup)
        self.root = tmp.name

    def write(self, path, text):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as fh:
            fh.write(text)

    def lines(self, path, n):
        self.write(path, "".join(f"int x{i};\n" for i in range(n)))


def clean_tree(test):
    """A small server with the layering the rules want."""
    t = Tree(test)
    t.write("server/src/common/status.h", "#pragma once\n")
    t.write("server/src/store/db.h", '#include "../common/status.h"\n')
    t.write("server/src/store/db.c", '#include "db.h"\n')
    t.write("server/src/audit/writer.h", '#include "../store/db.h"\n')
    t.write("server/src/hsm/hsm.h", '#include "../common/status.h"\n')
    t.write("server/src/ca/ca.h", '#include "../hsm/hsm.h"\n#include <stdio.h>\n')
    t.write("agent-core/include/signum/client.h", "#pragma once\n")
    t.write("agent-core/src/util/main.c", '#include "signum/client.h"\n')
    t.write("agent-core/src/agent/agent.h", '#include "signum/client.h"\n')
    return t


class CheckLayers(unittest.TestCase):
    def test_clean_tree_passes(self):
        t = clean_tree(self)
        rc, out = run(t.root)
        self.assertEqual(rc, 0, out)
        self.assertIn("layer rules hold", out)

    def test_size_limit(self):
        t = clean_tree(self)
        t.lines("server/src/store/big.c", 801)
        t.lines("server/src/store/edge.c", 800)  # at the limit: fine
        t.lines("tests/unit/test_big.c", 2000)  # tests are not held to it
        rc, out = run(t.root)
        self.assertEqual(rc, 1, out)
        self.assertIn("server/src/store/big.c:801: size: 801 lines, more than 800", out)
        self.assertNotIn("edge.c", out)
        self.assertNotIn("test_big.c", out)

    def test_folder_cycle_reported_with_its_path(self):
        t = clean_tree(self)
        t.write("server/src/policy/policy.h", '#include "../api/api.h"\n')
        t.write("server/src/api/api.h", "#pragma once\n\n"
                '#include "../common/status.h"\n#include "../policy/policy.h"\n')
        rc, out = run(t.root)
        self.assertEqual(rc, 1, out)
        self.assertIn("cycle: include cycle between folders", out)
        self.assertIn("server/src/api -> server/src/policy -> server/src/api", out)
        self.assertIn("(server/src/api/api.h:4 includes server/src/policy/policy.h)", out)
        self.assertIn("(server/src/policy/policy.h:1 includes server/src/api/api.h)", out)

    def test_cycle_through_root_relative_include(self):
        # "x/y.h" resolved from a folder above (an -I directory), not only "../x/y.h".
        t = clean_tree(self)
        t.write("server/src/app.h", '#include "api/api.h"\n')
        t.write("server/src/api/api.h", '#include "../app.h"\n')
        rc, out = run(t.root)
        self.assertEqual(rc, 1, out)
        self.assertIn("server/src -> server/src/api -> server/src", out)

    def test_store_may_not_include_audit_hsm_or_ca(self):
        for layer, header in (("audit", "writer.h"), ("hsm", "hsm.h"), ("ca", "ca.h")):
            with self.subTest(layer=layer):
                t = clean_tree(self)
                t.write("server/src/store/keys_db.c",
                        f'#include "db.h"\n#include "../{layer}/{header}"\n')
                rc, out = run(t.root)
                self.assertEqual(rc, 1, out)
                self.assertIn(f"server/src/store/keys_db.c:2: layer: server/src/store/ includes "
                              f"server/src/{layer}/{header}", out)

    def test_audit_signs_without_the_ca(self):
        t = clean_tree(self)
        t.write("server/src/audit/checkpoint.c", '#include "writer.h"\n#include "../ca/ca.h"\n')
        rc, out = run(t.root)
        self.assertEqual(rc, 1, out)
        self.assertIn("server/src/audit/checkpoint.c:2: layer: server/src/audit/ includes "
                      "server/src/ca/ca.h", out)

    def test_lower_layers_and_the_cli(self):
        t = clean_tree(self)
        t.write("server/src/cli/cli.h", "#pragma once\n")
        t.write("server/src/cli/main.c", '#include "cli.h"\n#include "../store/db.h"\n')
        rc, out = run(t.root)
        self.assertEqual(rc, 0, out)  # the CLI may use everything, itself included
        t.write("server/src/hsm/hsm.c", '#include "hsm.h"\n#include "../store/db.h"\n')
        t.write("server/src/common/log.c", '#include "../cli/cli.h"\n')
        rc, out = run(t.root)
        self.assertEqual(rc, 1, out)
        self.assertIn("server/src/hsm/hsm.c:2: layer: server/src/hsm/ includes "
                      "server/src/store/db.h (the HSM layer sits below it)", out)
        self.assertIn("server/src/common/log.c:1: layer: server/src/common/ includes "
                      "server/src/cli/cli.h", out)
        self.assertIn("(the core library does not depend on the CLI)", out)

    def test_util_may_not_include_agent_internals(self):
        t = clean_tree(self)
        t.write("agent-core/src/util/admin.c", '#include "signum/client.h"\n'
                '#include "../agent/agent.h"\n')
        rc, out = run(t.root)
        self.assertEqual(rc, 1, out)
        self.assertIn("agent-core/src/util/admin.c:2: layer: agent-core/src/util/ includes "
                      "agent-core/src/agent/agent.h", out)

    def test_rule_not_enforced_yet_is_a_note(self):
        # A rule entered with enforced=False reports without failing, says when the tree keeps
        # it, and fails under --enforce-all (as the util/ rule did before its branch merged).
        checker = load_checker()
        edges = [("a/x.c", 3, "b/y.h")]
        rule = [("a", "b", "why", False)]
        problems, notes = checker.check_forbidden(edges, rule)
        self.assertEqual(problems, [])
        self.assertEqual(notes, ["a/x.c:3: layer: a/ includes b/y.h (why)"])
        problems, notes = checker.check_forbidden([], rule)
        self.assertIn("a/ no longer includes b/: the rule can be enforced", notes[0])
        t = clean_tree(self)
        rc, out = run(t.root, "--enforce-all")
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
