"""The audit query: GET /api/v1/admin/audit filtered by actor, action, outcome, key, request id
and time range, a page at a time behind a cursor; every filter's result is compared with the
whole log filtered here, and bad parameters are refused with a precise error."""

import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase  # noqa: E402


class AuditQueryTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        for key in ("aq-one", "aq-two"):
            s.create_key(key, "ec-p256")
        cls.tokens = {}
        for user in ("aq-ann", "aq-bob"):
            cls.tokens[user] = s.token_for(s.create_user(user))
            s.grant("aq-one", user)
        s.grant("aq-two", "aq-ann")
        cls.before = int(time.time()) - 1
        for i in range(3):
            for user, key in (("aq-ann", "aq-one"), ("aq-ann", "aq-two"), ("aq-bob", "aq-one"),
                              ("aq-bob", "aq-two")):  # bob has no grant on aq-two: denied
                d = HASHES["sha256"](b"aq %d %s %s" % (i, user.encode(), key.encode())).digest()
                s.sign_request(cls.tokens[user], key, "ecdsa", "sha256", d,
                               request_id="rq-%s-%s-%d" % (user, key, i))

    def query(self, **params):
        path = "/api/v1/admin/audit"
        if params:
            path += "?" + urllib.parse.urlencode(params)
        return self.server.request("GET", path, token=self.server.admin_token())

    def walk(self, limit=3, **params):
        """Every record the filter yields, page by page through the cursor."""
        out, after, pages = [], 0, 0
        while True:
            r = self.query(after=after, limit=limit, **params)
            self.assertEqual(r.status, 200, r)
            out += r.json["records"]
            self.assertIsInstance(r.json["next_after"], int)
            self.assertGreaterEqual(r.json["next_after"], after)
            after = r.json["next_after"]
            pages += 1
            self.assertLess(pages, 1000, "the cursor does not advance")
            if not r.json["more"]:
                return out

    def everything(self):
        return self.walk(limit=1000)

    def test_filters_match_the_whole_log_filtered_here(self):
        log = self.everything()
        detail = lambda r, k: (r.get("detail") or {}).get(k)  # noqa: E731
        cases = {
            "actor": ({"actor": "user:aq-ann"}, lambda r: r["actor"] == "user:aq-ann"),
            "action": ({"action": "sign"}, lambda r: r["action"] == "sign"),
            "outcome": ({"outcome": "denied"}, lambda r: r["outcome"] == "denied"),
            "key": ({"key": "aq-two"}, lambda r: detail(r, "key") == "aq-two"),
            "request id": ({"request_id": "rq-aq-bob-aq-one-1"},
                           lambda r: detail(r, "request_id") == "rq-aq-bob-aq-one-1"),
            "actor and key": ({"actor": "user:aq-bob", "key": "aq-two", "action": "sign"},
                              lambda r: r["actor"] == "user:aq-bob" and r["action"] == "sign"
                              and detail(r, "key") == "aq-two"),
        }
        for label, (params, keep) in cases.items():
            with self.subTest(case=label):
                want = [r["seq"] for r in log if keep(r)]
                got = [r["seq"] for r in self.walk(**params)]
                self.assertTrue(want, "the case matches nothing: it would prove nothing")
                self.assertEqual(got, want)
        # Spot checks of what the cases above found.
        self.assertEqual(len(self.walk(key="aq-two", action="sign", outcome="denied")), 3)
        self.assertEqual(len(self.walk(request_id="rq-aq-bob-aq-one-1")), 1)

    def test_time_range(self):
        log = self.everything()
        self.assertEqual([r["seq"] for r in self.walk(since=self.before)],
                         [r["seq"] for r in log if r["time"] >= self.iso(self.before)])
        self.assertEqual(self.walk(until=self.before - 3600 * 24 * 365), [])

    @staticmethod
    def iso(t):
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))

    def test_paging_covers_everything_once(self):
        log = [r["seq"] for r in self.everything()]
        paged = [r["seq"] for r in self.walk(limit=2)]
        self.assertEqual(paged, log)

    def test_bad_parameters(self):
        cases = {
            "after not a number": "after=x",
            "after negative": "after=-1",
            "after past 2^53": "after=9007199254740992",
            "since junk": "since=yesterday",
            "actor twice": "actor=a&actor=b",
            "actor empty": "actor=",
            "actor with NUL": "actor=user%00x",
            "actor with newline": "actor=user%0Ax",
            "broken escape": "actor=user%4",
            "not UTF-8": "actor=%C3%28",
            "actor too long": "actor=" + "a" * 161,
        }
        for label, qs in cases.items():
            with self.subTest(case=label):
                r = self.server.request("GET", "/api/v1/admin/audit?" + qs,
                                        token=self.server.admin_token())
                self.assertError(r, 400, "invalid_field")

    def test_signer_cannot_read_the_log(self):
        r = self.server.request("GET", "/api/v1/admin/audit", token=self.tokens["aq-ann"])
        self.assertError(r, 403, "forbidden")


if __name__ == "__main__":
    unittest.main(verbosity=2)
