"""Machine enrollment and mTLS: one-time enrollment tokens, client certificates from the built-in
CA (CN from the admin, key from the CSR), the verified machine name in every audit record of an
mTLS request, tokens bound to the machine they were issued over, re-enrollment and revocation."""

import hashlib
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase, pem_to_der_list  # noqa: E402
from signum_jwt import EcKey, RsaKey  # noqa: E402

DIGEST = HASHES["sha256"](b"signed on a known machine").digest()


class MachineTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("m-ec", "ec-p256")
        s.issue_cert("m-ec", "Machine test key")
        s.create_key("m-other", "ec-p256")
        s.create_user("alice")
        s.grant("m-ec", "alice")
        cls.alice_key = s.create_user("alice2")
        s.grant("m-ec", "alice2")
        cls.created = cls.create_machine("build-01")
        cls.enrolled, cls.cert = cls.enroll("build-01", cls.created["enrollment_token"])

    # -- helpers
    @classmethod
    def create_machine(cls, name):
        s = cls.server
        return s.call("POST", "/api/v1/admin/machines", {"name": name}, token=s.admin_token(),
                      expect=201)

    @classmethod
    def enroll(cls, name, token, key=None):
        """Enrolls with a fresh P-256 key; returns (answer, (certfile, keyfile))."""
        s = cls.server
        key = key or EcKey(s.openssl, "%s-%d" % (name, s.audit_last_seq()))
        r = s.call("POST", "/api/v1/enroll/machine",
                   {"enrollment_token": token, "csr_pem": key.csr("/CN=not-" + name)},
                   expect=201)
        cert = s.openssl.write("%s-%d.crt.pem" % (name, s.audit_last_seq()), r["certificate_pem"])
        return r, (cert, key.pem_path)

    def new_machine(self, name):
        return self.enroll(name, self.create_machine(name)["enrollment_token"])

    def alice_token(self, cert=None):
        r = self.server.request("POST", "/api/v1/auth/token",
                                {"grant_type": "api_key", "api_key": self.alice_key}, cert=cert)
        self.assertEqual(r.status, 200, r)
        return r.json

    def last_records(self, since):
        return self.server.audit_show(after=since)

    # -- enrollment
    def test_certificate_is_a_client_certificate_for_the_machine_name(self):
        s, o, e = self.server, self.server.openssl, self.enrolled
        self.assertEqual(e["machine"], "build-01")
        self.assertEqual(e["chain_pem"], s.ca_pem())
        der = pem_to_der_list(e["certificate_pem"])[0]
        self.assertEqual(e["certificate_sha256"], hashlib.sha256(der).hexdigest())
        subject = o("x509", "-in", self.cert[0], "-noout", "-subject").stdout.decode()
        self.assertIn("CN = build-01", subject)
        self.assertNotIn("not-build-01", subject)  # the CSR's subject is not used
        text = o("x509", "-in", self.cert[0], "-noout", "-text").stdout.decode()
        self.assertIn("TLS Web Client Authentication", text)
        self.assertNotIn("Code Signing", text)
        v = o("verify", "-CAfile", s.ca_cert_path, "-purpose", "sslclient", self.cert[0],
              check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # The certificate holds the CSR's key.
        pub = o("x509", "-in", self.cert[0], "-noout", "-pubkey").stdout
        mine = o("pkey", "-in", self.cert[1], "-pubout").stdout
        self.assertEqual(pub, mine)
        machines = {m["name"]: m for m in s.call("GET", "/api/v1/admin/machines",
                                                 token=s.admin_token())["machines"]}
        m = machines["build-01"]
        self.assertTrue(m["enrolled"])
        self.assertFalse(m["revoked"])
        self.assertEqual(m["certificate_sha256"], e["certificate_sha256"])

    def test_enrollment_token_rules(self):
        s = self.server
        key = EcKey(s.openssl, "rules")
        r = s.request("POST", "/api/v1/enroll/machine",
                      {"enrollment_token": self.created["enrollment_token"],
                       "csr_pem": key.csr()})
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("already used", r.json["error"]["message"])
        c = self.create_machine("build-02")
        tok = c["enrollment_token"]
        # A CSR whose signature does not verify, and things that are no CSR, leave it unused.
        csr = key.csr()
        body = csr.split("-----")[2].replace("\n", "")
        bad = body[:-8] + ("AAAAAAAA" if body[-8:] != "AAAAAAAA" else "BBBBBBBB")
        bad_pem = "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n" \
            % "\n".join(bad[i:i + 64] for i in range(0, len(bad), 64))
        for pem, fragment in ((bad_pem, "does not verify"), ("hello", "not a PEM"),
                              (open(s.ca_cert_path).read(), "not a PEM")):
            r = s.request("POST", "/api/v1/enroll/machine",
                          {"enrollment_token": tok, "csr_pem": pem})
            self.assertError(r, 400, "invalid_field")
            self.assertIn(fragment, r.json["error"]["message"])
        small = RsaKey(s.openssl, "small-rsa", bits=1024)
        r = s.request("POST", "/api/v1/enroll/machine",
                      {"enrollment_token": tok, "csr_pem": small.csr()})
        self.assertError(r, 400, "invalid_field")
        self.assertIn("1024 bits", r.json["error"]["message"])
        # Tokens are for one kind of enrollment only.
        r = s.request("POST", "/api/v1/enroll/service-account",
                      {"enrollment_token": tok, "public_key": key.spki_b64})
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("for a machine", r.json["error"]["message"])
        sa = s.call("POST", "/api/v1/admin/service-accounts", {"name": "sa-for-machines"},
                    token=s.admin_token(), expect=201)
        r = s.request("POST", "/api/v1/enroll/machine",
                      {"enrollment_token": sa["enrollment_token"], "csr_pem": key.csr()})
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("for a service account", r.json["error"]["message"])
        # An RSA 2048 key is fine; the token still works after all those refusals.
        ok, _ = self.enroll("build-02", tok, key=RsaKey(s.openssl, "rsa-machine"))
        self.assertEqual(ok["machine"], "build-02")
        r = s.request("POST", "/api/v1/admin/machines", {"name": "build-02"},
                      token=s.admin_token())
        self.assertError(r, 409, "already_exists")
        r = s.request("POST", "/api/v1/admin/machines/nope/enrollment-tokens",
                      token=s.admin_token())
        self.assertError(r, 404, "not_found")

    # -- mTLS
    def test_sign_over_mtls_records_the_machine(self):
        s = self.server
        token = self.alice_token()["access_token"]  # an unbound token, from plain TLS
        last = s.audit_last_seq()
        r = s.sign_request(token, "m-ec", "ecdsa", "sha256", digest=DIGEST, cert=self.cert,
                           context={"host": "claims-to-be-elsewhere"})
        self.assertEqual(r.status, 200, r)
        r = s.sign_request(token, "m-other", "ecdsa", "sha256", digest=DIGEST, cert=self.cert)
        self.assertError(r, 403, "key_not_granted")
        recs = self.last_records(last)
        self.assertEqual([(x["action"], x["outcome"]) for x in recs],
                         [("sign", "allowed"), ("sign", "denied")])
        for rec in recs:
            self.assertEqual(rec["detail"]["machine"], "build-01")
        self.assertEqual(recs[0]["detail"]["client"]["host"], "claims-to-be-elsewhere")
        # Without the certificate the same token works and no machine is claimed.
        last = s.audit_last_seq()
        s.sign(token, "m-ec", "ecdsa", "sha256", digest=DIGEST)
        self.assertNotIn("machine", self.last_records(last)[0]["detail"])

    def test_token_over_mtls_is_bound_to_the_machine(self):
        s = self.server
        last = s.audit_last_seq()
        t = self.alice_token(cert=self.cert)
        self.assertEqual(t["machine"], "build-01")
        rec = self.last_records(last)[0]
        self.assertEqual((rec["action"], rec["detail"]["machine"]), ("auth.token", "build-01"))
        token = t["access_token"]
        self.assertEqual(s.request("GET", "/api/v1/keys", token=token, cert=self.cert).status,
                         200)
        last = s.audit_last_seq()
        r = s.request("GET", "/api/v1/keys", token=token)
        self.assertError(r, 401, "token_invalid")
        self.assertIn("bound to machine \"build-01\"", r.json["error"]["message"])
        rec = self.last_records(last)
        self.assertEqual(len(rec), 1)
        self.assertEqual(rec[0]["outcome"], "denied")
        r = s.sign_request(token, "m-ec", "ecdsa", "sha256", digest=DIGEST)
        self.assertError(r, 401, "token_invalid")
        # Another enrolled machine's certificate is not good enough either.
        _, other = self.new_machine("build-05")
        r = s.request("GET", "/api/v1/keys", token=token, cert=other)
        self.assertError(r, 401, "token_invalid")

    def test_admin_records_over_mtls_carry_the_machine(self):
        s = self.server
        admin = s.token_for(s.admin_api_key())
        last = s.audit_last_seq()
        s.call("POST", "/api/v1/admin/machines", {"name": "build-07"}, token=admin,
               cert=self.cert, expect=201)
        rec = self.last_records(last)[0]
        self.assertEqual((rec["action"], rec["detail"]["target_machine"],
                          rec["detail"]["machine"]), ("machine.create", "build-07", "build-01"))

    def test_certificate_from_elsewhere_is_refused(self):
        s, o = self.server, self.server.openssl
        key = EcKey(o, "self-signed")
        cert = o.path("self-signed.crt.pem")
        o("req", "-new", "-x509", "-key", key.pem_path, "-subj", "/CN=build-01", "-days", "1",
          "-out", cert)
        last = s.audit_last_seq()
        r = s.request("GET", "/healthz", cert=(cert, key.pem_path))
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("does not verify", r.json["error"]["message"])
        rec = self.last_records(last)
        self.assertEqual(len(rec), 1)
        fp = hashlib.sha256(pem_to_der_list(open(cert).read())[0]).hexdigest()
        self.assertEqual(rec[0]["detail"]["client_certificate_sha256"], fp)
        self.assertNotIn("machine", rec[0]["detail"])

    def test_reenrollment_replaces_the_certificate(self):
        s = self.server
        c = self.create_machine("build-03")
        _, first = self.enroll("build-03", c["enrollment_token"])
        self.assertEqual(s.request("GET", "/healthz", cert=first).status, 200)
        tok = s.call("POST", "/api/v1/admin/machines/build-03/enrollment-tokens",
                     token=s.admin_token(), expect=201)["enrollment_token"]
        last = s.audit_last_seq()
        second_answer, second = self.enroll("build-03", tok)
        rec = self.last_records(last)[0]
        self.assertEqual(rec["action"], "machine.enroll")
        self.assertIn("replaced_certificate_sha256", rec["detail"])
        self.assertEqual(rec["detail"]["certificate_sha256"], second_answer["certificate_sha256"])
        r = s.request("GET", "/healthz", cert=first)
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("no enrolled machine", r.json["error"]["message"])
        self.assertEqual(s.request("GET", "/healthz", cert=second).status, 200)

    def test_revoked_machine_is_refused(self):
        s = self.server
        c = self.create_machine("build-04")
        spare = s.call("POST", "/api/v1/admin/machines/build-04/enrollment-tokens",
                       token=s.admin_token(), expect=201)["enrollment_token"]
        _, cert = self.enroll("build-04", c["enrollment_token"])
        bound = self.alice_token(cert=cert)["access_token"]
        # Without a reason nothing changes, and no change is recorded.
        url = "/api/v1/admin/machines/build-04/revoke"
        last = s.audit_last_seq()
        for body, status, code in ((None, 415, "unsupported_content_type"),
                                   ({}, 400, "invalid_field"),
                                   ({"reason": ""}, 400, "invalid_field"),
                                   ({"reason": "x", "force": True}, 400, "unknown_field")):
            self.assertError(s.request("POST", url, body, token=s.admin_token()), status, code)
        self.assertEqual([x["outcome"] for x in self.last_records(last)], ["denied"] * 4)
        self.assertEqual(s.request("GET", "/api/v1/keys", token=bound, cert=cert).status, 200)
        last = s.audit_last_seq()
        r = s.call("POST", url, {"reason": "host decommissioned"}, token=s.admin_token())
        self.assertEqual((r["machine"], r["revoked"], r["revoked_tokens"]), ("build-04", True, 1))
        rec = self.last_records(last)
        self.assertEqual([(x["action"], x["actor"], x["detail"]["target_machine"],
                           x["detail"]["revoked_tokens"], x["detail"]["reason"]) for x in rec],
                         [("machine.revoke", "user:admin", "build-04", 1,
                           "host decommissioned")])
        for path in ("/healthz", "/api/v1/keys"):
            r = s.request("GET", path, token=bound, cert=cert)
            self.assertError(r, 401, "bad_credentials")
            self.assertIn("revoked", r.json["error"]["message"])
        # The bound token is revoked too, and the machine cannot enroll again.
        self.assertError(s.request("GET", "/api/v1/keys", token=bound), 401, "token_invalid")
        key = EcKey(s.openssl, "revoked-again")
        r = s.request("POST", "/api/v1/enroll/machine",
                      {"enrollment_token": spare, "csr_pem": key.csr()})
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("revoked", r.json["error"]["message"])
        r = s.request("POST", "/api/v1/admin/machines/build-04/enrollment-tokens",
                      token=s.admin_token())
        self.assertError(r, 403, "forbidden")
        machines = {m["name"]: m for m in s.call("GET", "/api/v1/admin/machines",
                                                 token=s.admin_token())["machines"]}
        self.assertTrue(machines["build-04"]["revoked"])
        # Other machines are unaffected.
        self.assertEqual(s.request("GET", "/healthz", cert=self.cert).status, 200)
        r = s.request("POST", "/api/v1/admin/machines/nope/revoke", {"reason": "x"},
                      token=s.admin_token())
        self.assertError(r, 404, "not_found")

    def machine_names(self, query=""):
        s = self.server
        return [m["name"] for m in s.call("GET", "/api/v1/admin/machines" + query,
                                          token=s.admin_token())["machines"]]

    def test_enable_a_revoked_machine(self):
        s = self.server
        _, cert = self.new_machine("en-06")
        url = "/api/v1/admin/machines/en-06/"
        s.call("POST", url + "revoke", {"reason": "laptop reported stolen"},
               token=s.admin_token())
        self.assertError(s.request("GET", "/healthz", cert=cert), 401, "bad_credentials")
        # Enabling takes a reason too; refused, the machine stays revoked.
        last = s.audit_last_seq()
        self.assertError(s.request("POST", url + "enable", {}, token=s.admin_token()), 400,
                         "invalid_field")
        self.assertError(s.request("POST", url + "enable", {"reason": "found"},
                                   token=self.alice_token()["access_token"]), 403, "forbidden")
        self.assertError(s.request("GET", "/healthz", cert=cert), 401, "bad_credentials")
        self.assertIn("en-06", self.machine_names("?state=revoked"))
        self.assertNotIn("machine.enable", [x["action"] for x in self.last_records(last)
                                            if x["outcome"] == "ok"])
        last = s.audit_last_seq()
        r = s.call("POST", url + "enable", {"reason": "laptop found"}, token=s.admin_token())
        self.assertEqual((r["machine"], r["revoked"], r["revoked_tokens"]), ("en-06", False, 0))
        rec = [x for x in self.last_records(last) if x["action"] == "machine.enable"]
        self.assertEqual([(x["outcome"], x["actor"], x["detail"]["target_machine"],
                           x["detail"]["reason"]) for x in rec],
                         [("ok", "user:admin", "en-06", "laptop found")])
        # Its certificate works again: a new token over it, signing, and another enrollment.
        self.assertEqual(s.request("GET", "/healthz", cert=cert).status, 200)
        t = self.alice_token(cert=cert)["access_token"]
        self.assertEqual(s.sign_request(t, "m-ec", "ecdsa", "sha256", DIGEST, cert=cert).status,
                         200)
        s.call("POST", url + "enrollment-tokens", token=s.admin_token(), expect=201)
        self.assertIn("en-06", self.machine_names("?state=active"))
        self.assertNotIn("en-06", self.machine_names("?state=revoked"))
        self.assertError(s.request("POST", "/api/v1/admin/machines/nope/enable", {"reason": "x"},
                                   token=s.admin_token()), 404, "not_found")

    def test_list_filters(self):
        s = self.server
        self.create_machine("lst-pending")  # never enrolled
        self.new_machine("lst-revoked")
        s.call("POST", "/api/v1/admin/machines/lst-revoked/revoke", {"reason": "test"},
               token=s.admin_token())
        every = self.machine_names()
        self.assertEqual(every, sorted(every))
        by_state = {q: self.machine_names("?state=" + q)
                    for q in ("active", "enrolled", "pending", "revoked")}
        self.assertIn("lst-pending", by_state["pending"])
        self.assertIn("build-01", by_state["enrolled"])
        self.assertIn("lst-revoked", by_state["revoked"])
        for name in ("lst-pending", "build-01"):
            self.assertIn(name, by_state["active"])
        self.assertNotIn("lst-revoked", by_state["active"])
        self.assertNotIn("lst-pending", by_state["enrolled"])
        # Each machine is in exactly one of enrolled, pending and revoked; active is the first two.
        parts = by_state["enrolled"] + by_state["pending"] + by_state["revoked"]
        self.assertEqual(sorted(parts), every)
        self.assertEqual(sorted(by_state["enrolled"] + by_state["pending"]),
                         sorted(by_state["active"]))
        for bad in ("?state=gone", "?state=", "?state=active&state=revoked"):
            self.assertError(s.request("GET", "/api/v1/admin/machines" + bad,
                                       token=s.admin_token()), 400, "invalid_field")

    def test_secrets_stay_out_of_the_audit_log(self):
        text = json.dumps(self.server.audit_show())
        self.assertNotIn(self.created["enrollment_token"], text)
        self.assertNotIn("-----BEGIN", text)
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
