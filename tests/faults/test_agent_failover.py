"""Agent failover across server nodes (issue 16), with pkcs11-tool signing through
libsignumpkcs11.so and a real signum-agent configured with two server URLs.

Two signum-server nodes on 127.0.0.1 serve the same users, keys and grants from the one
SoftHSMv2 token. Each has its own SQLite database: node B starts from a copy of node A's state
(same CA, TLS certificate, users, keys, grants), because two servers cannot share one SQLite
file (the single-instance lock); with the PostgreSQL backend they would share one database.
So each node keeps its own audit chain here, and an access token issued by one node is unknown
to the other (the agent re-authenticates once on the 401, as it does after any revocation).

1. A node whose HSM fails answers 503: the agent sends the very same request to the other
   node at once. The refusal's audit record on A and the signature's record on B carry the
   same detail.request_id.
2. kill -9 of the node in use, mid-load, and later of the other one after the first came back
   (fixed ports, so the agent's URLs stay valid): every pkcs11-tool run exits 0 and every
   signature verifies with openssl (0 failures), every signature has its audit record on one
   of the nodes, and each chain verifies.

Before this change a 5xx was retried on the same node only (after a back-off), so with A's
HSM down every retry went to A and pkcs11-tool failed; and a dead node was tried first on
every request.
"""

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

from agent_harness import Agent  # noqa: E402
from signum_harness import Server, pem, run  # noqa: E402
from tools_harness import MODULE  # noqa: E402

USER = "alice"
KEY = "fo-ec"
THREADS = 3
PER_THREAD = 14          # pkcs11-tool runs per thread, whatever happens
LOAD_DEADLINE = 150.0    # seconds for the whole load
TOOL_TIMEOUT = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def tool_env(env):
    """pkcs11-tool is not instrumented: in the sanitizer build it loads the instrumented module
    with the sanitizer's runtime preloaded."""
    env = dict(env)
    if os.environ.get("SIGNUM_ASAN_RUNTIME"):
        env.update(LD_PRELOAD=os.environ["SIGNUM_ASAN_RUNTIME"], ASAN_OPTIONS="detect_leaks=0")
    return env

class CopyOf(Server):
    """A second node: a copy of another node's state directory, the token shared."""

    def __init__(self, source, tokendir, **kw):
        self.source = source
        self.tokendir = tokendir
        super().__init__(**kw)

    def init(self, ca_key_type=None):
        shutil.copytree(self.source.state, self.state, symlinks=True,
                        ignore=shutil.ignore_patterns("run.json", "serve.lock", "tokens*"))
        shutil.copy(self.source.admin_key_file, self.admin_key_file)
        set_tokendir(self, self.tokendir)


def set_tokendir(server, tokendir):
    path = os.path.join(server.state, "hsm", "softhsm2.conf")
    with open(path) as f:
        lines = [line for line in f.read().splitlines()
                 if not line.startswith("directories.tokendir")]
    lines.append("directories.tokendir = %s" % tokendir)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class AgentFailover(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        a = cls.a = Server(name="failover-a", ca_key_type="ec-p256")
        cls.addClassCleanup(a.cleanup)
        cls.api_key = a.create_user(USER)
        a.create_key(KEY, "ec-p256")
        a.issue_cert(KEY, "Signum failover")
        a.grant(KEY, USER)
        cls.key_id = a.get_key(KEY)["id"]
        cls.pub_pem = pem(base64.b64decode(a.get_key(KEY)["public_key"]), "PUBLIC KEY")
        a.stop()
        # The one token. Node A reaches it through a symbolic link, so that moving the link
        # away is an HSM outage of node A alone.
        cls.tokens = os.path.join(a.state, "hsm", "tokens")
        cls.link = os.path.join(a.root, "tokens-a")
        os.symlink(cls.tokens, cls.link)
        set_tokendir(a, cls.link)
        cls.ports = {"a": free_port(), "b": free_port()}
        a.set_conf({"port": cls.ports["a"]})
        b = cls.b = CopyOf(a, cls.tokens, name="failover-b", start=False)
        cls.addClassCleanup(b.cleanup)
        b.set_conf({"port": cls.ports["b"]})
        a.start()
        b.start()
        cls.agent = Agent(["https://localhost:%d" % cls.ports["a"],
                           "https://localhost:%d" % cls.ports["b"]],
                          a.ca_cert_path, api_key=cls.api_key, name="failover",
                          extra_env={"SIGNUM_NODE_BACKOFF_MS": "500",
                                     "SIGNUM_NODE_BACKOFF_MAX_MS": "4000"})
        cls.addClassCleanup(cls.agent.cleanup)
        cls.work = os.path.join(cls.agent.root, "work")
        os.mkdir(cls.work)
        cls.pub = os.path.join(cls.work, "pub.pem")
        with open(cls.pub, "w") as f:
            f.write(cls.pub_pem)

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        for s in (cls.a, cls.b):
            if s.proc is not None and s.proc.poll() is None:
                s.stop()

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result is not None else None
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            sys.stderr.write("\n%s failed\nagent log:\n%s\nA: %s\nB: %s\n" % (
                self.id(), self.agent.log(), self.a.log(40), self.b.log(40)))
        return out

    # -- helpers
    def sign_file(self, name, data):
        """pkcs11-tool signs data; returns (returncode, output, message path, signature path)."""
        msg = os.path.join(self.work, name + ".msg")
        sig = os.path.join(self.work, name + ".sig")
        with open(msg, "wb") as f:
            f.write(data)
        proc = subprocess.run(
            ["pkcs11-tool", "--module", MODULE, "--sign", "-m", "ECDSA-SHA256",
             "--signature-format", "openssl", "--id", self.key_id, "-i", msg, "-o", sig],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=tool_env(self.agent.env),
            timeout=TOOL_TIMEOUT)
        return proc.returncode, proc.stdout.decode(errors="replace"), msg, sig

    def assert_verifies(self, msg, sig):
        proc = run(["openssl", "dgst", "-sha256", "-verify", self.pub, "-signature", sig, msg])
        self.assertEqual(proc.returncode, 0, (proc.stdout + proc.stderr).decode(errors="replace"))

    def signs(self, server):
        """Sign records of a node (its state may be served meanwhile: audit show reads)."""
        return [r for r in server.audit_show() if r["action"] == "sign"]

    # -- 1: a 5xx from one node
    def test_1_hsm_outage_on_one_node_fails_over_with_the_same_request_id(self):
        rc, out, msg, sig = self.sign_file("warm", b"before the outage\n")
        self.assertEqual(rc, 0, out)
        self.assertEqual(len([r for r in self.signs(self.a) if r["outcome"] == "allowed"]), 1,
                         "the first node in the list serves while it is healthy")
        os.rename(self.link, self.link + ".away")
        try:
            for i in range(3):
                rc, out, msg, sig = self.sign_file("outage-%d" % i, b"outage %d\n" % i)
                self.assertEqual(rc, 0, out)
                self.assert_verifies(msg, sig)
        finally:
            os.rename(self.link + ".away", self.link)
        refused = [r for r in self.signs(self.a) if r["outcome"] != "allowed"]
        self.assertGreaterEqual(len(refused), 1, "node A never saw the request")
        on_b = {r["detail"].get("request_id"): r for r in self.signs(self.b)
                if r["outcome"] == "allowed"}
        for r in refused:
            rid = r["detail"].get("request_id")
            self.assertTrue(rid, "a sign request from the agent without request_id: %r" % r)
            self.assertIn(rid, on_b, "the request refused by A (%s) was not retried on B with "
                          "the same request id" % rid)
            self.assertEqual(r["detail"]["digests"], on_b[rid]["detail"]["digests"])
        sys.stderr.write("\nrefused on A and signed on B with the same request id: %s\n"
                         % ", ".join(r["detail"]["request_id"] for r in refused))
        self.assertIn("skipping that node", self.agent.log())

    # -- 2: kill -9 under load
    def test_2_kill9_under_pkcs11_load(self):
        lock = threading.Lock()
        progress = threading.Condition(lock)
        done = []       # (name, msg, sig, sha-256 of the message)
        failures = []   # (name, rc, output)
        deadline = time.monotonic() + LOAD_DEADLINE

        def worker(t):
            for i in range(PER_THREAD):
                if time.monotonic() > deadline:
                    return
                name = "load-%d-%d" % (t, i)
                data = ("%s\n" % name).encode()
                rc, out, msg, sig = self.sign_file(name, data)
                with progress:
                    if rc == 0:
                        done.append((name, msg, sig, hashlib.sha256(data).hexdigest()))
                    else:
                        failures.append((name, rc, out))
                    progress.notify_all()

        def wait_done(n):
            with progress:
                ok = progress.wait_for(lambda: len(done) + len(failures) >= n,
                                       max(1.0, deadline - time.monotonic()))
            self.assertTrue(ok, "load stalled at %d" % len(done))

        threads = [threading.Thread(target=worker, args=(t,), daemon=True)
                   for t in range(THREADS)]
        for th in threads:
            th.start()
        total = THREADS * PER_THREAD
        wait_done(total // 4)
        # The node in use dies (after test 1 that is B, which the agent prefers now).
        self.b.proc.kill()
        self.b.proc.wait(10)
        self.b.kill()
        wait_done(total // 2)
        self.b.start()       # same port: it rejoins
        wait_done(total * 5 // 8)
        self.a.proc.kill()   # now the other one dies; B must take over again
        self.a.proc.wait(10)
        self.a.kill()
        for th in threads:
            th.join(LOAD_DEADLINE)
        self.assertEqual(failures, [], "pkcs11-tool failed while a node died")
        self.assertEqual(len(done), total)
        for name, msg, sig, _ in done:
            self.assert_verifies(msg, sig)
        self.a.start()

        # Every signature a tool received has its audit record on one of the nodes.
        digests = set()
        for s in (self.a, self.b):
            for r in self.signs(s):
                if r["outcome"] == "allowed":
                    digests.update(r["detail"]["digests"])
        missing = [name for name, _, _, digest in done if digest not in digests]
        self.assertEqual(missing, [], "signatures without an audit record")
        for s in (self.a, self.b):
            s.stop()
            rc, out = s.audit_verify()
            self.assertEqual(rc, 0, out)
        log = self.agent.log()
        sys.stderr.write("\n%d pkcs11-tool signatures, 0 failed, two kill -9; agent: %d "
                         "failovers, %d node failures logged\n"
                         % (len(done), log.count("failed over to"),
                            log.count("skipping that node")))


if __name__ == "__main__":
    unittest.main()
