"""The agent's other ways in, end to end: a service account enrolled with `signum-util enroll`
(its key pair made here, assertions signed by the agent), a CI job's OIDC token, and a machine
enrolled for mTLS whose identity the server then records as a verified fact."""

import base64
import hashlib
import json
import os
import stat
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_harness import Agent  # noqa: E402
from signum_harness import ServerTestCase  # noqa: E402
from signum_jwt import RsaKey, make_jwt, now  # noqa: E402

CI = "https://ci.example"


class AgentAuthCase(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256", "start": False}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.oidc_key = RsaKey(s.openssl, "ci-oidc")
        os.makedirs(os.path.join(s.state, "oidc"))
        with open(os.path.join(s.state, "oidc", "jwks.json"), "w") as f:
            json.dump({"keys": [cls.oidc_key.jwk("ci-1")]}, f)
        with open(os.path.join(s.state, "oidc", "oidc.json"), "w") as f:
            json.dump({"issuers": [{"issuer": CI, "jwks_file": "jwks.json", "audience": "signum",
                                    "rules": [{"claims": {"repository": "org/repo"},
                                               "service_account": "ci-oidc"}]}]}, f)
        s.set_conf({"oidc_config": "oidc/oidc.json"})
        s.start()
        adm = s.admin_token()
        s.create_key("ci-key", "ec-p256")
        s.issue_cert("ci-key", "CI Signing")
        for sa in ("ci-release", "ci-oidc"):
            s.call("POST", "/api/v1/admin/service-accounts", {"name": sa}, token=adm, expect=201)
            s.grant("ci-key", sa)
        cls.alice_key = s.create_user("alice")
        s.grant("ci-key", "alice")

    def agent(self, **kw):
        a = Agent(["https://localhost:%d" % self.server.port], self.server.ca_cert_path,
                  name=type(self).__name__, **kw)
        self.addCleanup(a.cleanup)
        return a

    def sign_and_verify(self, a):
        msg = uuid.uuid4().bytes
        sig = base64.b64decode(a.util_ok("sign", "--key", "ci-key", "--format", "der", "--digest",
                                         hashlib.sha256(msg).hexdigest()).stdout)
        o = self.server.openssl
        pub = o.tmp(o("x509", "-pubkey", "-noout", input=a.util_ok("cert", "ci-key").stdout).stdout)
        r = o("dgst", "-sha256", "-verify", pub, "-signature", o.tmp(sig), o.tmp(msg), check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def records(self, after, action):
        return [r for r in self.server.audit_show(after=after) if r["action"] == action]


class ServiceAccountEnrollment(AgentAuthCase):

    def test_enroll_and_sign_with_assertions(self):
        s = self.server
        token = s.call("POST", "/api/v1/admin/service-accounts/ci-release/enrollment-tokens",
                       token=s.admin_token(), expect=201)["enrollment_token"]
        a = self.agent()
        out = a.util_ok("enroll", "service-account", "--token", token).stdout.decode()
        self.assertIn("enrolled service account ci-release", out)
        key_file = os.path.join(a.root, "config", "signum", "service-account.key")
        st = os.stat(key_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        conf = os.path.join(a.root, "config", "signum", "agent.conf")
        self.assertEqual(stat.S_IMODE(os.stat(conf).st_mode), 0o600)
        with open(conf) as f:
            text = f.read()
        self.assertIn("service_account = ci-release", text)
        self.assertIn("auth = service_account", text)
        # The server holds our public key, never the private one: its kid is our SPKI's hash.
        spki = s.openssl("pkey", "-in", key_file, "-pubout", "-outform", "DER").stdout
        self.assertIn("key_id = " + hashlib.sha256(spki).digest()[:16].hex(), text)

        before = s.audit_last_seq()
        self.sign_and_verify(a)
        logins = self.records(before, "auth.token")
        self.assertEqual(len(logins), 1)
        self.assertEqual(logins[0]["actor"], "service:ci-release")
        self.assertEqual(self.records(before, "sign")[0]["actor"], "service:ci-release")
        self.assertIn("with service_account", a.log())
        # A used enrollment token is refused the second time.
        proc = a.util("enroll", "service-account", "--token", token)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("bad_credentials", proc.stderr.decode())

    def test_loose_key_file_is_refused(self):
        s = self.server
        token = s.call("POST", "/api/v1/admin/service-accounts/ci-release/enrollment-tokens",
                       token=s.admin_token(), expect=201)["enrollment_token"]
        a = self.agent()
        a.util_ok("enroll", "service-account", "--token", token)
        os.chmod(os.path.join(a.root, "config", "signum", "service-account.key"), 0o644)
        proc = a.util("keys")
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn("mode 0600", proc.stderr.decode())

    def test_config_too_large_is_said(self):
        # Enrollment rewrites the user's agent.conf with the new settings, 64 KiB at most: a
        # file that would pass it is refused with that reason (the message was lost before).
        s = self.server
        token = s.call("POST", "/api/v1/admin/service-accounts/ci-release/enrollment-tokens",
                       token=s.admin_token(), expect=201)["enrollment_token"]
        a = self.agent()
        conf = os.path.join(a.root, "config", "signum", "agent.conf")
        os.makedirs(os.path.dirname(conf))
        with open(conf, "w") as f:  # 65,400 bytes of comments: read fine, no room to add
            f.write(("#" + "x" * 1998 + "\n") * 32 + "#" + "y" * 1398 + "\n")
        os.chmod(conf, 0o600)
        proc = a.util("enroll", "service-account", "--token", token)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("%s is too large" % conf, proc.stderr.decode())
        with open(conf) as f:
            self.assertEqual(len(f.read()), 65400)  # left as it was


class OidcLogin(AgentAuthCase):

    def id_token(self, **claims):
        t = now()
        c = {"iss": CI, "sub": "repo:org/repo", "aud": "signum", "iat": t, "exp": t + 300,
             "repository": "org/repo"}
        c.update(claims)
        return make_jwt({"alg": "RS256", "typ": "JWT", "kid": "ci-1"}, c, self.oidc_key)

    def test_ci_token_from_the_environment(self):
        a = self.agent(extra_env={"SIGNUM_OIDC_TOKEN": self.id_token()})
        before = self.server.audit_last_seq()
        self.sign_and_verify(a)
        logins = self.records(before, "auth.token")
        self.assertEqual([r["actor"] for r in logins], ["service:ci-oidc"])
        self.assertIn("with oidc", a.log())

    def test_ci_token_file_and_refusal(self):
        a = self.agent()
        path = os.path.join(a.root, "id-token")
        with open(path, "w") as f:
            f.write(self.id_token(aud="someone-else") + "\n")
        a.env["SIGNUM_OIDC_TOKEN_FILE"] = path
        proc = a.util("keys")
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn("refused the OIDC token", proc.stderr.decode())
        # The file is read at each login: a fresh, valid token is picked up.
        a.util_ok("agent", "stop")
        with open(path, "w") as f:
            f.write(self.id_token())
        self.sign_and_verify(a)


class MachineEnrollment(AgentAuthCase):

    def test_mtls_identity_is_recorded(self):
        s = self.server
        token = s.call("POST", "/api/v1/admin/machines", {"name": "build-01"},
                       token=s.admin_token(), expect=201)["enrollment_token"]
        a = self.agent(api_key=self.alice_key)
        a.util_ok("sign", "--key", "ci-key", "--digest", "99" * 32)  # before: no machine
        out = a.util_ok("enroll", "machine", "--token", token).stdout.decode()
        self.assertIn("enrolled machine build-01", out)
        key = os.path.join(a.root, "config", "signum", "machine.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        before = s.audit_last_seq()
        self.sign_and_verify(a)
        signs = self.records(before, "sign")
        self.assertEqual(len(signs), 1)
        self.assertEqual(signs[0]["detail"].get("machine"), "build-01")
        self.assertEqual(signs[0]["actor"], "user:alice")
        # Revoking the machine stops its certificate at once.
        s.call("POST", "/api/v1/admin/machines/build-01/revoke", {"reason": "test"},
               token=s.admin_token())
        a.util_ok("agent", "stop")
        proc = a.util("sign", "--key", "ci-key", "--digest", "98" * 32)
        self.assertNotEqual(proc.returncode, 0)


class Doctor(AgentAuthCase):
    """`signum-util doctor` goes over the agent's own HTTPS transport: the same CA, TLS rules
    and client certificate, so what it finds is what the agent meets."""

    def self_signed(self, name):
        o = self.server.openssl
        key, crt = o.path(name + ".key"), o.path(name + ".crt")
        o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", key, "-subj", "/CN=" + name, "-days", "1", "-out", crt)
        return crt, key

    def test_verdicts(self):
        a = self.agent(api_key=self.alice_key)
        out = a.util_ok("doctor").stdout.decode()
        for check in ("config", "agent", "dns", "connect", "tls", "clock", "health", "auth"):
            self.assertRegex(out, r"\[ OK \] %s " % check)
        self.assertIn("handshake and certificate verified", out)
        self.assertIn("/healthz answered 200", out)
        self.assertIn("verdict: all good", out)
        # A CA that did not issue the server's certificate: TLS fails, and says what to check.
        other, _ = self.self_signed("other-ca")
        p = a.util("doctor", env={"SIGNUM_CA_FILE": other})
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 1, out)
        self.assertRegex(out, r"\[ OK \] connect ")
        self.assertRegex(out, r"\[FAIL\] tls .*\(is ca_file the server's CA\?\)")
        self.assertNotIn("health", out)
        # Nothing listens on port 1.
        p = a.util("doctor", env={"SIGNUM_SERVER": "https://127.0.0.1:1"})
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 1, out)
        self.assertRegex(out, r"\[ OK \] dns ")
        self.assertRegex(out, r"\[FAIL\] connect ")
        self.assertNotIn("tls", out.split("-- https://127.0.0.1:1", 1)[1])

    def test_client_certificate_is_presented(self):
        # A client certificate the server's CA did not issue: the agent's calls are refused
        # (401), and doctor, presenting the same certificate, says so instead of "all good".
        crt, key = self.self_signed("build-99")
        a = self.agent(api_key=self.alice_key,
                       extra_env={"SIGNUM_CLIENT_CERT": crt, "SIGNUM_CLIENT_KEY": key})
        p = a.util("doctor")
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 1, out)
        self.assertRegex(out, r"\[ OK \] tls ")
        self.assertRegex(out, r"\[FAIL\] health +/healthz answered 401")
        self.assertRegex(out, r"\[FAIL\] auth ")


if __name__ == "__main__":
    unittest.main(verbosity=2)
