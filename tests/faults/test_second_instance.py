"""Fault: a second `serve` on a state directory that is already served (issue 14, defect 4).

Two servers on one state directory both extended the audit chain from the same head and
forked it for good. The second must be refused with a clear message and a non-zero exit,
change nothing (no audit record, no run.json), and the first must keep serving; a stopping
instance must never delete a run.json that is not its own.

Before the fix the second instance started, overwrote run.json and wrote its own
server.start record into the shared chain.
"""

import hashlib
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from signum_harness import SERVER_BIN, Server, ServerTestCase  # noqa: E402

REFUSAL_TIMEOUT = 20.0


class SecondInstance(ServerTestCase):

    @classmethod
    def prepare(cls):
        srv = cls.server
        cls.user_key = srv.create_user("twice")
        srv.create_key("twice-ec", "ec-p256")
        srv.grant("twice-ec", "twice")
        cls.token = srv.token_for(cls.user_key)
        cls.n = 0

    def sign_ok(self):
        type(self).n += 1
        digest = hashlib.sha256(b"twice %d" % self.n).digest()
        self.server.sign(self.token, "twice-ec", "ecdsa", "sha256", digest=digest,
                         request_id="twice-%d" % self.n)
        return "twice-%d" % self.n

    def second_serve(self):
        """Runs a second serve on the same state; returns (returncode, stderr)."""
        proc = subprocess.Popen([SERVER_BIN, "serve", "--state", self.server.state, "--port", "0"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=REFUSAL_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("a second serve on a served state directory kept running for %.0f s "
                      "instead of refusing\n%s" % (REFUSAL_TIMEOUT, err.decode(errors="replace")))
        return proc.returncode, (out + err).decode(errors="replace")

    def run_json(self):
        with open(self.server.run_json) as f:
            return f.read()

    def test_second_serve_refused_and_changes_nothing(self):
        srv = self.server
        self.sign_ok()
        run_before = self.run_json()
        seq_before = srv.audit_last_seq()
        snap_before = srv.db_snapshot()

        rc, text = self.second_serve()
        self.assertNotEqual(rc, 0, "the second instance must exit non-zero:\n" + text)
        self.assertEqual(rc, 2, text)
        self.assertIn("already serving", text)
        self.assertIn(str(srv.proc.pid), text, "the message names the running instance")
        self.assertIn("refusing", text)

        # Nothing changed: run.json still names the first instance, no record was added.
        self.assertEqual(self.run_json(), run_before)
        self.assertEqual(json.loads(run_before)["pid"], srv.proc.pid)
        self.assertEqual(srv.audit_last_seq(), seq_before)
        self.assertEqual(srv.db_snapshot(), snap_before)

        # The first keeps serving.
        self.assertIsNone(srv.proc.poll())
        self.sign_ok()
        self.assertEqual(srv.request("GET", "/healthz").status, 200)

    def test_stop_leaves_a_foreign_run_json(self):
        """The instance that stops removes run.json only if it is its own."""
        srv = Server(name="foreign-run-json")
        try:
            foreign = '{"pid":%d,"port":1,"url":"https://localhost:1"}\n' % (srv.proc.pid + 100000)
            with open(srv.run_json, "w") as f:
                f.write(foreign)
            srv.stop()
            with open(srv.run_json) as f:
                self.assertEqual(f.read(), foreign)
            # And its own is removed as before.
            srv.start()
            srv.stop()
            self.assertFalse(os.path.exists(srv.run_json))
        finally:
            srv.cleanup()

    def test_shared_database_refused(self):
        """Another state directory pointed at a database that a running server uses (kept
        outside its own state directory) is refused too."""
        first = Server(name="shared-db-first", start=False)
        second = Server(name="shared-db-second", start=False)
        try:
            shared = os.path.join(first.root, "shared.db")
            os.rename(first.db_path, shared)
            first.set_conf({"database": shared})
            second.set_conf({"database": shared})
            first.start()
            proc = subprocess.run([SERVER_BIN, "serve", "--state", second.state, "--port", "0"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=REFUSAL_TIMEOUT)
            text = (proc.stdout + proc.stderr).decode(errors="replace")
            self.assertEqual(proc.returncode, 2, text)
            self.assertIn("already serving the database", text)
            self.assertIn(str(first.proc.pid), text)
            self.assertFalse(os.path.exists(second.run_json))
            self.assertEqual(first.request("GET", "/healthz").status, 200)
            first.stop()
            rc, out = first.audit_verify()
            self.assertEqual(rc, 0, out)
        finally:
            first.cleanup()
            second.cleanup()

    def test_zz_chain_intact_after_refusals(self):
        """After refused attempts and a clean stop, one chain, verified, with every signature."""
        srv = self.server
        signed = [self.sign_ok()]
        for _ in range(2):
            rc, text = self.second_serve()
            self.assertEqual(rc, 2, text)
        signed.append(self.sign_ok())
        srv.stop()
        self.assertFalse(os.path.exists(srv.run_json), "a clean stop removes its own run.json")
        rc, out = srv.audit_verify()
        self.assertEqual(rc, 0, out)
        recs = srv.audit_show()
        starts = [r for r in recs if r["action"] == "server.start"]
        stops = [r for r in recs if r["action"] == "server.stop"]
        self.assertEqual(len(starts), 1, "only the first instance started")
        self.assertEqual(len(stops), 1)
        logged = {r["detail"].get("request_id") for r in recs
                  if r["action"] == "sign" and r["outcome"] == "allowed"}
        for rid in signed:
            self.assertIn(rid, logged)
        # A new instance may take the directory once the first has stopped.
        srv.start()
        self.sign_ok()
        srv.stop()
        rc, out = srv.audit_verify()
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
