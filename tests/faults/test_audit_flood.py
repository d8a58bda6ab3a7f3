"""Audit volume under an anonymous flood (issue 14, defect 6).

An unauthenticated client may not grow the audit log without bound: paths and fields it
controls are truncated, repeats of one (source address, outcome code) beyond a small burst are
counted into one aggregated, chained record flushed by time, and each source address (and all
of them together) has a ceiling of individual records per window. A single failed
authentication is still recorded at once, naming its source.

Measured: audit bytes per request (new record text + hash, and main database growth after a
WAL checkpoint) for 5,000 anonymous 404s with 15 KB paths and 5,000 bad API-key attempts.
Printed on stderr; the bound asserted is < 200 bytes per request on average."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from signum_harness import ServerTestCase  # noqa: E402

FLOOD = 5000
PATH_BYTES = 15 * 1024  # the request line and headers must fit 16 KB
BOUND = 200          # bytes of audit per anonymous request, on average
WINDOW = 2           # audit_denial_window (s) for this server: aggregates flush quickly
FLOOD_DEADLINE = 300  # s, for one flood loop (the old code needed a synced commit each)


class AuditFloodTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"audit_denial_window": str(WINDOW), "audit_denial_burst": "10"}}

    def audit_bytes(self, after):
        """Bytes of record text and hash in records after seq `after`, and their count."""
        with self.server.db() as db:
            row = db.execute("SELECT coalesce(sum(length(record) + length(hash)), 0), count(*)"
                             " FROM audit WHERE seq > ?", (after,)).fetchone()
        return row[0], row[1]

    def db_bytes(self):
        """Size of the main database file once the WAL is checkpointed into it."""
        with self.server.db() as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            size = db.execute("PRAGMA page_size").fetchone()[0]
        return pages * size

    def flood(self, send):
        """Sends FLOOD requests over one keep-alive connection (reopened if the server closes
        it); returns the statuses seen."""
        s = self.server
        conn = s.connection()
        statuses = {}
        deadline = time.monotonic() + FLOOD_DEADLINE
        try:
            for i in range(FLOOD):
                self.assertLess(time.monotonic(), deadline, "flood too slow at request %d" % i)
                try:
                    r = send(conn)
                except (ConnectionError, OSError):
                    conn.close()
                    conn = s.connection()
                    r = send(conn)
                statuses[r.status] = statuses.get(r.status, 0) + 1
                if (r.headers.get("connection") or "").lower() == "close":
                    conn.close()
                    conn = s.connection()
        finally:
            conn.close()
        return statuses

    def wait_aggregated(self, after, action, code, total):
        """Waits (bounded) until the records after `after` account for `total` requests of
        `code`: individual denial records plus the counts of aggregated ones."""
        deadline = time.monotonic() + 10 * WINDOW + 10
        seen = 0
        while time.monotonic() < deadline:
            seen = 0
            for rec in self.server.audit_show(after=after):
                d = rec["detail"]
                if rec["action"] == action and d.get("code") == code:
                    seen += 1
                elif rec["action"] == "audit.denials" and d.get("code") == code:
                    seen += d["count"]
            if seen >= total:
                return seen
            time.sleep(0.2)
        return seen

    def measure(self, label, send, action, code):
        before_seq = self.server.audit_last_seq()
        before_db = self.db_bytes()
        statuses = self.flood(send)
        accounted = self.wait_aggregated(before_seq, action, code, FLOOD)
        text, records = self.audit_bytes(before_seq)
        grown = self.db_bytes() - before_db
        sys.stderr.write("%s: %d requests %r -> %d records, %d bytes of record text+hash "
                         "(%.1f B/request), database grew %d bytes (%.1f B/request)\n"
                         % (label, FLOOD, statuses, records, text, text / FLOOD, grown,
                            grown / FLOOD))
        return statuses, accounted, text, records, grown

    def test_anonymous_404_flood_is_bounded(self):
        path = "/" + "a" * (PATH_BYTES - 1)

        def send(conn):
            return self.server.request("GET", path, conn=conn)

        statuses, accounted, text, records, grown = self.measure(
            "anonymous 404, 15 KB path", send, "http.request", "not_found")
        self.assertEqual(statuses, {404: FLOOD})
        # Every request is accounted for: singles plus aggregated counts.
        self.assertEqual(accounted, FLOOD)
        self.assertLess(text / FLOOD, BOUND)
        self.assertLess(grown / FLOOD, BOUND)
        # No record holds the whole path.
        for rec in self.server.audit_show(after=self.server.audit_last_seq() - records):
            self.assertLess(len(rec["detail"].get("path", "")), 1024)
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)

    def test_bad_api_key_flood_is_bounded(self):
        body = {"grant_type": "api_key", "api_key": "sgk_000000000000_" + "B" * 43}

        def send(conn):
            return self.server.request("POST", "/api/v1/auth/token", body, conn=conn)

        statuses, accounted, text, records, grown = self.measure(
            "bad API key", send, "auth.token", "bad_credentials")
        self.assertEqual(statuses, {401: FLOOD})
        self.assertEqual(accounted, FLOOD)
        self.assertLess(text / FLOOD, BOUND)
        self.assertLess(grown / FLOOD, BOUND)
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)


class SingleFailureTest(ServerTestCase):
    """One failed authentication is recorded at once (no waiting for a window), with its
    source, and an over-long path in it is truncated on a character boundary with its
    original length."""

    server_options = {"ca_key_type": "ec-p256"}

    def test_one_bad_api_key_is_recorded_at_once(self):
        s = self.server
        last = s.audit_last_seq()
        r = s.request("POST", "/api/v1/auth/token",
                      {"grant_type": "api_key", "api_key": "sgk_000000000000_" + "C" * 43})
        self.assertError(r, 401, "bad_credentials")
        new = s.audit_show(after=last)
        self.assertEqual(len(new), 1, new)
        self.assertEqual((new[0]["action"], new[0]["outcome"], new[0]["actor"]),
                         ("auth.token", "denied", "anonymous"))
        self.assertEqual(new[0]["detail"]["peer"], "127.0.0.1")
        self.assertEqual(new[0]["detail"]["code"], "bad_credentials")

    def test_long_path_truncated_on_a_character_boundary(self):
        s = self.server
        last = s.audit_last_seq()
        # 300 two-byte characters: the cut (256 bytes with the "..." marker) falls in the
        # middle of one, which is left out whole.
        path = "/" + "%C3%A9" * 300
        r = s.request("GET", path)
        self.assertError(r, 404, "not_found")
        new = s.audit_show(after=last)
        self.assertEqual(len(new), 1, new)
        d = new[0]["detail"]
        self.assertEqual(d["path"], "/" + "\u00e9" * 126 + "...")
        self.assertEqual(d["path_length"], 601)
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
