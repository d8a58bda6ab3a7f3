"""An audit sink goes away during signing and comes back. The sink is syslog over TCP
(RFC 6587 octet counting) received by a listener in this test on 127.0.0.1. Signing runs
throughout in two client threads; the listener is up, then closed (its port refuses) while a
bounded number of signatures is made, then listens again on the same port. What API.md
promises is asserted: signing never waits for a sink (every request of the outage answered
200), and delivery is at least once: after dropping duplicates by the record's id, every
record of the log has arrived, its id is the SHA-256 of its text, and the seqs are exactly
1..N."""

import hashlib
import os
import re
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from signum_harness import Server, b64  # noqa: E402

SD_RE = re.compile(r'\[signum@32473 id="([0-9a-f]{64})" seq="([0-9]+)"')
BEFORE, DURING, AFTER = 80, 150, 80   # signatures in each phase
DELIVERY_TIMEOUT = 60.0
MAX_REQUESTS = 2000


class SyslogTcpReceiver:
    """Accepts connections and parses octet-counted frames into (id, seq, text) in arrival
    order. go_down() closes the listener and every connection, after reading what they
    already hold (a receiver that dies with data in its socket buffer can lose it: API.md says
    so, and that is not what this test is about)."""

    def __init__(self):
        self.port = None
        self.lock = threading.Condition()
        self.records = []
        self.connections = 0
        self.sock = None
        self.conns = []
        self.threads = []
        self.down = threading.Event()

    def go_up(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port or 0))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.sock = s
        self.down.clear()
        t = threading.Thread(target=self.accept_loop, args=(s,), daemon=True)
        t.start()
        self.threads.append(t)

    def accept_loop(self, s):
        # Polls the down flag: close() from another thread would not wake a blocked accept(),
        # and the listener would go on taking connections.
        s.settimeout(0.1)
        try:
            while not self.down.is_set():
                try:
                    c, _ = s.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                with self.lock:
                    self.connections += 1
                    self.conns.append(c)
                t = threading.Thread(target=self.read_loop, args=(c,), daemon=True)
                t.start()
                self.threads.append(t)
        finally:
            s.close()

    def read_loop(self, c):
        buf = b""
        c.settimeout(0.2)
        while True:
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                if self.down.is_set():
                    break
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            buf = self.parse(buf)
        c.close()

    def parse(self, buf):
        while True:
            sp = buf.find(b" ")
            if sp < 0:
                return buf
            n = int(buf[:sp])
            if len(buf) < sp + 1 + n:
                return buf
            msg = buf[sp + 1:sp + 1 + n].decode()
            buf = buf[sp + 1 + n:]
            m = SD_RE.search(msg)
            assert m, "a message without signum structured data: %r" % msg[:200]
            text = msg[msg.index("] ", m.end()) + 2:]
            if text.startswith("\ufeff"):
                text = text[1:]
            with self.lock:
                self.records.append((m.group(1), int(m.group(2)), text))
                self.lock.notify_all()

    def go_down(self):
        self.down.set()
        self.threads[0].join(5)  # the accept loop: the port refuses from here on
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)
        self.threads = []

    def wait_for(self, pred, timeout):
        with self.lock:
            return self.lock.wait_for(lambda: pred(self.records), timeout)


class Signer:
    """Two threads signing until told to stop; counts per phase, every answer checked."""

    def __init__(self, server, token):
        self.server, self.token = server, token
        self.cond = threading.Condition()
        self.ok = 0
        self.bad = []
        self.latencies = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(2)]

    def run(self, n):
        conn = self.server.connection()
        try:
            for i in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                digest = hashlib.sha256(b"outage-%d-%d" % (n, i)).digest()
                t0 = time.monotonic()
                r = self.server.request("POST", "/api/v1/sign",
                                        {"key": "so-ec", "mechanism": "ecdsa", "hash": "sha256",
                                         "digest": b64(digest)}, token=self.token, conn=conn)
                with self.cond:
                    self.latencies.append(time.monotonic() - t0)
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.bad.append(repr(r))
                    self.cond.notify_all()
        finally:
            conn.close()

    def wait_count(self, n, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: self.ok >= n or self.bad, timeout)


class SinkOutageTest(unittest.TestCase):

    def setUp(self):
        self.rcv = SyslogTcpReceiver()
        self.rcv.go_up()
        self.addCleanup(lambda: self.rcv.down.is_set() or self.rcv.go_down())
        self.server = Server(ca_key_type="ec-p256", name="sinkoutage", start=False)
        self.addCleanup(self.server.cleanup)
        self.server.set_conf({"export_syslog_tcp": "127.0.0.1:%d" % self.rcv.port,
                              "export_backoff_max": "1", "export_batch": "50"})
        self.server.start()
        s = self.server
        s.create_key("so-ec", "ec-p256")
        api_key = s.create_user("signer1", "signer")
        s.grant("so-ec", "signer1")
        self.token = s.token_for(api_key)

    def wait_log(self, pattern, start, timeout=30.0):
        """Waits for a server log line matching pattern after byte offset start; returns it.
        The exporter logs each outage once and each recovery once (server/API.md)."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            with open(self.server.log_path, "rb") as f:
                f.seek(start)
                for line in f.read().decode(errors="replace").splitlines():
                    if rx.search(line):
                        return line
            time.sleep(0.05)
        self.fail("no log line /%s/ within %.0f s\n%s" % (pattern, timeout, self.server.log(40)))

    def log_size(self):
        return os.path.getsize(self.server.log_path)

    def db_records(self):
        with self.server.db() as db:
            return {seq: h for seq, h in db.execute("SELECT seq, hash FROM audit")}

    def test_sink_outage(self):
        s, rcv = self.server, self.rcv
        signer = Signer(s, self.token)
        for t in signer.threads:
            t.start()
        try:
            self.assertTrue(signer.wait_count(BEFORE, 60), signer.bad[:3])
            # The sink has taken part of the log: it is live when it goes away.
            self.assertTrue(rcv.wait_for(lambda r: len(r) >= BEFORE // 2, 30), s.log(40))
            log_at_down = self.log_size()
            rcv.go_down()
            with signer.cond:
                at_down = signer.ok
                lat_from = len(signer.latencies)
            received_down = len(rcv.records)
            # Down until the exporter has noticed and the clients made DURING signatures.
            self.wait_log(r"export.*retrying with back-off", log_at_down)
            self.assertTrue(signer.wait_count(at_down + DURING, 60),
                            "signing stalled with the sink down: %s\n%s" % (signer.bad[:3],
                                                                            s.log(40)))
            with signer.cond:
                during = signer.latencies[lat_from:]
                at_up = signer.ok
            self.assertEqual(len(rcv.records), received_down, "records arrived while down")
            log_at_up = self.log_size()
            rcv.go_up()
            recovered = self.wait_log(r"export.*delivering again after", log_at_up)
            self.assertTrue(signer.wait_count(at_up + AFTER, 60), signer.bad[:3])
        finally:
            signer.stop.set()
            for t in signer.threads:
                t.join(30)
        self.assertEqual(signer.bad, [], "a request failed while the sink was away")

        want = self.db_records()
        self.assertTrue(rcv.wait_for(lambda r: set(h for h, _, _ in r) >= set(want.values()),
                                     DELIVERY_TIMEOUT),
                        "%d of %d records never arrived\n%s" % (
                            len(set(want.values()) - set(h for h, _, _ in rcv.records)),
                            len(want), s.log(40)))
        got = list(rcv.records)
        first = {}
        for rid, seq, text in got:
            self.assertEqual(hashlib.sha256(text.encode()).hexdigest(), rid,
                             "id is not the SHA-256 of the record text (seq %d)" % seq)
            if rid in first:
                self.assertEqual(first[rid], seq, "one id under two seqs")
            first[rid] = seq
        by_seq = {seq: rid for rid, seq in first.items()}
        self.assertEqual(sorted(by_seq), list(range(1, max(want) + 1)))
        self.assertEqual(by_seq, want, "what arrived differs from the log")
        self.assertGreater(rcv.connections, 1, "the exporter never reconnected")
        duplicates = len(got) - len(first)
        during.sort()
        sys.stderr.write(
            "\nsink outage: %d signatures while the sink was down (all 200; p50 %.1f ms, max "
            "%.1f ms); %d records in the log, all delivered after dedup by id; %d duplicates; "
            "%d had arrived before the outage; %d connections; %s\n" % (
                at_up - at_down, 1000 * during[len(during) // 2], 1000 * during[-1], len(want),
                duplicates, received_down, rcv.connections,
                re.search(r"delivering again after \d+ failed attempts", recovered).group(0)))
        s.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
