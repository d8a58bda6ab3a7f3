"""The key listing's validator (ETag, If-None-Match, empty 304) that lets agents cache it, and
the agent's additions to a sign request's context (uid, agent version)."""

import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase  # noqa: E402

DIGEST = HASHES["sha256"](b"listing").digest()


class KeyListingTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("list-a", "ec-p256")
        s.issue_cert("list-a", "List A")
        cls.carol = s.token_for(s.create_user("carol"))
        cls.dave = s.token_for(s.create_user("dave"))
        s.grant("list-a", "carol")
        s.grant("list-a", "dave")

    def keys(self, token, **headers):
        return self.server.request("GET", "/api/v1/keys", token=token, headers=headers)

    def test_etag_is_a_strong_validator_of_the_body(self):
        r = self.keys(self.carol)
        self.assertEqual(r.status, 200, r)
        etag = r.headers.get("etag")
        self.assertRegex(etag or "", r'^"[0-9a-f]{32}"$')
        self.assertEqual(etag, '"%s"' % hashlib.sha256(r.body).hexdigest()[:32])
        self.assertEqual(self.keys(self.carol).headers["etag"], etag)  # stable

    def test_if_none_match(self):
        r = self.keys(self.carol)
        etag = r.headers["etag"]
        for value in (etag, "W/" + etag, '"0000", ' + etag, '"a,b", ' + etag + ' , "c"', "*"):
            with self.subTest(value=value):
                nm = self.keys(self.carol, **{"If-None-Match": value})
                self.assertEqual(nm.status, 304, nm)
                self.assertEqual(nm.body, b"")
                self.assertEqual(nm.headers.get("etag"), etag)
                self.assertNotIn("content-type", nm.headers)
        for value in ('"0000"', etag[:-2] + '"', etag[1:-1], "W/\"x\"", ""):
            with self.subTest(value=value):
                full = self.keys(self.carol, **{"If-None-Match": value})
                self.assertEqual(full.status, 200, full)
                self.assertEqual(full.body, r.body)

    def test_304_keeps_the_connection_usable(self):
        s = self.server
        etag = self.keys(self.carol).headers["etag"]
        conn = s.connection()
        try:
            for _ in range(3):
                nm = s.request("GET", "/api/v1/keys", token=self.carol, conn=conn,
                               headers={"If-None-Match": etag})
                self.assertEqual(nm.status, 304)
            again = s.request("GET", "/api/v1/keys", token=self.carol, conn=conn)
            self.assertEqual(again.status, 200)
            self.assertTrue(again.json["keys"])
        finally:
            conn.close()

    def test_etag_changes_with_the_listing(self):
        s = self.server
        before = self.keys(self.dave)
        self.assertEqual(before.headers["etag"], self.keys(self.carol).headers["etag"])
        s.create_key("list-b", "ec-p256")
        s.grant("list-b", "dave")
        after = self.keys(self.dave, **{"If-None-Match": before.headers["etag"]})
        self.assertEqual(after.status, 200, after)
        self.assertNotEqual(after.headers["etag"], before.headers["etag"])
        self.assertEqual([k["name"] for k in after.json["keys"]], ["list-a", "list-b"])
        # Carol's listing did not change, so neither did her validator.
        self.assertEqual(self.keys(self.carol, **{"If-None-Match": before.headers["etag"]}).status,
                         304)

    def test_errors_are_never_304(self):
        r = self.server.request("GET", "/api/v1/keys", headers={"If-None-Match": "*"})
        self.assertError(r, 401, "unauthenticated")
        self.assertNotIn("etag", r.headers)

    def test_context_uid_and_agent(self):
        s = self.server
        last = s.audit_last_seq()
        ctx = {"application": "/usr/bin/osslsigncode", "host": "ws-1", "pid": 42, "uid": 1000,
               "agent": "signum-agent/0.1.0", "command_line": "osslsigncode sign"}
        r = s.sign(self.carol, "list-a", "ecdsa", "sha256", digest=DIGEST, context=ctx)
        rec = s.audit_show(after=last)[0]
        self.assertEqual(rec["seq"], r["audit_id"])
        self.assertEqual(rec["detail"]["client"], ctx)
        s.sign(self.carol, "list-a", "ecdsa", "sha256", digest=DIGEST,
               context={"uid": 4294967295, "agent": "a" * 64})
        for bad in ({"uid": -1}, {"uid": 4294967296}, {"uid": "1000"}, {"uid": 1.5},
                    {"agent": "a" * 65}, {"agent": 7}, {"euid": 0}):
            with self.subTest(context=bad):
                r = s.sign_request(self.carol, "list-a", "ecdsa", "sha256", digest=DIGEST,
                                   context=bad)
                self.assertError(r, 400, "unknown_field" if "euid" in bad else "invalid_field")


if __name__ == "__main__":
    unittest.main(verbosity=2)
