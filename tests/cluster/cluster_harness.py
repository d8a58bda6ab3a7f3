"""A cluster on 127.0.0.1 for tests and benchmarks: N signum-server nodes on one PostgreSQL
database and one networked token (`p11-kit server` exporting SoftHSMv2, p11-kit-client.so in
each node), behind HAProxy (TCP, TLS end to end, health checks on /healthz/ready).

Node 1 runs `signum-server init --database URL --hsm-token ... --hsm-pin-file ...`; the other
nodes start from a copy of its state directory, so they share its CA, audit key, TLS
certificate and configuration, and so the database. Standard library only."""

import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import pg_harness  # noqa: E402
from p11kit_harness import P11KitServer, client_module, make_softhsm_token  # noqa: E402
from signum_harness import SERVER_BIN, Server, run  # noqa: E402

TOKEN, PIN = "cluster", "87654321"


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



class Cluster:
    """PostgreSQL (the given one, or one started here), the token, n nodes and HAProxy."""

    def __init__(self, root, nodes=3, pg_root=None, dbname=None, conf=None):
        self.root = root
        self.cleanups = []
        if not pg_root:
            pg_root = pg_harness.start(os.path.join(root, "pg"))
            self.cleanups.append(lambda: pg_harness.stop(pg_root))
        self.pg_root = pg_root
        dbname = dbname or "cluster_%d_%d" % (os.getpid(), int(time.monotonic() * 1000))
        pg_harness.create_database(pg_root, dbname)
        conf_path = make_softhsm_token(os.path.join(root, "hsm"), TOKEN, PIN)
        self.hsm = P11KitServer(conf_path, TOKEN, os.path.join(root, "p11kit.sock"))
        self.hsm.start()
        self.cleanups.append(self.hsm.kill)
        os.environ["P11_KIT_SERVER_ADDRESS"] = self.hsm.address
        pin_file = os.path.join(root, "hsm-user.pin")
        with open(os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(PIN + "\n")
        first = Node("node1", free_port(), pg_url=pg_harness.url(pg_root, dbname),
                     pin_file=pin_file)
        self.nodes = [first] + [Node("node%d" % i, free_port(), source=first)
                                for i in range(2, nodes + 1)]
        for i, n in enumerate(self.nodes):
            n.name_ = "n%d" % (i + 1)
            self.cleanups.append(n.cleanup)
            if conf:
                n.set_conf(conf)
            n.start()
        self.lb_port = free_port()
        self.lb = HAProxy(root, self.lb_port, self.nodes, first.ca_cert_path)
        self.cleanups.append(self.lb.stop)
        wait(lambda: set(self.lb.status().values()) == {"UP"},
             "HAProxy sees %d nodes UP" % nodes)

    def cleanup(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001 - best effort, every part is tried
                pass
        self.cleanups = []


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
