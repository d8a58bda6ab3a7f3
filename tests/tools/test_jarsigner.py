"""Java: jarsigner through SunPKCS11 and libsignumpkcs11.so (RSA and P-256). SunPKCS11 shows
only keys with a certificate of the same CKA_ID and builds the chain from the token's
certificates; `jarsigner -verify -strict` then checks the jar against a truststore holding only
the server's CA, made here with keytool."""

import unittest
import zipfile

from tools_harness import MODULE, ToolTestCase


class Jarsigner(ToolTestCase):

    @classmethod
    def prepare(cls):
        cls.jar = cls.path("hello.jar")
        with zipfile.ZipFile(cls.jar, "w") as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: test\r\n\r\n")
            z.writestr("hello.txt", "signed by Signum\n")
        cls.cfg = cls.write("p11.cfg", "name = Signum\nlibrary = %s\nslotListIndex = 0\n" % MODULE)
        cls.trust = cls.path("trust.p12")
        proc = cls.tool(["keytool", "-importcert", "-noprompt", "-keystore", cls.trust,
                         "-storetype", "PKCS12", "-storepass", "changeit", "-alias", "signum-ca",
                         "-file", cls.path("ca.pem")])
        assert proc.returncode == 0, proc.out

    def test_sign_and_verify(self):
        for key, alg in (("rel-rsa", "SHA256withRSA"), ("rel-ec", "SHA256withECDSA")):
            with self.subTest(key=key):
                signed = self.path("signed-%s.jar" % key)
                before = self.server.audit_last_seq()
                self.tool_ok(["jarsigner", "-keystore", "NONE", "-storetype", "PKCS11",
                              "-addprovider", "SunPKCS11", "-providerArg", self.cfg,
                              "-storepass", "1234", "-sigalg", alg, "-digestalg", "SHA-256",
                              "-signedjar", signed, self.jar, key])
                proc = self.tool(["jarsigner", "-verify", "-strict", "-verbose", "-certs",
                                  "-keystore", self.trust, "-storepass", "changeit", signed])
                self.assertEqual(proc.returncode, 0, proc.out)
                self.assertIn("jar verified.", proc.out)
                # The chain came from the token: the CA is in the signature block.
                self.assertIn("CN=Signum Root CA", proc.out)
                self.assertEqual(len(self.audit_signs(before)), 1)

    def test_keytool_lists_the_token(self):
        out = self.tool_ok(["keytool", "-list", "-keystore", "NONE", "-storetype", "PKCS11",
                            "-addprovider", "SunPKCS11", "-providerArg", self.cfg,
                            "-storepass", "1234"]).out
        self.assertIn("rel-rsa, PrivateKeyEntry", out)
        self.assertIn("rel-ec, PrivateKeyEntry", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
