"""Slow clients next to a legitimate one (issue 14, defect 2).

A real server with header_timeout = 3 s. Attackers from other loopback addresses: TCP
connections that never send a byte, TLS handshakes dripped one byte a second, TLS connections
that never send a request, and request headers dripped one byte a second. Meanwhile a legitimate
client signs. Every slow connection must be closed by the handshake+headers deadline (not by
the 30 s idle timer, which every dripped byte resets), the legitimate client's p99 latency must
stay within 2x of its idle p99 measured first in the same run, and the server's CPU and log
growth stay bounded."""

import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import netlib  # noqa: E402
from signum_harness import HASHES, ServerTestCase  # noqa: E402

HEADER_TIMEOUT = 3
IDLE_TCP = 200        # connections that send nothing (40 from each of 5 addresses)
DRIP_HANDSHAKE = 20   # ClientHello one byte a second
SILENT_TLS = 20       # handshake done, no request
DRIP_HEADERS = 20     # request headers one byte a second
LEGIT_SIGNS = 40      # per phase (idle, then under attack)
SLACK = 2.5           # seconds over the deadline a close may take on a loaded machine

DIGEST = HASHES["sha256"](b"slow clients").digest()


class SlowClientsTest(ServerTestCase):
    server_options = {"ca_key_type": "ec-p256",
                      "conf": {"header_timeout": HEADER_TIMEOUT, "body_timeout": 4}}

    @classmethod
    def prepare(cls):
        s = cls.server
        s.create_key("slow-ec", "ec-p256")
        key = s.create_user("legit")
        s.grant("slow-ec", "legit")
        cls.token = s.token_for(key)

    def sign_latencies(self, n, gap=0.05):
        out = []
        for _ in range(n):
            t0 = time.monotonic()
            self.server.sign(self.token, "slow-ec", "ecdsa", "sha256", digest=DIGEST)
            out.append(time.monotonic() - t0)
            time.sleep(gap)  # pacing of the legitimate client, not synchronisation
        return out

    def test_slow_clients_are_cut_off_and_the_legit_client_is_served(self):
        s = self.server
        ctx = s.ssl_context()
        pid = s.proc.pid
        self.sign_latencies(5)  # warm up (sessions, caches)
        idle = self.sign_latencies(LEGIT_SIGNS)
        idle_p99 = netlib.percentile(idle, 99)

        log0 = os.path.getsize(s.log_path)
        cpu0, wall0 = netlib.cpu_seconds(pid), time.monotonic()
        opened = {}   # socket -> monotonic open time
        kinds = {}    # socket -> kind
        drips = []    # (Tls or socket, bytes to drip, is_tls)
        try:
            for i in range(IDLE_TCP):
                sock = netlib.connect(s.port, "127.0.1.%d" % (1 + i % 5))
                opened[sock], kinds[sock] = time.monotonic(), "idle tcp"
            for i in range(DRIP_HANDSHAKE):
                t = netlib.Tls(netlib.connect(s.port, "127.0.2.%d" % (1 + i % 5)), ctx)
                hello = t.client_hello()
                opened[t.sock], kinds[t.sock] = time.monotonic(), "dripped handshake"
                drips.append((t.sock, hello, False))
            for i in range(SILENT_TLS):
                t = netlib.tls_connect(s.port, ctx, "127.0.3.%d" % (1 + i % 5))
                opened[t.sock], kinds[t.sock] = time.monotonic(), "silent tls"
            for i in range(DRIP_HEADERS):
                t = netlib.tls_connect(s.port, ctx, "127.0.4.%d" % (1 + i % 5))
                opened[t.sock], kinds[t.sock] = time.monotonic(), "dripped headers"
                drips.append((t, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", True))

            stop = threading.Event()

            def drip():
                # One byte a second from each dripping connection, for at most 8 s.
                for step in range(8):
                    for target, data, is_tls in drips:
                        if step < len(data):
                            try:
                                if is_tls:
                                    target.send_plain(data[step:step + 1])
                                else:
                                    target.send(data[step:step + 1])
                            except OSError:
                                pass
                    if stop.wait(1.0):
                        return

            attack = []
            dripper = threading.Thread(target=drip, daemon=True)
            legit = threading.Thread(target=lambda: attack.extend(
                self.sign_latencies(LEGIT_SIGNS)), daemon=True)
            dripper.start()
            legit.start()
            closed = netlib.wait_closed(list(opened), time.monotonic() + HEADER_TIMEOUT + 8)
            cpu1, wall1 = netlib.cpu_seconds(pid), time.monotonic()
            stop.set()
            legit.join(60)
            dripper.join(10)
            log_growth = os.path.getsize(s.log_path) - log0
        finally:
            for sock in opened:
                sock.close()

        attack_p99 = netlib.percentile(attack, 99)
        cpu_share = (cpu1 - cpu0) / (wall1 - wall0)
        late = [(kinds[x], round(closed[x] - opened[x], 2)) if x in closed else (kinds[x], None)
                for x in opened if x not in closed or closed[x] - opened[x] > HEADER_TIMEOUT + SLACK]
        early = [(kinds[x], round(closed[x] - opened[x], 2)) for x in closed
                 if closed[x] - opened[x] < HEADER_TIMEOUT - 0.5]
        sys.stderr.write(
            "\nslow clients: %d connections; closed %d; legit p99 idle %.1f ms, under attack "
            "%.1f ms; server CPU %.1f%% of one core over %.1f s; log +%d bytes\n" % (
                len(opened), len(closed), idle_p99 * 1e3, attack_p99 * 1e3, cpu_share * 100,
                wall1 - wall0, log_growth))
        self.assertEqual(late, [], "slow connections not closed by the %d s deadline "
                         "(kind, seconds open)" % HEADER_TIMEOUT)
        self.assertEqual(early, [], "slow connections closed before the deadline")
        self.assertEqual(len(attack), LEGIT_SIGNS)
        # 2x of idle; below 25 ms scheduling noise on a shared machine dominates.
        self.assertLessEqual(attack_p99, max(2 * idle_p99, 0.025),
                             "legit p99 %.1f ms under attack vs %.1f ms idle" % (
                                 attack_p99 * 1e3, idle_p99 * 1e3))
        self.assertLess(cpu_share, 0.6, "server CPU under attack")
        self.assertLess(log_growth, 64 * 1024, "server log growth under attack")
        m = s.metrics()
        self.assertGreaterEqual(m['signum_http_deadline_closes_total{phase="handshake_headers"}'],
                                IDLE_TCP + DRIP_HANDSHAKE + SILENT_TLS + DRIP_HEADERS)

    def test_dripped_body_is_cut_off(self):
        # Headers on time, then a body that never completes: the body deadline closes it.
        s = self.server
        t = netlib.tls_connect(s.port, s.ssl_context(), "127.0.5.1")
        try:
            t0 = time.monotonic()
            t.send_plain(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: localhost\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            closed = netlib.wait_closed([t.sock], t0 + 4 + 8)
            self.assertIn(t.sock, closed, "a stalled body was not cut off")
            self.assertGreater(closed[t.sock] - t0, 4 - 0.5)
        finally:
            t.sock.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
