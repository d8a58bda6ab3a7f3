"""One state for the whole cluster: three signum-server nodes on one PostgreSQL database and one
networked token (p11-kit server exporting SoftHSMv2), as in test_cluster.py, checked for what
must not differ between nodes.

- A change made through node 1 applies to node 2's very next request: a user disabled
  through node 1 is refused by node 2 at once (401 token_invalid), and so is a deny rule
  added through node 1 (403 policy_denied_rule). There is no per-node cache of identities,
  tokens or policy rules to invalidate: every request reads them from the shared database
  (the server keeps only prepared statements and the HSM's object handles per node), so
  there is nothing a node could serve stale.
- A request_id is idempotent across nodes: the same request sent to node 1, then node 2,
  then node 3 gets the identical signature bytes (ECDSA: a second signing would give other
  bytes) and exactly one audit record.
- Checkpoints are signed once per interval for the whole cluster: with
  audit_checkpoint_seconds = 1 and all three nodes signing for about 5 s, the chain gets
  about 5 interval checkpoints (at most one per elapsed second, plus one), not ~15.

PostgreSQL comes from the pg.start fixture ($SIGNUM_TEST_PG) or is started here."""

import datetime
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

import pg_harness  # noqa: E402
from cluster_harness import Cluster  # noqa: E402
from signum_harness import b64, unb64  # noqa: E402

LOAD_SECONDS = 5.0   # the checkpoint window
LOAD_MAX = 600       # sign requests in it, at most (bounded whatever the speed)


class SharedStateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="signum-shared-state-")
        cls.addClassCleanup(shutil.rmtree, cls.root, ignore_errors=True)
        cls.dbname = "shared_%d_%d" % (os.getpid(), int(time.monotonic() * 1000))
        cls.cluster = Cluster(cls.root, 3, pg_root=os.environ.get("SIGNUM_TEST_PG"),
                              dbname=cls.dbname, conf={"audit_checkpoint_seconds": "1"})
        cls.addClassCleanup(cls.cluster.cleanup)
        cls.nodes = cls.cluster.nodes
        n1 = cls.nodes[0]
        n1.create_key("ss-ec", "ec-p256")

    def query(self, sql):
        return pg_harness.PgDb(self.cluster.pg_root, self.dbname).execute(sql).fetchall()

    def user(self, name):
        """A user granted ss-ec, with an access token from each node."""
        n1 = self.nodes[0]
        api_key = n1.create_user(name)
        n1.grant("ss-ec", name)
        return [n.token_for(api_key) for n in self.nodes]

    def sign(self, node, token, data, rid=None):
        body = {"key": "ss-ec", "mechanism": "ecdsa", "hash": "sha256",
                "digest": b64(hashlib.sha256(data).digest())}
        if rid:
            body["request_id"] = rid
        return node.request("POST", "/api/v1/sign", body, token=token)

    def test_disable_through_node1_refused_by_node2_next(self):
        n1, n2, _ = self.nodes
        tokens = self.user("dora")
        # Node 2 has served dora (whatever it might keep, it has it now).
        for i in range(3):
            r = self.sign(n2, tokens[1], b"dora %d" % i)
            self.assertEqual(r.status, 200, r)
        r = n1.request("POST", "/api/v1/admin/users/dora/disable", {"reason": "cluster test"},
                       token=n1.admin_token())
        self.assertEqual(r.status, 200, r)
        # The very next request on node 2, no waiting.
        r = self.sign(n2, tokens[1], b"dora after")
        self.assertEqual((r.status, r.error_code), (401, "token_invalid"), r)
        r = self.sign(self.nodes[2], tokens[2], b"dora after 3")
        self.assertEqual((r.status, r.error_code), (401, "token_invalid"), r)

    def test_deny_rule_through_node1_refused_by_node2_next(self):
        n1, n2, _ = self.nodes
        tokens = self.user("eve")
        for i in range(3):
            r = self.sign(n2, tokens[1], b"eve %d" % i)
            self.assertEqual(r.status, 200, r)
        r = n1.request("POST", "/api/v1/admin/policies", {
            "name": "deny-eve", "effect": "deny", "priority": 500,
            "subjects": {"users": ["eve"]}, "keys": {"names": ["ss-ec"]}},
            token=n1.admin_token())
        self.assertEqual(r.status, 201, r)
        r = self.sign(n2, tokens[1], b"eve after")
        self.assertEqual((r.status, r.error_code), (403, "policy_denied_rule"), r)
        # And lifted through node 3: node 2 signs again at once.
        r = self.nodes[2].request("DELETE", "/api/v1/admin/policies/deny-eve",
                                  token=self.nodes[2].admin_token())
        self.assertEqual(r.status, 200, r)
        r = self.sign(n2, tokens[1], b"eve lifted")
        self.assertEqual(r.status, 200, r)

    def test_request_id_idempotent_across_nodes(self):
        tokens = self.user("finn")
        answers = [self.sign(n, tokens[i], b"finn once", rid="finn-once-1")
                   for i, n in enumerate(self.nodes)]
        for r in answers:
            self.assertEqual(r.status, 200, r)
        sigs = [unb64(r.json["signature"]) for r in answers]
        self.assertEqual(sigs[1], sigs[0])
        self.assertEqual(sigs[2], sigs[0])
        # Another request_id with the same digest is a new signature (ECDSA's nonce): the
        # equality above is the replay, not the algorithm.
        other = self.sign(self.nodes[1], tokens[1], b"finn once", rid="finn-once-2")
        self.assertEqual(other.status, 200, other)
        self.assertNotEqual(unb64(other.json["signature"]), sigs[0])
        rows = self.query("SELECT record FROM audit WHERE action = 'sign'"
                          " AND record LIKE '%finn-once-1%'")
        recs = [json.loads(r[0]) for r in rows]
        recs = [r for r in recs if r["detail"].get("request_id") == "finn-once-1"]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["outcome"], "allowed")

    def test_one_checkpoint_per_interval_for_the_cluster(self):
        tokens = self.user("gus")
        before = self.checkpoint_times()
        t0 = time.time()
        n = 0
        while time.time() - t0 < LOAD_SECONDS and n < LOAD_MAX:
            i = n % 3
            r = self.sign(self.nodes[i], tokens[i], b"gus %d" % n)
            self.assertEqual(r.status, 200, r)
            n += 1
        elapsed = time.time() - t0
        # The last interval's checkpoint falls due up to a second after the last record.
        time.sleep(1.5)
        new = [t for t in self.checkpoint_times() if t not in before and t >= t0]
        intervals = int(elapsed) + 1
        sys.stderr.write("\n%d signatures through 3 nodes in %.1f s: %d interval checkpoints "
                         "(at most %d allowed; one per node per interval would be ~%d)\n"
                         % (n, elapsed, len(new), intervals + 1, 3 * intervals))
        self.assertGreaterEqual(len(new), int(elapsed) - 1, "checkpoints stopped")
        self.assertLessEqual(len(new), intervals + 1)

    def checkpoint_times(self):
        """When (Unix seconds) every interval or records checkpoint of the chain was signed."""
        out = []
        for (payload,) in self.query("SELECT payload FROM audit_checkpoints ORDER BY seq"):
            p = json.loads(payload)
            if p["reason"] != "shutdown":
                t = datetime.datetime.strptime(p["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
                out.append(t.replace(tzinfo=datetime.timezone.utc).timestamp())
        return out


if __name__ == "__main__":
    unittest.main(verbosity=2)
