"""signumcsp.dll under wine64, through Wine's own CryptoAPI (advapi32 routes CryptAcquireContext
to the CSP that regsvr32 registered), against a real signum-server on 127.0.0.1 and the real
signum-agent.exe.

- Offline (no agent): registration by `wine64 regsvr32`, the registry entry, provider parameters,
  local hashing, refusals, typed-handle checks (stale, double-freed, wrong-type and forged
  values, a context's hashes ended with it, the cap on live handles), errors with the agent
  unreachable, and unregistration.
- End to end: containers = the user's RSA keys; signatures made by test_csp.exe (CryptHashData
  and CryptSetHashParam(HP_HASHVAL)) for RSA-2048 and RSA-3072 with SHA-256/384/512, turned to
  big-endian here and verified with openssl against the server's certificate; the exported
  PUBLICKEYBLOB and KP_CERTIFICATE match the certificate; unknown, ungranted and EC containers
  are refused; the PIN (PP_SIGNATURE_PIN) is the API key; four threads sign through one
  context; key handles (double destroy, wrong type, stale, forged, ended with their context);
  the audit log records the digests and names test_csp.exe's Windows image path as the
  caller.

SIGNUM_WINE_ARCH=x86 (ctest wine32.csp) runs the same checks with the x86 build's DLL and
test_csp.exe under the 32-bit loader: regsvr32 is then the 32-bit one, so the registration lands
in the WOW64 registry view, where the 32-bit advapi32 looks; the agent is still the x64 one. On
a machine that cannot run 32-bit programs it exits 77 (ctest: skipped).

Environment (tests/wine/CMakeLists.txt): WINE_DIR (the run's prefix is $WINE_DIR/prefix),
MINGW_BUILD_DIR (signumcsp.dll, test_csp.exe, signum-agent.exe; MINGW32_BUILD_DIR for x86),
SOURCE_DIR, SIGNUM_SERVER_BIN (see wine_harness.py).
"""

import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

# wine_harness first: it points signum_harness at the server binary ($SIGNUM_SERVER_BIN).
from wine_harness import (ARCH, WineEnv, exit_unless_runnable, loader, mingw_dir,  # noqa: E402
                          server_with_keys, emulated, short_when_emulated, wine_path,
                          wine_timeout)
from signum_harness import unb64  # noqa: E402

WINE_DIR = os.environ.get("WINE_DIR", "")
MINGW = mingw_dir(ARCH) if os.environ.get("MINGW_BUILD_DIR") else ""
DLL = os.path.join(MINGW, "windows-csp", "signumcsp.dll")
EXE = os.path.join(MINGW, "tests", "windows", "test_csp.exe")
RUN_TIMEOUT = 100
NO_AGENT_PIPE = r"\\.\pipe\signum-test-csp-none-%d" % os.getpid()

NTE_BAD_KEYSET = 0x80090016
NTE_KEYSET_NOT_DEF = 0x80090019
NTE_DEVICE_NOT_READY = 0x80090030


def winpath(path):
    """The Unix path as Wine shows it (drive Z: maps /)."""
    return "Z:" + os.path.abspath(path).replace("/", "\\")


def wine_env(extra=None):
    env = dict(os.environ)
    env.update({"WINEPREFIX": os.path.join(WINE_DIR, "prefix"), "WINEDEBUG": "-all",
                "WINEDLLOVERRIDES": "mscoree,mshtml=",
                "PATH": wine_path(env.get("PATH", ""))})
    env.update(extra or {})
    return env


def wine(args, extra_env=None):
    """Runs a Windows program under wine64 (wine for x86), bounded in time; returns (rc,
    stdout, stderr).
    Output goes to files: a wineserver or agent started by the call would keep a pipe open."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run([loader(ARCH)] + args, stdout=out, stderr=err, env=wine_env(extra_env),
                              timeout=wine_timeout(ARCH, RUN_TIMEOUT))
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read().decode(errors="replace"), err.read().decode(
            errors="replace")


def register():
    rc, out, err = wine(["regsvr32", "/s", winpath(DLL)])
    if rc != 0:
        raise AssertionError("regsvr32 %s exited %d: %s %s" % (DLL, rc, out, err))


def unregister():
    rc, out, err = wine(["regsvr32", "/u", "/s", winpath(DLL)])
    if rc != 0:
        raise AssertionError("regsvr32 /u exited %d: %s %s" % (rc, out, err))


def prerequisites():
    missing = [p for p in (DLL, EXE) if not os.path.isfile(p)]
    if not WINE_DIR or not os.path.isdir(os.path.join(WINE_DIR, "prefix")):
        missing.append("the Wine prefix $WINE_DIR/prefix (the wine fixture)")
    if missing:
        raise AssertionError("missing prerequisites: %s" % ", ".join(missing))


def parse_publickeyblob(blob):
    """(bits, exponent, modulus as int) of a PUBLICKEYBLOB; asserts its header."""
    btype, version, reserved, alg = struct.unpack("<BBHI", blob[:8])
    magic, bits, exp = struct.unpack("<4sII", blob[8:20])
    assert (btype, version, reserved, alg, magic) == (6, 2, 0, 0x2400, b"RSA1"), blob[:20]
    mod = blob[20:]
    assert len(mod) == bits // 8, (len(mod), bits)
    return bits, exp, int.from_bytes(mod, "little")


SIGN_HASHES = ("sha256", "sha384", "sha512")


class CspOffline(unittest.TestCase):
    """What needs no agent (SIGNUM_NO_AUTOSTART=1, a pipe nobody serves)."""

    @classmethod
    def setUpClass(cls):
        prerequisites()
        register()

    def run_exe(self, *args):
        return wine([EXE] + list(args), {"SIGNUM_NO_AUTOSTART": "1",
                                         "SIGNUM_AGENT_SOCKET": NO_AGENT_PIPE})

    def test_registered_csp_through_cryptoapi(self):
        log = os.path.join(tempfile.mkdtemp(prefix="signum-csp-log-"), "csp.log")
        try:
            rc, out, err = wine([EXE, "offline", winpath(DLL)],
                                {"SIGNUM_NO_AUTOSTART": "1", "SIGNUM_AGENT_SOCKET": NO_AGENT_PIPE,
                                 "SIGNUM_DEBUG": "csp", "SIGNUM_CSP_LOG": winpath(log)})
            self.assertEqual(rc, 0, out + err)
            self.assertIn("0 failure(s)", out)
            self.assertNotIn("FAIL", out)
            self.assertIn("image path: %s" % winpath(DLL), out)
            # The debug log names the failing entry point, its code and the client's reason.
            with open(log, errors="replace") as f:
                text = f.read()
            self.assertIn("CPAcquireContext: 0x80090030", text)
            self.assertIn("client: agent_unavailable: ", text)
        finally:
            shutil.rmtree(os.path.dirname(log), ignore_errors=True)

    def test_unregistered_provider_is_unknown(self):
        try:
            unregister()
            rc, out, err = self.run_exe("acquire", "x")
            self.assertIn("acquire 0x%08x" % NTE_KEYSET_NOT_DEF, out, out + err)
        finally:
            register()
        rc, out, err = self.run_exe("acquire", "x")  # registered again: it is the CSP answering
        self.assertIn("acquire 0x%08x" % NTE_DEVICE_NOT_READY, out, out + err)


class CspEndToEnd(unittest.TestCase):
    """signumcsp.dll -> client library -> signum-agent.exe -> signum-server, all real."""

    KEYS = {"csp-rsa2048": "rsa2048", "csp-rsa3072": "rsa3072"}

    @classmethod
    def setUpClass(cls):
        prerequisites()
        srv, api_key = server_with_keys(
            "csp", keys=list(cls.KEYS.items()) + [("csp-ec", "ec-p256")])  # EC: no container
        cls.w = WineEnv("csp", srv, api_key)
        cls.addClassCleanup(cls.w.close)
        srv.create_key("csp-other", "rsa2048")  # not granted: not listed
        cls.certs = {name: unb64(srv.get_key(name)["certificate"]) for name in cls.KEYS}
        register()
        cls.tmp = tempfile.mkdtemp(prefix="signum-csp-", dir=cls.w.scratch)
    def run_exe(self, *args):
        r = self.w.run("tests/windows/test_csp.exe", *args)
        return r.returncode, r.stdout, r.stderr + self.w.agent_log()

    def test_containers_are_the_users_rsa_keys(self):
        rc, out, err = self.run_exe("enum")
        self.assertEqual(rc, 0, out + err)
        names = re.findall(r"^container (\S+)\r?$", out, re.M)
        self.assertEqual(sorted(names), sorted(self.KEYS), out)

    def test_unknown_container(self):
        rc, out, err = self.run_exe("acquire", "no-such-key")
        self.assertIn("acquire 0x%08x" % NTE_BAD_KEYSET, out, out + err)
        rc, out, err = self.run_exe("acquire", "csp-other")  # exists, but not granted
        self.assertIn("acquire 0x%08x" % NTE_BAD_KEYSET, out, out + err)
        rc, out, err = self.run_exe("acquire", "csp-ec")  # granted, but not RSA
        self.assertIn("acquire 0x%08x" % NTE_BAD_KEYSET, out, out + err)
        rc, out, err = self.run_exe("acquire", "csp-rsa3072")
        self.assertIn("acquire 0x00000000", out, out + err)

    def sign(self, container, hash_name):
        """Runs `test_csp sign`; returns (output dir, data, hashval message, stdout)."""
        out_dir = tempfile.mkdtemp(prefix="%s-%s-" % (container, hash_name), dir=self.tmp)
        data = os.urandom(3000) + container.encode()
        message = b"hashed by the caller " + os.urandom(16)
        data_path = os.path.join(out_dir, "data.bin")
        with open(data_path, "wb") as f:
            f.write(data)
        digest = hashlib.new(hash_name, message).hexdigest()
        rc, out, err = self.run_exe("sign", container, hash_name, winpath(data_path), digest,
                                    winpath(out_dir))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("0 failure(s)", out)
        return out_dir, data, message, out

    def read(self, out_dir, name):
        with open(os.path.join(out_dir, name), "rb") as f:
            return f.read()

    def test_signatures_verify_with_openssl(self):
        o = self.w.server.openssl
        for name, kind in self.KEYS.items():
            cert = self.certs[name]
            pub = o.pubkey_from_cert(cert)
            for hash_name in SIGN_HASHES:
                with self.subTest(key=name, hash=hash_name):
                    out_dir, data, message, _ = self.sign(name, hash_name)
                    for sig_file, signed in (("sig-data.bin", data), ("sig-hashval.bin", message)):
                        sig = self.read(out_dir, sig_file)
                        self.assertEqual(len(sig), int(kind[3:]) // 8)
                        ok, why = o.verify_digest_sig(pub, hash_name, signed, sig[::-1])
                        self.assertTrue(ok, "%s %s %s: %s" % (name, hash_name, sig_file, why))
                        # As returned (little-endian) it is not a valid signature.
                        ok, _ = o.verify_digest_sig(pub, hash_name, signed, sig)
                        self.assertFalse(ok)

    def test_public_key_blob_and_certificate_match_the_server(self):
        o = self.w.server.openssl
        for name, kind in self.KEYS.items():
            with self.subTest(key=name):
                out_dir, _, _, _ = self.sign(name, "sha256")
                bits, exp, mod = parse_publickeyblob(self.read(out_dir, "pub.blob"))
                cert = self.certs[name]
                certfile = o.tmp(cert, ".der")
                modulus = o("x509", "-inform", "DER", "-in", certfile, "-noout",
                            "-modulus").stdout.decode().strip()
                text = o("x509", "-inform", "DER", "-in", certfile, "-noout",
                         "-text").stdout.decode()
                want_exp = int(re.search(r"Exponent: (\d+)", text).group(1))
                self.assertEqual(bits, int(kind[3:]))
                self.assertEqual(mod, int(modulus.split("=", 1)[1], 16))
                self.assertEqual(exp, want_exp)
                self.assertEqual(self.read(out_dir, "cert.der"), cert)

    def test_default_container_is_an_rsa_key(self):
        _, _, _, out = self.sign("-", "sha256")
        name = re.search(r"^container (\S+)\r?$", out, re.M).group(1)
        self.assertIn(name, self.KEYS)

    # 32-bit Wine under qemu-i386 runs no second thread at all (a four-thread CreateThread
    # program of a few lines dies with "wine client error: write: Bad file descriptor"): there
    # this case cannot say anything about the CSP.
    @unittest.skipIf(emulated(ARCH), "x86 under qemu-i386: 32-bit Wine runs no threads there")
    def test_concurrent_signatures_through_one_context(self):
        rc, out, err = self.run_exe("threads", "csp-rsa3072")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("0 failure(s)", out)

    def test_typed_key_handles(self):
        """Key handles through the exports: double destroy, a hash where a key is expected,
        destroyed, released and forged (0x12345678) values, all refused, no crash."""
        rc, out, err = self.run_exe("handles", winpath(DLL), "csp-rsa2048")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("0 failure(s)", out)
        self.assertNotIn("FAIL", out)

    def test_pin_is_the_api_key(self):
        """An agent without credentials: the PIN (PP_SIGNATURE_PIN) logs it in."""
        w2 = WineEnv("csp-pin", self.w.server, self.w.api_key)
        w2.env.pop("SIGNUM_API_KEY")
        wrong = "sk_wrong_" + "0" * 40
        try:
            out_dir = tempfile.mkdtemp(prefix="pin-", dir=self.tmp)
            log = os.path.join(out_dir, "csp.log")
            r = w2.run("tests/windows/test_csp.exe", "pin", "csp-rsa2048", wrong,
                       self.w.api_key, winpath(out_dir),
                       env={"SIGNUM_DEBUG": "csp", "SIGNUM_CSP_LOG": winpath(log)})
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + w2.agent_log())
            self.assertIn("0 failure(s)", r.stdout)
            with open(log, errors="replace") as f:
                text = f.read()
            self.assertIn("CPSetProvParam: 0x8010006b", text)  # the wrong PIN, logged...
            self.assertIn('CPSignHash: key "csp-rsa2048", sha256', text)
            for secret in (wrong, self.w.api_key):  # ...but never a PIN itself
                self.assertNotIn(secret, text)
            sig = self.read(out_dir, "sig-pin.bin")[::-1]
            pub = self.w.server.openssl.tmp(
                self.w.server.openssl.pubkey_from_cert(self.certs["csp-rsa2048"]), ".pem")
            proc = self.w.server.openssl(
                "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-pkeyopt", "digest:sha256",
                "-in", self.w.server.openssl.tmp(b"\x42" * 32), "-sigfile",
                self.w.server.openssl.tmp(sig), check=False)
            self.assertIn(b"Signature Verified Successfully", proc.stdout,
                          proc.stdout + proc.stderr)
        finally:
            w2.stop_agent()
            shutil.rmtree(w2.scratch, ignore_errors=True)

    def test_audit_log_names_the_windows_caller(self):
        s = self.w.server
        before = s.audit_last_seq()
        _, data, message, _ = self.sign("csp-rsa2048", "sha256")
        recs = [r for r in s.audit_show(after=before) if r["action"] == "sign"]
        self.assertEqual(len(recs), 2, recs)  # CryptHashData and HP_HASHVAL
        # The digests the server signed: the CSP's local hash of the data, and the caller's.
        self.assertEqual(sorted(r["detail"]["digests"][0] for r in recs),
                         sorted([hashlib.sha256(data).hexdigest(),
                                 hashlib.sha256(message).hexdigest()]))
        for r in recs:
            self.assertEqual(r["outcome"], "allowed", r)
            self.assertEqual(r["detail"]["key"], "csp-rsa2048")
            self.assertEqual(r["detail"]["mechanism"], "rsa-pkcs1")
            self.assertEqual(r["actor"], "user:winuser")
            app = r["detail"]["client"]["application"]
            self.assertEqual(app.lower(), winpath(EXE).lower(), r)


# Under qemu-i386 each case's program start costs about a minute (every case: ~25 minutes), so
# the default run takes these, which still register the x86 CSP, open it through CryptoAPI,
# list the containers and sign with each key, verified with OpenSSL; scripts/test.sh --wine32
# runs every case.
SHORT_SUITE = ["CspOffline.test_registered_csp_through_cryptoapi",
               "CspEndToEnd.test_containers_are_the_users_rsa_keys",
               "CspEndToEnd.test_signatures_verify_with_openssl"]

if __name__ == "__main__":
    exit_unless_runnable(ARCH)
    if short_when_emulated(ARCH):
        SIGN_HASHES = ("sha256",)
        print("x86 under qemu-i386: the short suite (%s; SHA-256 only); scripts/test.sh --wine32 "
              "runs every case" % ", ".join(SHORT_SUITE))
        sys.stdout.flush()
        unittest.main(argv=[sys.argv[0]] + SHORT_SUITE, verbosity=2)
    unittest.main(verbosity=2)
