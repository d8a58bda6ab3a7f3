"""The console's server side against a real server: its files embedded in the binary and served
with a strict CSP and security headers; admin login with TOTP (RFC 6238) enrolled at the first
login, the secret in the HSM (not in the database), codes usable once, failures rate-limited and
audited; the session in an HttpOnly, Secure, SameSite=Strict cookie with a CSRF token required
on every state-changing call, an idle and an absolute timeout, logout, and the end of the session when its API
key is revoked; and the server setting that makes admins' API tokens need a code too."""

import base64
import hashlib
import hmac
import os
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import SOFTHSM_MODULE, ServerTestCase, run  # noqa: E402


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def now_step():
    return int(time.time()) // 30


def wrong_code(secret_b32):
    """A code that no step near now has, so that it is wrong whatever the clock says."""
    near = {totp(secret_b32, now_step() + d) for d in range(-3, 4)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555",
                            "666666", "777777", "888888") if c not in near)


class Session:
    def __init__(self, cookie, csrf):
        self.cookie, self.csrf = cookie, csrf


class ConsoleApiTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.keys = {"signer": s.create_user("con-signer")}
        for admin in ("con-admin", "con-locked", "con-enrol"):
            cls.keys[admin] = s.create_user(admin, "admin")

    # -- helpers
    def post(self, path, body, session=None, csrf=True, extra=None):
        headers = dict(extra or {})
        if session:
            headers["Cookie"] = "signum_console=" + session.cookie
            if csrf:
                headers["X-CSRF-Token"] = session.csrf
        return self.server.request("POST", path, body, headers=headers)

    def get(self, path, session):
        return self.server.request("GET", path, headers={"Cookie": "signum_console=" +
                                                         session.cookie})

    def session_from(self, r):
        self.assertEqual(r.status, 200, r)
        cookie = r.headers["set-cookie"]
        for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, cookie)
        token = cookie.split(";", 1)[0].split("=", 1)[1]
        self.assertTrue(token.startswith("sgt_"))
        self.assertNotIn(token, r.body.decode())  # never readable by the page's script
        return Session(token, r.json["csrf_token"])

    def enrol(self, who):
        r = self.post("/console/api/login", {"api_key": self.keys[who]})
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("set-cookie", r.headers)  # no session before the code
        e = r.json["totp_enrollment"]
        self.assertTrue(e["otpauth_uri"].startswith("otpauth://totp/Signum:%s?secret=%s&"
                                                    % (who, e["secret_base32"])))
        self.assertTrue(e["qr_svg"].startswith("<svg "))
        return e

    def confirm(self, who, e, code):
        return self.post("/console/api/totp/confirm", {"api_key": self.keys[who],
                                                       "enrollment_id": e["enrollment_id"],
                                                       "code": code})

    # -- files and headers
    def test_files_are_embedded_and_served_with_a_strict_policy(self):
        s = self.server
        for path in ("/console/", "/console", "/console/index.html"):
            with self.subTest(path=path):
                r = s.request("GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
                with open(os.path.join(os.path.dirname(__file__), "..", "..", "server",
                                       "console", "index.html"), "rb") as f:
                    self.assertEqual(r.body, f.read())
                csp = r.headers["content-security-policy"]
                for part in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"):
                    self.assertIn(part, csp)
                self.assertNotIn("unsafe-inline", csp)
                self.assertEqual(r.headers["x-frame-options"], "DENY")
                self.assertEqual(r.headers["referrer-policy"], "no-referrer")
                self.assertIn("max-age=", r.headers["strict-transport-security"])
        self.assertError(s.request("GET", "/console/no-such.js"), 404, "not_found")
        r = s.request("GET", "/healthz")
        self.assertEqual(r.headers["content-security-policy"],
                         "default-src 'none'; frame-ancestors 'none'")

    # -- TOTP enrollment and login
    def test_admin_enrols_totp_then_logs_in_with_a_code_once(self):
        e = self.enrol("con-enrol")
        self.assertError(self.confirm("con-enrol", e, wrong_code(e["secret_base32"])), 401,
                         "totp_invalid")
        session = self.session_from(self.confirm("con-enrol", e,
                                                 totp(e["secret_base32"], now_step())))
        # The secret is in the HSM as a sensitive, non-extractable secret key, not on disk.
        secret = base64.b32decode(e["secret_base32"] + "=" * (-len(e["secret_base32"]) % 8))
        self.assertNotIn(secret, self.server.db_bytes())
        s = self.server
        out = run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "signum",
                   "--login", "--pin", s.user_pin(), "-O", "--type", "secrkey"],
                  env=s.hsm_env(), check=True).stdout.decode()
        self.assertIn("signum-totp-con-enrol", out)
        self.assertIn("Access:     sensitive", out)
        self.assertNotIn("extractable", out)  # pkcs11-tool names CKA_EXTRACTABLE when true

        # The confirming code is spent; a code of the next step logs in; then it is spent too.
        r = self.post("/console/api/login", {"api_key": self.keys["con-enrol"]})
        self.assertError(r, 401, "totp_required")
        self.assertError(self.post("/console/api/login", {
            "api_key": self.keys["con-enrol"], "totp": totp(e["secret_base32"], now_step() - 1)}),
            401, "totp_replayed")
        code = totp(e["secret_base32"], now_step() + 1)
        self.session_from(self.post("/console/api/login", {"api_key": self.keys["con-enrol"],
                                                           "totp": code}))
        self.assertError(self.post("/console/api/login", {"api_key": self.keys["con-enrol"],
                                                          "totp": code}), 401, "totp_replayed")
        # A second enrollment is refused while one is in force.
        self.assertError(self.confirm("con-enrol", e, code), 404, "not_found")
        recs = [x for x in s.audit_show() if x["action"].startswith("console.")
                and x["actor"] == "user:con-enrol"]
        self.assertEqual([(x["action"], x["outcome"]) for x in recs],
                         [("console.totp_enrollment", "ok"), ("console.totp_confirm", "denied"),
                          ("console.login", "ok"), ("console.login", "denied"),
                          ("console.login", "denied"), ("console.login", "ok"),
                          ("console.login", "denied"), ("console.totp_confirm", "denied")])
        self.assertIsNotNone(session)

    def test_failed_codes_are_rate_limited_and_audited(self):
        e = self.enrol("con-locked")
        self.session_from(self.confirm("con-locked", e, totp(e["secret_base32"], now_step())))
        good = totp(e["secret_base32"], now_step() + 1)
        wrong = wrong_code(e["secret_base32"])
        for _ in range(4):
            self.assertError(self.post("/console/api/login", {
                "api_key": self.keys["con-locked"], "totp": wrong}), 401, "totp_invalid")
        self.assertError(self.post("/console/api/login", {
            "api_key": self.keys["con-locked"], "totp": wrong}), 429, "too_many_attempts")
        # Locked: even the right code waits.
        self.assertError(self.post("/console/api/login", {
            "api_key": self.keys["con-locked"], "totp": good}), 429, "too_many_attempts")
        denied = [x for x in self.server.audit_show() if x["action"] == "console.login"
                  and x["actor"] == "user:con-locked" and x["outcome"] == "denied"]
        self.assertEqual([x["detail"]["code"] for x in denied],
                         ["totp_invalid"] * 4 + ["too_many_attempts"] * 2)
        # A bad API key is refused before any code is looked at.
        self.assertError(self.post("/console/api/login", {"api_key": "sgk_000000000000_x",
                                                          "totp": good}), 401, "bad_credentials")

    # -- the session
    def test_session_cookie_csrf_idle_logout_and_revocation(self):
        s = self.server
        session = self.session_from(self.post("/console/api/login",
                                              {"api_key": self.keys["signer"]}))
        self.assertEqual(self.get("/console/api/session", session).json["csrf_token"],
                         session.csrf)
        self.assertEqual(self.get("/api/v1/keys", session).status, 200)
        self.assertError(self.get("/api/v1/admin/users", session), 403, "forbidden")

        admin = self.admin_session()
        self.assertEqual(self.get("/api/v1/admin/users", admin).status, 200)
        # A state-changing call without the CSRF token, or with another, is refused.
        body = {"name": "con-made", "role": "signer"}
        self.assertError(self.post("/api/v1/admin/users", body, admin, csrf=False), 403,
                         "csrf_token_invalid")
        self.assertError(self.post("/api/v1/admin/users", body, admin,
                                   extra={"X-CSRF-Token": session.csrf}, csrf=False), 403,
                         "csrf_token_invalid")
        r = self.post("/api/v1/admin/users", body, admin)
        self.assertEqual(r.status, 201, r)
        rec = [x for x in s.audit_show() if x["action"] == "user.create"][-1]
        self.assertEqual(rec["actor"], "user:con-admin")

        # Idle too long: the session is over (its last use moved back, as time would).
        with s.db() as db:
            db.execute("UPDATE access_tokens SET last_seen = last_seen - 100000"
                       " WHERE csrf_hash IS NOT NULL AND user_id = (SELECT id FROM users"
                       " WHERE name = 'con-signer')")
        self.assertError(self.get("/api/v1/keys", session), 401, "session_expired")

        # Logout ends it at once.
        self.assertEqual(self.post("/console/api/logout", None, admin).status, 200)
        self.assertError(self.get("/api/v1/admin/users", admin), 401, "token_invalid")

        # Revoking the API key a session was made from ends the session.
        again = self.session_from(self.post("/console/api/login",
                                            {"api_key": self.keys["signer"]}))
        prefix = self.keys["signer"].split("_")[1]
        s.call("POST", "/api/v1/admin/users/con-signer/api-keys/%s/revoke" % prefix,
               {"reason": "leaked"}, token=s.admin_token())
        self.assertError(self.get("/api/v1/keys", again), 401, "token_invalid")
        # A cookie that is not a session is refused; the Bearer path is unchanged.
        bogus = Session("sgt_" + "A" * 43, "x")
        self.assertError(self.get("/api/v1/keys", bogus), 401, "token_invalid")
        self.assertEqual(s.request("GET", "/api/v1/admin/users", token=s.admin_token()).status,
                         200)

    def test_session_ends_at_its_absolute_timeout(self):
        """console_session_ttl bounds a session however busy it is: its cookie's Max-Age and
        the login answer say when, and past it the cookie is refused though never idle."""
        s = self.server
        key = s.create_user("con-ttl")
        before = int(time.time())
        r = self.post("/console/api/login", {"api_key": key})
        session = self.session_from(r)
        ttl = 28800  # the default console_session_ttl
        self.assertIn("Max-Age=%d" % ttl, r.headers["set-cookie"])
        self.assertEqual(r.json["absolute_timeout"], ttl)
        self.assertGreaterEqual(r.json["expires_at"], before + ttl)
        self.assertLessEqual(r.json["expires_at"], int(time.time()) + ttl)
        self.assertEqual(self.get("/api/v1/keys", session).status, 200)
        # The session made ttl seconds earlier, as time would (its login and expiry moved back,
        # its last use left at now, so that the idle timeout is not what ends it).
        with s.db() as db:
            cur = db.execute("UPDATE access_tokens SET expires_at = expires_at - ?"
                             " WHERE csrf_hash IS NOT NULL AND hash = ?",
                             (ttl, hashlib.sha256(session.cookie.encode()).digest()))
            self.assertEqual(cur.rowcount, 1)
        self.assertError(self.get("/api/v1/keys", session), 401, "token_expired")
        self.assertError(self.get("/console/api/session", session), 401, "token_expired")
        self.assertError(self.post("/api/v1/sign", {}, session), 401, "token_expired")
        # A new login is a new session, with its own full lifetime.
        again = self.session_from(self.post("/console/api/login", {"api_key": key}))
        self.assertNotEqual(again.cookie, session.cookie)
        self.assertEqual(self.get("/api/v1/keys", again).status, 200)

    def admin_session(self):
        if not hasattr(type(self), "_admin_secret"):
            e = self.enrol("con-admin")
            type(self)._admin_secret = e["secret_base32"]
            return self.session_from(self.confirm("con-admin", e,
                                                  totp(e["secret_base32"], now_step())))
        return self.session_from(self.post("/console/api/login", {
            "api_key": self.keys["con-admin"],
            "totp": totp(type(self)._admin_secret, now_step() + 1)}))

    def test_policy_versions_and_audit_status(self):
        s = self.server
        adm = s.admin_token()
        rule = {"name": "con-rule", "effect": "allow", "subjects": {"users": ["con-signer"]},
                "keys": {"names": ["*"]}}
        s.call("POST", "/api/v1/admin/policies", rule, token=adm, expect=201)
        rule["description"] = "second"
        s.call("PUT", "/api/v1/admin/policies/con-rule", rule, token=adm)
        s.call("DELETE", "/api/v1/admin/policies/con-rule", token=adm)
        got = s.call("GET", "/api/v1/admin/policies/con-rule/versions", token=adm)
        self.assertEqual([(v["version"], v["deleted"]) for v in got["versions"]],
                         [(3, True), (2, False), (1, False)])
        self.assertEqual(got["versions"][1]["policy"]["description"], "second")
        self.assertNotIn("description", got["versions"][2]["policy"])
        self.assertError(s.request("GET", "/api/v1/admin/policies/con-never/versions",
                                   token=adm), 404, "not_found")
        status = s.call("GET", "/api/v1/admin/audit/status", token=adm)
        self.assertTrue(status["intact"])
        self.assertGreater(status["records"], 0)
        self.assertEqual(status["records"] - status["checkpoints"]["last_seq"],
                         status["checkpoints"]["unchecked_records"])
        self.assertTrue(status["checkpoints"]["hsm_mark_checked"])
        self.assertError(s.request("GET", "/api/v1/admin/audit/status",
                                   token=s.token_for(s.create_user("con-reader"))), 403,
                         "forbidden")

    def test_hourly_usage_own_usage_and_own_requests(self):
        s = self.server
        adm = s.admin_token()
        s.create_key("con-k", "ec-p256")
        s.create_key("con-other", "ec-p256")
        signer = s.token_for(s.create_user("con-s1"))
        other = s.token_for(s.create_user("con-s2"))
        s.grant("con-k", "con-s1")
        s.grant("con-k", "con-s2")

        def hourly_totals():
            hours = s.call("GET", "/api/v1/admin/usage/hourly?hours=3", token=adm)["hours"]
            self.assertEqual(len(hours), 3)
            self.assertEqual([h["start"] % 3600 for h in hours], [0, 0, 0])
            self.assertEqual(hours[1]["start"] - hours[0]["start"], 3600)
            return (sum(h["signatures"] for h in hours), sum(h["denials"] for h in hours))

        before = hourly_totals()
        digest = hashlib.sha256(b"hourly").digest()
        for _ in range(3):
            s.sign(signer, "con-k", "ecdsa", "sha256", digest=digest)
        self.assertError(s.sign_request(signer, "con-other", "ecdsa", "sha256", digest=digest),
                         403, "key_not_granted")
        s.sign(other, "con-k", "ecdsa", "sha256", digest=digest)
        after = hourly_totals()
        self.assertEqual((after[0] - before[0], after[1] - before[1]), (4, 1))

        mine = s.call("GET", "/api/v1/usage", token=signer)
        self.assertEqual({(u["key"], u["signer"]) for u in mine["usage"]},
                         {("con-k", "con-s1"), ("con-other", "con-s1")})
        self.assertEqual(mine["totals"], {"signatures": 3, "denials": 1})

        # A request that waits for approval is listed for its requester, with its machine.
        s.call("POST", "/api/v1/admin/policies", {
            "name": "con-approve", "effect": "allow", "priority": 10,
            "subjects": {"users": ["con-s1"]}, "keys": {"names": ["con-other"]},
            "conditions": {"approval": {"required": 1, "approvers": ["con-s2"]}}},
            token=adm, expect=201)
        r = s.sign_request(signer, "con-other", "ecdsa", "sha256", digest=digest)
        self.assertEqual(r.status, 202, r)
        listed = s.call("GET", "/api/v1/sign/requests", token=signer)["requests"]
        self.assertEqual([(x["approval_id"], x["status"], x["machine"]) for x in listed],
                         [(r.json["approval_id"], "pending", None)])
        self.assertEqual(listed[0]["request"]["key"], "con-other")
        self.assertEqual(s.call("GET", "/api/v1/sign/requests", token=other)["requests"], [])
        pending = s.call("GET", "/api/v1/approvals", token=other)["approvals"]
        self.assertEqual([(a["approval_id"], a["machine"]) for a in pending],
                         [(r.json["approval_id"], None)])
        health = s.request("GET", "/healthz")
        self.assertEqual((health.json["exporters"], health.json["queue"]["limit"]), ([], 4096))
        self.assertGreaterEqual(health.json["queue"]["waiting"], 0)

    def test_bad_input(self):
        for body, status, code in (
                ({}, 400, "invalid_field"),
                ({"api_key": "x", "extra": 1}, 400, "unknown_field"),
                ({"api_key": 5}, 400, "invalid_field"),
                ({"api_key": "sgk_nonsense"}, 401, "bad_credentials")):
            with self.subTest(body=body):
                self.assertError(self.post("/console/api/login", body), status, code)
        self.assertError(self.server.request("GET", "/console/api/session"), 401,
                         "unauthenticated")


class AdminApiTotpTest(ServerTestCase):
    """admin_api_totp = on: an admin's API token needs a code too; signers are unaffected."""
    server_options = {"ca_key_type": "ec-p256", "conf": {"admin_api_totp": "on"}}

    def test_admin_token_needs_a_code(self):
        s = self.server
        key = s.admin_api_key()
        r = s.request("POST", "/api/v1/auth/token", {"grant_type": "api_key", "api_key": key})
        self.assertError(r, 401, "totp_required")  # not enrolled yet: the console enrols
        r = s.request("POST", "/console/api/login", {"api_key": key})
        e = r.json["totp_enrollment"]
        r = s.request("POST", "/console/api/totp/confirm", {
            "api_key": key, "enrollment_id": e["enrollment_id"],
            "code": totp(e["secret_base32"], now_step())})
        self.assertEqual(r.status, 200, r)
        r = s.request("POST", "/api/v1/auth/token", {"grant_type": "api_key", "api_key": key})
        self.assertError(r, 401, "totp_required")
        r = s.request("POST", "/api/v1/auth/token", {"grant_type": "api_key", "api_key": key,
                                                     "totp": totp(e["secret_base32"],
                                                                  now_step() + 1)})
        self.assertEqual(r.status, 200, r)
        signer = s.call("POST", "/api/v1/admin/users", {"name": "t-signer", "role": "signer"},
                        token=r.json["access_token"], expect=201)["api_key"]
        self.assertTrue(s.token_for(signer))


if __name__ == "__main__":
    unittest.main()
