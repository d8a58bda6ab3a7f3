"""Usage: signatures and denials counted per day, key and signer (one row per day, key and
signer, never a row per signature), read through GET /api/v1/admin/usage with filters; and a
key's usage limit, at which it stops signing with key_usage_limit, exactly, under concurrent
requests."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase, b64  # noqa: E402


class UsageTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        for key in ("us-a", "us-b"):
            s.create_key(key, "ec-p256")
        cls.tok = {}
        for user in ("us-ann", "us-bob"):
            cls.tok[user] = s.token_for(s.create_user(user))
            s.grant("us-a", user)
        s.grant("us-b", "us-ann")

    def sign(self, user, key, n=0, digests=None):
        d = HASHES["sha256"](b"usage %s %s %d" % (user.encode(), key.encode(), n)).digest()
        body = {"key": key, "mechanism": "ecdsa", "hash": "sha256"}
        if digests:
            body["digests"] = [b64(HASHES["sha256"](b"%d %d" % (n, i)).digest())
                               for i in range(digests)]
        else:
            body["digest"] = b64(d)
        return self.server.request("POST", "/api/v1/sign", body, token=self.tok[user])

    def usage(self, **params):
        q = "&".join("%s=%s" % kv for kv in params.items())
        return self.server.call("GET", "/api/v1/admin/usage" + ("?" + q if q else ""),
                                token=self.server.admin_token())

    def test_counted_per_day_key_and_signer(self):
        s = self.server
        for i in range(3):
            self.assertEqual(self.sign("us-ann", "us-a", i).status, 200)
        self.assertEqual(self.sign("us-ann", "us-a", 9, digests=4).status, 200)
        self.assertEqual(self.sign("us-bob", "us-a", 0).status, 200)
        self.assertEqual(self.sign("us-bob", "us-b", 0).status, 403)  # no grant: a denial
        self.assertEqual(self.sign("us-bob", "us-b", 1).status, 403)
        rows = self.usage(key="us-a")["usage"]
        today = time.strftime("%Y-%m-%d", time.gmtime())
        self.assertEqual({(r["day"], r["signer"]): (r["signatures"], r["denials"]) for r in rows},
                         {(today, "us-ann"): (7, 0), (today, "us-bob"): (1, 0)})
        got = self.usage(key="us-b", signer="us-bob")
        self.assertEqual([(r["signatures"], r["denials"]) for r in got["usage"]], [(0, 2)])
        self.assertEqual(got["totals"], {"signatures": 0, "denials": 2})
        # Cheap: one row per day, key and signer, whatever the number of signatures.
        with s.db() as db:
            n = db.execute("SELECT count(*) FROM usage_daily u JOIN keys k ON k.id = u.key_id"
                           " WHERE k.name = 'us-a'").fetchone()[0]
        self.assertEqual(n, 2)

    def test_filters_and_bad_parameters(self):
        self.assertEqual(self.sign("us-ann", "us-b", 5).status, 200)
        self.assertEqual(self.usage(key="us-b", **{"from": "2000-01-01", "to": "2000-01-31"})
                         ["usage"], [])
        for qs in ("from=yesterday", "to=2026-13-01", "from=2026-02-02&to=2026-01-01",
                   "key=", "limit=0", "key=a&key=b"):
            with self.subTest(case=qs):
                r = self.server.request("GET", "/api/v1/admin/usage?" + qs,
                                        token=self.server.admin_token())
                self.assertError(r, 400, "invalid_field")
        r = self.server.request("GET", "/api/v1/admin/usage", token=self.tok["us-ann"])
        self.assertError(r, 403, "forbidden")

    def test_usage_limit_is_exact_under_concurrency(self):
        s = self.server
        s.create_key("us-lim", "ec-p256")
        s.grant("us-lim", "us-ann")
        self.assertEqual(self.sign("us-ann", "us-lim", 0).status, 200)
        out = s.call("PUT", "/api/v1/admin/keys/us-lim/usage-limit",
                     {"limit": 10, "reason": "test signing budget"}, token=s.admin_token())
        self.assertEqual((out["usage_limit"], out["signatures_total"]), (10, 1))
        results, lock = [], threading.Lock()

        def client(t):
            for i in range(6):
                r = self.sign("us-ann", "us-lim", 100 * t + i)
                with lock:
                    results.append((r.status, r.error_code))

        threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        ok = [x for x in results if x[0] == 200]
        refused = [x for x in results if x[0] != 200]
        self.assertEqual(len(results), 24)
        self.assertEqual(len(ok), 9, "exactly the limit's remaining 9 signatures")
        self.assertTrue(all(x == (403, "key_usage_limit") for x in refused), refused)
        # A batch that would cross the limit is refused whole.
        s.call("PUT", "/api/v1/admin/keys/us-lim/usage-limit",
               {"limit": 12, "reason": "two more"}, token=s.admin_token())
        self.assertError(self.sign("us-ann", "us-lim", 999, digests=3), 403, "key_usage_limit")
        self.assertEqual(self.sign("us-ann", "us-lim", 998, digests=2).status, 200)
        # Lifting the limit lets it sign again; every change was audited with its reason.
        s.call("PUT", "/api/v1/admin/keys/us-lim/usage-limit",
               {"limit": None, "reason": "budget lifted"}, token=s.admin_token())
        self.assertEqual(self.sign("us-ann", "us-lim", 997).status, 200)
        recs = [r for r in s.audit_show() if r["action"] == "key.usage_limit"]
        self.assertEqual([r["detail"]["reason"] for r in recs],
                         ["test signing budget", "two more", "budget lifted"])
        for body in ({"limit": -1, "reason": "x"}, {"limit": "ten", "reason": "x"},
                     {"limit": 5}, {"reason": "x"}):
            with self.subTest(body=body):
                r = s.request("PUT", "/api/v1/admin/keys/us-lim/usage-limit", body,
                              token=s.admin_token())
                self.assertError(r, 400, "invalid_field")


if __name__ == "__main__":
    unittest.main(verbosity=2)
