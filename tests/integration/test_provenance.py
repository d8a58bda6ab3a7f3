"""The provenance gate (docs/provenance.md): a require rule makes signing with a production key
depend on SLSA build provenance, an in-toto statement in a DSSE envelope. Builder keys are
generated here with openssl and the envelopes signed with it; a matching provenance lets the key
sign, and a wrong builder, repository, ref, workflow or subject digest, a missing, unsigned,
untrusted or reference-only provenance is denied with its reason, in the answer and in the
audit record. The caller's verified CI OIDC identity stands in for a builder's signature; an
oversize or malformed provenance is a 400 and nothing is signed. signum-util sign --provenance
sends it through the agent."""

import hashlib
import json
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import ServerTestCase, b64, pem, unb64  # noqa: E402
from signum_jwt import RsaKey, make_jwt, now  # noqa: E402

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
CI = "https://ci.example"
BUILDER = "https://builder.example/slsa/v1"
REPO = "https://github.com/org/app"
REF = "refs/heads/main"
WORKFLOW = ".github/workflows/release.yml"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
RULE = "prod-provenance"
SBOM = "sha256:" + hashlib.sha256(b"the SBOM").hexdigest()
EXIT_DENIED = 5


def prefix(why, key="prod-ec", rule=RULE):
    return 'provenance required by rule "%s" for key "%s": %s' % (rule, key, why)


def statement(subject, builder=BUILDER, repo=REPO, ref=REF, workflow=WORKFLOW, v1=True):
    """An in-toto statement with a SLSA provenance predicate (v1: GitHub Actions layout)."""
    subj = [{"name": "app.bin", "digest": {"sha256": subject}}]
    if v1:
        pred = {"buildDefinition": {
                    "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                    "externalParameters": {"workflow": {
                        "repository": repo, "ref": ref, "path": workflow}},
                    "resolvedDependencies": [{"uri": "git+%s@%s" % (repo, ref)}]},
                "runDetails": {"builder": {"id": builder},
                               "metadata": {"invocationId": "run-1"}}}
        return {"_type": "https://in-toto.io/Statement/v1", "subject": subj,
                "predicateType": "https://slsa.dev/provenance/v1", "predicate": pred}
    pred = {"builder": {"id": builder}, "buildType": "https://example/build@v1",
            "invocation": {"configSource": {"uri": "git+%s@%s" % (repo, ref),
                                            "entryPoint": workflow}}}
    return {"_type": "https://in-toto.io/Statement/v0.1", "subject": subj,
            "predicateType": "https://slsa.dev/provenance/v0.2", "predicate": pred}


def pae(payload):
    t = PAYLOAD_TYPE.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


class Builder:
    """A builder's key pair (openssl), signing DSSE envelopes."""

    def __init__(self, openssl, name, kind="ec"):
        self.o = openssl
        self.kind = kind
        self.key = openssl.path(name + ".key.pem")
        if kind == "ec":
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", self.key)
        else:
            openssl("genpkey", "-algorithm", "ED25519", "-out", self.key)
        self.pub_pem = openssl("pkey", "-in", self.key, "-pubout").stdout.decode()
        spki = openssl("pkey", "-in", self.key, "-pubout", "-outform", "DER").stdout
        self.key_id = "sha256:" + hashlib.sha256(spki).hexdigest()

    def sign(self, data):
        msg = self.o.tmp(data, ".pae")
        if self.kind == "ec":
            return self.o("dgst", "-sha256", "-sign", self.key, msg).stdout
        return self.o("pkeyutl", "-sign", "-inkey", self.key, "-rawin", "-in", msg).stdout

    def envelope(self, stmt, signed_payload=None):
        """The DSSE envelope file's bytes; signed_payload: sign another payload (a tamper)."""
        payload = json.dumps(stmt).encode()
        sig = self.sign(pae(signed_payload if signed_payload is not None else payload))
        return json.dumps({"payloadType": PAYLOAD_TYPE, "payload": b64(payload),
                           "signatures": [{"keyid": "builder", "sig": b64(sig)}]}).encode()


def unsigned_envelope(stmt):
    return json.dumps({"payloadType": PAYLOAD_TYPE, "payload": b64(json.dumps(stmt).encode()),
                       "signatures": []}).encode()


class ProvenanceTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256", "start": False}

    @classmethod
    def prepare(cls):
        s = cls.server
        o = s.openssl
        cls.ci = RsaKey(o, "ci-rsa")
        with open(os.path.join(s.state, "jwks.json"), "w") as f:
            json.dump({"keys": [cls.ci.jwk("ci-1")]}, f)
        with open(os.path.join(s.state, "oidc.json"), "w") as f:
            json.dump({"issuers": [{"issuer": CI, "jwks_file": "jwks.json", "audience": "signum",
                                    "rules": [{"claims": {"repository": "org/app"},
                                               "service_account": "ci-build"}]}]}, f)
        s.set_conf({"oidc_config": "oidc.json"})
        s.start()
        adm = s.admin_token()
        s.call("POST", "/api/v1/admin/service-accounts", {"name": "ci-build"}, token=adm,
               expect=201)
        cls.builder = Builder(o, "builder")
        cls.builder_ed = Builder(o, "builder-ed", "ed25519")
        cls.stranger = Builder(o, "stranger")
        cls.alice = s.token_for(s.create_user("alice", "signer"))
        for k in ("prod-ec", "prod-bind", "dev-ec"):
            s.create_key(k, "ec-p256")
            s.grant(k, "alice")
        s.grant("prod-ec", "ci-build")
        cls.bob = s.token_for(s.create_user("bob", "signer"))
        s.create_key("prod-appr", "ec-p256")
        s.call("POST", "/api/v1/admin/policies", {
            "name": "appr", "effect": "allow", "subjects": {"users": ["alice"]},
            "keys": {"names": ["prod-appr"]},
            "conditions": {"approval": {"required": 1, "approvers": ["bob"]}}},
            token=adm, expect=201)
        cls.admin_post("appr-gate", {"names": ["prod-appr"]}, {
            "builder_id": BUILDER, "trusted_keys": [cls.builder.pub_pem]})
        cls.admin_post(RULE, {"names": ["prod-ec"]}, {
            "builder_id": BUILDER, "repository": REPO, "ref": REF,
            "workflow": ".github/workflows/release*.yml",
            "trusted_keys": [cls.builder.pub_pem, cls.builder_ed.pub_pem],
            "oidc_claims": {"repository": "org/app", "ref": REF}})
        cls.admin_post("prod-bind", {"names": ["prod-bind"]}, {
            "builder_id": BUILDER, "bind_signed_digest": True,
            "trusted_keys": [cls.builder.pub_pem]})

    @classmethod
    def admin_post(cls, name, keys, prov):
        cls.server.call("POST", "/api/v1/admin/policies", {
            "name": name, "effect": "require", "subjects": {"users": ["*"]}, "keys": keys,
            "provenance": prov}, token=cls.server.admin_token(), expect=201)

    # -- helpers
    def sign(self, artifact, envelope=None, key="prod-ec", token=None, signed=None, **prov):
        """Signs sha256(artifact) (or the digest `signed`) with the provenance members given (a
        member None: left out); returns the answer and the audit records it made."""
        s = self.server
        body = dict(prov)
        if envelope is not None:
            body["envelope"] = b64(envelope)
            body.setdefault("artifact_sha256", hashlib.sha256(artifact).hexdigest())
        body = {k: v for k, v in body.items() if v is not None}
        extra = {"provenance": body} if body else {}
        last = s.audit_last_seq()
        r = s.sign_request(token or self.alice, key, "ecdsa", "sha256",
                           digest=signed or hashlib.sha256(artifact).digest(), **extra)
        return r, s.audit_show(after=last)

    def allowed(self, artifact, envelope, gate, **kw):
        r, recs = self.sign(artifact, envelope, **kw)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([(x["action"], x["outcome"]) for x in recs], [("sign", "allowed")])
        d = recs[0]["detail"]
        self.assertEqual(d["policy"]["provenance_gates"], [dict({"rule": RULE}, **gate)])
        self.assertEqual(d["provenance"]["envelope_sha256"], hashlib.sha256(envelope).hexdigest())
        payload = unb64(json.loads(envelope)["payload"])
        self.assertEqual(d["provenance"]["statement_sha256"], hashlib.sha256(payload).hexdigest())
        return d

    def denied(self, artifact, envelope, why, key="prod-ec", rule=RULE, **kw):
        r, recs = self.sign(artifact, envelope, key=key, **kw)
        self.assertError(r, 403, "provenance_denied")
        self.assertEqual(r.json["error"]["message"], prefix(why, key, rule))
        self.assertEqual([(x["action"], x["outcome"]) for x in recs], [("sign", "denied")])
        d = recs[0]["detail"]
        self.assertEqual((d["code"], d["rule"], d["key"], d["message"]),
                         ("provenance_denied", rule, key, prefix(why, key, rule)))
        if envelope is not None:
            self.assertEqual(d["provenance"]["envelope_sha256"],
                             hashlib.sha256(envelope).hexdigest())
        return d

    def id_token(self, **claims):
        t = now()
        c = {"iss": CI, "sub": "repo:org/app:ref:" + REF, "aud": "signum", "iat": t, "nbf": t,
             "exp": t + 300, "jti": uuid.uuid4().hex, "repository": "org/app", "ref": REF}
        c.update(claims)
        return make_jwt({"alg": "RS256", "typ": "JWT", "kid": "ci-1"}, c, self.ci)

    def ci_login(self, token):
        return self.server.call("POST", "/api/v1/auth/token", {
            "grant_type": EXCHANGE, "subject_token": token,
            "subject_token_type": ID_TOKEN})["access_token"]

    # -- allowed
    def test_matching_provenance_lets_the_production_key_sign(self):
        art = b"release 1.0"
        env = self.builder.envelope(statement(hashlib.sha256(art).hexdigest()))
        d = self.allowed(art, env, {"via": "builder_key", "key": self.builder.key_id},
                         sbom_digest=SBOM)
        p = d["provenance"]
        self.assertEqual((p["builder_id"], p["repository"], p["ref"], p["workflow"]),
                         (BUILDER, REPO, REF, WORKFLOW))
        self.assertEqual((p["artifact_sha256"], p["sbom_digest"], p["signatures"]),
                         (hashlib.sha256(art).hexdigest(), SBOM, 1))
        self.assertEqual(p["predicate_type"], "https://slsa.dev/provenance/v1")

    def test_ed25519_builder_and_slsa_v02(self):
        art = b"release 0.2"
        env = self.builder_ed.envelope(statement(hashlib.sha256(art).hexdigest(), v1=False))
        d = self.allowed(art, env, {"via": "builder_key", "key": self.builder_ed.key_id})
        self.assertEqual((d["provenance"]["repository"], d["provenance"]["ref"],
                          d["provenance"]["workflow"]), (REPO, REF, WORKFLOW))

    def test_keys_outside_the_rule_need_no_provenance_and_record_it(self):
        r, recs = self.sign(b"dev build", key="dev-ec")
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("provenance", recs[0]["detail"])
        r, recs = self.sign(b"dev build", key="dev-ec", sbom_digest=SBOM)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(recs[0]["detail"]["provenance"], {"sbom_digest": SBOM})
        # The gate hides nothing from the listing: the key is usable with provenance.
        keys = self.server.call("GET", "/api/v1/keys", token=self.alice)["keys"]
        self.assertIn("prod-ec", [k["name"] for k in keys])

    def test_oidc_identity_stands_in_for_the_builder_signature(self):
        art = b"ci build"
        env = unsigned_envelope(statement(hashlib.sha256(art).hexdigest()))
        tok = self.id_token()
        ci = self.ci_login(tok)
        d = self.allowed(art, env, {"via": "oidc", "account": "ci-build"}, token=ci, id_token=tok)
        self.assertEqual(d["provenance"]["id_token"], "verified: service:ci-build")
        self.assertNotIn(tok, json.dumps(d))
        # Claims that differ from the rule's: denied, naming the claim.
        dev = self.id_token(ref="refs/heads/dev")
        self.denied(art, env, 'the CI ID token\'s claim ref is "refs/heads/dev", not "%s"' % REF,
                    token=self.ci_login(dev), id_token=dev)
        # A valid token of another identity than the caller's proves nothing about the caller.
        self.denied(art, env, "the CI ID token maps to service:ci-build, not to the caller",
                    id_token=tok)
        # A token the server does not accept.
        bad = make_jwt({"alg": "RS256", "typ": "JWT", "kid": "ci-1"},
                       {"iss": CI, "sub": "x", "aud": "signum", "exp": now() + 300,
                        "repository": "org/app"}, signature=b"\x00" * 256)
        r, recs = self.sign(art, env, token=ci, id_token=bad)
        self.assertError(r, 403, "provenance_denied")
        self.assertTrue(r.json["error"]["message"].startswith(
            prefix("the CI ID token was refused: ")), r)
        self.assertTrue(recs[0]["detail"]["provenance"]["id_token"].startswith("refused: "))

    # -- denied
    def test_each_mismatch_is_denied_with_its_reason(self):
        art = b"release 2.0"
        h = hashlib.sha256(art).hexdigest()
        b = self.builder
        cases = [
            ("wrong builder", b.envelope(statement(h, builder="https://evil.example/b")),
             'builder id "https://evil.example/b" is not "%s"' % BUILDER, {}),
            ("wrong repository", b.envelope(statement(h, repo="https://github.com/org/fork")),
             'source repository "https://github.com/org/fork" is not "%s"' % REPO, {}),
            ("wrong ref", b.envelope(statement(h, ref="refs/heads/dev")),
             'ref "refs/heads/dev" is not "%s"' % REF, {}),
            ("wrong workflow", b.envelope(statement(h, workflow=".github/workflows/ci.yml")),
             'workflow ".github/workflows/ci.yml" is not ".github/workflows/release*.yml"', {}),
            ("wrong subject", b.envelope(statement(hashlib.sha256(b"other").hexdigest())),
             "subject digest does not match the artifact digest", {}),
            ("no artifact digest", b.envelope(statement(h)),
             "the request declares no artifact_sha256 to match the subject digest against",
             {"artifact_sha256": None}),
            ("unsigned", unsigned_envelope(statement(h)),
             "the envelope is unsigned and no CI ID token was sent", {}),
            ("untrusted signer", self.stranger.envelope(statement(h)),
             "envelope signature not by a trusted builder key", {}),
            ("tampered statement",
             b.envelope(statement(h), signed_payload=json.dumps(statement(
                 h, builder="https://other.example")).encode()),
             "envelope signature not by a trusted builder key", {}),
        ]
        for label, env, why, kw in cases:
            with self.subTest(case=label):
                self.denied(art, env, why, **kw)

    def test_missing_or_reference_only_provenance_is_denied(self):
        self.denied(b"x", None, "none sent")
        self.denied(b"x", None, "none sent", sbom_digest=SBOM)
        d = self.denied(b"x", None, "only a digest and reference were sent; the server does not "
                        "fetch provenance, send the envelope", digest="sha256:" + "AB" * 32,
                        uri="https://ci.example/att/1.intoto.jsonl")
        self.assertEqual(d["provenance"]["reference"], {
            "digest": "sha256:" + "ab" * 32, "uri": "https://ci.example/att/1.intoto.jsonl"})

    def test_signed_digest_bound_to_the_artifact(self):
        art = b"raw file"
        env = self.builder.envelope(statement(hashlib.sha256(art).hexdigest()))
        self.allowed(art, env, {"rule": "prod-bind", "via": "builder_key",
                                "key": self.builder.key_id}, key="prod-bind")
        self.denied(art, env, "the signed digest is not the artifact digest (the rule binds "
                    "them: sign the artifact file's sha256)", key="prod-bind", rule="prod-bind",
                    signed=hashlib.sha256(b"an Authenticode hash").digest())

    def test_signing_jobs_pass_the_same_gate(self):
        s = self.server
        art = b"job artefact"
        d = [b64(hashlib.sha256(art).digest())] * 2
        body = {"key": "prod-ec", "mechanism": "ecdsa", "hash": "sha256", "digests": d}
        r = s.request("POST", "/api/v1/sign/jobs", body, token=self.alice)
        self.assertError(r, 403, "provenance_denied")
        self.assertEqual(r.json["error"]["message"], prefix("none sent"))
        env = self.builder.envelope(statement(hashlib.sha256(art).hexdigest()))
        body["provenance"] = {"envelope": b64(env),
                              "artifact_sha256": hashlib.sha256(art).hexdigest()}
        r = s.request("POST", "/api/v1/sign/jobs", body, token=self.alice)
        self.assertEqual(r.status, 202, r)
        job = r.json["job_id"]
        for _ in range(30):  # bounded: each poll waits up to 10 s for the job to finish
            r = s.call("GET", "/api/v1/sign/jobs/%s?wait=10&limit=1" % job, token=self.alice)
            if r["status"] in ("done", "failed"):
                break
        self.assertEqual(r["status"], "done", r)
        # Every signature's record names the provenance and the gate it met.
        recs = [x for x in s.audit_show() if x["action"] == "sign"
                and x["detail"].get("job_id") == job]
        self.assertEqual(len(recs), 2, recs)
        for x in recs:
            self.assertEqual(x["detail"]["provenance"]["envelope_sha256"],
                             hashlib.sha256(env).hexdigest())
            self.assertEqual(x["detail"]["policy"]["provenance_gates"], [
                {"rule": RULE, "via": "builder_key", "key": self.builder.key_id}])

    def test_approval_waits_behind_the_gate_and_is_checked_again(self):
        s = self.server
        art = b"approved artefact"
        env = self.builder.envelope(statement(hashlib.sha256(art).hexdigest()))
        self.denied(art, None, "none sent", key="prod-appr", rule="appr-gate")
        aids = []
        for _ in range(2):
            r, _ = self.sign(art, env, key="prod-appr")
            self.assertEqual((r.status, r.json["status"]), (202, "pending"), r)
            aids.append(r.json["approval_id"])
            s.call("POST", "/api/v1/approvals/%s/approve" % aids[-1], token=self.bob)
        last = s.audit_last_seq()
        r = s.request("GET", "/api/v1/sign/requests/" + aids[0], token=self.alice)
        self.assertEqual(r.status, 200, r)
        rec = [x for x in s.audit_show(after=last) if x["action"] == "sign"][0]
        self.assertEqual(rec["detail"]["provenance"]["envelope_sha256"],
                         hashlib.sha256(env).hexdigest())
        self.assertEqual(rec["detail"]["policy"]["provenance_gates"], [
            {"rule": "appr-gate", "via": "builder_key", "key": self.builder.key_id}])
        # The gate changed after the approval: the stored request is decided again.
        doc = s.call("GET", "/api/v1/admin/policies/appr-gate", token=s.admin_token())["policy"]
        doc["provenance"]["builder_id"] = "https://other.example/builder"
        s.call("PUT", "/api/v1/admin/policies/appr-gate", doc, token=s.admin_token())
        r = s.request("GET", "/api/v1/sign/requests/" + aids[1], token=self.alice)
        self.assertError(r, 403, "provenance_denied")
        self.assertEqual(r.json["error"]["message"], prefix(
            'builder id "%s" is not "https://other.example/builder"' % BUILDER, "prod-appr",
            "appr-gate"))

    def test_explain_names_the_gate(self):
        r = self.server.call("POST", "/api/v1/admin/policies/explain",
                             {"user": "alice", "key": "prod-ec"},
                             token=self.server.admin_token())
        self.assertEqual((r["decision"], r["code"], r["rule"], r["message"]),
                         ("deny", "provenance_denied", RULE, prefix("none sent")))

    # -- bad input: 400, nothing signed
    def test_oversize_and_garbage_provenance(self):
        s = self.server
        art = b"bad input"
        h = hashlib.sha256(art).hexdigest()
        good = json.loads(self.builder.envelope(statement(h)))
        big = dict(good, padding="x" * (300 * 1024))
        cases = [
            ("oversize", {"envelope": b64(json.dumps(big).encode())}, "provenance_too_large",
             "provenance.envelope is %d bytes; the server takes at most 262144"
             % len(json.dumps(big).encode())),
            ("not base64", {"envelope": "%%%"}, "provenance_invalid",
             "provenance: envelope must be the base64 of the DSSE envelope file"),
            ("not JSON", {"envelope": b64(b"\x00garbage")}, "provenance_invalid",
             "provenance: the envelope is not a JSON object (a DSSE envelope)"),
            ("payload type", {"envelope": b64(json.dumps(dict(
                good, payloadType="text/plain")).encode())}, "provenance_invalid",
             "provenance: the envelope's payloadType must be application/vnd.in-toto+json"),
            ("predicate type", {"envelope": b64(self.builder.envelope(dict(
                statement(h), predicateType="https://example/other")))}, "provenance_invalid",
             "provenance: the statement's predicateType must be https://slsa.dev/provenance/v1"),
            ("subject digest", {"envelope": b64(self.builder.envelope(statement("zz")))},
             "provenance_invalid", "provenance: subject[0].digest.sha256 must be 64 hex digits"),
            ("unknown member", {"envelope": b64(json.dumps(good).encode()), "extra": 1},
             "provenance_invalid", "provenance: "),
            ("both forms", {"envelope": b64(json.dumps(good).encode()),
                            "digest": "sha256:" + h, "uri": "https://x.example/a"},
             "provenance_invalid",
             "provenance: give the envelope or its digest and uri, not both"),
            ("bad sbom", {"sbom_digest": "md5:abc"}, "provenance_invalid",
             "provenance: sbom_digest must be sha256:HEX"),
        ]
        for label, prov, code, msg in cases:
            with self.subTest(case=label):
                last = s.audit_last_seq()
                r = s.sign_request(self.alice, "dev-ec", "ecdsa", "sha256",
                                   digest=hashlib.sha256(art).digest(), provenance=prov)
                self.assertError(r, 400, code)
                self.assertTrue(r.json["error"]["message"].startswith(msg), r)
                recs = s.audit_show(after=last)
                self.assertEqual([(x["action"], x["outcome"]) for x in recs],
                                 [("sign", "denied")])
                self.assertEqual(recs[0]["detail"]["code"], code)

    def test_large_envelope_passes_the_call_cap_and_the_rest_does_not(self):
        art = b"big provenance"
        stmt = statement(hashlib.sha256(art).hexdigest())
        stmt["predicate"]["runDetails"]["metadata"]["note"] = "n" * (150 * 1024)
        env = self.builder.envelope(stmt)
        self.assertGreater(len(b64(env)), 64 * 1024)
        self.allowed(art, env, {"via": "builder_key", "key": self.builder.key_id})
        # Everything else keeps the 64 KiB of every call.
        body = {"key": "prod-ec", "mechanism": "ecdsa", "hash": "sha256",
                "digest": b64(hashlib.sha256(art).digest()),
                "provenance": {"envelope": b64(env),
                               "artifact_sha256": hashlib.sha256(art).hexdigest()}}
        raw = json.dumps(body).encode()
        raw = raw[:-1] + b" " * (65 * 1024) + b"}"
        r = self.server.request("POST", "/api/v1/sign", raw=raw, token=self.alice)
        self.assertError(r, 413, "body_too_large")

    # -- rules
    def test_require_rules_are_validated(self):
        adm = self.server.admin_token()
        base = {"name": "r1", "effect": "require", "subjects": {"users": ["*"]},
                "keys": {"names": ["dev-ec"]}}
        cases = [
            ("no provenance", base, "a rule of effect require needs a provenance object"),
            ("provenance on allow", dict(base, effect="allow", provenance={
                "trusted_keys": [self.builder.pub_pem]}),
             "provenance belongs to rules of effect require"),
            ("conditions", dict(base, conditions={"hashes": ["sha256"]}, provenance={
                "trusted_keys": [self.builder.pub_pem]}),
             "a rule of effect require takes subjects, keys and provenance only"),
            ("nothing proves it", dict(base, provenance={"builder_id": BUILDER}),
             "provenance needs trusted_keys"),
            ("bad key", dict(base, provenance={"trusted_keys": ["not a key"]}),
             "provenance.trusted_keys[0] is not a PEM public key"),
            ("unknown member", dict(base, provenance={"trusted_keys": [self.builder.pub_pem],
                                                      "builder": "x"}), "provenance: "),
        ]
        for label, doc, msg in cases:
            with self.subTest(case=label):
                r = self.server.request("POST", "/api/v1/admin/policies", doc, token=adm)
                self.assertEqual(r.status, 400, r)
                self.assertIn(msg, r.json["error"]["message"])


@unittest.skipUnless(os.environ.get("SIGNUM_AGENT") and os.environ.get("SIGNUM_UTIL"),
                     "needs SIGNUM_AGENT and SIGNUM_UTIL")
class CliProvenanceTest(ServerTestCase):
    """signum-util sign --provenance FILE: the file is hashed here, the envelope and the
    artifact digest go through the agent (IPC_TAG_PROVENANCE) to the gate."""

    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.builder = Builder(s.openssl, "cli-builder")
        cls.carol_key = s.create_user("carol", "signer")
        s.create_key("cli-prod", "ec-p256")
        s.grant("cli-prod", "carol")
        s.call("POST", "/api/v1/admin/policies", {
            "name": "cli-gate", "effect": "require", "subjects": {"users": ["*"]},
            "keys": {"names": ["cli-prod"]},
            "provenance": {"builder_id": BUILDER, "repository": REPO,
                           "trusted_keys": [cls.builder.pub_pem]}},
            token=s.admin_token(), expect=201)

    def setUp(self):
        from agent_harness import Agent
        self.agent = Agent(["https://localhost:%d" % self.server.port],
                           self.server.ca_cert_path, api_key=self.carol_key, name="prov")
        self.addCleanup(self.agent.cleanup)

    def files(self, tag, artifact, envelope):
        art = os.path.join(self.agent.root, tag + ".bin")
        env = os.path.join(self.agent.root, tag + ".intoto.json")
        with open(art, "wb") as f:
            f.write(artifact)
        with open(env, "wb") as f:
            f.write(envelope)
        return art, env

    def test_sign_with_provenance_allowed_and_denied(self):
        s = self.server
        artifact = b"cli artefact\n"
        h = hashlib.sha256(artifact).hexdigest()
        art, env = self.files("ok", artifact, self.builder.envelope(statement(h)))
        last = s.audit_last_seq()
        self.agent.util_ok("sign", "--key", "cli-prod", "--format", "der", "--provenance", env,
                           "--sbom-digest", SBOM, art)
        pub = s.openssl.tmp(pem(unb64(s.get_key("cli-prod")["public_key"]), "PUBLIC KEY"),
                            ".pem")
        s.openssl("dgst", "-sha256", "-verify", pub, "-signature", art + ".sig", art)
        recs = [r for r in s.audit_show(after=last) if r["action"] == "sign"]
        self.assertEqual([r["outcome"] for r in recs], ["allowed"])
        p = recs[0]["detail"]["provenance"]
        with open(env, "rb") as f:
            self.assertEqual(p["envelope_sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual((p["artifact_sha256"], p["sbom_digest"]), (h, SBOM))
        self.assertEqual(recs[0]["detail"]["policy"]["provenance_gates"], [
            {"rule": "cli-gate", "via": "builder_key", "key": self.builder.key_id}])

        # Another builder: exit 5 with the server's reason; no signature written.
        art, env = self.files("bad", artifact, self.builder.envelope(
            statement(h, builder="https://evil.example/b")))
        proc = self.agent.util("sign", "--key", "cli-prod", "--provenance", env, art)
        err = proc.stderr.decode()
        self.assertEqual(proc.returncode, EXIT_DENIED, err)
        self.assertIn(prefix('builder id "https://evil.example/b" is not "%s"' % BUILDER,
                             "cli-prod", "cli-gate"), err)
        self.assertIn("sign --provenance FILE", err)
        self.assertFalse(os.path.exists(art + ".sig"))

        # No provenance at all.
        art, _ = self.files("none", artifact, b"")
        proc = self.agent.util("sign", "--key", "cli-prod", art)
        self.assertEqual(proc.returncode, EXIT_DENIED, proc.stderr)
        self.assertIn(prefix("none sent", "cli-prod", "cli-gate"), proc.stderr.decode())

        # A malformed envelope is the server's 400, with its reason.
        art, env = self.files("junk", artifact, b"not an envelope")
        proc = self.agent.util("sign", "--key", "cli-prod", "--provenance", env, art)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("provenance: the envelope is not a JSON object", proc.stderr.decode())

    def test_large_envelope_through_the_agent(self):
        artifact = b"big cli artefact"
        h = hashlib.sha256(artifact).hexdigest()
        stmt = statement(h)
        stmt["predicate"]["runDetails"]["metadata"]["note"] = "n" * (180 * 1024)
        env_bytes = self.builder.envelope(stmt)
        self.assertGreater(len(env_bytes), 240 * 1024)
        self.assertLessEqual(len(env_bytes), 256 * 1024)
        art, env = self.files("big", artifact, env_bytes)
        self.agent.util_ok("sign", "--key", "cli-prod", "--provenance", env, art)
        self.assertTrue(os.path.exists(art + ".sig"))

    def test_usage(self):
        art, env = self.files("u", b"u", b"{}")
        for args in (["--provenance", env, art, art], ["--provenance", env, "--digest", "ab" * 32],
                     ["--id-token-file", env, art], ["--provenance", env, "--async", art]):
            with self.subTest(args=args):
                proc = self.agent.util("sign", "--key", "cli-prod", *args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
        big = os.path.join(self.agent.root, "big.json")
        with open(big, "wb") as f:
            f.write(b" " * (256 * 1024 + 1))
        proc = self.agent.util("sign", "--key", "cli-prod", "--provenance", big, art)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("is over 262144 bytes", proc.stderr.decode())
        help_text = self.agent.util_ok("sign", "--help").stdout.decode()
        for opt in ("--provenance", "--sbom-digest", "--id-token-file"):
            self.assertIn(opt, help_text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
