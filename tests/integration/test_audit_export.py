"""Audit exporters against real receivers: Debian's rsyslogd (started here in the foreground
on 127.0.0.1, with a config made at test time: imtcp plain and imtcp over TLS with the ossl
netstream driver, omfile output) and a small Splunk-HEC-compatible HTTPS receiver written
below. With every sink stopped, 500 signatures are made; then the sinks start and every audit
record must arrive (count and ids match), and again after a sink restarts. UDP is fire and
forget: only checked while its receiver is up."""

import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, ServerTestCase, b64, run  # noqa: E402

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
DELIVERY_TIMEOUT = 90.0
SIGNATURES = 500
HEC_TOKEN = "0c3b6c52-5e0e-4d1e-9a53-4b7f1d2a9e11"
ID_RE = re.compile(r'id="([0-9a-f]{64})"')


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_certs(workdir):
    """A CA and a certificate for 127.0.0.1/localhost, made with the openssl CLI."""
    os.makedirs(workdir, exist_ok=True)
    p = lambda name: os.path.join(workdir, name)  # noqa: E731
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2",
         "-subj", "/CN=Receiver Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"], check=True)
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=localhost"],
        check=True)
    with open(p("ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey",
         p("ca.key"), "-CAcreateserial", "-out", p("server.pem"), "-days", "2",
         "-extfile", p("ext.cnf")], check=True)
    return p("ca.pem"), p("server.pem"), p("server.key")


class Rsyslog:
    """rsyslogd in the foreground with its own config, pid file and work directory; never the
    system's instance."""

    def __init__(self, workdir, port, tls=None):
        self.dir = workdir
        self.port = port
        self.out = os.path.join(workdir, "received.log")
        self.conf = os.path.join(workdir, "rsyslog.conf")
        self.pidfile = os.path.join(workdir, "rsyslogd.pid")
        self.proc = None
        self.log = None
        os.makedirs(os.path.join(workdir, "work"), exist_ok=True)
        lines = ['global(workDirectory="%s" maxMessageSize="64k"' % os.path.join(workdir, "work")]
        if tls:
            ca, cert, key = tls
            lines[0] += (' defaultNetstreamDriver="ossl" defaultNetstreamDriverCAFile="%s"'
                         ' defaultNetstreamDriverCertFile="%s"'
                         ' defaultNetstreamDriverKeyFile="%s"' % (ca, cert, key))
            lines.append('module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1"'
                         ' streamDriver.authMode="anon")')
        else:
            lines.append('module(load="imtcp")')
        lines[0] += ")"
        lines += [
            'input(type="imtcp" address="127.0.0.1" port="%d")' % port,
            'template(name="sd" type="string" string="%msgid% %structured-data% %msg%\\n")',
            '*.* action(type="omfile" file="%s" template="sd")' % self.out,
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        proc = run([RSYSLOGD, "-N1", "-f", self.conf])
        assert proc.returncode == 0, "rsyslog config check failed: %s" % (
            proc.stdout + proc.stderr).decode(errors="replace")

    def start(self):
        self.log = open(os.path.join(self.dir, "rsyslogd.out"), "ab")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", self.conf, "-i", self.pidfile],
                                     stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "rsyslogd exited: %s" % self.output()
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("rsyslogd did not listen on %d: %s" % (self.port, self.output()))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def output(self):
        try:
            with open(os.path.join(self.dir, "rsyslogd.out"), "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        except OSError:
            return ""

    def received(self):
        """[(id, msgid, record text)] in arrival order."""
        try:
            with open(self.out, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            m = ID_RE.search(line)
            if m:
                msgid = line.split(" ", 1)[0]
                text = line[line.index("] ", m.end()) + 2:]
                out.append((m.group(1), msgid, text))
        return out


class HecReceiver:
    """A Splunk-HEC-compatible receiver: HTTPS, `Authorization: Splunk <token>`, events as
    concatenated JSON objects; 200 {"text":"Success","code":0} when taken."""

    def __init__(self, port, cert, key):
        self.port = port
        self.cert, self.key = cert, key
        self.events = []
        self.bad_auth = 0
        self.lock = threading.Lock()
        self.httpd = None
        self.thread = None

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if self.headers.get("Authorization") != "Splunk " + HEC_TOKEN:
                    with receiver.lock:
                        receiver.bad_auth += 1
                    return self.answer(401, {"text": "Invalid token", "code": 4})
                if self.path != "/services/collector/event":
                    return self.answer(404, {"text": "not found", "code": 404})
                dec, text, i, events = json.JSONDecoder(), body.decode(), 0, []
                while i < len(text):
                    ev, i = dec.raw_decode(text, i)
                    events.append(ev)
                with receiver.lock:
                    receiver.events.extend(events)
                self.answer(200, {"text": "Success", "code": 0})

            def answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(10)
            self.httpd = None

    def received(self):
        with self.lock:
            return [(e["fields"]["signum_id"], e["event"]["action"], e) for e in self.events]


class AuditExportTest(ServerTestCase):
    """One server exporting to four sinks; the receivers start and stop under the test."""

    server_options = {"ca_key_type": "ec-p256", "start": False}

    @classmethod
    def prepare(cls):
        s = cls.server
        work = os.path.join(s.root, "sinks")
        cls.ca, cert, key = make_certs(os.path.join(work, "pki"))
        cls.tcp = Rsyslog(os.path.join(work, "tcp"), free_port())
        cls.tls = Rsyslog(os.path.join(work, "tls"), free_port(), tls=(cls.ca, cert, key))
        cls.hec = HecReceiver(free_port(), cert, key)
        cls.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for the backlog of earlier tests: a full buffer silently drops datagrams.
        cls.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        cls.udp.bind(("127.0.0.1", 0))
        cls.udp.settimeout(0.2)
        for rs in (cls.tcp, cls.tls):
            cls.addClassCleanup(rs.stop)
        cls.addClassCleanup(cls.hec.stop)
        cls.addClassCleanup(cls.udp.close)
        token_file = os.path.join(s.state, "hec.token")
        with open(token_file, "w") as f:
            f.write(HEC_TOKEN + "\n")
        os.chmod(token_file, 0o600)
        s.set_conf({
            "export_syslog_tcp": "127.0.0.1:%d" % cls.tcp.port,
            "export_syslog_tls": "127.0.0.1:%d" % cls.tls.port,
            "export_syslog_tls_ca": cls.ca,
            "export_syslog_udp": "127.0.0.1:%d" % cls.udp.getsockname()[1],
            "export_hec_url": "https://localhost:%d/services/collector/event" % cls.hec.port,
            "export_hec_token_file": "hec.token",
            "export_hec_ca": cls.ca,
            "export_backoff_max": "2",
            "export_batch": "100",
        })
        s.start()
        s.create_key("ex-ec", "ec-p256")
        api_key = s.create_user("alice", "signer")
        s.grant("ex-ec", "alice")
        cls.token = s.token_for(api_key)

    def db_ids(self):
        with self.server.db() as db:
            return [(h, t) for h, t in db.execute("SELECT hash, record FROM audit ORDER BY seq")]

    def sign_many(self, n, tag):
        conn = self.server.connection()
        try:
            for i in range(n):
                digest = HASHES["sha256"](b"%s-%d" % (tag.encode(), i)).digest()
                body = {"key": "ex-ec", "mechanism": "ecdsa", "hash": "sha256",
                        "digest": b64(digest)}
                r = self.server.request("POST", "/api/v1/sign", body, token=self.token,
                                        conn=conn)
                self.assertEqual(r.status, 200, r)
        finally:
            conn.close()

    def wait_all(self, receiver, name):
        """Waits until the receiver holds every record of the log; checks ids and texts."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        want = self.db_ids()
        while time.monotonic() < deadline:
            got = receiver.received()
            if set(i for i, _, _ in got) >= set(h for h, _ in want):
                break
            time.sleep(0.25)
        got = receiver.received()
        ids = [i for i, _, _ in got]
        missing = set(h for h, _ in want) - set(ids)
        self.assertFalse(missing, "%s: %d of %d records never arrived (%d received)\n%s" % (
            name, len(missing), len(want), len(ids), self.server.log(40)))
        # Every id is the SHA-256 of the record text that came with it: a receiver can check
        # and deduplicate on it.
        for rid, _, text in got:
            if isinstance(text, dict):
                ev = dict(text["event"])
                self.assertEqual(ev.pop("hash"), rid)
                text = json.dumps(ev, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False)
            self.assertEqual(hashlib.sha256(text.encode()).hexdigest(), rid, name)
        self.assertTrue(set(ids) <= set(h for h, _ in self.db_ids()), name)
        return ids, want

    def test_1_outage_then_delivery(self):
        # Every sink is down: signing goes on regardless.
        t0 = time.monotonic()
        self.sign_many(SIGNATURES, "outage")
        signing_time = time.monotonic() - t0
        with self.server.db() as db:
            signs = db.execute("SELECT count(*) FROM audit WHERE action = 'sign'").fetchone()[0]
        self.assertEqual(signs, SIGNATURES)
        self.assertEqual(self.hec.received(), [])
        # /healthz shows every configured exporter behind the log (informative: still 200).
        health = self.server.request("GET", "/healthz")
        self.assertEqual(health.status, 200, health)
        lag = {e["sink"]: e["lag_records"] for e in health.json["exporters"]}
        self.assertEqual(set(lag), {"syslog-tcp", "syslog-tls", "syslog-udp", "hec"})
        self.assertGreaterEqual(lag["hec"], SIGNATURES)
        # The sinks come up: everything arrives, each record once per id (duplicates only
        # possible after a failure mid-batch, and then with the same id).
        self.tcp.start()
        self.tls.start()
        self.hec.start()
        for name, rcv in (("syslog-tcp", self.tcp), ("syslog-tls", self.tls),
                          ("hec", self.hec)):
            ids, want = self.wait_all(rcv, name)
            self.assertGreaterEqual(len(set(ids)), SIGNATURES + 4, name)
            self.assertEqual(len(set(ids)), len(want), name)
        self.assertEqual(self.hec.bad_auth, 0)
        sys.stderr.write("\n500 signatures with every sink down took %.1f s\n" % signing_time)

    def test_2_message_format(self):
        # RFC 5424 over rsyslog: MSGID is the action, structured data carries id and seq.
        got = self.tcp.received()
        self.assertTrue(got)
        rid, msgid, text = got[-1]
        rec = json.loads(text)
        self.assertEqual(msgid, rec["action"])
        with open(self.tcp.out) as f:
            line = [x for x in f.read().splitlines() if rid in x][0]
        self.assertIn('[signum@32473 id="%s" seq="%d"' % (rid, rec["seq"]), line)
        # HEC events: sourcetype, time, fields.
        ev = self.hec.received()[-1][2]
        self.assertEqual(ev["sourcetype"], "signum:audit")
        self.assertEqual(ev["fields"]["signum_seq"], ev["event"]["seq"])
        self.assertIsInstance(ev["time"], float)

    def test_3_sink_restart_loses_nothing(self):
        # A running sink goes away and comes back: what was made meanwhile arrives.
        self.tcp.stop()
        self.hec.stop()
        self.sign_many(60, "restart")
        time.sleep(1.0)
        self.tcp.start()
        self.hec.start()
        self.wait_all(self.tcp, "syslog-tcp after restart")
        self.wait_all(self.hec, "hec after restart")
        self.wait_all(self.tls, "syslog-tls (never stopped)")

    def test_4_udp_fire_and_forget(self):
        # While its receiver listens, UDP datagrams carry the same RFC 5424 messages. Datagrams
        # from earlier tests that nobody read may fill the socket buffer, and a full buffer
        # drops new ones: drain it first.
        self.udp.settimeout(0.3)
        try:
            while True:
                self.udp.recv(70000)
        except socket.timeout:
            pass
        self.udp.settimeout(1.0)
        self.sign_many(5, "udp")
        want = set(h for h, _ in self.db_ids()[-5:])
        seen = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not want <= seen:
            try:
                data = self.udp.recv(70000).decode()
            except socket.timeout:
                continue
            self.assertTrue(data.startswith("<"), data[:40])
            m = ID_RE.search(data)
            if m:
                seen.add(m.group(1))
        self.assertTrue(want <= seen, "UDP: %d of 5 arrived" % len(want & seen))

    def test_5_cursors_persist(self):
        self.server.stop()
        with self.server.db() as db:
            cursors = dict(db.execute("SELECT sink, seq FROM export_cursors"))
            last = db.execute("SELECT max(seq) FROM audit").fetchone()[0]
        self.assertEqual(len(cursors), 4, cursors)
        for sink, seq in cursors.items():
            self.assertGreater(seq, SIGNATURES, sink)
            self.assertLessEqual(seq, last, sink)
        # Restarted, the exporters go on from their cursors: the stop record arrives too.
        self.server.start()
        self.wait_all(self.tcp, "syslog-tcp after a server restart")
        self.wait_all(self.hec, "hec after a server restart")
        # The token never reaches the log.
        self.assertNotIn(HEC_TOKEN, self.server.log(100000))


if __name__ == "__main__":
    unittest.main(verbosity=2)
