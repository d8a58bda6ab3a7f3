"""The module's error map seen through a real tool (pkcs11-tool): a denied signature (the key's
grant withdrawn) fails in the tool as CKR_FUNCTION_REJECTED, with the server's reason in the
module's debug log and a denial in the audit log; so does a spent policy quota (429); no agent, an agent without credentials (and
the PIN as an API key), a wrong PIN and an unreachable server each give their own CKR_*."""

import os
import socket
import subprocess
import unittest

from tools_harness import MODULE, TOOL_TIMEOUT, ToolTestCase
from agent_harness import Agent  # on the path once tools_harness is imported


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Errors(ToolTestCase):
    KEYS = (("rel-ec", "ec-p256"), ("gated", "ec-p256"))

    def p11(self, args, env=None, agent=None):
        """pkcs11-tool as the user of `agent` (default: the class's)."""
        e = dict((agent or self.agent).env)
        e.update(env or {})
        proc = subprocess.run(["pkcs11-tool", "--module", MODULE] + args, env=e, cwd=self.dir,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=TOOL_TIMEOUT)
        proc.out = proc.stdout.decode(errors="replace")
        return proc

    def other_agent(self, **kw):
        a = Agent(["https://localhost:%d" % self.server.port], self.server.ca_cert_path,
                  name="errors", **kw)
        self.addCleanup(a.cleanup)
        return a

    def deny(self):
        """Withdraws the grant on `gated` behind the agent's cached listing and signs with it
        once; returns (pkcs11-tool's output, the module's debug log, the denial records)."""
        if getattr(type(self), "denied", None):
            return type(self).denied
        gated = self.key_id("gated")
        self.assertIn("label:      gated", self.p11(["-O"]).out)  # the agent now lists it
        with self.server.db() as db:
            db.execute("DELETE FROM grants WHERE key_id = (SELECT id FROM keys WHERE name ="
                       " 'gated')")
        log = self.path("p11-debug.log")
        before = self.server.audit_last_seq()
        proc = self.p11(["--sign", "-m", "ECDSA-SHA256", "--id", gated, "-i",
                         self.write("m", b"denied")],
                        env={"SIGNUM_DEBUG": "p11", "SIGNUM_P11_LOG": log})
        self.assertNotEqual(proc.returncode, 0)
        with open(log) as f:
            debug = f.read()
        denials = [r for r in self.server.audit_show(after=before) if r["outcome"] == "denied"]
        type(self).denied = (proc.out, debug, denials)
        return type(self).denied

    def test_denied_signature(self):
        out, debug, denials = self.deny()
        # CKR_FUNCTION_REJECTED, which pkcs11-tool 0.23 has no name for.
        self.assertIn("rv = unknown PKCS11 error (0x200)", out)
        # The server's reason, in the module's debug log.
        self.assertIn("key_not_granted", debug)
        self.assertIn('may not sign with key "gated"', debug)
        self.assertIn("-> CKR_FUNCTION_REJECTED", debug)
        self.assertTrue(denials, "no denial in the audit log")
        for r in denials:
            self.assertEqual(r["actor"], "user:alice")
            self.assertEqual(r["detail"]["code"], "key_not_granted")
            self.assertEqual(r["detail"]["key"], "gated")
        # The agent names the calling executable, read from /proc, beside the refusal.
        self.assertRegex(self.agent.log(), r"sign with gated for \S*/pkcs11-tool .*refused")

    def test_denial_in_audit_names_the_tool(self):
        detail = self.deny()[2][0]["detail"]
        # What the agent read from /proc about the caller is recorded with the denial too.
        self.assertIn("client", detail, "the denial record must carry the caller's context")
        self.assertEqual(os.path.basename(detail["client"]["application"]), "pkcs11-tool")

    def test_agent_not_running_and_not_startable(self):
        env = {"SIGNUM_NO_AUTOSTART": "1",
               "SIGNUM_AGENT_SOCKET": self.path("no-agent/agent.sock")}
        out = self.p11(["-L"], env=env).out
        self.assertIn("Slot 0 (0x0): Signum Agent", out)
        self.assertIn("(empty)", out)  # the slot is there, the token (the agent) is not
        proc = self.p11(["--slot", "0", "-O"], env=env)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("CKR_TOKEN_NOT_PRESENT", proc.out)

    def test_pin_is_an_api_key_without_agent_session(self):
        a = self.other_agent(api_key="")
        out = self.p11(["-L"], agent=a).out
        self.assertIn("login required", out)
        self.assertIn("token label        : Signum\n", out)
        proc = self.p11(["--login", "--pin", "sgk_000000000000_" + "A" * 43, "-O"], agent=a)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("CKR_PIN_INCORRECT", proc.out)
        msg = self.write("pin-msg", b"signed after a login with an API key")
        proc = self.p11(["--login", "--pin", self.api_key, "--sign", "-m", "ECDSA-SHA256",
                         "--signature-format", "openssl", "--id", self.key_id("rel-ec"),
                         "-i", msg, "-o", self.path("pin.sig")], agent=a)
        self.assertEqual(proc.returncode, 0, proc.out)
        self.openssl_verify("rel-ec", msg, self.path("pin.sig"))
        # The agent now holds the session: the next tool needs no PIN.
        self.assertNotIn("login required", self.p11(["-L"], agent=a).out)

    def test_quota_exceeded_is_rejected(self):
        """A policy quota of one signature: the second C_Sign gets CKR_FUNCTION_REJECTED (not
        CKR_DATA_LEN_RANGE), and the agent does not retry a spent quota (one refusal a call)."""
        self.server.create_key("quota-ec", "ec-p256")
        self.server.call("POST", "/api/v1/admin/policies", {
            "name": "one-signature", "effect": "allow", "subjects": {"users": [self.USER]},
            "keys": {"names": ["quota-ec"]},
            "conditions": {"quotas": [{"limit": 1, "window_seconds": 3600, "per": "key"}]}},
            token=self.server.admin_token(), expect=201)
        a = self.other_agent(api_key=self.api_key)  # a fresh key listing, with quota-ec
        kid = self.key_id("quota-ec")
        msg = self.write("quota-msg", b"one signature per hour")
        sign = ["--sign", "-m", "ECDSA-SHA256", "--id", kid, "-i", msg]
        proc = self.p11(sign + ["-o", self.path("quota-1.sig")], agent=a)
        self.assertEqual(proc.returncode, 0, proc.out)
        log = self.path("quota-debug.log")
        before = self.server.audit_last_seq()
        proc = self.p11(sign + ["-o", self.path("quota-2.sig")], agent=a,
                        env={"SIGNUM_DEBUG": "p11", "SIGNUM_P11_LOG": log})
        self.assertNotEqual(proc.returncode, 0, proc.out)
        # CKR_FUNCTION_REJECTED, which pkcs11-tool 0.23 has no name for.
        self.assertIn("rv = unknown PKCS11 error (0x200)", proc.out)
        with open(log) as f:
            debug = f.read()
        self.assertIn("quota_exceeded", debug)
        self.assertIn("-> CKR_FUNCTION_REJECTED", debug)
        refusals = [r for r in self.server.audit_show(after=before)
                    if r["outcome"] == "denied" and r["detail"].get("code") == "quota_exceeded"]
        # pkcs11-tool tries C_Sign, then C_SignUpdate/C_SignFinal: each module call is one
        # request to the server, not retried.
        calls = debug.count("sign with quota-ec (")
        self.assertGreaterEqual(calls, 1, debug)
        self.assertEqual(len(refusals), calls, "a spent quota must not be retried:\n" + debug)

    def test_server_unreachable(self):
        a = Agent(["https://localhost:%d" % dead_port()], self.server.ca_cert_path,
                  api_key=self.api_key, name="errors-down",
                  extra_env={"SIGNUM_RETRIES": "0", "SIGNUM_CONNECT_TIMEOUT_MS": "2000"})
        self.addCleanup(a.cleanup)
        out = self.p11(["-L"], agent=a).out
        self.assertIn("token label", out)  # the agent answers: the token is there
        proc = self.p11(["-O"], agent=a)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("CKR_DEVICE_REMOVED", proc.out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
