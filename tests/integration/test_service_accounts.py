"""Service accounts: admin creation and one-time enrollment tokens, key enrollment (P-256),
RFC 7523 JWT-bearer assertions (ES256) and every way one can be wrong, signing with a granted
key, and revoking a principal's access tokens."""

import hashlib
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase, b64, ecdsa_raw_to_der, unb64  # noqa: E402
from signum_jwt import EcKey, RsaKey, b64url, make_jwt, now, unb64url  # noqa: E402

AUDIENCE = "signum-it"  # set in the config: the default "signum" must then be refused
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DIGEST = HASHES["sha256"](b"built by CI").digest()


def strings(value):
    """Every string in a JSON value (keys included), recursively."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


class ServiceAccountTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256", "conf": {"auth_audience": AUDIENCE}}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("ci-ec", "ec-p256")
        s.issue_cert("ci-ec", "CI release key")
        cls.created = s.call("POST", "/api/v1/admin/service-accounts", {"name": "ci-release"},
                             token=s.admin_token(), expect=201)
        s.grant("ci-ec", "ci-release")
        cls.key = EcKey(s.openssl, "ci-release")
        cls.enrolled = s.call("POST", "/api/v1/enroll/service-account",
                              {"enrollment_token": cls.created["enrollment_token"],
                               "public_key": cls.key.spki_b64}, expect=201)

    # -- helpers
    def new_enrollment_token(self, name="ci-release"):
        s = self.server
        return s.call("POST", "/api/v1/admin/service-accounts/%s/enrollment-tokens" % name,
                      token=s.admin_token(), expect=201)["enrollment_token"]

    def claims(self, **over):
        t = now()
        c = {"iss": "ci-release", "sub": "ci-release", "aud": AUDIENCE, "iat": t,
             "exp": t + 120, "jti": uuid.uuid4().hex}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def assertion(self, key=None, kid=None, header=None, **claims):
        h = {"alg": "ES256", "typ": "JWT", "kid": kid or self.enrolled["kid"]}
        h.update(header or {})
        return make_jwt(h, self.claims(**claims), key or self.key)

    def token_request(self, assertion, cert=None):
        return self.server.request("POST", "/api/v1/auth/token",
                                   {"grant_type": JWT_BEARER, "assertion": assertion}, cert=cert)

    def get_token(self, **kw):
        r = self.token_request(self.assertion(**kw))
        self.assertEqual(r.status, 200, r)
        return r.json

    def refused(self, assertion, fragment):
        """401 bad_credentials naming the problem; one denial record, without the assertion."""
        s = self.server
        last = s.audit_last_seq()
        r = self.token_request(assertion)
        self.assertError(r, 401, "bad_credentials")
        self.assertIn(fragment, r.json["error"]["message"])
        self.assertNotIn("access_token", r.json)
        recs = s.audit_show(after=last)
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["action"], "auth.token")
        self.assertEqual(recs[0]["outcome"], "denied")
        self.assertEqual(recs[0]["actor"], "anonymous")
        self.assertEqual(recs[0]["detail"]["code"], "bad_credentials")
        # The assertion is in no field of the record. Exact, not a substring search of the
        # whole record: a short bad assertion ("abc") would match random hex hashes.
        for value in strings(recs[0]["detail"]):
            self.assertNotEqual(value, assertion)
            if len(assertion) >= 32:
                self.assertNotIn(assertion, value)
        self.assertNotIn("assertion", recs[0]["detail"])
        self.assertNotIn("assertion", recs[0]["detail"].get("presented", {}))
        return r, recs[0]

    # -- admin side
    def test_created_and_listed_as_a_service_account(self):
        s = self.server
        c = self.created
        self.assertEqual(c["service_account"], {"name": "ci-release", "kind": "service",
                                                "role": "signer"})
        self.assertRegex(c["enrollment_token"], r"^sge_[A-Za-z0-9_-]{43}$")
        self.assertAlmostEqual(c["expires_at"], now() + 3600, delta=120)
        users = {u["name"]: u for u in s.call("GET", "/api/v1/admin/users",
                                              token=s.admin_token())["users"]}
        self.assertEqual(users["ci-release"]["kind"], "service")
        self.assertEqual(users["ci-release"]["role"], "signer")
        self.assertEqual(users["admin"]["kind"], "user")
        with s.db() as db:
            stored = {bytes(r[0]) for r in db.execute("SELECT hash FROM enrollment_tokens")}
        self.assertIn(hashlib.sha256(c["enrollment_token"].encode()).digest(), stored)
        self.assertNotIn(c["enrollment_token"].encode(), stored)

    def test_shared_namespace_and_errors(self):
        s = self.server
        adm = s.admin_token()
        r = s.request("POST", "/api/v1/admin/service-accounts", {"name": "admin"}, token=adm)
        self.assertError(r, 409, "already_exists")
        r = s.request("POST", "/api/v1/admin/service-accounts", {"name": "bad name"}, token=adm)
        self.assertError(r, 400, "invalid_field")
        r = s.request("POST", "/api/v1/admin/service-accounts", {"name": "x", "role": "admin"},
                      token=adm)
        self.assertError(r, 400, "unknown_field")
        r = s.request("POST", "/api/v1/admin/service-accounts/admin/enrollment-tokens", token=adm)
        self.assertError(r, 404, "user_not_found")
        r = s.request("POST", "/api/v1/admin/service-accounts/nobody/enrollment-tokens",
                      token=adm)
        self.assertError(r, 404, "user_not_found")
        # Service accounts authenticate with key pairs or OIDC, never with API keys.
        r = s.request("POST", "/api/v1/admin/users/ci-release/api-keys", token=adm)
        self.assertError(r, 400, "invalid_field")

    # -- enrollment
    def test_enrollment_answer_and_kid(self):
        self.assertEqual(self.enrolled["service_account"], "ci-release")
        self.assertEqual(self.enrolled["kid"],
                         hashlib.sha256(self.key.spki).digest()[:16].hex())
        rec = [r for r in self.server.audit_show() if r["action"] == "service_account.enroll"][0]
        self.assertEqual(rec["outcome"], "ok")
        self.assertEqual(rec["actor"], "service:ci-release")
        self.assertEqual(rec["detail"]["kid"], self.enrolled["kid"])

    def test_enrollment_token_is_single_use(self):
        s = self.server
        other = EcKey(s.openssl, "single-use")
        last = s.audit_last_seq()
        r = s.request("POST", "/api/v1/enroll/service-account",
                      {"enrollment_token": self.created["enrollment_token"],
                       "public_key": other.spki_b64})
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("already used", r.json["error"]["message"])
        recs = s.audit_show(after=last)
        self.assertEqual([(x["action"], x["outcome"]) for x in recs],
                         [("service_account.enroll", "denied")])
        self.assertNotIn(self.created["enrollment_token"], json.dumps(recs))

    def test_enrollment_token_expiry(self):
        s = self.server
        tok = self.new_enrollment_token()
        with s.db() as db:
            db.execute("UPDATE enrollment_tokens SET expires_at = ?1 WHERE hash = ?2",
                       (now() - 1, hashlib.sha256(tok.encode()).digest()))
        other = EcKey(s.openssl, "expired")
        r = s.request("POST", "/api/v1/enroll/service-account",
                      {"enrollment_token": tok, "public_key": other.spki_b64})
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("expired", r.json["error"]["message"])
        for bad in ("sge_" + "A" * 43, "not-a-token"):
            r = s.request("POST", "/api/v1/enroll/service-account",
                          {"enrollment_token": bad, "public_key": other.spki_b64})
            self.assertError(r, 401, "bad_credentials")

    def test_only_p256_keys_and_token_survives_refusals(self):
        s = self.server
        tok = self.new_enrollment_token()
        p384 = EcKey(s.openssl, "p384", curve="P-384")
        rsa = RsaKey(s.openssl, "rsa-enroll")
        for pub, code in ((p384.spki_b64, "invalid_field"), (b64(rsa.spki), "invalid_field"),
                          ("not base64!", "bad_base64"), (b64(b"\x30\x03\x02\x01\x01"),
                                                          "invalid_field")):
            r = s.request("POST", "/api/v1/enroll/service-account",
                          {"enrollment_token": tok, "public_key": pub})
            self.assertError(r, 400, code)
        # None of those used the token up: a good key still enrolls with it, a second time not.
        second = EcKey(s.openssl, "second")
        r = s.call("POST", "/api/v1/enroll/service-account",
                   {"enrollment_token": tok, "public_key": second.spki_b64}, expect=201)
        self.assertEqual(r["kid"], second.kid)
        # Both keys of the account now work.
        self.assertEqual(self.get_token(key=second, kid=second.kid)["user"], "ci-release")
        self.assertEqual(self.get_token()["user"], "ci-release")

    def test_same_key_cannot_enroll_twice(self):
        s = self.server
        tok = self.new_enrollment_token()
        r = s.request("POST", "/api/v1/enroll/service-account",
                      {"enrollment_token": tok, "public_key": self.key.spki_b64})
        self.assertError(r, 409, "already_exists")
        with s.db() as db:
            used = db.execute("SELECT used_at FROM enrollment_tokens WHERE hash = ?1",
                              (hashlib.sha256(tok.encode()).digest(),)).fetchone()[0]
        self.assertIsNone(used, "a refused enrollment must not use the token up")

    # -- assertions
    def test_token_then_sign_with_granted_key(self):
        s = self.server
        last = s.audit_last_seq()
        jti = uuid.uuid4().hex
        a = self.assertion(jti=jti)
        r = self.token_request(a)
        self.assertEqual(r.status, 200, r)
        t = r.json
        self.assertRegex(t["access_token"], r"^sgt_[A-Za-z0-9_-]{43}$")
        self.assertEqual((t["user"], t["role"], t["kind"], t["token_type"]),
                         ("ci-release", "signer", "service", "Bearer"))
        self.assertNotIn("machine", t)
        recs = s.audit_show(after=last)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["actor"], "service:ci-release")
        self.assertEqual(recs[0]["detail"]["method"], "jwt_bearer")
        self.assertEqual(recs[0]["detail"]["kid"], self.enrolled["kid"])
        self.assertEqual(recs[0]["detail"]["jti"], jti)
        self.assertNotIn(a, json.dumps(recs))
        # The token signs with the granted key; openssl verifies the signature.
        keys = s.call("GET", "/api/v1/keys", token=t["access_token"])["keys"]
        self.assertEqual([k["name"] for k in keys], ["ci-ec"])
        sig = s.sign(t["access_token"], "ci-ec", "ecdsa", "sha256", digest=DIGEST)
        o = s.openssl
        pub = o("pkey", "-pubin", "-inform", "DER", "-in", o.tmp(unb64(keys[0]["public_key"]))
                ).stdout
        ok, out = o.verify_digest_sig(pub, "sha256", b"built by CI",
                                      ecdsa_raw_to_der(unb64(sig["signature"])))
        self.assertTrue(ok, out)
        rec = s.audit_show(after=sig["audit_id"] - 1)[0]
        self.assertEqual((rec["action"], rec["actor"]), ("sign", "service:ci-release"))
        # A service account is never an administrator.
        r = s.request("GET", "/api/v1/admin/users", token=t["access_token"])
        self.assertError(r, 403, "forbidden")

    def test_jti_kept_past_the_second_of_exp(self):
        # Issue 14: the jti purge used a later clock than the exp check, so a replay in the
        # second of exp could find the first use purged. The jti must outlive that second.
        s = self.server
        t = now()
        jti = "boundary-" + uuid.uuid4().hex
        a = self.assertion(iat=t, exp=t + 2, jti=jti)
        self.assertEqual(self.token_request(a).status, 200)
        with s.db() as db:
            kept = db.execute("SELECT expires_at FROM used_jtis WHERE jti = ?",
                              (jti,)).fetchone()
        self.assertIsNotNone(kept)
        self.assertGreater(kept[0], t + 2)
        # Replays around the exp boundary (a few, bounded): refused as replays, then as
        # expired, never accepted.
        deadline = time.monotonic() + 10
        while time.time() < t + 1.8 and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(4):
            r = self.token_request(a)
            self.assertError(r, 401, "bad_credentials")
            msg = r.json["error"]["message"]
            self.assertTrue("jti was already used" in msg or "expired" in msg, msg)
            time.sleep(0.15)

    def test_replayed_jti(self):
        a = self.assertion()
        self.assertEqual(self.token_request(a).status, 200)
        self.refused(a, "jti was already used")
        # A fresh jti is fine again.
        self.get_token()

    def test_expired_and_time_window(self):
        t = now()
        self.refused(self.assertion(iat=t - 200, exp=t - 10), "expired")
        self.refused(self.assertion(iat=t, exp=t + 301), "lifetime")
        self.refused(self.assertion(iat=t + 120, exp=t + 180), "future")
        self.refused(self.assertion(iat=t, exp=t + 60, nbf=t + 300), "not valid before")
        self.refused(self.assertion(exp=None), "exp and iat")
        self.refused(self.assertion(iat=None), "exp and iat")
        self.refused(self.assertion(exp="soon"), "NumericDate")
        # Within the 60 s skew an iat slightly ahead of the server is accepted.
        self.get_token(iat=t + 30, exp=t + 90)

    def test_wrong_audience(self):
        self.refused(self.assertion(aud="signum"), "audience")
        self.refused(self.assertion(aud=["other", "signum"]), "audience")
        self.refused(self.assertion(aud=None), "audience")
        self.get_token(aud=["other", AUDIENCE])

    def test_unknown_or_foreign_kid(self):
        s = self.server
        self.refused(self.assertion(kid="00" * 16), "unknown kid")
        # A key enrolled by another service account does not work for this one.
        other = s.call("POST", "/api/v1/admin/service-accounts", {"name": "ci-other"},
                       token=s.admin_token(), expect=201)
        okey = EcKey(s.openssl, "ci-other")
        s.call("POST", "/api/v1/enroll/service-account",
               {"enrollment_token": other["enrollment_token"], "public_key": okey.spki_b64},
               expect=201)
        self.refused(self.assertion(key=okey, kid=okey.kid), "unknown kid")
        r = self.token_request(self.assertion(key=okey, kid=okey.kid, iss="ci-other",
                                              sub="ci-other"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user"], "ci-other")
        # ci-other holds no grant on ci-ec.
        r = self.server.sign_request(r.json["access_token"], "ci-ec", "ecdsa", "sha256",
                                     digest=DIGEST)
        self.assertError(r, 403, "key_not_granted")
        self.refused(self.assertion(header={"kid": None}), "kid")

    def test_algorithms_other_than_es256(self):
        h = {"typ": "JWT", "kid": self.enrolled["kid"]}
        c = self.claims()
        _, rec = self.refused(make_jwt(dict(h, alg="none"), c, signature=b""), "alg")
        self.assertEqual(rec["detail"]["presented"], {})  # refused before any claim is read
        self.refused(make_jwt(dict(h, alg="HS256"), c, signature=b"\x00" * 32), "alg")
        self.refused(make_jwt(dict(h, alg="RS256"), self.claims(), self.key), "alg")
        self.refused(make_jwt(dict(h, alg="ES256"), self.claims(), signature=b""), "not signed")
        self.refused(make_jwt(dict(h, alg="ES256", crit=["exp"]), self.claims(), self.key),
                     "crit")
        self.refused(make_jwt(dict(h, alg="ES256", typ="JOSE+JSON"), self.claims(), self.key),
                     "typ")

    def test_tampered_and_forged(self):
        a = self.assertion()
        h, p, sig = a.split(".")
        claims = json.loads(unb64url(p))
        claims["jti"] = uuid.uuid4().hex
        tampered = h + "." + b64url(json.dumps(claims)) + "." + sig
        _, rec = self.refused(tampered, "signature does not verify")
        self.assertEqual(rec["detail"]["presented"]["iss"], "ci-release")
        # Signed by a key that was never enrolled, under the enrolled key's kid.
        self.refused(self.assertion(key=EcKey(self.server.openssl, "forger")), "does not verify")
        # A signature of the wrong length (DER instead of raw r||s).
        der = ecdsa_raw_to_der(unb64url(sig))
        self.refused(h + "." + p + "." + b64url(der), "64 bytes")
        # The untouched assertion is still good: refusals do not burn its jti.
        self.assertEqual(self.token_request(a).status, 200)

    def test_identity_claims(self):
        self.refused(self.assertion(sub="admin"), "iss and sub")
        self.refused(self.assertion(iss="admin", sub="admin"), "not a service account")
        self.refused(self.assertion(iss="ghost", sub="ghost"), "no service account")
        self.refused(self.assertion(jti=None), "jti")
        self.refused(self.assertion(jti="x" * 129), "jti")

    def test_malformed_assertions(self):
        good = self.assertion()
        h, p, sig = good.split(".")
        for bad, fragment in (("abc", "compact JWT"), (good + ".x", "compact JWT"),
                              ("." + p + "." + sig, "empty"),
                              (h + "." + p + "=." + sig, "base64url"),
                              (b64url("[1]") + "." + p + "." + sig, "object"),
                              (h + "." + "A" * 9000 + "." + sig, "over 8192")):
            with self.subTest(fragment=fragment):
                self.refused(bad, fragment)
        s = self.server
        r = s.request("POST", "/api/v1/auth/token", {"grant_type": JWT_BEARER})
        self.assertError(r, 400, "invalid_field")
        r = s.request("POST", "/api/v1/auth/token",
                      {"grant_type": JWT_BEARER, "assertion": good, "api_key": "x"})
        self.assertError(r, 400, "unknown_field")
        r = s.request("POST", "/api/v1/auth/token", {"grant_type": "password", "assertion": good})
        self.assertError(r, 400, "invalid_field")

    def test_token_exchange_needs_oidc_config(self):
        r = self.server.request("POST", "/api/v1/auth/token", {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": self.assertion(),
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token"})
        self.assertError(r, 401, "bad_credentials")
        self.assertIn("oidc_config", r.json["error"]["message"])

    # -- revocation
    def test_revoke_tokens(self):
        s = self.server
        t1, t2 = self.get_token()["access_token"], self.get_token()["access_token"]
        bob = s.token_for(s.create_user("bob-revoke"))
        # Without a reason nothing is revoked.
        url = "/api/v1/admin/users/ci-release/revoke-tokens"
        for body, status, code in ((None, 415, "unsupported_content_type"),
                                   ({}, 400, "invalid_field"),
                                   ({"reason": ""}, 400, "invalid_field")):
            r = s.request("POST", url, body, token=s.admin_token())
            self.assertError(r, status, code)
        self.assertEqual(s.request("GET", "/api/v1/keys", token=t1).status, 200)
        last = s.audit_last_seq()
        r = s.call("POST", url, {"reason": "runner image leaked"}, token=s.admin_token())
        self.assertEqual(r["user"], "ci-release")
        self.assertEqual(r["kind"], "service")
        self.assertGreaterEqual(r["revoked_tokens"], 2)
        rec = s.audit_show(after=last)
        self.assertEqual(len(rec), 1)
        self.assertEqual((rec[0]["action"], rec[0]["actor"]), ("user.revoke_tokens", "user:admin"))
        self.assertEqual(rec[0]["detail"]["revoked_tokens"], r["revoked_tokens"])
        self.assertEqual(rec[0]["detail"]["reason"], "runner image leaked")
        for t in (t1, t2):
            self.assertError(s.request("GET", "/api/v1/keys", token=t), 401, "token_invalid")
        # Other principals keep their tokens; the account simply authenticates again.
        self.assertEqual(s.request("GET", "/api/v1/keys", token=bob).status, 200)
        fresh = self.get_token()["access_token"]
        self.assertEqual(s.request("GET", "/api/v1/keys", token=fresh).status, 200)
        # Human users too; nothing is left to revoke the second time.
        r = s.call("POST", "/api/v1/admin/users/bob-revoke/revoke-tokens", {"reason": "x"},
                   token=s.admin_token())
        self.assertEqual((r["kind"], r["revoked_tokens"]), ("user", 1))
        self.assertError(s.request("GET", "/api/v1/keys", token=bob), 401, "token_invalid")
        r = s.call("POST", "/api/v1/admin/users/bob-revoke/revoke-tokens", {"reason": "x"},
                   token=s.admin_token())
        self.assertEqual(r["revoked_tokens"], 0)
        r = s.request("POST", "/api/v1/admin/users/nobody/revoke-tokens", {"reason": "x"},
                      token=s.admin_token())
        self.assertError(r, 404, "user_not_found")
        r = s.request("POST", "/api/v1/admin/users/bob-revoke/revoke-tokens", {"reason": "x"},
                      token=fresh)
        self.assertError(r, 403, "forbidden")

    def test_audit_chain_intact(self):
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
