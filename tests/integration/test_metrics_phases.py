"""The server's per-phase timers at /metrics (signum_phase_seconds{phase=...}): every phase of
the sign path counts exactly one per request that handed out a signature, and nothing else;
the parts never add up to more than the total; TLS handshakes and fsyncs are counted per event
(an fsync per group commit: the audit record is durable before the signature leaves).
With the opt-in audit_sync = normal, commits are not synced (and the server warns).
Counts and logical relations only, no timing thresholds."""

import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import ServerTestCase  # noqa: E402

REQUEST_PHASES = ["http_read", "queue_wait", "auth", "parse", "policy", "audit_build",
                  "hsm_sign", "writer_wait", "audit_write", "db_commit", "db_sync",
                  "writer_wake", "response_build", "reply_wait", "reply_send", "total"]


def phase(m, name, kind):
    key = 'signum_phase_seconds_%s{phase="%s"}' % (kind, name)
    if key not in m:
        raise AssertionError("/metrics has no %s" % key)
    return m[key]


class PhaseMetricsTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("p256", "ec-p256")
        s.create_key("r2048", "rsa2048")
        s.create_key("other", "ec-p256")
        key = s.create_user("alice", "signer")
        s.grant("p256", "alice")
        s.grant("r2048", "alice")
        cls.token = s.token_for(key)

    def delta(self, before, after, name, kind):
        return phase(after, name, kind) - phase(before, name, kind)

    def test_phases_count_each_signing_request_once(self):
        s = self.server
        d = hashlib.sha256(b"phase timers").digest()
        before = s.metrics()
        for _ in range(5):
            s.sign(self.token, "p256", "ecdsa", "sha256", digest=d)
        for _ in range(3):
            s.sign(self.token, "r2048", "rsa-pkcs1", "sha256", digest=d)
        s.sign(self.token, "p256", "ecdsa", "sha256", digests=[d] * 4)  # one request
        s.sign(self.token, "p256", "ecdsa", "sha256", digest=d, request_id="phase-1")
        # Neither a refusal nor an idempotent replay hands out a new signature: not counted.
        r = s.sign_request(self.token, "other", "ecdsa", "sha256", digest=d)
        self.assertEqual(r.status, 403, r)
        r = s.sign_request(self.token, "p256", "ecdsa", "sha256", digest=d[:20])
        self.assertEqual(r.status, 400, r)
        s.sign(self.token, "p256", "ecdsa", "sha256", digest=d, request_id="phase-1")
        s.request("GET", "/healthz")
        after = s.metrics()

        requests = 5 + 3 + 1 + 1
        self.assertEqual(after["signum_signatures_total"] - before["signum_signatures_total"],
                         5 + 3 + 4 + 1)
        parts = 0.0
        for name in REQUEST_PHASES:
            self.assertEqual(self.delta(before, after, name, "count"), requests, name)
            spent = self.delta(before, after, name, "sum")
            self.assertGreaterEqual(spent, 0.0, name)
            if name != "total":
                parts += spent
        total = self.delta(before, after, "total", "sum")
        self.assertGreater(total, 0.0)
        self.assertGreater(self.delta(before, after, "hsm_sign", "sum"), 0.0)
        # The phases are disjoint intervals inside the total (printed with 1 ns resolution).
        self.assertLessEqual(parts, total + 1e-6 * len(REQUEST_PHASES))

    def test_every_commit_syncs(self):
        s = self.server
        d = hashlib.sha256(b"durable").digest()
        before = s.metrics()
        for _ in range(4):
            s.sign(self.token, "p256", "ecdsa", "sha256", digest=d)
        after = s.metrics()
        commits = after["signum_db_commits_total"] - before["signum_db_commits_total"]
        syncs = self.delta(before, after, "fsync", "count")
        self.assertGreaterEqual(commits, 4)
        if s.pg_db:
            # On PostgreSQL the WAL flush is the database server's, inside the commit's round
            # trip (synchronous_commit): no local fsync, so db_sync stays 0 and db_commit
            # holds it.
            self.assertEqual(syncs, 0)
            self.assertGreater(self.delta(before, after, "db_commit", "sum"), 0.0)
            return
        # synchronous=FULL in WAL mode: at least one fsync/fdatasync per commit.
        self.assertGreaterEqual(syncs, commits)
        self.assertGreater(self.delta(before, after, "db_sync", "sum"), 0.0)

    def test_tls_handshakes_timed_per_connection(self):
        s = self.server
        before = s.metrics()
        for _ in range(3):
            s.request("GET", "/healthz")  # a new connection each
        after = s.metrics()
        handshakes = (after["signum_tls_handshakes_total"] -
                      before["signum_tls_handshakes_total"])
        self.assertGreaterEqual(handshakes, 4)  # three, and the second /metrics
        self.assertEqual(self.delta(before, after, "tls_handshake", "count"), handshakes)


    def test_default_config_syncs_in_full(self):
        with open(self.server.conf_path) as f:
            self.assertIn("\naudit_sync = full\n", f.read())


class RelaxedSyncTest(ServerTestCase):
    """audit_sync = normal (opt-in): signing commits without an fsync."""
    server_options = {"ca_key_type": "ec-p256", "conf": {"audit_sync": "normal"}}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("p256", "ec-p256")
        key = s.create_user("bob", "signer")
        s.grant("p256", "bob")
        cls.token = s.token_for(key)

    def test_commits_without_fsync_and_warns(self):
        s = self.server
        d = hashlib.sha256(b"relaxed").digest()
        before = s.metrics()
        for _ in range(4):
            s.sign(self.token, "p256", "ecdsa", "sha256", digest=d)
        after = s.metrics()
        commits = after["signum_db_commits_total"] - before["signum_db_commits_total"]
        self.assertGreaterEqual(commits, 4)
        # No WAL checkpoint happens this early (1000 pages), so no sync at all.
        self.assertEqual(phase(after, "fsync", "count") - phase(before, "fsync", "count"), 0)
        self.assertIn("audit_sync = normal", s.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
