#!/usr/bin/env python3
"""scripts/check-call-cycles.py on object files compiled here into a CMake-like build tree:
two files that call each other are a circle (named with the symbols of each step), a
function table counts like a call, and files that only call downwards pass
(ctest style.call_cycles_selftest)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "..", "..", "scripts", "check-call-cycles.py")
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


@unittest.skipUnless(CC, "no C compiler")
class CheckCallCycles(unittest.TestCase):
    def build(self, sources):
        """Compiles {name: code} as the target demo of component lib/ (lib/src/NAME)."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        objdir = os.path.join(tmp.name, "lib", "CMakeFiles", "demo.dir", "src")
        os.makedirs(objdir)
        srcdir = os.path.join(tmp.name, "src")
        os.makedirs(srcdir)
        for name, code in sources.items():
            src = os.path.join(srcdir, name)
            with open(src, "w") as fh:
                fh.write(code)
            subprocess.run([CC, "-c", src, "-o", os.path.join(objdir, name + ".o")], check=True,
                           timeout=60)
        return tmp.name

    def check(self, build, *extra):
        p = subprocess.run([sys.executable, CHECKER, "--build", build, *extra],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    def test_mutual_calls_are_a_circle(self):
        build = self.build({
            "session.c": "int send_req(int);\nint session_token(void) { return 1; }\n"
                         "int session_call(void) { return send_req(2); }\n",
            "transport.c": "int session_token(void);\n"
                           "int send_req(int x) { return x + session_token(); }\n",
        })
        rc, out = self.check(build)
        self.assertEqual(rc, 1, out)
        self.assertIn("lib/src/session.c: circle: session.c -> transport.c -> session.c "
                      "(target lib/demo)", out)
        self.assertIn("lib/src/session.c -> lib/src/transport.c  (uses send_req)", out)
        self.assertIn("lib/src/transport.c -> lib/src/session.c  (uses session_token)", out)

    def test_function_table_counts_like_a_call(self):
        build = self.build({
            "global.c": "int p_enter(void) { return 0; }\nint C_Sign(void);\n"
                        "int (*const table[])(void) = {C_Sign};\n",
            "sign.c": "int p_enter(void);\nint C_Sign(void) { return p_enter(); }\n",
        })
        rc, out = self.check(build)
        self.assertEqual(rc, 1, out)
        self.assertIn("(uses C_Sign)", out)
        self.assertIn("(uses p_enter)", out)

    def test_layered_calls_pass(self):
        build = self.build({
            "state.c": "int p_enter(void) { return 0; }\n",
            "sign.c": "int p_enter(void);\nint C_Sign(void) { return p_enter(); }\n",
            "interface.c": "int C_Sign(void);\nint (*const table[])(void) = {C_Sign};\n",
        })
        rc, out = self.check(build)
        self.assertEqual(rc, 0, out)
        self.assertIn("1 targets, 3 object files: 0 circle(s)", out)

    def test_objects_the_target_no_longer_links_are_ignored(self):
        # transport.c once compiled into this target too: its object stays in the build tree
        # until a clean, but link.txt no longer names it.
        build = self.build({
            "session.c": "int send_req(int);\nint session_token(void) { return 1; }\n"
                         "int session_call(void) { return send_req(2); }\n",
            "transport.c": "int session_token(void);\n"
                           "int send_req(int x) { return x + session_token(); }\n",
        })
        with open(os.path.join(build, "lib", "CMakeFiles", "demo.dir", "link.txt"), "w") as fh:
            fh.write('/usr/bin/ar qc libdemo.a "CMakeFiles/demo.dir/src/session.c.o"\n'
                     "/usr/bin/ranlib libdemo.a\n")
        rc, out = self.check(build)
        self.assertEqual(rc, 0, out)
        self.assertIn("1 targets, 1 object files: 0 circle(s)", out)

    def test_objects_listed_in_a_response_file(self):
        # mingw links through @response files: the objects named there are the target's.
        build = self.build({
            "global.c": "int p_enter(void) { return 0; }\nint C_Sign(void);\n"
                        "int (*const table[])(void) = {C_Sign};\n",
            "sign.c": "int p_enter(void);\nint C_Sign(void) { return p_enter(); }\n",
        })
        tdir = os.path.join(build, "lib", "CMakeFiles", "demo.dir")
        with open(os.path.join(tdir, "link.txt"), "w") as fh:
            fh.write("ar qc CMakeFiles/demo.dir/objects.a @CMakeFiles/demo.dir/objects1\n")
        with open(os.path.join(tdir, "objects1"), "w") as fh:
            fh.write("CMakeFiles/demo.dir/src/global.c.o CMakeFiles/demo.dir/src/sign.c.o\n")
        rc, out = self.check(build)
        self.assertEqual(rc, 1, out)
        self.assertIn("1 targets, 2 object files: 1 circle(s)", out)

    def test_nothing_built_is_an_error(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        rc, out = self.check(tmp.name)
        self.assertEqual(rc, 2, out)
        self.assertIn("no object files", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
