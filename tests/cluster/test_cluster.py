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
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import pg_harness  # noqa: E402
from agent_harness import Agent  # noqa: E402
from p11kit_harness import P11KitServer, client_module, make_softhsm_token  # noqa: E402
from signum_harness import SERVER_BIN, Server, run  # noqa: E402

MODULE = os.environ.get("SIGNUM_PKCS11") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "linux-pkcs11", "libsignumpkcs11.so"))
TOKEN, PIN = "cluster", "87654321"
THREADS = 3
LOOP_MAX = 30         # pkcs11-tool runs per thread, at most
LOOP_SECONDS = 150.0  # and for at most this long
KEY = "cl-ec"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node(Server):
    """A node; node 1 initialises the shared database and token, the others copy its state
    directory (same CA, audit key, TLS certificate and configuration, so the same database)."""

    def __init__(self, name, port, source=None, pg_url=None, pin_file=None):
        self.fixed_port, self.source, self.pg_url, self.pin_file = port, source, pg_url, pin_file
        super().__init__(name=name, start=False)
        self.set_conf({"port": str(port)})

    def init(self, ca_key_type=None):
        if self.source is not None:
            shutil.copytree(self.source.state, self.state,
                            ignore=shutil.ignore_patterns("run.json", "*.lock"))
            shutil.copyfile(self.source.admin_key_file, self.admin_key_file)
            self.init_output = ""
            return None
        proc = run([SERVER_BIN, "init", "--state", self.state, "--admin-key-file",
                    self.admin_key_file, "--port", "0", "--ca-key-type", "ec-p256",
                    "--hsm-module", client_module(), "--hsm-token", TOKEN,
                    "--hsm-pin-file", self.pin_file, "--database", self.pg_url])
        self.init_output = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError("init failed: %s %s" % (self.init_output, proc.stderr.decode()))
        return proc

    def ready(self):
        r = self.request("GET", "/healthz/ready")
        return r.status == 200


class HAProxy:
    def __init__(self, root, port, nodes, ca_file):
        self.cfg = os.path.join(root, "haproxy.cfg")
        self.sock = os.path.join(root, "haproxy.sock")
        servers = "".join("    server %s 127.0.0.1:%d\n" % (n.name_, n.fixed_port) for n in nodes)
        with open(self.cfg, "w") as f:
            f.write(
                "global\n    maxconn 512\n    stats socket %s mode 600 level admin\n"
                "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n"
                "    timeout server 60s\n    retries 3\n    option redispatch\n"
                "frontend signum\n    bind 127.0.0.1:%d\n    default_backend nodes\n"
                "backend nodes\n    balance roundrobin\n    option httpchk\n"
                "    http-check send meth GET uri /healthz/ready ver HTTP/1.1 hdr Host localhost\n"
                "    http-check expect status 200\n"
                "    default-server check check-ssl verify required ca-file %s inter 300ms"
                " fall 1 rise 2\n%s" % (self.sock, port, ca_file, servers))
        run(["haproxy", "-c", "-q", "-f", self.cfg], check=True)
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(self):
        """{server name: UP/DOWN/...} from the stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        out = {}
        for line in data.decode().splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0] == "nodes" and f[1] not in ("BACKEND", "FRONTEND"):
                out[f[1]] = f[17]
        return out

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="signum-cluster-")
        cls.addClassCleanup(shutil.rmtree, cls.root, ignore_errors=True)
        # PostgreSQL, one database for the cluster.
        cls.pg_root = os.environ.get("SIGNUM_TEST_PG")
        if not cls.pg_root:
            cls.pg_root = pg_harness.start(os.path.join(cls.root, "pg"))
            cls.addClassCleanup(pg_harness.stop, cls.pg_root)
        dbname = "cluster_%d" % os.getpid()
        pg_harness.create_database(cls.pg_root, dbname)
        # The networked token.
        conf = make_softhsm_token(os.path.join(cls.root, "hsm"), TOKEN, PIN)
        cls.hsm = P11KitServer(conf, TOKEN, os.path.join(cls.root, "p11kit.sock"))
        cls.hsm.start()
        cls.addClassCleanup(cls.hsm.kill)
        os.environ["P11_KIT_SERVER_ADDRESS"] = cls.hsm.address
        pin_file = os.path.join(cls.root, "hsm-user.pin")
        with open(os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(PIN + "\n")
        # Three nodes.
        first = Node("node1", free_port(), pg_url=pg_harness.url(cls.pg_root, dbname),
                     pin_file=pin_file)
        cls.nodes = [first] + [Node("node%d" % i, free_port(), source=first) for i in (2, 3)]
        for i, n in enumerate(cls.nodes):
            n.name_ = "n%d" % (i + 1)
            cls.addClassCleanup(n.cleanup)
            n.start()
        cls.lb_port = free_port()
        cls.lb = HAProxy(cls.root, cls.lb_port, cls.nodes, first.ca_cert_path)
        cls.addClassCleanup(cls.lb.stop)
        cls.wait(lambda: set(cls.lb.status().values()) == {"UP"}, "HAProxy sees three nodes UP")

    @staticmethod
    def wait(cond, what, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("timed out waiting: " + what)

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
                                    "-i", msg, "-o", sig], env=agent.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
                with lock:
                    results.append((msg, sig, p.returncode, p.stdout.decode(errors="replace")))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        self.wait(lambda: len(results) >= 12, "the load got going", 120)
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
        for n in self.nodes:
            if n is not n2:
                n.stop()
        rc, out = n1.audit_verify()
        self.assertEqual(rc, 0, out)
        sys.stderr.write("cluster: %d pkcs11-tool signatures (%d before the kill, %d after the "
                         "rejoin), 0 failed; %d audit records verified\n"
                         % (len(results), killed_at, len(results) - rejoined_at, len(recs)))

if __name__ == "__main__":
    unittest.main(verbosity=2)
