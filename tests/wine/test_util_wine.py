"""signum-util.exe under wine64, end to end: a real signum-server on 127.0.0.1, the real
signum-agent.exe (started on demand by the client library, on this test's own pipe), and
certstore_dump.exe reading CurrentUser\\My back. Signatures are verified with openssl here.
The Wine side (prefix, pipe, environment, runs) is tests/wine/wine_harness.py's WineEnv.
Standard library only."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wine_harness import WineEnv, z_path  # noqa: E402  (first: it sets up signum_harness)
from signum_harness import ServerTestCase, ecdsa_raw_to_der  # noqa: E402

UTIL = "agent-core/signum-util.exe"
DUMP = "tests/windows/certstore_dump.exe"
KSP = "Signum Key Storage Provider"


class UtilOnWine(ServerTestCase):
    # An RSA CA, not ECDSA: Wine 8's crypt32 rejects an ECDSA-signed certificate whose r or s
    # is shorter than the curve size (about one certificate in 128; trust status 0x8,
    # NOT_SIGNATURE_VALID, while openssl verifies it), which would fail every test of a run
    # whose server TLS certificate happens to be one of them.
    server_options = {"ca_key_type": "rsa2048"}

    @classmethod
    def prepare(cls):
        s = cls.server
        adm = s.admin_token()
        s.create_key("w-ec", "ec-p256")
        s.issue_cert("w-ec", "Wine EC Signing")
        s.create_key("w-rsa", "rsa2048")
        s.issue_cert("w-rsa", "Wine RSA Signing")
        s.create_key("w-nocert", "ec-p256")
        s.call("POST", "/api/v1/admin/service-accounts", {"name": "ci-wine"}, token=adm,
               expect=201)
        cls.alice_key = s.create_user("alice")
        for k in ("w-ec", "w-rsa", "w-nocert"):
            s.grant(k, "alice")
        s.grant("w-ec", "ci-wine")

    def setUp(self):
        self.w = WineEnv("util-" + self._testMethodName[5:], self.server, self.alice_key)
        self.addCleanup(self.w.close)
        self.home = self.w.scratch
        for exe in (UTIL, DUMP):
            self.w.exe(exe)  # raises if the mingw build lacks it

    def env(self, api_key=True, **extra):
        """Changes to this test's environment (None removes a variable)."""
        env = dict(extra)
        if not api_key:
            env["SIGNUM_API_KEY"] = None
        return env

    def util(self, *args, env=None):
        return self.w.run(UTIL, *args, env=env)

    def util_ok(self, *args, env=None):
        p = self.util(*args, env=env)
        self.assertEqual(p.returncode, 0, "signum-util %s: %s%s\n%s" % (
            " ".join(args), p.stdout, p.stderr, self.w.agent_log()))
        return p.stdout

    def stop(self, pipe):
        """Stops the agent of another pipe this test used."""
        self.util("agent", "stop", env={"SIGNUM_AGENT_SOCKET": pipe, "SIGNUM_NO_AUTOSTART": "1"})

    def verify(self, key, message, sig_der):
        o = self.server.openssl
        pem = self.util_ok("cert", key, "--no-chain")
        pub = o.tmp(o("x509", "-pubkey", "-noout", input=pem.encode()).stdout)
        r = o("dgst", "-sha256", "-verify", pub, "-signature", o.tmp(sig_der), o.tmp(message),
              check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def cert_sha1(self, key):
        der = self.wine_cert_der(key)
        return hashlib.sha1(der).hexdigest().upper()

    def wine_cert_der(self, key):
        out = os.path.join(self.home, key + ".der")
        self.util_ok("cert", key, "--der", "-o", z_path(out))
        with open(out, "rb") as f:
            return f.read()

    def dump(self):
        p = self.w.run(DUMP)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.splitlines()

    # ---------------------------------------------------------------------------------------

    def test_status_keys_sign(self):
        out = self.util_ok("status")
        self.assertIn("agent:      running", out)
        self.assertIn("server:     https://localhost:%d" % self.server.port, out)
        out = self.util_ok("keys")
        self.assertIn("NAME", out)
        for k in ("w-ec", "w-rsa", "w-nocert"):
            self.assertIn(k, out)
        keys = {k["name"]: k for k in json.loads(self.util_ok("keys", "--json"))}
        self.assertEqual(keys["w-ec"]["type"], "ec-p256")
        self.assertTrue(keys["w-rsa"]["certificate"])
        self.assertFalse(keys["w-nocert"]["certificate"])
        out = self.util_ok("status")
        self.assertIn("logged in:  yes", out)
        self.assertIn("identity:   alice", out)

        # Digests: raw r||s for ECDSA (converted here), PKCS#1 v1.5 for RSA.
        msg = uuid.uuid4().bytes
        raw = base64.b64decode(self.util_ok("sign", "--key", "w-ec", "--digest",
                                            hashlib.sha256(msg).hexdigest()))
        self.assertEqual(len(raw), 64)
        self.verify("w-ec", msg, ecdsa_raw_to_der(raw))
        der = base64.b64decode(self.util_ok("sign", "--key", "w-ec", "--format", "der",
                                            "--digest", hashlib.sha256(msg).hexdigest()))
        self.verify("w-ec", msg, der)
        sig = base64.b64decode(self.util_ok("sign", "--key", "w-rsa", "--digest",
                                            hashlib.sha256(msg).hexdigest()))
        self.verify("w-rsa", msg, sig)
        # A file: hashed by signum-util.exe, FILE.sig written beside it.
        path = os.path.join(self.home, "payload.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(200000))
        self.util_ok("sign", "--key", "w-rsa", z_path(path))  # (the file lies in scratch)
        with open(path + ".sig", "rb") as f, open(path, "rb") as g:
            self.verify("w-rsa", g.read(), f.read())

        # Exit codes as on Linux.
        self.assertEqual(self.util("sign", "--key", "nope", "--digest", "00" * 32).returncode, 5)
        self.assertEqual(self.util("sign", "--key", "w-ec").returncode, 2)
        noauth = self.w.pipe + "-noauth"
        self.addCleanup(self.stop, noauth)
        self.assertEqual(self.util("keys", env=self.env(api_key=False,
                                                        SIGNUM_AGENT_SOCKET=noauth))
                         .returncode, 4)
        p = self.util("status", env=self.env(SIGNUM_NO_AUTOSTART="1",
                                             SIGNUM_AGENT_SOCKET=self.w.pipe + "-none"))
        self.assertEqual(p.returncode, 3, p.stderr)

        # agent stop returns once the pipe is gone; start brings one up again.
        self.assertIn("agent stopped", self.util_ok("agent", "stop"))
        p = self.util("agent", "status", env={"SIGNUM_NO_AUTOSTART": "1"})
        self.assertEqual(p.returncode, 3, p.stdout)
        self.assertIn("agent running (pid", self.util_ok("agent", "start"))
        self.assertIn("agent:      running", self.util_ok("agent", "status"))

    def test_login_logout_admin(self):
        # No API key in the environment: login hands one to the agent (file, then stdin).
        env = self.env(api_key=False)
        self.assertEqual(self.util("keys", env=env).returncode, 4)
        key_file = os.path.join(self.home, "api-key")
        with open(key_file, "w") as f:
            f.write(self.alice_key + "\n")
        self.assertIn("logged in as alice", self.util_ok("login", "--api-key-file",
                                                         z_path(key_file), env=env))
        self.assertIn("w-ec", self.util_ok("keys", env=env))
        self.assertIn("logged out", self.util_ok("logout", env=env))
        self.assertEqual(self.util("keys", env=env).returncode, 4)
        p = self.w.run(UTIL, "login", env=env, input=(self.alice_key + "\r\n").encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("logged in as alice", p.stdout)
        self.util_ok("logout", env=env)
        # Admin calls go through the agent with the session's rights: a signer is refused (5),
        # the administrator is not.
        alice = self.w.pipe + "-alice"  # this test's agent was started without a key
        self.addCleanup(self.stop, alice)
        p = self.util("admin", "policy", "list", env={"SIGNUM_AGENT_SOCKET": alice})
        self.assertEqual(p.returncode, 5, p.stderr)
        admin = self.w.pipe + "-admin"
        self.addCleanup(self.stop, admin)
        out = self.util_ok("admin", "group", "list", "--json",
                           env={"SIGNUM_API_KEY": self.server.admin_api_key(),
                                "SIGNUM_AGENT_SOCKET": admin})
        self.assertIn("groups", json.loads(out))
        self.assertIn("ID", self.util_ok("approvals", "list",
                                         env={"SIGNUM_API_KEY": self.server.admin_api_key(),
                                              "SIGNUM_AGENT_SOCKET": admin}))

    def test_help_and_usage(self):
        for cmd in (["--help"], ["status", "--help"], ["keys", "--help"], ["sign", "--help"],
                    ["cert", "--help"], ["login", "--help"], ["logout", "--help"],
                    ["doctor", "--help"], ["agent", "--help"], ["enroll", "--help"],
                    ["admin", "--help"], ["approvals", "--help"], ["certstore", "--help"]):
            p = self.util(*cmd)
            self.assertEqual(p.returncode, 0, (cmd, p.stderr))
            self.assertIn("Usage", p.stdout, cmd)
        self.assertEqual(self.util().returncode, 2)
        self.assertEqual(self.util("frobnicate").returncode, 2)
        self.assertEqual(self.util("certstore").returncode, 2)
        conf = os.path.join(self.home, "agent.conf")
        p = self.util("enroll", "machine", "--token", "sge_x",
                      env={"SIGNUM_CONFIG": z_path(conf)})
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad_credentials", p.stderr)
        self.assertFalse(os.path.exists(conf))

    def test_doctor(self):
        out = self.util_ok("doctor")
        for check in ("config", "agent", "dns", "connect", "tls", "clock", "health", "auth"):
            self.assertRegex(out, r"\[ OK \] %s " % check)
        self.assertIn("verdict: all good", out)
        self.assertIn("verified against ca_file", out)
        # A CA that did not issue the server's certificate: the TLS check fails, and says so.
        other = os.path.join(self.home, "other-ca.crt")
        self.server.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                            os.path.join(self.home, "other-ca.key"), "-subj", "/CN=Other CA",
                            "-days", "1", "-out", other)
        pipe = self.w.pipe + "-doctor"
        self.addCleanup(self.stop, pipe)
        p = self.util("doctor", env=self.env(SIGNUM_CA_FILE=z_path(other),
                                             SIGNUM_AGENT_SOCKET=pipe))
        self.stop(pipe)
        out = p.stdout
        self.assertEqual(p.returncode, 1, out)
        self.assertRegex(out, r"\[ OK \] connect ")
        self.assertRegex(out, r"\[FAIL\] tls ")
        # Nothing listens on port 1.
        p = self.util("doctor", env=self.env(SIGNUM_SERVER="https://localhost:1",
                                             SIGNUM_AGENT_SOCKET=pipe))
        self.stop(pipe)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout, r"\[FAIL\] connect ")

    def test_enroll_service_account_then_sign(self):
        s = self.server
        token = s.call("POST", "/api/v1/admin/service-accounts/ci-wine/enrollment-tokens",
                       token=s.admin_token(), expect=201)["enrollment_token"]
        # The configuration goes to SIGNUM_CONFIG: the prefix's %APPDATA%\Signum\agent.conf
        # would reach the agents of the other Wine tests running in the same prefix. The key
        # goes to its default place, %APPDATA%\Signum (Wine ignores APPDATA from Unix).
        conf = os.path.join(self.home, "agent.conf")
        env = self.env(api_key=False, SIGNUM_CONFIG=z_path(conf))
        out = self.util_ok("enroll", "service-account", "--token", token, env=env)
        self.assertIn("enrolled service account ci-wine", out)
        with open(conf) as f:
            text = f.read()
        self.assertIn("service_account = ci-wine", text)
        self.assertIn("auth = service_account", text)
        win_key = [l.split("=", 1)[1].strip() for l in text.splitlines()
                   if l.startswith("key_file")][0]
        self.assertRegex(win_key, r"^C:\\users\\[^\\]+\\AppData\\Roaming\\Signum\\"
                                  r"service-account\.key$")
        key_file = os.path.join(self.w.prefix, "drive_c",
                                *win_key[3:].split("\\"))
        self.addCleanup(os.unlink, key_file)
        spki = s.openssl("pkey", "-in", key_file, "-pubout", "-outform", "DER").stdout
        self.assertIn("key_id = " + hashlib.sha256(spki).digest()[:16].hex(), text)

        # The agent logs in with assertions signed by es256_mbedtls.c.
        before = s.audit_last_seq()
        msg = uuid.uuid4().bytes
        der = base64.b64decode(self.util_ok("sign", "--key", "w-ec", "--format", "der",
                                            "--digest", hashlib.sha256(msg).hexdigest(),
                                            env=env))
        self.verify("w-ec", msg, der)
        signs = [r for r in s.audit_show(after=before) if r["action"] == "sign"]
        self.assertEqual([r["actor"] for r in signs], ["service:ci-wine"])
        # A used enrollment token is refused the second time.
        p = self.util("enroll", "service-account", "--token", token, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad_credentials", p.stderr)

    def test_enroll_machine_then_sign_over_mtls(self):
        s, o = self.server, self.server.openssl
        adm = s.admin_token()
        token = s.call("POST", "/api/v1/admin/machines", {"name": "win-build-01"}, token=adm,
                       expect=201)["enrollment_token"]
        conf = os.path.join(self.home, "agent.conf")
        mdir = os.path.join(self.home, "machine")
        env = self.env(SIGNUM_CONFIG=z_path(conf))
        out = self.util_ok("enroll", "machine", "--token", token, "--dir", z_path(mdir), env=env)
        self.assertIn("enrolled machine win-build-01", out)
        with open(conf) as f:
            settings = dict(l.split(" = ", 1) for l in f.read().splitlines() if " = " in l)
        self.assertEqual(settings["client_cert"], z_path(mdir) + "\\machine.crt")
        ref = settings["client_key"]
        self.assertRegex(ref, r"^capi:Signum machine win-build-01 [0-9a-f]{16}$")
        container = ref[len("capi:"):]
        self.addCleanup(self.forget_container, container)
        # The key is in the user's key store, not in a file: only the certificate was written.
        self.assertEqual(os.listdir(mdir), ["machine.crt"])
        crt = os.path.join(mdir, "machine.crt")
        with open(crt) as f:
            chain = f.read()
        self.assertEqual(chain.count("BEGIN CERTIFICATE"), 2)  # the leaf, then the CA
        self.assertNotIn("PRIVATE KEY", chain)
        text = o("x509", "-in", crt, "-noout", "-text").stdout.decode()
        self.assertIn("CN = win-build-01", text)
        self.assertIn("TLS Web Client Authentication", text)
        self.assertIn("Public-Key: (2048 bit)", text)
        v = o("verify", "-CAfile", s.ca_cert_path, "-purpose", "sslclient", crt, check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Wine keeps CryptoAPI keys in the registry (encrypted with CryptProtectData).
        self.assertEqual(self.reg("query", container), 0)

        # Signing through the agent over mTLS: the audit records carry the verified machine.
        before = s.audit_last_seq()
        msg = uuid.uuid4().bytes
        der = base64.b64decode(self.util_ok("sign", "--key", "w-ec", "--format", "der",
                                            "--digest", hashlib.sha256(msg).hexdigest(),
                                            env=env))
        self.verify("w-ec", msg, der)
        recs = s.audit_show(after=before)
        signs = [r for r in recs if r["action"] == "sign"]
        self.assertEqual(len(signs), 1, recs)
        self.assertEqual(signs[0]["outcome"], "allowed")
        self.assertEqual(signs[0]["detail"]["machine"], "win-build-01")
        self.assertTrue([r for r in recs if r["action"] == "auth.token" and
                         r["detail"].get("machine") == "win-build-01"], recs)

        # A revoked machine is refused, its running agent included.
        s.call("POST", "/api/v1/admin/machines/win-build-01/revoke", {"reason": "test"},
               token=adm)
        before = s.audit_last_seq()
        p = self.util("sign", "--key", "w-ec", "--digest", hashlib.sha256(msg).hexdigest(),
                      env=env)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("revoked", p.stderr + self.w.agent_log())
        self.assertFalse([r for r in self.w.audit_signs(before) if r["outcome"] == "allowed"])

        # A configured key that is not in the key store: a clear refusal at the agent's start.
        pipe = self.w.pipe + "-nokey"
        self.addCleanup(self.stop, pipe)
        p = self.util("keys", env=self.env(SIGNUM_AGENT_SOCKET=pipe,
                                           SIGNUM_CLIENT_CERT=z_path(crt),
                                           SIGNUM_CLIENT_KEY="capi:Signum machine nope"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is not in your key store", p.stderr + self.w.agent_log())

    def reg(self, verb, container):
        """wine64 reg VERB on the user's CryptoAPI key container (Wine's own place for it)."""
        key = "HKCU\\Software\\Wine\\Crypto\\RSA\\" + container
        return subprocess.run(["wine64", "reg", verb, key] + (["/f"] if verb == "delete" else []),
                              env=self.w.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60).returncode

    def forget_container(self, container):
        self.reg("delete", container)

    def test_certstore_add_list_remove(self):
        for key in ("w-ec", "w-rsa"):  # what an earlier, failed run may have left
            self.util_ok("certstore", "--remove", key)
        thumb = self.cert_sha1("w-ec")
        out = self.util_ok("certstore", "--add", "w-ec")
        self.assertIn("thumbprint %s" % thumb, out)
        self.assertIn("signtool sign /sha1 %s /fd sha256 file.exe" % thumb, out)
        line = "cert %s prov=%s container=w-ec provtype=0 keyspec=0" % (thumb, KSP)
        self.assertIn(line, self.dump())
        out = self.util_ok("certstore", "--list")
        self.assertRegex(out, r"%s\s+w-ec\s+Wine EC Signing" % thumb)

        # Without KEY: every key with a certificate; the one without is skipped.
        p = self.util("certstore", "--add")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("w-nocert has no certificate", p.stderr)
        self.assertIn("w-rsa: added", p.stdout, p.stdout + p.stderr)
        rsa = self.cert_sha1("w-rsa")
        dump = self.dump()
        self.assertIn("cert %s prov=%s container=w-rsa provtype=0 keyspec=0" % (rsa, KSP), dump)
        self.assertIn(line, dump)
        self.assertEqual(self.util("certstore", "--add", "no-such-key").returncode, 5)

        out = self.util_ok("certstore", "--remove", "w-ec")
        self.assertIn("removed certificate %s" % thumb, out)
        dump = self.dump()
        self.assertFalse([d for d in dump if thumb in d], dump)
        self.assertTrue([d for d in dump if rsa in d], dump)
        self.util_ok("certstore", "--remove")
        self.assertFalse([d for d in self.dump() if KSP in d])
        self.assertIn("nothing removed", self.util_ok("certstore", "--remove"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
