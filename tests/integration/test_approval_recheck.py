"""Issue 14, defects 9 and 10: one signing service for direct and approved requests.

An approved request is signed only if policy still allows it at collection: quotas (three
requests approved under a quota of one give one signature), the rule that asked for approval
(deleted after approval: refused), and the approval's own expiry. A rejection carries a reason.
A retry of a request id that was already answered gets the stored answer even once the quota
is spent; a different request under the same id is still refused."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase  # noqa: E402


def digest(label):
    return HASHES["sha256"](label.encode()).digest()


class ApprovalRecheckTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.tok = {}
        for name in ("alice", "bob"):
            cls.tok[name] = s.token_for(s.create_user(name, "signer"))
        cls.admin = s.admin_token()
        for key in ("rq-ec", "rd-ec", "rx-ec", "rj-ec", "rt-ec", "rc-ec", "rn-ec"):
            s.create_key(key, "ec-p256")

        def rule(name, key, quota=None, approval=True):
            cond = {}
            if approval:
                cond["approval"] = {"required": 1, "approvers": ["bob"], "ttl_seconds": 600}
            if quota:
                cond["quotas"] = [{"limit": quota, "window_seconds": 3600, "per": "key"}]
            s.call("POST", "/api/v1/admin/policies", {
                "name": name, "effect": "allow", "subjects": {"users": ["alice"]},
                "keys": {"names": [key]}, "conditions": cond}, token=cls.admin, expect=201)

        rule("one-approved", "rq-ec", quota=1)
        rule("deleted-later", "rd-ec")
        rule("expiring", "rx-ec")
        rule("rejectable", "rj-ec")
        rule("one-direct", "rt-ec", quota=1, approval=False)
        rule("tightened", "rc-ec")
        s.call("POST", "/api/v1/admin/policies", cls.net_rule(["127.0.0.0/8"]), token=cls.admin,
               expect=201)

    @staticmethod
    def net_rule(ranges):
        return {"name": "netbound", "effect": "allow", "subjects": {"users": ["alice"]},
                "keys": {"names": ["rn-ec"]}, "where": {"ip_ranges": ranges},
                "conditions": {"approval": {"required": 1, "approvers": ["bob"],
                                            "ttl_seconds": 600}}}

    def request(self, key, label, **extra):
        r = self.server.sign_request(self.tok["alice"], key, "ecdsa", "sha256",
                                     digest=digest(label), **extra)
        self.assertEqual(r.status, 202, r)
        return r.json["approval_id"]

    def approve(self, aid):
        r = self.server.request("POST", "/api/v1/approvals/%s/approve" % aid,
                                token=self.tok["bob"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "approved")

    def poll(self, aid):
        return self.server.request("GET", "/api/v1/sign/requests/" + aid, token=self.tok["alice"])

    def test_quota_of_one_signs_one_of_three_approved(self):
        s = self.server
        last = s.audit_last_seq()
        aids = [self.request("rq-ec", "quota %d" % i) for i in range(3)]
        for aid in aids:
            self.approve(aid)
        first = self.poll(aids[0])
        self.assertEqual(first.status, 200, first)
        self.assertIn("signature", first.json)
        for aid in aids[1:]:
            self.assertError(self.poll(aid), 429, "quota_exceeded")
        # The signed one answers the same again; the refused ones stay refused.
        self.assertEqual(self.poll(aids[0]).json["signature"], first.json["signature"])
        self.assertError(self.poll(aids[2]), 429, "quota_exceeded")
        signs = [r for r in s.audit_show(after=last)
                 if r["action"] == "sign" and r["outcome"] == "allowed"]
        self.assertEqual([r["detail"]["policy"]["approval_id"] for r in signs], [aids[0]])

    def test_rule_deleted_after_approval_is_refused(self):
        aid = self.request("rd-ec", "deleted rule")
        self.approve(aid)
        self.server.call("DELETE", "/api/v1/admin/policies/deleted-later", token=self.admin)
        r = self.poll(aid)
        self.assertError(r, 403, "key_not_granted")

    def test_rule_asking_for_more_approvals_is_refused(self):
        aid = self.request("rc-ec", "tightened")
        self.approve(aid)
        self.server.call("PUT", "/api/v1/admin/policies/tightened", {
            "name": "tightened", "effect": "allow", "subjects": {"users": ["alice"]},
            "keys": {"names": ["rc-ec"]},
            "conditions": {"approval": {"required": 2, "approvers": ["bob", "carol"],
                                        "ttl_seconds": 600}}}, token=self.admin)
        self.assertError(self.poll(aid), 409, "approval_policy_changed")

    def test_caller_address_is_decided_at_collection(self):
        aid = self.request("rn-ec", "network")
        self.approve(aid)
        # The rule now allows another network only: this caller's 127.0.0.1 is out.
        self.server.call("PUT", "/api/v1/admin/policies/netbound", self.net_rule(["10.0.0.0/8"]),
                         token=self.admin)
        self.assertError(self.poll(aid), 403, "network_not_allowed")

    def test_approved_request_expires(self):
        s = self.server
        aid = self.request("rx-ec", "expiring")
        self.approve(aid)
        # Approved a day and a second ago (approval_collect_ttl defaults to 86400 s).
        with s.db() as db:
            cur = db.execute("UPDATE approval_requests SET decided_at = decided_at - 86401"
                             " WHERE id = ?", (aid,))
            self.assertEqual(cur.rowcount, 1)
        r = self.poll(aid)
        self.assertError(r, 410, "approval_expired")
        self.assertIn("not collected within 86400 s", r.json["error"]["message"])

    def test_reject_requires_a_reason(self):
        s = self.server
        aid = self.request("rj-ec", "reject me")
        url = "/api/v1/approvals/%s/reject" % aid
        self.assertError(s.request("POST", url, token=self.tok["bob"]), 400, "reason_required")
        self.assertError(s.request("POST", url, {}, token=self.tok["bob"]), 400,
                         "reason_required")
        self.assertError(s.request("POST", url, {"reason": "  "}, token=self.tok["bob"]), 400,
                         "reason_required")
        # Still pending: a refused rejection changed nothing.
        self.assertEqual(self.poll(aid).status, 202)
        last = s.audit_last_seq()
        r = s.request("POST", url, {"reason": "not a release build"}, token=self.tok["bob"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["status"], r.json["reason"]), ("rejected", "not a release build"))
        rec = [x for x in s.audit_show(after=last) if x["action"] == "approval.reject"]
        self.assertEqual(len(rec), 1, rec)
        self.assertEqual(rec[0]["detail"]["reason"], "not a release build")
        with s.db() as db:
            row = db.execute("SELECT decision, reason FROM approval_votes WHERE request_id = ?",
                             (aid,)).fetchone()
        self.assertEqual(row, ("reject", "not a release build"))
        self.assertError(self.poll(aid), 403, "approval_rejected")

    def test_retry_after_quota_spent_gets_the_stored_signature(self):
        s = self.server
        r1 = s.sign_request(self.tok["alice"], "rt-ec", "ecdsa", "sha256",
                            digest=digest("retry"), request_id="rel-42")
        self.assertEqual(r1.status, 200, r1)
        # The quota of one is spent now; a retry is not a new signature.
        r2 = s.sign_request(self.tok["alice"], "rt-ec", "ecdsa", "sha256",
                            digest=digest("retry"), request_id="rel-42")
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json["signature"], r1.json["signature"])
        self.assertEqual(r2.json["audit_id"], r1.json["audit_id"])
        # Another digest under the same id is refused as before.
        r3 = s.sign_request(self.tok["alice"], "rt-ec", "ecdsa", "sha256",
                            digest=digest("other"), request_id="rel-42")
        self.assertError(r3, 409, "request_id_conflict")
        # And a new request id is held to the quota.
        r4 = s.sign_request(self.tok["alice"], "rt-ec", "ecdsa", "sha256",
                            digest=digest("retry"), request_id="rel-43")
        self.assertError(r4, 429, "quota_exceeded")


if __name__ == "__main__":
    unittest.main(verbosity=2)
