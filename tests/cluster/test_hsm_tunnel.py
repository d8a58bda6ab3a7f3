"""The network HSM across hosts as deploy/kubernetes/deployment.yaml reaches it (issue 16):
the p11-kit server's unix socket carried over mutual TLS by socat, a gateway in front of the
p11-kit server and a local end per node (the hsm-tunnel sidecar's command line), on
127.0.0.1. A node initialised and serving through the tunnel generates a key and signs (OpenSSL
verifies); a tunnel end whose client certificate the gateway does not trust reaches no token.
"""

import hashlib
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import p11kit_harness as p11  # noqa: E402
from signum_harness import ecdsa_raw_to_der, pem, unb64  # noqa: E402

TOKEN = "tunnelled"
PIN = "tunnel-user-pin"


@unittest.skipIf(p11.available() or not p11.SOCAT,
                 p11.available() or "socat is missing (Debian package socat)")
class HsmThroughTlsTunnel(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="signum-tunnel-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        conf = p11.make_softhsm_token(os.path.join(cls.dir, "hsm"), TOKEN, PIN)
        cls.hsm = p11.P11KitServer(conf, TOKEN, os.path.join(cls.dir, "hsm", "p11.sock"))
        cls.addClassCleanup(cls.hsm.kill)
        cls.hsm.start()
        cls.pki = p11.TlsPki(os.path.join(cls.dir, "pki"))
        cls.tunnel = p11.SocatTunnel()
        cls.addClassCleanup(cls.tunnel.stop)
        cls.port = cls.tunnel.gateway(cls.pki, cls.hsm.sock)
        node_sock = os.path.join(cls.dir, "node-p11.sock")
        address = cls.tunnel.local_end(cls.pki, cls.port, node_sock)
        os.environ["P11_KIT_SERVER_ADDRESS"] = cls.address = address
        # NetworkHsmNode takes the address from the object it is given.
        cls.node = p11.NetworkHsmNode(type("Tunnel", (), {"address": address, "token": TOKEN}),
                                      PIN, name="tunnel-node")
        cls.addClassCleanup(cls.node.cleanup)

    @classmethod
    def tearDownClass(cls):
        if cls.node.proc is not None and cls.node.proc.poll() is None:
            cls.node.stop()

    def test_node_signs_through_the_tunnel(self):
        node = self.node
        self.assertEqual(os.stat(self.address[len("unix:path="):])
                         .st_mode & 0o777, 0o600)
        key = node.create_key("tunnel-p256", "ec-p256")
        token = node.token_for(node.create_user("tunnel-signer"))
        node.grant("tunnel-p256", "tunnel-signer")
        msg = b"signed through a TLS tunnel"
        r = node.sign_request(token, "tunnel-p256", "ecdsa", "sha256",
                              digest=hashlib.sha256(msg).digest())
        self.assertEqual(r.status, 200, r)
        ok, text = node.openssl.verify_digest_sig(
            pem(unb64(key["public_key"]), "PUBLIC KEY").encode(), "sha256", msg,
            ecdsa_raw_to_der(unb64(r.json["signature"])))
        self.assertTrue(ok, text)
        # Another client of the same gateway sees the key, non-extractable.
        with p11.RemoteToken(self.address, TOKEN, PIN) as t:
            objs = t.find_private_key(key["id"])
            self.assertEqual(len(objs), 1)
            self.assertEqual(t.get_bool(objs[0], p11.CKA_EXTRACTABLE), (p11.CKR_OK, False))

    def test_untrusted_client_certificate_reaches_no_token(self):
        stranger = p11.TlsPki(os.path.join(self.dir, "stranger"), name="stranger")
        address = self.tunnel.local_end(self.pki, self.port,
                                        os.path.join(self.dir, "stranger.sock"),
                                        client_name="stranger", client_pki=stranger)
        with self.assertRaises(AssertionError) as cm:
            with p11.RemoteToken(address, TOKEN, PIN):
                pass
        self.assertRegex(str(cm.exception), "C_Initialize|no token")
        # The trusted path still works afterwards.
        with p11.RemoteToken(self.address, TOKEN, PIN) as t:
            self.assertGreaterEqual(len(t.find_private_key(label="signum-ca")), 1)


if __name__ == "__main__":
    unittest.main()
