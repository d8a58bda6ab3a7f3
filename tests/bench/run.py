#!/usr/bin/env python3
"""Signum benchmarks: what a remote key costs compared with a local one.

One command (see README: `bash scripts/bench.sh`) measures, in one run, the same PKCS#11 signing
loop against SoftHSMv2 directly (the baseline) and through libsignumpkcs11.so -> signum-agent ->
signum-server -> SoftHSMv2 on 127.0.0.1, plus `openssl speed`, the batch API, cold process cost,
server footprint and a latency breakdown, and writes report.md with PNG plots (gnuplot).
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


def sh(args, env=None, timeout=600, check=True):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s %s" % (" ".join(args), p.returncode,
                                                      p.stdout.decode()[-2000:],
                                                      p.stderr.decode()[-2000:]))
    return p


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

    def setup_signum(self):
        self.server = Server(ca_key_type="ec-p256", name="bench",
                             conf={"workers": "16", "hsm_sessions": "16"})
        s = self.server
        key = s.create_user("bench")
        for name, _, _ in ALGS:
            s.create_key(name, name)
            s.issue_cert(name, "Bench " + name)
            s.grant(name, "bench")
        self.agent = Agent(["https://localhost:%d" % s.port], s.ca_cert_path, api_key=key,
                           extra_env={"SIGNUM_IDLE_TIMEOUT": "3600"}, name="bench")
        self.agent.util_ok("keys")
        self.signum_env = dict(self.agent.env)

    def teardown(self):
        for fn in (lambda: self.agent.cleanup(), lambda: self.server.stop(),
                   lambda: self.server.cleanup()):
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
            for t in THREADS:
                if self.a.quick and t not in (1, 8):
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
                direct = next(r["direct_per_s"] for r in self.results["throughput"]
                              if r["alg"] == name and r["threads"] == t)
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
            for _ in range(1000):
                if time.monotonic() > deadline:
                    break
                raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
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

    def breakdown(self):
        """Where the time goes, by subtraction between layers measured in this run (1 thread,
        P-256, p50): HSM alone; the HTTPS API (TLS, JSON, auth, audit commit, HSM) with a
        keep-alive client; the whole path through the module (PKCS#11 + IPC + agent)."""
        s = self.server
        token = s.token_for(self.agent.env["SIGNUM_API_KEY"])
        conn = s.connection()
        body = json.dumps({"key": "ec-p256", "mechanism": "ecdsa", "hash": "sha256",
                           "digest": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="})
        lat = []
        deadline = time.monotonic() + self.a.seconds
        while time.monotonic() < deadline and len(lat) < 20000:
            t0 = time.perf_counter()
            conn.request("POST", "/api/v1/sign", body=body, headers={
                "Authorization": "Bearer " + token, "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("sign over HTTPS: %d" % r.status)
            lat.append((time.perf_counter() - t0) * 1e6)
        lat.sort()
        api_p50 = lat[len(lat) // 2]
        row = next(r for r in self.results["throughput"] if r["alg"] == "ec-p256"
                   and r["threads"] == 1)
        hsm = row["direct_p50_us"]
        full = row["signum_p50_us"]
        m = s.metrics()
        self.results["breakdown_us"] = {
            "hsm_sign": hsm,
            "server_https_api": api_p50,
            "server_overhead_tls_json_auth_audit": api_p50 - hsm,
            "full_path_through_module": full,
            # Only meaningful when the probe client is faster than the agent; Python's
            # http.client often is not, and then the layers cannot be separated this way.
            "provider_ipc_agent": full - api_p50 if full > api_p50 else None,
            "db_commits": m.get("signum_db_commits_total"),
            "db_jobs": m.get("signum_db_jobs_total"),
        }
        print("breakdown (p50, us): %s" % self.results["breakdown_us"], flush=True)

    # -- report -----------------------------------------------------------------------------
    def plots(self):
        if not shutil.which("gnuplot"):
            self.results["plots"] = "gnuplot missing: install it (scripts/bench.sh does)"
            return []
        pngs = []
        for name, _, _ in ALGS:
            rows = [r for r in self.results["throughput"] if r["alg"] == name]
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

    def report(self, pngs):
        r = self.results
        m = r["machine"]
        L = ["# Signum benchmark report", "",
             "Machine: %d cores, %s, Linux %s. Each figure is the median of %d runs of %.0f s; "
             "baselines were measured in the same run." % (m["cores"], m["cpu"], m["kernel"],
                                                          r["reps"], r["seconds"]), "",
             "## Throughput and latency through libsignumpkcs11.so (ratio to SoftHSMv2 direct)", "",
             "| key | threads | direct/s | Signum/s | ratio | direct p50 µs | Signum p50 µs | added p50 µs | Signum p99 µs |",
             "|---|---|---|---|---|---|---|---|---|"]
        for x in r["throughput"]:
            L.append("| %s | %d | %.0f | %.0f | **%.2f** | %.0f | %.0f | %.0f | %.0f |" % (
                x["alg"], x["threads"], x["direct_per_s"], x["signum_per_s"], x["ratio"],
                x["direct_p50_us"], x["signum_p50_us"], x["added_p50_us"], x["signum_p99_us"]))
        L += ["", "`openssl speed` (one core, signatures/s): " + ", ".join(
            "%s %.0f" % kv for kv in r["openssl_speed_sign_per_s"].items()), ""]
        L += ["## Batch API (64 digests per request)", "",
              "| key | threads | 1 per request/s | 64 per request/s | ratio to direct |",
              "|---|---|---|---|---|"]
        for x in r["batch"]:
            L.append("| %s | %d | %.0f | %.0f | **%.2f** |" % (
                x["alg"], x["threads"], x["single_per_s"], x["batch64_per_s"], x["batch_ratio"]))
        c = r["cold_process_ms"]
        L += ["", "## Cold process", "",
              "One `pkcs11-tool --sign` (P-256) process, median of %d: SoftHSMv2 direct %.1f ms, "
              "through Signum with a warm agent %.1f ms: **%.2f×**." % (
                  c["runs"], c["direct"], c["signum"], c["ratio"]), ""]
        f = r["footprint_mib"]
        L += ["## Server footprint", "",
              "RSS %.1f MiB at rest; %.1f MiB with %d idle keep-alive TLS connections; at most "
              "%.1f MiB under the 32-thread load." % (f["baseline"], f["with_idle_connections"],
                                                     f["idle_connections"],
                                                     f["under_32_thread_load_max"]), ""]
        b = r["breakdown_us"]
        L += ["## Where the time goes (1 thread, P-256, p50, µs)", "",
              "| layer | µs |", "|---|---|",
              "| HSM sign (SoftHSMv2 via PKCS#11) | %.0f |" % b["hsm_sign"],
              "| server: TLS, HTTP, JSON, auth, audit commit (HTTPS API minus HSM) | %.0f |"
              % b["server_overhead_tls_json_auth_audit"],
              "| provider + IPC + agent (module path minus HTTPS API) | %s |"
              % ("%.0f" % b["provider_ipc_agent"] if b["provider_ipc_agent"] is not None else
                 "not separable: the Python probe client is slower than the agent; server-side "
                 "phase timers are the next step"),
              "| total through the module | %.0f |" % b["full_path_through_module"], "",
              "Database commits %s for %s jobs in the server's lifetime (group commit)." % (
                  b["db_commits"], b["db_jobs"]), ""]
        L += ["## Goals", "",
              "Reported against the issue's goals (they guide work; they are not asserts)."]
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
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    # The harnesses take their binaries from the environment: this build's, not another's.
    os.environ["SIGNUM_SERVER"] = os.path.join(build, "server", "signum-server")
    os.environ["SIGNUM_AGENT"] = os.path.join(build, "agent-core", "signum-agent")
    os.environ["SIGNUM_UTIL"] = os.path.join(build, "agent-core", "signum-util")
    global Server, Agent
    from signum_harness import Server  # noqa: E402
    from agent_harness import Agent  # noqa: E402
    b = Bench(args)
    try:
        b.setup_softhsm()
        b.setup_signum()
        b.throughput()
        b.openssl_speed()
        b.batch()
        b.cold_process()
        b.footprint()
        b.breakdown()
        b.report(b.plots())
    finally:
        b.teardown()


if __name__ == "__main__":
    main()
