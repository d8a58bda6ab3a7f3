"""Scale-out benchmark: signatures per second of one signum-server on SQLite, one on
PostgreSQL, and 1, 2 and 3 nodes on PostgreSQL with a networked token (p11-kit) behind HAProxy,
all measured in one run on this machine, as ratios to the first.

Every configuration gets the same load: THREADS client threads, each with a keep-alive HTTPS
connection, sending one-digest ECDSA P-256 sign requests for SECONDS seconds (bounded in count
too). The clients, the nodes, PostgreSQL, the p11-kit server and HAProxy share the machine's
cores: on a 2-core machine more nodes cannot add capacity, so the node columns show what the
cluster costs (shared database, advisory writer lock, network hops), not what it scales to.

    python3 tests/bench/cluster.py [--build build] [--seconds 5] [--threads 8] [--out DIR]
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

MAX_REQUESTS = 200000  # per configuration, whatever the seconds


def load(host_port, ca_file, token, seconds, threads):
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=ca_file)
    counts, errors = [0] * threads, [0] * threads
    deadline = time.monotonic() + seconds
    budget = [MAX_REQUESTS]
    lock = threading.Lock()

    def worker(i):
        conn = http.client.HTTPSConnection("localhost", host_port, context=ctx, timeout=30)
        n = 0
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            digest = hashlib.sha256(b"bench %d %d" % (i, n)).digest()
            body = json.dumps({"key": "bench-ec", "mechanism": "ecdsa", "hash": "sha256",
                               "digest": base64.b64encode(digest).decode()})
            try:
                conn.request("POST", "/api/v1/sign", body,
                             {"Authorization": "Bearer " + token,
                              "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    counts[i] += 1
                else:
                    errors[i] += 1
            except OSError:
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPSConnection("localhost", host_port, context=ctx,
                                                   timeout=30)
            n += 1
        conn.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 120)
    elapsed = time.monotonic() - t0
    return sum(counts) / elapsed, sum(errors)


def prepare(node):
    api_key = node.create_user("bench")
    node.create_key("bench-ec", "ec-p256")
    node.grant("bench-ec", "bench")
    return node.token_for(api_key)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "bench-out"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ.setdefault("SIGNUM_SERVER", os.path.join(build, "server", "signum-server"))

    import pg_harness
    root = tempfile.mkdtemp(prefix="signum-bench-cluster-")
    pg_root = pg_harness.start(os.path.join(root, "pg"))
    rows = []
    try:
        import signum_harness
        from cluster_harness import Cluster

        def single(name, pg):
            signum_harness.PG_ROOT = pg_root if pg else None
            s = signum_harness.Server(name=name)
            try:
                token = prepare(s)
                rate, errs = load(s.port, s.ca_cert_path, token, args.seconds, args.threads)
            finally:
                s.cleanup()
            return rate, errs

        rows.append(("1 node, SQLite, SoftHSMv2 in-process",) + single("bench-sqlite", False))
        rows.append(("1 node, PostgreSQL, SoftHSMv2 in-process",) + single("bench-pg", True))
        signum_harness.PG_ROOT = None
        for n in (1, 2, 3):
            c = Cluster(os.path.join(root, "c%d" % n), n, pg_root=pg_root)
            try:
                token = prepare(c.nodes[0])
                rate, errs = load(c.lb_port, c.nodes[0].ca_cert_path, token, args.seconds,
                                  args.threads)
            finally:
                c.cleanup()
            rows.append(("%d node%s, PostgreSQL, p11-kit token, HAProxy" % (n, "s" * (n > 1)),
                         rate, errs))
    finally:
        pg_harness.stop(pg_root)
        shutil.rmtree(root, ignore_errors=True)

    base = rows[0][1] or 1.0
    lines = ["## Scale-out (tests/bench/cluster.py)", "",
             "%d client threads, one-digest ECDSA P-256 requests, %.0f s per configuration, "
             "%d cores." % (args.threads, args.seconds, os.cpu_count() or 0), "",
             "| configuration | signatures/s | ratio to SQLite, 1 node | errors |",
             "|---|---:|---:|---:|"]
    for name, rate, errs in rows:
        lines.append("| %s | %.0f | %.2f | %d |" % (name, rate, rate / base, errs))
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cluster.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0 if all(r[2] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
