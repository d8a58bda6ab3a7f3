"""Policy rules against a real server: CRUD with versions, export/import, groups, explain,
the sign path's decisions (deny rules over grants, IP ranges, digest algorithms, quotas),
each named in the answer's stable code and in the audit log, and the key listing, which
follows the rules as well as the grants."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase  # noqa: E402

DIGEST = HASHES["sha256"](b"policy").digest()
D384 = HASHES["sha384"](b"policy").digest()


class PolicyTest(ServerTestCase):
    @classmethod
    def prepare(cls):
        s = cls.server
        for k in ("pol-a", "pol-b", "pol-q", "pol-net", "pol-g", "pol-l", "pol-lg", "pol-h"):
            s.create_key(k, "ec-p256")
        cls.alice = s.token_for(s.create_user("alice", "signer"))
        cls.bob = s.token_for(s.create_user("bob", "signer"))
        cls.carol = s.token_for(s.create_user("carol", "signer"))
        s.grant("pol-a", "alice")
        s.grant("pol-h", "alice")

    def admin(self, method, path, body=None, expect=200):
        return self.server.call(method, path, body, token=self.server.admin_token(),
                                expect=expect)

    def sign(self, token, key, digest=DIGEST, hash="sha256"):
        return self.server.sign_request(token, key, "ecdsa", hash, digest=digest)

    def listing(self, token, **headers):
        r = self.server.request("GET", "/api/v1/keys", token=token, headers=headers)
        self.assertIn(r.status, (200, 304), r)
        return r

    def listed(self, token):
        return [k["name"] for k in self.listing(token).json["keys"]]

    def test_crud_and_versions(self):
        rule = {"name": "crud", "effect": "allow", "subjects": {"users": ["bob"]},
                "keys": {"names": ["pol-b"]}}
        r = self.admin("POST", "/api/v1/admin/policies", rule, expect=201)
        self.assertEqual(r["version"], 1)
        self.assertEqual(r["policy"]["name"], "crud")
        self.assertError(self.server.request("POST", "/api/v1/admin/policies", rule,
                                             token=self.server.admin_token()),
                         409, "already_exists")
        listed = self.admin("GET", "/api/v1/admin/policies")["policies"]
        self.assertIn("crud", [p["policy"]["name"] for p in listed])
        rule["priority"] = 7
        r = self.admin("PUT", "/api/v1/admin/policies/crud", rule)
        self.assertEqual((r["version"], r["policy"]["priority"]), (2, 7))
        self.assertEqual(self.admin("GET", "/api/v1/admin/policies/crud")["version"], 2)
        self.assertEqual(self.sign(self.bob, "pol-b").status, 200)
        self.admin("DELETE", "/api/v1/admin/policies/crud")
        self.assertError(self.server.request("GET", "/api/v1/admin/policies/crud",
                                             token=self.server.admin_token()), 404, "not_found")
        self.assertError(self.sign(self.bob, "pol-b"), 403, "key_not_granted")
        with self.server.db() as db:
            versions = db.execute("SELECT version, document IS NULL FROM policy_versions"
                                  " WHERE name = 'crud' ORDER BY version").fetchall()
        self.assertEqual(versions, [(1, 0), (2, 0), (3, 1)])
        # Signers cannot administer policies; bad documents are refused with the field named.
        self.assertError(self.server.request("GET", "/api/v1/admin/policies", token=self.bob),
                         403, "forbidden")
        bad = dict(rule, when={"time_zone": "Mars/Olympus"})
        r = self.server.request("POST", "/api/v1/admin/policies", bad,
                                token=self.server.admin_token())
        self.assertError(r, 400, "invalid_field")
        self.assertIn("time_zone", r.json["error"]["message"])

    def test_deny_rule_over_grant(self):
        self.assertEqual(self.sign(self.alice, "pol-a").status, 200)
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "freeze-a", "effect": "deny", "priority": 0,
            "subjects": {"users": ["*"]}, "keys": {"names": ["pol-a"]},
            "conditions": {"hashes": ["sha384"]}}, expect=201)
        try:
            last = self.server.audit_last_seq()
            r = self.sign(self.alice, "pol-a", D384, "sha384")
            self.assertError(r, 403, "policy_denied_rule")
            self.assertIn("freeze-a", r.json["error"]["message"])
            rec = [x for x in self.server.audit_show(after=last) if x["action"] == "sign"]
            self.assertEqual(rec[-1]["outcome"], "denied")
            self.assertEqual(rec[-1]["detail"]["rule"], "freeze-a")
            self.assertEqual(rec[-1]["detail"]["code"], "policy_denied_rule")
            # sha256 is outside the deny rule: the grant still allows it.
            r = self.sign(self.alice, "pol-a")
            self.assertEqual(r.status, 200, r)
            rec = [x for x in self.server.audit_show(after=last) if x["action"] == "sign"]
            self.assertEqual(rec[-1]["detail"]["policy"], {"rule": "grant"})
        finally:
            self.admin("DELETE", "/api/v1/admin/policies/freeze-a")

    def test_network_rule(self):
        base = {"effect": "allow", "subjects": {"users": ["bob"]}, "keys": {"names": ["pol-net"]}}
        self.admin("POST", "/api/v1/admin/policies",
                   dict(base, name="net-far", priority=50,
                        where={"ip_ranges": ["10.0.0.0/8"]}), expect=201)
        self.assertError(self.sign(self.bob, "pol-net"), 403, "network_not_allowed")
        self.admin("POST", "/api/v1/admin/policies",
                   dict(base, name="net-local", priority=10,
                        where={"ip_ranges": ["127.0.0.0/8", "::1/128"]}), expect=201)
        self.assertEqual(self.sign(self.bob, "pol-net").status, 200)

    def test_quota(self):
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "two-per-hour", "effect": "allow", "subjects": {"users": ["bob"]},
            "keys": {"names": ["pol-q"]},
            "conditions": {"quotas": [{"limit": 2, "window_seconds": 3600, "per": "key"}]}},
            expect=201)
        self.assertEqual(self.sign(self.bob, "pol-q").status, 200)
        r = self.server.sign_request(self.bob, "pol-q", "ecdsa", "sha256",
                                     digests=[DIGEST, DIGEST])
        self.assertError(r, 429, "quota_exceeded")  # a batch of 2 would overrun
        self.assertEqual(self.sign(self.bob, "pol-q").status, 200)
        self.assertError(self.sign(self.bob, "pol-q"), 429, "quota_exceeded")

    def test_groups_and_explain(self):
        self.admin("PUT", "/api/v1/admin/groups/releasers", {"members": ["bob"]})
        self.admin("PUT", "/api/v1/admin/key-groups/prod", {"members": ["pol-g"]})
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "weekday-release", "effect": "allow",
            "subjects": {"groups": ["releasers"]}, "keys": {"groups": ["prod"]},
            "when": {"time_zone": "Europe/Berlin",
                     "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                  "start": "09:00", "end": "17:00"}]}}, expect=201)
        monday_10 = 1736154000   # 2025-01-06T09:00:00Z = 10:00 in Berlin
        saturday = 1736589600    # 2025-01-11T10:00:00Z
        r = self.admin("POST", "/api/v1/admin/policies/explain",
                       {"user": "bob", "key": "pol-g", "time": monday_10})
        self.assertEqual((r["decision"], r["rule"], r["code"]),
                         ("allow", "weekday-release", "allowed"))
        r = self.admin("POST", "/api/v1/admin/policies/explain",
                       {"user": "bob", "key": "pol-g", "time": saturday})
        self.assertEqual((r["decision"], r["rule"], r["code"]),
                         ("deny", "weekday-release", "outside_time_window"))
        r = self.admin("POST", "/api/v1/admin/policies/explain",
                       {"user": "alice", "key": "pol-g", "time": monday_10})
        self.assertEqual((r["decision"], r["rule"], r["code"]),
                         ("deny", None, "key_not_granted"))
        groups = self.admin("GET", "/api/v1/admin/groups")["groups"]
        self.assertIn({"name": "releasers", "members": ["bob"]},
                      [{"name": g["name"], "members": g["members"]} for g in groups])

    def test_listing_follows_allow_rules(self):
        # Carol holds no grant: nothing is listed and nothing can be signed.
        self.assertEqual(self.listed(self.carol), [])
        self.assertError(self.sign(self.carol, "pol-l"), 403, "key_not_granted")
        empty = self.listing(self.carol).headers["etag"]
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "carol-l", "effect": "allow", "priority": 20,
            "subjects": {"users": ["carol"]}, "keys": {"names": ["pol-l"]}}, expect=201)
        # A rule bound to a machine (a request-time dimension), through a user and a key group:
        # listed, though this request (no mTLS identity) is refused.
        self.admin("PUT", "/api/v1/admin/groups/listers", {"members": ["carol"]})
        self.admin("PUT", "/api/v1/admin/key-groups/listed", {"members": ["pol-lg"]})
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "listers-build", "effect": "allow",
            "subjects": {"groups": ["listers"]}, "keys": {"groups": ["listed"]},
            "where": {"machines": ["build-01"]}}, expect=201)
        try:
            r = self.listing(self.carol, **{"If-None-Match": empty})
            self.assertEqual(r.status, 200, r)
            self.assertEqual([k["name"] for k in r.json["keys"]], ["pol-l", "pol-lg"])
            with_rule = r.headers["etag"]
            self.assertNotEqual(with_rule, empty)
            last = self.server.audit_last_seq()
            r = self.sign(self.carol, "pol-l")
            self.assertEqual(r.status, 200, r)
            rec = [x for x in self.server.audit_show(after=last) if x["action"] == "sign"]
            self.assertEqual(rec[-1]["detail"]["policy"], {"rule": "carol-l"})
            self.assertError(self.sign(self.carol, "pol-lg"), 403, "machine_not_allowed")
            # Alice is in neither rule: her listing is her grants.
            self.assertEqual(self.listed(self.alice), ["pol-a", "pol-h"])

            # The rule goes: so does the key, and the validator changes.
            self.admin("DELETE", "/api/v1/admin/policies/carol-l")
            r = self.listing(self.carol, **{"If-None-Match": with_rule})
            self.assertEqual(r.status, 200, r)
            self.assertEqual([k["name"] for k in r.json["keys"]], ["pol-lg"])
            self.assertNotEqual(r.headers["etag"], with_rule)
            self.assertError(self.sign(self.carol, "pol-l"), 403, "key_not_granted")
        finally:
            self.server.request("DELETE", "/api/v1/admin/policies/carol-l",
                                token=self.server.admin_token())
            self.admin("DELETE", "/api/v1/admin/policies/listers-build")
            self.admin("DELETE", "/api/v1/admin/groups/listers")
            self.admin("DELETE", "/api/v1/admin/key-groups/listed")
        self.assertEqual(self.listing(self.carol).headers["etag"], empty)

    def test_listing_hides_keys_denied_outright(self):
        self.assertIn("pol-h", self.listed(self.alice))
        # A deny with a condition leaves some requests to the grant: still listed.
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "hide-h-384", "effect": "deny", "priority": 30,
            "subjects": {"users": ["alice"]}, "keys": {"names": ["pol-h"]},
            "conditions": {"hashes": ["sha384"]}}, expect=201)
        try:
            self.assertIn("pol-h", self.listed(self.alice))
            # An unconditional deny above the grant: the key can never be used, so it is hidden.
            self.admin("POST", "/api/v1/admin/policies", {
                "name": "hide-h", "effect": "deny", "priority": 10,
                "subjects": {"users": ["alice"]}, "keys": {"names": ["pol-h"]}}, expect=201)
            self.assertNotIn("pol-h", self.listed(self.alice))
            self.assertIn("pol-a", self.listed(self.alice))
            r = self.sign(self.alice, "pol-h")
            self.assertError(r, 403, "policy_denied_rule")
            self.assertIn("hide-h", r.json["error"]["message"])
            # An allow rule that outranks the deny brings it back.
            self.admin("POST", "/api/v1/admin/policies", {
                "name": "unhide-h", "effect": "allow", "priority": 11,
                "subjects": {"users": ["alice"]}, "keys": {"names": ["pol-h"]},
                "where": {"ip_ranges": ["192.0.2.0/24"]}}, expect=201)
            self.assertIn("pol-h", self.listed(self.alice))
        finally:
            for name in ("hide-h-384", "hide-h", "unhide-h"):
                self.server.request("DELETE", "/api/v1/admin/policies/" + name,
                                    token=self.server.admin_token())
        self.assertIn("pol-h", self.listed(self.alice))
        self.assertEqual(self.sign(self.alice, "pol-h").status, 200)

    def test_export_import_roundtrip(self):
        self.admin("POST", "/api/v1/admin/policies", {
            "name": "exported", "effect": "deny", "priority": 5,
            "subjects": {"users": ["nobody"]}, "keys": {"names": ["*"]}}, expect=201)
        exported = self.admin("GET", "/api/v1/admin/policy-set")
        self.assertEqual(exported["format"], "signum-policy-set/1")
        self.assertIn("exported", [p["name"] for p in exported["policies"]])
        # A bad import changes nothing.
        bad = dict(exported, policies=exported["policies"] + [{"name": "x"}])
        snap = self.server.db_snapshot()
        r = self.server.request("PUT", "/api/v1/admin/policy-set", bad,
                                token=self.server.admin_token())
        self.assertError(r, 400, "invalid_field")
        self.assertEqual(self.server.db_snapshot(), snap)
        r = self.admin("PUT", "/api/v1/admin/policy-set", exported)
        self.assertEqual(r["imported_policies"], len(exported["policies"]))
        again = self.admin("GET", "/api/v1/admin/policy-set")
        self.assertEqual(again, exported)


if __name__ == "__main__":
    unittest.main(verbosity=2)
