"""Key rotation: sign, rotate, sign again. Both signatures verify against their own
certificates (and not the other's); the key name signs with the new key at once; the earlier
version stays listed with its certificate until it is retired, which destroys it in the HSM;
a signer's agent, and libsignumpkcs11.so through it (pkcs11-tool), show the new certificate
without a restart and sign with the new key."""

import base64
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_harness import Agent  # noqa: E402
from signum_harness import (HASHES, ServerTestCase, SOFTHSM_MODULE, ecdsa_raw_to_der, pem,  # noqa
                            run, unb64)

MSG1, MSG2 = b"release 1.0", b"release 2.0"
HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.environ.get("SIGNUM_PKCS11") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "linux-pkcs11", "libsignumpkcs11.so"))


class RotationTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("rot", "ec-p256")
        s.issue_cert("rot", "Rotating Release Key", organization="Signum Tests")
        cls.signer_key = s.create_user("rot-signer")
        s.grant("rot", "rot-signer")
        cls.token = s.token_for(cls.signer_key)

    def admin(self, method, path, body=None, expect=200):
        return self.server.call(method, "/api/v1/admin/keys/rot" + path, body,
                                token=self.server.admin_token(), expect=expect)

    def sign(self, msg):
        digest = HASHES["sha256"](msg).digest()
        r = self.server.sign(self.token, "rot", "ecdsa", "sha256", digest=digest)
        return ecdsa_raw_to_der(unb64(r["signature"]))

    def verifies(self, cert_b64, msg, sig_der):
        o = self.server.openssl
        cert = o.tmp(pem(base64.b64decode(cert_b64)), ".crt")
        pub = o.tmp(o("x509", "-in", cert, "-pubkey", "-noout").stdout, ".pub")
        proc = o("dgst", "-sha256", "-verify", pub, "-signature", o.tmp(sig_der, ".sig"),
                 o.tmp(msg, ".msg"), check=False)
        return proc.returncode == 0

    def hsm_has(self, key_id_hex):
        s = self.server
        out = run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "signum",
                   "--login", "--pin", s.user_pin(), "-O"], env=s.hsm_env(), check=True)
        return ("ID:         %s" % key_id_hex) in out.stdout.decode()

    def p11(self, agent, *args):
        """pkcs11-tool through libsignumpkcs11.so and the signer's running agent."""
        env = dict(agent.env)
        if os.environ.get("SIGNUM_ASAN_RUNTIME"):
            # The sanitizer build's module needs its runtime loaded before pkcs11-tool's own.
            env.update(LD_PRELOAD=os.environ["SIGNUM_ASAN_RUNTIME"], ASAN_OPTIONS="detect_leaks=0")
        proc = subprocess.run(["pkcs11-tool", "--module", MODULE, "--login", "--pin",
                               self.signer_key] + list(args), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode(errors="replace"))
        return proc

    def p11_cert(self, agent):
        out = os.path.join(agent.root, "cert.der")
        self.p11(agent, "--read-object", "--type", "cert", "--label", "rot", "-o", out)
        with open(out, "rb") as f:
            return base64.b64encode(f.read()).decode()

    def p11_sign(self, agent, msg):
        data, sig = os.path.join(agent.root, "msg"), os.path.join(agent.root, "msg.sig")
        with open(data, "wb") as f:
            f.write(msg)
        self.p11(agent, "--sign", "-m", "ECDSA-SHA256", "--label", "rot", "-i", data, "-o", sig)
        with open(sig, "rb") as f:
            return ecdsa_raw_to_der(f.read())

    def test_sign_rotate_sign_retire(self):
        s = self.server
        agent = Agent(["https://localhost:%d" % s.port], s.ca_cert_path, api_key=self.signer_key,
                      name="rotation", extra_env={"SIGNUM_KEYS_REFRESH": "1"})
        self.addCleanup(agent.cleanup)
        before = json.loads(agent.util_ok("keys", "--json").stdout)
        old = self.admin("GET", "")
        self.assertEqual([k["id"] for k in before if k["name"] == "rot"], [old["id"]])
        sig1 = self.sign(MSG1)
        self.assertTrue(self.verifies(old["certificate"], MSG1, sig1))
        self.assertEqual(self.p11_cert(agent), old["certificate"])

        new = self.admin("POST", "/rotate", {"reason": "yearly rotation"})
        self.assertNotEqual(new["id"], old["id"])
        self.assertNotEqual(new["certificate"], old["certificate"])
        subject = s.openssl("x509", "-noout", "-subject", "-inform", "DER",
                            input=base64.b64decode(new["certificate"])).stdout.decode()
        self.assertIn("Rotating Release Key", subject)  # the old subject, a new key
        sig2 = self.sign(MSG2)
        self.assertTrue(self.verifies(new["certificate"], MSG2, sig2))
        self.assertFalse(self.verifies(old["certificate"], MSG2, sig2))
        self.assertTrue(self.verifies(old["certificate"], MSG1, sig1))

        versions = self.admin("GET", "/versions")
        self.assertEqual(versions["current_version"], 2)
        self.assertEqual([(v["version"], v["id"]) for v in versions["versions"]],
                         [(1, old["id"])])
        self.assertEqual(versions["versions"][0]["certificate"], old["certificate"])
        # The signer's listing serves the earlier certificate for verification...
        listed = {k["name"]: k for k in s.call("GET", "/api/v1/keys", token=self.token)["keys"]}
        self.assertEqual(listed["rot"]["id"], new["id"])
        self.assertEqual(listed["rot"]["previous_certificates"], [old["certificate"]])
        # ...and the signer's running agent shows the new key and certificate, no restart.
        deadline = time.monotonic() + 30
        while True:
            after = json.loads(agent.util_ok("keys", "--json").stdout)
            ids = [k["id"] for k in after if k["name"] == "rot"]
            if ids == [new["id"]] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(ids, [new["id"]])
        # The PKCS#11 module, through the same agent: the new certificate, the new key.
        self.assertEqual(self.p11_cert(agent), new["certificate"])
        sig3 = self.p11_sign(agent, MSG2 + b" via pkcs11")
        self.assertTrue(self.verifies(new["certificate"], MSG2 + b" via pkcs11", sig3))
        self.assertFalse(self.verifies(old["certificate"], MSG2 + b" via pkcs11", sig3))
        # pkcs11-tool was given the API key as its PIN: the audited command line hides it.
        records = s.audit_show()
        self.assertNotIn(self.signer_key, json.dumps(records))
        lines = [r["detail"]["client"]["command_line"] for r in records
                 if r["action"] == "sign" and "command_line" in r["detail"].get("client", {})]
        self.assertTrue(any("--login --pin *** --sign" in line for line in lines), lines)

        # Retiring the earlier version destroys it in the HSM, with an audit record.
        self.assertTrue(self.hsm_has(old["id"]))
        self.admin("POST", "/versions/1/retire", {"reason": "no more 1.x releases"})
        self.assertFalse(self.hsm_has(old["id"]))
        self.assertTrue(self.hsm_has(new["id"]))
        r = s.request("POST", "/api/v1/admin/keys/rot/versions/1/retire", {"reason": "again"},
                      token=s.admin_token())
        self.assertError(r, 404, "not_found")
        listed = {k["name"]: k for k in s.call("GET", "/api/v1/keys", token=self.token)["keys"]}
        self.assertEqual(listed["rot"]["previous_certificates"], [])
        actions = [(r["action"], r["detail"].get("reason")) for r in s.audit_show()
                   if r["action"] in ("key.rotate", "key.retire") and r["outcome"] == "ok"]
        self.assertEqual(actions, [("key.rotate", "yearly rotation"),
                                   ("key.retire", "no more 1.x releases")])
        self.assertTrue(self.verifies(new["certificate"], MSG1 + b"!", self.sign(MSG1 + b"!")))
        self.assertEqual(s.audit_verify()[0], 0)

    def test_bad_requests(self):
        s = self.server
        for path, body, status, code in (
                ("/api/v1/admin/keys/rot/rotate", {}, 400, "invalid_field"),
                ("/api/v1/admin/keys/rot/rotate", {"reason": ""}, 400, "invalid_field"),
                ("/api/v1/admin/keys/nope/rotate", {"reason": "x"}, 404, "key_not_found"),
                ("/api/v1/admin/keys/signum-ca/rotate", {"reason": "x"}, 403, "forbidden"),
                ("/api/v1/admin/keys/rot/versions/x/retire", {"reason": "x"}, 400,
                 "invalid_field"),
                ("/api/v1/admin/keys/rot/versions/99/retire", {"reason": "x"}, 404,
                 "not_found")):
            with self.subTest(path=path, body=body):
                self.assertError(s.request("POST", path, body, token=s.admin_token()),
                                 status, code)
        r = s.request("POST", "/api/v1/admin/keys/rot/rotate", {"reason": "x"}, token=self.token)
        self.assertError(r, 403, "forbidden")


if __name__ == "__main__":
    unittest.main(verbosity=2)
