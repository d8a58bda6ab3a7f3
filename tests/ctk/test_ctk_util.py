"""`signum-util keychain` off macOS: every action says plainly that it is macOS-only and where
to look instead, exits with the usage code (2), and starts no agent."""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from signum_harness import run  # noqa: E402

UTIL = os.environ.get("SIGNUM_UTIL", "")


class KeychainOffMacOS(unittest.TestCase):

    def test_every_action_is_macos_only(self):
        with tempfile.TemporaryDirectory() as runtime:
            env = {"PATH": os.environ.get("PATH", ""), "XDG_RUNTIME_DIR": runtime,
                   "SIGNUM_AGENT": "/nonexistent/signum-agent"}
            for args in (["--add", "rel-rsa"], ["--remove", "rel-rsa"], ["--list"], ["--sync"]):
                p = run([UTIL, "keychain"] + args, env=env)
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 2, (args, err))
                self.assertIn("signum-util keychain: macOS only", err)
                self.assertIn("PKCS#11 module", err)
                self.assertEqual(p.stdout, b"")
            self.assertEqual(os.listdir(runtime), [])  # no agent was started
        usage = run([UTIL, "--help"]).stdout.decode()
        self.assertIn("keychain --add|--remove KEY, --list, --sync", usage)


if __name__ == "__main__":
    if not UTIL:
        sys.exit("SIGNUM_UTIL is not set (run through ctest)")
    unittest.main(verbosity=2)
