"""A key's lifecycle, centrally: suspending a key while clients sign with it in a loop (the
compromise playbook: no signature leaves once the suspension has returned, and its answer
lists what the key signed since a given time), enabling it again, and refusing to sign with a
key whose certificate is revoked or expired."""

import base64
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase, b64, ecdsa_raw_to_der, pem  # noqa: E402
from test_certificates import ExternalCA  # noqa: E402

LOOP_MAX = 600        # requests over all client threads, at most
LOOP_SECONDS = 30.0   # and for at most this long
THREADS = 4


class KeyLifecycleTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.signer = s.token_for(s.create_user("kl-signer"))

    def new_key(self, name, cert=True):
        s = self.server
        s.create_key(name, "ec-p256")
        if cert:
            s.issue_cert(name, "Lifecycle " + name)
        s.grant(name, "kl-signer")

    def sign(self, key, n=0):
        digest = HASHES["sha256"](b"lifecycle %s %d" % (key.encode(), n)).digest()
        return self.server.sign_request(self.signer, key, "ecdsa", "sha256", digest)

    def admin(self, path, body, expect=200):
        return self.server.call("POST", "/api/v1/admin/keys/" + path, body,
                                token=self.server.admin_token(), expect=expect)

    def test_suspend_while_signing(self):
        s = self.server
        self.new_key("kl-hot")
        since = int(time.time()) - 1
        results, lock = [], threading.Lock()
        stop = threading.Event()
        counter = iter(range(LOOP_MAX))
        deadline = time.monotonic() + LOOP_SECONDS

        def client():
            conn = s.connection()
            try:
                signing(conn)
            finally:
                conn.close()

        def signing(conn):
            while not stop.is_set() and time.monotonic() < deadline:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                sent = time.monotonic()
                r = s.request("POST", "/api/v1/sign", {
                    "key": "kl-hot", "mechanism": "ecdsa", "hash": "sha256",
                    "digest": b64(HASHES["sha256"](b"hot %d" % n).digest())},
                    token=self.signer, conn=conn)
                with lock:
                    results.append((sent, r.status, r.error_code,
                                    r.json.get("audit_id") if r.status == 200 else None,
                                    (r.json or {}).get("error", {}).get("message", "")))

        threads = [threading.Thread(target=client) for _ in range(THREADS)]
        for t in threads:
            t.start()
        while len([x for x in results if x[1] == 200]) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        answer = self.admin("kl-hot/suspend", {"reason": "key compromised", "since": since})
        returned = time.monotonic()
        # Keep signing a while after the suspension returned, then stop.
        while time.monotonic() < min(returned + 2.0, deadline):
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(60)

        ok = [x for x in results if x[1] == 200]
        after = [x for x in results if x[0] >= returned]
        self.assertGreaterEqual(len(ok), 30, "the loop never got going")
        self.assertTrue(after, "no request was sent after the suspension returned")
        for sent, status, code, _, msg in after:
            self.assertEqual((status, code), (403, "key_disabled"))
            self.assertIn("key compromised", msg)
        rec = [r for r in s.audit_show() if r["action"] == "key.suspend"][-1]
        self.assertEqual((rec["actor"], rec["detail"]["reason"]), ("user:admin", "key compromised"))
        # Every signature handed out was committed before the suspension...
        self.assertTrue(all(x[3] < rec["seq"] for x in ok))
#... and the suspension's answer lists exactly them.
        listed = sorted(sig["audit_id"] for sig in answer["signatures_since"])
        self.assertEqual(listed, sorted(x[3] for x in ok))
        self.assertFalse(answer["truncated"])
        self.assertEqual(rec["detail"]["signatures_since"], len(ok))
        self.assertEqual(s.audit_verify()[0], 0)

        # Enabling it again (with a reason) lets it sign.
        self.admin("kl-hot/enable", {"reason": "key rotated out, false alarm"})
        self.assertEqual(self.sign("kl-hot").status, 200)

    def test_suspend_needs_a_reason(self):
        self.new_key("kl-why")
        for body in ({}, {"reason": ""}, {"reason": "x", "since": -1}, {"reason": "x", "who": 1}):
            with self.subTest(body=body):
                r = self.server.request("POST", "/api/v1/admin/keys/kl-why/suspend", body,
                                        token=self.server.admin_token())
                self.assertIn(r.error_code, ("invalid_field", "unknown_field"), r)
        self.assertEqual(self.sign("kl-why").status, 200)

    def test_revoked_certificate_refuses_signing(self):
        s = self.server
        self.new_key("kl-rev")
        self.assertEqual(self.sign("kl-rev").status, 200)
        self.admin("kl-rev/certificate/revoke", {"reason": "key_compromise", "comment": "test"})
        self.assertError(self.sign("kl-rev", 1), 403, "certificate_revoked")
        # A new certificate for the same key (renewal) makes it usable again.
        s.issue_cert("kl-rev", "Lifecycle kl-rev renewed")
        self.assertEqual(self.sign("kl-rev", 2).status, 200)

    def cert_facts(self, cert_der):
        """(serial, notBefore, notAfter, public key PEM) of a DER certificate."""
        o = self.server.openssl
        path = o.tmp(cert_der, ".der")
        out = o("x509", "-inform", "DER", "-in", path, "-noout", "-serial", "-startdate",
                "-enddate").stdout.decode()
        fields = dict(line.split("=", 1) for line in out.splitlines())
        return (fields["serial"], fields["notBefore"], fields["notAfter"],
                o.pubkey_from_cert(cert_der))

    def verify_with_cert(self, cert_der, n, r):
        """The signature of sign(key, n) verifies with the certificate's public key, and the
        certificate verifies against the CA and its current CRL."""
        s, o = self.server, self.server.openssl
        msg = b"lifecycle %s %d" % (r.json["key"].encode(), n)
        ok, out = o.verify_digest_sig(o.pubkey_from_cert(cert_der), "sha256", msg,
                                      ecdsa_raw_to_der(base64.b64decode(r.json["signature"])))
        self.assertTrue(ok, out)
        answer = s.request("GET", "/api/v1/crl")
        self.assertEqual(answer.status, 200, answer)
        crl = o.tmp(pem(answer.body, "X509 CRL"), ".pem")
        leaf = o.tmp(pem(cert_der), ".pem")
        v = o("verify", "-crl_check", "-CAfile", s.ca_cert_path, "-CRLfile", crl, leaf,
              check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_renew_a_valid_certificate(self):
        """Renewal: a new certificate for the same key while the old one is still valid. It
        has a new serial and validity and the same public key; the key signs on and its new
        signatures verify with the new certificate, which listings serve at once. The old
        certificate is replaced, not revoked: it is no longer listed (the certificate.issue
        records keep its serial) and still verifies against the CRL."""
        s = self.server
        self.new_key("kl-renew")
        before = s.get_key("kl-renew")
        old_der = base64.b64decode(before["certificate"])
        old = self.cert_facts(old_der)
        r = self.sign("kl-renew")
        self.assertEqual(r.status, 200, r)
        self.verify_with_cert(old_der, 0, r)

        last = s.audit_last_seq()
        renewed = s.issue_cert("kl-renew", "Lifecycle kl-renew", validity_days=30)
        after = s.get_key("kl-renew")
        new_der = base64.b64decode(after["certificate"])
        self.assertEqual(pem(new_der).strip(), renewed["certificate_pem"].strip())
        new = self.cert_facts(new_der)
        self.assertNotEqual(new[0], old[0])               # serial
        self.assertNotEqual(new[2], old[2])               # notAfter: 30 days, not 365
        self.assertLess(after["certificate_not_after"], before["certificate_not_after"])
        self.assertEqual(new[3], old[3])                  # the same public key
        self.assertEqual((after["id"], after["public_key"]), (before["id"], before["public_key"]))
        self.assertEqual(after["previous_certificates"], [])
        rec = [x for x in s.audit_show(after=last) if x["action"] == "certificate.issue"]
        self.assertEqual([x["detail"]["serial"].upper().lstrip("0") for x in rec],
                         [new[0].upper().lstrip("0")])

        # The signer's listing serves the new certificate only, without any restart.
        listed = {k["name"]: k for k in s.call("GET", "/api/v1/keys", token=self.signer)["keys"]}
        self.assertEqual(listed["kl-renew"]["certificate"], after["certificate"])
        self.assertEqual(listed["kl-renew"]["previous_certificates"], [])
        r = self.sign("kl-renew", 1)
        self.assertEqual(r.status, 200, r)
        self.verify_with_cert(new_der, 1, r)
        # Replaced, not revoked: the old certificate still verifies against the CRL.
        self.verify_with_cert(old_der, 1, r)

    def test_expired_certificate_refuses_signing(self):
        s = self.server
        self.new_key("kl-old", cert=False)
        self.assertEqual(self.sign("kl-old").status, 200)  # no certificate: nothing expires
        csr = self.admin("kl-old/csr", {"common_name": "Expired leaf"})["csr_pem"]
        ca = ExternalCA(s.openssl, "kl-ext")
        o = s.openssl
        cadir = os.path.join(o.dir, "kl-ca")
        os.makedirs(cadir, exist_ok=True)
        open(os.path.join(cadir, "index.txt"), "w").close()
        with open(os.path.join(cadir, "serial"), "w") as f:
            f.write("1000\n")
        cnf = o.tmp("[ca]\ndefault_ca = d\n[d]\ndir = %s\ndatabase = $dir/index.txt\n"
                    "new_certs_dir = $dir\nserial = $dir/serial\ndefault_md = sha256\n"
                    "policy = p\nunique_subject = no\n[p]\ncommonName = supplied\n" % cadir,
                    ".cnf")
        ext = o.tmp("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=codeSigning\n", ".ext")
        leaf = o.tmp(b"", ".pem")
        o("ca", "-batch", "-config", cnf, "-cert", ca.crt, "-keyfile", ca.key, "-in",
          o.tmp(csr, ".csr"), "-out", leaf, "-notext", "-startdate", "20200101000000Z",
          "-enddate", "20200201000000Z", "-extfile", ext)
        with open(leaf) as f:
            chain = f.read() + ca.pem()
        s.call("PUT", "/api/v1/admin/keys/kl-old/certificate", {"chain_pem": chain},
               token=s.admin_token())
        self.assertError(self.sign("kl-old", 1), 403, "certificate_expired")


class CreateWithCertificateTest(ServerTestCase):
    """POST /api/v1/admin/keys with a certificate choice: built-in CA (key and certificate in
    one transaction), external CA (a CSR comes back), or none."""
    server_options = {"ca_key_type": "ec-p256"}

    def create(self, body, expect=201):
        s = self.server
        return s.call("POST", "/api/v1/admin/keys", body, token=s.admin_token(), expect=expect)

    def test_builtin(self):
        s = self.server
        k = self.create({"name": "cc-built", "type": "ec-p256", "certificate": "builtin",
                         "common_name": "One Call Key", "organization": "Signum Tests",
                         "validity_days": 30})
        cert = s.openssl.tmp(pem(base64.b64decode(k["certificate"])), ".crt")
        out = s.openssl("x509", "-in", cert, "-noout", "-subject", "-ext",
                        "extendedKeyUsage").stdout.decode()
        self.assertIn("One Call Key", out)
        self.assertIn("Code Signing", out)
        s.openssl("verify", "-CAfile", s.ca_cert_path, cert)
        rec = [r for r in s.audit_show() if r["action"] == "key.create"][-1]
        self.assertEqual(rec["detail"]["certificate"], "builtin")

    def test_external_returns_a_csr(self):
        s = self.server
        k = self.create({"name": "cc-ext", "type": "rsa2048", "certificate": "external",
                         "common_name": "External Key"})
        self.assertIn("-----BEGIN CERTIFICATE REQUEST-----", k["csr_pem"])
        csr = s.openssl.tmp(k["csr_pem"], ".csr")
        out = s.openssl("req", "-in", csr, "-noout", "-verify", "-subject")
        self.assertIn(b"External Key", out.stdout + out.stderr)
        self.assertIsNone(s.get_key("cc-ext")["certificate"])

    def test_bad_choices_create_nothing(self):
        s = self.server
        admin = s.admin_token()
        for body in ({"name": "cc-bad", "type": "ec-p256", "certificate": "maybe",
                      "common_name": "x"},
                     {"name": "cc-bad", "type": "ec-p256", "certificate": "builtin"},
                     {"name": "cc-bad", "type": "ec-p256", "common_name": "x"},
                     {"name": "cc-bad", "type": "ec-p256", "certificate": "builtin",
                      "common_name": "x", "validity_days": 99999}):
            with self.subTest(body=body):
                snap = s.db_snapshot()
                r = s.request("POST", "/api/v1/admin/keys", body, token=admin)
                self.assertEqual((r.status, r.error_code), (400, "invalid_field"), r)
                self.assertEqual(s.db_snapshot(), snap)


if __name__ == "__main__":
    unittest.main(verbosity=2)
