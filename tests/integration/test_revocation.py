"""Certificate revocation on the built-in CA: every issued code-signing certificate names the
server's CRL in its CRL distribution point; revoking a key's certificate (with an RFC 5280
reason and a comment, audited) re-signs the CRL in the HSM; `openssl verify -crl_check` then
rejects the revoked certificate and accepts a good one. Anonymous CRL reads cost no HSM
signature and no audit record."""

import os
import re
import ssl
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import ServerTestCase, pem  # noqa: E402


class RevocationTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        for name in ("rv-bad", "rv-good", "rv-bare"):
            s.create_key(name, "ec-p256")
        cls.bad = s.issue_cert("rv-bad", "Revoked soon")["certificate_pem"]
        cls.good = s.issue_cert("rv-good", "Stays good")["certificate_pem"]

    # -- helpers
    def write(self, name, text):
        return self.server.openssl.tmp(text, "-" + name)

    def cdp(self, cert_pem):
        out = self.server.openssl("x509", "-noout", "-ext", "crlDistributionPoints",
                                  input=cert_pem.encode()).stdout.decode()
        m = re.search(r"URI:(\S+)", out)
        self.assertIsNotNone(m, "no CRL distribution point in\n" + out)
        return m.group(1)

    def fetch(self, url):
        ctx = ssl.create_default_context(cafile=self.server.ca_cert_path)
        with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
            self.assertEqual(r.headers.get("Content-Type"), "application/pkix-crl")
            return r.read()

    def crl_pem(self, url):
        der = self.fetch(url)
        return pem(der, "X509 CRL")

    def verify(self, cert_pem, crl_pem):
        return self.server.openssl("verify", "-crl_check", "-CAfile", self.server.ca_cert_path,
                                   "-CRLfile", self.write("crl.pem", crl_pem),
                                   self.write("leaf.pem", cert_pem), check=False)

    def revoke(self, key, body, token=None):
        return self.server.request("POST", "/api/v1/admin/keys/%s/certificate/revoke" % key, body,
                                   token=token or self.server.admin_token())

    # -- tests
    def test_revoked_certificate_is_rejected(self):
        s = self.server
        url = self.cdp(self.bad)
        self.assertEqual(url, "https://localhost:%d/api/v1/crl" % s.port)
        self.assertEqual(self.cdp(self.good), url)
        before = self.crl_pem(url)
        # The CRL is the CA's: its signature verifies against the CA certificate.
        s.openssl("crl", "-noout", "-CAfile", s.ca_cert_path, input=before.encode())
        self.assertEqual(self.verify(self.bad, before).returncode, 0)

        r = self.revoke("rv-bad", {"reason": "key_compromise", "comment": "laptop stolen"})
        self.assertEqual(r.status, 200, r)
        serial = s.openssl("x509", "-noout", "-serial",
                           input=self.bad.encode()).stdout.decode().strip().split("=")[1]
        self.assertEqual(r.json["serial"].lstrip("0"), serial.lstrip("0"))

        after = self.crl_pem(url)
        text = s.openssl("crl", "-noout", "-text", input=after.encode()).stdout.decode()
        self.assertIn("Key Compromise", text)
        self.assertRegex(text, r"X509v3 CRL Number:\s+%d" % r.json["crl_number"])
        bad = self.verify(self.bad, after)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn(b"certificate revoked", bad.stdout + bad.stderr)
        good = self.verify(self.good, after)
        self.assertEqual(good.returncode, 0, good.stdout + good.stderr)

        rec = [x for x in s.audit_show() if x["action"] == "certificate.revoke"][-1]
        self.assertEqual((rec["actor"], rec["outcome"]), ("user:admin", "ok"))
        self.assertEqual((rec["detail"]["key"], rec["detail"]["reason"], rec["detail"]["comment"]),
                         ("rv-bad", "key_compromise", "laptop stolen"))
        self.assertEqual(s.audit_verify()[0], 0)

        # Again: 409, and the CRL does not change.
        self.assertError(self.revoke("rv-bad", {"reason": "superseded", "comment": "again"}),
                         409, "already_exists")

    def test_bad_requests(self):
        cases = {
            "unknown reason": ("rv-good", {"reason": "ca_compromise", "comment": "x"}, 400,
                               "invalid_field"),
            "no comment": ("rv-good", {"reason": "superseded"}, 400, "invalid_field"),
            "empty comment": ("rv-good", {"reason": "superseded", "comment": ""}, 400,
                              "invalid_field"),
            "no certificate": ("rv-bare", {"reason": "superseded", "comment": "x"}, 404,
                               "not_found"),
            "no such key": ("rv-none", {"reason": "superseded", "comment": "x"}, 404,
                            "key_not_found"),
        }
        for label, (key, body, status, code) in cases.items():
            with self.subTest(case=label):
                self.assertError(self.revoke(key, body), status, code)
        signer = self.server.create_user("rv-signer")
        r = self.revoke("rv-good", {"reason": "superseded", "comment": "x"},
                        token=self.server.token_for(signer))
        self.assertError(r, 403, "forbidden")
        crl = self.crl_pem(self.cdp(self.good))
        self.assertEqual(self.verify(self.good, crl).returncode, 0)

    def test_anonymous_reads_cost_nothing(self):
        s = self.server
        url = self.cdp(self.good)
        first = self.fetch(url)
        last = s.audit_last_seq()
        for _ in range(20):
            self.assertEqual(self.fetch(url), first)
        self.assertEqual(s.audit_last_seq(), last, "anonymous CRL reads wrote audit records")


class RevocationRsaCaTest(RevocationTest):
    """The same with an RSA CA (sha256WithRSAEncryption CRLs)."""
    server_options = {"ca_key_type": "rsa2048"}


if __name__ == "__main__":
    unittest.main(verbosity=2)
