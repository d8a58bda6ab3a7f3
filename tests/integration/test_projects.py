"""Projects against a real server (SoftHSMv2, SQLite): a project holds keys and the identities
that hold a role in it. Signers (users, service accounts, user groups) sign with the project's
keys and see exactly those (plus their grants and rules) in their key listing; approvers decide
approval requests on them when the rule says project_approvers; a project admin manages the
project's keys and members without being a global admin, and nobody gives themselves a role.
Policy rules name projects; the audit log and usage filter by project; grants are listed and
removed. signum-util admin projects|grants drive the same calls through the agent."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_harness import Agent  # noqa: E402
from signum_harness import HASHES, ServerTestCase  # noqa: E402

DIGEST = HASHES["sha256"](b"projects").digest()


class ProjectsTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.keys = {}
        cls.tok = {}
        for user in ("pj-sig", "pj-out", "pj-teammate", "pj-lead", "pj-req", "pj-appr",
                     "pj-nobody", "pj-sig2"):
            cls.keys[user] = s.create_user(user)
            cls.tok[user] = s.token_for(cls.keys[user])
        cls.keys["pj-boss"] = s.create_user("pj-boss", "admin")
        cls.tok["pj-boss"] = s.token_for(cls.keys["pj-boss"])
        adm = s.admin_token()
        s.call("PUT", "/api/v1/admin/groups/pj-team", {"members": ["pj-teammate", "pj-lead"]},
               token=adm)
        s.call("POST", "/api/v1/admin/service-accounts", {"name": "pj-ci"}, token=adm,
               expect=201)
        s.create_key("pj-other", "ec-p256")
        s.grant("pj-other", "pj-out")

    # -- helpers
    def admin(self, method, path, body=None, expect=200):
        return self.server.call(method, path, body, token=self.server.admin_token(),
                                expect=expect)

    def as_user(self, who, method, path, body=None):
        return self.server.request(method, path, body, token=self.tok[who])

    def project(self, name, description=""):
        return self.admin("POST", "/api/v1/admin/projects",
                          {"name": name, "description": description}, expect=201)

    def member(self, project, role, expect=201, who=None, remove=False, **member):
        body = {"role": role, "reason": "test"}
        body.update(member)
        path = "/api/v1/admin/projects/%s/members%s" % (project, "/remove" if remove else "")
        if who:
            return self.as_user(who, "POST", path, body)
        return self.admin("POST", path, body, expect=expect)

    def key_in(self, name, project):
        return self.admin("POST", "/api/v1/admin/keys",
                          {"name": name, "type": "ec-p256", "project": project}, expect=201)

    def listed(self, who):
        r = self.as_user(who, "GET", "/api/v1/keys")
        self.assertEqual(r.status, 200, r)
        return sorted(k["name"] for k in r.json["keys"])

    def sign(self, who, key):
        return self.server.sign_request(self.tok[who], key, "ecdsa", "sha256", digest=DIGEST)

    def last_record(self, action, **detail):
        recs = [x for x in self.server.audit_show() if x["action"] == action and
                all(x["detail"].get(k) == v for k, v in detail.items())]
        self.assertTrue(recs, "no %s record with %r" % (action, detail))
        return recs[-1]

    # -- signers
    def test_signers_sign_and_list_exactly_the_projects_keys(self):
        self.project("pj-web", "the web release keys")
        self.key_in("pj-w1", "pj-web")
        self.server.create_key("pj-w2", "ec-p256")
        moved = self.admin("PUT", "/api/v1/admin/keys/pj-w2/project",
                           {"project": "pj-web", "reason": "belongs to web"})
        self.assertEqual(moved["from_project"], None)
        self.assertEqual(self.server.get_key("pj-w1")["project"], "pj-web")
        self.member("pj-web", "signer", user="pj-sig")
        self.member("pj-web", "signer", group="pj-team")
        self.member("pj-web", "signer", service_account="pj-ci")

        self.assertEqual(self.listed("pj-sig"), ["pj-w1", "pj-w2"])
        self.assertEqual(self.listed("pj-teammate"), ["pj-w1", "pj-w2"])
        self.assertEqual(self.listed("pj-out"), ["pj-other"])  # its grant, nothing of the project
        self.assertEqual(self.listed("pj-nobody"), [])

        r = self.sign("pj-sig", "pj-w1")
        self.assertEqual(r.status, 200, r)
        rec = self.last_record("sign", key="pj-w1")
        self.assertEqual((rec["outcome"], rec["detail"]["policy"]["rule"],
                          rec["detail"]["project"]), ("allowed", "project", "pj-web"))
        self.assertEqual(self.sign("pj-teammate", "pj-w2").status, 200)
        self.assertError(self.sign("pj-out", "pj-w1"), 403, "key_not_granted")
        denial = self.last_record("sign", key="pj-w1", code="key_not_granted")
        self.assertEqual(denial["detail"]["project"], "pj-web")

        shown = self.admin("GET", "/api/v1/admin/projects/pj-web")
        self.assertEqual(sorted(k["name"] for k in shown["key_list"]), ["pj-w1", "pj-w2"])
        self.assertEqual(sorted((m["role"], m["kind"], m["name"]) for m in shown["members"]),
                         [("signer", "group", "pj-team"), ("signer", "service_account", "pj-ci"),
                          ("signer", "user", "pj-sig")])

        # Taking the role back: the very next request is refused, the listing is empty.
        self.member("pj-web", "signer", expect=200, remove=True, user="pj-sig")
        self.assertError(self.sign("pj-sig", "pj-w1"), 403, "key_not_granted")
        self.assertEqual(self.listed("pj-sig"), [])
        rec = self.last_record("project.member_remove", user="pj-sig")
        self.assertEqual((rec["actor"], rec["detail"]["reason"]), ("user:admin", "test"))
        # A key moved out of the project is out of its signers' reach at once.
        self.admin("PUT", "/api/v1/admin/keys/pj-w2/project", {"project": None, "reason": "x"})
        self.assertError(self.sign("pj-teammate", "pj-w2"), 403, "key_not_granted")
        self.assertEqual(self.listed("pj-teammate"), ["pj-w1"])

        # The usage of a project: the signatures made with its keys, nothing else.
        self.assertEqual(self.sign("pj-out", "pj-other").status, 200)
        got = self.admin("GET", "/api/v1/admin/usage?project=pj-web")
        # (pj-w2's signature by pj-teammate left with the key; pj-out's row is its denial.)
        self.assertEqual({(u["key"], u["signer"]): (u["signatures"], u["denials"])
                          for u in got["usage"]},
                         {("pj-w1", "pj-sig"): (1, 1), ("pj-w1", "pj-out"): (0, 1)})
        self.assertTrue(all(u["project"] == "pj-web" for u in got["usage"]))

        # A project with keys cannot go; once empty it can, and its roles go with it.
        r = self.server.request("DELETE", "/api/v1/admin/projects/pj-web", {"reason": "done"},
                                token=self.server.admin_token())
        self.assertError(r, 409, "project_not_empty")
        self.admin("PUT", "/api/v1/admin/keys/pj-w1/project", {"project": None, "reason": "x"})
        self.admin("DELETE", "/api/v1/admin/projects/pj-web", {"reason": "done"})
        self.assertError(self.as_user("pj-teammate", "GET", "/api/v1/admin/projects/pj-web"),
                         403, "forbidden")
        with self.server.db() as db:
            left = db.execute("SELECT count(*) FROM project_members WHERE project_id NOT IN"
                              " (SELECT id FROM projects)").fetchone()[0]
        self.assertEqual(left, 0)

    # -- project admins
    def test_project_admin_manages_only_their_project(self):
        self.project("pj-app")
        self.project("pj-lib")
        self.key_in("pj-lib-key", "pj-lib")
        self.member("pj-app", "admin", user="pj-lead")
        lead = "pj-lead"

        r = self.as_user(lead, "POST", "/api/v1/admin/keys",
                         {"name": "pj-app-key", "type": "ec-p256", "project": "pj-app"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["project"], "pj-app")
        for body in ({"name": "pj-x1", "type": "ec-p256"},
                     {"name": "pj-x2", "type": "ec-p256", "project": "pj-lib"},
                     {"name": "pj-x3", "type": "ec-p256", "project": "pj-nope"}):
            with self.subTest(body=body):
                self.assertError(self.as_user(lead, "POST", "/api/v1/admin/keys", body), 403,
                                 "forbidden")
        r = self.as_user(lead, "POST", "/api/v1/admin/keys/pj-app-key/suspend",
                         {"reason": "drill"})
        self.assertEqual(r.status, 200, r)
        r = self.as_user(lead, "POST", "/api/v1/admin/keys/pj-app-key/enable", {"reason": "ok"})
        self.assertEqual(r.status, 200, r)
        rec = self.last_record("key.suspend", key="pj-app-key")
        self.assertEqual((rec["actor"], rec["detail"]["project"]), ("user:pj-lead", "pj-app"))
        for path in ("/api/v1/admin/keys/pj-lib-key/suspend", "/api/v1/admin/keys/pj-other/suspend",
                     "/api/v1/admin/keys/pj-no-such-key/suspend"):
            with self.subTest(path=path):
                self.assertError(self.as_user(lead, "POST", path, {"reason": "x"}), 403,
                                 "forbidden")
        self.assertError(self.as_user(lead, "GET", "/api/v1/admin/keys"), 403, "forbidden")
        self.assertError(self.as_user(lead, "POST", "/api/v1/admin/keys/pj-app-key/grants",
                                      {"user": "pj-sig"}), 403, "forbidden")

        # Members: signers and approvers, never themselves, never another admin.
        r = self.member("pj-app", "signer", who=lead, user="pj-sig2")
        self.assertEqual(r.status, 201, r)
        rec = self.last_record("project.member_add", user="pj-sig2")
        self.assertEqual((rec["actor"], rec["detail"]["as"]), ("user:pj-lead", "project_admin"))
        self.assertEqual(self.sign("pj-sig2", "pj-app-key").status, 200)
        self.assertError(self.member("pj-app", "signer", who=lead, user="pj-lead"), 403,
                         "forbidden")
        self.assertError(self.member("pj-app", "signer", who=lead, group="pj-team"), 403,
                         "forbidden")  # pj-lead is in pj-team
        self.assertError(self.member("pj-app", "admin", who=lead, user="pj-sig2"), 403,
                         "forbidden")
        self.assertError(self.member("pj-lib", "signer", who=lead, user="pj-sig2"), 403,
                         "forbidden")
        self.assertError(self.as_user(lead, "POST", "/api/v1/admin/projects",
                                      {"name": "pj-mine"}), 403, "forbidden")
        self.assertError(self.as_user(lead, "DELETE", "/api/v1/admin/projects/pj-app",
                                      {"reason": "x"}), 403, "forbidden")
        # Separation of duties holds for global admins too: an admin never gets a signing role.
        self.assertError(self.server.request(
            "POST", "/api/v1/admin/projects/pj-app/members",
            {"role": "signer", "user": "pj-boss", "reason": "x"},
            token=self.server.admin_token()), 403, "forbidden")

        # Audit and usage of their project only.
        r = self.as_user(lead, "GET", "/api/v1/admin/audit?project=pj-app&limit=1000")
        self.assertEqual(r.status, 200, r)
        actions = {x["action"] for x in r.json["records"]}
        self.assertTrue({"key.create", "key.suspend", "sign"} <= actions, actions)
        self.assertTrue(all(x["detail"]["project"] == "pj-app" for x in r.json["records"]))
        for path in ("/api/v1/admin/audit", "/api/v1/admin/audit?project=pj-lib",
                     "/api/v1/admin/usage", "/api/v1/admin/usage?project=pj-lib"):
            with self.subTest(path=path):
                self.assertError(self.as_user(lead, "GET", path), 403, "forbidden")
        r = self.as_user(lead, "GET", "/api/v1/admin/usage?project=pj-app")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["totals"]["signatures"], 1)
        self.assertEqual(sorted(p["name"] for p in
                                self.as_user(lead, "GET", "/api/v1/admin/projects")
                                .json["projects"]), ["pj-app"])

    # -- approvers, and rules that name a project
    def test_rules_name_projects_and_project_approvers_decide(self):
        s = self.server
        self.project("pj-rel")
        self.key_in("pj-rel-key", "pj-rel")
        self.member("pj-rel", "approver", user="pj-appr")
        self.member("pj-rel", "approver", user="pj-req")
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "pj-rel-approval", "effect": "allow", "priority": 50,
            "subjects": {"users": ["pj-req"]}, "keys": {"projects": ["pj-rel"]},
            "conditions": {"approval": {"required": 1, "project_approvers": True}}},
            expect=201)
        self.assertEqual(self.listed("pj-req"), ["pj-rel-key"])
        r = self.sign("pj-req", "pj-rel-key")
        self.assertEqual(r.status, 202, r)
        aid = r.json["approval_id"]
        seen = self.as_user("pj-appr", "GET", "/api/v1/approvals").json["approvals"]
        self.assertIn(aid, [a["approval_id"] for a in seen])
        self.assertNotIn(aid, [a["approval_id"] for a in
                               self.as_user("pj-nobody", "GET", "/api/v1/approvals")
                               .json["approvals"]])
        self.assertError(self.as_user("pj-nobody", "POST", "/api/v1/approvals/%s/approve" % aid),
                         403, "not_an_approver")
        # The requester is a project approver too, yet never approves their own request.
        self.assertError(self.as_user("pj-req", "POST", "/api/v1/approvals/%s/approve" % aid),
                         403, "self_approval_forbidden")
        self.assertEqual(self.as_user("pj-appr", "POST",
                                      "/api/v1/approvals/%s/approve" % aid).status, 200)
        r = self.as_user("pj-req", "GET", "/api/v1/sign/requests/" + aid)
        self.assertEqual(r.status, 200, r)
        self.assertIn("signature", r.json)

        # A deny rule naming the project outranks the signer role (priority 0).
        self.member("pj-rel", "signer", user="pj-sig2")
        self.assertEqual(self.sign("pj-sig2", "pj-rel-key").status, 200)
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "pj-rel-freeze", "effect": "deny", "priority": 10,
            "subjects": {"users": ["pj-sig2"]}, "keys": {"projects": ["pj-rel"]}}, expect=201)
        self.assertError(self.sign("pj-sig2", "pj-rel-key"), 403, "policy_denied_rule")
        self.assertNotIn("pj-rel-key", self.listed("pj-sig2"))
        explain = self.admin("POST", "/api/v1/admin/policies/explain",
                             {"user": "pj-sig2", "key": "pj-rel-key"})
        self.assertEqual((explain["rule"], explain["request"]["project"],
                          explain["request"]["project_signer"]),
                         ("pj-rel-freeze", "pj-rel", True))
        r = s.request("POST", "/api/v1/admin/policies", {
            "name": "pj-bad", "effect": "allow", "subjects": {"users": ["x"]},
            "keys": {"projects": ["not a name"]}}, token=s.admin_token())
        self.assertError(r, 400, "invalid_field")

    # -- grants
    def test_grants_listed_and_removed(self):
        s = self.server
        s.create_key("pj-g", "ec-p256")
        s.grant("pj-g", "pj-nobody")
        got = self.admin("GET", "/api/v1/admin/keys/pj-g/grants")
        self.assertEqual([(g["user"], g["kind"]) for g in got["grants"]], [("pj-nobody", "user")])
        self.assertEqual(self.sign("pj-nobody", "pj-g").status, 200)
        r = s.request("DELETE", "/api/v1/admin/keys/pj-g/grants/pj-nobody", {},
                      token=s.admin_token())
        self.assertError(r, 400, "invalid_field")  # a reason is required
        self.admin("DELETE", "/api/v1/admin/keys/pj-g/grants/pj-nobody", {"reason": "moved on"})
        self.assertError(self.sign("pj-nobody", "pj-g"), 403, "key_not_granted")
        self.assertEqual(self.admin("GET", "/api/v1/admin/keys/pj-g/grants")["grants"], [])
        r = s.request("DELETE", "/api/v1/admin/keys/pj-g/grants/pj-nobody", {"reason": "again"},
                      token=s.admin_token())
        self.assertError(r, 404, "not_found")
        rec = self.last_record("key.ungrant", key="pj-g")
        self.assertEqual(rec["detail"]["reason"], "moved on")

    # -- bad input
    def test_bad_input_is_refused_precisely(self):
        s = self.server
        self.project("pj-bad")
        cases = [
            ({"role": "boss", "user": "pj-sig", "reason": "x"}, 400, "invalid_field"),
            ({"role": "signer", "user": "pj-sig", "group": "pj-team", "reason": "x"}, 400,
             "invalid_field"),
            ({"role": "signer", "reason": "x"}, 400, "invalid_field"),
            ({"role": "signer", "user": "pj-sig"}, 400, "invalid_field"),
            ({"role": "signer", "user": "pj-sig", "reason": "x", "extra": 1}, 400,
             "unknown_field"),
            ({"role": "signer", "user": "pj-ghost", "reason": "x"}, 404, "user_not_found"),
            ({"role": "signer", "service_account": "pj-sig", "reason": "x"}, 404,
             "user_not_found"),
            ({"role": "signer", "group": "pj-ghosts", "reason": "x"}, 404, "not_found"),
        ]
        for body, status, code in cases:
            with self.subTest(body=body):
                r = s.request("POST", "/api/v1/admin/projects/pj-bad/members", body,
                              token=s.admin_token())
                self.assertError(r, status, code)
        r = s.request("POST", "/api/v1/admin/projects/pj-none/members",
                      {"role": "signer", "user": "pj-sig", "reason": "x"}, token=s.admin_token())
        self.assertError(r, 404, "project_not_found")
        r = s.request("POST", "/api/v1/admin/projects", {"name": "pj-bad"}, token=s.admin_token())
        self.assertError(r, 409, "already_exists")
        r = s.request("POST", "/api/v1/admin/keys",
                      {"name": "pj-k", "type": "ec-p256", "project": "pj-none"},
                      token=s.admin_token())
        self.assertError(r, 404, "project_not_found")
        self.member("pj-bad", "signer", user="pj-sig")
        r = s.request("POST", "/api/v1/admin/projects/pj-bad/members",
                      {"role": "signer", "user": "pj-sig", "reason": "x"}, token=s.admin_token())
        self.assertError(r, 409, "already_exists")
        with s.db() as db:
            n = db.execute("SELECT count(*) FROM project_members m JOIN projects p ON"
                           " p.id = m.project_id WHERE p.name = 'pj-bad'").fetchone()[0]
        self.assertEqual(n, 1)

    # -- the command line
    def test_cli(self):
        boss = Agent(["https://localhost:%d" % self.server.port], self.server.ca_cert_path,
                     api_key=self.keys["pj-boss"], name="pj-boss")
        self.addCleanup(boss.cleanup)
        boss.util_ok("admin", "projects", "create", "pj-cli", "--description", "from the CLI")
        boss.util_ok("admin", "keys", "create", "pj-cli-key", "--type", "ec-p256", "--project",
                     "pj-cli")
        out = boss.util_ok("admin", "projects", "add", "pj-cli", "signer", "--user", "pj-out",
                           "--reason", "joins").stdout.decode()
        self.assertIn("user pj-out now holds the signer role in project pj-cli", out)
        r = boss.util("admin", "projects", "add", "pj-cli", "signer", "--user", "pj-out")
        self.assertEqual(r.returncode, 2, r)  # no --reason: usage, nothing sent
        shown = json.loads(boss.util_ok("admin", "projects", "show", "pj-cli", "--json").stdout)
        self.assertEqual([k["name"] for k in shown["key_list"]], ["pj-cli-key"])
        self.assertEqual([(m["role"], m["name"]) for m in shown["members"]],
                         [("signer", "pj-out")])
        table = boss.util_ok("admin", "projects", "list").stdout.decode()
        self.assertRegex(table, r"pj-cli\s+1\s+from the CLI")
        self.assertEqual(self.sign("pj-out", "pj-cli-key").status, 200)
        audit = boss.util_ok("admin", "audit", "--project", "pj-cli", "--json").stdout
        self.assertIn("sign", [x["action"] for x in json.loads(audit)["records"]])
        usage = json.loads(boss.util_ok("admin", "usage", "--project", "pj-cli", "--json").stdout)
        self.assertEqual(usage["totals"]["signatures"], 1)
        boss.util_ok("admin", "grants", "add", "pj-cli-key", "pj-nobody")
        listed = boss.util_ok("admin", "grants", "list", "pj-cli-key").stdout.decode()
        self.assertRegex(listed, r"pj-nobody\s+user")
        boss.util_ok("admin", "grants", "remove", "pj-cli-key", "pj-nobody", "--reason", "no")
        self.assertError(self.sign("pj-nobody", "pj-cli-key"), 403, "key_not_granted")
        out = boss.util_ok("admin", "projects", "move-key", "pj-cli-key", "--project", "none",
                           "--reason", "out").stdout.decode()
        self.assertIn("moved to no project", out)
        self.assertError(self.sign("pj-out", "pj-cli-key"), 403, "key_not_granted")
        r = boss.util("admin", "projects", "show", "pj-missing")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn(b"project_not_found", r.stderr)


if __name__ == "__main__":
    unittest.main()
