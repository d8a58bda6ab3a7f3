"""wine.agent: signum-agent.exe end to end under wine64 against a real signum-server.

A Windows program (tests/windows/agent_client.exe) uses the client library as a provider
does: it starts the agent on demand, asks for its status and the key listing and signs
digests; the signatures are verified here with openssl against the certificates the server
issued. Also: the audit log's caller is the Windows image path; the persisted session is
reused after a restart (and a corrupt one replaced); failover to the second server, and a
clear error when none answers; malformed and oversized frames answered with an error while
the agent keeps serving; a stalled client does not hold up another; a second agent cannot
take the pipe; the idle timeout.

Not provable under Wine: the refusal of another user's client (every Wine process has the
same user SID); see agent-core/README.md.
"""

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wine_harness as wh  # noqa: E402
from signum_harness import ecdsa_raw_to_der, pem  # noqa: E402

CLIENT = "tests/windows/agent_client.exe"
AGENT = "agent-core/signum-agent.exe"

IPC_MAGIC = 0x53474E31
MSG_HELLO, MSG_STATUS, MSG_ERROR = 1, 2, 0xFFFF
SG_ERR_PROTOCOL = 11


def frame(msg_type, msg_id, payload=b"", length=None, magic=IPC_MAGIC, version=1):
    return struct.pack(">IHHII", magic, version, msg_type, msg_id,
                       len(payload) if length is None else length) + payload


def field(tag, value):
    return struct.pack(">HI", tag, len(value)) + value


class WineAgentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv, cls.api_key = wh.server_with_keys(
            "agent", keys=[("win-rsa", "rsa2048"), ("win-ec", "ec-p256")])
        cls.addClassCleanup(cls.srv.cleanup)
        cls.envs = []

    def env(self, name, **kw):
        w = wh.WineEnv(name, self.srv, self.api_key, **kw)
        self.addCleanup(w.close)
        return w

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result is not None else None
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            sys.stderr.write("\n%s failed; server log:\n%s\n" % (self.id(), self.srv.log(60)))
        return out

    # -- helpers
    def sign(self, w, key, mech, digest, expect_rc=0):
        return w.run_json(CLIENT, "sign", key, mech, "sha256", digest.hex(), expect_rc=expect_rc)

    def cert_pem(self, listing, name):
        key = [k for k in listing["keys"] if k["name"] == name]
        self.assertEqual(len(key), 1, listing)
        self.assertTrue(key[0]["cert"], "no certificate for %s" % name)
        return pem(bytes.fromhex(key[0]["cert"]))

    def verify(self, cert_pem, message, sig):
        o = self.srv.openssl
        pub = o("x509", "-pubkey", "-noout", "-in", o.tmp(cert_pem.encode(), ".pem")).stdout
        ok, out = o.verify_digest_sig(pub, "sha256", message, sig)
        self.assertTrue(ok, out)

    # -- tests
    def test_autostart_status_keys_and_signatures_verify(self):
        w = self.env("sign")
        r = w.run(CLIENT, "status", env={"SIGNUM_NO_AUTOSTART": "1"})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("AGENT_UNAVAILABLE", r.stdout.upper())
        st = w.run_json(CLIENT, "status")  # starts signum-agent.exe from SIGNUM_AGENT
        self.assertEqual(st["auth_method"], "api_key")
        self.assertEqual(st["server"], "https://localhost:%d" % self.srv.port)
        self.assertGreater(st["pid"], 0)

        listing = w.run_json(CLIENT, "keys")
        names = {k["name"]: k["type"] for k in listing["keys"]}
        self.assertEqual(names, {"win-rsa": "rsa2048", "win-ec": "ec-p256"})
        # The agent hands out exactly the certificates the server issued.
        for name in names:
            server_der = base64.b64decode(self.srv.get_key(name)["certificate"])
            agent_der = [bytes.fromhex(k["cert"]) for k in listing["keys"] if k["name"] == name]
            self.assertEqual(agent_der, [server_der])

        msg = b"signed under wine64 by signum-agent.exe\n"
        digest = hashlib.sha256(msg).digest()
        sig = bytes.fromhex(self.sign(w, "win-rsa", "rsa-pkcs1", digest)["signature"])
        self.assertEqual(len(sig), 256)
        self.verify(self.cert_pem(listing, "win-rsa"), msg, sig)
        raw = bytes.fromhex(self.sign(w, "win-ec", "ecdsa", digest)["signature"])
        self.assertEqual(len(raw), 64)
        self.verify(self.cert_pem(listing, "win-ec"), msg, ecdsa_raw_to_der(raw))

        st = w.run_json(CLIENT, "status")
        self.assertEqual(st["logged_in"], 1)
        self.assertEqual(st["identity"], wh.USER)

    def test_audit_records_the_windows_image_path(self):
        w = self.env("audit")
        before = self.srv.audit_last_seq()
        self.sign(w, "win-ec", "ecdsa", b"\x11" * 32)
        recs = w.audit_signs(after=before)
        self.assertEqual(len(recs), 1, recs)
        client = recs[0]["detail"]["client"]
        # Read by the agent from the pipe's client process, not claimed by the client.
        self.assertEqual(client["application"].lower(), wh.z_path(w.exe(CLIENT)).lower())
        self.assertIsInstance(client["pid"], int)
        self.assertEqual(recs[0]["actor"], "user:" + wh.USER)
        self.assertEqual(recs[0]["outcome"], "allowed")

    def test_persisted_session_is_reused_after_restart_and_a_corrupt_one_replaced(self):
        w = self.env("cache")
        before = self.srv.audit_last_seq()
        self.sign(w, "win-ec", "ecdsa", b"\x22" * 32)
        session_file = os.path.join(w.cache_dir, "session.json")
        self.assertTrue(os.path.isfile(session_file), os.listdir(w.scratch))
        with open(session_file) as f:
            doc = json.load(f)
        self.assertNotIn(self.api_key, json.dumps(doc))
        self.assertTrue(w.stop_agent())
        st = w.run_json(CLIENT, "status")  # a new agent process
        self.assertEqual(st["logged_in"], 1, "persisted token not reused")
        self.sign(w, "win-ec", "ecdsa", b"\x23" * 32)
        tokens = [r for r in self.srv.audit_show(after=before) if r["action"] == "auth.token"]
        self.assertEqual(len(tokens), 1, "the restarted agent logged in again")

        # A file others may read is refused: written from the Unix side with mode 0644 it has
        # no stored security descriptor, and Wine derives a DACL granting Everyone read.
        self.assertTrue(w.stop_agent())
        with open(session_file) as f:
            good = f.read()
        os.unlink(session_file)
        with open(session_file, "w") as f:
            f.write(good)
        os.chmod(session_file, 0o644)
        self.assertEqual(w.run_json(CLIENT, "status")["logged_in"], 0,
                         "a cache file readable by others was used")
        self.assertTrue(w.stop_agent())
        os.unlink(session_file)
        with open(session_file, "w") as f:
            f.write(good)
        os.chmod(session_file, 0o600)
        self.assertEqual(w.run_json(CLIENT, "status")["logged_in"], 1)

        self.assertTrue(w.stop_agent())
        with open(session_file, "w") as f:
            f.write("{not json")
        st = w.run_json(CLIENT, "status")
        self.assertEqual(st["logged_in"], 0)
        self.sign(w, "win-ec", "ecdsa", b"\x24" * 32)
        with open(session_file) as f:
            self.assertIn("access_token", json.load(f))

    def test_failover_to_the_second_server_and_error_when_all_are_down(self):
        dead1, dead2 = wh.dead_port(), wh.dead_port()
        w = self.env("failover", servers=[dead1, self.srv.port])
        before = self.srv.audit_last_seq()
        self.sign(w, "win-rsa", "rsa-pkcs1", b"\x33" * 32)
        self.assertEqual(len(w.audit_signs(after=before)), 1)

        down = self.env("alldown", servers=[dead1, dead2])
        down.env["SIGNUM_RETRIES"] = "1"
        t0 = time.monotonic()
        out = self.sign(down, "win-rsa", "rsa-pkcs1", b"\x34" * 32, expect_rc=1)
        self.assertLess(time.monotonic() - t0, 60)
        self.assertEqual(out["error"], "network", out)
        self.assertIn("no server reachable (2 tried", out["message"])

    def test_a_server_not_from_ca_file_gets_nothing(self):
        o = self.srv.openssl
        other_key, other_ca = o.path("other-ca.key"), o.path("other-ca.crt")
        o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", other_key, "-subj", "/CN=Some other CA", "-days", "1", "-out", other_ca)
        before = self.srv.audit_last_seq()
        # Our own validation against another CA (the chain engine's exclusive root).
        w = self.env("otherca")
        w.env["SIGNUM_CA_FILE"] = wh.z_path(other_ca)
        out = self.sign(w, "win-ec", "ecdsa", b"\x66" * 32, expect_rc=1)
        self.assertEqual(out["error"], "network", out)
        self.assertIn("TLS verification of https://localhost:%d failed" % self.srv.port,
                      out["message"])
        # No ca_file: Windows' own validation, which does not know the server's private CA.
        w2 = self.env("noca")
        w2.env.pop("SIGNUM_CA_FILE")
        out = self.sign(w2, "win-ec", "ecdsa", b"\x67" * 32, expect_rc=1)
        self.assertEqual(out["error"], "network", out)
        self.assertIn("TLS with https://localhost:%d failed" % self.srv.port, out["message"])
        # Neither reached the server with a request: no token, no signature.
        self.assertEqual([r["action"] for r in self.srv.audit_show(after=before)
                          if r["action"] in ("sign", "auth.token")], [])

    def test_service_account_login_with_an_es256_assertion(self):
        s, o = self.srv, self.srv.openssl
        adm = s.admin_token()
        s.call("POST", "/api/v1/admin/service-accounts", {"name": "win-sa"}, token=adm,
               expect=201)
        s.grant("win-ec", "win-sa")
        token = s.call("POST", "/api/v1/admin/service-accounts/win-sa/enrollment-tokens",
                       token=adm, expect=201)["enrollment_token"]
        key_file = o.path("win-sa.key")
        o("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key_file)
        os.chmod(key_file, 0o600)
        spki = o("pkey", "-in", key_file, "-pubout", "-outform", "DER").stdout
        kid = s.call("POST", "/api/v1/enroll/service-account",
                     {"enrollment_token": token, "public_key": base64.b64encode(spki).decode()},
                     expect=201)["kid"]
        w = self.env("sa")
        w.env.pop("SIGNUM_API_KEY")
        w.env.update({"SIGNUM_SERVICE_ACCOUNT": "win-sa", "SIGNUM_KEY_FILE": wh.z_path(key_file),
                      "SIGNUM_KEY_ID": kid})
        before = s.audit_last_seq()
        msg = b"signed by a service account under wine64\n"
        raw = bytes.fromhex(self.sign(w, "win-ec", "ecdsa", hashlib.sha256(msg).digest())
                            ["signature"])
        listing = w.run_json(CLIENT, "keys")
        self.verify(self.cert_pem(listing, "win-ec"), msg, ecdsa_raw_to_der(raw))
        st = w.run_json(CLIENT, "status")
        self.assertEqual((st["auth_method"], st["logged_in"]), ("service_account", 1), st)
        recs = w.audit_signs(after=before)
        self.assertEqual(len(recs), 1, recs)
        self.assertIn("win-sa", recs[0]["actor"])

    def test_malformed_and_oversized_frames_get_an_error_and_the_agent_keeps_serving(self):
        w = self.env("frames")
        pid = w.run_json(CLIENT, "status")["pid"]
        cases = {
            "bad magic": frame(MSG_HELLO, 7, magic=0x41414141),
            "bad version": frame(MSG_HELLO, 7, version=9),
            "oversized": frame(MSG_HELLO, 7, length=0x7FFFFFFF),
            "unknown tag": frame(MSG_STATUS, 9, field(999, b"x")),
            "field over its cap": frame(MSG_STATUS, 9, field(10, b"k" * 100)),
            "truncated field": frame(MSG_STATUS, 9, struct.pack(">HI", 10, 50) + b"abc"),
        }
        for what, data in cases.items():
            with self.subTest(what):
                reply = w.run_json(CLIENT, "raw", data.hex())
                self.assertEqual(reply.get("type"), MSG_ERROR, reply)
                self.assertEqual(reply["code_name"], "protocol_error", reply)
                self.assertTrue(reply["message"], reply)
        # A well-formed raw HELLO still gets its reply, and the same agent serves on.
        hello = w.run_json(CLIENT, "raw", frame(MSG_HELLO, 5).hex())
        self.assertEqual(hello["type"], MSG_HELLO | 0x8000, hello)
        self.assertEqual(hello["id"], 5)
        self.assertEqual(w.run_json(CLIENT, "status")["pid"], pid)
        self.sign(w, "win-ec", "ecdsa", b"\x44" * 32)

    def test_a_stalled_client_does_not_block_another(self):
        w = self.env("stall")
        pid = w.run_json(CLIENT, "status")["pid"]
        # Half a header, then nothing for 20 s (the agent drops it after 5 s).
        with tempfile.TemporaryFile() as out:
            env = dict(w.env)
            stall = subprocess.Popen(["wine64", w.exe(CLIENT), "stall", "20000",
                                      frame(MSG_STATUS, 1)[:8].hex()],
                                     env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    out.seek(0)
                    if b"stalled_ms" in out.read():
                        break
                    time.sleep(0.1)
                else:
                    self.fail("the stalling client never connected")
                t0 = time.monotonic()
                st = w.run_json(CLIENT, "status")
                self.assertLess(time.monotonic() - t0, 4.0, "a stalled client held up another")
                self.assertEqual(st["pid"], pid)
                self.sign(w, "win-ec", "ecdsa", b"\x55" * 32)
            finally:
                stall.wait(timeout=60)

    def test_the_pipe_is_private_to_the_user(self):
        w = self.env("acl")
        w.run_json(CLIENT, "status")
        acl = w.run_json(CLIENT, "pipe-acl")
        self.assertEqual(acl["owner"], acl["user"], acl)
        # One ACE: access allowed (type 0), to the user alone.
        self.assertEqual([(a["type"], a["sid"]) for a in acl["dacl"]], [(0, acl["user"])], acl)

    def test_a_second_agent_cannot_take_the_pipe(self):
        w = self.env("second")
        pid = w.run_json(CLIENT, "status")["pid"]
        r = w.run(AGENT, "--foreground", "--socket", w.pipe, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("already exists", r.stderr)
        self.assertEqual(w.run_json(CLIENT, "status")["pid"], pid)

    def test_usage_and_idle_timeout(self):
        w = self.env("idle")
        r = w.run(AGENT, "--help", timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--daemon", r.stdout)
        self.assertEqual(w.run(AGENT, "--bogus", timeout=30).returncode, 2)
        w.env["SIGNUM_IDLE_TIMEOUT"] = "2"
        w.run_json(CLIENT, "status")
        deadline = time.monotonic() + 40
        gone = False
        while time.monotonic() < deadline and not gone:
            time.sleep(4)  # longer than the idle timeout: a probe is activity too
            gone = w.run(CLIENT, "status", env={"SIGNUM_NO_AUTOSTART": "1"},
                         timeout=30).returncode != 0
        self.assertTrue(gone, "the agent did not exit after its idle timeout")

    def test_bad_client_certificate_settings_are_refused_clearly(self):
        # mTLS itself (enroll machine, then signing with the machine's certificate) is
        # wine.util's test_enroll_machine_then_sign_over_mtls; here the refusals at start.
        w = self.env("mtls")
        cases = (
            ({"SIGNUM_CLIENT_CERT": "Z:\\nonexistent\\client.crt"},
             "client_cert is set but client_key is not"),
            ({"SIGNUM_CLIENT_CERT": "Z:\\nonexistent\\client.crt",
              "SIGNUM_CLIENT_KEY": "Z:\\nonexistent\\client.key"},
             "must name a key in your Windows key store"),
            ({"SIGNUM_CLIENT_CERT": "Z:\\nonexistent\\client.crt",
              "SIGNUM_CLIENT_KEY": "capi:Signum machine nope"},
             "cannot read client_cert Z:\\nonexistent\\client.crt"),
        )
        for env, message in cases:
            r = w.run(AGENT, "--foreground", "--socket", w.pipe + "-mtls", env=env, timeout=30)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(message, r.stderr)

if __name__ == "__main__":
    unittest.main(verbosity=2)
