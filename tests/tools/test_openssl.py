"""openssl signing through libsignumpkcs11.so, by both routes OpenSSL 3 has to a PKCS#11 token:
the libp11 engine and pkcs11-provider (without its no-deinit quirk: our module brings no
OpenSSL that could be torn down twice). RSA PKCS#1 v1.5, RSA-PSS and P-256, each verified by
plain openssl against the certificate the server issued."""

import os
import re
import unittest

from tools_harness import MODULE, ToolTestCase, run

PROVIDER_CONF = """openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect
[default_sect]
activate = 1
[pkcs11_sect]
module = %s
pkcs11-module-path = %s
activate = 1
"""

CASES = (
    # key, extra openssl dgst options, verify options
    ("rel-rsa", [], []),
    ("rel-rsa", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"],
     ["rsa_padding_mode:pss", "rsa_pss_saltlen:32"]),
    ("rel-ec", [], []),
)


class OpenSSL(ToolTestCase):

    @classmethod
    def prepare(cls):
        cls.msg = cls.write("msg.txt", b"openssl through Signum\n" * 100)
        modules_dir = re.search(r'MODULESDIR: "([^"]+)"',
                                run(["openssl", "version", "-m"], check=True).stdout.decode())
        provider = os.path.join(modules_dir.group(1), "pkcs11.so")  # pkcs11-provider
        cls.provider_conf = cls.write("provider.cnf", PROVIDER_CONF % (provider, MODULE))

    def sign_and_verify(self, route, key, opts, verify_opts, n):
        sig = self.path("%s-%s-%d.sig" % (route, key, n))
        uri = "%s;object=%s;type=private" % (self.token_uri, key)
        if route == "engine":
            # The engine logs in when the URI carries a PIN; ours accepts any.
            proc = self.tool(["openssl", "dgst", "-engine", "pkcs11", "-keyform", "engine",
                              "-sign", uri + ";pin-value=1234", "-sha256"] + opts +
                             ["-out", sig, self.msg], extra_env={"PKCS11_MODULE_PATH": MODULE})
        else:
            proc = self.tool(["openssl", "dgst", "-sha256", "-sign", uri] + opts +
                             ["-out", sig, self.msg],
                             extra_env={"OPENSSL_CONF": self.provider_conf})
        # Exit 0, not 139: nothing crashes at exit, with no quirk configured.
        self.assertEqual(proc.returncode, 0, "%s %s: %s" % (route, key, proc.out))
        self.openssl_verify(key, self.msg, sig, *verify_opts)

    def test_libp11_engine(self):
        for n, (key, opts, vopts) in enumerate(CASES):
            with self.subTest(key=key, opts=opts):
                self.sign_and_verify("engine", key, opts, vopts, n)

    def test_pkcs11_provider(self):
        for n, (key, opts, vopts) in enumerate(CASES):
            with self.subTest(key=key, opts=opts):
                self.sign_and_verify("provider", key, opts, vopts, n)

    def test_provider_signs_every_time(self):
        """Each openssl run is one signature in the audit log: hashing is local, one digest
        goes out, and pkcs11-provider's probing costs no signatures."""
        before = self.server.audit_last_seq()
        self.sign_and_verify("provider", "rel-ec", [], [], 99)
        signs = self.audit_signs(before)
        self.assertEqual(len(signs), 1, signs)
        self.assertEqual(signs[0]["outcome"], "allowed")
        self.assertTrue(signs[0]["detail"]["client"]["application"].endswith("/openssl"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
