"""The token extension's and the host app's Objective-C classes on Linux, linked against the
CryptoTokenKit stand-in (macos-ctk/standin) and driven as the system would drive them, against a
real agent and server: the host app publishes (--add, --remove, --list, a relaunch clears and
republishes), the driver's delegate makes the token from the published configuration, the
token's delegate a session, and the session's supportsOperation/signData go through the C shim
to the HSM. OpenSSL verifies the signatures. What this does not show: see macos-ctk/README.md."""

import hashlib
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from signum_harness import run  # noqa: E402
from test_ctk_shim import ShimCase  # noqa: E402

DRIVE = os.environ.get("SGTK_OBJC_DRIVE", "")


class ObjectiveC(ShimCase):

    def steps(self, agent, *steps):
        args = []
        for s in steps:
            args += list(s) + ["--"]
        p = run([DRIVE] + args[:-1], env=agent.env, timeout=120.0)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out + p.stderr.decode() + agent.log())
        return out.splitlines(), p.stderr.decode()

    def test_publish_token_session_sign(self):
        a = self.new_agent()
        rsa_id = self.entry(a, "tk-rsa")["key_id"]
        ec_id = self.entry(a, "tk-ec")["key_id"]
        msg = b"signed through TKTokenSession"
        d256 = hashlib.sha256(msg).hexdigest()
        di = "3031300d060960864801650304020105000420" + d256
        lines, err = self.steps(
            a, ["host", "--add", "tk-rsa"], ["host", "--add", "tk-ec"], ["host", "--list"],
            ["token"],
            ["supports", "tk-rsa", "RSASignatureDigestPSSSHA256"],
            ["supports", "tk-rsa", "ECDSASignatureDigestX962SHA256"],
            ["supports", "tk-ec", "ECDSASignatureDigestX962"],
            ["sign", "tk-rsa", "RSASignatureDigestPKCS1v15Raw", di],
            ["sign", "tk-rsa", "RSASignatureDigestPSSSHA256", d256],
            ["sign", "tk-ec", "ECDSASignatureDigestX962SHA256", d256],
            ["sign", "tk-ec", "RSASignatureDigestPSSSHA256", d256],
            ["sign", "tk-rsa", "ECDSASignatureDigestX962SHA384", d256])
        self.assertEqual(lines[0:4], ["published tk-rsa", "host-exit 0", "published tk-rsa",
                                      "published tk-ec"])
        self.assertEqual(lines[4], "host-exit 0")
        self.assertEqual(lines[5:8], ["tk-rsa " + rsa_id, "tk-ec " + ec_id, "host-exit 0"])
        items = sorted(lines[8:12])
        cert_ids = {n: self.entry(a, n)["cert_id"] for n in ("tk-rsa", "tk-ec")}
        self.assertEqual(items, sorted([
            "item certificate tk-rsa %s -" % cert_ids["tk-rsa"],
            "item key tk-rsa %s sign-allowed" % rsa_id,
            "item certificate tk-ec %s -" % cert_ids["tk-ec"],
            "item key tk-ec %s sign-allowed" % ec_id]))
        self.assertEqual(lines[12:15], ["yes", "no", "yes"])
        pub_rsa, pub_ec = self.pubkey(a, "tk-rsa"), self.pubkey(a, "tk-ec")
        for sig_hex, pub, pss in ((lines[15], pub_rsa, False), (lines[16], pub_rsa, True),
                                  (lines[17], pub_ec, False)):
            r = self.verify(pub, "sha256", msg, bytes.fromhex(sig_hex), pss=pss)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Wrong kind and wrong digest length: NSErrors in TKErrorDomain with the shim's codes.
        self.assertTrue(lines[18].startswith("error -1 CryptoTokenKit "), lines[18])
        self.assertTrue(lines[19].startswith("error -8 CryptoTokenKit "), lines[19])
        self.assertIn("digest has 32 bytes", lines[19])

    def test_remove_relaunch_and_refusals(self):
        a = self.new_agent()
        lines, err = self.steps(
            a, ["host", "--add", "tk-rsa"], ["host", "--add", "tk-ec384"],
            ["host", "--remove", "tk-rsa"],
            # A relaunch (no argument) clears and republishes what is configured.
            ["host"], ["host", "--list"],
            ["host", "--remove", "tk-rsa"], ["host", "--add", "tk-bare"],
            ["host", "--add", "no-such-key"], ["host", "--add"], ["host", "--frobnicate"],
            ["token"], ["sign", "tk-rsa", "RSASignatureDigestPSSSHA256", "00" * 32])
        ec384 = self.entry(a, "tk-ec384")["key_id"]
        self.assertEqual(lines, [
            "published tk-rsa", "host-exit 0",
            "published tk-rsa", "published tk-ec384", "host-exit 0",
            "published tk-ec384", "host-exit 0",
            "published tk-ec384", "host-exit 0",
            "tk-ec384 " + ec384, "host-exit 0",
            "host-exit 1", "host-exit 1", "host-exit 1", "host-exit 2", "host-exit 2",
            "item certificate tk-ec384 %s -" % self.entry(a, "tk-ec384")["cert_id"],
            "item key tk-ec384 %s sign-allowed" % ec384,
            # tk-rsa was removed: the token has no such key item any more.
            lines[-1]])
        self.assertTrue(lines[-1].startswith("error -6 CryptoTokenKit "), lines[-1])
        self.assertIn("tk-rsa is not in the keychain (TKErrorCodeObjectNotFound)", err)
        self.assertIn("no certificate", err)
        self.assertIn("no key no-such-key", err)
        self.assertIn("usage: Signum --add KEY", err)

    def test_no_agent(self):
        """No agent (the host app starts none): --add publishes nothing and says why."""
        b = self.new_agent(start=False)
        lines, err = self.steps(b, ["host", "--add", "tk-ec"])
        self.assertEqual(lines, ["host-exit 1"])
        self.assertIn("TKErrorCodeCommunicationError", err)
        self.assertIn("launchctl kickstart", err)
        self.assertFalse(b.running())

if __name__ == "__main__":
    if not DRIVE:
        sys.exit("SGTK_OBJC_DRIVE is not set (run through ctest)")
    unittest.main(verbosity=2)
