"""Connection caps and the descriptor limit (issue 14, defect 2).

- max_connections_per_address and max_connections: over a cap a connection is closed at
  accept (before any TLS), counted in /metrics, and other addresses are still served.
- At the descriptor limit (the server started with a low RLIMIT_NOFILE, exhausted with idle
  connections) accept() fails with EMFILE: the server must pause accepting instead of spinning
  on the listening socket (CPU stays low, the log does not fill), and serve again once the idle
  connections are gone."""

import os
import resource
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import netlib  # noqa: E402
import signum_harness  # noqa: E402
from signum_harness import ServerTestCase  # noqa: E402

REFUSED_TOTAL = 'signum_http_connections_refused_total{reason="max_connections"}'
REFUSED_ADDR = 'signum_http_connections_refused_total{reason="max_connections_per_address"}'


def refused_at_accept(port, ctx, src):
    """True when the server closes a new connection from src without a TLS handshake."""
    t = netlib.Tls(netlib.connect(port, src), ctx)
    try:
        t.handshake(time.monotonic() + 10)
    except (ConnectionError, OSError):
        return True
    finally:
        t.sock.close()
    return False


class CapsTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"max_connections": 12, "max_connections_per_address": 5}}

    def wait_open(self, ctx, want):
        """Waits (bounded) until the server counts `want` open connections (the metrics
        connection itself included)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                m = netlib.metrics(self.server.port, ctx)
            except (ConnectionError, OSError):
                m = None  # refused at the cap while connections are still being freed
            if m and m["signum_http_connections_open"] == want or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def test_caps(self):
        s = self.server
        ctx = s.ssl_context()
        held = []
        try:
            # Per address: five from 127.0.0.2 are served, the sixth is closed at accept.
            for _ in range(5):
                held.append(netlib.tls_connect(s.port, ctx, "127.0.0.2"))
            self.assertTrue(refused_at_accept(s.port, ctx, "127.0.0.2"))
            status, _ = netlib.https_get(s.port, ctx, "/healthz", "127.0.0.3")
            self.assertEqual(status, 200, "another address is still served")
            m = self.wait_open(ctx, 6)
            self.assertEqual(m[REFUSED_ADDR], 1)
            self.assertEqual(m[REFUSED_TOTAL], 0)

            # In total: 5 + 5 + 1 held and the metrics connection make 12; with one more held,
            # the next is refused whatever its address.
            for _ in range(5):
                held.append(netlib.tls_connect(s.port, ctx, "127.0.0.3"))
            held.append(netlib.tls_connect(s.port, ctx, "127.0.0.4"))
            self.assertEqual(self.wait_open(ctx, 12)["signum_http_connections_open"], 12)
            held.append(netlib.tls_connect(s.port, ctx, "127.0.0.4"))
            for src in ("127.0.0.5", "127.0.0.6"):
                self.assertTrue(refused_at_accept(s.port, ctx, src), src)

            # The held connections still work.
            held[0].send_plain(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertTrue(held[0].read_until_close(time.monotonic() + 10)
                            .startswith(b"HTTP/1.1 200"))
        finally:
            for t in held:
                t.sock.close()
        # Once they are closed, new connections are admitted again.
        m = self.wait_open(ctx, 1)
        self.assertEqual(m["signum_http_connections_open"], 1)
        self.assertGreaterEqual(m[REFUSED_TOTAL], 2)
        self.assertEqual(m[REFUSED_ADDR], 1)
        status, _ = netlib.https_get(s.port, ctx, "/healthz", "127.0.0.2")
        self.assertEqual(status, 200)


NOFILE = 160           # descriptors the server may have
IDLE = 240             # idle connections: more than it can hold
WINDOW = 5.0           # seconds the server is watched at the limit


def low_nofile_and_die_with_parent(orig=signum_harness._die_with_parent):
    orig()
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class DescriptorLimitTest(ServerTestCase):
    # header_timeout longer than the window, so the idle connections hold their descriptors.
    server_options = {"ca_key_type": "ec-p256", "start": False,
                      "conf": {"header_timeout": 30, "max_connections_per_address": 1000}}

    @classmethod
    def prepare(cls):
        saved = signum_harness._die_with_parent
        signum_harness._die_with_parent = low_nofile_and_die_with_parent
        try:
            cls.server.start()
        finally:
            signum_harness._die_with_parent = saved

    def test_emfile_back_off_and_recovery(self):
        s = self.server
        pid = s.proc.pid
        ctx = s.ssl_context()
        self.assertEqual(netlib.https_get(s.port, ctx, "/healthz")[0], 200)
        idle = []
        try:
            for i in range(IDLE):
                idle.append(netlib.connect(s.port, "127.0.6.%d" % (1 + i % 4)))
            # Event, not sleep: wait until the server holds all the descriptors it may.
            deadline = time.monotonic() + 10
            while netlib.open_fds(pid) < NOFILE - 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            fds = netlib.open_fds(pid)
            log0 = os.path.getsize(s.log_path)
            cpu0, wall0 = netlib.cpu_seconds(pid), time.monotonic()
            time.sleep(WINDOW)  # the measurement window itself
            cpu1, wall1 = netlib.cpu_seconds(pid), time.monotonic()
            log_growth = os.path.getsize(s.log_path) - log0
        finally:
            for sock in idle:
                sock.close()
        cpu_share = (cpu1 - cpu0) / (wall1 - wall0)
        sys.stderr.write("\nat the descriptor limit (%d of %d open): server CPU %.1f%% of one "
                         "core over %.1f s, log +%d bytes\n" % (
                             fds, NOFILE, cpu_share * 100, wall1 - wall0, log_growth))
        self.assertGreaterEqual(fds, NOFILE - 1, "the descriptor limit was not reached")
        self.assertLess(cpu_share, 0.20, "the accept loop spins at the descriptor limit")
        self.assertLess(log_growth, 64 * 1024, "the log fills at the descriptor limit")

        # Recovery: once the idle connections are gone, a request succeeds (bounded retries:
        # the server frees them as it reads their EOF, accept resumes within its back-off).
        deadline = time.monotonic() + 20
        last = None
        while time.monotonic() < deadline:
            try:
                status, _ = netlib.https_get(s.port, ctx, "/healthz", timeout=5)
                if status == 200:
                    break
                last = status
            except (ConnectionError, OSError) as e:
                last = e
            time.sleep(0.2)
        else:
            self.fail("the server did not recover: %r" % (last,))
        m = netlib.metrics(s.port, ctx)
        self.assertGreater(m["signum_http_accept_errors_total"], 0)
        # It signs again too (the HSM and database were not starved for good).
        key = s.create_user("after")
        s.create_key("after-ec", "ec-p256")
        s.grant("after-ec", "after")
        s.sign(s.token_for(key), "after-ec", "ecdsa", "sha256",
               digest=signum_harness.HASHES["sha256"](b"x").digest())


if __name__ == "__main__":
    unittest.main(verbosity=2)
