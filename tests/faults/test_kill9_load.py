"""kill -9 under signing load: a real signum-server (SoftHSMv2, SQLite) signs for 4 client
threads; three times, once enough signatures have come back since the last start, the server
is killed with SIGKILL mid-load and restarted on the same state. Every signature any client
received must be in the audit log (the record at its audit_id: action sign, outcome ok, the
same key, digest and request id), and `signum-server audit verify` must pass on the state the
crash left and again after each restart."""

import hashlib
import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from signum_harness import Server, b64, unb64  # noqa: E402

CLIENTS = 4
ROUNDS = 3                  # kills
PER_ROUND = 120             # signatures received since the last start before the next kill
MAX_PER_CLIENT = 1500       # requests per client, whatever happens
LOAD_DEADLINE = 150.0       # seconds for the whole load
RESTART_WAIT = 30.0         # how long a client waits for the server to come back


class Load:
    """Client threads signing distinct digests; each 200 answer is recorded with what it
    claimed. A failed exchange (the server died under it) waits for the next start."""

    def __init__(self, server, token, keys):
        self.server = server
        self.token = token
        self.keys = keys
        self.lock = threading.Lock()
        self.received = []          # (key, digest hex, request id, audit_id)
        self.failed_exchanges = 0
        self.unexpected = []        # answers that are neither 200 nor a dead connection
        self.up = threading.Event()
        self.stop = threading.Event()
        self.progress = threading.Condition(self.lock)
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(CLIENTS)]
        self.deadline = time.monotonic() + LOAD_DEADLINE

    def count(self):
        with self.lock:
            return len(self.received)

    def client(self, n):
        key, mech = self.keys[n % len(self.keys)]
        for i in range(MAX_PER_CLIENT):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            if not self.up.wait(RESTART_WAIT):
                return
            digest = hashlib.sha256(b"kill9-%d-%d" % (n, i)).digest()
            rid = "k9-%d-%d" % (n, i)
            body = {"key": key, "mechanism": mech, "hash": "sha256", "digest": b64(digest),
                    "request_id": rid}
            try:
                r = self.server.request("POST", "/api/v1/sign", body, token=self.token,
                                        timeout=20)
            except (OSError, ValueError) as e:
                # The server was killed under this exchange (reset, refused, short read):
                # whatever happened, no signature reached this client.
                with self.lock:
                    self.failed_exchanges += 1
                continue
            with self.progress:
                if r.status == 200:
                    self.received.append((key, digest.hex(), rid, r.json["audit_id"],
                                          unb64(r.json["signature"])))
                    self.progress.notify_all()
                else:
                    self.unexpected.append(repr(r))

    def wait_for(self, n, timeout):
        with self.progress:
            return self.progress.wait_for(lambda: len(self.received) >= n, timeout)


class Kill9UnderLoadTest(unittest.TestCase):

    def setUp(self):
        self.server = Server(ca_key_type="ec-p256", name="kill9")
        self.addCleanup(self.server.cleanup)
        s = self.server
        s.create_key("k9-ec", "ec-p256")
        s.create_key("k9-rsa", "rsa2048")
        api_key = s.create_user("loader", "signer")
        s.grant("k9-ec", "loader")
        s.grant("k9-rsa", "loader")
        self.token = s.token_for(api_key)

    def verify(self, when):
        rc, out = self.server.audit_verify()
        self.assertEqual(rc, 0, "audit verify failed %s:\n%s\n%s" % (when, out, self.server.log(60)))

    def test_kill9_under_load(self):
        s = self.server
        load = Load(s, self.token, [("k9-ec", "ecdsa"), ("k9-rsa", "rsa-pkcs1")])
        load.up.set()
        for t in load.threads:
            t.start()
        restarts_ms = []
        try:
            for rnd in range(ROUNDS):
                target = load.count() + PER_ROUND
                self.assertTrue(load.wait_for(target, 60),
                                "round %d: only %d signatures came back\n%s" % (
                                    rnd, load.count(), s.log(60)))
                load.up.clear()
                s.proc.kill()       # SIGKILL, mid-load: the clients are still sending
                s.proc.wait(10)
                s.kill()            # closes the log; the process is gone already
                self.verify("on the state left by kill -9 in round %d" % rnd)
                t0 = time.monotonic()
                s.start()
                restarts_ms.append((time.monotonic() - t0) * 1000)
                self.verify("after restart %d" % rnd)
                load.up.set()
            # One more stretch after the last restart, then a clean stop of the load.
            self.assertTrue(load.wait_for(load.count() + PER_ROUND // 2, 60), s.log(60))
        finally:
            load.stop.set()
            load.up.set()
            for t in load.threads:
                t.join(RESTART_WAIT + 25)
        self.assertFalse(load.unexpected, "answers other than 200: %s" % load.unexpected[:5])

        records = {r["seq"]: r for r in s.audit_show()}
        missing = []
        for key, digest, rid, audit_id, sig in load.received:
            rec = records.get(audit_id)
            d = rec and rec.get("detail") or {}
            if (not rec or rec["action"] != "sign" or rec["outcome"] != "allowed" or
                    d.get("key") != key or digest not in d.get("digests", []) or
                    d.get("request_id") != rid):
                missing.append((key, digest, rid, audit_id))
        self.assertEqual(missing, [], "%d of %d received signatures have no audit record" % (
            len(missing), len(load.received)))
        # A retried request id never made a second record: each id appears once.
        rids = [r["detail"]["request_id"] for r in records.values()
                if r["action"] == "sign" and r["outcome"] == "allowed"
                and "request_id" in r.get("detail", {})]
        self.assertEqual(len(rids), len(set(rids)))
        self.verify("at the end")
        s.stop()
        sys.stderr.write(
            "\nkill -9 x%d under %d clients: %d signatures received, all %d in the audit log "
            "(%d sign records); %d exchanges cut by a kill; restarts %s ms\n" % (
                ROUNDS, CLIENTS, len(load.received), len(load.received) - len(missing),
                len(rids), load.failed_exchanges,
                ", ".join("%.0f" % m for m in restarts_ms)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
