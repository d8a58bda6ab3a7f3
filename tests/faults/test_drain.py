"""Load-balancer readiness and the drain (issue 16).

/healthz/live is 200 while the process serves; /healthz/ready is 200 only while a signature
could be made and recorded (HSM, database, audit commit) and the node is not draining. The HSM
is a networked one, made real with p11-kit (as in test_hsm_outage.py): killing the p11-kit
server is an outage, starting it again the return; stopping it with SIGSTOP holds a sign
request inside the HSM call, which is how a request is kept in flight across SIGTERM here
without any test hook in the server.

On SIGTERM the node drains: /healthz/ready answers 503 at once, the request in flight
finishes (200, signature verified, its audit record present), new requests (a new connection
or a kept-alive one) get 503 unavailable with Retry-After and Connection: close, and the
server exits 0. With a drain_timeout shorter than the held request, it exits 1 at the timeout
without waiting, and the state serves again after a restart.

Before this change there was no /healthz/live or /healthz/ready (404), the listener closed at
SIGTERM (a probe got a refused connection), the refusal had no Retry-After, and the drain
waited a fixed 10 s.
"""

import hashlib
import os
import signal
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

from p11kit_harness import P11KitServer, available, client_module  # noqa: E402
from signum_harness import ServerTestCase, pem, unb64  # noqa: E402

P11_KIT_CLIENT = client_module()
P11_KIT = available() is None

WAIT = 10.0          # any state change we wait for (bounded polling of an observable)
RECOVERY_LIMIT = 10.0


def wait_until(what, fn, timeout=WAIT, interval=0.02):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = fn()
        if ok:
            return last
        time.sleep(interval)
    raise AssertionError("%s: not within %.0f s (last: %r)" % (what, timeout, last))


class P11KitCase(ServerTestCase):
    """A server reaching its token through p11-kit only."""

    server_options = {"start": False}
    conf = {}

    @classmethod
    def prepare(cls):
        srv = cls.server
        token = "signum"
        with open(srv.conf_path) as f:
            for line in f:
                if line.split("=", 1)[0].strip() == "hsm_token":
                    token = line.split("=", 1)[1].strip()
        cls.sock = os.path.join(srv.root, "p11.sock")
        cls.hsm = P11KitServer(os.path.join(srv.state, "hsm", "softhsm2.conf"), token, cls.sock)
        cls.addClassCleanup(cls.resume_and_kill_hsm)
        cls.hsm.start()
        os.environ["P11_KIT_SERVER_ADDRESS"] = "unix:path=%s" % cls.sock
        conf = {"hsm_module": P11_KIT_CLIENT, "hsm_sessions": 4, "workers": 4}
        conf.update(cls.conf)
        srv.set_conf(conf)
        srv.start()
        cls.user_key = srv.create_user("drain")
        srv.create_key("drain-ec", "ec-p256")
        srv.grant("drain-ec", "drain")
        cls.token = srv.token_for(cls.user_key)
        cls.pub = pem(unb64(srv.get_key("drain-ec")["public_key"]), "PUBLIC KEY").encode()

    @classmethod
    def resume_and_kill_hsm(cls):
        cls.hold_hsm(False)
        cls.hsm.kill()

    @classmethod
    def hold_hsm(cls, hold):
        """SIGSTOP / SIGCONT the p11-kit server and the children serving its clients."""
        if cls.hsm.proc is not None:
            try:
                os.killpg(cls.hsm.proc.pid, signal.SIGSTOP if hold else signal.SIGCONT)
            except ProcessLookupError:
                pass

    def sign(self, rid, timeout=30.0):
        digest = hashlib.sha256(rid.encode()).digest()
        body = {"key": "drain-ec", "mechanism": "ecdsa", "hash": "sha256",
                "digest": __import__("base64").b64encode(digest).decode(), "request_id": rid}
        return self.server.request("POST", "/api/v1/sign", body, token=self.token,
                                   timeout=timeout)

    def verify(self, rid, resp):
        sig = unb64(resp.json["signature"])
        from signum_harness import ecdsa_raw_to_der
        ok, text = self.server.openssl.verify_digest_sig(self.pub, "sha256", rid.encode(),
                                                         ecdsa_raw_to_der(sig))
        self.assertTrue(ok, text)

    def in_flight(self):
        return self.server.metrics().get("signum_http_requests_in_flight", 0)

    def start_held_sign(self, rid):
        """A sign request that reaches the server and stays inside the (held) HSM call.
        Returns (thread, result list)."""
        self.hold_hsm(True)
        out = []
        t = threading.Thread(target=lambda: out.append(self._sign_or_error(rid)), daemon=True)
        t.start()
        # Observable: the server counts it in flight (this /metrics request is the other one).
        wait_until("the held sign request in flight",
                   lambda: (self.in_flight() >= 2, self.in_flight()))
        return t, out

    def _sign_or_error(self, rid):
        try:
            return self.sign(rid, timeout=60.0)
        except OSError as e:
            return e


@unittest.skipUnless(P11_KIT and P11_KIT_CLIENT,
                     "p11-kit and p11-kit-modules are needed (scripts/install-deps.sh)")
class ReadinessFollowsHsm(P11KitCase):

    def test_live_and_ready(self):
        srv = self.server
        live = srv.request("GET", "/healthz/live")
        self.assertEqual(live.status, 200, live)
        self.assertEqual(live.json, {"status": "ok", "draining": False})
        ready = srv.request("GET", "/healthz/ready")
        self.assertEqual(ready.status, 200, ready)
        self.assertEqual(ready.json["failing"], [])
        self.assertIs(ready.json["draining"], False)
        for part in ("hsm", "database", "audit"):
            self.assertTrue(ready.json[part]["ok"], ready.json)
        self.assertEqual(srv.request("HEAD", "/healthz/live").status, 200)
        # Other methods are the router's: 405, as for every route.
        self.assertEqual(srv.request("POST", "/healthz/ready", body={}).status, 405)

    def test_ready_flips_with_the_hsm(self):
        srv = self.server
        self.assertEqual(srv.request("GET", "/healthz/ready").status, 200)
        self.hsm.kill()
        try:
            # Seen by the probe itself, with no signing traffic.
            r = wait_until("ready 503 naming the hsm",
                           lambda: (lambda r: (r.status == 503, r))(
                               srv.request("GET", "/healthz/ready")))
            self.assertEqual(r.json["status"], "degraded")
            self.assertEqual(r.json["failing"], ["hsm"], r.json)
            self.assertFalse(r.json["hsm"]["ok"])
            # The process is alive all the same: no restart wanted.
            self.assertEqual(srv.request("GET", "/healthz/live").status, 200)
        finally:
            self.hsm.start()
        t0 = time.monotonic()
        wait_until("ready 200 after the HSM returned",
                   lambda: (lambda r: (r.status == 200, r))(srv.request("GET", "/healthz/ready")),
                   timeout=RECOVERY_LIMIT, interval=0.05)
        sys.stderr.write("\nready 200 %.0f ms after the HSM returned\n"
                         % ((time.monotonic() - t0) * 1000))
        r = self.sign("after-return")
        self.assertEqual(r.status, 200, r)
        self.verify("after-return", r)


@unittest.skipUnless(P11_KIT and P11_KIT_CLIENT,
                     "p11-kit and p11-kit-modules are needed (scripts/install-deps.sh)")
class DrainOnSigterm(P11KitCase):

    conf = {"drain_timeout": 30}

    def test_drain(self):
        srv = self.server
        r = self.sign("before-drain")
        self.assertEqual(r.status, 200, r)
        # A client with a kept-alive connection, idle when the drain begins.
        kept = srv.connection()
        r = srv.request("GET", "/healthz/ready", conn=kept)
        self.assertEqual(r.status, 200, r)

        thread, result = self.start_held_sign("in-flight-at-sigterm")
        srv.proc.send_signal(signal.SIGTERM)
        try:
            r = wait_until("ready 503 draining",
                           lambda: (lambda r: (r.status == 503, r))(
                               srv.request("GET", "/healthz/ready")), timeout=5.0)
            self.assertEqual(r.json["failing"], ["draining"], r.json)
            self.assertEqual(r.json["in_flight"], 1, r.json)
            self.assertEqual(r.headers.get("connection"), "close")
            live = srv.request("GET", "/healthz/live")
            self.assertEqual((live.status, live.json["draining"]), (200, True), live)
            # New requests: refused before any work, told to retry (elsewhere).
            n = self.sign("new-during-drain")
            self.assertError(n, 503, "unavailable")
            self.assertEqual(n.headers.get("retry-after"), "1")
            self.assertEqual(n.headers.get("connection"), "close")
            k = srv.request("GET", "/api/v1/keys", token=self.token, conn=kept)
            self.assertEqual(k.status, 503, k)
            self.assertEqual(k.headers.get("connection"), "close")
            # Still serving the held request: it has not exited.
            self.assertIsNone(srv.proc.poll())
        finally:
            kept.close()
            self.hold_hsm(False)
        thread.join(60)
        self.assertFalse(thread.is_alive())
        self.assertEqual(len(result), 1)
        r = result[0]
        self.assertNotIsInstance(r, OSError, r)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("connection"), "close")
        self.verify("in-flight-at-sigterm", r)
        self.assertEqual(srv.proc.wait(20), 0, srv.log())
        srv.kill()

        recs = srv.audit_show()
        signed = {rec["detail"].get("request_id") for rec in recs
                  if rec["action"] == "sign" and rec["outcome"] == "allowed"}
        self.assertIn("in-flight-at-sigterm", signed)
        self.assertNotIn("new-during-drain", signed)
        self.assertNotIn("new-during-drain",
                         {rec["detail"].get("request_id") for rec in recs})
        self.assertEqual(recs[-1]["action"], "server.stop", recs[-1])
        rc, out = srv.audit_verify()
        self.assertEqual(rc, 0, out)


@unittest.skipUnless(P11_KIT and P11_KIT_CLIENT,
                     "p11-kit and p11-kit-modules are needed (scripts/install-deps.sh)")
class DrainTimeout(P11KitCase):

    conf = {"drain_timeout": 2}

    def test_timeout_exits_without_the_held_request(self):
        srv = self.server
        thread, result = self.start_held_sign("held-past-timeout")
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(15)
        finally:
            self.hold_hsm(False)
        took = time.monotonic() - t0
        sys.stderr.write("\nexit %d after %.2f s with drain_timeout = 2\n" % (rc, took))
        self.assertEqual(rc, 1, srv.log())
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 6.0)
        self.assertIn("drain timeout: 1 requests still in flight", srv.log())
        thread.join(60)
        r = result[0]
        # No signature reached the client.
        self.assertTrue(isinstance(r, OSError) or r.status != 200, r)
        srv.kill()
        rc, out = srv.audit_verify()
        self.assertEqual(rc, 0, out)
        # The state serves again.
        srv.start()
        r = self.sign("after-restart")
        self.assertEqual(r.status, 200, r)
        self.verify("after-restart", r)


if __name__ == "__main__":
    unittest.main()
