"""Signed audit checkpoints: written every N records, every T seconds and at shutdown, signed by
the HSM audit key (checked here independently with openssl), and `audit verify` catching a
forged checkpoint, a log re-signed with another key, and a truncated tail, while saying what it
cannot prove (records after the last checkpoint of a crashed server)."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, SERVER_BIN, ServerTestCase, run  # noqa: E402


class CheckpointTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"audit_checkpoint_records": "10",
                               "audit_checkpoint_seconds": "3600"}}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("cp-ec", "ec-p256")
        api_key = s.create_user("alice", "signer")
        s.grant("cp-ec", "alice")
        tok = s.token_for(api_key)
        for i in range(45):
            s.sign(tok, "cp-ec", "ecdsa", "sha256", digest=HASHES["sha256"](b"%d" % i).digest())
        s.stop()
        with s.db() as db:
            cls.records = db.execute("SELECT seq, hash FROM audit ORDER BY seq").fetchall()
            cls.cps = db.execute("SELECT seq, payload, signature FROM audit_checkpoints"
                                 " ORDER BY seq").fetchall()
        cls.copies = 0

    def copy_state(self):
        type(self).copies += 1
        dst = os.path.join(self.server.root, "copy%d" % self.copies)
        return self.server.copy_state(dst)

    def edit(self, state, *statements):
        with self.server.state_db(state) as conn:
            for sql, args in statements:
                conn.execute(sql, args)

    def verify(self, state=None, *extra):
        proc = run([SERVER_BIN, "audit", "verify", "--state", state or self.server.state] +
                   list(extra))
        return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")

    def assertBrokenAt(self, state, seq, *extra):
        rc, out = self.verify(state, *extra)
        self.assertEqual(rc, 1, out)
        self.assertIn("BROKEN at record %d:" % seq, out)
        return out

    # -- written where they should be
    def test_checkpoints_every_n_and_at_shutdown(self):
        last = self.records[-1][0]
        seqs = [c[0] for c in self.cps]
        reasons = [json.loads(c[1])["reason"] for c in self.cps]
        self.assertEqual(reasons[0], "init")
        self.assertEqual(reasons[-1], "shutdown")
        self.assertEqual(seqs[-1], last, "the shutdown checkpoint covers the head")
        self.assertIn("records", reasons)
        for a, b, r in zip(seqs, seqs[1:], reasons[1:]):
            if r == "records":
                self.assertGreaterEqual(b - a, 10)
                self.assertLess(b - a, 10 + 64, "a group commit holds a few jobs at most")

    def test_verify_intact(self):
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertIn("audit chain intact: %d records, %d signed checkpoints" % (
            len(self.records), len(self.cps)), out)
        self.assertIn("HSM high-water mark: checkpoint at record %d" % self.records[-1][0], out)
        self.assertNotIn("not yet checkpointed", out)
        # Pinned to the exported public key, offline.
        pem = os.path.join(self.server.state, "audit", "audit-key.pem")
        rc, out = self.verify(None, "--offline", "--audit-key", pem)
        self.assertEqual(rc, 0, out)
        self.assertIn("not checked (--offline)", out)

    def test_openssl_verifies_a_checkpoint(self):
        # The signature is plain ECDSA-SHA256 (DER) over the payload: any tool can check it.
        o = self.server.openssl
        pem = os.path.join(self.server.state, "audit", "audit-key.pem")
        seq, payload, sig = self.cps[1]
        good, out = o.verify_digest_sig(open(pem, "rb").read(), "sha256", payload.encode(), sig)
        self.assertTrue(good, out)
        body = json.loads(payload)
        self.assertEqual(body["head"], dict(self.records)[seq])
        self.assertEqual(body["prev_seq"], self.cps[0][0])
        self.assertEqual(body["prev"], hashlib.sha256(self.cps[0][1].encode()).hexdigest())
        self.assertEqual(body["type"], "signum.audit.checkpoint/1")
        # The key lives in the HSM as sensitive, non-extractable.
        # The running server rewrites its HSM high-water mark at each checkpoint; a listing
        # that races with that rewrite can fail, so it is retried a few times (bounded).
        text, errors = "", ""
        for _ in range(10):
            listing = run(["pkcs11-tool", "--module", "/usr/lib/softhsm/libsofthsm2.so",
                           "--token-label", "signum", "--login", "--pin", self.server.user_pin(),
                           "--list-objects", "--type", "privkey"], env=self.server.hsm_env())
            text, errors = listing.stdout.decode(), listing.stderr.decode()
            if listing.returncode == 0 and "signum-audit" in text:
                break
            time.sleep(0.2)
        self.assertIn("signum-audit", text, errors)
        # The object's own section: from its "Private Key Object" line to the next one.
        sections = text.split("Private Key Object")
        block = next(sec for sec in sections if "signum-audit" in sec)
        self.assertIn("sensitive", block)
        self.assertIn("never extractable", block)

    # -- forged checkpoints
    def test_forged_checkpoint_payload(self):
        st = self.copy_state()
        seq, payload, _ = self.cps[2]
        other = self.records[seq - 2][1]
        forged = payload.replace(json.loads(payload)["head"], other)
        self.edit(st, ("UPDATE audit_checkpoints SET payload = ? WHERE seq = ?", (forged, seq)))
        out = self.assertBrokenAt(st, seq)
        self.assertIn("signature does not verify", out)

    def test_forged_checkpoint_signature(self):
        st = self.copy_state()
        seq, _, sig = self.cps[1]
        bad = bytearray(sig)
        bad[-3] ^= 0x55
        self.edit(st, ("UPDATE audit_checkpoints SET signature = ? WHERE seq = ?",
                       (bytes(bad), seq)))
        self.assertBrokenAt(st, seq)

    def test_resigned_with_another_key(self):
        # Whoever can write the database makes a key of their own, edits a record and signs
        # every checkpoint again, consistently. The chain and signatures then hold together;
        # the HSM mark (or a pinned key) still catches it.
        st = self.copy_state()
        o = self.server.openssl
        key = o.tmp(b"", ".key")
        o("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        spki = o("pkey", "-in", key, "-pubout", "-outform", "DER").stdout
        fpr = hashlib.sha256(spki).hexdigest()
        with self.server.state_db(st) as conn:
            conn.execute("UPDATE audit_keys SET spki = ?", (spki,))
            prev_seq, prev_hash = 0, "0" * 64
            for seq, payload, _ in self.cps:
                body = json.loads(payload)
                body.update(key=fpr, prev_seq=prev_seq, prev=prev_hash)
                text = json.dumps(body, sort_keys=True, separators=(",", ":"))
                sig = o("dgst", "-sha256", "-sign", key, input=text.encode()).stdout
                conn.execute("UPDATE audit_checkpoints SET payload = ?, signature = ?"
                             " WHERE seq = ?", (text, sig, seq))
                prev_seq, prev_hash = seq, hashlib.sha256(text.encode()).hexdigest()
        rc, out = self.verify(st, "--offline")
        self.assertEqual(rc, 0, "offline and unpinned, a consistent re-signing passes: " + out)
        last = self.cps[-1][0]
        out = self.assertBrokenAt(st, last)
        self.assertIn("differs from the one the HSM recorded", out)
        pem = os.path.join(self.server.state, "audit", "audit-key.pem")
        out = self.assertBrokenAt(st, self.cps[0][0], "--offline", "--audit-key", pem)
        self.assertIn("pinned audit key", out)

    def test_deleted_middle_checkpoint(self):
        st = self.copy_state()
        seq = self.cps[2][0]
        self.edit(st, ("DELETE FROM audit_checkpoints WHERE seq = ?", (seq,)))
        out = self.assertBrokenAt(st, self.cps[3][0])
        self.assertIn("previous checkpoint", out)

    # -- truncated tails
    def test_truncated_tail_of_checkpointed_records(self):
        st = self.copy_state()
        last = self.records[-1][0]
        self.edit(st, ("DELETE FROM audit WHERE seq > ?", (last - 3,)))
        out = self.assertBrokenAt(st, last - 2, "--offline")
        self.assertIn("tail truncated", out)

    def test_truncated_tail_with_last_checkpoint(self):
        # The last checkpoint and every record after the one before it are deleted: the log
        # looks like an older, consistent one. The HSM's high-water mark still names the
        # deleted checkpoint.
        st = self.copy_state()
        prev_cp = self.cps[-2][0]
        self.edit(st, ("DELETE FROM audit_checkpoints WHERE seq > ?", (prev_cp,)),
                  ("DELETE FROM audit WHERE seq > ?", (prev_cp,)))
        out = self.assertBrokenAt(st, prev_cp + 1)
        self.assertIn("high-water mark", out)
        self.assertIn("tail truncated", out)
        # Without the HSM nothing can tell: verify says so instead of vouching for it.
        rc, out = self.verify(st, "--offline")
        self.assertEqual(rc, 0, out)
        self.assertIn("would pass", out)

    def test_deleted_last_checkpoint_only(self):
        st = self.copy_state()
        last = self.cps[-1][0]
        self.edit(st, ("DELETE FROM audit_checkpoints WHERE seq = ?", (last,)))
        out = self.assertBrokenAt(st, last)
        self.assertIn("not in the log (deleted)", out)


class CheckpointTimingTest(ServerTestCase):
    """Checkpoints on a timer while the server runs, and a crash leaving an uncheckpointed
    tail that verify reports rather than hides."""

    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"audit_checkpoint_records": "100000",
                               "audit_checkpoint_seconds": "1"}}

    def checkpoint_seqs(self):
        with self.server.db() as db:
            return [r[0] for r in db.execute("SELECT seq FROM audit_checkpoints ORDER BY seq")]

    def test_timer_then_crash(self):
        s = self.server
        s.create_user("bob", "signer")
        head = s.audit_last_seq()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and head not in self.checkpoint_seqs():
            time.sleep(0.2)
        self.assertIn(head, self.checkpoint_seqs(), "no timed checkpoint within 15 s")
        # Set the timer far away, restart, add records, crash: they stay uncheckpointed.
        s.stop()
        s.set_conf({"audit_checkpoint_seconds": "3600"})
        s.start()
        s.create_user("carol", "signer")
        s.create_user("dave", "signer")
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(10)
        last_cp = self.checkpoint_seqs()[-1]
        tail = s.audit_last_seq() - last_cp
        self.assertGreaterEqual(tail, 3)
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)
        self.assertIn("%d records after the last checkpoint are not yet checkpointed" % tail, out)
        # Restarted and stopped cleanly, the head is covered again.
        s.start()
        s.stop()
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)
        self.assertNotIn("not yet checkpointed", out)
        self.assertEqual(self.checkpoint_seqs()[-1], s.audit_last_seq())


class TimestampedCheckpointTest(ServerTestCase):
    """With the TSA on, each checkpoint carries an RFC 3161 token over its signature; those made
    before the TSA existed stay valid and are reported as not timestamped; a tampered, swapped
    or removed token makes `audit verify` fail and say why."""

    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"audit_checkpoint_records": "10",
                               "audit_checkpoint_seconds": "3600"}}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("ts-ec", "ec-p256")
        api_key = s.create_user("alice", "signer")
        s.grant("ts-ec", "alice")
        for i in range(12):
            s.sign(s.token_for(api_key), "ts-ec", "ecdsa", "sha256",
                   digest=HASHES["sha256"](b"a%d" % i).digest())
        s.stop()
        s.set_conf({"tsa": "open"})
        s.start()
        for i in range(25):
            s.sign(s.token_for(api_key), "ts-ec", "ecdsa", "sha256",
                   digest=HASHES["sha256"](b"b%d" % i).digest())
        s.stop()
        with s.db() as db:
            cls.cps = db.execute("SELECT seq, payload, signature, tsa_token"
                                 " FROM audit_checkpoints ORDER BY seq").fetchall()
        cls.before = [c for c in cls.cps if c[3] is None]
        cls.stamped = [c for c in cls.cps if c[3] is not None]
        cls.copies = 0

    def copy_state(self):
        type(self).copies += 1
        return self.server.copy_state(os.path.join(self.server.root, "tcopy%d" % self.copies))

    def verify(self, state=None):
        proc = run([SERVER_BIN, "audit", "verify", "--state", state or self.server.state])
        return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")

    def broken(self, *statements):
        state = self.copy_state()
        with self.server.state_db(state) as conn:
            for sql, args in statements:
                conn.execute(sql, args)
        rc, out = self.verify(state)
        self.assertEqual(rc, 1, out)
        return out

    def test_verify_reports_timestamped_and_older_checkpoints(self):
        self.assertGreaterEqual(len(self.before), 2, "init and the first shutdown")
        self.assertGreaterEqual(len(self.stamped), 3)
        self.assertGreater(self.stamped[0][0], self.before[-1][0])
        for c in self.stamped:
            self.assertIn('"tsa":"', c[1], "the signed payload names the TSA certificate")
        rc, out = self.verify()
        self.assertEqual(rc, 0, out)
        self.assertIn("%d checkpoints timestamped" % len(self.stamped), out)
        self.assertIn("%d checkpoints carry no timestamp token (made before the TSA existed)"
                      % len(self.before), out)

    def test_openssl_verifies_a_checkpoint_token(self):
        o = self.server.openssl
        seq, _, sig, token = self.stamped[-1]
        sig_path, tok_path = o.write("cp.sig", sig), o.write("cp.tst", token)
        proc = o("ts", "-verify", "-data", sig_path, "-in", tok_path, "-token_in", "-CAfile",
                 self.server.ca_cert_path, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        other = o.write("other.sig", self.stamped[0][2])
        proc = o("ts", "-verify", "-data", other, "-in", tok_path, "-token_in", "-CAfile",
                 self.server.ca_cert_path, check=False)
        self.assertNotEqual(proc.returncode, 0, "the token is bound to this checkpoint")

    def test_tampered_token(self):
        seq, _, _, token = self.stamped[1]
        bad = bytearray(token)
        bad[-5] ^= 0x01  # inside the signature value at the end of the SignerInfo
        out = self.broken(("UPDATE audit_checkpoints SET tsa_token = ? WHERE seq = ?",
                           (bytes(bad), seq)))
        self.assertIn("BROKEN at record %d: the timestamp token does not verify" % seq, out)

    def test_swapped_token(self):
        a, b = self.stamped[0], self.stamped[1]
        out = self.broken(("UPDATE audit_checkpoints SET tsa_token = ? WHERE seq = ?",
                           (b[3], a[0])))
        self.assertIn("BROKEN at record %d: the timestamp token's messageImprint does not match "
                      "the checkpoint" % a[0], out)

    def test_removed_token(self):
        seq = self.stamped[-1][0]
        out = self.broken(("UPDATE audit_checkpoints SET tsa_token = NULL WHERE seq = ?", (seq,)))
        self.assertIn("BROKEN at record %d: checkpoint's timestamp token is missing" % seq, out)

    def test_token_added_to_an_older_checkpoint(self):
        seq = self.before[-1][0]
        out = self.broken(("UPDATE audit_checkpoints SET tsa_token = ? WHERE seq = ?",
                           (self.stamped[0][3], seq)))
        self.assertIn("BROKEN at record %d: checkpoint carries a timestamp token its signed "
                      "payload does not announce" % seq, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
