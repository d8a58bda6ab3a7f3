"""The macOS token's C shim on Linux, end to end: sgtk-drive (what the token extension and the
host app call) -> the client library -> signum-agent -> a real signum-server with SoftHSMv2.
Every algorithm the token announces signs, and OpenSSL verifies each signature (ECDSA in the
DER form the Security framework expects, parsed by `openssl asn1parse`); every error the shim
can meet here arrives as its TKErrorCode."""

import hashlib
import os
import socket
import subprocess
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from agent_harness import Agent  # noqa: E402
from signum_harness import ServerTestCase, run  # noqa: E402

DRIVE = os.environ.get("SGTK_DRIVE", "")

RSA_ALGS = {  # algorithm -> (hashlib name, padding)
    "RSASignatureDigestPKCS1v15SHA256": ("sha256", "pkcs1"),
    "RSASignatureDigestPKCS1v15SHA384": ("sha384", "pkcs1"),
    "RSASignatureDigestPKCS1v15SHA512": ("sha512", "pkcs1"),
    "RSASignatureDigestPSSSHA256": ("sha256", "pss"),
    "RSASignatureDigestPSSSHA384": ("sha384", "pss"),
    "RSASignatureDigestPSSSHA512": ("sha512", "pss"),
}
EC_ALGS = {
    "ECDSASignatureDigestX962SHA256": "sha256",
    "ECDSASignatureDigestX962SHA384": "sha384",
    "ECDSASignatureDigestX962SHA512": "sha512",
}
DIGESTINFO_PREFIX = {  # RFC 8017 9.2 note 1
    "sha256": "3031300d060960864801650304020105000420",
    "sha384": "3041300d060960864801650304020205000430",
    "sha512": "3051300d060960864801650304020305000440",
}
UNKNOWN_KEY_ID = "signum-key:" + "00" * 32


class ShimCase(ServerTestCase):

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.alice_key = s.create_user("alice")
        for name, kind in (("tk-rsa", "rsa2048"), ("tk-rsa3k", "rsa3072"), ("tk-ec", "ec-p256"),
                           ("tk-ec384", "ec-p384")):
            s.create_key(name, kind)
            s.issue_cert(name, name)
            s.grant(name, "alice")
        s.create_key("tk-bare", "rsa2048")  # no certificate: no identity
        s.grant("tk-bare", "alice")

    def new_agent(self, api_key=None, extra_env=None, start=True):
        """An agent's environment, and the agent started (as launchd does on macOS: the shim
        never starts one)."""
        a = Agent(["https://localhost:%d" % self.server.port], self.server.ca_cert_path,
                  api_key=self.alice_key if api_key is None else api_key, extra_env=extra_env,
                  name="ctk")
        self.addCleanup(a.cleanup)
        if start:
            a.util_ok("agent", "start")
        return a

    def drive(self, agent, *args, env=None):
        e = dict(agent.env)
        e.update(env or {})
        return run([DRIVE] + list(args), env=e, timeout=60.0)

    def drive_ok(self, agent, *args):
        p = self.drive(agent, *args)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + agent.log().encode())
        return p.stdout.decode().strip()

    def assert_tk_error(self, proc, code, name):
        out = proc.stdout.decode()
        self.assertEqual(proc.returncode, 1, out + proc.stderr.decode())
        self.assertTrue(out.startswith("error %d %s " % (code, name)), out)
        return out

    def entry(self, agent, name):
        fields = self.drive_ok(agent, "entry", name).split()
        self.assertEqual(fields[0], name)
        return {"key_id": fields[1], "cert_id": fields[2], "kind": fields[3],
                "bits": int(fields[4])}

    def pubkey(self, agent, key):
        pem = agent.util_ok("cert", key).stdout
        o = self.server.openssl
        return o.tmp(o("x509", "-pubkey", "-noout", input=pem).stdout, ".pem")

    def verify(self, pub, hash_name, message, sig, pss=False):
        o = self.server.openssl
        args = ["dgst", "-" + hash_name, "-verify", pub, "-signature", o.tmp(sig)]
        if pss:
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest",
                     "-sigopt", "rsa_mgf1_md:" + hash_name]
        return o(*(args + [o.tmp(message)]), check=False)


class Signing(ShimCase):

    def test_entries_and_object_ids(self):
        a = self.new_agent()
        cert_pem = a.util_ok("cert", "tk-rsa").stdout
        der = self.server.openssl("x509", "-outform", "DER", input=cert_pem).stdout
        want = hashlib.sha256(der).hexdigest()
        e = self.entry(a, "tk-rsa")
        self.assertEqual(e["key_id"], "signum-key:" + want)
        self.assertEqual(e["cert_id"], "signum-cert:" + want)
        self.assertEqual((e["kind"], e["bits"]), ("rsa", 2048))
        self.assertEqual((self.entry(a, "tk-ec384")["kind"], self.entry(a, "tk-ec384")["bits"]),
                         ("ec", 384))

    def test_every_rsa_algorithm_verifies(self):
        a = self.new_agent()
        for key in ("tk-rsa", "tk-rsa3k"):
            kid = self.entry(a, key)["key_id"]
            pub = self.pubkey(a, key)
            for alg, (h, pad) in sorted(RSA_ALGS.items()):
                msg = ("%s with %s" % (alg, key)).encode()
                digest = hashlib.new(h, msg).hexdigest()
                self.assertEqual(self.drive_ok(a, "supports", kid, alg), "yes")
                sig = bytes.fromhex(self.drive_ok(a, "sign", kid, alg, digest))
                r = self.verify(pub, h, msg, sig, pss=pad == "pss")
                self.assertEqual(r.returncode, 0, (alg, key, r.stdout + r.stderr))
                # The check is real: another message does not verify.
                r = self.verify(pub, h, msg + b"!", sig, pss=pad == "pss")
                self.assertNotEqual(r.returncode, 0, (alg, key))
            # RSASignatureDigestPKCS1v15Raw: the framework hands a DigestInfo.
            for h, prefix in sorted(DIGESTINFO_PREFIX.items()):
                msg = ("DigestInfo %s %s" % (h, key)).encode()
                di = prefix + hashlib.new(h, msg).hexdigest()
                sig = bytes.fromhex(self.drive_ok(a, "sign", kid,
                                                  "RSASignatureDigestPKCS1v15Raw", di))
                r = self.verify(pub, h, msg, sig)
                self.assertEqual(r.returncode, 0, (h, key, r.stdout + r.stderr))

    def test_every_ecdsa_algorithm_gives_der_that_verifies(self):
        a = self.new_agent()
        o = self.server.openssl
        for key, size in (("tk-ec", 32), ("tk-ec384", 48)):
            kid = self.entry(a, key)["key_id"]
            pub = self.pubkey(a, key)
            cases = [(alg, h) for alg, h in sorted(EC_ALGS.items())]
            cases += [("ECDSASignatureDigestX962", h) for h in ("sha256", "sha384", "sha512")]
            for alg, h in cases:
                msg = ("%s %s %s" % (alg, h, key)).encode()
                digest = hashlib.new(h, msg).hexdigest()
                self.assertEqual(self.drive_ok(a, "supports", kid, alg), "yes")
                sig = bytes.fromhex(self.drive_ok(a, "sign", kid, alg, digest))
                # DER ECDSA-Sig-Value: a SEQUENCE of two INTEGERs, nothing after it.
                parsed = o("asn1parse", "-inform", "DER", "-in", o.tmp(sig)).stdout.decode()
                lines = [ln for ln in parsed.splitlines() if ln.strip()]
                self.assertEqual(len(lines), 3, parsed)
                self.assertIn("SEQUENCE", lines[0])
                self.assertTrue(all("INTEGER" in ln for ln in lines[1:]), parsed)
                self.assertLessEqual(len(sig), 2 * size + 9)
                r = self.verify(pub, h, msg, sig)
                self.assertEqual(r.returncode, 0, (alg, h, key, r.stdout + r.stderr))
                r = self.verify(pub, h, msg + b"!", sig)
                self.assertNotEqual(r.returncode, 0, (alg, key))


class Errors(ShimCase):

    def test_object_and_parameter_errors(self):
        a = self.new_agent()
        rsa = self.entry(a, "tk-rsa")["key_id"]
        ec = self.entry(a, "tk-ec")["key_id"]
        d32 = "ab" * 32
        # An id of no key of ours, a certificate id where a key id belongs, a name not granted.
        self.assert_tk_error(self.drive(a, "sign", UNKNOWN_KEY_ID,
                                        "RSASignatureDigestPKCS1v15SHA256", d32),
                             -6, "TKErrorCodeObjectNotFound")
        cert_id = self.entry(a, "tk-rsa")["cert_id"]
        self.assert_tk_error(self.drive(a, "sign", cert_id, "RSASignatureDigestPKCS1v15SHA256",
                                        d32), -6, "TKErrorCodeObjectNotFound")
        self.assert_tk_error(self.drive(a, "entry", "no-such-key"), -6,
                             "TKErrorCodeObjectNotFound")
        self.assertEqual(self.drive_ok(a, "supports", UNKNOWN_KEY_ID,
                                       "RSASignatureDigestPKCS1v15SHA256"), "no")
        # A key without a certificate is no identity.
        out = self.assert_tk_error(self.drive(a, "entry", "tk-bare"), -8,
                                   "TKErrorCodeBadParameter")
        self.assertIn("no certificate", out)
        # A digest of the wrong length, a DigestInfo of SHA-1.
        self.assert_tk_error(self.drive(a, "sign", rsa, "RSASignatureDigestPKCS1v15SHA384", d32),
                             -8, "TKErrorCodeBadParameter")
        sha1_di = "3021300906052b0e03021a05000414" + "11" * 20
        self.assert_tk_error(self.drive(a, "sign", rsa, "RSASignatureDigestPKCS1v15Raw", sha1_di),
                             -8, "TKErrorCodeBadParameter")
        # An algorithm of the other key kind is not supported and not signed.
        self.assertEqual(self.drive_ok(a, "supports", ec, "RSASignatureDigestPSSSHA256"), "no")
        self.assertEqual(self.drive_ok(a, "supports", rsa, "ECDSASignatureDigestX962"), "no")
        self.assert_tk_error(self.drive(a, "sign", ec, "RSASignatureDigestPSSSHA256", d32), -1,
                             "TKErrorCodeNotImplemented")

    def test_credentials_errors(self):
        kid = self.entry(self.new_agent(), "tk-ec")["key_id"]
        d32 = "cd" * 32
        # An agent without credentials: authentication needed (signum-util login fixes it).
        self.assert_tk_error(self.drive(self.new_agent(api_key=""), "sign", kid,
                                        "ECDSASignatureDigestX962SHA256", d32),
                             -9, "TKErrorCodeAuthenticationNeeded")
        # Credentials the server refuses.
        self.assert_tk_error(self.drive(self.new_agent(api_key="sgk_" + "0" * 40), "sign", kid,
                                        "ECDSASignatureDigestX962SHA256", d32),
                             -5, "TKErrorCodeAuthenticationFailed")

    def test_policy_refusal(self):
        """A spent policy quota is a refusal of this signature: authentication failed."""
        s = self.server
        s.create_key("tk-quota", "ec-p256")
        s.issue_cert("tk-quota", "tk-quota")
        s.call("POST", "/api/v1/admin/policies", {
            "name": "ctk-one-signature", "effect": "allow", "subjects": {"users": ["alice"]},
            "keys": {"names": ["tk-quota"]},
            "conditions": {"quotas": [{"limit": 1, "window_seconds": 3600, "per": "key"}]}},
            token=s.admin_token(), expect=201)
        a = self.new_agent()
        kid = self.entry(a, "tk-quota")["key_id"]
        self.drive_ok(a, "sign", kid, "ECDSASignatureDigestX962SHA256", "01" * 32)
        out = self.assert_tk_error(self.drive(a, "sign", kid, "ECDSASignatureDigestX962SHA256",
                                              "02" * 32), -5, "TKErrorCodeAuthenticationFailed")
        self.assertIn("tk-quota", out)

    def test_no_agent_and_no_server(self):
        a = self.new_agent()
        kid = self.entry(a, "tk-rsa")["key_id"]
        a.stop()
        # No agent: the shim starts none (a child of the sandboxed extension would inherit the
        # sandbox), even with autostart allowed to other clients, and says how to start it.
        out = self.assert_tk_error(self.drive(a, "sign", kid, "RSASignatureDigestPSSSHA256",
                                              "00" * 32),
                                   -2, "TKErrorCodeCommunicationError")
        self.assertIn("the token does not start the agent: start it with 'launchctl kickstart "
                      "gui/$(id -u)/com.signum.agent'", out)
        self.assertFalse(a.running())
        self.assertIsNone(a.pid())
        # An agent whose server is gone.
        b = self.new_agent(extra_env={"SIGNUM_SERVER": "https://localhost:1"})
        self.assert_tk_error(self.drive(b, "sign", kid, "RSASignatureDigestPSSSHA256", "00" * 32),
                             -2, "TKErrorCodeCommunicationError")

    def test_malformed_agent_answer(self):
        """A listener of our own uid that answers garbage: corrupted data, not a crash."""
        a = self.new_agent(start=False)
        os.makedirs(os.path.dirname(a.socket_path), mode=0o700, exist_ok=True)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(a.socket_path)
        srv.listen(4)
        self.addCleanup(os.unlink, a.socket_path)  # no agent to stop: only our listener
        self.addCleanup(srv.close)

        def answer():
            for _ in range(4):
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                with c:
                    c.recv(65536)
                    c.sendall(b"\xff" * 64)

        threading.Thread(target=answer, daemon=True).start()
        self.assert_tk_error(self.drive(a, "sign", UNKNOWN_KEY_ID,
                                        "RSASignatureDigestPSSSHA256", "00" * 32,
                                        env={"SIGNUM_NO_AUTOSTART": "1"}),
                             -3, "TKErrorCodeCorruptedData")


if __name__ == "__main__":
    if not DRIVE:
        sys.exit("SGTK_DRIVE is not set (run through ctest)")
    unittest.main(verbosity=2)
