"""Certificates: chains issued by the built-in CA (verified by openssl), CSRs made in the HSM,
and importing chains issued by an external CA made with openssl at test time."""

import base64
import calendar
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import (HASHES, ServerTestCase, ecdsa_raw_to_der, pem,  # noqa: E402
                            pem_to_der_list, unb64)


class ExternalCA:
    """A throwaway CA (root, optionally an intermediate) made with openssl in the test."""

    def __init__(self, ossl, name):
        self.o = ossl
        self.name = name
        self.key = ossl.path(name + ".key")
        self.crt = ossl.path(name + ".crt")
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", self.key)
        ossl("req", "-new", "-x509", "-key", self.key, "-out", self.crt, "-days", "30",
             "-subj", "/O=Signum IT/CN=%s" % name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def pem(self):
        with open(self.crt) as f:
            return f.read()

    def sign_csr(self, csr_pem, ca_ext=False, days=30):
        csr = self.o.tmp(csr_pem, ".csr")
        out = self.o.tmp(b"", ".crt")
        ext = self.o.tmp(
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
            if ca_ext else
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=codeSigning\n", ".cnf")
        self.o("x509", "-req", "-in", csr, "-CA", self.crt, "-CAkey", self.key,
               "-CAcreateserial", "-days", str(days), "-extfile", ext, "-out", out)
        with open(out) as f:
            return f.read()

    def make_intermediate(self, name):
        inter = ExternalCA.__new__(ExternalCA)
        inter.o = self.o
        inter.name = name
        inter.key = self.o.path(name + ".key")
        inter.crt = self.o.path(name + ".crt")
        csr = self.o.path(name + ".csr")
        self.o("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-keyout", inter.key, "-out", csr, "-subj", "/O=Signum IT/CN=" + name)
        with open(csr) as f:
            cert = self.sign_csr(f.read(), ca_ext=True)
        with open(inter.crt, "w") as f:
            f.write(cert)
        return inter


class CertificateTest(ServerTestCase):
    server_options = {}  # default CA: rsa3072

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.rsa = s.create_key("cs-rsa", "rsa2048")
        cls.ec = s.create_key("cs-ec", "ec-p256")
        cls.ec2 = s.create_key("cs-ec2", "ec-p384")
        s.create_key("cs-nocert", "ec-p256")
        cls.issued = s.issue_cert("cs-rsa", "Release Signing", organization="Example Ltd",
                                  validity_days=100)
        cls.signer = s.create_user("certsigner", "signer")
        for k in ("cs-rsa", "cs-ec", "cs-ec2"):
            s.grant(k, "certsigner")
        cls.token = s.token_for(cls.signer)

    def ossl(self, *args, **kw):
        return self.server.openssl(*args, **kw)

    def der_of_pem_file(self, path):
        return self.ossl("x509", "-in", path, "-outform", "DER").stdout

    def expect_refused(self, fn, status, code):
        """The call is refused with status/code; nothing changes but one denial record."""
        s = self.server
        snap = s.db_snapshot()
        last = s.audit_last_seq()
        r = fn()
        self.assertError(r, status, code)
        new = s.audit_show(after=last)
        self.assertEqual(len(new), 1, new)
        self.assertEqual(new[0]["outcome"], "denied")
        self.assertEqual(new[0]["detail"]["code"], code)
        self.assertEqual(s.db_snapshot(), snap, "state changed on a refused call")
        return r

    # -- built-in CA
    def test_issued_chain_verifies_with_openssl(self):
        o = self.server.openssl
        leaf = o.write("leaf.pem", self.issued["certificate_pem"])
        self.assertEqual(self.issued["chain_pem"], self.server.ca_pem())
        res = self.ossl("verify", "-purpose", "any", "-CAfile", self.server.ca_cert_path, leaf)
        self.assertIn(b"leaf.pem: OK", res.stdout)
        # A different CA does not verify it (the verifier can fail).
        other = ExternalCA(o, "unrelated-root")
        bad = self.ossl("verify", "-purpose", "any", "-CAfile", other.crt, leaf, check=False)
        self.assertNotEqual(bad.returncode, 0)

    def test_issued_certificate_profile(self):
        leaf = self.server.openssl.tmp(self.issued["certificate_pem"], ".pem")
        eku = self.ossl("x509", "-in", leaf, "-noout", "-ext", "extendedKeyUsage").stdout.decode()
        self.assertIn("Code Signing", eku)
        self.assertNotIn("TLS Web Server", eku)
        bc = self.ossl("x509", "-in", leaf, "-noout", "-ext", "basicConstraints").stdout.decode()
        self.assertIn("CA:FALSE", bc)
        ku = self.ossl("x509", "-in", leaf, "-noout", "-ext", "keyUsage").stdout.decode()
        self.assertIn("Digital Signature", ku)
        self.assertNotIn("Certificate Sign", ku)
        subj = self.ossl("x509", "-in", leaf, "-noout", "-subject", "-nameopt", "RFC2253"
                         ).stdout.decode()
        self.assertIn("CN=Release Signing", subj)
        self.assertIn("O=Example Ltd", subj)
        issuer = self.ossl("x509", "-in", leaf, "-noout", "-issuer", "-nameopt", "RFC2253"
                           ).stdout.decode()
        self.assertIn("CN=Signum Root CA", issuer)
        # validity_days honoured (100 days, give or take clock rounding).
        end = self.ossl("x509", "-in", leaf, "-noout", "-checkend", str(99 * 86400), check=False)
        self.assertEqual(end.returncode, 0, "expires before 99 days")
        end = self.ossl("x509", "-in", leaf, "-noout", "-checkend", str(101 * 86400),
                        check=False)
        self.assertNotEqual(end.returncode, 0, "valid for more than 101 days")

    def test_keys_endpoints_return_matching_certificate_and_chain(self):
        s = self.server
        leaf_der = pem_to_der_list(self.issued["certificate_pem"])[0]
        ca_der = self.der_of_pem_file(s.ca_cert_path)
        admin_view = s.get_key("cs-rsa")
        signer_view = {k["name"]: k for k in
                       s.call("GET", "/api/v1/keys", token=self.token)["keys"]}["cs-rsa"]
        for view in (admin_view, signer_view):
            self.assertEqual(unb64(view["certificate"]), leaf_der)
            self.assertEqual([unb64(c) for c in view["chain"]], [ca_der])
            self.assertEqual(s.openssl.spki_der_from_cert(leaf_der), unb64(view["public_key"]))
        all_keys = {k["name"]: k for k in
                    s.call("GET", "/api/v1/admin/keys", token=s.admin_token())["keys"]}
        self.assertEqual(unb64(all_keys["cs-rsa"]["certificate"]), leaf_der)
        self.assertNotIn("signum-ca", all_keys)
        # A key without a certificate: null and an empty chain.
        self.assertIsNone(all_keys["cs-nocert"]["certificate"])
        self.assertEqual(all_keys["cs-nocert"]["chain"], [])
        # certificate_not_after is the certificate's notAfter.
        enddate = s.openssl("x509", "-inform", "DER", "-in", s.openssl.tmp(leaf_der),
                            "-noout", "-enddate").stdout.decode()
        when = calendar.timegm(time.strptime(" ".join(enddate.split("=", 1)[1].split()),
                                             "%b %d %H:%M:%S %Y GMT"))
        self.assertEqual(when, admin_view["certificate_not_after"])

    def test_public_ca_endpoint(self):
        r = self.server.call("GET", "/api/v1/ca")
        self.assertEqual(r["certificate_pem"], self.server.ca_pem())

    def test_sign_verifies_against_issued_certificate(self):
        msg = b"release artefact"
        sig = unb64(self.server.sign(self.token, "cs-rsa", "rsa-pkcs1", "sha256",
                                     digest=HASHES["sha256"](msg).digest())["signature"])
        pub = self.server.openssl.pubkey_from_cert(
            pem_to_der_list(self.issued["certificate_pem"])[0])
        ok, out = self.server.openssl.verify_digest_sig(pub, "sha256", msg, sig)
        self.assertTrue(ok, out)

    def test_ca_key_cannot_be_certified_or_read(self):
        s = self.server
        self.expect_refused(lambda: s.request(
            "POST", "/api/v1/admin/keys/signum-ca/certificate", {"common_name": "x"},
            token=s.admin_token()), 403, "forbidden")
        self.expect_refused(lambda: s.request(
            "POST", "/api/v1/admin/keys/signum-ca/csr", {"common_name": "x"},
            token=s.admin_token()), 403, "forbidden")

    # -- CSR
    def csr(self, key, cn="CSR Test"):
        r = self.server.call("POST", "/api/v1/admin/keys/%s/csr" % key,
                             {"common_name": cn, "organization": "Signum IT"},
                             token=self.server.admin_token())
        self.assertEqual(r["key"], key)
        return r["csr_pem"]

    def test_csr_verifies_and_holds_key(self):
        s = self.server
        for key, info in (("cs-ec", self.ec), ("cs-rsa", self.rsa), ("cs-ec2", self.ec2)):
            with self.subTest(key=key):
                last = s.audit_last_seq()
                csr_pem = self.csr(key, "CN for " + key)
                path = s.openssl.tmp(csr_pem, ".csr")
                res = self.ossl("req", "-verify", "-noout", "-in", path)
                self.assertIn(b"verify OK", res.stdout + res.stderr)
                pub = self.ossl("req", "-in", path, "-noout", "-pubkey").stdout
                spki = self.ossl("pkey", "-pubin", "-in", s.openssl.tmp(pub, ".pem"),
                                 "-outform", "DER").stdout
                self.assertEqual(spki, unb64(info["public_key"]))
                subj = self.ossl("req", "-in", path, "-noout", "-subject", "-nameopt",
                                 "RFC2253").stdout.decode()
                self.assertIn("CN=CN for " + key, subj)
                # The CSR is a signature by the key: audited.
                recs = s.audit_show(after=last)
                self.assertEqual([(r["action"], r["outcome"]) for r in recs],
                                 [("csr.create", "ok")])
                self.assertEqual(recs[0]["detail"]["key"], key)
        # A tampered CSR fails verification (the check can fail).
        lines = self.csr("cs-ec").splitlines()
        body = "".join(lines[1:-1])
        der = bytearray(base64.b64decode(body))
        der[-10] ^= 0x01  # inside the signature
        bad = s.openssl.tmp(pem(bytes(der), "CERTIFICATE REQUEST"), ".csr")
        res = self.ossl("req", "-verify", "-noout", "-in", bad, check=False)
        self.assertNotIn(b"verify OK", res.stdout + res.stderr)

    # -- import
    def test_import_chain_from_external_ca(self):
        s = self.server
        root = ExternalCA(s.openssl, "ext-root")
        leaf_pem = root.sign_csr(self.csr("cs-ec", "External Signing"))
        chain = leaf_pem + root.pem()
        last = s.audit_last_seq()
        r = s.call("PUT", "/api/v1/admin/keys/cs-ec/certificate", {"chain_pem": chain},
                   token=s.admin_token())
        self.assertEqual(pem_to_der_list(r["certificate_pem"]), pem_to_der_list(leaf_pem))
        recs = s.audit_show(after=last)
        self.assertEqual([(x["action"], x["outcome"]) for x in recs],
                         [("certificate.import", "ok")])
        view = s.get_key("cs-ec")
        self.assertEqual(unb64(view["certificate"]), pem_to_der_list(leaf_pem)[0])
        self.assertEqual([unb64(c) for c in view["chain"]], pem_to_der_list(root.pem()))
        # openssl agrees the stored chain is good, and signatures verify with the new cert.
        stored_leaf = s.openssl.tmp(pem(unb64(view["certificate"])), ".pem")
        res = self.ossl("verify", "-purpose", "any", "-CAfile", root.crt, stored_leaf)
        self.assertIn(b": OK", res.stdout)
        msg = b"signed under the imported certificate"
        sig = unb64(s.sign(self.token, "cs-ec", "ecdsa", "sha256",
                           digest=HASHES["sha256"](msg).digest())["signature"])
        pub = s.openssl.pubkey_from_cert(unb64(view["certificate"]))
        ok, out = s.openssl.verify_digest_sig(pub, "sha256", msg, ecdsa_raw_to_der(sig))
        self.assertTrue(ok, out)

    def test_import_three_level_chain_and_order(self):
        s = self.server
        root = ExternalCA(s.openssl, "ext3-root")
        inter = root.make_intermediate("ext3-intermediate")
        leaf_pem = inter.sign_csr(self.csr("cs-ec2", "Three Level"))
        before = s.get_key("cs-ec2")
        # Out of order: leaf, root, intermediate.
        self.expect_refused(lambda: s.request(
            "PUT", "/api/v1/admin/keys/cs-ec2/certificate",
            {"chain_pem": leaf_pem + root.pem() + inter.pem()}, token=s.admin_token()),
            400, "invalid_certificate")
        # Issuer first.
        self.expect_refused(lambda: s.request(
            "PUT", "/api/v1/admin/keys/cs-ec2/certificate",
            {"chain_pem": inter.pem() + leaf_pem}, token=s.admin_token()),
            400, "invalid_certificate")
        self.assertEqual(s.get_key("cs-ec2"), before)
        # In order it is accepted, and the chain is kept in order.
        s.call("PUT", "/api/v1/admin/keys/cs-ec2/certificate",
               {"chain_pem": leaf_pem + inter.pem() + root.pem()}, token=s.admin_token())
        view = s.get_key("cs-ec2")
        self.assertEqual(unb64(view["certificate"]), pem_to_der_list(leaf_pem)[0])
        self.assertEqual([unb64(c) for c in view["chain"]],
                         pem_to_der_list(inter.pem()) + pem_to_der_list(root.pem()))

    def test_import_refuses_leaf_of_another_key(self):
        s = self.server
        root = ExternalCA(s.openssl, "ext-other")
        # A valid codeSigning certificate, but for cs-rsa's key, offered for cs-ec2.
        wrong = root.sign_csr(self.csr("cs-rsa", "Wrong Key"))
        before = s.get_key("cs-ec2")
        self.expect_refused(lambda: s.request(
            "PUT", "/api/v1/admin/keys/cs-ec2/certificate",
            {"chain_pem": wrong + root.pem()}, token=s.admin_token()),
            400, "invalid_certificate")
        self.assertEqual(s.get_key("cs-ec2"), before)

    def test_import_refuses_issuer_that_did_not_sign(self):
        s = self.server
        real = ExternalCA(s.openssl, "Same Name CA")
        leaf_pem = real.sign_csr(self.csr("cs-ec2", "Forged Issuer"))
        # A different key under the very same subject name: names match, signature does not.
        impostor = ExternalCA(s.openssl, "Same Name CA")
        self.expect_refused(lambda: s.request(
            "PUT", "/api/v1/admin/keys/cs-ec2/certificate",
            {"chain_pem": leaf_pem + impostor.pem()}, token=s.admin_token()),
            400, "invalid_certificate")

    def test_import_refuses_garbage_and_non_certificates(self):
        s = self.server
        root = ExternalCA(s.openssl, "ext-garbage")
        leaf_pem = root.sign_csr(self.csr("cs-ec2", "Garbage"))
        with open(root.key) as f:
            key_pem = f.read()
        cases = {
            "not pem": "hello",
            "broken base64": "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "private key appended": leaf_pem + key_pem,
            "no END line": leaf_pem.split("-----END")[0],
        }
        for label, chain in cases.items():
            with self.subTest(case=label):
                self.expect_refused(lambda: s.request(
                    "PUT", "/api/v1/admin/keys/cs-ec2/certificate", {"chain_pem": chain},
                    token=s.admin_token()), 400, "invalid_certificate")

    def test_import_body_over_256k_refused(self):
        s = self.server
        root = ExternalCA(s.openssl, "ext-huge")
        leaf_pem = root.sign_csr(self.csr("cs-rsa", "Huge Body"))
        huge = leaf_pem + "\n" * (300 * 1024) + root.pem()
        self.expect_refused(lambda: s.request(
            "PUT", "/api/v1/admin/keys/cs-rsa/certificate", {"chain_pem": huge},
            token=s.admin_token()), 413, "body_too_large")

    def test_import_body_between_64k_and_256k_accepted(self):
        # API.md: the certificate-import cap is 256 KiB (64 KiB elsewhere). A valid, in-order
        # chain for the key in a 100 KiB body (blank lines between the PEM blocks, which
        # RFC 7468 parsers skip) is therefore importable.
        # Its own key: replacing a shared key's certificate would disturb the other tests.
        s = self.server
        s.create_key("cs-big", "ec-p256")
        root = ExternalCA(s.openssl, "ext-big")
        leaf_pem = root.sign_csr(self.csr("cs-big", "Big Body"))
        padded = leaf_pem + "\n" * (100 * 1024) + root.pem()
        r = s.request("PUT", "/api/v1/admin/keys/cs-big/certificate", {"chain_pem": padded},
                      token=s.admin_token())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(unb64(s.get_key("cs-big")["certificate"]),
                         pem_to_der_list(leaf_pem)[0])

if __name__ == "__main__":
    unittest.main(verbosity=2)
