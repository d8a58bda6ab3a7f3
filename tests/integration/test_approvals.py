"""M-of-N approval against a real server: a sign request that a rule holds for approval is
pending, M distinct approvers approve it, the requester polls and gets a signature that
openssl verifies; self-approval, double approval, outsiders, rejection and expiry are refused;
every step is in the audit log."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import (HASHES, ServerTestCase, b64, ecdsa_raw_to_der,  # noqa: E402
                            unb64)

MSG = b"release 1.2.3"
DIGEST = HASHES["sha256"](MSG).digest()


class ApprovalTest(ServerTestCase):
    @classmethod
    def prepare(cls):
        s = cls.server
        cls.key = s.create_key("appr-ec", "ec-p256")
        s.create_key("appr-short", "ec-p256")
        cls.tok = {}
        for name in ("alice", "bob", "carol", "dave", "eve"):
            cls.tok[name] = s.token_for(s.create_user(name, "signer"))
        admin = s.admin_token()
        s.call("PUT", "/api/v1/admin/groups/security", {"members": ["dave"]}, token=admin)
        s.call("POST", "/api/v1/admin/policies", {
            "name": "two-of-three", "effect": "allow",
            "subjects": {"users": ["alice", "bob"]}, "keys": {"names": ["appr-ec"]},
            "conditions": {"approval": {"required": 2, "approvers": ["alice", "bob", "carol"],
                                        "groups": ["security"], "ttl_seconds": 600}}},
            token=admin, expect=201)
        s.call("POST", "/api/v1/admin/policies", {
            "name": "short-lived", "effect": "allow",
            "subjects": {"users": ["alice"]}, "keys": {"names": ["appr-short"]},
            "conditions": {"approval": {"required": 1, "approvers": ["bob"],
                                        "ttl_seconds": 1}}},
            token=admin, expect=201)

    def request_signature(self, key="appr-ec", who="alice", digest=DIGEST):
        r = self.server.sign_request(self.tok[who], key, "ecdsa", "sha256", digest=digest)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json["status"], "pending")
        self.assertRegex(r.json["approval_id"], r"^[0-9a-f]{32}$")
        self.assertNotIn("signature", r.json)
        return r.json["approval_id"]

    def vote(self, who, aid, decision="approve"):
        # A rejection must give a reason (issue 14).
        body = {"reason": "rejected by the test"} if decision == "reject" else None
        return self.server.request("POST", "/api/v1/approvals/%s/%s" % (aid, decision), body,
                                   token=self.tok[who])

    def poll(self, aid, who="alice"):
        return self.server.request("GET", "/api/v1/sign/requests/" + aid, token=self.tok[who])

    def test_quorum_then_signature(self):
        s = self.server
        last = s.audit_last_seq()
        aid = self.request_signature()
        r = self.poll(aid)
        self.assertEqual(r.status, 202, r)
        self.assertEqual((r.json["status"], r.json["approvals"], r.json["required"]),
                         ("pending", 0, 2))
        # The requester is a named approver, yet never approves their own request.
        self.assertError(self.vote("alice", aid), 403, "self_approval_forbidden")
        # Outsiders are refused; approvers see it in their list.
        self.assertError(self.vote("eve", aid), 403, "not_an_approver")
        listed = s.call("GET", "/api/v1/approvals", token=self.tok["carol"])["approvals"]
        self.assertIn(aid, [a["approval_id"] for a in listed])
        mine = s.call("GET", "/api/v1/approvals", token=self.tok["alice"])["approvals"]
        self.assertNotIn(aid, [a["approval_id"] for a in mine])
        r = self.vote("bob", aid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["status"], r.json["approvals"]), ("pending", 1))
        self.assertError(self.vote("bob", aid), 409, "already_decided")
        self.assertEqual(self.poll(aid).status, 202)
        # The second distinct approver (through the group) meets the quorum.
        r = self.vote("dave", aid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["status"], r.json["approvals"]), ("approved", 2))
        self.assertError(self.vote("carol", aid), 409, "approval_closed")
        r = self.poll(aid)
        self.assertEqual(r.status, 200, r)
        sig = unb64(r.json["signature"])
        self.assertEqual(r.json["approval_id"], aid)
        o = s.openssl
        pub = o("pkey", "-pubin", "-inform", "DER", "-in",
                o.tmp(unb64(self.key["public_key"]))).stdout
        ok, out = o.verify_digest_sig(pub, "sha256", MSG, ecdsa_raw_to_der(sig))
        self.assertTrue(ok, out)
        # Polling again hands out the same signature; nothing is signed twice.
        again = self.poll(aid)
        self.assertEqual(again.status, 200)
        self.assertEqual(again.json["signature"], r.json["signature"])
        # Another user cannot poll it.
        self.assertError(self.poll(aid, who="bob"), 404, "not_found")
        # Every step is audited.
        recs = s.audit_show(after=last)
        steps = [(x["action"], x["outcome"], x["actor"]) for x in recs
                 if x["detail"].get("approval_id") == aid
                 or x["detail"].get("policy", {}).get("approval_id") == aid]
        self.assertIn(("approval.request", "pending", "user:alice"), steps)
        self.assertIn(("approval.approve", "ok", "user:bob"), steps)
        self.assertIn(("approval.approve", "ok", "user:dave"), steps)
        signs = [x for x in recs if x["action"] == "sign" and x["outcome"] == "allowed"]
        self.assertEqual(len(signs), 1, signs)
        self.assertEqual(signs[0]["detail"]["policy"], {"rule": "two-of-three",
                                                        "approval_id": aid})
        denied = [x["detail"]["code"] for x in recs if x["outcome"] == "denied"]
        for code in ("self_approval_forbidden", "not_an_approver", "already_decided",
                     "approval_closed"):
            self.assertIn(code, denied)
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)

    def test_rejection(self):
        aid = self.request_signature(digest=HASHES["sha256"](b"reject me").digest())
        r = self.vote("carol", aid, "reject")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "rejected")
        self.assertError(self.poll(aid), 403, "approval_rejected")
        self.assertError(self.vote("bob", aid), 409, "approval_closed")

    def test_retry_with_request_id_keeps_one_request(self):
        s = self.server
        d = HASHES["sha256"](b"retry").digest()
        r1 = s.sign_request(self.tok["alice"], "appr-ec", "ecdsa", "sha256", digest=d,
                            request_id="rel-7")
        r2 = s.sign_request(self.tok["alice"], "appr-ec", "ecdsa", "sha256", digest=d,
                            request_id="rel-7")
        self.assertEqual((r1.status, r2.status), (202, 202))
        self.assertEqual(r1.json["approval_id"], r2.json["approval_id"])

    def test_expiry(self):
        aid = self.request_signature(key="appr-short")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = self.poll(aid)
            if r.status != 202:
                break
            time.sleep(0.25)
        self.assertError(r, 410, "approval_expired")
        self.assertError(self.vote("bob", aid), 410, "approval_expired")
        listed = self.server.call("GET", "/api/v1/approvals", token=self.tok["bob"])
        self.assertNotIn(aid, [a["approval_id"] for a in listed["approvals"]])

    def test_unknown_request(self):
        self.assertError(self.vote("bob", "0" * 32), 404, "not_found")
        self.assertError(self.poll("0" * 32), 404, "not_found")


if __name__ == "__main__":
    unittest.main(verbosity=2)
