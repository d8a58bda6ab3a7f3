"""signum-util admin and approvals end to end: signum-util -> client library -> signum-agent
(IPC_MSG_API, the agent's allow-list) -> HTTPS -> a real signum-server. An admin's agent
manages rules and groups; a signer's agent is refused by the server (403, exit code 5); a call
outside the allow-list is refused by the agent itself and never reaches the server; approvers
list, approve and reject pending sign requests, and the requester's poll yields a signature
that openssl verifies."""

import json
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_harness import (Agent, MSG_ERROR, TAG_CODE, TAG_MESSAGE, SG_ERR_DENIED,  # noqa: E402
                           field, frame, read_frame)
from signum_harness import (HASHES, ServerTestCase, ecdsa_raw_to_der, unb64)  # noqa: E402

MSG_API = 8
TAG_METHOD, TAG_PATH, TAG_BODY, TAG_HTTP_STATUS, TAG_ANSWER = 50, 51, 52, 53, 54
MSG = b"release 2.0.0"
DIGEST = HASHES["sha256"](MSG).digest()


class CliAdmin(ServerTestCase):
    @classmethod
    def prepare(cls):
        s = cls.server
        cls.keys = {}
        cls.api_keys = {"boss": s.create_user("boss", "admin")}
        for name in ("alice", "bob", "carol"):
            cls.api_keys[name] = s.create_user(name, "signer")
        cls.tok = {n: s.token_for(k) for n, k in cls.api_keys.items()}
        for name in ("cli-rel", "cli-appr"):
            cls.keys[name] = s.create_key(name, "ec-p256")

    def agent(self, who):
        a = Agent(["https://localhost:%d" % self.server.port], self.server.ca_cert_path,
                  api_key=self.api_keys[who], name="cli-" + who)
        self.addCleanup(a.cleanup)
        return a

    def write(self, agent, name, doc):
        path = os.path.join(agent.root, name)
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def api_frame(self, agent, method, path, body=None):
        """One raw IPC_MSG_API frame, as any local process could send it."""
        agent.util_ok("agent", "start")
        fields = field(TAG_METHOD, method.encode()) + field(TAG_PATH, path.encode())
        if body is not None:
            fields += field(TAG_BODY, json.dumps(body).encode())
        s = agent.connect()
        try:
            s.sendall(frame(MSG_API, fields))
            return read_frame(s)
        finally:
            s.close()

    def test_rules_round_trip(self):
        boss = self.agent("boss")
        rule = {"effect": "allow", "priority": 50,
                "subjects": {"users": ["alice"]}, "keys": {"names": ["cli-rel"]},
                "conditions": {"hashes": ["sha256"]}}
        path = self.write(boss, "rule.json", rule)
        out = boss.util_ok("admin", "policy", "put", "cli-alice", path).stdout.decode()
        self.assertIn("created policy cli-alice (version 1)", out)
        rule.update(priority=60, name="cli-alice")
        self.write(boss, "rule.json", rule)
        out = boss.util_ok("admin", "policy", "put", "cli-alice", path).stdout.decode()
        self.assertIn("updated policy cli-alice (version 2)", out)
        deny = {"name": "cli-no-carol", "effect": "deny", "subjects": {"users": ["carol"]},
                "keys": {"names": ["*"]}}
        boss.util_ok("admin", "policy", "put", "cli-no-carol",
                     self.write(boss, "deny.json", deny))
        # A file naming another rule is a usage error, caught before any call.
        self.assertEqual(boss.util("admin", "policy", "put", "other", path).returncode, 2)

        table = boss.util_ok("admin", "policy", "list").stdout.decode()
        self.assertRegex(table, r"cli-alice\s+allow\s+60\s+yes\s+2")
        self.assertRegex(table, r"cli-no-carol\s+deny")
        listed = json.loads(boss.util_ok("admin", "policy", "list", "--json").stdout)
        self.assertIn("cli-alice", [p["policy"]["name"] for p in listed["policies"]])
        got = json.loads(boss.util_ok("admin", "policy", "get", "cli-alice").stdout)
        self.assertEqual((got["name"], got["priority"]), ("cli-alice", 60))

        boss.util_ok("admin", "group", "put", "cli-team", "--members", "alice,bob")
        self.assertRegex(boss.util_ok("admin", "group", "list").stdout.decode(),
                         r"cli-team\s+\S+\s+alice,bob")
        boss.util_ok("admin", "key-group", "put", "cli-prod", "--members", "cli-rel")
        self.assertIn("cli-prod", boss.util_ok("admin", "key-group", "list").stdout.decode())

        # explain names the deciding rule, both ways.
        out = boss.util_ok("admin", "policy", "explain", "--subject", "alice", "--key",
                           "cli-rel", "--time", "2026-01-05T10:00:00Z").stdout.decode()
        self.assertRegex(out, r"decision\s+allow")
        self.assertRegex(out, r"rule\s+cli-alice")
        out = json.loads(boss.util_ok("admin", "policy", "explain", "--subject", "carol",
                                      "--key", "cli-rel", "--json").stdout)
        self.assertEqual((out["decision"], out["rule"]), ("deny", "cli-no-carol"))
        out = json.loads(boss.util_ok("admin", "policy", "explain", "--subject", "alice",
                                      "--key", "cli-rel", "--hash", "sha384",
                                      "--json").stdout)
        self.assertEqual(out["decision"], "deny")
        self.assertEqual(out["code"], "hash_not_allowed")

        # Export, wipe, import: the same rules and groups come back.
        export = os.path.join(boss.root, "set.json")
        boss.util_ok("admin", "policy", "export", "-o", export)
        with open(export) as f:
            before = json.load(f)
        self.assertEqual(before["format"], "signum-policy-set/1")
        boss.util_ok("admin", "policy", "delete", "cli-alice")
        boss.util_ok("admin", "group", "delete", "cli-team")
        proc = boss.util("admin", "policy", "get", "cli-alice")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("not_found", proc.stderr.decode())
        self.assertIn("next:", proc.stderr.decode())
        out = boss.util_ok("admin", "policy", "import", export).stdout.decode()
        self.assertIn("imported", out)
        after = json.loads(boss.util_ok("admin", "policy", "export").stdout)
        self.assertEqual(sorted(json.dumps(p, sort_keys=True) for p in after["policies"]),
                         sorted(json.dumps(p, sort_keys=True) for p in before["policies"]))
        self.assertEqual(after["groups"], before["groups"])

        # Delete what this test made.
        for name in ("cli-alice", "cli-no-carol"):
            boss.util_ok("admin", "policy", "delete", name)
        boss.util_ok("admin", "group", "delete", "cli-team")
        boss.util_ok("admin", "key-group", "delete", "cli-prod")
        self.assertNotIn("cli-alice", boss.util_ok("admin", "policy", "list").stdout.decode())
        boss.stop()

    def test_signer_is_forbidden(self):
        alice = self.agent("alice")
        for args in (("admin", "policy", "list"), ("admin", "group", "put", "x", "--members", "a"),
                     ("admin", "policy", "export")):
            proc = alice.util(*args)
            self.assertEqual(proc.returncode, 5, proc.stderr)
            err = proc.stderr.decode()
            self.assertIn("forbidden", err)
            self.assertIn("HTTP 403", err)
            self.assertIn("next:", err)
        alice.stop()

    def test_allow_list_is_enforced_by_the_agent(self):
        s = self.server
        boss = self.agent("boss")
        boss.util_ok("admin", "group", "list")  # logged in: no auth record comes later
        last = s.audit_last_seq()
        for method, path in (("PUT", "/api/v1/admin/audit"),
                             ("PUT", "/api/v1/admin/users"),
                             ("POST", "/api/v1/admin/users/boss/totp/reset"),
                             ("POST", "/api/v1/auth/token"),
                             ("POST", "/api/v1/sign"),
                             ("GET", "/api/v1/admin/policies/../users"),
                             ("GET", "/api/v1/admin/policiesx"),
                             ("GET", "/api/v1/admin/policies?x=1"),
                             ("DELETE", "/api/v1/approvals"),
                             ("DELETE", "/api/v1/admin/keys/cli-rel")):
            reply = self.api_frame(boss, method, path, {"name": "mallory", "role": "admin"})
            self.assertIsNotNone(reply, (method, path))
            msg_type, fields = reply
            self.assertEqual(msg_type, MSG_ERROR, (method, path))
            self.assertEqual(struct.unpack(">I", fields[TAG_CODE][0])[0], SG_ERR_DENIED)
            self.assertIn(b"does not make", fields[TAG_MESSAGE][0])
        # None of them reached the server: no audit record at all, not even a denial.
        self.assertEqual(s.audit_last_seq(), last,
                         [r for r in s.audit_show(after=last)])
        users = s.call("GET", "/api/v1/admin/users", token=s.admin_token())["users"]
        self.assertNotIn("mallory", [u["name"] for u in users])
        # An allowed call through the same frame works and returns status and body.
        msg_type, fields = self.api_frame(boss, "GET", "/api/v1/admin/groups")
        self.assertEqual(msg_type, MSG_API | 0x8000)
        self.assertEqual(struct.unpack(">I", fields[TAG_HTTP_STATUS][0])[0], 200)
        self.assertIn("groups", json.loads(fields[TAG_ANSWER][0]))
        self.assertIn("refused API call", boss.log())
        boss.stop()

    def approval_rule(self, boss):
        rule = {"effect": "allow", "subjects": {"users": ["alice"]},
                "keys": {"names": ["cli-appr"]},
                "conditions": {"approval": {"required": 1, "approvers": ["bob", "carol"],
                                            "ttl_seconds": 600}}}
        boss.util_ok("admin", "policy", "put", "cli-appr-rule",
                     self.write(boss, "appr.json", rule))

    def pending(self, digest=DIGEST):
        r = self.server.sign_request(self.tok["alice"], "cli-appr", "ecdsa", "sha256",
                                     digest=digest)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json["status"], "pending")
        return r.json["approval_id"]

    def test_approve_then_signature(self):
        s = self.server
        self.approval_rule(self.agent("boss"))
        aid = self.pending()
        bob = self.agent("bob")
        table = bob.util_ok("approvals", "list").stdout.decode()
        self.assertRegex(table, aid + r"\s+alice\s+cli-appr\s+cli-appr-rule\s+0/1")
        listed = json.loads(bob.util_ok("approvals", "list", "--json").stdout)
        self.assertIn(aid, [a["approval_id"] for a in listed["approvals"]])
        # The requester sees nothing to decide and cannot approve their own request.
        alice = self.agent("alice")
        self.assertNotIn(aid, alice.util_ok("approvals", "list").stdout.decode())
        proc = alice.util("approvals", "approve", aid)
        self.assertEqual(proc.returncode, 5)
        self.assertIn("self_approval_forbidden", proc.stderr.decode())
        out = bob.util_ok("approvals", "approve", aid).stdout.decode()
        self.assertIn("now approved", out)
        proc = bob.util("approvals", "approve", aid)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("approval_closed", proc.stderr.decode())
        # The requester polls: through their agent (an allowed call), then the API directly.
        msg_type, fields = self.api_frame(alice, "GET", "/api/v1/sign/requests/" + aid)
        self.assertEqual(struct.unpack(">I", fields[TAG_HTTP_STATUS][0])[0], 200)
        via_agent = json.loads(fields[TAG_ANSWER][0])
        r = s.request("GET", "/api/v1/sign/requests/" + aid, token=self.tok["alice"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["signature"], via_agent["signature"])
        o = s.openssl
        pub = o("pkey", "-pubin", "-inform", "DER", "-in",
                o.tmp(unb64(self.keys["cli-appr"]["public_key"]))).stdout
        ok, text = o.verify_digest_sig(pub, "sha256", MSG,
                                       ecdsa_raw_to_der(unb64(r.json["signature"])))
        self.assertTrue(ok, text)
        for a in (bob, alice):
            a.stop()

    def test_reject(self):
        s = self.server
        self.approval_rule(self.agent("boss"))
        aid = self.pending(HASHES["sha256"](b"other").digest())
        carol = self.agent("carol")
        self.assertEqual(carol.util("approvals", "reject", "not-an-id", "--reason",
                                    "x").returncode, 2)
        # A rejection must say why (issue 14): without --reason it is a usage error.
        self.assertEqual(carol.util("approvals", "reject", aid).returncode, 2)
        last = s.audit_last_seq()
        out = carol.util_ok("approvals", "reject", aid, "--reason",
                            "wrong branch").stdout.decode()
        self.assertIn("rejected %s: request now rejected" % aid, out)
        rec = [x for x in s.audit_show(after=last) if x["action"] == "approval.reject"]
        self.assertEqual([x["detail"]["reason"] for x in rec], ["wrong branch"])
        self.assertNotIn(aid, carol.util_ok("approvals", "list").stdout.decode())
        r = s.request("GET", "/api/v1/sign/requests/" + aid, token=self.tok["alice"])
        self.assertError(r, 403, "approval_rejected")
        carol.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
