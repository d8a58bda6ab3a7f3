"""Admin calls and separation of duties: admins need a grant to sign, signers cannot
administer, grants and disabling, users and API keys, tokens, the audit read endpoint."""

import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import (HASHES, SOFTHSM_MODULE, ServerTestCase,  # noqa: E402
                            ecdsa_raw_to_der, run, unb64)

DIGEST = HASHES["sha256"](b"separation of duties").digest()


class AdminTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.key = s.create_key("sod-ec", "ec-p256")
        s.issue_cert("sod-ec", "SoD key")
        s.create_key("sod-other", "ec-p256")
        cls.alice_key = s.create_user("alice", "signer")
        cls.bob_key = s.create_user("bob", "signer")
        s.grant("sod-ec", "alice")
        cls.alice = s.token_for(cls.alice_key)
        cls.bob = s.token_for(cls.bob_key)

    def refused(self, fn, status, code):
        """Refused with status/code; nothing changes except exactly one denial record."""
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
        return new[0]

    def verify_ec(self, key_b64_spki, msg, raw_sig):
        o = self.server.openssl
        pub = o("pkey", "-pubin", "-inform", "DER", "-in", o.tmp(unb64(key_b64_spki))).stdout
        return o.verify_digest_sig(pub, "sha256", msg, ecdsa_raw_to_der(raw_sig))

    # -- tokens
    def test_token_answer(self):
        s = self.server
        resp = s.request("POST", "/api/v1/auth/token",
                         {"grant_type": "api_key", "api_key": self.alice_key})
        self.assertEqual(resp.status, 200, resp)
        # A secret in the answer: never cached.
        self.assertEqual(resp.headers.get("cache-control"), "no-store")
        self.assertEqual(resp.headers.get("content-type"), "application/json")
        r = resp.json
        self.assertRegex(r["access_token"], r"^sgt_[A-Za-z0-9_-]{43}$")
        self.assertEqual(r["token_type"], "Bearer")
        self.assertEqual(r["expires_in"], 900)
        self.assertEqual(r["user"], "alice")
        self.assertEqual(r["role"], "signer")
        # Only the SHA-256 of the token is stored.
        import hashlib
        with s.db() as db:
            rows = db.execute("SELECT hash FROM access_tokens").fetchall()
        stored = {bytes(x[0]) for x in rows}
        self.assertIn(hashlib.sha256(r["access_token"].encode()).digest(), stored)
        self.assertNotIn(r["access_token"].encode(), stored)

    # -- separation of duties
    def test_admin_cannot_sign(self):
        # Issue 12, separation of duties: an admin identity never signs, not even with a
        # grant or a rule naming it; nobody grants signing rights to themselves, and signing
        # rights go to signer identities only.
        s = self.server
        admin = s.admin_token()
        rec = self.refused(lambda: s.sign_request(admin, "sod-ec", "ecdsa", "sha256",
                                                  digest=DIGEST), 403, "forbidden")
        self.assertEqual(rec["actor"], "user:admin")
        self.assertIn("admins cannot sign", rec["detail"]["message"])
        last = s.audit_last_seq()
        r = s.request("POST", "/api/v1/admin/keys/sod-ec/grants", {"user": "admin"}, token=admin)
        self.assertError(r, 403, "forbidden")
        self.assertIn("themselves", r.json["error"]["message"])
        s.create_user("sod-admin2", "admin")
        r = s.request("POST", "/api/v1/admin/keys/sod-ec/grants", {"user": "sod-admin2"},
                      token=admin)
        self.assertError(r, 403, "forbidden")
        self.assertIn("admins cannot sign", r.json["error"]["message"])
        refusals = s.audit_show(after=last)
        self.assertEqual([(g["action"], g["outcome"]) for g in refusals
                          if g["action"] == "key.grant"],
                         [("key.grant", "denied"), ("key.grant", "denied")])
        with s.db() as db:
            self.assertEqual(db.execute(
                "SELECT count(*) FROM grants g JOIN users u ON u.id = g.user_id"
                " WHERE u.name IN ('admin', 'sod-admin2')").fetchone()[0], 0)
        # A rule naming the admin does not make it a signer either.
        s.call("POST", "/api/v1/admin/policies",
               {"name": "sod-admin-rule", "effect": "allow", "subjects": {"users": ["admin"]},
                "keys": {"names": ["sod-ec"]}}, token=admin, expect=201)
        self.refused(lambda: s.sign_request(admin, "sod-ec", "ecdsa", "sha256", digest=DIGEST),
                     403, "forbidden")
        s.call("DELETE", "/api/v1/admin/policies/sod-admin-rule", token=admin)
        # A signer identity with a grant signs.
        signer = s.token_for(s.create_user("sod-signer"))
        s.grant("sod-ec", "sod-signer")
        r = s.sign(signer, "sod-ec", "ecdsa", "sha256", digest=DIGEST)
        ok, out = self.verify_ec(self.key["public_key"], b"separation of duties",
                                 unb64(r["signature"]))
        self.assertTrue(ok, out)
        self.refused(lambda: s.sign_request(signer, "sod-other", "ecdsa", "sha256",
                                            digest=DIGEST), 403, "key_not_granted")

    def test_signer_cannot_call_admin_endpoints(self):
        s = self.server
        calls = [
            ("GET", "/api/v1/admin/users", None),
            ("POST", "/api/v1/admin/users", {"name": "mallory", "role": "admin"}),
            ("POST", "/api/v1/admin/users/alice/api-keys", None),
            ("GET", "/api/v1/admin/keys", None),
            ("POST", "/api/v1/admin/keys", {"name": "evil", "type": "ec-p256"}),
            ("GET", "/api/v1/admin/keys/sod-ec", None),
            ("POST", "/api/v1/admin/keys/sod-ec/certificate", {"common_name": "x"}),
            ("PUT", "/api/v1/admin/keys/sod-ec/certificate", {"chain_pem": "x"}),
            ("POST", "/api/v1/admin/keys/sod-ec/csr", {"common_name": "x"}),
            ("POST", "/api/v1/admin/keys/sod-other/grants", {"user": "alice"}),
            ("POST", "/api/v1/admin/keys/sod-ec/disable", None),
            ("GET", "/api/v1/admin/audit", None),
        ]
        for method, path, body in calls:
            with self.subTest(call=method + " " + path):
                rec = self.refused(lambda: s.request(method, path, body, token=self.alice),
                                   403, "forbidden")
                self.assertEqual(rec["actor"], "user:alice")
                self.assertEqual(rec["detail"]["path"], path)
        # Still a signer, still able to sign.
        s.sign(self.alice, "sod-ec", "ecdsa", "sha256", digest=DIGEST)

    def test_signer_without_grant(self):
        s = self.server
        self.refused(lambda: s.sign_request(self.bob, "sod-ec", "ecdsa", "sha256",
                                            digest=DIGEST), 403, "key_not_granted")
        self.assertEqual(s.call("GET", "/api/v1/keys", token=self.bob)["keys"], [])

    def test_ca_key_cannot_be_granted_or_signed_with(self):
        s = self.server
        admin = s.admin_token()
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys/signum-ca/grants",
                                       {"user": "admin"}, token=admin), 403, "forbidden")
        self.refused(lambda: s.sign_request(self.alice, "signum-ca", "ecdsa", "sha256",
                                            digest=DIGEST), 403, "key_not_granted")
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys/signum-ca/disable",
                                       {"reason": "test"}, token=admin), 403, "forbidden")

    def test_disabled_key(self):
        s = self.server
        s.create_key("sod-dis", "ec-p256")
        s.grant("sod-dis", "alice")
        s.sign(self.alice, "sod-dis", "ecdsa", "sha256", digest=DIGEST)
        self.assertIn("sod-dis", [k["name"] for k in
                                  s.call("GET", "/api/v1/keys", token=self.alice)["keys"]])
        # Without a reason the key stays enabled and only the refusal is recorded.
        for body, status, code in ((None, 415, "unsupported_content_type"),
                                   ({}, 400, "invalid_field"),
                                   ({"reason": ""}, 400, "invalid_field")):
            self.refused(lambda: s.request("POST", "/api/v1/admin/keys/sod-dis/disable", body,
                                           token=s.admin_token()), status, code)
        self.assertFalse(s.get_key("sod-dis")["disabled"])
        s.sign(self.alice, "sod-dis", "ecdsa", "sha256", digest=DIGEST)
        last = s.audit_last_seq()
        r = s.disable("sod-dis", reason="product discontinued")
        self.assertTrue(r["disabled"])
        recs = s.audit_show(after=last)
        self.assertEqual([(x["action"], x["outcome"], x["detail"]["reason"]) for x in recs],
                         [("key.disable", "ok", "product discontinued")])
        self.refused(lambda: s.sign_request(self.alice, "sod-dis", "ecdsa", "sha256",
                                            digest=DIGEST), 403, "key_disabled")
        self.assertNotIn("sod-dis", [k["name"] for k in
                                     s.call("GET", "/api/v1/keys", token=self.alice)["keys"]])
        self.assertTrue(s.get_key("sod-dis")["disabled"])
        # No certificate or CSR for a disabled key either.
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys/sod-dis/certificate",
                                       {"common_name": "x"}, token=s.admin_token()),
                     403, "key_disabled")
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys/sod-dis/csr",
                                       {"common_name": "x"}, token=s.admin_token()),
                     403, "key_disabled")

    # -- users and API keys
    def test_users_and_api_keys(self):
        s = self.server
        admin = s.admin_token()
        r = s.call("POST", "/api/v1/admin/users", {"name": "carol", "role": "admin"},
                   token=admin, expect=201)
        self.assertEqual(r["user"], {"name": "carol", "role": "admin"})
        self.assertRegex(r["api_key"], r"^sgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
        self.assertEqual(r["api_key_prefix"], r["api_key"][4:16])
        users = {u["name"]: u for u in s.call("GET", "/api/v1/admin/users", token=admin)["users"]}
        self.assertEqual(users["carol"]["role"], "admin")
        self.assertEqual(users["alice"]["role"], "signer")
        self.assertFalse(users["carol"]["disabled"])
        self.assertEqual(users["admin"]["role"], "admin")
        # The key is not stored in clear anywhere in the database.
        data = s.db_bytes()
        self.assertNotIn(r["api_key"].encode(), data)
        self.assertNotIn(r["api_key"][17:].encode(), data)
        carol = s.token_for(r["api_key"])
        self.assertEqual(s.call("GET", "/api/v1/admin/users", token=carol)["users"][0]["name"],
                         "admin")
        # A second API key for an existing user; both work.
        more = s.call("POST", "/api/v1/admin/users/carol/api-keys", token=admin, expect=201)
        self.assertNotEqual(more["api_key"], r["api_key"])
        self.assertEqual(more["user"]["role"], "admin")
        s.token_for(more["api_key"])
        s.token_for(r["api_key"])
        self.refused(lambda: s.request("POST", "/api/v1/admin/users",
                                       {"name": "carol", "role": "signer"}, token=admin),
                     409, "already_exists")
        self.refused(lambda: s.request("POST", "/api/v1/admin/users/nobody/api-keys",
                                       token=admin), 404, "user_not_found")
        self.refused(lambda: s.request("POST", "/api/v1/admin/users",
                                       {"name": "dave", "role": "root"}, token=admin),
                     400, "invalid_field")
        self.refused(lambda: s.request("POST", "/api/v1/admin/users",
                                       {"name": "bad name", "role": "signer"}, token=admin),
                     400, "invalid_field")
        self.refused(lambda: s.request("POST", "/api/v1/admin/users",
                                       {"name": "x" * 65, "role": "signer"}, token=admin),
                     400, "invalid_field")

    # -- keys and grants
    def test_key_and_grant_errors(self):
        s = self.server
        admin = s.admin_token()
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys",
                                       {"name": "sod-ec", "type": "ec-p256"}, token=admin),
                     409, "already_exists")
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys",
                                       {"name": "k-dsa", "type": "dsa1024"}, token=admin),
                     400, "invalid_field")
        self.refused(lambda: s.request("GET", "/api/v1/admin/keys/nope", token=admin),
                     404, "key_not_found")
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys/nope/grants",
                                       {"user": "alice"}, token=admin), 404, "key_not_found")
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys/sod-ec/grants",
                                       {"user": "nobody"}, token=admin), 404, "user_not_found")
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys/sod-ec/grants",
                                       {"user": "alice"}, token=admin), 409, "already_exists")
        self.refused(lambda: s.request("POST", "/api/v1/admin/keys/sod-ec/certificate",
                                       {"common_name": "x", "validity_days": 0}, token=admin),
                     400, "invalid_field")

    def test_concurrent_duplicate_key_leaves_one_hsm_key(self):
        # Four creates of one name at once: one 201, the rest 409, and the keys generated for
        # the losers do not linger in the HSM.
        s = self.server
        admin = s.admin_token()
        answers = []
        barrier = threading.Barrier(4)

        def go():
            barrier.wait(20)
            answers.append(s.request("POST", "/api/v1/admin/keys",
                                     {"name": "sod-race", "type": "ec-p256"}, token=admin))

        threads = [threading.Thread(target=go) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(sorted(a.status for a in answers), [201, 409, 409, 409], answers)
        for a in answers:
            if a.status == 409:
                self.assertEqual(a.error_code, "already_exists")
        winner = [a.json for a in answers if a.status == 201][0]
        out = run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "signum",
                   "--login", "--pin", s.user_pin(), "--list-objects", "--type", "privkey"],
                  env=s.hsm_env(), check=True).stdout.decode()
        labels = [line.split(":", 1)[1].strip() for line in out.splitlines()
                  if line.strip().startswith("label:")]
        ids = [line.split(":", 1)[1].strip() for line in out.splitlines()
               if line.strip().startswith("ID:")]
        self.assertEqual(labels.count("sod-race"), 1, out)
        self.assertIn(winner["id"], ids)
        recs = [r for r in s.audit_show() if r["action"] == "key.create"
                and r["detail"].get("key") == "sod-race"]
        self.assertEqual([r["outcome"] for r in recs].count("ok"), 1)

    def test_key_create_answer_and_ids_unique(self):
        s = self.server
        last = s.audit_last_seq()
        a = s.create_key("sod-new1", "ec-p384")
        b = s.create_key("sod-new2", "ec-p384")
        self.assertEqual(a["type"], "ec-p384")
        self.assertFalse(a["disabled"])
        self.assertNotEqual(a["id"], b["id"])
        self.assertNotEqual(a["public_key"], b["public_key"])
        recs = s.audit_show(after=last)
        self.assertEqual([(x["action"], x["detail"]["key"], x["detail"]["id"]) for x in recs],
                         [("key.create", "sod-new1", a["id"]), ("key.create", "sod-new2", b["id"])])
        # The SPKI is a real P-384 public key.
        o = s.openssl
        text = o("pkey", "-pubin", "-inform", "DER", "-in", o.tmp(unb64(a["public_key"])),
                 "-noout", "-text").stdout.decode()
        self.assertIn("P-384", text)

    # -- audit read endpoint
    def test_admin_audit_pagination(self):
        s = self.server
        admin = s.admin_token()
        r = s.call("GET", "/api/v1/admin/audit?after=0&limit=3", token=admin)
        self.assertEqual([x["seq"] for x in r["records"]], [1, 2, 3])
        self.assertEqual(r["next_after"], 3)
        self.assertEqual(r["records"][0]["action"], "server.init")
        self.assertEqual(r["records"][0]["prev"], "0" * 64)
        self.assertEqual(r["records"][1]["prev"], r["records"][0]["hash"])
        r2 = s.call("GET", "/api/v1/admin/audit?after=3&limit=2", token=admin)
        self.assertEqual([x["seq"] for x in r2["records"]], [4, 5])
        self.assertEqual(r2["records"][0]["prev"], r["records"][2]["hash"])
        # Same records as the offline tool.
        offline = {x["seq"]: x for x in s.audit_show()}
        for rec in r["records"] + r2["records"]:
            self.assertEqual(rec, offline[rec["seq"]])
        big = s.call("GET", "/api/v1/admin/audit?after=0&limit=5000", token=admin)
        self.assertLessEqual(len(big["records"]), 1000)
        self.assertEqual(len(big["records"]), min(1000, len(offline)))
        self.refused(lambda: s.request("GET", "/api/v1/admin/audit?limit=-1", token=admin),
                     400, "invalid_field")
        self.refused(lambda: s.request("GET", "/api/v1/admin/audit?after=abc", token=admin),
                     400, "invalid_field")

    def test_audit_after_out_of_range(self):
        # Issue 14: an `after` past what a JSON number holds exactly answered 200 with a float
        # next_after. It is an integer 0..2^53-1 now; anything else is refused, naming it.
        s = self.server
        admin = s.admin_token()
        for bad in ("99999999999999999999", "9223372036854775807", "9007199254740992", "1e3",
                    "+5", "-0", "", "5x"):
            with self.subTest(after=bad):
                r = s.request("GET", "/api/v1/admin/audit?after=" + bad, token=admin)
                self.assertError(r, 400, "invalid_field")
                self.assertIn("after", r.json["error"]["message"])
        r = s.request("GET", "/api/v1/admin/audit?after=9007199254740991", token=admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["records"], [])
        self.assertIn(b'"next_after":9007199254740991}', r.body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
