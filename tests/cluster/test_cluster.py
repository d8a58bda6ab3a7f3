"""Three signum-server nodes on one PostgreSQL database and one networked token (`p11-kit
server` exporting SoftHSMv2, p11-kit-client.so in each node), behind HAProxy on 127.0.0.1.

- A key generated through node 1 signs at once on nodes 2 and 3.
- Under a signing load from pkcs11-tool through libsignumpkcs11.so and an agent (servers:
  HAProxy, then the three nodes), node 2 is killed with SIGKILL: the tools see no failed
  signature (the agent sends the same request, with the same request_id, again), every
  signature verifies, each digest has exactly one `sign` record (none lost, none twice), the
  one chain of the three nodes passes `audit verify`, and node 2 rejoins after its restart
  (ready again, HAProxy has it UP, it signs).

PostgreSQL comes from the pg.start fixture ($SIGNUM_TEST_PG) or is started here."""

import base64
import copy
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from agent_harness import Agent  # noqa: E402
from cluster_harness import Cluster, wait  # noqa: E402
from signum_harness import run  # noqa: E402
from test_sign_jobs import Verifier  # noqa: E402

MODULE = os.environ.get("SIGNUM_PKCS11") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "linux-pkcs11", "libsignumpkcs11.so"))
THREADS = 3
LOOP_MAX = 30         # pkcs11-tool runs per thread, at most
LOOP_SECONDS = 150.0  # and for at most this long
KEY = "cl-ec"


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="signum-cluster-")
        cls.addClassCleanup(shutil.rmtree, cls.root, ignore_errors=True)
        cls.cluster = Cluster(cls.root, 3, pg_root=os.environ.get("SIGNUM_TEST_PG"),
                              conf={"job_lease_seconds": "2", "job_workers": "2"})
        cls.addClassCleanup(cls.cluster.cleanup)
        cls.nodes, cls.lb, cls.lb_port = cls.cluster.nodes, cls.cluster.lb, cls.cluster.lb_port

    @staticmethod
    def wait(cond, what, timeout=30.0):
        wait(cond, what, timeout)

    def verify_stopped(self):
        """Stops every node (their last checkpoints written), verifies the one chain, and
        starts them again."""
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.stop()
        rc, out = self.nodes[0].audit_verify()
        self.assertEqual(rc, 0, out)
        for n in self.nodes:
            n.start()
        self.wait(lambda: set(self.lb.status().values()) == {"UP"}, "three nodes UP again")

    def test_job_while_a_node_dies(self):
        """10,000 digests in one asynchronous job through HAProxy; every node's workers claim
        chunks; node 3 is killed mid-job and the others finish its leased chunks once the
        lease expires: every digest signed (verified by OpenSSL's libcrypto) and recorded
        exactly once."""
        n1, n3 = self.nodes[0], self.nodes[2]
        api_key = n1.create_user("jobber")
        n1.create_key("cj-ec", "ec-p256")
        n1.grant("cj-ec", "jobber")
        tok = n1.token_for(api_key)
        lb = copy.copy(n1)
        lb.port = self.lb_port
        ds = [hashlib.sha256(b"cluster job %d" % i).digest() for i in range(10000)]
        r = lb.request("POST", "/api/v1/sign/jobs", {
            "key": "cj-ec", "mechanism": "ecdsa", "hash": "sha256", "signature_format": "der",
            "digests": [base64.b64encode(d).decode() for d in ds]}, token=tok)
        self.assertEqual(r.status, 202, r)
        job = r.json["job_id"]
        self.wait(lambda: lb.call("GET", "/api/v1/sign/jobs/%s?limit=1" % job,
                                  token=tok)["done"] >= 1000, "1000 signed", 120)
        n3.kill()
        done_at_kill = lb.call("GET", "/api/v1/sign/jobs/%s?limit=1" % job, token=tok)["done"]
        self.assertLess(done_at_kill, 10000, "the job finished before the kill")
        end = time.monotonic() + 300
        while time.monotonic() < end:
            st = lb.call("GET", "/api/v1/sign/jobs/%s?wait=10&limit=1" % job, token=tok)
            if st["status"] in ("done", "failed"):
                break
        self.assertEqual(st["status"], "done", st)
        sigs, offset = [], 0
        while offset is not None:
            page = lb.call("GET", "/api/v1/sign/jobs/%s?offset=%d&limit=1000" % (job, offset),
                           token=tok)
            sigs += [base64.b64decode(x) for x in page["signatures"]]
            offset = page.get("next_offset")
        self.assertEqual(len(sigs), 10000)
        v = Verifier(base64.b64decode(n1.get_key("cj-ec")["public_key"]))
        self.assertEqual([i for i, (d, sg) in enumerate(zip(ds, sigs)) if not v.verify(d, sg)],
                         [])
        idx = []
        for rec in n1.audit_show():
            d = rec["detail"]
            if rec["action"] == "sign" and d.get("job_id") == job:
                idx.append(d["job_index"])
        self.assertEqual(sorted(idx), list(range(10000)), "records: %d" % len(idx))
        n3.start()
        self.verify_stopped()
        sys.stderr.write("cluster job: 10000 digests, %d signed when node 3 was killed; every "
                         "signature verified, every record once\n" % done_at_kill)

    def test_cluster(self):
        n1, n2, n3 = self.nodes
        # A key generated through node 1 signs at once on nodes 2 and 3.
        api_key = n1.create_user("alice")
        n1.create_key(KEY, "ec-p256")
        n1.issue_cert(KEY, "Signum cluster")
        n1.grant(KEY, "alice")
        digest = hashlib.sha256(b"on every node").digest()
        for n in (n2, n3):
            n.sign(n.token_for(api_key), KEY, "ecdsa", "sha256", digest=digest)

        # The load: pkcs11-tool through the agent, which knows HAProxy and then the nodes.
        urls = ["https://localhost:%d" % self.lb_port] + \
            ["https://localhost:%d" % n.fixed_port for n in self.nodes]
        agent = Agent(urls, n1.ca_cert_path, api_key=api_key, name="cluster")
        self.addCleanup(agent.cleanup)
        work = os.path.join(agent.root, "work")
        os.mkdir(work)
        kid = n1.get_key(KEY)["id"]
        pub = os.path.join(work, "pub.pem")
        cert = run(["openssl", "x509", "-inform", "DER", "-pubkey", "-noout"],
                   input=base64.b64decode(n1.get_key(KEY)["certificate"]), check=True)
        with open(pub, "wb") as f:
            f.write(cert.stdout)

        # pkcs11-tool is not instrumented: in the sanitizer build it loads the instrumented
        # module with the sanitizer's runtime preloaded.
        tool_env = dict(agent.env)
        if os.environ.get("SIGNUM_ASAN_RUNTIME"):
            tool_env.update(LD_PRELOAD=os.environ["SIGNUM_ASAN_RUNTIME"],
                            ASAN_OPTIONS="detect_leaks=0")
        results, lock, stop = [], threading.Lock(), threading.Event()
        deadline = time.monotonic() + LOOP_SECONDS

        def worker(t):
            for i in range(LOOP_MAX):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                msg = os.path.join(work, "m-%d-%d" % (t, i))
                with open(msg, "wb") as f:
                    f.write(b"cluster message %d/%d" % (t, i))
                sig = msg + ".sig"
                p = subprocess.run(["pkcs11-tool", "--module", MODULE, "--sign", "-m",
                                    "ECDSA-SHA256", "--signature-format", "openssl", "--id", kid,
                                    "-i", msg, "-o", sig], env=tool_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
                with lock:
                    results.append((msg, sig, p.returncode, p.stdout.decode(errors="replace")))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        self.wait(lambda: len(results) >= 12, "the load got going", 120)
        # Node 2 has been signing its share (else killing it would show nothing).
        self.wait(lambda: n2.metrics()["signum_signatures_total"] >= 2, "node 2 signs", 60)
        served = {n.name_: n.metrics()["signum_signatures_total"] for n in self.nodes}
        n2.kill()  # SIGKILL, requests in flight
        killed_at = len(results)
        self.wait(lambda: len(results) >= killed_at + 15, "signing went on without node 2", 120)
        n2.start()
        self.wait(lambda: n2.ready(), "node 2 ready again")
        self.wait(lambda: self.lb.status().get("n2") == "UP", "HAProxy has node 2 UP again")
        rejoined_at = len(results)
        self.wait(lambda: len(results) >= rejoined_at + 9, "signing after the rejoin", 120)
        stop.set()
        for t in threads:
            t.join(180)
            self.assertFalse(t.is_alive())

        failed = [(m, out) for m, _, rc, out in results if rc != 0]
        self.assertEqual(failed, [], "failed signatures:\n%s\nagent log:\n%s" % (
            failed[:3], agent.log()))
        for msg, sig, _, _ in results:
            v = run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, msg])
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Every digest has exactly one allowed sign record: none lost, none made twice.
        recs = [r for r in n1.audit_show() if r["action"] == "sign" and
                r["outcome"] == "allowed" and r["detail"].get("key") == KEY]
        counts = {}
        for r in recs:
            for d in r["detail"]["digests"]:
                counts[d] = counts.get(d, 0) + 1
        for msg, _, _, _ in results:
            with open(msg, "rb") as f:
                d = hashlib.sha256(f.read()).hexdigest()
            self.assertEqual(counts.get(d), 1, "digest of %s has %r records" % (msg, counts.get(d)))
        # One chain for the three nodes, and it verifies (checkpoints and the HSM's mark).
        self.verify_stopped()
        sys.stderr.write("cluster: %d pkcs11-tool signatures (%d before the kill, %d after the "
                         "rejoin), 0 failed; %d audit records verified; signatures per node "
                         "before the kill: %s\n" % (len(results), killed_at,
                                                     len(results) - rejoined_at, len(recs), served))

if __name__ == "__main__":
    unittest.main(verbosity=2)
