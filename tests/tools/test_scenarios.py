"""The two administrator scenarios, with real tools signing through libsignumpkcs11.so:

- Compromise: while osslsigncode signs PE files in a loop, the admin suspends the key; no
  osslsigncode run started after the suspension returned gets a signature, the suspension's
  answer lists exactly the signatures the loop received, and once the certificate is revoked
  `openssl verify -crl_check` rejects it with the CRL its distribution point names.
- Offboarding: a user with an API key, a warm agent session, pkcs11-tool signing in a loop, one
  long-lived PKCS#11 process signing on one logged-in session (p11signloop) and a pending
  approval; the admin disables the user; the very next signature through the tools, the agent
  and the raw API is refused (the long-lived session's every C_Sign after the disable with
  CKR_USER_NOT_LOGGED_IN or CKR_FUNCTION_REJECTED), the pending approval cannot be collected,
  and every step is in the audit log."""

import hashlib
import os
import re
import ssl
import subprocess
import threading
import time
import unittest
import urllib.request

from tools_harness import MODULE, ToolTestCase, pem, run

HELLO_C = b'#include <stdio.h>\nint main(void) { puts("signed by Signum"); return 0; }\n'
LOOP_MAX = 40         # tool runs per loop, at most
LOOP_SECONDS = 120.0  # and for at most this long
AFTER_SECONDS = 3.0   # the loop goes on this long after the admin's call returned
P11LOOP = os.environ.get("SIGNUM_P11LOOP") or os.path.normpath(
    os.path.join(os.path.dirname(MODULE), "..", "tests", "tools", "p11signloop"))
SESSION_MAX = 2000    # the long-lived session's signatures, at most
SESSION_SECONDS = 90  # and for at most this long
SESSION_PAUSE_MS = 50
SESSION_FAILURES = 10  # it stops after this many refusals in a row
CKR_USER_NOT_LOGGED_IN = 0x101
CKR_FUNCTION_REJECTED = 0x200


class Scenarios(ToolTestCase):
    KEYS = (("sc-pe", "ec-p256"), ("sc-loop", "ec-p256"), ("sc-gated", "ec-p256"))

    @classmethod
    def prepare(cls):
        src = cls.write("hello.c", HELLO_C)
        cls.exe = cls.path("hello.exe")
        run(["x86_64-w64-mingw32-gcc", "-O2", "-s", "-o", cls.exe, src], check=True)

    def admin(self, method, path, body=None):
        return self.server.call(method, "/api/v1/admin" + path, body,
                                token=self.server.admin_token())

    def loop(self, run_once, stop_after):
        """Runs run_once(i) in a thread until stop_after() says so (bounded in count and
        time); returns the list of (started, returncode, i) and a function that joins it."""
        results, done = [], threading.Event()
        deadline = time.monotonic() + LOOP_SECONDS

        def body():
            for i in range(LOOP_MAX):
                if done.is_set() or time.monotonic() > deadline:
                    return
                started = time.monotonic()
                rc = run_once(i)
                results.append((started, rc, i))

        t = threading.Thread(target=body)
        t.start()

        def finish():
            stop_after()
            done.set()
            t.join(LOOP_SECONDS + 60)
            self.assertFalse(t.is_alive())
        return results, finish

    def long_lived_session(self, label):
        """Starts p11signloop on label: one process, one session, logged in once, signing in a
        loop. Returns (attempts, finish): attempts fills with (started, ended, rv) as it runs;
        finish() waits for the process (bounded) and returns its exit code."""
        errors = open(self.path("p11signloop.err"), "w+b")
        self.addCleanup(errors.close)
        proc = subprocess.Popen([P11LOOP, MODULE, label, "1234", str(SESSION_MAX),
                                 str(SESSION_SECONDS), str(SESSION_PAUSE_MS),
                                 str(SESSION_FAILURES)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=errors, env=self.env(),
                                cwd=self.dir)
        attempts, login = [], []

        def reader():
            for line in proc.stdout:
                f = line.decode().split()
                if f[0] == "login":
                    login.append(int(f[1], 16))
                else:
                    attempts.append((float(f[1]), float(f[2]), int(f[3], 16)))

        t = threading.Thread(target=reader)
        t.start()

        def finish():
            try:
                rc = proc.wait(SESSION_SECONDS + 60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
                t.join(30)
            self.assertEqual(login, [0], "C_Login of the long-lived session")
            errors.seek(0)
            self.assertEqual(rc, 0, errors.read().decode(errors="replace"))
            return rc
        return attempts, finish

    def wait_for(self, results, n):
        deadline = time.monotonic() + LOOP_SECONDS
        while sum(1 for r in results if r[1] == 0) < n:
            self.assertLess(time.monotonic(), deadline, "the loop never got %d successes" % n)
            time.sleep(0.05)

    # -- the compromise playbook
    def test_compromise(self):
        s = self.server
        since = int(time.time()) - 1
        uri = "%s;object=sc-pe" % self.token_uri

        def sign_pe(i):
            out = self.path("pe-%d.exe" % i)
            return self.tool(["osslsigncode", "sign", "-pkcs11module", MODULE, "-pkcs11cert",
                              uri + ";type=cert", "-key", uri + ";type=private", "-pass", "1234",
                              "-h", "sha256", "-in", self.exe, "-out", out]).returncode

        results, finish = self.loop(sign_pe, lambda: time.sleep(AFTER_SECONDS))
        self.wait_for(results, 3)
        answer = self.admin("POST", "/keys/sc-pe/suspend",
                            {"reason": "signing key leaked", "since": since})
        returned = time.monotonic()
        finish()

        ok = [r for r in results if r[1] == 0]
        late = [r for r in results if r[0] >= returned]
        self.assertTrue(late, "no osslsigncode run started after the suspension returned")
        self.assertEqual([r for r in late if r[1] == 0], [],
                         "a signature was handed out after the suspension returned")
        for r in late:
            self.assertFalse(os.path.exists(self.path("pe-%d.exe" % r[2])) and
                             self.tool(["osslsigncode", "verify", "-CAfile", self.path("ca.pem"),
                                        "-in", self.path("pe-%d.exe" % r[2])]).returncode == 0)
        # Each successful run made one signature; the suspension lists exactly those.
        self.assertEqual(len(answer["signatures_since"]), len(ok))
        self.assertFalse(answer["truncated"])
        for r in ok:
            proc = self.tool(["osslsigncode", "verify", "-CAfile", self.path("ca.pem"), "-in",
                              self.path("pe-%d.exe" % r[2])])
            self.assertEqual(proc.returncode, 0, proc.out)

        # Revoke the certificate; the CRL its distribution point names rejects it.
        self.admin("POST", "/keys/sc-pe/certificate/revoke",
                   {"reason": "key_compromise", "comment": "signing key leaked"})
        cert = self.cert_pem_file("sc-pe")
        text = run(["openssl", "x509", "-in", cert, "-noout", "-ext", "crlDistributionPoints"],
                   check=True).stdout.decode()
        url = re.search(r"URI:(\S+)", text).group(1)
        ctx = ssl.create_default_context(cafile=s.ca_cert_path)
        with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
            crl = self.write("sc-pe.crl", pem(r.read(), "X509 CRL"))
        proc = run(["openssl", "verify", "-crl_check", "-CAfile", self.path("ca.pem"),
                    "-CRLfile", crl, cert])
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(b"certificate revoked", proc.stdout + proc.stderr)
        good = run(["openssl", "verify", "-crl_check", "-CAfile", self.path("ca.pem"),
                    "-CRLfile", crl, self.cert_pem_file("sc-loop")])
        self.assertEqual(good.returncode, 0, good.stdout + good.stderr)
        actions = [r["action"] for r in s.audit_show()]
        self.assertIn("key.suspend", actions)
        self.assertIn("certificate.revoke", actions)

    # -- offboarding
    def test_offboarding(self):
        s = self.server
        # A rule that asks for an approval on sc-gated: the user's request stays pending.
        approver_key = s.create_user("sc-approver")
        s.call("POST", "/api/v1/admin/policies", {
            "name": "sc-gated-approval", "effect": "allow", "subjects": {"users": [self.USER]},
            "keys": {"names": ["sc-gated"]},
            "conditions": {"approval": {"required": 1, "approvers": ["sc-approver"],
                                        "ttl_seconds": 3600}}},
            token=s.admin_token(), expect=201)
        token = s.token_for(self.api_key)
        digest = hashlib.sha256(b"offboarding").digest()
        pending = s.sign_request(token, "sc-gated", "ecdsa", "sha256", digest)
        self.assertEqual(pending.status, 202, pending)
        approval_id = pending.json["approval_id"]

        kid = self.key_id("sc-loop")
        msg = self.write("loop-msg", b"signed mid-loop")

        def p11_sign(i):
            return self.tool(["pkcs11-tool", "--module", MODULE, "--sign", "-m", "ECDSA-SHA256",
                              "--id", kid, "-i", msg, "-o", self.path("loop-%d.sig" % i)]
                             ).returncode

        results, finish = self.loop(p11_sign, lambda: time.sleep(AFTER_SECONDS))
        session, session_finish = self.long_lived_session("sc-loop")
        self.wait_for(results, 2)
        deadline = time.monotonic() + LOOP_SECONDS
        while sum(1 for a in session if a[2] == 0) < 2:
            self.assertLess(time.monotonic(), deadline, "the long-lived session never signed")
            time.sleep(0.05)
        approver = s.token_for(approver_key)
        before = s.audit_last_seq()
        out = self.admin("POST", "/users/%s/disable" % self.USER, {"reason": "left the company"})
        returned = time.monotonic()
        self.assertTrue(out["user"]["disabled"])
        # The very next attempts through the raw API: the old token, the API key, and the
        # pending approval, which cannot be collected even once approved.
        s.request("POST", "/api/v1/approvals/%s/approve" % approval_id, token=approver)
        r = s.request("GET", "/api/v1/sign/requests/" + approval_id, token=token)
        self.assertError(r, 401, "token_invalid")
        self.assertNotIn("signature", r.json or {})
        self.assertError(s.sign_request(token, "sc-loop", "ecdsa", "sha256", digest),
                         401, "token_invalid")
        r = s.request("POST", "/api/v1/auth/token",
                      {"grant_type": "api_key", "api_key": self.api_key})
        self.assertError(r, 401, "bad_credentials")
        finish()

        late = [r for r in results if r[0] >= returned]
        self.assertTrue(late, "no pkcs11-tool run started after the disable returned")
        self.assertEqual([r for r in late if r[1] == 0], [], "signed after the disable")
        # The long-lived session: it signed before, and every C_Sign begun after the disable
        # returned is refused with a login or policy code; the process stops by itself after
        # SESSION_FAILURES refusals in a row.
        session_finish()
        self.assertGreaterEqual(sum(1 for a in session if a[2] == 0 and a[1] < returned), 2)
        after = [a for a in session if a[0] >= returned]
        self.assertTrue(after, "the long-lived session made no attempt after the disable")
        self.assertEqual([a for a in session[-SESSION_FAILURES:] if a[2] == 0], [],
                         "the long-lived session did not stop on refusals")
        self.assertEqual([a for a in after if a[2] not in (CKR_USER_NOT_LOGGED_IN,
                                                         CKR_FUNCTION_REJECTED)], [],
                         "a C_Sign after the disable was not refused as it must be")
        # The tool says why, with a PKCS#11 code; the warm agent re-authenticated and failed.
        log = self.path("offboarding-p11.log")
        proc = self.tool(["pkcs11-tool", "--module", MODULE, "--sign", "-m", "ECDSA-SHA256",
                          "--id", kid, "-i", msg, "-o", self.path("after.sig")],
                         extra_env={"SIGNUM_DEBUG": "p11", "SIGNUM_P11_LOG": log})
        self.assertNotEqual(proc.returncode, 0, proc.out)
        with open(log) as f:
            debug = f.read()
        self.assertRegex(debug, r"-> (CKR_USER_NOT_LOGGED_IN|CKR_FUNCTION_REJECTED)")
        # And through the agent's own command line.
        r = self.tool([os.environ.get("SIGNUM_UTIL", "signum-util"), "sign", "--key", "sc-loop",
                       "--hash", "sha256", "--mechanism", "ecdsa", "--digest", digest.hex()])
        self.assertEqual(r.returncode, 4, r.out)
        # Every step is in the audit log.
        recs = s.audit_show(after=before)
        disable = [x for x in recs if x["action"] == "user.disable"]
        self.assertEqual(len(disable), 1, recs)
        self.assertEqual(disable[0]["detail"]["reason"], "left the company")
        self.assertEqual([x for x in recs if x["seq"] > disable[0]["seq"]
                          and x["action"] == "sign" and x["outcome"] == "allowed"], [],
                         "a signature was made after the disable committed")
        refused = [x for x in recs if x["outcome"] == "denied"]
        self.assertTrue(any(x["action"] == "auth.token" for x in refused))
        self.assertTrue(any(x["action"] == "sign.poll" for x in refused),
                        [(x["action"], x["detail"].get("code")) for x in refused])
        self.assertEqual(s.audit_verify()[0], 0)

    def assertError(self, r, status, code):
        self.assertEqual((r.status, r.error_code), (status, code), r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
