"""Authenticode: osslsigncode 2.9 (libp11 engine) signs a small Windows PE, built here with
mingw-w64, through libsignumpkcs11.so with the certificate taken from the token; then
`osslsigncode verify` checks it against the server's CA, and a tampered copy fails."""

import unittest

from tools_harness import MODULE, ToolTestCase, run

HELLO_C = b'#include <stdio.h>\nint main(void) { puts("signed by Signum"); return 0; }\n'


class Osslsigncode(ToolTestCase):

    @classmethod
    def prepare(cls):
        src = cls.write("hello.c", HELLO_C)
        cls.exe = cls.path("hello.exe")
        run(["x86_64-w64-mingw32-gcc", "-O2", "-s", "-o", cls.exe, src], check=True)

    def sign(self, key, out):
        uri = "%s;object=%s" % (self.token_uri, key)
        return self.tool_ok(["osslsigncode", "sign", "-pkcs11module", MODULE,
                             "-pkcs11cert", uri + ";type=cert", "-key", uri + ";type=private",
                             "-pass", "1234", "-h", "sha256", "-n", "Signum test",
                             "-in", self.exe, "-out", out])

    def verify(self, path):
        return self.tool(["osslsigncode", "verify", "-CAfile", self.path("ca.pem"), "-in", path])

    def test_sign_and_verify_rsa_and_ec(self):
        for key in ("rel-rsa", "rel-ec"):
            with self.subTest(key=key):
                out = self.path("signed-%s.exe" % key)
                before = self.server.audit_last_seq()
                self.sign(key, out)
                proc = self.verify(out)
                self.assertEqual(proc.returncode, 0, proc.out)
                self.assertIn("Signature verification: ok", proc.out)
                self.assertIn("Signum test " + key, proc.out)  # the signer from the token
                signs = self.audit_signs(before)
                self.assertEqual(len(signs), 1)
                self.assertTrue(signs[0]["detail"]["client"]["application"]
                                .endswith("/osslsigncode"))
                # A changed byte in the signed file must not verify: the check is real.
                with open(out, "rb") as f:
                    data = bytearray(f.read())
                data[0x200] ^= 0xFF
                bad = self.write("tampered-%s.exe" % key, bytes(data))
                self.assertNotEqual(self.verify(bad).returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
