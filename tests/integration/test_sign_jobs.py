#!/usr/bin/env python3
"""Asynchronous signing jobs (POST /api/v1/sign/jobs): a job of 10,000 digests completes, every
signature verifies (OpenSSL's libcrypto, through ctypes: one process) and has its audit record;
bad input leaves no job; only the owner (and admins) read a job; a key suspended while a job
waits fails the job visibly; a server killed with SIGKILL mid-job is restarted and the job
completes with every digest signed and recorded exactly once (the dead node's lease expires)."""
import ctypes
import ctypes.util
import hashlib
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import ServerTestCase, b64, unb64  # noqa: E402

DEADLINE = 150  # seconds any one job may take here (2 cores shared with other tests)


def digests(tag, n):
    return [hashlib.sha256(b"%s-%d" % (tag.encode(), i)).digest() for i in range(n)]


class Verifier:
    """ECDSA/SHA-256 verification with libcrypto in this process: one key, many signatures."""

    def __init__(self, spki_der):
        lib = ctypes.CDLL(ctypes.util.find_library("crypto"))
        vp = ctypes.c_void_p
        lib.d2i_PUBKEY.restype = vp
        lib.d2i_PUBKEY.argtypes = [vp, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long]
        lib.EVP_PKEY_CTX_new.restype = vp
        lib.EVP_PKEY_CTX_new.argtypes = [vp, vp]
        lib.EVP_PKEY_verify_init.argtypes = [vp]
        lib.EVP_PKEY_verify.argtypes = [vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                        ctypes.c_size_t]
        lib.EVP_PKEY_CTX_free.argtypes = [vp]
        self.lib = lib
        buf = ctypes.c_char_p(spki_der)
        self.pkey = lib.d2i_PUBKEY(None, ctypes.byref(buf), len(spki_der))
        assert self.pkey, "libcrypto cannot read the public key"

    def verify(self, digest, der_sig):
        ctx = self.lib.EVP_PKEY_CTX_new(self.pkey, None)
        try:
            assert self.lib.EVP_PKEY_verify_init(ctx) == 1
            return self.lib.EVP_PKEY_verify(ctx, der_sig, len(der_sig), digest, len(digest)) == 1
        finally:
            self.lib.EVP_PKEY_CTX_free(ctx)


class JobClient:
    def submit(self, token, key, ds, expect=202, **extra):
        body = {"key": key, "mechanism": "ecdsa", "hash": "sha256", "signature_format": "der",
                "digests": [b64(d) for d in ds]}
        body.update(extra)
        return self.server.request("POST", "/api/v1/sign/jobs", body, token=token)

    def wait_finished(self, token, job_id, deadline=DEADLINE):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            r = self.server.request("GET", "/api/v1/sign/jobs/%s?wait=10&limit=1" % job_id,
                                    token=token)
            self.assertEqual(r.status, 200, r)
            if r.json["status"] in ("done", "failed"):
                return r.json
        self.fail("job %s did not finish within %d s" % (job_id, deadline))

    def signatures(self, token, job_id, total):
        out, offset = [], 0
        while offset is not None:
            r = self.server.call("GET", "/api/v1/sign/jobs/%s?offset=%d&limit=1000"
                                 % (job_id, offset), token=token)
            out += [unb64(s) for s in r["signatures"]]
            offset = r.get("next_offset")
        self.assertEqual(len(out), total)
        return out

    def sign_records(self, job_id):
        """job_index of every sign record of the job, from the audit table."""
        with self.server.db() as db:
            rows = db.execute("SELECT record FROM audit WHERE action = 'sign' AND record LIKE ?",
                              ("%" + job_id + "%",)).fetchall()
        out = []
        for (record,) in rows:
            detail = json.loads(record)["detail"]
            self.assertEqual(detail["job_id"], job_id)
            out.append(detail["job_index"])
        return out

    def job_rows(self):
        with self.server.db() as db:
            return db.execute("SELECT count(*) FROM sign_jobs").fetchone()[0]


class SignJobsTest(JobClient, ServerTestCase):
    server_options = {"conf": {"job_lease_seconds": 2, "job_workers": 2}}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.key = s.create_key("job-ec", "ec-p256")
        cls.alice = s.token_for(s.create_user("alice"))
        cls.bob = s.token_for(s.create_user("bob"))
        s.grant("job-ec", "alice")

    def test_10000_digests_all_verified_and_recorded(self):
        ds = digests("big", 10000)
        t0 = time.monotonic()
        r = self.submit(self.alice, "job-ec", ds)
        self.assertEqual(r.status, 202, r)
        job = r.json["job_id"]
        self.assertEqual(r.json["status"], "queued")
        self.assertEqual(r.json["total"], 10000)
        final = self.wait_finished(self.alice, job)
        elapsed = time.monotonic() - t0
        self.assertEqual(final["status"], "done", final)
        self.assertEqual(final["done"], 10000)
        sigs = self.signatures(self.alice, job, 10000)
        v = Verifier(unb64(self.key["public_key"]))
        bad = [i for i, (d, s) in enumerate(zip(ds, sigs)) if not v.verify(d, s)]
        self.assertEqual(bad, [])
        # One audit record per signature, none twice.
        idx = self.sign_records(job)
        self.assertEqual(sorted(idx), list(range(10000)))
        sys.stderr.write("\n10000-digest job: %.1f s (%.0f signatures/s)\n"
                         % (elapsed, 10000 / elapsed))
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, out)
        # Only the owner reads it (and admins); for anyone else it does not exist.
        r = self.server.request("GET", "/api/v1/sign/jobs/%s" % job, token=self.bob)
        self.assertError(r, 404, "not_found")
        r = self.server.request("GET", "/api/v1/sign/jobs/%s?limit=2" % job,
                                token=self.server.admin_token())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json["signatures"]), 2)

    def test_bad_input_leaves_no_job(self):
        before = self.job_rows()
        r = self.submit(self.alice, "job-ec", digests("over", 20001))
        self.assertError(r, 413, "too_many_digests")
        self.assertIn("20000", r.json["error"]["message"])
        ds = digests("short", 3)
        ds[1] = ds[1][:20]
        r = self.submit(self.alice, "job-ec", ds)
        self.assertError(r, 400, "digest_length_mismatch")
        self.assertIn("digests[1]", r.json["error"]["message"])
        r = self.submit(self.alice, "no-such-key", digests("nokey", 2))
        self.assertError(r, 404, "key_not_found")
        r = self.submit(self.bob, "job-ec", digests("notgranted", 2))
        self.assertEqual(r.status, 403, r)
        r = self.server.request("POST", "/api/v1/sign/jobs",
                                {"key": "job-ec", "mechanism": "ecdsa", "hash": "sha256",
                                 "digest": b64(digests("one", 1)[0])}, token=self.alice)
        self.assertError(r, 400, "invalid_field")
        self.assertEqual(self.job_rows(), before)
        r = self.server.request("GET", "/api/v1/sign/jobs/%s" % ("0" * 32), token=self.alice)
        self.assertError(r, 404, "not_found")

    def test_request_id_replays_the_job(self):
        ds = digests("rid", 5)
        a = self.submit(self.alice, "job-ec", ds, request_id="job-rid-1")
        b = self.submit(self.alice, "job-ec", ds, request_id="job-rid-1")
        self.assertEqual((a.status, b.status), (202, 202), (a, b))
        self.assertEqual(a.json["job_id"], b.json["job_id"])
        c = self.submit(self.alice, "job-ec", ds[:4], request_id="job-rid-1")
        self.assertError(c, 409, "request_id_conflict")
        self.assertEqual(self.wait_finished(self.alice, a.json["job_id"])["status"], "done")


class SignJobsRecoveryTest(JobClient, ServerTestCase):
    """Starts with no job workers: jobs wait, deterministically, until the restart."""
    server_options = {"conf": {"job_lease_seconds": 2, "job_workers": 0,
                               "job_user_max_pending": 12000}}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.key = s.create_key("rec-ec", "ec-p256")
        s.create_key("rec-susp", "ec-p256")
        cls.alice = s.token_for(s.create_user("carol"))
        s.grant("rec-ec", "carol")
        s.grant("rec-susp", "carol")

    def restart(self, workers):
        self.server.stop()
        self.server.set_conf({"job_workers": workers})
        self.server.start()

    def test_suspend_and_kill(self):
        s = self.server
        tok = self.alice
        ds = digests("kill", 10000)
        r = self.submit(tok, "rec-ec", ds)
        self.assertEqual(r.status, 202, r)
        job = r.json["job_id"]
        r = self.submit(tok, "rec-susp", digests("susp", 100))
        self.assertEqual(r.status, 202, r)
        susp = r.json["job_id"]
        # The per-user cap on waiting digests: 10,100 wait, 2,000 more would pass 12,000.
        r = self.submit(tok, "rec-susp", digests("cap", 2000))
        self.assertError(r, 429, "job_queue_full")
        # A key suspended while its job waits: the job fails visibly at its first chunk.
        s.call("POST", "/api/v1/admin/keys/rec-susp/suspend", {"reason": "job test"},
               token=s.admin_token())
        self.restart(2)
        # SIGKILL mid-job, then a restart: every digest signed and recorded exactly once.
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            st = s.call("GET", "/api/v1/sign/jobs/%s?limit=1" % job, token=tok)
            if st["done"] >= 1000:
                break
            time.sleep(0.02)
        s.kill()
        self.assertLess(st["done"], 10000, "the job finished before the kill")
        s.start()
        final = self.wait_finished(tok, susp)
        self.assertEqual(final["status"], "failed", final)
        self.assertEqual(final["error"]["code"], "key_disabled")
        self.assertIn("job test", final["error"]["message"])
        self.assertEqual(final["done"], 0)
        self.assertEqual(self.sign_records(susp), [])
        final = self.wait_finished(tok, job)
        self.assertEqual(final["status"], "done", final)
        idx = self.sign_records(job)
        self.assertEqual(len(idx), 10000, "records: %d" % len(idx))
        self.assertEqual(sorted(idx), list(range(10000)))
        sigs = self.signatures(tok, job, 10000)
        v = Verifier(unb64(self.key["public_key"]))
        self.assertEqual([i for i, (d, sg) in enumerate(zip(ds, sigs)) if not v.verify(d, sg)],
                         [])
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
