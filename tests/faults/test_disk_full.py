"""Fault: the disk under the database fills up (issue 14, defect 5).

The database (with its WAL) lives on a small tmpfs. Once the tmpfs is full no audit commit
can succeed: signing must fail closed (503, no signature handed out without its record),
/healthz must answer 503 naming the audit/database component (before the fix it said ok),
and once space is freed both must recover on their own. At the end the audit chain verifies
and every signature the client received is in it.

Needs root to mount the tmpfs (CI runs as root); without it the test fails, it never skips.
"""

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from signum_harness import Server  # noqa: E402

TMPFS_SIZE = "16m"
RECOVERY_LIMIT = 10.0
HEALTH_LIMIT = 10.0


class DiskFull(unittest.TestCase):

    def setUp(self):
        self.server = None
        self.mnt = tempfile.mkdtemp(prefix="signum-fault-dbfs-")
        self.mounted = False
        if os.geteuid() != 0:
            self.fail("test_disk_full must run as root to mount a tmpfs (CI runs as root)")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % TMPFS_SIZE,
                               "signum-fault", self.mnt], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=30)
        if proc.returncode != 0:
            self.fail("cannot mount a tmpfs on %s: %s" % (self.mnt, proc.stderr.decode()))
        self.mounted = True
        self.filler = os.path.join(self.mnt, "filler")

    def tearDown(self):
        try:
            if self.server is not None:
                self.server.kill()
        finally:
            if self.mounted:
                subprocess.run(["umount", self.mnt], timeout=30)
            try:
                os.rmdir(self.mnt)
            except OSError:
                pass
            if self.server is not None:
                self.server.cleanup()

    def fill(self):
        """Fills the tmpfs to the last byte."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # Bounded: a 16 MiB tmpfs takes at most 16 writes of 1 MiB, then the tail.
            for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
                for _ in range(64):
                    try:
                        os.write(fd, b"\0" * chunk)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        st = os.statvfs(self.mnt)
        self.assertEqual(st.f_bavail, 0, "the tmpfs is not full")

    def sign(self, n):
        digest = hashlib.sha256(b"disk %d" % n).digest()
        return self.server.sign_request(self.token, "disk-ec", "ecdsa", "sha256", digest=digest,
                                        request_id="disk-%d" % n)

    def test_disk_full_fails_closed_and_recovers(self):
        srv = self.server = Server(name="disk-full", start=False)
        # The database, its WAL and its shared-memory file on the small tmpfs.
        db = os.path.join(self.mnt, "signum.db")
        shutil.move(srv.db_path, db)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(srv.db_path + suffix):
                shutil.move(srv.db_path + suffix, db + suffix)
        srv.set_conf({"database": db})
        srv.start()
        user_key = srv.create_user("disk-signer")
        srv.create_key("disk-ec", "ec-p256")
        srv.grant("disk-ec", "disk-signer")
        self.token = srv.token_for(user_key)

        received = []
        n = 0
        for _ in range(3):
            r = self.sign(n)
            self.assertEqual(r.status, 200, r)
            received.append("disk-%d" % n)
            n += 1
        h = srv.request("GET", "/healthz")
        self.assertEqual(h.status, 200, h)
        self.assertEqual(h.json.get("failing", []), [], h.json)

        # The disk fills up: signing fails closed.
        self.fill()
        failures = 0
        for _ in range(5):
            r = self.sign(n)
            if r.status == 200:
                # Only acceptable if its record made it (the WAL had room): checked below.
                received.append("disk-%d" % n)
            else:
                self.assertEqual(r.status, 503, r)
                self.assertIn(r.error_code, ("audit_unavailable", "database_error"), r)
                self.assertNotIn("signature", r.json)
                failures += 1
            n += 1
        self.assertGreater(failures, 0, "no sign failed on a full disk")
        # /healthz says so, naming the component (before the fix: 200 "ok").
        h = srv.request("GET", "/healthz")
        self.assertEqual(h.status, 503, h)
        self.assertEqual(h.json["status"], "degraded")
        self.assertTrue(set(h.json.get("failing", [])) & {"audit", "database"}, h.json)
        self.assertFalse(h.json["audit"]["ok"], h.json)
        # Asked again at once: the cached answer, the same verdict.
        h2 = srv.request("GET", "/healthz")
        self.assertEqual(h2.status, 503, h2)

        # Space returns: signing and health recover on their own.
        os.unlink(self.filler)
        freed_at = time.monotonic()
        recovered = None
        while time.monotonic() - freed_at < RECOVERY_LIMIT:
            r = self.sign(n)
            if r.status == 200:
                recovered = time.monotonic() - freed_at
                received.append("disk-%d" % n)
                n += 1
                break
            self.assertEqual(r.status, 503, r)
            n += 1
            time.sleep(0.01)
        self.assertIsNotNone(recovered, "signing did not recover within %.0f s" % RECOVERY_LIMIT)
        healthy = None
        while time.monotonic() - freed_at < HEALTH_LIMIT:
            h = srv.request("GET", "/healthz")
            if h.status == 200:
                healthy = time.monotonic() - freed_at
                break
            time.sleep(0.05)
        self.assertIsNotNone(healthy, "/healthz did not recover: %r" % h)
        self.assertEqual(h.json["failing"], [])
        sys.stderr.write("\ndisk full: first successful sign %.1f ms after space was freed, "
                         "/healthz 200 after %.1f ms\n" % (recovered * 1000, healthy * 1000))
        for _ in range(3):
            r = self.sign(n)
            self.assertEqual(r.status, 200, r)
            received.append("disk-%d" % n)
            n += 1

        srv.stop()
        rc, out = srv.audit_verify()
        self.assertEqual(rc, 0, out)
        logged = {rec["detail"].get("request_id") for rec in srv.audit_show()
                  if rec["action"] == "sign" and rec["outcome"] == "allowed"}
        missing = [rid for rid in received if rid not in logged]
        self.assertEqual(missing, [], "signatures handed out but not in the audit log")


if __name__ == "__main__":
    unittest.main()
