"""OpenSC's pkcs11-tool, GnuTLS's p11tool and p11-kit through libsignumpkcs11.so: listing the
token and its objects, signing (verified with openssl), and the module file p11-kit reads."""

import os
import sys
import unittest

from tools_harness import MODULE, SOFTHSM_MODULE, ToolTestCase, run, timed


class Pkcs11Tool(ToolTestCase):

    def p11(self, *args):
        return self.tool_ok(["pkcs11-tool", "--module", MODULE] + list(args))

    def test_list_slots(self):
        out = self.p11("-L").out
        self.assertIn("token label        : Signum alice", out)
        self.assertIn("token manufacturer : Signum", out)
        self.assertIn("readonly", out)
        self.assertNotIn("login required", out)  # the agent holds a session

    def test_list_objects(self):
        out = self.p11("-O").out
        for key in ("rel-rsa", "rel-ec"):
            ckaid = self.key_id(key)
            # Private key, public key and certificate, one label and one CKA_ID.
            self.assertEqual(out.count("label:      %s\n" % key), 3, out)
            self.assertEqual(out.count("ID:         %s\n" % ckaid), 3, out)
        self.assertIn("Access:     sensitive, always sensitive, never extractable, local", out)
        self.assertIn("Certificate Object; type = X.509 cert\n  label:      Signum Root CA", out)

    def test_listing_fetched_once_per_process(self):
        """pkcs11-tool -O makes dozens of calls; the key listing comes from the agent once."""
        log = self.path("once.log")
        self.tool_ok(["pkcs11-tool", "--module", MODULE, "-O"],
                     extra_env={"SIGNUM_DEBUG": "p11", "SIGNUM_P11_LOG": log})
        with open(log) as f:
            text = f.read()
        self.assertEqual(text.count("token for alice"), 1, text)
        self.assertGreater(text.count("C_GetAttributeValue: "), 20)

    def test_sign_rsa_ec_pss(self):
        msg = self.write("msg.txt", b"pkcs11-tool through Signum\n")
        digest = self.write("msg.sha256", run(["openssl", "dgst", "-sha256", "-binary", msg],
                                              check=True).stdout)
        rsa, ec = self.key_id("rel-rsa"), self.key_id("rel-ec")
        # A PIN is accepted (and means nothing while the agent holds a session).
        self.p11("--login", "--pin", "1234", "--sign", "-m", "SHA256-RSA-PKCS", "--id", rsa,
                 "-i", msg, "-o", self.path("rsa.sig"))
        self.openssl_verify("rel-rsa", msg, self.path("rsa.sig"))
        self.p11("--sign", "-m", "ECDSA-SHA256", "--signature-format", "openssl", "--id", ec,
                 "-i", msg, "-o", self.path("ec.sig"))
        self.openssl_verify("rel-ec", msg, self.path("ec.sig"))
        self.p11("--sign", "-m", "RSA-PKCS-PSS", "--hash-algorithm", "SHA256", "--mgf",
                 "MGF1-SHA256", "--salt-len", "32", "--id", rsa, "-i", digest, "-o",
                 self.path("pss.sig"))
        self.openssl_verify("rel-rsa", msg, self.path("pss.sig"), "rsa_padding_mode:pss",
                            "rsa_pss_saltlen:32")
        self.p11("--sign", "-m", "SHA512-RSA-PKCS-PSS", "--id", rsa, "-i", msg, "-o",
                 self.path("pss512.sig"))
        self.openssl_verify("rel-rsa", msg, self.path("pss512.sig"), "rsa_padding_mode:pss",
                            "rsa_pss_saltlen:64", md="sha512")

    def test_read_certificate_from_token(self):
        self.p11("--read-object", "--type", "cert", "--label", "rel-ec", "-o",
                 self.path("ec-from-token.der"))
        with open(self.path("ec-from-token.der"), "rb") as f:
            import base64
            self.assertEqual(f.read(), base64.b64decode(self.cert_der("rel-ec")))

    def test_decrypt_is_refused_cleanly(self):
        # A sign-only token offers no decryption mechanism; asking anyway gets a clear error.
        proc = self.tool(["pkcs11-tool", "--module", MODULE, "--decrypt", "-m", "RSA-PKCS",
                          "--id", self.key_id("rel-rsa"), "-i", self.write("ct", b"x" * 256)])
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(proc.out, "CKR_FUNCTION_NOT_SUPPORTED|not supported")

    def test_timing_against_softhsm(self):
        """One pkcs11-tool --sign process through Signum (module, agent, HTTPS, server, HSM) and
        one against a throwaway SoftHSMv2 token directly: reported, not asserted tightly
        (machines are noisy)."""
        dgst = self.write("t.dgst", b"\x01" * 32)
        ec = self.key_id("rel-ec")
        ours = timed(lambda: self.p11("--sign", "-m", "ECDSA", "--id", ec, "-i", dgst, "-o",
                                      self.path("t.sig")), 9)
        tokens = self.path("softhsm-tokens")
        os.mkdir(tokens)
        conf = self.write("softhsm2.conf", "directories.tokendir = %s\n" % tokens)
        env = dict(os.environ, SOFTHSM2_CONF=conf)
        run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin",
             "12345678", "--pin", "1234"], env=env, check=True)
        tool = ["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "bench", "--login",
                "--pin", "1234"]
        run(tool + ["--keypairgen", "--key-type", "EC:prime256v1", "--id", "01"], env=env,
            check=True)
        direct = timed(lambda: run(tool + ["--sign", "-m", "ECDSA", "--id", "01", "-i", dgst,
                                           "-o", self.path("h.sig")], env=env, check=True), 9)
        sys.stderr.write("\npkcs11-tool --sign (P-256), median of 9: %.1f ms through Signum, "
                         "%.1f ms against SoftHSMv2 directly (ratio %.1f)\n"
                         % (ours, direct, ours / direct))
        self.assertLess(ours, 2000)


class P11Tool(ToolTestCase):

    def test_list_all(self):
        out = self.tool_ok(["p11tool", "--provider", MODULE, "--list-all"]).out
        for key in ("rel-rsa", "rel-ec"):
            for kind in ("private", "public", "cert"):
                self.assertIn("object=%s;type=%s" % (key, kind), out)
        self.assertIn("Type: Private key (EC/ECDSA-SECP256R1)", out)

    def test_test_sign(self):
        for key in ("rel-rsa", "rel-ec"):
            out = self.tool_ok(["p11tool", "--provider", MODULE, "--test-sign",
                                "%s;object=%s;type=private" % (self.token_uri, key)]).out
            self.assertIn("Verifying against public key in the token... ok", out)


class P11KitModuleFile(ToolTestCase):
    """The module file from installer/, pointed at this build and put in a user's p11-kit
    configuration: p11-kit lists the module and its token, and p11tool finds the token without
    being told the module. p11-kit reads no user configuration as root, so this runs as an
    unprivileged user (nobody) with a home, an agent and credentials of its own."""

    def as_nobody(self, args, env):
        return self.tool(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "--"] + args, extra_env=env)

    def test_list_modules(self):
        # p11-kit ignores user configuration as root, so the check runs as nobody: that
        # needs root to switch. CI runs as root; elsewhere this fails loudly, never skips.
        self.assertEqual(os.getuid(), 0, "run as root: the test switches to uid nobody")
        home = self.path("nobody")
        config = os.path.join(home, ".config", "pkcs11", "modules")
        os.makedirs(config)
        os.makedirs(os.path.join(home, "run"), mode=0o700)
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "installer",
                           "p11-kit", "signum.module")
        with open(src) as f:
            text = f.read().replace("module: libsignumpkcs11.so", "module: " + MODULE)
        with open(os.path.join(config, "signum.module"), "w") as f:
            f.write(text)
        with open(os.path.join(home, "ca.pem"), "w") as f:
            f.write(self.server.ca_pem())
        for d, _, files in os.walk(home):
            os.chown(d, 65534, 65534)
            for name in files:
                os.chown(os.path.join(d, name), 65534, 65534)
        for d in (self.dir, self.agent.root):  # traversable, so nobody reaches its home
            os.chmod(d, 0o711)
        env = {"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"),
               "XDG_RUNTIME_DIR": os.path.join(home, "run"),
               "XDG_CACHE_HOME": os.path.join(home, "cache"),
               "SIGNUM_CA_FILE": os.path.join(home, "ca.pem")}
        try:
            out = self.as_nobody(["p11-kit", "list-modules"], env).out
            self.assertIn("signum: " + MODULE, out)
            self.assertIn("library-manufacturer: Signum", out)
            self.assertIn("token: Signum alice", out)
            out = self.as_nobody(["p11tool", "--list-tokens"], env).out
            self.assertIn("Label: Signum alice", out)
        finally:
            self.as_nobody([os.environ.get("SIGNUM_UTIL", "signum-util"), "agent", "stop"],
                           dict(env, SIGNUM_NO_AUTOSTART="1"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
