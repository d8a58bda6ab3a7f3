"""Alerts on two nodes sharing one PostgreSQL database (docs/alerts.md, "in a cluster"): both
nodes evaluate the same audit log and both run a webhook sender. A burst of signatures
through both nodes raises one alert (the shared engine cursor and the cool-downs read from the
shared outbox), and the webhook receives that alert: its id once at least, no other id, the
HMAC good; the shared cursor ends past it.

PostgreSQL comes from the pg.start fixture ($SIGNUM_TEST_PG) or is started here."""

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
from cluster_harness import Cluster, wait  # noqa: E402
from signum_harness import HASHES  # noqa: E402
from test_alerts import SECRET, Receiver, free_port  # noqa: E402

SIGNATURES = 12


class AlertsClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="signum-alerts-cluster-")
        cls.addClassCleanup(shutil.rmtree, cls.root, ignore_errors=True)
        cls.receiver = Receiver(free_port())
        cls.receiver.start()
        cls.addClassCleanup(cls.receiver.stop)
        secret = os.path.join(cls.root, "webhook.secret")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(SECRET)
        conf = os.path.join(cls.root, "alerts.json")
        with open(conf, "w") as f:
            json.dump({"backoff_max_seconds": 1,
                       "rules": [{"name": "burst", "type": "sign_count", "threshold": 3}],
                       "webhooks": [{"url": "http://127.0.0.1:%d/" % cls.receiver.port,
                                     "secret_file": secret}]}, f)
        cls.dbname = "alerts_%d_%d" % (os.getpid(), int(time.monotonic() * 1000))
        cls.cluster = Cluster(cls.root, 2, pg_root=os.environ.get("SIGNUM_TEST_PG"),
                              dbname=cls.dbname, conf={"alerts_config": conf})
        cls.addClassCleanup(cls.cluster.cleanup)
        cls.nodes = cls.cluster.nodes

    def query(self, sql):
        db = pg_harness.PgDb(self.cluster.pg_root, self.dbname)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def test_one_alert_from_two_nodes(self):
        n1, n2 = self.nodes
        api_key = n1.create_user("burster")
        n1.create_key("al-ec", "ec-p256")
        n1.grant("al-ec", "burster")
        tokens = [n.token_for(api_key) for n in (n1, n2)]
        for i in range(SIGNATURES):
            node = self.nodes[i % 2]
            node.sign(tokens[i % 2], "al-ec", "ecdsa", "sha256",
                      HASHES["sha256"](b"cluster-%d" % i).digest())
        # Both engines have read the whole burst: the shared cursor is past it.
        last = int(self.query("SELECT max(seq) FROM audit WHERE action = 'sign'")[0][0])

        def engine_cursor():
            rows = self.query("SELECT seq FROM export_cursors WHERE sink = 'alerts:engine'")
            return rows and int(rows[0][0]) >= last
        wait(engine_cursor, "the engine cursor past the burst", 30)
        rows = [(int(i), e, r) for i, e, r in
                self.query("SELECT id, event_id, rule FROM alerts ORDER BY id")]
        self.assertEqual([r for _, _, r in rows], ["burst"], rows)
        wait(lambda: self.receiver.received(), "the webhook delivery", 30)

        def cursor_past():
            c = self.query("SELECT seq FROM export_cursors WHERE sink LIKE 'webhook:%'")
            return c and int(c[0][0]) >= rows[0][0]
        wait(cursor_past, "the shared webhook cursor past the alert", 30)
        got = self.receiver.received()
        self.assertEqual({g[0] for g in got}, {rows[0][1]})
        self.assertTrue(all(g[2] for g in got), "bad HMAC")
        sys.stderr.write("\n%d delivery(ies) of the one alert from 2 nodes\n" % len(got))


if __name__ == "__main__":
    unittest.main(verbosity=2)
