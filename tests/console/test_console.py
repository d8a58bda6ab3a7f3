"""The admin console in a real browser: Debian's Chromium, headless, driven by playwright-core
(console.test.mjs, pinned in package.json/package-lock.json, installed by
scripts/install-deps.sh with npm ci) against a real signum-server with SoftHSMv2.

This file starts the server, hands the browser script its URL and the admin's API key, and
does for it what happens outside the browser: a signer's pkcs11-tool signing through
libsignumpkcs11.so and a running signum-agent, filing a sign request that needs approval and
collecting it. The two talk over a line protocol: the script prints "@@PY {json}" and reads
one JSON line back. Screenshots go to $SIGNUM_SCREENSHOTS (the build tree)."""

import json
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
from agent_harness import Agent  # noqa: E402
from signum_harness import HASHES, Server, b64  # noqa: E402
from signum_jwt import EcKey  # noqa: E402

MODULE = os.environ.get("SIGNUM_PKCS11") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "linux-pkcs11", "libsignumpkcs11.so"))
NODE = shutil.which("node") or "/usr/bin/node"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BROWSER_TIMEOUT = 240.0  # the whole browser scenario (it takes well under a minute)


class ConsoleBrowserTest(unittest.TestCase):
    def setUp(self):
        # Missing tools are a failure, not a skip: scripts/install-deps.sh installs them.
        self.assertTrue(os.access(CHROMIUM, os.X_OK), "no %s: run scripts/install-deps.sh" % CHROMIUM)
        self.assertTrue(os.access(NODE, os.X_OK), "no node: run scripts/install-deps.sh")
        self.assertTrue(os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")),
                        "no tests/console/node_modules: run scripts/install-deps.sh (npm ci)")
        # A syslog receiver on 127.0.0.1 for the audit exporter the dashboard shows (what it
        # receives is not read: the exporter's progress is the server's to report).
        self.syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.syslog.close)
        self.syslog.bind(("127.0.0.1", 0))
        # A checkpoint every 5 records, so the audit page has a signed one to show.
        self.server = Server(ca_key_type="ec-p256", name="console", start=False,
                             conf={"audit_checkpoint_records": "5",
                                   "alerts_config": "alerts.json",
                                   "export_syslog_udp": "127.0.0.1:%d" % self.syslog.getsockname()[1]})
        self.addCleanup(self.server.cleanup)
        # An alert rule the scenario's signature trips: signing is allowed on one weekday only,
        # three days from today (UTC), so the dashboard has an alert to show.
        day = time.strftime("%a", time.gmtime(time.time() + 3 * 86400)).lower()
        with open(os.path.join(self.server.state, "alerts.json"), "w") as f:
            json.dump({"rules": [{"name": "console-after-hours", "type": "outside_hours",
                                  "per": "signer", "windows": [{"days": [day], "start": "00:00",
                                                                "end": "24:00"}]}]}, f)
        self.server.start()
        self.requester_cert = None
        self.agents = {}
        self.tmp = tempfile.mkdtemp(prefix="signum-console-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    # -- what the browser script asks of us
    def agent(self, api_key):
        if api_key not in self.agents:
            s = self.server
            a = Agent(["https://localhost:%d" % s.port], s.ca_cert_path, api_key=api_key,
                      name="console", extra_env={"SIGNUM_KEYS_REFRESH": "1"})
            self.addCleanup(a.cleanup)
            self.agents[api_key] = a
        return self.agents[api_key]

    def op_p11_sign(self, req):
        a = self.agent(req["api_key"])
        data, sig = os.path.join(a.root, "msg"), os.path.join(a.root, "msg.sig")
        with open(data, "wb") as f:
            f.write(b"signed through the console test %f" % time.time())
        env = dict(a.env)
        if os.environ.get("SIGNUM_ASAN_RUNTIME"):
            env.update(LD_PRELOAD=os.environ["SIGNUM_ASAN_RUNTIME"], ASAN_OPTIONS="detect_leaks=0")
        # No --pin: the agent logs in with SIGNUM_API_KEY, and a PIN on the command line would
        # land in the audit record's command_line (the console test's screenshots show it).
        login = ["--login", "--pin", req["pin"]] if req.get("pin") else []
        proc = subprocess.run(["pkcs11-tool", "--module", MODULE] + login + ["--sign", "-m", "ECDSA-SHA256", "--label", req["key"], "-i", data,
                               "-o", sig], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)
        ok = proc.returncode == 0 and os.path.getsize(sig) == 64
        return {"ok": ok, "detail": proc.stderr.decode(errors="replace")[-600:]}

    def op_file_request(self, req):
        s = self.server
        if self.requester_cert is None:
            # Over mTLS as the machine the browser created: the approval names it as verified.
            # The machine's key is made here; the certificate comes from the enrollment token
            # (once: later requests come from the same machine).
            key = EcKey(s.openssl, "console-machine")
            r = s.call("POST", "/api/v1/enroll/machine",
                       {"enrollment_token": req["machine_token"],
                        "csr_pem": key.csr("/CN=ignored")}, expect=201)
            cert = (s.openssl.write("console-machine.crt.pem", r["certificate_pem"]), key.pem_path)
            self.requester_cert = cert
            # A token minted over the machine's connection is bound to it.
            t = s.request("POST", "/api/v1/auth/token",
                          {"grant_type": "api_key", "api_key": req["api_key"]}, cert=cert)
            self.assertEqual(t.status, 200, t)
            self.requester = t.json["access_token"]
        # The browser checks the approval page against the digest of this text and this
        # command line.
        r = s.sign_request(self.requester, req["key"], "ecdsa", "sha256",
                           digest=HASHES["sha256"](req["data"].encode()).digest(),
                           request_id=req["request_id"], cert=self.requester_cert,
                           context={"application": "/usr/bin/osslsigncode",
                                    "command_line": req["command_line"],
                                    "host": "build-console"})
        self.assertEqual(r.status, 202, r)
        return {"approval_id": r.json["approval_id"], "machine": r.json.get("machine")}

    def op_collect(self, req):
        r = self.server.request("GET", "/api/v1/sign/requests/" + req["approval_id"],
                                token=self.requester, cert=self.requester_cert)
        j = r.json or {}
        return {"status": r.status, "signature": j.get("signature"),
                "code": (j.get("error") or {}).get("code")}

    def console_url(self):
        return "https://localhost:%d" % self.server.port

    # -- the run
    def test_console(self):
        s = self.server
        shots = os.environ.get("SIGNUM_SCREENSHOTS") or os.path.join(self.tmp, "screenshots")
        env = dict(os.environ, SIGNUM_URL=self.console_url(),
                   SIGNUM_ADMIN_KEY=s.admin_api_key(), SIGNUM_SCREENSHOTS=shots, CHROMIUM=CHROMIUM)
        # Chromium resolves localhost to 127.0.0.1 itself; nothing leaves the machine.
        proc = subprocess.Popen([NODE, os.path.join(HERE, "console.test.mjs")], cwd=HERE, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        timer = threading.Timer(BROWSER_TIMEOUT, proc.kill)
        timer.start()
        errors = []
        stderr = []
        reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()))
        reader.start()
        try:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                if not line.startswith("@@PY "):
                    print(line, flush=True)
                    continue
                req = json.loads(line[5:])
                try:
                    answer = getattr(self, "op_" + req["op"])(req)
                except Exception as e:  # reported to the script, which fails its step
                    errors.append(e)
                    answer = {"error": "%s: %s" % (type(e).__name__, e)}
                proc.stdin.write((json.dumps(answer) + "\n").encode())
                proc.stdin.flush()
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(10)
        err = b"".join(stderr).decode(errors="replace")
        if rc != 0:
            self.fail("console.test.mjs exited %d\n%s\n%s\n%s" % (rc, err, errors and errors[0] or "",
                                                                  s.log(60)))
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
