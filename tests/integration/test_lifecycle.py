"""Lifecycle: init (refusal to touch an existing directory, file modes), serve and SIGTERM
(exit 0, run.json removed, server.start/server.stop audited, in-flight requests finished,
restart), /healthz, /metrics, and concurrent signing with group commit."""

import concurrent.futures
import os
import socket
import sqlite3
import ssl
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import (HASHES, SERVER_BIN, Server, ServerTestCase,  # noqa: E402
                            b64, ecdsa_raw_to_der, run, sha256_file_tree, unb64)


class InitTest(unittest.TestCase):
    """init only: no server is started."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(ca_key_type="ec-p256", start=False, name="init")
        cls.addClassCleanup(cls.srv.cleanup)

    def mode(self, *parts):
        return stat.S_IMODE(os.stat(os.path.join(*parts)).st_mode)

    def test_secret_files_are_0600(self):
        s = self.srv
        self.assertEqual(self.mode(s.admin_key_file), 0o600)
        files = ["hsm/user.pin", "hsm/so.pin", "tls/server.key", "signum-server.conf"]
        if not s.pg_db:  # on PostgreSQL the data is the database server's
            files.append("signum.db")
        for rel in files:
            with self.subTest(file=rel):
                self.assertEqual(self.mode(s.state, rel), 0o600, rel)
        self.assertEqual(self.mode(s.state) & 0o077, 0, "state directory open to others")
        # The admin key printed once is the one in the key file, and it is not stored.
        key = s.admin_api_key()
        self.assertRegex(key, r"^sgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
        self.assertIn(key, s.init_output)
        self.assertNotIn(key[17:].encode(), s.db_bytes())
        # A SQLite database is set up for WAL, and the CA and TLS certificate chain up.
        if not s.pg_db:
            with sqlite3.connect(s.db_path) as db:
                self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        res = run(["openssl", "verify", "-CAfile", s.ca_cert_path,
                   os.path.join(s.state, "tls", "server.crt")])
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def test_init_twice_refused_and_unchanged(self):
        s = self.srv
        before = sha256_file_tree(s.root)
        for extra in ([], ["--ca-key-type", "rsa2048"], ["--port", "9999"]):
            with self.subTest(args=extra):
                proc = run([SERVER_BIN, "init", "--state", s.state, "--admin-key-file",
                            s.admin_key_file, "--port", "0"] + extra)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(b"refusing", proc.stderr)
                self.assertNotIn(b"sgk_", proc.stdout + proc.stderr)
                self.assertEqual(sha256_file_tree(s.root), before,
                                 "a refused init changed the directory")
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)

    def test_init_refuses_other_non_empty_directory(self):
        s = self.srv
        d = os.path.join(s.root, "occupied")
        os.mkdir(d)
        with open(os.path.join(d, "keep.txt"), "w") as f:
            f.write("precious")
        before = sha256_file_tree(s.root)
        proc = run([SERVER_BIN, "init", "--state", d, "--port", "0"])
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(sha256_file_tree(s.root), before)

    def test_init_usage_errors(self):
        s = self.srv
        d = os.path.join(s.root, "never")
        for args in (["--ca-key-type", "dsa"], ["--admin", "bad name"], ["--port", "70000"]):
            with self.subTest(args=args):
                proc = run([SERVER_BIN, "init", "--state", d] + args)
                self.assertEqual(proc.returncode, 2)
                self.assertFalse(os.path.exists(d))
        # An empty existing directory is fine (and filled in).
        os.mkdir(d)
        proc = run([SERVER_BIN, "init", "--state", d, "--port", "0", "--ca-key-type",
                    "ec-p256"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(os.path.exists(os.path.join(d, "signum.db")))


class HealthMetricsTest(ServerTestCase):
    server_options = {}  # the default CA, rsa3072

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.key = s.create_key("lc-ec", "ec-p256")
        api_key = s.create_user("alice", "signer")
        s.grant("lc-ec", "alice")
        cls.token = s.token_for(api_key)
        cls.signatures = 0  # every signature this class makes
        cls.pub = s.openssl("pkey", "-pubin", "-inform", "DER",
                            "-in", s.openssl.tmp(unb64(cls.key["public_key"]))).stdout

    def count(self, n):
        type(self).signatures += n

    def assertSignatureCount(self):
        self.assertEqual(self.server.metrics()["signum_signatures_total"], self.signatures)

    def test_healthz(self):
        r = self.server.request("GET", "/healthz")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["status"], "ok")
        self.assertIs(r.json["hsm"]["ok"], True)
        self.assertIs(r.json["database"]["ok"], True)
        self.assertEqual(r.json["database"]["schema_version"], 16)

    def test_tls_versions_and_certificate(self):
        s = self.server
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                ctx = s.ssl_context()
                ctx.minimum_version = ctx.maximum_version = version
                with socket.create_connection(("127.0.0.1", s.port), 10) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                        self.assertEqual(t.version(), version.name.replace("v1_", "v1."))
        # The certificate is for localhost (and 127.0.0.1), issued by STATE/ca/ca.crt only.
        with socket.create_connection(("127.0.0.1", s.port), 10) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                s.ssl_context().wrap_socket(raw, server_hostname="signum.example.com")
        other = ssl.create_default_context()  # system roots only
        with socket.create_connection(("127.0.0.1", s.port), 10) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                other.wrap_socket(raw, server_hostname="localhost")

    def test_metrics_count_signatures(self):
        s = self.server
        self.assertSignatureCount()
        m0 = s.metrics()
        for name in ("signum_requests_total", "signum_signatures_total", "signum_denials_total",
                     "signum_tls_handshakes_total", "signum_db_commits_total",
                     "signum_db_jobs_total", "signum_hsm_session_reopens_total"):
            self.assertIn(name, m0)
        d = HASHES["sha256"](b"metrics").digest()
        s.sign(self.token, "lc-ec", "ecdsa", "sha256", digest=d, request_id="m-1")
        self.count(1)
        s.sign(self.token, "lc-ec", "ecdsa", "sha256", digest=d, request_id="m-1")  # replay
        s.sign(self.token, "lc-ec", "ecdsa", "sha256", digests=[d] * 5)
        self.count(5)
        r = s.sign_request(self.token, "lc-ec", "rsa-pkcs1", "sha256", digest=d)
        self.assertEqual(r.status, 400)
        m1 = s.metrics()
        self.assertEqual(m1["signum_signatures_total"] - m0["signum_signatures_total"], 6)
        self.assertEqual(m1["signum_denials_total"] - m0["signum_denials_total"], 1)
        self.assertGreaterEqual(m1["signum_requests_total"] - m0["signum_requests_total"], 5)
        self.assertGreater(m1["signum_tls_handshakes_total"], m0["signum_tls_handshakes_total"])
        self.assertSignatureCount()
        r = s.request("GET", "/metrics")
        self.assertTrue(r.headers["content-type"].startswith("text/plain"), r.headers)

    def test_concurrent_signing_and_group_commit(self):
        s = self.server
        threads, per_thread = 32, 10
        deadline = time.monotonic() + 90
        m0 = s.metrics()
        results = [[] for _ in range(threads)]
        errors = []
        start = threading.Barrier(threads)

        def worker(i):
            conn = s.connection()  # one keep-alive connection per thread
            try:
                start.wait(30)
                for j in range(per_thread):
                    if time.monotonic() > deadline:
                        errors.append("thread %d: out of time" % i)
                        return
                    msg = b"thread %d sign %d" % (i, j)
                    r = s.request("POST", "/api/v1/sign", {
                        "key": "lc-ec", "mechanism": "ecdsa", "hash": "sha256",
                        "digest": b64(HASHES["sha256"](msg).digest())},
                        token=self.token, conn=conn)
                    if r.status != 200:
                        errors.append("thread %d sign %d: %r" % (i, j, r))
                        return
                    results[i].append((msg, unb64(r.json["signature"]), r.json["audit_id"]))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("thread %d: %r" % (i, e))
            finally:
                conn.close()

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(max(1.0, deadline - time.monotonic()))
        self.assertFalse(any(t.is_alive() for t in pool), "signing threads still running")
        self.assertEqual(errors, [])
        flat = [x for r in results for x in r]
        self.assertEqual(len(flat), threads * per_thread)
        self.count(len(flat))
        self.assertEqual(len({x[2] for x in flat}), len(flat), "audit ids must be distinct")

        m1 = s.metrics()
        commits = m1["signum_db_commits_total"] - m0["signum_db_commits_total"]
        jobs = m1["signum_db_jobs_total"] - m0["signum_db_jobs_total"]
        self.assertGreaterEqual(jobs, len(flat))
        self.assertLess(commits, jobs, "no group commit: %d commits for %d jobs"
                        % (commits, jobs))
        self.assertSignatureCount()

        # Every signature verifies (openssl, four at a time).
        def check(item):
            msg, sig, _ = item
            return s.openssl.verify_digest_sig(self.pub, "sha256", msg,
                                               ecdsa_raw_to_der(sig))[0]

        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            bad = [item[0] for item, ok in zip(flat, ex.map(check, flat)) if not ok]
        self.assertEqual(bad, [])
        # One allowed sign record per signature, and the chain is intact.
        recs = {r["seq"]: r for r in s.audit_show(after=min(x[2] for x in flat) - 1)}
        for msg, _, seq in flat:
            self.assertEqual(recs[seq]["outcome"], "allowed")
            self.assertEqual(recs[seq]["detail"]["digests"],
                             [HASHES["sha256"](msg).hexdigest()])
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)


class ShutdownTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("sd-ec", "ec-p256")
        api_key = s.create_user("alice", "signer")
        s.grant("sd-ec", "alice")
        cls.token = s.token_for(api_key)

    def test_sigterm_restart_and_in_flight_request(self):
        s = self.server
        digest = HASHES["sha256"](b"before stop").digest()
        s.sign(self.token, "sd-ec", "ecdsa", "sha256", digest=digest)
        pid = s.proc.pid
        self.assertEqual(s.run_info["pid"], pid)
        self.assertEqual(s.run_info["url"], "https://localhost:%d" % s.port)

        # An in-flight request (held up by a database lock) is finished after SIGTERM.
        result = {}
        with s.writer_lock():
            t = threading.Thread(target=lambda: result.setdefault(
                "r", s.sign_request(self.token, "sd-ec", "ecdsa", "sha256", digest=digest)))
            before = s.metrics()["signum_requests_total"]
            t.start()
            # Wait until the server has the request (it then waits on the lock inside): every
            # /metrics call counts itself too, so the sign request is the one extra.
            deadline, polls = time.monotonic() + 30, 1
            while time.monotonic() < deadline:
                polls += 1
                if s.metrics()["signum_requests_total"] >= before + polls:
                    break
                time.sleep(0.05)
            else:
                self.fail("the sign request never reached the server")
            time.sleep(0.2)  # and is past the lookups, waiting for the writer
            s.proc.send_signal(15)
            time.sleep(0.5)
            self.assertIsNone(s.proc.poll(), "server exited with a request in flight")
            # New requests are refused while it drains (503, Retry-After), nothing done.
            r = s.request("GET", "/api/v1/keys", token=self.token)
            self.assertEqual(r.status, 503, r)
            self.assertIn("retry-after", r.headers)
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual(result["r"].status, 200, result["r"])
        self.assertIn("signature", result["r"].json)
        try:
            rc = s.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.fail("server did not exit within 20 s of SIGTERM")
        self.assertEqual(rc, 0)
        s.terminate()
        self.assertFalse(os.path.exists(s.run_json), "run.json left behind")

        recs = s.audit_show()
        self.assertEqual(recs[-1]["action"], "server.stop")
        self.assertEqual(recs[-1]["actor"], "system")
        self.assertEqual(recs[-1]["outcome"], "ok")
        starts = [r["seq"] for r in recs if r["action"] == "server.start"]
        self.assertEqual(len(starts), 1)
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)

        # Restart on the same state: same data, tokens still valid, new pid.
        s.start()
        self.assertNotEqual(s.proc.pid, pid)
        r = s.sign(self.token, "sd-ec", "ecdsa", "sha256", digest=digest)
        self.assertIn("signature", r)
        s.stop()
        self.assertFalse(os.path.exists(s.run_json))
        actions = [r["action"] for r in s.audit_show()
                   if r["action"] in ("server.start", "server.stop")]
        self.assertEqual(actions, ["server.start", "server.stop"] * 2)
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)



class SigintTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    def test_sigint_also_stops_cleanly(self):
        s = self.server
        self.assertEqual(s.request("GET", "/healthz").status, 200)
        s.proc.send_signal(2)
        try:
            rc = s.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.fail("server did not exit within 20 s of SIGINT")
        self.assertEqual(rc, 0)
        s.terminate()
        self.assertFalse(os.path.exists(s.run_json))
        self.assertEqual(s.audit_show()[-1]["action"], "server.stop")



if __name__ == "__main__":
    unittest.main(verbosity=2)
