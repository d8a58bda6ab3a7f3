"""Fault: the HSM fails under a signing job (issue 16: retry with back-off, then a visible
failed state after job_max_attempts).

The HSM is a networked one made real with p11-kit (as in test_drain.py and
test_hsm_outage.py): killing the p11-kit server is the outage, starting it again the return.
Each job has 200 digests, so four chunks of 64, and two workers claim chunks of it at once:
when the HSM is down, both fail in the same round, and that round is one attempt.

- GiveUp (job_max_attempts = 2): with the HSM down, the job's first round fails, is retried
  after the 1 s back-off, fails again and the job ends `failed`, `attempts` 2, error code
  `hsm_unavailable`, nothing signed; the audit log has one `sign.job.retry` and one
  `sign.job.fail` record at least 1 s apart, and no `sign` record of the job.
- RecoverDuringBackoff (job_max_attempts = 5, so 1+2+4+8 s of back-off before it would give
  up): the HSM comes back while the job waits to be retried; the job ends `done`, every
  signature verifies with OpenSSL's libcrypto, every digest has exactly one `sign` record, and
  the chain verifies.

Before the fix, the chunks that failed together each counted as an attempt (a job with more
chunks in flight than job_max_attempts failed at once, with no back-off), and a failed job
showed one attempt fewer than it had made.
"""

import datetime
import hashlib
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

from p11kit_harness import available, client_module  # noqa: E402
from signum_harness import b64, unb64  # noqa: E402
from test_drain import P11KitCase, wait_until  # noqa: E402
from test_sign_jobs import Verifier  # noqa: E402

P11_KIT = available() is None and client_module() is not None
N = 200           # digests per job: four chunks
DEADLINE = 60.0   # any job here finishes well within this (back-off at most 15 s)


def digests(tag):
    return [hashlib.sha256(b"%s %d" % (tag.encode(), i)).digest() for i in range(N)]


def when(rec):
    return datetime.datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ")


class JobCase(P11KitCase):
    """The server and the key of test_drain.P11KitCase ("drain-ec"), with jobs."""

    def submit(self, ds, rid):
        body = {"key": "drain-ec", "mechanism": "ecdsa", "hash": "sha256",
                "signature_format": "der", "digests": [b64(d) for d in ds], "request_id": rid}
        r = self.server.request("POST", "/api/v1/sign/jobs", body, token=self.token)
        self.assertEqual(r.status, 202, r)
        return r.json["job_id"]

    def get(self, job, query="limit=1"):
        return self.server.call("GET", "/api/v1/sign/jobs/%s?%s" % (job, query),
                                token=self.token)

    def wait_finished(self, job):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            st = self.get(job, "wait=10&limit=1")
            if st["status"] in ("done", "failed"):
                return st
        self.fail("job %s did not finish within %.0f s: %r" % (job, DEADLINE, st))

    def records(self, job):
        """The job's audit records, in chain order, from the audit table."""
        with self.server.db() as db:
            rows = db.execute("SELECT record FROM audit WHERE record LIKE ? ORDER BY seq",
                              ("%" + job + "%",)).fetchall()
        return [json.loads(r) for (r,) in rows if json.loads(r)["detail"].get("job_id") == job]


@unittest.skipUnless(P11_KIT, "p11-kit and p11-kit-modules are needed (scripts/install-deps.sh)")
class GiveUp(JobCase):

    conf = {"job_max_attempts": 2, "job_workers": 2, "job_lease_seconds": 30}

    def test_fails_visibly_after_max_attempts(self):
        self.hsm.kill()
        try:
            t0 = time.monotonic()
            job = self.submit(digests("give up"), "give-up")
            st = self.wait_finished(job)
        finally:
            self.hsm.start()
        took = time.monotonic() - t0
        self.assertEqual(st["status"], "failed", st)
        self.assertEqual(st["attempts"], 2, st)
        self.assertEqual(st["done"], 0, st)
        self.assertEqual(st["error"]["code"], "hsm_unavailable", st)
        self.assertNotIn("signatures", st)

        recs = self.records(job)
        actions = [r["action"] for r in recs]
        self.assertEqual(actions, ["sign.job.submit", "sign.job.retry", "sign.job.fail"], recs)
        retry, fail = recs[1], recs[2]
        self.assertEqual((retry["outcome"], retry["detail"]["error"]),
                         ("error", "hsm_unavailable"), retry)
        self.assertEqual((fail["outcome"], fail["detail"]["error"]),
                         ("error", "hsm_unavailable"), fail)
        self.assertIn("2 times", fail["detail"]["message"])
        gap = (when(fail) - when(retry)).total_seconds()
        # The second round waited out the 1 s back-off (less a few ms: the record's time is
        # taken just after the clock the back-off counts from).
        self.assertGreaterEqual(gap, 0.95, (retry, fail))
        sys.stderr.write("\njob failed after %d attempts in %.1f s (retry -> fail %.2f s)\n"
                         % (st["attempts"], took, gap))
        # A failed job stays failed with the HSM back.
        time.sleep(1.5)
        self.assertEqual(self.get(job)["status"], "failed")
        self.server.stop()
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)


@unittest.skipUnless(P11_KIT, "p11-kit and p11-kit-modules are needed (scripts/install-deps.sh)")
class RecoverDuringBackoff(JobCase):

    conf = {"job_max_attempts": 5, "job_workers": 2, "job_lease_seconds": 30}

    def test_hsm_back_during_backoff(self):
        ds = digests("recover")
        self.hsm.kill()
        try:
            job = self.submit(ds, "recover")
            # The first round failed: the job waits for its retry.
            wait_until("a failed round", lambda: (lambda s: (s["attempts"] >= 1, s))(
                self.get(job)))
        finally:
            self.hsm.start()
        st = self.wait_finished(job)
        self.assertEqual(st["status"], "done", st)
        self.assertEqual(st["done"], N, st)

        sigs, offset = [], 0
        while offset is not None:
            page = self.get(job, "offset=%d&limit=1000" % offset)
            sigs += [unb64(s) for s in page["signatures"]]
            offset = page.get("next_offset")
        self.assertEqual(len(sigs), N)
        v = Verifier(unb64(self.server.get_key("drain-ec")["public_key"]))
        self.assertEqual([i for i, (d, s) in enumerate(zip(ds, sigs)) if not v.verify(d, s)], [])

        recs = self.records(job)
        retries = [r for r in recs if r["action"] == "sign.job.retry"]
        self.assertGreaterEqual(len(retries), 1, recs)
        self.assertLess(len(retries), 5, retries)
        self.assertEqual([r["action"] for r in recs if r["action"].startswith("sign.job.")][-1],
                         "sign.job.done")
        self.assertNotIn("sign.job.fail", [r["action"] for r in recs])
        signed = sorted(r["detail"]["job_index"] for r in recs
                        if r["action"] == "sign" and r["outcome"] == "allowed")
        self.assertEqual(signed, list(range(N)))
        # Each record names the digest it signed.
        hexes = {r["detail"]["job_index"]: r["detail"]["digests"] for r in recs
                 if r["action"] == "sign"}
        self.assertEqual([hexes[i] for i in range(N)], [[d.hex()] for d in ds])
        sys.stderr.write("\njob done after %d failed round(s); %d signatures verified\n"
                         % (len(retries), N))
        self.server.stop()
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
