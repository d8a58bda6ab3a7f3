"""Taking access back: disabling, enabling and deleting users and service accounts, listing
and revoking API keys and enrolled keys. Every change needs a reason, is audited with who
made it and why, and fails the identity's very next request, including with an access token
minted before the change."""

import os
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase, b64  # noqa: E402
from signum_jwt import EcKey, make_jwt, now  # noqa: E402

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "signum-id"
DIGEST = HASHES["sha256"](b"identity lifecycle").digest()
ADMIN = "/api/v1/admin"
RACE_MAX = 800        # sign requests over all racing threads, at most
RACE_SECONDS = 30.0   # and for at most this long
RACE_THREADS = 4


class IdentityLifecycleTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256", "conf": {"auth_audience": AUDIENCE}}

    @classmethod
    def prepare(cls):
        cls.server.create_key("id-ec", "ec-p256")

    # -- helpers
    def admin(self, method, path, body=None, expect=200):
        return self.server.call(method, ADMIN + path, body, token=self.server.admin_token(),
                                expect=expect)

    def admin_req(self, method, path, body=None):
        return self.server.request(method, ADMIN + path, body, token=self.server.admin_token())

    def new_signer(self, name):
        key = self.server.create_user(name)
        self.server.grant("id-ec", name)
        return key

    def sign(self, token):
        return self.server.sign_request(token, "id-ec", "ecdsa", "sha256", DIGEST)

    def login(self, api_key):
        return self.server.request("POST", "/api/v1/auth/token",
                                   {"grant_type": "api_key", "api_key": api_key})

    def last_record(self, action):
        recs = [r for r in self.server.audit_show() if r["action"] == action]
        self.assertTrue(recs, "no %s record" % action)
        return recs[-1]

    def prefix_of(self, api_key):
        # sgk_<prefix>_<secret>: the public part the server lists.
        return api_key.split("_")[1]

    # -- API keys
    def test_revoke_one_api_key_kills_its_tokens_only(self):
        s = self.server
        k1 = self.new_signer("carol")
        k2 = s.call("POST", ADMIN + "/users/carol/api-keys", token=s.admin_token(),
                    expect=201)["api_key"]
        t1, t2 = s.token_for(k1), s.token_for(k2)
        self.assertEqual(self.sign(t1).status, 200)
        keys = self.admin("GET", "/users/carol/api-keys")["api_keys"]
        self.assertEqual([k["prefix"] for k in keys], [self.prefix_of(k1), self.prefix_of(k2)])
        self.assertTrue(all(k["last_used_at"] for k in keys), keys)
        self.assertFalse(any(k["revoked"] for k in keys), keys)

        out = self.admin("POST", "/users/carol/api-keys/%s/revoke" % self.prefix_of(k1),
                         {"reason": "key pasted in a chat"})
        self.assertEqual((out["revoked_api_keys"], out["revoked_tokens"]), (1, 1), out)
        # The token minted from the revoked key fails its very next request; the other works.
        self.assertError(self.sign(t1), 401, "token_invalid")
        self.assertEqual(self.sign(t2).status, 200)
        self.assertError(self.login(k1), 401, "bad_credentials")
        rec = self.last_record("apikey.revoke")
        self.assertEqual(rec["actor"], "user:admin")
        self.assertEqual(rec["detail"]["reason"], "key pasted in a chat")
        self.assertEqual(rec["detail"]["api_key_prefix"], self.prefix_of(k1))
        keys = {k["prefix"]: k for k in self.admin("GET", "/users/carol/api-keys")["api_keys"]}
        self.assertTrue(keys[self.prefix_of(k1)]["revoked"])
        self.assertFalse(keys[self.prefix_of(k2)]["revoked"])

        # Revoking it again, or a prefix of nobody's, is a clear 404.
        r = self.admin_req("POST", "/users/carol/api-keys/%s/revoke" % self.prefix_of(k1),
                           {"reason": "again"})
        self.assertError(r, 404, "not_found")

        out = self.admin("POST", "/users/carol/api-keys/revoke-all", {"reason": "offboarding"})
        self.assertEqual((out["revoked_api_keys"], out["revoked_tokens"]), (1, 1), out)
        self.assertError(self.sign(t2), 401, "token_invalid")
        self.assertError(self.login(k2), 401, "bad_credentials")

    # -- users
    def test_disable_then_enable_a_user(self):
        k = self.new_signer("dave")
        tok = self.server.token_for(k)
        self.assertEqual(self.sign(tok).status, 200)
        out = self.admin("POST", "/users/dave/disable", {"reason": "left the company"})
        self.assertTrue(out["user"]["disabled"])
        self.assertEqual(out["revoked_tokens"], 1)
        self.assertError(self.sign(tok), 401, "token_invalid")
        self.assertError(self.login(k), 401, "bad_credentials")
        rec = self.last_record("user.disable")
        self.assertEqual((rec["actor"], rec["outcome"]), ("user:admin", "ok"))
        self.assertEqual(rec["detail"]["user"], "dave")
        self.assertEqual(rec["detail"]["reason"], "left the company")

        out = self.admin("POST", "/users/dave/enable", {"reason": "came back"})
        self.assertFalse(out["user"]["disabled"])
        # Enabling does not revive the revoked token; the API key logs in again.
        self.assertError(self.sign(tok), 401, "token_invalid")
        self.assertEqual(self.sign(self.server.token_for(k)).status, 200)
        self.assertEqual(self.last_record("user.enable")["detail"]["reason"], "came back")

    def test_disable_while_signing(self):
        """Requests already past authentication when the disable commits get nothing: the
        caller is looked at again where the signature's record commits."""
        s = self.server
        tok = s.token_for(self.new_signer("rita"))
        results, lock, stop = [], threading.Lock(), threading.Event()
        counter = iter(range(RACE_MAX))
        deadline = time.monotonic() + RACE_SECONDS

        def client():
            conn = s.connection()
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    with lock:
                        n = next(counter, None)
                    if n is None:
                        return
                    sent = time.monotonic()
                    r = s.request("POST", "/api/v1/sign", {
                        "key": "id-ec", "mechanism": "ecdsa", "hash": "sha256",
                        "digest": b64(HASHES["sha256"](b"race %d" % n).digest())},
                        token=tok, conn=conn)
                    with lock:
                        results.append((sent, r.status, r.error_code,
                                        r.json.get("audit_id") if r.status == 200 else None))
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(RACE_THREADS)]
        for t in threads:
            t.start()
        while len([x for x in results if x[1] == 200]) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.admin("POST", "/users/rita/disable", {"reason": "left mid-build"})
        returned = time.monotonic()
        while time.monotonic() < min(returned + 1.0, deadline):
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(60)
            self.assertFalse(t.is_alive())

        ok = [x for x in results if x[1] == 200]
        self.assertGreaterEqual(len(ok), 20, "the loop never got going")
        after = [x for x in results if x[0] >= returned]
        self.assertTrue(after, "no request was sent after the disable returned")
        self.assertEqual({(x[1], x[2]) for x in after}, {(401, "token_invalid")})
        rec = self.last_record("user.disable")
        # Every signature handed out was committed before the disable, and nothing signed
        # for rita is in the log after it.
        self.assertTrue(all(x[3] < rec["seq"] for x in ok))
        late = [r for r in s.audit_show() if r["seq"] > rec["seq"] and r["action"] == "sign"
                and r["outcome"] == "allowed" and r["actor"] == "user:rita"]
        self.assertEqual(late, [])
        self.assertEqual(s.audit_verify()[0], 0)

    def test_delete_a_user_keeps_the_history(self):
        s = self.server
        k = self.new_signer("erin")
        tok = s.token_for(k)
        self.assertEqual(self.sign(tok).status, 200)
        out = self.admin("DELETE", "/users/erin", {"reason": "account closed"})
        self.assertEqual((out["revoked_api_keys"], out["revoked_tokens"], out["removed_grants"]),
                         (1, 1, 1), out)
        self.assertTrue(out["user"]["deleted"])
        self.assertError(self.sign(tok), 401, "token_invalid")
        self.assertError(self.login(k), 401, "bad_credentials")
        names = [u["name"] for u in self.admin("GET", "/users")["users"]]
        self.assertNotIn("erin", names)
        shown = self.admin("GET", "/users/erin")
        self.assertTrue(shown["user"]["deleted"])
        self.assertTrue(all(a["revoked"] for a in shown["api_keys"]))
        # The name stays taken, the identity cannot come back, its signatures stay audited.
        self.assertError(self.admin_req("POST", "/users", {"name": "erin", "role": "signer"}),
                         409, "already_exists")
        self.assertError(self.admin_req("POST", "/users/erin/enable", {"reason": "oops"}),
                         404, "user_not_found")
        signed = [r for r in s.audit_show() if r["action"] == "sign" and r["actor"] == "user:erin"
                  and r["outcome"] == "allowed"]
        self.assertEqual(len(signed), 1)
        self.assertEqual(s.audit_verify()[0], 0)

    def test_reason_is_required(self):
        self.new_signer("frank")
        cases = {
            "no body": (None, 415, "unsupported_content_type"),
            "empty reason": ({"reason": ""}, 400, "invalid_field"),
            "reason not a string": ({"reason": 5}, 400, "invalid_field"),
            "reason too long": ({"reason": "x" * 513}, 400, "invalid_field"),
            "unknown member": ({"reason": "r", "force": True}, 400, "unknown_field"),
        }
        for label, (body, status, code) in cases.items():
            with self.subTest(case=label):
                self.assertError(self.admin_req("POST", "/users/frank/disable", body),
                                 status, code)
        self.assertFalse(self.admin("GET", "/users/frank")["user"]["disabled"])

    def test_no_lockout(self):
        s = self.server
        for how, method, path in (("disable", "POST", "/users/admin/disable"),
                                  ("delete", "DELETE", "/users/admin")):
            with self.subTest(case=how):
                r = self.admin_req(method, path, {"reason": "test"})
                self.assertError(r, 403, "forbidden")
                self.assertIn("your own account", r.json["error"]["message"])
        # Another admin may disable an admin; the disabled admin's token dies at once.
        t3 = s.token_for(s.create_user("admin3", "admin"))
        try:
            out = s.call("POST", ADMIN + "/users/admin/disable", {"reason": "rotation"}, token=t3)
            self.assertTrue(out["user"]["disabled"])
            self.assertError(self.admin_req("GET", "/users"), 401, "token_invalid")
            s.call("POST", ADMIN + "/users/admin/enable", {"reason": "rotation"}, token=t3)
        finally:
            s._admin_token = None
        self.assertFalse(self.admin("GET", "/users/admin")["user"]["disabled"])

    def test_unknown_identity(self):
        self.assertError(self.admin_req("POST", "/users/nobody/disable", {"reason": "x"}),
                         404, "user_not_found")
        self.assertError(self.admin_req("GET", "/service-accounts/nobody"), 404, "user_not_found")

    def test_signer_cannot_administer(self):
        k = self.new_signer("gina")
        self.new_signer("hank")
        r = self.server.request("POST", ADMIN + "/users/hank/disable", {"reason": "x"},
                                token=self.server.token_for(k))
        self.assertError(r, 403, "forbidden")
        self.assertFalse(self.admin("GET", "/users/hank")["user"]["disabled"])

    # -- service accounts
    def enroll(self, name):
        s = self.server
        created = s.call("POST", ADMIN + "/service-accounts", {"name": name},
                         token=s.admin_token(), expect=201)
        s.grant("id-ec", name)
        key = EcKey(s.openssl, name)
        enrolled = s.call("POST", "/api/v1/enroll/service-account",
                          {"enrollment_token": created["enrollment_token"],
                           "public_key": key.spki_b64}, expect=201)
        return key, enrolled["kid"]

    def assertion(self, name, key, kid):
        t = now()
        claims = {"iss": name, "sub": name, "aud": AUDIENCE, "iat": t, "exp": t + 120,
                  "jti": uuid.uuid4().hex}
        return make_jwt({"alg": "ES256", "typ": "JWT", "kid": kid}, claims, key)

    def sa_login(self, name, key, kid):
        return self.server.request("POST", "/api/v1/auth/token",
                                   {"grant_type": JWT_BEARER,
                                    "assertion": self.assertion(name, key, kid)})

    def test_service_account_key_revocation(self):
        key, kid = self.enroll("ci-build")
        r = self.sa_login("ci-build", key, kid)
        self.assertEqual(r.status, 200, r)
        tok = r.json["access_token"]
        self.assertEqual(self.sign(tok).status, 200)
        listed = self.admin("GET", "/service-accounts")["service_accounts"]
        self.assertIn("ci-build", [a["name"] for a in listed])
        keys = self.admin("GET", "/service-accounts/ci-build/keys")["keys"]
        self.assertEqual([k["kid"] for k in keys], [kid])
        self.assertIsNotNone(keys[0]["last_used_at"])
        out = self.admin("POST", "/service-accounts/ci-build/keys/%s/revoke" % kid,
                         {"reason": "runner compromised"})
        self.assertEqual((out["revoked_enrolled_keys"], out["revoked_tokens"]), (1, 1), out)
        self.assertError(self.sign(tok), 401, "token_invalid")
        r = self.sa_login("ci-build", key, kid)
        self.assertError(r, 401, "bad_credentials")
        self.assertTrue(self.admin("GET", "/service-accounts/ci-build")["keys"][0]["revoked"])
        rec = self.last_record("service_account.key_revoke")
        self.assertEqual((rec["detail"]["kid"], rec["detail"]["reason"]),
                         (kid, "runner compromised"))

    def test_service_account_disable_and_delete(self):
        key, kid = self.enroll("ci-nightly")
        tok = self.sa_login("ci-nightly", key, kid).json["access_token"]
        self.admin("POST", "/service-accounts/ci-nightly/disable", {"reason": "paused"})
        self.assertError(self.sign(tok), 401, "token_invalid")
        self.assertError(self.sa_login("ci-nightly", key, kid), 401, "bad_credentials")
        self.admin("POST", "/service-accounts/ci-nightly/enable", {"reason": "resumed"})
        tok = self.sa_login("ci-nightly", key, kid).json["access_token"]
        self.assertEqual(self.sign(tok).status, 200)
        out = self.admin("DELETE", "/service-accounts/ci-nightly", {"reason": "pipeline gone"})
        self.assertEqual((out["revoked_enrolled_keys"], out["revoked_tokens"]), (1, 1), out)
        self.assertError(self.sign(tok), 401, "token_invalid")
        listed = self.admin("GET", "/service-accounts")["service_accounts"]
        self.assertNotIn("ci-nightly", [a["name"] for a in listed])
        # A user route does not reach a service account, nor the reverse.
        self.assertError(self.admin_req("GET", "/users/ci-nightly"), 404, "user_not_found")


if __name__ == "__main__":
    unittest.main(verbosity=2)
