"""Slow and stalled clients: with http_timeout = 2 a connection that sends nothing, or stops
mid-handshake or mid-request, is closed after about 2 s, and while such connections are open
(more of them than there are workers) other clients are served at once."""

import os
import socket
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase  # noqa: E402

TIMEOUT = 2      # http_timeout in the config
WORKERS = 2      # fewer workers than stalled connections
CLOSE_BY = 5.0   # a stalled connection must be gone by then


class StallTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"http_timeout": TIMEOUT, "workers": WORKERS}}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("st-ec", "ec-p256")
        key = s.create_user("st-signer")
        s.grant("st-ec", "st-signer")
        cls.token = s.token_for(key)

    # -- stalled clients of every kind
    def plain(self, data=b""):
        sock = socket.create_connection(("127.0.0.1", self.server.port), 10)
        if data:
            sock.sendall(data)
        return sock

    def tls(self, data=b""):
        sock = socket.create_connection(("127.0.0.1", self.server.port), 10)
        t = self.server.ssl_context().wrap_socket(sock, server_hostname="localhost")
        if data:
            t.sendall(data)
        return t

    def stalled_clients(self):
        half_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(16)
        return [
            ("tcp, nothing sent", lambda: self.plain()),
            ("tcp, half a ClientHello", lambda: self.plain(half_hello)),
            ("tls, nothing sent", lambda: self.tls()),
            ("tls, half a request line", lambda: self.tls(b"POST /api/v1/si")),
            ("tls, headers unfinished", lambda: self.tls(
                b"POST /api/v1/sign HTTP/1.1\r\nHost: localhost\r\n")),
            ("tls, body unfinished", lambda: self.tls(
                b"POST /api/v1/sign HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                b"application/json\r\nContent-Length: 200\r\n\r\n{\"key\":")),
        ]

    @staticmethod
    def wait_closed(sock, opened, out, label):
        """Records (seconds from open to close, bytes received) once the server closes."""
        got = b""
        sock.settimeout(0.2)
        deadline = opened + CLOSE_BY + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (ConnectionResetError, ssl.SSLError, OSError):
                break
            if not chunk:
                break
            got += chunk
        else:
            out[label] = (None, got)
            sock.close()
            return
        out[label] = (time.monotonic() - opened, got)
        sock.close()

    def test_stalled_connections_closed_and_do_not_block(self):
        s = self.server
        clients = self.stalled_clients() * 2  # 12 stalled connections, 2 workers
        results = {}
        waiters = []
        t_open = time.monotonic()
        for i, (label, make) in enumerate(clients):
            sock = make()
            opened = time.monotonic()
            name = "%s #%d" % (label, i)
            th = threading.Thread(target=self.wait_closed, args=(sock, opened, results, name))
            th.start()
            waiters.append(th)
        opened_all = time.monotonic() - t_open

        # While every stalled connection is open, other clients are served promptly.
        served = []
        for i in range(5):
            t0 = time.monotonic()
            h = s.request("GET", "/healthz", timeout=10)
            r = s.sign_request(self.token, "st-ec", "ecdsa", "sha256",
                               digest=HASHES["sha256"](b"%d" % i).digest())
            served.append(time.monotonic() - t0)
            self.assertEqual(h.status, 200, h)
            self.assertEqual(r.status, 200, r)
        self.assertLess(time.monotonic() - t_open, TIMEOUT,
                        "requests finished only after the stalled clients timed out "
                        "(opening took %.2f s, requests %r)" % (opened_all, served))

        for th in waiters:
            th.join(CLOSE_BY + 10)
        self.assertFalse(any(th.is_alive() for th in waiters))
        for name, (elapsed, got) in sorted(results.items()):
            with self.subTest(client=name):
                self.assertIsNotNone(elapsed, "%s: still open after %.0f s" % (
                    name, CLOSE_BY + 5))
                self.assertLessEqual(elapsed, CLOSE_BY, "%s closed after %.2f s" % (
                    name, elapsed))
                self.assertGreaterEqual(elapsed, TIMEOUT - 0.5, "%s closed too early (%.2f s)"
                                        % (name, elapsed))
                # Nothing is answered to a request the client never finished.
                self.assertNotIn(b"200 OK", got)

        # The server is healthy after the timeouts; the stalls reached no API handler.
        self.assertEqual(s.request("GET", "/healthz").status, 200)
        denied = [r for r in s.audit_show() if r["outcome"] != "ok"
                  and r["outcome"] != "allowed"]
        self.assertEqual(denied, [])

    def test_plain_http_on_tls_port_dropped_at_once(self):
        # Not a stall: a cleartext request is not TLS and is dropped without an HTTP answer.
        sock = self.plain(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        out = {}
        self.wait_closed(sock, time.monotonic(), out, "plain")
        elapsed, got = out["plain"]
        self.assertIsNotNone(elapsed)
        self.assertLess(elapsed, TIMEOUT)
        self.assertNotIn(b"HTTP/1.1 200", got)

    def test_slow_but_steady_client_is_served(self):
        # A client that dribbles a complete request in well within the timeout is answered.
        s = self.server
        t = self.tls()
        try:
            req = (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            for i in range(0, len(req), 10):
                t.sendall(req[i:i + 10])
                time.sleep(0.05)
            t.settimeout(10)
            got = b""
            while True:
                chunk = t.recv(4096)
                if not chunk:
                    break
                got += chunk
        finally:
            t.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:100])
        self.assertIn(b'"status":"ok"', got)


if __name__ == "__main__":
    unittest.main(verbosity=2)
