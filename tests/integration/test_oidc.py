"""CI OIDC token exchange (RFC 8693): ID tokens from configured issuers, verified against their
JWKS (RS256 and ES256), mapped by claim rules to service accounts; every refusal audited; bad
OIDC configurations refuse to start."""

import json
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, Server, ServerTestCase  # noqa: E402
from signum_jwt import EcKey, RsaKey, b64url, make_jwt, now, unb64url  # noqa: E402

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
CI = "https://ci.example"
GITLAB = "https://gitlab.example"

RULES = [
    {"claims": {"repository": "org/repo", "ref": "refs/heads/main"},
     "service_account": "ci-release"},
    {"claims": {"repository": "org/repo"}, "service_account": "ci-any"},
    {"claims": {"repository": "org/admin"}, "service_account": "admin"},  # a human: refused
    {"claims": {"repository": "org/ghost"}, "service_account": "ghost"},  # no such account
]


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)


class OidcTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256", "start": False}

    @classmethod
    def prepare(cls):
        s = cls.server
        o = s.openssl
        cls.rsa = RsaKey(o, "ci-rsa")
        cls.ec = EcKey(o, "ci-ec")
        cls.gl = RsaKey(o, "gl-rsa")
        cls.stranger = RsaKey(o, "stranger")
        write_json(os.path.join(s.state, "jwks-ci.json"), {"keys": [
            cls.rsa.jwk("ci-rsa-1"), cls.ec.jwk("ci-ec-1", alg="ES256"),
            # A key type the server does not use is skipped, not fatal.
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": b64url(b"\x01" * 32)}]})
        os.makedirs(os.path.join(s.state, "oidc"))
        write_json(os.path.join(s.state, "oidc", "jwks-gl.json"),
                   {"keys": [cls.gl.jwk("gl-1")]})
        write_json(os.path.join(s.state, "oidc", "oidc.json"), {"issuers": [
            {"issuer": CI, "jwks_file": "../jwks-ci.json", "audience": "signum", "rules": RULES},
            {"issuer": GITLAB, "jwks_file": "jwks-gl.json", "audience": "signum-gl",
             "rules": [{"claims": {"project_path": "grp/app"},
                        "service_account": "ci-release"}]}]})
        s.set_conf({"oidc_config": "oidc/oidc.json"})
        s.start()
        adm = s.admin_token()
        for name in ("ci-release", "ci-any"):
            s.call("POST", "/api/v1/admin/service-accounts", {"name": name}, token=adm,
                   expect=201)
        s.create_key("oidc-ec", "ec-p256")
        s.grant("oidc-ec", "ci-release")

    # -- helpers
    def id_token(self, key=None, kid="ci-rsa-1", alg="RS256", header=None, **claims):
        t = now()
        c = {"iss": CI, "sub": "repo:org/repo:ref:refs/heads/main", "aud": "signum",
             "iat": t, "nbf": t, "exp": t + 300, "jti": uuid.uuid4().hex,
             "repository": "org/repo", "ref": "refs/heads/main"}
        c.update(claims)
        c = {k: v for k, v in c.items() if v is not None}
        h = {"alg": alg, "typ": "JWT", "kid": kid}
        h.update(header or {})
        return make_jwt(h, c, key or self.rsa)

    def exchange(self, token, token_type=ID_TOKEN):
        return self.server.request("POST", "/api/v1/auth/token", {
            "grant_type": EXCHANGE, "subject_token": token, "subject_token_type": token_type})

    def accepted(self, token, account, rule):
        s = self.server
        last = s.audit_last_seq()
        r = self.exchange(token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["user"], r.json["kind"], r.json["role"]),
                         (account, "service", "signer"))
        recs = s.audit_show(after=last)
        self.assertEqual(len(recs), 1, recs)
        d = recs[0]["detail"]
        self.assertEqual((recs[0]["action"], recs[0]["outcome"], recs[0]["actor"]),
                         ("auth.token", "ok", "service:" + account))
        self.assertEqual((d["method"], d["rule"]), ("oidc", rule))
        self.assertEqual(d["subject"], json.loads(unb64url(token.split(".")[1]))["sub"])
        self.assertNotIn(token, json.dumps(recs))
        return r.json, d

    def refused(self, token, fragment):
        s = self.server
        last = s.audit_last_seq()
        r = self.exchange(token)
        self.assertError(r, 401, "bad_credentials")
        self.assertIn(fragment, r.json["error"]["message"])
        recs = s.audit_show(after=last)
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual((recs[0]["action"], recs[0]["outcome"], recs[0]["actor"]),
                         ("auth.token", "denied", "anonymous"))
        self.assertNotIn(token, json.dumps(recs))
        return recs[0]["detail"]

    # -- accepted
    def test_rs256_token_maps_to_service_account_and_signs(self):
        t, d = self.accepted(self.id_token(), "ci-release", 0)
        self.assertEqual((d["issuer"], d["kid"]), (CI, "ci-rsa-1"))
        r = self.server.sign(t["access_token"], "oidc-ec", "ecdsa", "sha256",
                             digest=HASHES["sha256"](b"oidc").digest())
        self.assertEqual(len(r["signature"]), 88)  # base64 of 64 bytes

    def test_es256_and_audience_array(self):
        self.accepted(self.id_token(key=self.ec, kid="ci-ec-1", alg="ES256",
                                    aud=["other", "signum"]), "ci-release", 0)

    def test_first_matching_rule_wins(self):
        _, d = self.accepted(self.id_token(ref="refs/heads/dev", sub="dev"), "ci-any", 1)
        self.assertEqual(d["subject"], "dev")

    def test_second_issuer_has_its_own_audience(self):
        tok = self.id_token(key=self.gl, kid="gl-1", iss=GITLAB, aud="signum-gl",
                            project_path="grp/app")
        self.accepted(tok, "ci-release", 0)
        self.refused(self.id_token(key=self.gl, kid="gl-1", iss=GITLAB, aud="signum",
                                   project_path="grp/app"), "audience")
        # Keys are per issuer: the CI key is unknown to GitLab.
        self.refused(self.id_token(iss=GITLAB, aud="signum-gl", project_path="grp/app"),
                     "no key with kid")

    def test_clock_skew_is_60_seconds(self):
        t = now()
        self.accepted(self.id_token(iat=t - 400, nbf=t - 400, exp=t - 30), "ci-release", 0)
        self.refused(self.id_token(iat=t - 400, nbf=t - 400, exp=t - 90), "expired")
        self.refused(self.id_token(nbf=t + 300), "not valid before")
        self.refused(self.id_token(iat=t + 300, nbf=None), "future")
        self.refused(self.id_token(exp=None), "exp and iat")

    # -- refused
    def test_unknown_issuer(self):
        d = self.refused(self.id_token(iss="https://evil.example"), "not configured")
        self.assertEqual(d["presented"]["iss"], "https://evil.example")
        self.refused(self.id_token(iss=CI + "/"), "not configured")  # exact match only

    def test_wrong_audience(self):
        self.refused(self.id_token(aud="signum-gl"), "audience")
        self.refused(self.id_token(aud=["a", "b"]), "audience")
        self.refused(self.id_token(aud=None), "audience")

    def test_bad_signatures(self):
        tok = self.id_token()
        h, p, sig = tok.split(".")
        claims = json.loads(unb64url(p))
        claims["repository"] = "org/other"
        d = self.refused(h + "." + b64url(json.dumps(claims)) + "." + sig, "does not verify")
        self.assertEqual(d["presented"], {"iss": CI, "sub": claims["sub"], "kid": "ci-rsa-1"})
        self.assertNotIn("rule", d)
        self.refused(self.id_token(key=self.stranger), "does not verify")
        es = self.id_token(key=self.ec, kid="ci-ec-1", alg="ES256")
        self.refused(es[:-4] + ("AAAA" if not es.endswith("AAAA") else "BBBA"),
                     "does not verify")

    def test_keys_and_algorithms(self):
        self.refused(self.id_token(kid="nope"), "no key with kid")
        self.refused(self.id_token(kid="ed-1"), "no key with kid")  # skipped at load
        self.refused(self.id_token(header={"kid": None}), "kid")
        self.refused(self.id_token(key=self.ec, kid="ci-rsa-1", alg="ES256"), "does not fit")
        t = self.id_token()
        h, p, _ = t.split(".")
        for alg, sig in (("none", b""), ("HS256", b"\x00" * 32)):
            hdr = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": "ci-rsa-1"}))
            self.refused(hdr + "." + p + "." + b64url(sig), "alg")

    def test_claims_that_match_no_rule(self):
        self.refused(self.id_token(repository="org/unknown"), "no rule")
        self.refused(self.id_token(repository=["org/repo"]), "no rule")  # strings only
        self.refused(self.id_token(repository=None, ref=None), "no rule")

    def test_rules_only_map_to_service_accounts(self):
        d = self.refused(self.id_token(repository="org/admin"), "not a service account")
        self.assertEqual(d["rule"], 2)
        self.refused(self.id_token(repository="org/ghost"), "no service account")

    def test_request_shape(self):
        s = self.server
        r = self.exchange(self.id_token(), token_type="urn:ietf:params:oauth:token-type:jwt")
        self.assertError(r, 400, "invalid_field")
        r = s.request("POST", "/api/v1/auth/token",
                      {"grant_type": EXCHANGE, "subject_token_type": ID_TOKEN})
        self.assertError(r, 400, "invalid_field")
        r = s.request("POST", "/api/v1/auth/token", {
            "grant_type": EXCHANGE, "subject_token": self.id_token(),
            "subject_token_type": ID_TOKEN, "audience": "x"})
        self.assertError(r, 400, "unknown_field")


class OidcConfigErrorsTest(unittest.TestCase):
    """A broken OIDC configuration stops `serve` with a message naming the problem."""

    def start_with(self, files, expect):
        s = Server(start=False, name="oidc-conf")
        self.addCleanup(s.cleanup)
        for name, doc in files.items():
            with open(os.path.join(s.state, name), "w") as f:
                f.write(doc if isinstance(doc, str) else json.dumps(doc))
        s.set_conf({"oidc_config": "oidc.json"})
        with self.assertRaises(RuntimeError) as cm:
            s.start()
        self.assertIn(expect, str(cm.exception))

    def issuer(self, **over):
        d = {"issuer": CI, "jwks_file": "jwks.json", "audience": "signum",
             "rules": [{"claims": {"repository": "org/repo"}, "service_account": "ci"}]}
        d.update(over)
        return d

    def test_errors(self):
        scratch = Server(start=False, name="oidc-keys")
        self.addCleanup(scratch.cleanup)
        jwks = {"keys": [RsaKey(scratch.openssl, "k").jwk("k1")]}
        cases = [
            ({}, "oidc_config: cannot open"),
            ({"oidc.json": "{not json"}, "not a JSON object"),
            ({"oidc.json": {"issuers": []}}, "issuers must be an array"),
            ({"oidc.json": {"issuers": [self.issuer()]}}, "jwks_file: cannot open"),
            ({"oidc.json": {"issuers": [self.issuer(rules=[{"claims": {},
                                                            "service_account": "ci"}])]},
              "jwks.json": jwks}, "claims must be an object of 1-16 claims"),
            ({"oidc.json": {"issuers": [self.issuer(extra=1)]}, "jwks.json": jwks},
             'unknown field "extra"'),
            ({"oidc.json": {"issuers": [self.issuer(), self.issuer()]}, "jwks.json": jwks},
             "configured twice"),
            ({"oidc.json": {"issuers": [self.issuer()]},
              "jwks.json": {"keys": [RsaKey(scratch.openssl, "small", bits=1024).jwk("s1")]}},
             "at least 2048"),
            ({"oidc.json": {"issuers": [self.issuer()]},
              "jwks.json": {"keys": [EcKey(scratch.openssl, "e").jwk("e1",
                                                                     x=b64url(b"\x05" * 32))]}},
             "not a point on P-256"),
            ({"oidc.json": {"issuers": [self.issuer()]}, "jwks.json": {"keys": []}},
             "no usable RS256 or ES256"),
        ]
        for files, expect in cases:
            with self.subTest(expect=expect):
                self.start_with(files, expect)


if __name__ == "__main__":
    unittest.main(verbosity=2)
