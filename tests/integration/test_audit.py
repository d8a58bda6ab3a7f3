"""The audit log: `audit show --json` format and hash chain, `audit verify` on an intact log and
on copies edited, cut or reordered behind the server's back, and "no audit record, no
signature" while the database is locked."""

import hashlib
import json
import os
import shutil
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import (HASHES, ServerTestCase, ecdsa_raw_to_der, unb64)  # noqa: E402


class AuditChainTest(ServerTestCase):
    """Activity on a live server, then the server stops and every tamper test works on its
    own copy of the state directory."""

    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("au-ec", "ec-p256")
        s.issue_cert("au-ec", "Audit key")
        key = s.create_user("alice", "signer")
        s.grant("au-ec", "alice")
        tok = s.token_for(key)
        for i in range(4):
            s.sign(tok, "au-ec", "ecdsa", "sha256", digest=HASHES["sha256"](b"%d" % i).digest(),
                   request_id="req-%d" % i)
        s.sign(tok, "au-ec", "ecdsa", "sha256",
               digests=[HASHES["sha256"](b"b%d" % i).digest() for i in range(3)])
        r = s.request("POST", "/api/v1/sign", {"key": "nope"}, token=tok)
        assert r.status == 400, r
        s.create_user("late-user", "signer")
        s.stop()
        cls.copies = 0
        with s.db() as db:
            cls.rows = db.execute("SELECT seq, action, outcome, record, hash FROM audit"
                                  " ORDER BY seq").fetchall()

    def copy_state(self):
        """A private copy of the (stopped) server's state directory."""
        type(self).copies += 1
        dst = os.path.join(self.server.root, "copy%d" % self.copies)
        self.server.copy_state(dst)
        rc, out = self.server.audit_verify(state=dst)
        self.assertEqual(rc, 0, "copy not intact before tampering: " + out)
        return dst

    def edit(self, state, *statements):
        with self.server.state_db(state) as conn:
            for sql, args in statements:
                conn.execute(sql, args)

    def seq_of(self, action, outcome=None):
        for seq, act, out, _, _ in self.rows:
            if act == action and (outcome is None or out == outcome):
                return seq
        self.fail("no %s record" % action)

    def assertBroken(self, state, seq):
        rc, out = self.server.audit_verify(state=state)
        self.assertNotEqual(rc, 0, "verify passed a tampered log: " + out)
        self.assertEqual(rc, 1)
        self.assertIn("record %d:" % seq, out, out)
        self.assertNotIn("intact:", out)
        return out

    # -- intact log
    def test_verify_intact(self):
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)
        self.assertIn("intact", out)
        self.assertIn("%d records" % len(self.rows), out)

    def test_show_json_lines_and_chain(self):
        recs = self.server.audit_show()
        self.assertEqual(len(recs), len(self.rows))
        prev = "0" * 64
        for i, (rec, row) in enumerate(zip(recs, self.rows), start=1):
            self.assertEqual(set(rec), {"action", "actor", "detail", "outcome", "prev", "seq",
                                        "time", "hash"})
            self.assertEqual(rec["seq"], i)
            self.assertEqual(rec["prev"], prev, "prev of record %d" % i)
            # The record's own hash is the SHA-256 of its stored canonical text...
            text = row[3]
            self.assertEqual(hashlib.sha256(text.encode()).hexdigest(), rec["hash"])
            self.assertEqual(row[4], rec["hash"])
            # ...which is canonical JSON: members sorted by key, no white space.
            self.assertEqual(text, json.dumps(json.loads(text), sort_keys=True,
                                              separators=(",", ":"), ensure_ascii=False))
            self.assertNotIn("hash", json.loads(text))
            self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            prev = rec["hash"]
        actions = [r["action"] for r in recs]
        self.assertEqual(actions[:4], ["server.init", "user.create", "audit.key.create",
                                       "server.start"])
        self.assertEqual(actions[-1], "server.stop")
        # The plain listing has the same records.
        plain = self.server.cli("audit", "show").stdout.decode().splitlines()
        self.assertEqual(len(plain), len(recs))
        self.assertEqual([int(line.split()[0]) for line in plain], list(range(1, len(recs) + 1)))
        # --after and --limit page through.
        page = self.server.cli("audit", "show", "--json", "--after", "3", "--limit", "2")
        self.assertEqual([json.loads(x)["seq"] for x in page.stdout.decode().splitlines()],
                         [4, 5])

    # -- tampering
    def test_edited_detail_detected(self):
        st = self.copy_state()
        seq = [r[0] for r in self.rows if r[1] == "user.create"][1]  # alice's
        self.edit(st, ("UPDATE audit SET record = replace(record, '\"user\":\"alice\"',"
                       " '\"user\":\"mallory\"') WHERE seq = ?", (seq,)))
        with self.server.state_db(st) as db:
            self.assertIn('"user":"mallory"', db.execute(
                "SELECT record FROM audit WHERE seq = ?", (seq,)).fetchone()[0])
        out = self.assertBroken(st, seq)
        self.assertIn("edited", out)

    def test_edited_outcome_column_detected(self):
        st = self.copy_state()
        seq = self.seq_of("sign", "denied")
        self.edit(st, ("UPDATE audit SET outcome = 'allowed' WHERE seq = ?", (seq,)))
        self.assertBroken(st, seq)

    def test_edit_with_recomputed_hash_detected_by_next_link(self):
        st = self.copy_state()
        seq = self.seq_of("sign", "allowed")
        text = [r[3] for r in self.rows if r[0] == seq][0]
        forged = text.replace('"outcome":"allowed"', '"outcome":"denied"')
        self.assertNotEqual(forged, text)
        self.edit(st, ("UPDATE audit SET record = ?, hash = ?, outcome = 'denied'"
                       " WHERE seq = ?",
                       (forged, hashlib.sha256(forged.encode()).hexdigest(), seq)))
        out = self.assertBroken(st, seq + 1)
        self.assertIn("link", out)

    def test_deleted_middle_row_detected(self):
        st = self.copy_state()
        seq = self.rows[len(self.rows) // 2][0]
        self.edit(st, ("DELETE FROM audit WHERE seq = ?", (seq,)))
        self.assertBroken(st, seq)

    def test_deleted_row_with_renumbering_detected(self):
        st = self.copy_state()
        seq = self.rows[len(self.rows) // 2][0]
        self.edit(st, ("DELETE FROM audit WHERE seq = ?", (seq,)),
                  ("UPDATE audit SET seq = seq - 1 WHERE seq > ?", (seq,)))
        self.assertBroken(st, seq)

    def test_reordered_rows_detected(self):
        st = self.copy_state()
        a = self.rows[len(self.rows) // 2][0]
        b = a + 1
        self.edit(st, ("UPDATE audit SET seq = -1 WHERE seq = ?", (a,)),
                  ("UPDATE audit SET seq = ? WHERE seq = ?", (a, b)),
                  ("UPDATE audit SET seq = ? WHERE seq = -1", (b,)))
        self.assertBroken(st, a)

    def test_swapped_record_texts_detected(self):
        # Reordering by moving the texts (and their hashes) rather than the row numbers.
        st = self.copy_state()
        a = self.rows[3]
        b = self.rows[4]
        self.edit(st, ("UPDATE audit SET action = ?, outcome = ?, record = ?, hash = ?"
                       " WHERE seq = ?", (b[1], b[2], b[3], b[4], a[0])),
                  ("UPDATE audit SET action = ?, outcome = ?, record = ?, hash = ?"
                   " WHERE seq = ?", (a[1], a[2], a[3], a[4], b[0])))
        self.assertBroken(st, a[0])

    def test_original_still_intact(self):
        # The tamper tests worked on copies only.
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)


class AuditUnavailableTest(ServerTestCase):
    """While the test holds SQLite's write lock the server cannot commit an audit record: a
    signature must then be refused (503 audit_unavailable) and never handed out."""

    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.key = s.create_key("au-ec", "ec-p256")
        api_key = s.create_user("alice", "signer")
        s.grant("au-ec", "alice")
        cls.token = s.token_for(api_key)
        s.admin_token()

    def verify(self, msg, raw_sig):
        o = self.server.openssl
        pub = o("pkey", "-pubin", "-inform", "DER",
                "-in", o.tmp(unb64(self.key["public_key"]))).stdout
        return o.verify_digest_sig(pub, "sha256", msg, ecdsa_raw_to_der(raw_sig))

    def sign_records_for(self, digest):
        return [r for r in self.server.audit_show() if r["action"] == "sign"
                and digest.hex() in r["detail"].get("digests", [])]

    def test_locked_database_no_signature(self):
        s = self.server
        s.sign(self.token, "au-ec", "ecdsa", "sha256", digest=HASHES["sha256"](b"warm").digest())
        msg = b"must not be signed while the audit log is locked"
        digest = HASHES["sha256"](msg).digest()
        sigs_before = s.metrics()["signum_signatures_total"]
        users_before = s.db_snapshot()["users"]
        results = {}

        def sign():
            results["sign"] = s.sign_request(self.token, "au-ec", "ecdsa", "sha256",
                                             digest=digest, request_id="locked-1")

        def admin():
            results["admin"] = s.request("POST", "/api/v1/admin/users",
                                         {"name": "while-locked", "role": "signer"},
                                         token=s.admin_token())

        with s.writer_lock():
            t0 = time.monotonic()
            threads = [threading.Thread(target=sign), threading.Thread(target=admin)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(40)
            elapsed = time.monotonic() - t0
            self.assertFalse(any(t.is_alive() for t in threads), "requests did not finish")
        r = results["sign"]
        self.assertError(r, 503, "audit_unavailable")
        self.assertNotIn(b"signature\"", r.body)
        self.assertIn("retry-after", r.headers)
        self.assertGreaterEqual(elapsed, 4.0, "the server waited for the lock (busy timeout)")
        self.assertError(results["admin"], 503, "audit_unavailable")
        # Nothing happened: no user, no signature counted, no allowed record.
        self.assertEqual(s.db_snapshot()["users"], users_before)
        self.assertEqual(s.metrics()["signum_signatures_total"], sigs_before)
        self.assertEqual([r for r in self.sign_records_for(digest) if r["outcome"] == "allowed"],
                         [])
        # Lock released: the same request (same request_id, nothing stored for it) signs now.
        ok = s.sign(self.token, "au-ec", "ecdsa", "sha256", digest=digest,
                    request_id="locked-1")
        good, out = self.verify(msg, unb64(ok["signature"]))
        self.assertTrue(good, out)
        allowed = [r for r in self.sign_records_for(digest) if r["outcome"] == "allowed"]
        self.assertEqual(len(allowed), 1)
        self.assertEqual(allowed[0]["seq"], ok["audit_id"])
        self.assertEqual(s.metrics()["signum_signatures_total"], sigs_before + 1)
        rc, text = s.audit_verify()
        self.assertEqual(rc, 0, text)
        health = s.request("GET", "/healthz")
        self.assertEqual(health.status, 200, health)


if __name__ == "__main__":
    unittest.main(verbosity=2)
