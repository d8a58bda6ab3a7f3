"""signum-util sign --async: one signing job (POST /api/v1/sign/jobs) made through a real agent
(IPC_MSG_API, the agent's allow-list; the agent writes the caller's context into the job) and
server. 300 files are hashed locally, signed in one
job and every FILE.sig verified with openssl; progress is plain "signed N of M" lines when
stderr is not a terminal and a one-line bar on a pty; a page of 1000 RSA-4096 signatures
(~690 KB) passes the agent; a job of 20000 digests (~940 KB of JSON) failed by a key suspended
before it ran exits with the mapped code and the server's reason; Ctrl-C leaves the job on the server and --job ID resumes
it after the server restarts."""

import hashlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_harness import UTIL_BIN, Agent  # noqa: E402
from signum_harness import ServerTestCase, pem, unb64  # noqa: E402

EXIT_DENIED = 5
WAIT = 60  # seconds any one signum-util run may take here
LINE = re.compile(r"^signed (\d+) of (\d+)$")
QUEUED = re.compile(r"job ([0-9a-f]+): (\d+) digests queued")
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


class AsyncCase(ServerTestCase):
    def agent(self, api_key):
        a = Agent(["https://localhost:%d" % self.server.port], self.server.ca_cert_path,
                  api_key=api_key, name="async")
        self.addCleanup(a.cleanup)
        return a

    def files(self, agent, tag, n):
        d = os.path.join(agent.root, tag)
        os.mkdir(d)
        out = []
        for i in range(n):
            p = os.path.join(d, "f%04d.bin" % i)
            with open(p, "wb") as f:
                f.write(b"%s artefact %d\n" % (tag.encode(), i))
            out.append(p)
        return out

    def pub_pem(self, key):
        return self.server.openssl.tmp(pem(unb64(key["public_key"]), "PUBLIC KEY"), ".pem")

    def assert_verified(self, key, files):
        o = self.server.openssl
        pub = self.pub_pem(key)
        bad = [f for f in files
               if o("dgst", "-sha256", "-verify", pub, "-signature", f + ".sig", f,
                    check=False).returncode != 0]
        self.assertEqual(bad, [])
        # The check is real: a signature over another file does not verify.
        r = o("dgst", "-sha256", "-verify", pub, "-signature", files[0] + ".sig", files[1],
              check=False)
        self.assertNotEqual(r.returncode, 0)

    def assert_plain_progress(self, err, total):
        self.assertNotIn("\r", err)
        counts = [int(m.group(1)) for m in map(LINE.match, err.splitlines()) if m]
        self.assertTrue(counts, err)
        self.assertEqual(counts[-1], total, err)
        self.assertEqual(counts, sorted(counts), err)
        self.assertTrue(all(LINE.match(x).group(2) == str(total)
                            for x in err.splitlines() if LINE.match(x)))


class AsyncSign(AsyncCase):
    server_options = {"conf": {"job_workers": 2}}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.api_key = s.create_user("alice")
        cls.ec = s.create_key("async-ec", "ec-p256")
        cls.rsa = s.create_key("async-rsa", "rsa4096")
        s.grant("async-ec", "alice")
        s.grant("async-rsa", "alice")

    def test_300_files_one_job_plain_progress(self):
        a = self.agent(self.api_key)
        files = self.files(a, "many", 300)
        t0 = time.monotonic()
        p = a.util("sign", "--async", "--key", "async-ec", "--format", "der", *files,
                   timeout=WAIT)
        elapsed = time.monotonic() - t0
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 0, err + a.log())
        m = QUEUED.search(err)
        self.assertTrue(m, err)
        self.assertEqual(m.group(2), "300")
        self.assert_plain_progress(err, 300)
        self.assert_verified(self.ec, files)
        # One job of 300 signatures at the server, made by alice.
        job = self.server.call("GET", "/api/v1/sign/jobs/%s?limit=1" % m.group(1),
                               token=self.server.token_for(self.api_key))
        self.assertEqual((job["status"], job["total"], job["done"]), ("done", 300, 300))
        # Each signature's audit record names the caller as the agent saw it (not the body).
        recs = [r for r in self.server.audit_show() if r["action"] == "sign"
                and r["detail"].get("job_id") == m.group(1)]
        self.assertEqual(len(recs), 300)
        client = recs[0]["detail"]["client"]
        self.assertTrue(client["application"].endswith("signum-util"), client)
        self.assertIn("--async", client["command_line"])
        sys.stderr.write("\n300 files through one job: %.1f s\n" % elapsed)

    def test_page_of_1000_rsa4096_signatures(self):
        """1001 digests: a first page of 1000 RSA-4096 signatures, over the former 480 KiB
        answer cap, then one more; each checked against the modulus openssl reports."""
        a = self.agent(self.api_key)
        digests = [hashlib.sha256(b"page %d" % i).digest() for i in range(1001)]
        p = a.util("sign", "--async", "--key", "async-rsa",
                   *sum((["--digest", d.hex()] for d in digests), []), timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr.decode() + a.log())
        sigs = [unb64(x) for x in p.stdout.decode().split()]
        self.assertEqual(len(sigs), 1001)
        text = self.server.openssl("pkey", "-pubin", "-in", self.pub_pem(self.rsa), "-noout",
                                   "-text").stdout.decode()
        mod = int("".join(text.split("Modulus:")[1].split("Exponent")[0].split())
                  .replace(":", ""), 16)
        exp = int(re.search(r"Exponent: (\d+)", text).group(1))
        k = (mod.bit_length() + 7) // 8
        self.assertEqual(k, 512)

        def ok(d, s):
            em = pow(int.from_bytes(s, "big"), exp, mod).to_bytes(k, "big")
            t = SHA256_PREFIX + d
            return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t

        self.assertEqual([i for i, (d, s) in enumerate(zip(digests, sigs)) if not ok(d, s)], [])
        self.assertFalse(ok(digests[1], sigs[0]))

    def test_progress_bar_on_a_terminal(self):
        a = self.agent(self.api_key)
        files = self.files(a, "tty", 20)
        master, slave = pty.openpty()
        proc = subprocess.Popen([UTIL_BIN, "sign", "--async", "--key", "async-ec"] + files,
                                env=a.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=slave)
        os.close(slave)
        out = b""
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 1.0)
            if not r:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        self.assertEqual(proc.wait(timeout=WAIT), 0, out)
        proc.stdout.close()
        text = out.decode()
        self.assertIn("\r[", text)
        self.assertIn("] 20/20 100%", text)
        self.assertIsNone(re.search(r"signed \d+ of", text), text)
        self.assertTrue(all(os.path.exists(f + ".sig") for f in files))


class AsyncSignFailure(AsyncCase):
    """No job workers at first: jobs wait, deterministically, until the restart."""
    server_options = {"conf": {"job_workers": 0}}

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.api_key = s.create_user("carol")
        cls.ec = s.create_key("wait-ec", "ec-p256")
        s.create_key("fail-ec", "ec-p256")
        s.grant("wait-ec", "carol")
        s.grant("fail-ec", "carol")

    def start_async(self, agent, key, files):
        """Starts signum-util sign --async; returns the process, the job id and stderr so far."""
        proc = subprocess.Popen([UTIL_BIN, "sign", "--async", "--key", key, "--format", "der"]
                                + files, env=agent.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        err = b""
        end = time.monotonic() + WAIT
        while time.monotonic() < end and not QUEUED.search(err.decode()):
            r, _, _ = select.select([proc.stderr], [], [], 1.0)
            if r:
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                err += chunk
        m = QUEUED.search(err.decode())
        self.assertTrue(m, err.decode() + agent.log())
        self.assertEqual(int(m.group(2)), len(files))
        return proc, m.group(1), err

    def test_interrupt_failed_job_and_resume(self):
        s = self.server
        a = self.agent(self.api_key)
        kept = self.files(a, "kept", 30)
        # 20000 SHA-256 digests: a ~940 KB job body, over the agent's former 256 KiB cap.
        doomed = self.files(a, "doomed", 20000)
        # Ctrl-C while the job waits: it stays on the server, its id is printed.
        proc, kept_job, _ = self.start_async(a, "wait-ec", kept)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=WAIT)
        self.assertEqual(proc.returncode, 130)
        self.assertIn("job %s stays on the server" % kept_job, rest.decode())
        self.assertIn("signum-util sign --job %s" % kept_job, rest.decode())
        self.assertFalse(any(os.path.exists(f + ".sig") for f in kept))
        # A key suspended between submit and run: the job fails, the tool says why.
        proc, doomed_job, _ = self.start_async(a, "fail-ec", doomed)
        s.call("POST", "/api/v1/admin/keys/fail-ec/suspend", {"reason": "async cli test"},
               token=s.admin_token())
        s.stop()  # signum-util keeps polling through the agent while the server is away
        s.set_conf({"job_workers": 2, "port": s.port})
        s.start()
        _, err = proc.communicate(timeout=WAIT)
        err = err.decode()
        self.assertEqual(proc.returncode, EXIT_DENIED, err + a.log())
        self.assertIn("job %s failed: key_disabled" % doomed_job, err)
        self.assertIn("async cli test", err)
        self.assertFalse(any(os.path.exists(f + ".sig") for f in doomed))
        # --job ID resumes the interrupted job: its signatures are written as --async would.
        p = a.util("sign", "--job", kept_job, "--format", "der", *kept, timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr.decode() + a.log())
        self.assert_plain_progress(p.stderr.decode(), 30)
        self.assert_verified(self.ec, kept)
        # The same job given other inputs is refused before anything is written.
        p = a.util("sign", "--job", kept_job, *kept[:29], timeout=WAIT)
        self.assertEqual(p.returncode, 2, p.stderr.decode())
        self.assertIn("holds 30 digests, but 29 inputs", p.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
