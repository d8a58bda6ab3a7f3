"""Two signum-server nodes on one networked HSM (issue 16).

The HSM is one SoftHSMv2 token exported by `p11-kit server` on a unix socket; each node loads
p11-kit-client.so with P11_KIT_SERVER_ADDRESS, as nodes load a Luna or nShield client library.
Node 2 starts from a copy of node 1's state without the token files, so it can reach the token
only over the socket. Until the shared PostgreSQL, each node has its own SQLite database: a key
generated through node 1 is registered on node 2 by adopting its CKA_ID (`hsm_id`), and must
sign there at once, with the same key object (RSA PKCS#1 v1.5 signatures are deterministic: both
nodes give the same bytes). The key stays sensitive and non-extractable as any client of the
remote token sees it. When the p11-kit server dies both nodes answer 503 hsm_unavailable (never
key_not_found) and both sign again, without a restart, once it is back.
"""

import hashlib
import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import p11kit_harness as p11  # noqa: E402
from signum_harness import SERVER_BIN, ecdsa_raw_to_der, pem, run, unb64  # noqa: E402

OUTAGE_SECONDS = 1.5      # how long the HSM stays away
RECOVERY_LIMIT = 15.0     # the nodes' back-off is capped at 5 s: well within this
MISSING_ID = "00" * 16    # no key in the token has this CKA_ID
EXTRACTABLE_ID = "e0" * 16
OTHER_CA_ID = "ca" * 16     # another installation's CA key on the same partition
TOKEN = "partition1"
PIN = "4321-user-pin"


@unittest.skipIf(p11.available(), p11.available())
class SharedNetworkHsm(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # The network HSM first: a token made by the HSM's own tool, exported over a socket.
        cls.hsm_dir = tempfile.mkdtemp(prefix="signum-hsm-")
        cls.addClassCleanup(shutil.rmtree, cls.hsm_dir, True)
        conf = p11.make_softhsm_token(cls.hsm_dir, TOKEN, PIN)
        cls.hsm = p11.P11KitServer(conf, TOKEN, os.path.join(cls.hsm_dir, "p11.sock"))
        cls.addClassCleanup(cls.hsm.kill)
        cls.hsm.start()
        # Inherited by both nodes and by their `audit verify`.
        os.environ["P11_KIT_SERVER_ADDRESS"] = cls.hsm.address
        # Node 1 is initialised through it: CA and audit keys made in the remote token.
        cls.node1 = p11.NetworkHsmNode(cls.hsm, PIN, start=False)
        cls.addClassCleanup(cls.node1.cleanup)
        n1 = cls.node1
        n1.set_conf({"hsm_sessions": 4})
        cls.node2 = p11.SharedTokenNode(n1)
        cls.addClassCleanup(cls.node2.cleanup)
        cls.remote = p11.RemoteToken(cls.hsm.address, TOKEN, PIN)
        for node in (cls.node1, cls.node2):
            node.start()
        cls.tokens = {}
        for i, node in enumerate((cls.node1, cls.node2)):
            cls.tokens[i] = node.token_for(node.create_user("builder"))
        cls.keys = {}

    @classmethod
    def tearDownClass(cls):
        for node in (cls.node2, cls.node1):
            if node.proc is not None and node.proc.poll() is None:
                node.stop()

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result is not None else None
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            for node in (self.node1, self.node2):
                sys.stderr.write("\n%s log:\n%s\n" % (node.root, node.log()))
        return out

    # -- helpers

    def nodes(self):
        return ((0, self.node1), (1, self.node2))

    def shared_key(self, name, type):
        """Generated through node 1, adopted by node 2 by its CKA_ID; granted on both."""
        if name in self.keys:
            return self.keys[name]
        k1 = self.node1.create_key(name, type)
        k2 = self.node2.call("POST", "/api/v1/admin/keys",
                             {"name": name, "type": type, "hsm_id": k1["id"]},
                             token=self.node2.admin_token(), expect=201)
        self.assertEqual(k2["id"], k1["id"])
        self.assertEqual(k2["public_key"], k1["public_key"],
                         "node 2 must read the very public key node 1 generated")
        for node in (self.node1, self.node2):
            node.grant(name, "builder")
        self.keys[name] = k1
        return k1

    def sign(self, i, node, key, mech, message, rid):
        digest = hashlib.sha256(message).digest()
        return node.sign_request(self.tokens[i], key, mech, "sha256", digest=digest,
                                 request_id=rid)

    def verify(self, key, message, sig, ec=False):
        pub = pem(unb64(key["public_key"]), "PUBLIC KEY").encode()
        if ec:
            sig = ecdsa_raw_to_der(sig)
        ok, text = self.node1.openssl.verify_digest_sig(pub, "sha256", message, sig)
        self.assertTrue(ok, text)

    # -- the scenario, in order

    def test_0_initialised_through_the_network_hsm(self):
        for _, node in self.nodes():
            self.assertFalse(os.path.exists(os.path.join(node.state, "hsm", "tokens")),
                             "a node must have no token files of its own")
            self.assertFalse(os.path.exists(os.path.join(node.state, "hsm", "softhsm2.conf")))
            self.assertFalse(os.path.exists(os.path.join(node.state, "hsm", "so.pin")))
            self.assertEqual(p11.conf_value(node.conf_path, "hsm_token"), TOKEN)
            self.assertEqual(p11.conf_value(node.conf_path, "hsm_module"), p11.client_module())
            with open(os.path.join(node.state, "hsm", "user.pin")) as f:
                self.assertEqual(f.read().strip(), PIN)
            self.assertEqual(os.stat(os.path.join(node.state, "hsm", "user.pin")).st_mode & 0o777,
                             0o600)
            h = node.request("GET", "/healthz")
            self.assertEqual(h.status, 200, h)
        # The CA and audit keys init made are in the remote token, sensitive there.
        with self.remote as t:
            for label in ("signum-ca", "signum-audit"):
                found = t.find_private_key(label=label)
                self.assertEqual(len(found), 1, label)
                self.assertEqual(t.get_bool(found[0], p11.CKA_EXTRACTABLE), (p11.CKR_OK, False))

    def test_0_init_refusals_change_nothing(self):
        pin_file = os.path.join(self.hsm_dir, "loose.pin")
        with open(pin_file, "w") as f:
            f.write(PIN)
        base = [SERVER_BIN, "init", "--hsm-module", p11.client_module(), "--hsm-pin-file"]
        for mode, label, rc, why in ((0o644, TOKEN, 2, b"readable by others"),
                                     (0o600, "no-such-partition", 1,
                                      b"no initialised token labelled")):
            os.chmod(pin_file, mode)
            state = os.path.join(self.hsm_dir, "state-%o" % mode)
            proc = run(base + [pin_file, "--hsm-token", label, "--state", state])
            self.assertEqual(proc.returncode, rc, proc)
            self.assertIn(why, proc.stderr)
            self.assertFalse(os.path.exists(state))
            self.assertEqual([n for n in os.listdir(self.hsm_dir) if ".init-" in n], [])

    def test_1_key_from_node1_signs_on_node2_at_once(self):
        rsa = self.shared_key("shared-rsa", "rsa2048")
        msg = b"one token, two nodes"
        sigs = []
        for i, node in self.nodes():
            r = self.sign(i, node, "shared-rsa", "rsa-pkcs1", msg, "rsa-%d" % i)
            self.assertEqual(r.status, 200, r)
            sig = unb64(r.json["signature"])
            self.verify(rsa, msg, sig)
            sigs.append(sig)
        self.assertEqual(sigs[0], sigs[1], "PKCS#1 v1.5 is deterministic: one key object, "
                         "one signature")

        ec = self.shared_key("shared-p256", "ec-p256")
        for i, node in reversed(self.nodes()):
            r = self.sign(i, node, "shared-p256", "ecdsa", msg, "ec-%d" % i)
            self.assertEqual(r.status, 200, r)
            self.verify(ec, msg, unb64(r.json["signature"]), ec=True)

    def test_2_key_stays_in_the_remote_token(self):
        """As any other client of the network HSM sees the keys the nodes use."""
        checks = [(self.shared_key("shared-rsa", "rsa2048"), p11.CKA_PRIVATE_EXPONENT),
                  (self.shared_key("shared-p256", "ec-p256"), p11.CKA_VALUE)]
        with self.remote as t:
            for key, secret in checks:
                objs = t.find_private_key(key["id"])
                self.assertEqual(len(objs), 1, key)
                obj = objs[0]
                for attr, want in ((p11.CKA_SENSITIVE, True), (p11.CKA_ALWAYS_SENSITIVE, True),
                                   (p11.CKA_EXTRACTABLE, False),
                                   (p11.CKA_NEVER_EXTRACTABLE, True), (p11.CKA_SIGN, True)):
                    self.assertEqual(t.get_bool(obj, attr), (p11.CKR_OK, want), hex(attr))
                rv, value = t.get_value(obj, secret)
                self.assertEqual(rv, p11.CKR_ATTRIBUTE_SENSITIVE, "the private value left the "
                                 "token: rv 0x%x, %r" % (rv, value))
                self.assertIsNone(value)
                # Neither can a client of the token loosen them afterwards.
                self.assertNotEqual(t.set_bool(obj, p11.CKA_EXTRACTABLE, True), p11.CKR_OK)
                self.assertNotEqual(t.set_bool(obj, p11.CKA_SENSITIVE, False), p11.CKR_OK)
                self.assertEqual(t.get_bool(obj, p11.CKA_EXTRACTABLE), (p11.CKR_OK, False))
                self.assertEqual(t.get_bool(obj, p11.CKA_SENSITIVE), (p11.CKR_OK, True))

    def test_3_adoption_refusals(self):
        n2 = self.node2
        adm = n2.admin_token()
        rsa = self.shared_key("shared-rsa", "rsa2048")
        r = n2.request("POST", "/api/v1/admin/keys",
                       {"name": "ghost", "type": "rsa2048", "hsm_id": MISSING_ID}, token=adm)
        self.assertEqual((r.status, r.error_code), (404, "key_not_found"), r)
        r = n2.request("POST", "/api/v1/admin/keys",
                       {"name": "wrong-type", "type": "rsa3072", "hsm_id": rsa["id"]}, token=adm)
        self.assertEqual((r.status, r.error_code), (400, "invalid_field"), r)
        r = n2.request("POST", "/api/v1/admin/keys",
                       {"name": "bad-id", "type": "rsa2048", "hsm_id": "zz" * 16}, token=adm)
        self.assertEqual((r.status, r.error_code), (400, "invalid_field"), r)
        # A key someone made extractable is refused, and left in the token (it is not ours).
        self.remote.tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", EXTRACTABLE_ID,
                         "--label", "extractable", "--extractable", "--usage-sign")
        with self.remote as t:
            self.assertEqual(t.get_bool(t.find_private_key(EXTRACTABLE_ID)[0],
                                        p11.CKA_EXTRACTABLE), (p11.CKR_OK, True))
        r = n2.request("POST", "/api/v1/admin/keys",
                       {"name": "leaky", "type": "ec-p256", "hsm_id": EXTRACTABLE_ID}, token=adm)
        self.assertEqual((r.status, r.error_code), (400, "invalid_field"), r)
        self.assertIn("extractable", r.json["error"]["message"])
        with self.remote as t:
            self.assertEqual(len(t.find_private_key(EXTRACTABLE_ID)), 1,
                             "a refused adoption must leave the key in the token")
        # Never the server's own keys: its CA and audit keys (by CKA_ID), nor another
        # installation's on the same partition (by label), which would forge certificates or
        # audit checkpoints as ordinary signing keys.
        with self.remote as t:
            own = {label: t.get_value(t.find_private_key(label=label)[0], p11.CKA_ID)[1].hex()
                   for label in ("signum-ca", "signum-audit")}
        for label, type in (("signum-ca", "rsa3072"), ("signum-audit", "ec-p256")):
            r = n2.request("POST", "/api/v1/admin/keys",
                           {"name": "own-" + label, "type": type, "hsm_id": own[label]},
                           token=adm)
            self.assertEqual((r.status, r.error_code), (400, "invalid_field"), r)
            self.assertIn("CA or audit key", r.json["error"]["message"])
        self.remote.tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", OTHER_CA_ID,
                         "--label", "signum-ca", "--usage-sign")
        r = n2.request("POST", "/api/v1/admin/keys",
                       {"name": "other-ca", "type": "ec-p256", "hsm_id": OTHER_CA_ID}, token=adm)
        self.assertEqual((r.status, r.error_code), (400, "invalid_field"), r)
        self.assertIn('labelled "signum-ca"', r.json["error"]["message"])
        # A project admin may create keys in the project, but not adopt one.
        n2.call("POST", "/api/v1/admin/projects", {"name": "adopters"}, token=adm, expect=201)
        n2.call("POST", "/api/v1/admin/projects/adopters/members",
                {"role": "admin", "user": "builder", "reason": "test"}, token=adm, expect=201)
        r = n2.request("POST", "/api/v1/admin/keys",
                       {"name": "proj-adopt", "type": "rsa2048", "hsm_id": rsa["id"],
                        "project": "adopters"}, token=self.tokens[1])
        self.assertEqual((r.status, r.error_code), (403, "forbidden"), r)
        r = n2.request("POST", "/api/v1/admin/keys",
                       {"name": "proj-new", "type": "ec-p256", "project": "adopters"},
                       token=self.tokens[1])
        self.assertEqual(r.status, 201, r)
        for name in ("ghost", "wrong-type", "bad-id", "leaky", "own-signum-ca",
                     "own-signum-audit", "other-ca", "proj-adopt"):
            r = n2.request("GET", "/api/v1/admin/keys/%s" % name, token=adm)
            self.assertEqual(r.status, 404, r)

    def test_4_hsm_outage_and_return_on_both_nodes(self):
        rsa = self.shared_key("shared-rsa", "rsa2048")
        self.hsm.kill()
        try:
            down_at = time.monotonic()
            n = 0
            while time.monotonic() - down_at < OUTAGE_SECONDS:
                for i, node in self.nodes():
                    r = self.sign(i, node, "shared-rsa", "rsa-pkcs1", b"down %d" % n,
                                  "down-%d-%d" % (i, n))
                    self.assertNotEqual(r.error_code, "key_not_found", r)
                    self.assertEqual((r.status, r.error_code), (503, "hsm_unavailable"), r)
                n += 1
                time.sleep(0.1)
            for _, node in self.nodes():
                h = node.request("GET", "/healthz")
                self.assertEqual(h.status, 503, h)
                self.assertFalse(h.json["hsm"]["ok"], h.json)
        finally:
            self.hsm.start()
        back_at = time.monotonic()
        pids = [node.proc.pid for _, node in self.nodes()]
        for i, node in self.nodes():
            last = None
            while time.monotonic() - back_at < RECOVERY_LIMIT:
                msg = b"back %d" % n
                last = self.sign(i, node, "shared-rsa", "rsa-pkcs1", msg, "back-%d-%d" % (i, n))
                n += 1
                self.assertNotEqual(last.error_code, "key_not_found", last)
                if last.status == 200:
                    self.verify(rsa, msg, unb64(last.json["signature"]))
                    break
                self.assertEqual(last.status, 503, last)
                time.sleep(0.05)
            self.assertEqual(last.status, 200, "node %d: no signature within %.0f s of the HSM's "
                             "return: %r" % (i + 1, RECOVERY_LIMIT, last))
            sys.stderr.write("node %d signs again %.0f ms after the HSM returned\n"
                             % (i + 1, (time.monotonic() - back_at) * 1000))
        self.assertEqual([node.proc.pid for _, node in self.nodes()], pids)
        self.assertTrue(all(node.proc.poll() is None for _, node in self.nodes()))

    def test_5_adoption_is_audited(self):
        rsa = self.shared_key("shared-rsa", "rsa2048")
        for _, node in reversed(self.nodes()):
            node.stop()
        created = [rec["detail"] for rec in self.node2.audit_show()
                   if rec["action"] == "key.create" and rec["detail"].get("key") == "shared-rsa"]
        self.assertEqual(len(created), 1, created)
        self.assertTrue(created[0].get("adopted"), created)
        self.assertEqual(created[0]["id"], rsa["id"])
        created = [rec["detail"] for rec in self.node1.audit_show()
                   if rec["action"] == "key.create" and rec["detail"].get("key") == "shared-rsa"]
        self.assertNotIn("adopted", created[0])


if __name__ == "__main__":
    unittest.main()
