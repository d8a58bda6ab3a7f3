"""`signum-util keychain` on macOS runs the host app (agent-core/src/util/keychain_macos.c). Here
that file is linked into keychain-drive and SIGNUM_HOST_APP names a stub host app, a shell
script that writes down its arguments and one variable of its environment, prints a line and
exits as told: the arguments passed, what is refused before any run, and the exit codes."""

import os
import stat
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from signum_harness import run  # noqa: E402

DRIVE = os.environ.get("KEYCHAIN_DRIVE", "")

STUB = """#!/bin/sh
for a in "$@"; do printf '%s\\n' "$a"; done >"$STUB_DIR/args"
printf '%s\\n' "$SIGNUM_AGENT_SOCKET" >"$STUB_DIR/socket"
echo "host app ran"
case $STUB_EXIT in
  kill) kill -9 $$ ;;
  *) exit "$STUB_EXIT" ;;
esac
"""


class KeychainCli(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="signum-keychain-")
        self.stub = os.path.join(self.dir, "Signum")
        with open(self.stub, "w") as f:
            f.write(STUB)
        os.chmod(self.stub, stat.S_IRWXU)

    def tearDown(self):
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def keychain(self, *args, exit_code="0", app=None):
        env = {"PATH": os.environ.get("PATH", ""), "STUB_DIR": self.dir, "STUB_EXIT": exit_code,
               "SIGNUM_HOST_APP": self.stub if app is None else app,
               "SIGNUM_AGENT_SOCKET": "/run/user/test/signum/agent.sock"}
        return run([DRIVE] + list(args), env=env, timeout=30.0)

    def app_args(self):
        with open(os.path.join(self.dir, "args")) as f:
            return f.read().splitlines()

    def test_arguments_passed_to_the_host_app(self):
        for args in (["--add", "rel-rsa"], ["--remove", "rel ec"], ["--list"], ["--sync"]):
            p = self.keychain(*args)
            self.assertEqual(p.returncode, 0, (args, p.stderr))
            self.assertEqual(self.app_args(), args)
            self.assertEqual(p.stdout, b"host app ran\n")  # the app's output comes through
            with open(os.path.join(self.dir, "socket")) as f:  # and it gets our environment
                self.assertEqual(f.read(), "/run/user/test/signum/agent.sock\n")
            os.unlink(os.path.join(self.dir, "args"))

    def test_malformed_commands_run_nothing(self):
        for args in ([], ["--add"], ["--remove"], ["--list", "extra"], ["--sync", "x"],
                     ["--add", "a", "b"], ["--bogus"], ["rel-rsa"]):
            p = self.keychain(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertEqual(p.stderr,
                             b"Usage: signum-util keychain --add KEY | --remove KEY | --list | "
                             b"--sync\n", args)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "args")), args)
        p = self.keychain("--help")
        self.assertEqual((p.returncode, p.stderr), (0, b""))
        self.assertIn(b"Usage: signum-util keychain", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "args")))

    def test_exit_codes(self):
        # The host app's 0 and 2 (usage) pass through; any other failure is 1.
        for app_exit, want in (("0", 0), ("2", 2), ("1", 1), ("3", 1), ("77", 1)):
            p = self.keychain("--add", "rel-rsa", exit_code=app_exit)
            self.assertEqual(p.returncode, want, (app_exit, p.stderr))
            self.assertEqual(self.app_args(), ["--add", "rel-rsa"])
        p = self.keychain("--sync", exit_code="kill")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"ended by signal 9", p.stderr)

    def test_no_host_app(self):
        missing = os.path.join(self.dir, "Signum.app", "Contents", "MacOS", "Signum")
        p = self.keychain("--list", app=missing)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.decode(),
                         "signum-util keychain: cannot run %s: No such file or directory (is "
                         "Signum.app installed?)\n" % missing)
        # Unset (or empty): the installed app's path.
        p = self.keychain("--list", app="")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"cannot run /Applications/Signum.app/Contents/MacOS/Signum: ", p.stderr)


if __name__ == "__main__":
    if not DRIVE:
        sys.exit("KEYCHAIN_DRIVE is not set (run through ctest)")
    unittest.main(verbosity=2)
