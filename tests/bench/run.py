#!/usr/bin/env python3
"""Signum benchmarks: what a remote key costs compared with a local one.

One command (see README: `bash scripts/bench.sh`) measures, in one run, the same PKCS#11 signing
loop against SoftHSMv2 directly (the baseline) and through libsignumpkcs11.so -> signum-agent ->
signum-server -> SoftHSMv2 on 127.0.0.1, plus `openssl speed`, the batch API, cold process cost,
server footprint and a per-phase latency breakdown from the server's own timers (/metrics),
and writes report.md with PNG plots (gnuplot).
Every figure is the median of --reps repetitions; every loop is bounded in count and time.
Benchmarks report; they never fail on a slow figure (only on a broken setup).
"""

import argparse
import json
import os
import platform
import re
import shutil
import ssl
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
Server = Agent = None  # imported in main(), once the build's binaries are known

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
ALGS = [("rsa2048", "rsa", "rsa:2048"), ("rsa3072", "rsa", "rsa:3072"),
        ("ec-p256", "ec", "EC:prime256v1"), ("ec-p384", "ec", "EC:secp384r1")]
OPENSSL_ALG = {"rsa2048": "rsa2048", "rsa3072": "rsa3072", "ec-p256": "ecdsap256",
               "ec-p384": "ecdsap384"}
THREADS = [1, 2, 8, 32]
SECTIONS = ["throughput", "openssl_speed", "batch", "cold_process", "footprint", "handoff",
            "phases", "ab"]


def sh(args, env=None, timeout=600, check=True):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s %s" % (" ".join(args), p.returncode,
                                                      p.stdout.decode()[-2000:],
                                                      p.stderr.decode()[-2000:]))
    return p


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version()}


class Bench:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out)
        os.makedirs(self.out, exist_ok=True)
        self.p11bench = os.path.join(self.build, "tests", "bench", "p11bench")
        self.batchbench = os.path.join(self.build, "tests", "bench", "batchbench")
        self.module = os.path.join(self.build, "linux-pkcs11", "libsignumpkcs11.so")
        for path in (self.p11bench, self.batchbench, self.module):
            if not os.path.exists(path):
                raise SystemExit("bench: %s is missing: build first (bash scripts/build.sh)" % path)
        self.tmp = tempfile.mkdtemp(prefix="signum-bench-")
        self.results = {"machine": machine(), "reps": args.reps, "seconds": args.seconds}

    # -- set-up ---------------------------------------------------------------------------
    def setup_softhsm(self):
        d = os.path.join(self.tmp, "softhsm")
        os.makedirs(os.path.join(d, "tokens"))
        conf = os.path.join(d, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\n" % d)
        self.hsm_env = dict(os.environ, SOFTHSM2_CONF=conf)
        sh(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin",
            "12345678", "--pin", "1234"], env=self.hsm_env)
        for i, (name, _, spec) in enumerate(ALGS):
            sh(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "bench", "--login", "--pin",
                "1234", "--keypairgen", "--key-type", spec, "--id", "%02x" % (i + 1), "--label",
                name], env=self.hsm_env)

    def start_signum(self, name, server_bin=None, extra_conf=None):
        """A server with the bench keys and an agent for it; server_bin: another binary;
        extra_conf: settings on top of --conf."""
        import signum_harness
        conf = {"workers": "16", "hsm_sessions": "16"}
        conf.update(self.a.conf)
        if extra_conf is None:
            self.results["server_conf"] = dict(conf)
        conf.update(extra_conf or {})
        saved = signum_harness.SERVER_BIN
        if server_bin:
            signum_harness.SERVER_BIN = os.path.abspath(server_bin)
        try:
            s = Server(ca_key_type="ec-p256", name=name, conf=conf)
        finally:
            signum_harness.SERVER_BIN = saved
        self.started.append(s)
        key = s.create_user("bench")
        for alg, _, _ in ALGS:
            s.create_key(alg, alg)
            s.issue_cert(alg, "Bench " + alg)
            s.grant(alg, "bench")
        agent = Agent(["https://localhost:%d" % s.port], s.ca_cert_path, api_key=key,
                      extra_env={"SIGNUM_IDLE_TIMEOUT": "3600"}, name=name)
        self.agents.append(agent)
        agent.util_ok("keys")
        return s, agent

    def setup_signum(self):
        self.started, self.agents = [], []
        self.server, self.agent = self.start_signum("bench")
        self.signum_env = dict(self.agent.env)
        if self.a.ab_server or self.a.ab_conf:
            self.server_b, self.agent_b = self.start_signum("bench-b", self.a.ab_server,
                                                            self.a.ab_conf)

    def teardown(self):
        steps = [a.cleanup for a in getattr(self, "agents", [])]
        for s in getattr(self, "started", []):
            steps += [s.stop, s.cleanup]
        for fn in steps:
            try:
                fn()
            except Exception as e:  # report, but keep tearing down
                print("teardown: %s" % e, file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- measurements ---------------------------------------------------------------------
    def p11(self, module, env, label, kind, threads, pin=""):
        p = sh([self.p11bench, module, label, pin, kind, str(threads), "10000000",
                str(self.a.seconds), "0"], env=env, check=False, timeout=self.a.seconds + 120)
        line = p.stdout.decode().strip().splitlines()
        if not line:
            raise RuntimeError("p11bench gave no result: %s" % p.stderr.decode())
        r = json.loads(line[-1])
        if r["errors"]:
            raise RuntimeError("p11bench: %d errors (last %s) against %s" % (
                r["errors"], r["last_error"], module))
        return r

    def throughput(self):
        rows = []
        for name, kind, _ in ALGS:
            if self.a.algs and name not in self.a.algs:
                continue
            for t in THREADS:
                if (self.a.quick and t not in (1, 8)) or (self.a.threads and t not in
                                                          self.a.threads):
                    continue
                direct, signum = [], []
                for _ in range(self.a.reps):
                    direct.append(self.p11(SOFTHSM, self.hsm_env, name, kind, t, "1234"))
                    signum.append(self.p11(self.module, self.signum_env, name, kind, t))
                row = {"alg": name, "threads": t,
                       "direct_per_s": median([r["per_second"] for r in direct]),
                       "signum_per_s": median([r["per_second"] for r in signum]),
                       "direct_p50_us": median([r["p50_us"] for r in direct]),
                       "signum_p50_us": median([r["p50_us"] for r in signum]),
                       "direct_p99_us": median([r["p99_us"] for r in direct]),
                       "signum_p99_us": median([r["p99_us"] for r in signum])}
                row["ratio"] = row["signum_per_s"] / row["direct_per_s"]
                row["added_p50_us"] = row["signum_p50_us"] - row["direct_p50_us"]
                rows.append(row)
                print("%-8s %2d threads: direct %8.0f/s  signum %8.0f/s  ratio %.2f  "
                      "p50 +%.0f us" % (name, t, row["direct_per_s"], row["signum_per_s"],
                                        row["ratio"], row["added_p50_us"]), flush=True)
        self.results["throughput"] = rows

    def ab(self):
        """Before/after in one run: the same loop through the module against two servers
        (--server or this build's: A; --ab-server: B), each with its own agent, interleaved
        run by run with the SoftHSMv2 baseline, so the machine's noise hits all three alike."""
        if not (self.a.ab_server or self.a.ab_conf):
            raise SystemExit("bench: the ab section needs --ab-server PATH or --ab-conf K=V")
        rows = []
        for name, kind, _ in ALGS:
            if self.a.algs and name not in self.a.algs:
                continue
            for t in self.a.threads or (1, 2, 8):
                d, a, b, paired = [], [], [], []
                acc = {"a": ({}, {}), "b": ({}, {})}

                def timed(which, server, env):
                    m0 = self.phase_values(server.metrics())
                    r = self.p11(self.module, env, name, kind, t)
                    m1 = self.phase_values(server.metrics())
                    sums, counts = acc[which]
                    for ph in m1:
                        sums[ph] = sums.get(ph, 0.0) + m1[ph]["sum"] - m0[ph]["sum"]
                        counts[ph] = counts.get(ph, 0.0) + m1[ph]["count"] - m0[ph]["count"]
                    return r
                for _ in range(self.a.reps):
                    d.append(self.p11(SOFTHSM, self.hsm_env, name, kind, t, "1234"))
                    a.append(timed("a", self.server, self.signum_env))
                    b.append(timed("b", self.server_b, dict(self.agent_b.env)))
                    paired.append(a[-1]["per_second"] / b[-1]["per_second"])
                row = {"alg": name, "threads": t,
                       "direct_per_s": median([x["per_second"] for x in d]),
                       "a_per_s": median([x["per_second"] for x in a]),
                       "b_per_s": median([x["per_second"] for x in b]),
                       "a_p50_us": median([x["p50_us"] for x in a]),
                       "b_p50_us": median([x["p50_us"] for x in b]),
                       "a_p99_us": median([x["p99_us"] for x in a]),
                       "b_p99_us": median([x["p99_us"] for x in b]),
                       "a_over_b_paired": median(paired),
                       "a_paired_all": paired}
                for which in ("a", "b"):
                    sums, counts = acc[which]
                    n = counts.get("total", 0)
                    row[which + "_phases_us"] = ({ph: sums[ph] / n * 1e6 for ph in sums
                                                 if ph not in ("tls_handshake", "fsync")}
                                                if n else None)
                row["a_ratio"] = row["a_per_s"] / row["direct_per_s"]
                row["b_ratio"] = row["b_per_s"] / row["direct_per_s"]
                rows.append(row)
                print("ab %-8s %2d threads: direct %7.0f/s  A %6.0f/s (%.2f, p50 %.0f us, p99 %.0f "
                      "us)  B %6.0f/s (%.2f, p50 %.0f us, p99 %.0f us)  A/B paired %.2f" % (
                          name, t, row["direct_per_s"], row["a_per_s"], row["a_ratio"],
                          row["a_p50_us"], row["a_p99_us"], row["b_per_s"], row["b_ratio"],
                          row["b_p50_us"], row["b_p99_us"], row["a_over_b_paired"]), flush=True)
        self.results["ab"] = {
            "a": os.environ["SIGNUM_SERVER"],
            "b": "%s%s" % (os.path.abspath(self.a.ab_server or os.environ["SIGNUM_SERVER"]),
                           "".join(" with %s = %s" % kv for kv in sorted(self.a.ab_conf.items()))),
            "rows": rows}

    def openssl_speed(self):
        out = {}
        for name, _, _ in ALGS:
            p = sh(["openssl", "speed", "-seconds", "2", OPENSSL_ALG[name]], timeout=120)
            text = p.stdout.decode()
            if name.startswith("rsa"):
                m = re.search(r"^rsa\s+%s bits\s+\S+s\s+\S+s\s+([\d.]+)" % name[3:], text, re.M)
            else:
                bits = name[-3:]
                m = re.search(r"^\s*%s bits ecdsa \(nistp%s\)\s+\S+s\s+\S+s\s+([\d.]+)" % (bits, bits),
                              text, re.M)
            out[name] = float(m.group(1)) if m else float("nan")
        self.results["openssl_speed_sign_per_s"] = out
        print("openssl speed (1 core):", out, flush=True)

    def batch(self):
        rows = []
        for name, kind, _ in (ALGS[0], ALGS[2]):
            for t in (1, 8) if self.a.quick else (1, 2, 8):
                per = {}
                for b in (1, 64):
                    runs = []
                    for _ in range(self.a.reps):
                        p = sh([self.batchbench, name, kind, str(t), str(b), "1000000",
                                str(self.a.seconds)], env=self.signum_env, check=False,
                               timeout=self.a.seconds + 120)
                        r = json.loads(p.stdout.decode().strip().splitlines()[-1])
                        if r["errors"]:
                            raise RuntimeError("batchbench errors: %s" % r)
                        runs.append(r["per_second"])
                    per[b] = median(runs)
                direct = next((r["direct_per_s"] for r in self.results.get("throughput", [])
                               if r["alg"] == name and r["threads"] == t), None)
                if direct is None:  # throughput not run: measure the baseline here
                    direct = median([self.p11(SOFTHSM, self.hsm_env, name, kind, t,
                                              "1234")["per_second"]
                                     for _ in range(self.a.reps)])
                rows.append({"alg": name, "threads": t, "single_per_s": per[1],
                             "batch64_per_s": per[64], "direct_per_s": direct,
                             "batch_ratio": per[64] / direct})
                print("batch %-8s %d threads: 1/request %.0f/s, 64/request %.0f/s (%.2f of direct)"
                      % (name, t, per[1], per[64], per[64] / direct), flush=True)
        self.results["batch"] = rows

    def cold_process(self):
        runs = {"direct": [], "signum": []}
        data = os.path.join(self.tmp, "data")
        with open(data, "wb") as f:  # CKM_ECDSA signs a digest: give it one (SHA-256 sized)
            f.write(bytes(range(32)))
        n = 10 if self.a.quick else 30
        # Select the private key by CKA_ID: a label names the public key too.
        signum_id = next(k["id"] for k in json.loads(self.agent.util_ok("keys", "--json").stdout)
                         if k["name"] == "ec-p256")
        direct_id = "%02x" % (1 + [a[0] for a in ALGS].index("ec-p256"))
        for _ in range(n):
            for label, module, env, login, key_id in (
                    ("direct", SOFTHSM, self.hsm_env, ["--login", "--pin", "1234"], direct_id),
                    ("signum", self.module, self.signum_env, [], signum_id)):
                t0 = time.monotonic()
                sh(["pkcs11-tool", "--module", module] + login +
                   ["--sign", "--mechanism", "ECDSA", "--id", key_id, "--input-file", data,
                    "--output-file", os.path.join(self.tmp, "sig")], env=env, timeout=60)
                runs[label].append((time.monotonic() - t0) * 1000)
        out = {k: median(v) for k, v in runs.items()}
        out["ratio"] = out["signum"] / out["direct"]
        out["runs"] = n
        self.results["cold_process_ms"] = out
        print("cold pkcs11-tool --sign (P-256): direct %.1f ms, signum %.1f ms (%.2fx)" % (
            out["direct"], out["signum"], out["ratio"]), flush=True)
        self.osslsigncode_loop()

    def direct_cert(self, name, key_id):
        """A certificate for SoftHSMv2's own key `name` on its token (osslsigncode takes the
        signer certificate from the token, as it does from Signum's): the token's public key in
        a certificate from a throwaway CA, made with openssl -force_pubkey."""
        d = os.path.join(self.tmp, "direct-cert")
        os.makedirs(d, exist_ok=True)
        j = lambda f: os.path.join(d, f)  # noqa: E731
        sh(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "bench", "--read-object",
            "--type", "pubkey", "--id", key_id, "-o", j("pub.der")], env=self.hsm_env)
        sh(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", j("pub.der"), "-out",
            j("pub.pem")])
        sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", j("ca.key"), "-subj", "/CN=Bench direct CA", "-days", "2",
            "-out", j("ca.pem")])
        sh(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", j("dummy.key"), "-subj", "/CN=Bench direct " + name, "-out",
            j("leaf.csr")])
        sh(["openssl", "x509", "-req", "-in", j("leaf.csr"), "-CA", j("ca.pem"), "-CAkey",
            j("ca.key"), "-force_pubkey", j("pub.pem"), "-days", "2", "-outform", "DER",
            "-out", j("leaf.der")])
        sh(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "bench", "--login", "--pin",
            "1234", "--write-object", j("leaf.der"), "--type", "cert", "--id", key_id,
            "--label", name], env=self.hsm_env)

    def osslsigncode_loop(self):
        """A release-style loop: one osslsigncode process per file signs FILES small Windows
        PEs (P-256 key, certificate from the token) through our module and, alternately,
        directly on SoftHSMv2; the total wall time of each loop."""
        files = 50 if self.a.quick else 200
        d = os.path.join(self.tmp, "pe")
        os.makedirs(d, exist_ok=True)
        src = os.path.join(d, "hello.c")
        with open(src, "w") as f:
            f.write('#include <stdio.h>\nint main(void) { puts("bench"); return 0; }\n')
        exe = os.path.join(d, "hello.exe")
        sh(["x86_64-w64-mingw32-gcc", "-O2", "-s", "-o", exe, src])
        direct_id = "%02x" % (1 + [a[0] for a in ALGS].index("ec-p256"))
        self.direct_cert("ec-p256", direct_id)
        sides = (("direct", SOFTHSM, self.hsm_env, "pkcs11:token=bench;object=ec-p256", "1234"),
                 ("signum", self.module, self.signum_env,
                  "pkcs11:token=Signum%20bench;object=ec-p256", "x"))
        runs = {"direct": [], "signum": []}
        for _ in range(self.a.reps):
            for label, module, env, uri, pin in sides:
                t0 = time.monotonic()
                for i in range(files):
                    signed = os.path.join(d, "signed-%s-%d.exe" % (label, i))
                    sh(["osslsigncode", "sign", "-pkcs11module", module, "-pkcs11cert",
                        uri + ";type=cert", "-key", uri + ";type=private", "-pass", pin, "-h",
                        "sha256", "-n", "bench", "-in", exe, "-out", signed], env=env, timeout=60)
                runs[label].append(time.monotonic() - t0)
                # The last file must verify against its CA: the loop really signed.
                ca = (os.path.join(self.tmp, "direct-cert", "ca.pem") if label == "direct"
                      else self.server.ca_cert_path)
                sh(["osslsigncode", "verify", "-CAfile", ca, "-in", signed], timeout=60)
                for i in range(files):
                    os.unlink(os.path.join(d, "signed-%s-%d.exe" % (label, i)))
        out = {k: median(v) for k, v in runs.items()}
        out["ratio"] = out["signum"] / out["direct"]
        out["files"] = files
        self.results["osslsigncode_loop_s"] = out
        print("osslsigncode loop, %d files (P-256): direct %.1f s, signum %.1f s (%.2fx)" % (
            files, out["direct"], out["signum"], out["ratio"]), flush=True)

    def footprint(self):
        pid = self.server.proc.pid

        def rss():
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
            return float("nan")

        base = rss()
        ctx = ssl.create_default_context(cafile=self.server.ca_cert_path)
        conns = []
        try:
            deadline = time.monotonic() + 120
            for i in range(1000):
                if time.monotonic() > deadline:
                    break
                # From many loopback addresses: the server caps connections per address
                # (max_connections_per_address, 64 by default).
                raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=10,
                                               source_address=("127.0.7.%d" % (1 + i % 250), 0))
                c = ctx.wrap_socket(raw, server_hostname="localhost")
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                c.recv(4096)
                conns.append(c)
            time.sleep(0.5)
            idle = rss()
        finally:
            for c in conns:
                c.close()
        self.results["footprint_mib"] = {"baseline": base, "with_idle_connections": idle,
                                         "idle_connections": len(conns)}
        print("server RSS: %.1f MiB, with %d idle TLS keep-alive connections %.1f MiB" % (
            base, len(conns), idle), flush=True)
        # Under load: sample while 32 threads sign through the module.
        samples = []
        proc = subprocess.Popen([self.p11bench, self.module, "ec-p256", "", "ec", "32", "10000000",
                                 str(self.a.seconds), "0"], env=self.signum_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while proc.poll() is None:
            samples.append(rss())
            time.sleep(0.2)
        proc.communicate()
        self.results["footprint_mib"]["under_32_thread_load_max"] = max(samples) if samples else 0

    def handoff(self):
        """What one hand-off between processes costs here (tests/bench/wakebench.c)."""
        wake = os.path.join(self.build, "tests", "bench", "wakebench")
        res = []
        for _ in range(self.a.reps):
            res.append(json.loads(sh([wake, "20000", "3"], timeout=60).stdout.decode()))
        out = {t: {k: median([r[t][k] for r in res]) for k in ("p50_us", "p99_us")}
               for t in ("unix_socket", "tcp_loopback")}
        self.results["handoff_us"] = out
        print("hand-off round trip: unix socket p50 %.0f us, tcp loopback p50 %.0f us" % (
            out["unix_socket"]["p50_us"], out["tcp_loopback"]["p50_us"]), flush=True)

    PHASES = [("http_read", "loop thread: request copied out of evhttp"),
              ("queue_wait", "dispatch queue: waiting for a worker"),
              ("auth", "bearer token check"),
              ("parse", "JSON parse, field checks, base64"),
              ("policy", "key lookup, policy decision"),
              ("audit_build", "audit detail and response objects"),
              ("hsm_sign", "HSM sign (SoftHSMv2 C_SignInit + C_Sign)"),
              ("writer_wait", "audit writer queue"),
              ("audit_write", "audit record: hash chain, INSERTs"),
              ("db_commit", "SQLite COMMIT without the sync"),
              ("db_sync", "fsync/fdatasync of the WAL (durable audit record)"),
              ("writer_wake", "commit done -> worker runs again"),
              ("response_build", "response JSON"),
              ("reply_wait", "worker -> loop thread (event_base_once)"),
              ("reply_send", "evhttp_send_reply into TLS")]

    @staticmethod
    def phase_values(m):
        out = {}
        for k, v in m.items():
            mm = re.match(r'signum_phase_seconds_(sum|count)\{phase="([a-z_]+)"\}$', k)
            if mm:
                out.setdefault(mm.group(2), {})[mm.group(1)] = v
        return out

    def phases(self):
        """Where the time goes, from the server's own phase timers (/metrics deltas around a
        p11bench run through the module), beside the client-side latency of the same run."""
        out = {}
        for name, kind, _ in ALGS:
            if name not in ("ec-p256", "rsa2048"):
                continue
            for t in (1, 8):
                sums, counts, client, per_s = {}, {}, [], []
                extra = {"commits": 0.0, "jobs": 0.0, "handshakes": 0.0, "server_cpu": 0.0,
                         "agent_cpu": 0.0, "client_cpu": 0.0}
                agent_pid = self.agent.pid()
                for _ in range(self.a.reps):
                    m0 = self.server.metrics()
                    cpu0 = (cpu_seconds(self.server.proc.pid), cpu_seconds(agent_pid),
                            children_cpu_seconds())
                    r = self.p11(self.module, self.signum_env, name, kind, t)
                    cpu1 = (cpu_seconds(self.server.proc.pid), cpu_seconds(agent_pid),
                            children_cpu_seconds())
                    m1 = self.server.metrics()
                    extra["server_cpu"] += cpu1[0] - cpu0[0]
                    extra["agent_cpu"] += cpu1[1] - cpu0[1]
                    extra["client_cpu"] += cpu1[2] - cpu0[2]
                    p0, p1 = self.phase_values(m0), self.phase_values(m1)
                    for ph in p1:
                        sums[ph] = sums.get(ph, 0.0) + p1[ph]["sum"] - p0.get(ph, {}).get("sum", 0)
                        counts[ph] = (counts.get(ph, 0.0) + p1[ph]["count"] -
                                      p0.get(ph, {}).get("count", 0))
                    extra["commits"] += (m1["signum_db_commits_total"] -
                                         m0["signum_db_commits_total"])
                    extra["jobs"] += m1["signum_db_jobs_total"] - m0["signum_db_jobs_total"]
                    extra["handshakes"] += (m1["signum_tls_handshakes_total"] -
                                            m0["signum_tls_handshakes_total"])
                    client.append(r["mean_us"] * r["signatures"])
                    per_s.append(r["per_second"])
                n = counts.get("total", 0)
                if not n:
                    raise RuntimeError("no timed sign requests: is the server built with phase "
                                       "timers?")
                row = {"requests": n, "per_second": median(per_s),
                       "client_mean_us": sum(client) / n,
                       "phases_mean_us": {ph: sums[ph] / n * 1e6 for ph, _ in self.PHASES},
                       "server_total_mean_us": sums["total"] / n * 1e6,
                       "fsync_calls_per_request": counts.get("fsync", 0) / n,
                       "fsync_mean_us": (sums.get("fsync", 0) / counts["fsync"] * 1e6
                                         if counts.get("fsync") else None),
                       "commits_per_request": extra["commits"] / n,
                       "cpu_us_per_request": {k: extra[k + "_cpu"] / n * 1e6
                                              for k in ("server", "agent", "client")},
                       "new_tls_connections": extra["handshakes"]}
                row["unaccounted_in_server_us"] = row["server_total_mean_us"] - sum(
                    row["phases_mean_us"].values())
                row["outside_server_us"] = row["client_mean_us"] - row["server_total_mean_us"]
                out["%s/%d" % (name, t)] = row
                print("phases %s %d thread(s): client mean %.0f us, server %.0f us (sync %.0f, "
                      "hsm %.0f), outside the server %.0f us; %.2f commits and %.2f fsyncs per "
                      "request" % (name, t, row["client_mean_us"], row["server_total_mean_us"],
                                   row["phases_mean_us"]["db_sync"],
                                   row["phases_mean_us"]["hsm_sign"], row["outside_server_us"],
                                   row["commits_per_request"], row["fsync_calls_per_request"]),
                      flush=True)
        self.results["phases"] = out

    # -- report -----------------------------------------------------------------------------
    def plots(self):
        if not shutil.which("gnuplot"):
            self.results["plots"] = "gnuplot missing: install it (scripts/bench.sh does)"
            return []
        pngs = []
        for name, _, _ in ALGS:
            rows = [r for r in self.results.get("throughput", []) if r["alg"] == name]
            if not rows:
                continue
            dat = os.path.join(self.out, "%s.dat" % name)
            with open(dat, "w") as f:
                for r in rows:
                    f.write("%d %.1f %.1f\n" % (r["threads"], r["direct_per_s"], r["signum_per_s"]))
            png = os.path.join(self.out, "throughput-%s.png" % name)
            script = ("set terminal png size 640,400; set output '%s'; set logscale x 2;"
                      "set title 'Signatures per second, %s'; set xlabel 'client threads';"
                      "set ylabel 'signatures/s'; set key left top; set grid;"
                      "plot '%s' using 1:2 with linespoints title 'SoftHSMv2 direct',"
                      " '' using 1:3 with linespoints title 'Signum (module -> agent -> server)'"
                      % (png, name, dat))
            sh(["gnuplot", "-e", script])
            os.unlink(dat)
            pngs.append(os.path.basename(png))
        return pngs

    def report_phases(self, ph):
        if not ph:
            return []
        keys = list(ph)
        L = ["## Where the time goes: the server's phase timers", "",
             "Mean µs per signing request from `signum_phase_seconds` at /metrics (deltas "
             "around the same p11bench loop through the module, %d runs); share of the "
             "client's mean latency. \"Outside the server\" is the client's mean latency minus "
             "the server's total: the PKCS#11 module, the IPC to the agent, the agent, curl, "
             "TLS records and the loopback kernel path." % self.a.reps, "",
             "| phase | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]

        def cell(row, us):
            return "%.0f (%.0f%%)" % (us, 100.0 * us / row["client_mean_us"])
        for name, what in self.PHASES:
            L.append("| %s: %s | " % (name, what) + " | ".join(
                cell(ph[k], ph[k]["phases_mean_us"][name]) for k in keys) + " |")
        L.append("| untimed gaps inside the server | " + " | ".join(
            cell(ph[k], ph[k]["unaccounted_in_server_us"]) for k in keys) + " |")
        L.append("| **server total** (request read -> reply into TLS) | " + " | ".join(
            "**%s**" % cell(ph[k], ph[k]["server_total_mean_us"]) for k in keys) + " |")
        L.append("| **outside the server** (module, IPC, agent, curl, TLS, loopback) | " +
                 " | ".join("**%s**" % cell(ph[k], ph[k]["outside_server_us"]) for k in keys) +
                 " |")
        L.append("| client mean latency (p11bench) | " + " | ".join(
            "%.0f" % ph[k]["client_mean_us"] for k in keys) + " |")
        L.append("| signatures/s in these runs | " + " | ".join(
            "%.0f" % ph[k]["per_second"] for k in keys) + " |")
        L.append("| commits per request (group commit) | " + " | ".join(
            "%.2f" % ph[k]["commits_per_request"] for k in keys) + " |")
        L.append("| fsync calls per request; mean µs per fsync | " + " | ".join(
            "%.2f; %s" % (ph[k]["fsync_calls_per_request"],
                          "%.0f" % ph[k]["fsync_mean_us"] if ph[k]["fsync_mean_us"] else "-")
            for k in keys) + " |")
        for who, what in (("server", "signum-server (HSM included: SoftHSMv2 runs in it)"),
                          ("agent", "signum-agent"), ("client", "p11bench + the PKCS#11 module")):
            L.append("| CPU µs per request: %s | " % what + " | ".join(
                "%.0f" % ph[k]["cpu_us_per_request"][who] for k in keys) + " |")
        L.append("| new TLS connections during the runs | " + " | ".join(
            "%.0f" % ph[k]["new_tls_connections"] for k in keys) + " |")
        L.append("")
        one = ph.get("ec-p256/1")
        if one:
            p = one["phases_mean_us"]
            rest = one["server_total_mean_us"] - p["db_sync"] - p["hsm_sign"]
            L += ["At 1 thread with P-256, a signature takes %.0f µs at the client: %.0f µs in the "
                  "server, of which %.0f µs waiting for the disk (%.2f fsync per request, %.0f µs "
                  "each on this disk: the audit record is durable before the signature leaves), "
                  "%.0f µs in the HSM and %.0f µs of server work and thread hand-offs (auth %.0f, "
                  "policy %.0f, audit record and commit %.0f, queue and reply hand-offs %.0f); "
                  "%.0f µs outside the server (module, IPC, agent, curl, TLS, loopback)." % (
                      one["client_mean_us"], one["server_total_mean_us"], p["db_sync"],
                      one["fsync_calls_per_request"], one["fsync_mean_us"] or 0, p["hsm_sign"],
                      rest, p["auth"], p["policy"],
                      p["writer_wait"] + p["audit_write"] + p["db_commit"] + p["writer_wake"],
                      p["queue_wait"] + p["reply_wait"], one["outside_server_us"]), ""]
        # On a machine where SoftHSMv2 computes on the same cores as everything else, the
        # ratio to direct is capped by CPU: direct spends cores/rate per signature; Signum
        # spends that plus the CPU of every other layer.
        cores = self.results["machine"]["cores"]
        for key in ("rsa2048/8", "ec-p256/8"):
            row, alg = ph.get(key), key.split("/")[0]
            direct = next((x["direct_per_s"] for x in self.results.get("throughput", [])
                           if x["alg"] == alg and x["threads"] == 8), None)
            if not row or not direct:
                continue
            cpu = row["cpu_us_per_request"]
            hsm_cpu = cores / direct * 1e6
            other = cpu["server"] - hsm_cpu + cpu["agent"] + cpu["client"]
            L += ["CPU ceiling, %s at 8 threads: the direct loop spends %.0f µs of CPU per "
                  "signature (%d cores / %.0f per s); through Signum the server spends %.0f µs "
                  "per request (its HSM included), the agent %.0f, the client and module %.0f: "
                  "%.0f µs besides the signature itself, so with every layer on the same %d "
                  "cores the ratio cannot exceed about %.2f here." % (
                      alg, hsm_cpu, cores, direct, cpu["server"], cpu["agent"], cpu["client"],
                      other, cores, hsm_cpu / (hsm_cpu + other)), ""]
        return L

    def report_goals(self, r):
        """The issue's numeric goals beside this run's figures (they guide work; not asserts)."""
        L = ["## Goals (issue #6)", "", "| goal | this run | met |", "|---|---|---|"]

        def row(goal, value, ok):
            L.append("| %s | %s | %s |" % (goal, value, "yes" if ok else "**no**"))
        tp = r.get("throughput", [])
        p256_1 = [x for x in tp if x["alg"] == "ec-p256" and x["threads"] == 1]
        if p256_1:
            x = p256_1[0]
            row("P-256 single requests, ratio to SoftHSMv2 direct >= 0.40 (1 thread)",
                "%.2f" % x["ratio"], x["ratio"] >= 0.40)
            row("added p50 latency per signature <= 150 µs (P-256, 1 thread)",
                "%.0f µs" % x["added_p50_us"], x["added_p50_us"] <= 150)
        for b in r.get("batch", []):
            if b["alg"] == "ec-p256":
                row("P-256 batched, ratio >= 0.80 (%d thread(s))" % b["threads"],
                    "%.2f" % b["batch_ratio"], b["batch_ratio"] >= 0.80)
        for x in tp:
            if x["alg"].startswith("rsa") and x["threads"] >= 2:
                row("%s ratio >= 0.90 at %d threads" % (x["alg"], x["threads"]),
                    "%.2f" % x["ratio"], x["ratio"] >= 0.90)
        c = r.get("cold_process_ms")
        if c:
            row("cold `pkcs11-tool --sign` with a warm agent <= 1.0× direct", "%.2f×" % c["ratio"],
                c["ratio"] <= 1.0)
        o = r.get("osslsigncode_loop_s")
        if o:
            row("%d-file `osslsigncode` loop <= 1.0× direct" % o["files"], "%.2f×" % o["ratio"],
                o["ratio"] <= 1.0)
        f = r.get("footprint_mib")
        if f:
            row("server RSS with %d idle TLS connections <= 64 MiB" % f["idle_connections"],
                "%.0f MiB" % f["with_idle_connections"], f["with_idle_connections"] <= 64)
        L.append("")
        return L

    def report(self, pngs):
        r = self.results
        m = r["machine"]
        r.setdefault("throughput", [])
        r.setdefault("batch", [])
        L = ["# Signum benchmark report", "",
             "Machine: %d cores, %s, Linux %s. Each figure is the median of %d runs of %.0f s; "
             "baselines were measured in the same run." % (m["cores"], m["cpu"], m["kernel"],
                                                          r["reps"], r["seconds"]), "",
             "Server settings: %s." % ", ".join(
                 "%s = %s" % kv for kv in sorted(r.get("server_conf", {}).items())), ""]
        if r["throughput"]:
            L += ["## Throughput and latency through libsignumpkcs11.so (ratio to SoftHSMv2 "
                  "direct)", "",
                  "| key | threads | direct/s | Signum/s | ratio | direct p50 µs | Signum p50 µs "
                  "| added p50 µs | Signum p99 µs |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for x in r["throughput"]:
            L.append("| %s | %d | %.0f | %.0f | **%.2f** | %.0f | %.0f | %.0f | %.0f |" % (
                x["alg"], x["threads"], x["direct_per_s"], x["signum_per_s"], x["ratio"],
                x["direct_p50_us"], x["signum_p50_us"], x["added_p50_us"], x["signum_p99_us"]))
        if "openssl_speed_sign_per_s" in r:
            L += ["", "`openssl speed` (one core, signatures/s): " + ", ".join(
                "%s %.0f" % kv for kv in r["openssl_speed_sign_per_s"].items()), ""]
        L += [] if not r["batch"] else ["## Batch API (64 digests per request)", "",
              "| key | threads | 1 per request/s | 64 per request/s | ratio to direct |",
              "|---|---|---|---|---|"]
        for x in r["batch"]:
            L.append("| %s | %d | %.0f | %.0f | **%.2f** |" % (
                x["alg"], x["threads"], x["single_per_s"], x["batch64_per_s"], x["batch_ratio"]))
        if "ab" in r:
            L += ["## Before/after: two servers in one run", "",
                  "A: `%s`; B: `%s`; same agent and module, runs interleaved with the SoftHSMv2 "
                  "baseline." % (r["ab"]["a"], r["ab"]["b"]), "",
                  "| key | threads | direct/s | A/s | A ratio | A p50 / p99 µs | B/s | B ratio | "
                  "B p50 / p99 µs | A/B (paired median) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
            for x in r["ab"]["rows"]:
                L.append("| %s | %d | %.0f | %.0f | %.2f | %.0f / %.0f | %.0f | %.2f | %.0f / %.0f "
                         "| **%.2f** |" % (
                             x["alg"], x["threads"], x["direct_per_s"], x["a_per_s"], x["a_ratio"],
                             x["a_p50_us"], x.get("a_p99_us", float("nan")), x["b_per_s"],
                             x["b_ratio"], x["b_p50_us"], x.get("b_p99_us", float("nan")),
                             x["a_over_b_paired"]))
            L.append("")
            rows = [x for x in r["ab"]["rows"] if x.get("a_phases_us") and x.get("b_phases_us")]
            if rows:
                L += ["Server phase timers, mean µs per request, A / B:", "",
                      "| phase | " + " | ".join("%s/%d" % (x["alg"], x["threads"])
                                                for x in rows) + " |",
                      "|---|" + "---|" * len(rows)]
                for ph, _ in self.PHASES + [("total", "")]:
                    L.append("| %s | " % ph + " | ".join(
                        "%.0f / %.0f" % (x["a_phases_us"].get(ph, 0), x["b_phases_us"].get(ph, 0))
                        for x in rows) + " |")
                L.append("")
        if "cold_process_ms" in r:
            c = r["cold_process_ms"]
            L += ["", "## Cold process", "",
                  "One `pkcs11-tool --sign` (P-256) process, median of %d: SoftHSMv2 direct "
                  "%.1f ms, through Signum with a warm agent %.1f ms: **%.2f×**." % (
                      c["runs"], c["direct"], c["signum"], c["ratio"]), ""]
        if "osslsigncode_loop_s" in r:
            o = r["osslsigncode_loop_s"]
            L += ["One `osslsigncode sign` process per file for %d small Windows PEs (P-256, "
                  "certificate from the token), whole loop, median of %d: SoftHSMv2 direct "
                  "%.1f s, through Signum %.1f s: **%.2f×** (%.1f vs %.1f ms per file)." % (
                      o["files"], r["reps"], o["direct"], o["signum"], o["ratio"],
                      o["direct"] / o["files"] * 1e3, o["signum"] / o["files"] * 1e3), ""]
        if "handoff_us" in r:
            h = r["handoff_us"]
            L += ["## Hand-offs on this machine", "",
                  "`wakebench`: one byte back and forth between two processes, median of %d "
                  "runs: Unix socket round trip p50 %.0f µs (p99 %.0f), TCP on 127.0.0.1 p50 %.0f "
                  "µs (p99 %.0f). A round trip is two wake-ups of a sleeping thread. A remote "
                  "signature makes three such round trips between threads (module -> agent over "
                  "a Unix socket, agent -> server event loop over TCP, event loop -> worker "
                  "through a queue and back), so its floor here is about %.0f µs before any "
                  "work (the queue hop counted as a Unix socket round trip)." % (
                      r["reps"], h["unix_socket"]["p50_us"], h["unix_socket"]["p99_us"],
                      h["tcp_loopback"]["p50_us"], h["tcp_loopback"]["p99_us"],
                      h["unix_socket"]["p50_us"] * 2 + h["tcp_loopback"]["p50_us"]), ""]
        if "footprint_mib" in r:
            f = r["footprint_mib"]
            L += ["## Server footprint", "",
                  "RSS %.1f MiB at rest; %.1f MiB with %d idle keep-alive TLS connections; at "
                  "most %.1f MiB under the 32-thread load." % (
                      f["baseline"], f["with_idle_connections"], f["idle_connections"],
                      f["under_32_thread_load_max"]), ""]
        L += self.report_phases(r.get("phases"))
        L += self.report_goals(r)
        L += ["", "## Plots", ""] + ["![%s](%s)" % (p, p) for p in pngs]
        with open(os.path.join(self.out, "report.md"), "w") as fh:
            fh.write("\n".join(L) + "\n")
        with open(os.path.join(self.out, "results.json"), "w") as fh:
            json.dump(r, fh, indent=2)
        print("report: %s" % os.path.join(self.out, "report.md"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "bench-out"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true", help="fewer thread counts and runs")
    ap.add_argument("--only", default=",".join(x for x in SECTIONS if x != "ab"),
                    help="comma-separated sections to run, of: %s (default: all but ab, which "
                    "compares two servers: --ab-server and/or --ab-conf)" % ",".join(SECTIONS))
    ap.add_argument("--algs", default="", help="throughput: only these keys, e.g. ec-p256,rsa2048")
    ap.add_argument("--threads", default="", help="throughput: only these thread counts, e.g. 1,8")
    ap.add_argument("--server", help="another signum-server binary (e.g. a baseline build), "
                    "with the agent and module of --build")
    ap.add_argument("--from-json", metavar="RESULTS",
                    help="only rewrite report.md (and plots) from a results.json of a run")
    ap.add_argument("--ab-server", help="for the ab section: the other signum-server binary")
    ap.add_argument("--ab-conf", action="append", default=[], metavar="KEY=VALUE",
                    help="for the ab section: settings of server B only, e.g. audit_sync=normal")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="a signum-server.conf setting, e.g. audit_sync=normal (repeatable)")
    args = ap.parse_args()
    args.conf = dict(kv.split("=", 1) for kv in args.conf)
    args.ab_conf = dict(kv.split("=", 1) for kv in args.ab_conf)
    if "ab" in args.only and not (args.ab_server or args.ab_conf):
        raise SystemExit("bench: the ab section needs --ab-server PATH and/or --ab-conf K=V")
    args.only = [x for x in args.only.split(",") if x]
    for x in args.only:
        if x not in SECTIONS:
            raise SystemExit("bench: unknown section %r (sections: %s)" % (x, ",".join(SECTIONS)))
    args.algs = [x for x in args.algs.split(",") if x]
    args.threads = [int(x) for x in args.threads.split(",") if x]
    build = os.path.abspath(args.build)
    # The harnesses take their binaries from the environment: this build's, not another's.
    os.environ["SIGNUM_SERVER"] = (os.path.abspath(args.server) if args.server else
                                   os.path.join(build, "server", "signum-server"))
    os.environ["SIGNUM_AGENT"] = os.path.join(build, "agent-core", "signum-agent")
    os.environ["SIGNUM_UTIL"] = os.path.join(build, "agent-core", "signum-util")
    global Server, Agent
    from signum_harness import Server  # noqa: E402
    from agent_harness import Agent  # noqa: E402
    b = Bench(args)
    if args.from_json:
        with open(args.from_json) as f:
            b.results = json.load(f)
        b.report(b.plots())
        return
    try:
        b.setup_softhsm()
        b.setup_signum()
        for section in SECTIONS:  # in this order, whatever the order given
            if section in args.only:
                getattr(b, section)()
        b.report(b.plots())
    finally:
        b.teardown()


if __name__ == "__main__":
    main()
