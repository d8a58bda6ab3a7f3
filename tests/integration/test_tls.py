"""TLS of the HTTPS front end: TLS 1.2 stays (Wine needs it) but offers forward-secret AEAD
suites only (ECDHE with AES-GCM or ChaCha20-Poly1305): no static-RSA key exchange, no CBC;
TLS 1.3 keeps its defaults. Checked with Python's ssl module and with `openssl s_client`
against a real server, one with an RSA and one with an ECDSA certificate."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import ServerTestCase  # noqa: E402

REFUSED_TLS12 = [
    "AES128-SHA",                   # static RSA, CBC
    "AES128-GCM-SHA256",            # static RSA, GCM
    "AES256-SHA256",                # static RSA, CBC
    "ECDHE-RSA-AES128-SHA",         # CBC
    "ECDHE-ECDSA-AES256-SHA384",    # CBC
    "DHE-RSA-AES128-GCM-SHA256",    # finite-field DHE
]


class TlsMixin:
    accepted = None  # the TLS 1.2 suites this server's certificate type can use

    def client_context(self):
        return self.server.ssl_context()

    def handshake(self, ciphers, version=ssl.TLSVersion.TLSv1_2):
        ctx = self.client_context()
        ctx.minimum_version = version
        ctx.maximum_version = version
        if ciphers:
            ctx.set_ciphers(ciphers)
        sock = socket.create_connection(("127.0.0.1", self.server.port), 10)
        try:
            with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                return tls.version(), tls.cipher()[0], tls.compression()
        finally:
            sock.close()

    def test_tls12_refuses_static_rsa_and_cbc(self):
        for suite in REFUSED_TLS12:
            with self.subTest(suite=suite):
                with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                    self.handshake(suite + ":@SECLEVEL=0")

    def test_tls12_accepts_ecdhe_aead(self):
        for suite in self.accepted:
            with self.subTest(suite=suite):
                version, cipher, compression = self.handshake(suite)
                self.assertEqual((version, cipher), ("TLSv1.2", suite))
                self.assertIsNone(compression)

    def test_server_preference_picks_aead(self):
        # A client preferring CBC still gets an AEAD suite: the server's order decides.
        prefer_cbc = "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:" + ":".join(self.accepted)
        version, cipher, _ = self.handshake(prefer_cbc)
        self.assertIn(cipher, self.accepted)

    def test_tls13_default(self):
        version, cipher, _ = self.handshake(None, ssl.TLSVersion.TLSv1_3)
        self.assertEqual(version, "TLSv1.3")
        self.assertIn(cipher, ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
                               "TLS_CHACHA20_POLY1305_SHA256"))

    @unittest.skipUnless(shutil.which("openssl"), "openssl CLI not installed")
    def test_openssl_s_client(self):
        def s_client(cipher):
            p = subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.server.port,
                 "-servername", "localhost", "-tls1_2", "-cipher", cipher,
                 "-CAfile", self.cafile()],
                input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            return p.returncode, p.stdout.decode(errors="replace")

        rc, out = s_client("AES128-SHA:@SECLEVEL=0")
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("Cipher is AES128-SHA", out)
        rc, out = s_client(self.accepted[0])
        self.assertEqual(rc, 0, out)
        self.assertIn("Cipher is " + self.accepted[0], out)
        self.assertIn("Compression: NONE", out)


class RsaServerTls(TlsMixin, ServerTestCase):
    """The listener's own key is ECDSA (init makes it); an operator may install an RSA one."""
    server_options = {"ca_key_type": "rsa2048", "start": False}
    accepted = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-RSA-CHACHA20-POLY1305"]

    @classmethod
    def prepare(cls):
        s = cls.server
        tls = os.path.join(s.state, "tls")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", os.path.join(tls, "rsa.key"),
                        "-out", os.path.join(tls, "rsa.crt")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        s.set_conf({"tls_cert": "tls/rsa.crt", "tls_key": "tls/rsa.key"})
        s.start()

    def cafile(self):
        return os.path.join(self.server.state, "tls", "rsa.crt")

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.cafile())
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx


class EcServerTls(TlsMixin, ServerTestCase):
    server_options = {"ca_key_type": "ec-p256"}

    def cafile(self):
        return self.server.ca_cert_path
    accepted = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305"]


if __name__ == "__main__":
    unittest.main(verbosity=2)
