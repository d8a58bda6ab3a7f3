"""signum-util admin users|service-accounts end to end: signum-util -> client library ->
signum-agent (IPC_MSG_API, the agent's allow-list) -> HTTPS -> a real signum-server. An admin
creates a signer, lists and revokes API keys, disables and deletes identities with a reason;
the signer's own warm agent session fails its very next signature after each change."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_harness import Agent  # noqa: E402
from signum_harness import HASHES, ServerTestCase, b64  # noqa: E402

DIGEST = HASHES["sha256"](b"offboarding").digest()


class CliIdentities(ServerTestCase):
    @classmethod
    def prepare(cls):
        s = cls.server
        cls.boss_key = s.create_user("boss", "admin")
        s.create_key("cli-id", "ec-p256")

    def agent(self, name, api_key):
        a = Agent(["https://localhost:%d" % self.server.port], self.server.ca_cert_path,
                  api_key=api_key, name="cli-" + name)
        self.addCleanup(a.cleanup)
        return a

    def boss(self):
        return self.agent("boss", self.boss_key)

    def sign_ok(self, agent):
        agent.util_ok("sign", "--key", "cli-id", "--hash", "sha256", "--mechanism", "ecdsa",
                      "--digest", b64(DIGEST))

    def test_users_round_trip(self):
        boss = self.boss()
        out = boss.util_ok("admin", "users", "create", "ivy", "--role", "signer").stdout.decode()
        self.assertIn("API key (shown once", out)
        ivy_key = out.strip().split()[-1]
        self.server.grant("cli-id", "ivy")
        ivy = self.agent("ivy", ivy_key)
        self.sign_ok(ivy)

        listed = json.loads(boss.util_ok("admin", "users", "list", "--json").stdout)
        self.assertIn("ivy", [u["name"] for u in listed["users"]])
        table = boss.util_ok("admin", "users", "list").stdout.decode()
        self.assertRegex(table, r"ivy\s+user\s+signer\s+active")
        keys = json.loads(boss.util_ok("admin", "users", "api-keys", "ivy", "--json").stdout)
        self.assertEqual(len(keys["api_keys"]), 1)
        prefix = keys["api_keys"][0]["prefix"]
        self.assertIn(prefix, ivy_key)

        # Without a reason nothing is sent: a usage error (2) before any call.
        r = boss.util("admin", "users", "disable", "ivy")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn(b"--reason", r.stderr)

        out = boss.util_ok("admin", "users", "revoke-api-key", "ivy", prefix, "--reason",
                           "laptop stolen").stdout.decode()
        self.assertIn("revoked 1 API keys", out)
        # The warm agent's next signature fails: its token died with the key, and the
        # re-login with the revoked key is refused (exit 4: credentials refused).
        r = ivy.util("sign", "--key", "cli-id", "--hash", "sha256", "--mechanism", "ecdsa",
                    "--digest", b64(DIGEST))
        self.assertEqual(r.returncode, 4, r)
        rec = [x for x in self.server.audit_show() if x["action"] == "apikey.revoke"][-1]
        self.assertEqual((rec["actor"], rec["detail"]["reason"]), ("user:boss", "laptop stolen"))

        out = boss.util_ok("admin", "users", "create-api-key", "ivy").stdout.decode()
        ivy2 = self.agent("ivy2", out.strip().split()[-1])
        self.sign_ok(ivy2)
        # Revoking the tokens: a reason first; then ivy2's token dies and the agent, whose
        # API key still works, signs in again for its next signature.
        r = boss.util("admin", "users", "revoke-tokens", "ivy")
        self.assertEqual(r.returncode, 2, r)
        last = self.server.audit_last_seq()
        out = boss.util_ok("admin", "users", "revoke-tokens", "ivy", "--reason",
                           "session on a shared host").stdout.decode()
        self.assertRegex(out, r"ivy \(user\): [1-9]\d* access tokens revoked")
        recs = self.server.audit_show(after=last)
        self.assertEqual([(x["action"], x["actor"], x["detail"]["reason"]) for x in recs],
                         [("user.revoke_tokens", "user:boss", "session on a shared host")])
        self.sign_ok(ivy2)
        self.assertIn("auth.token", [x["action"] for x in self.server.audit_show(after=last)])
        boss.util_ok("admin", "users", "disable", "ivy", "--reason", "left")
        r = ivy2.util("sign", "--key", "cli-id", "--hash", "sha256", "--mechanism", "ecdsa",
                    "--digest", b64(DIGEST))
        self.assertEqual(r.returncode, 4, r)
        shown = boss.util_ok("admin", "users", "show", "ivy").stdout.decode()
        self.assertIn("ivy (user, signer): disabled", shown)
        boss.util_ok("admin", "users", "delete", "ivy", "--reason", "gone")
        shown = json.loads(boss.util_ok("admin", "users", "show", "ivy", "--json").stdout)
        self.assertTrue(shown["user"]["deleted"])

    def test_service_accounts(self):
        boss = self.boss()
        out = boss.util_ok("admin", "service-accounts", "create", "ci-x").stdout.decode()
        self.assertIn("enrollment token", out)
        listed = json.loads(boss.util_ok("admin", "service-accounts", "list", "--json").stdout)
        self.assertIn("ci-x", [a["name"] for a in listed["service_accounts"]])
        keys = json.loads(boss.util_ok("admin", "service-accounts", "keys", "ci-x",
                                       "--json").stdout)
        self.assertEqual(keys["keys"], [])
        r = boss.util("admin", "service-accounts", "revoke-key", "ci-x", "0" * 32, "--reason",
                      "none")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"not_found", r.stderr)
        out = boss.util_ok("admin", "service-accounts", "revoke-tokens", "ci-x", "--reason",
                           "rotate runners", "--json").stdout
        self.assertEqual(json.loads(out), {"user": "ci-x", "kind": "service",
                                           "revoked_tokens": 0})
        boss.util_ok("admin", "service-accounts", "disable", "ci-x", "--reason", "paused")
        shown = json.loads(boss.util_ok("admin", "service-accounts", "show", "ci-x",
                                        "--json").stdout)
        self.assertTrue(shown["service_account"]["disabled"])

    def test_keys_and_machines(self):
        boss = self.boss()
        out = boss.util_ok("admin", "keys", "create", "cli-k3", "--type", "ec-p256", "--cert",
                           "external", "--cn", "CLI external").stdout.decode()
        self.assertIn("-----BEGIN CERTIFICATE REQUEST-----", out)
        out = json.loads(boss.util_ok("admin", "keys", "create", "cli-k2", "--type", "ec-p256",
                                      "--json").stdout)
        self.assertEqual((out["name"], out["type"]), ("cli-k2", "ec-p256"))
        cert = boss.util_ok("admin", "keys", "issue-cert", "cli-k2", "--cn", "CLI key",
                            "--days", "30").stdout.decode()
        self.assertIn("-----BEGIN CERTIFICATE-----", cert)
        csr = boss.util_ok("admin", "keys", "csr", "cli-k2", "--cn", "CLI key").stdout.decode()
        self.assertIn("-----BEGIN CERTIFICATE REQUEST-----", csr)
        table = boss.util_ok("admin", "keys", "list").stdout.decode()
        self.assertRegex(table, r"cli-k2\s+ec-p256\s+enabled\s+\d{4}-")
        self.server.create_user("cli-grantee")
        boss.util_ok("admin", "keys", "grant", "cli-k2", "cli-grantee")
        out = boss.util_ok("admin", "keys", "revoke-cert", "cli-k2", "--reason",
                           "superseded", "--comment", "rotated").stdout.decode()
        self.assertIn("revoked (superseded)", out)
        r = boss.util("admin", "keys", "revoke-cert", "cli-k2", "--reason", "superseded")
        self.assertEqual(r.returncode, 2, r)  # no --comment: usage, nothing sent
        out = boss.util_ok("admin", "keys", "suspend", "cli-k2", "--reason", "drill",
                           "--since", "2020-01-01T00:00:00Z").stdout.decode()
        self.assertIn("key cli-k2 suspended", out)
        r = boss.util("admin", "keys", "suspend", "cli-k2", "--reason", "x", "--since", "soon")
        self.assertEqual(r.returncode, 2, r)
        shown = json.loads(boss.util_ok("admin", "keys", "show", "cli-k2", "--json").stdout)
        self.assertTrue(shown["disabled"])
        boss.util_ok("admin", "keys", "enable", "cli-k2", "--reason", "drill over")
        shown = json.loads(boss.util_ok("admin", "keys", "show", "cli-k2", "--json").stdout)
        self.assertFalse(shown["disabled"])
        out = json.loads(boss.util_ok("admin", "keys", "rotate", "cli-k2", "--reason", "drill",
                                      "--cn", "CLI key 2", "--json").stdout)
        self.assertNotEqual(out["id"], shown["id"])
        out = boss.util_ok("admin", "keys", "versions", "cli-k2").stdout.decode()
        self.assertIn("current version 2", out)
        boss.util_ok("admin", "keys", "retire", "cli-k2", "1", "--reason", "drill over")
        self.assertEqual(boss.util("admin", "keys", "retire", "cli-k2", "x", "--reason",
                                   "y").returncode, 2)
        self.assertEqual(boss.util("admin", "keys", "disable", "cli-k2").returncode, 2)
        self.assertFalse(json.loads(boss.util_ok("admin", "keys", "show", "cli-k2",
                                                 "--json").stdout)["disabled"])
        boss.util_ok("admin", "keys", "disable", "cli-k2", "--reason", "retired product")
        rec = [x for x in self.server.audit_show() if x["action"] == "key.disable"][-1]
        self.assertEqual((rec["detail"]["key"], rec["detail"]["reason"]),
                         ("cli-k2", "retired product"))
        shown = json.loads(boss.util_ok("admin", "keys", "show", "cli-k2", "--json").stdout)
        self.assertTrue(shown["disabled"])

        out = boss.util_ok("admin", "machines", "create", "build-cli").stdout.decode()
        self.assertIn("enrollment token", out)
        self.assertRegex(boss.util_ok("admin", "machines", "list").stdout.decode(),
                         r"build-cli\s+pending")
        r = boss.util("admin", "machines", "revoke", "build-cli")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn(b"--reason", r.stderr)
        self.assertEqual(boss.util("admin", "machines", "list", "--state", "gone").returncode, 2)
        out = boss.util_ok("admin", "machines", "revoke", "build-cli", "--reason",
                           "never shipped").stdout.decode()
        self.assertIn("machine build-cli revoked", out)
        rec = [x for x in self.server.audit_show() if x["action"] == "machine.revoke"][-1]
        self.assertEqual((rec["actor"], rec["detail"]["reason"]), ("user:boss", "never shipped"))
        listed = json.loads(boss.util_ok("admin", "machines", "list", "--json").stdout)
        self.assertTrue([m for m in listed["machines"] if m["name"] == "build-cli"][0]["revoked"])
        self.assertRegex(boss.util_ok("admin", "machines", "list", "--state",
                                      "revoked").stdout.decode(), r"build-cli\s+revoked")
        self.assertNotIn("build-cli", boss.util_ok("admin", "machines", "list", "--state",
                                                   "active").stdout.decode())
        out = boss.util_ok("admin", "machines", "enable", "build-cli", "--reason",
                           "shipping after all").stdout.decode()
        self.assertIn("machine build-cli enabled", out)
        rec = [x for x in self.server.audit_show() if x["action"] == "machine.enable"][-1]
        self.assertEqual(rec["detail"]["reason"], "shipping after all")
        listed = json.loads(boss.util_ok("admin", "machines", "list", "--state", "pending",
                                         "--json").stdout)
        self.assertIn("build-cli", [m["name"] for m in listed["machines"]])

    def test_audit(self):
        s = self.server
        boss = self.boss()
        boss.util_ok("admin", "users", "create", "kay", "--role", "signer")
        boss.util_ok("admin", "users", "disable", "kay", "--reason", "audit me")
        out = boss.util_ok("admin", "audit", "--action", "user.disable").stdout.decode()
        self.assertRegex(out, r"user:boss\s+user.disable\s+ok")
        page = json.loads(boss.util_ok("admin", "audit", "--action", "user.disable",
                                       "--json").stdout)
        self.assertEqual([r["detail"]["user"] for r in page["records"]], ["kay"])
        # --all follows the cursor: page by page, the whole log, each record once.
        lines = boss.util_ok("admin", "audit", "--all", "--limit", "2",
                             "--json").stdout.decode().splitlines()
        self.assertGreater(len(lines), 1)
        seqs = [r["seq"] for line in lines for r in json.loads(line)["records"]]
        self.assertEqual(seqs, [r["seq"] for r in s.audit_show()][:len(seqs)])
        self.assertEqual(seqs, sorted(set(seqs)))
        r = boss.util("admin", "audit", "--since", "yesterday")
        self.assertEqual(r.returncode, 2, r)
        r = boss.util("admin", "audit", "--actor", "user:x\nforged")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"invalid_field", r.stderr)

    def test_usage(self):
        s = self.server
        boss = self.boss()
        s.create_key("cli-use", "ec-p256")
        user = self.agent("lou", s.create_user("lou"))
        s.grant("cli-use", "lou")
        boss.util_ok("admin", "keys", "usage-limit", "cli-use", "--limit", "2", "--reason",
                     "budget")
        for i in range(3):
            r = user.util("sign", "--key", "cli-use", "--hash", "sha256", "--mechanism", "ecdsa",
                          "--digest", b64(HASHES["sha256"](b"use %d" % i).digest()))
            self.assertEqual(r.returncode, 0 if i < 2 else 5, r)
        out = boss.util_ok("admin", "usage", "--key", "cli-use").stdout.decode()
        self.assertRegex(out, r"cli-use\s+lou\s+2\s+1")
        doc = json.loads(boss.util_ok("admin", "usage", "--key", "cli-use", "--json").stdout)
        self.assertEqual(doc["totals"], {"signatures": 2, "denials": 1})
        out = boss.util_ok("admin", "keys", "usage-limit", "cli-use", "--limit", "none",
                           "--reason", "lifted").stdout.decode()
        self.assertIn("usage limit none, 2 signatures made", out)
        self.assertEqual(boss.util("admin", "usage", "--from", "soon").returncode, 1)

    def test_signer_is_refused(self):
        k = self.server.create_user("jim", "signer")
        jim = self.agent("jim", k)
        r = jim.util("admin", "users", "list")
        self.assertEqual(r.returncode, 5, r)
        self.assertIn(b"forbidden", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
