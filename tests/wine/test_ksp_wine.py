"""signumksp.dll under wine64, driven through its own function table (LoadLibrary +
GetKeyStorageInterface: Wine's NCryptOpenStorageProvider ignores the provider name, so the
ncrypt.dll router cannot reach a third-party KSP), against a real signum-server on 127.0.0.1
and the real signum-agent.exe.

- Offline (no agent: SIGNUM_NO_AUTOSTART=1 and an unserved pipe): the table's shape, flags,
  typed-handle checks, provider properties, algorithms, refusals, and NTE_DEVICE_NOT_READY.
- Registration: DllRegisterServer's calls to BCryptRegisterProvider and
  BCryptAddContextFunctionProvider, and what Wine answers (its bcrypt stubs them: see below).
- End to end: EnumKeys, key properties, the certificate property and the exported public key
  blobs compared with the server's certificate, size queries and NTE_BUFFER_TOO_SMALL that
  never reach the server, RSA PKCS#1 v1.5 and PSS SHA-256 and ECDSA P-256 signatures verified
  here with openssl against the server's certificate, and the audit log naming
  test_ksp.exe's Windows image path as the caller.

SIGNUM_WINE_ARCH=x86 (ctest wine32.ksp) runs the same checks with the x86 build's DLL and
test_ksp.exe under the 32-bit loader (a 32-bit host, such as the signtool.exe Office's VBA SIPs
need), still against the one x64 agent; on a machine that cannot run 32-bit programs it exits
77 (ctest: skipped).

Environment (tests/wine/CMakeLists.txt): WINE_DIR, MINGW_BUILD_DIR (MINGW32_BUILD_DIR for x86),
SOURCE_DIR, SIGNUM_SERVER_BIN (see wine_harness.py).
"""

import os
import re
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
                          server_with_keys, z_path, wine_path, wine_timeout)
from signum_harness import ecdsa_raw_to_der, unb64  # noqa: E402

WINE_DIR = os.environ.get("WINE_DIR", "")
MINGW = mingw_dir(ARCH) if os.environ.get("MINGW_BUILD_DIR") else ""
DLL = os.path.join(MINGW, "windows-ksp", "signumksp.dll")
EXE = os.path.join(MINGW, "tests", "windows", "test_ksp.exe")
RUN_TIMEOUT = 100
NO_AGENT_PIPE = r"\\.\pipe\signum-test-ksp-none-%d" % os.getpid()
PROVIDER = "Signum Key Storage Provider"
RSA_KEY, EC_KEY = "ksp-rsa", "ksp-ec"
MESSAGE = b"Signum KSP test message\n"


def wine_env(extra=None):
    env = dict(os.environ)
    for var in ("SIGNUM_DEBUG", "SIGNUM_CONFIG"):
        env.pop(var, None)
    env.update({"WINEPREFIX": os.path.join(WINE_DIR, "prefix"), "WINEDEBUG": "-all",
                "WINEDLLOVERRIDES": "mscoree,mshtml=",
                "PATH": wine_path(env.get("PATH", "")),
                "SIGNUM_KSP_DLL": z_path(DLL)})
    env.update(extra or {})
    return env


def run_exe(args, env, scratch=None):
    """Runs test_ksp.exe; (returncode, stdout, stderr). Output goes to files, not pipes: an
    agent the client library starts under Wine inherits the Unix stdout/stderr, and a pipe
    would stay open until that agent exits."""
    with tempfile.TemporaryDirectory(prefix="signum-ksp-run-", dir=scratch) as d:
        out_path, err_path = os.path.join(d, "out"), os.path.join(d, "err")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.run([loader(ARCH), EXE] + args, env=env, stdout=out, stderr=err,
                                  timeout=wine_timeout(ARCH, RUN_TIMEOUT))
        with open(out_path, errors="replace") as out, open(err_path, errors="replace") as err:
            return proc.returncode, out.read().replace("\r", ""), err.read()


def values(out):
    """The "value NAME TEXT" lines as a dict (key lines are collected apart)."""
    vals, keys = {}, []
    for line in out.splitlines():
        line = line.rstrip("\r")
        if line.startswith("value key "):
            keys.append(line[len("value key "):].split())
        elif line.startswith("value "):
            name, _, text = line[len("value "):].partition(" ")
            vals[name] = text
    return vals, keys


def prerequisites():
    for path in (DLL, EXE):
        if not os.path.isfile(path):
            raise RuntimeError("%s is missing: build the mingw tree first" % path)
    if not os.path.isdir(os.path.join(WINE_DIR, "prefix")):
        raise RuntimeError("no Wine prefix at %s/prefix (the wine.setup fixture)" % WINE_DIR)


class Offline(unittest.TestCase):
    """What needs no agent."""

    @classmethod
    def setUpClass(cls):
        prerequisites()

    def test_table_flags_handles_and_unreachable_agent(self):
        rc, out, err = run_exe(["offline"], wine_env({"SIGNUM_NO_AUTOSTART": "1",
                                                      "SIGNUM_AGENT_SOCKET": NO_AGENT_PIPE}))
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn("FAIL", out)
        for check in ("29 table entries, none NULL", "table version 3.0",
                      "provider Name short buffer", "forged provider handle",
                      "foreign object as provider", "provider handle as key",
                      "freed provider handle", "OpenProvider bad flags", "EnumKeys bad flags",
                      "CreatePersistedKey", "EnumKeys without an agent",
                      "OpenKey without an agent", "PIN without an agent"):
            self.assertIn("ok %s\n" % check, out)
        self.assertIn("offline: 0 failure(s)", out)

    def test_registration_calls_cng_and_reports_wine(self):
        """DllRegisterServer must call BCryptRegisterProvider and
        BCryptAddContextFunctionProvider with our name, image and CRYPT_PRIORITY_BOTTOM. Wine 8
        stubs both (STATUS_SUCCESS, nothing written) and stubs the unregistering pair with
        STATUS_NOT_IMPLEMENTED; its fixme trace shows the arguments it was given, so the calls
        are checked there and Wine's answers are reported as they are."""
        env = wine_env({"WINEDEBUG": "fixme+bcrypt"})
        rc, out, err = run_exe(["register"], env)
        self.assertEqual(rc, 0, out + err)
        vals, _ = values(out)
        reg = re.search(r"hr=(0x\w+) BCryptRegisterProvider=(0x\w+) "
                        r"BCryptAddContextFunctionProvider=(0x\w+)", vals["register"])
        unreg = re.search(r"hr=(0x\w+) BCryptUnregisterProvider=(0x\w+) "
                          r"BCryptRemoveContextFunctionProvider=(0x\w+)", vals["unregister"])
        self.assertTrue(reg and unreg, out)
        stubbed = "fixme:bcrypt:BCryptRegisterProvider" in err
        print("\nWine's answers: register %s (BCryptRegisterProvider %s, "
              "BCryptAddContextFunctionProvider %s); unregister %s (BCryptUnregisterProvider %s, "
              "BCryptRemoveContextFunctionProvider %s); stubbed: %s"
              % (reg.group(1), reg.group(2), reg.group(3), unreg.group(1), unreg.group(2),
                 unreg.group(3), stubbed))
        if stubbed:
            self.assertIn('fixme:bcrypt:BCryptRegisterProvider L"%s", 0x1,' % PROVIDER, err)
            self.assertIn('fixme:bcrypt:BCryptAddContextFunctionProvider 0x1, (null), 0x10001, '
                          'L"KEY_STORAGE", L"%s", 4294967295' % PROVIDER, err)
            self.assertIn('BCryptRemoveContextFunctionProvider 0x1, (null), 0x10001, '
                          'L"KEY_STORAGE", L"%s"' % PROVIDER, err)
            self.assertIn('BCryptUnregisterProvider L"%s"' % PROVIDER, err)
            # A stub writes nothing: the provider is not in the prefix's registry.
            q = subprocess.run([loader("x64"), "reg", "query",
                                r"HKLM\System\CurrentControlSet\Control\Cryptography\Providers"
                                "\\" + PROVIDER], env=wine_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, errors="replace",
                               timeout=wine_timeout(ARCH, RUN_TIMEOUT))
            self.assertNotEqual(q.returncode, 0, q.stdout)
        else:
            # A Wine that implements registration: it must have succeeded.
            self.assertEqual(reg.group(1), "0x00000000", out)


class EndToEnd(unittest.TestCase):
    """test_ksp.exe online against the agent and the server."""

    @classmethod
    def setUpClass(cls):
        prerequisites()
        cls.srv, api_key = server_with_keys("ksp", keys=((RSA_KEY, "rsa2048"),
                                                         (EC_KEY, "ec-p256")))
        try:
            cls.w = WineEnv("ksp", cls.srv, api_key)
            cls.out_dir = tempfile.mkdtemp(prefix="signum-ksp-out-", dir=cls.w.scratch)
            cls.before = cls.srv.audit_last_seq()
            env = dict(cls.w.env)
            env["SIGNUM_KSP_DLL"] = z_path(DLL)
            env["SIGNUM_DEBUG"] = "ksp"  # failures explained on stderr (never a secret)
            env["SIGNUM_TEST_PIN"] = api_key  # for NCRYPT_PIN_PROPERTY
            cls.rc, cls.out, cls.err = run_exe(["online", z_path(cls.out_dir), RSA_KEY, EC_KEY],
                                               env, scratch=cls.w.scratch)
            cls.vals, cls.keys = values(cls.out)
            cls.signs = cls.w.audit_signs(after=cls.before)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        w = getattr(cls, "w", None)
        if w is not None:
            w.close()  # stops this test's agent, then the server
        else:
            cls.srv.cleanup()

    def file(self, name):
        with open(os.path.join(self.out_dir, name), "rb") as f:
            return f.read()

    def server_cert(self, key):
        return unb64(self.srv.get_key(key)["certificate"])

    def pubkey_pem(self, key):
        return self.srv.openssl.pubkey_from_cert(self.server_cert(key))

    def test_every_check_in_the_program_passed(self):
        out = self.out + self.err + self.w.agent_log()
        self.assertEqual(self.rc, 0, out)
        self.assertNotIn("FAIL", self.out, out)
        self.assertIn("online: 0 failure(s)", self.out)
        for check in ("PIN refused by the server", "PIN accepted (API key)",
                      "OpenKey after the PIN", "RSA sign short buffer", "ECDSA size query",
                      "EC key used with another provider handle", "freed key handle"):
            self.assertIn("ok %s\n" % check, self.out)

    def test_enum_keys_lists_the_agents_keys(self):
        self.assertIn([RSA_KEY, "RSA", "2", "0"], self.keys)  # AT_SIGNATURE, a user key
        self.assertIn([EC_KEY, "ECDSA_P256", "0", "0"], self.keys)

    def test_key_properties(self):
        v = self.vals
        expect = {"rsa.algorithm_group": "RSA", "rsa.algorithm": "RSA", "rsa.length": "2048",
                  "rsa.lengths": "2048 2048 0 2048", "rsa.name": RSA_KEY,
                  "rsa.unique_name": RSA_KEY, "rsa.key_usage": "2", "rsa.export_policy": "0",
                  "rsa.impl_type": "1", "rsa.key_type": "0", "rsa.sig_len": "256",
                  "ec.algorithm_group": "ECDSA", "ec.algorithm": "ECDSA_P256",
                  "ec.length": "256", "ec.name": EC_KEY, "ec.export_policy": "0",
                  "ec.key_usage": "2", "ec.sig_len": "64"}
        for name, want in expect.items():
            self.assertEqual(v.get(name, "").strip(), want, name)

    def test_certificate_property_is_the_servers(self):
        self.assertEqual(self.file("rsa.cert.der"), self.server_cert(RSA_KEY))
        self.assertEqual(self.file("ec.cert.der"), self.server_cert(EC_KEY))

    def test_rsa_public_blob_matches_the_certificate(self):
        blob = self.file("rsa.blob")
        magic, bits, cb_exp, cb_mod, p1, p2 = struct.unpack("<6I", blob[:24])
        self.assertEqual((magic, bits, p1, p2), (0x31415352, 2048, 0, 0))  # RSA1
        self.assertEqual(len(blob), 24 + cb_exp + cb_mod)
        exponent = int.from_bytes(blob[24:24 + cb_exp], "big")
        modulus = blob[24 + cb_exp:]
        cert = self.srv.openssl.tmp(self.server_cert(RSA_KEY), ".der")
        mod_hex = self.srv.openssl("x509", "-inform", "DER", "-in", cert, "-noout",
                                   "-modulus").stdout.decode().strip().split("=", 1)[1]
        text = self.srv.openssl("x509", "-inform", "DER", "-in", cert, "-noout",
                                "-text").stdout.decode()
        self.assertEqual(modulus.hex().upper(), mod_hex.upper())
        self.assertEqual(exponent, int(re.search(r"Exponent: (\d+)", text).group(1)))

    def test_ecc_public_blob_matches_the_certificate(self):
        blob = self.file("ec.blob")
        magic, cb_key = struct.unpack("<2I", blob[:8])
        self.assertEqual((magic, cb_key, len(blob)), (0x31534345, 32, 8 + 64))  # ECS1
        spki = self.srv.openssl.spki_der_from_cert(self.server_cert(EC_KEY))
        self.assertEqual(spki[-65:], b"\x04" + blob[8:])  # the uncompressed point ends it

    def verify(self, key, sig, pss_salt=None):
        ok, why = self.srv.openssl.verify_digest_sig(self.pubkey_pem(key), "sha256", MESSAGE,
                                                     sig, pss_salt=pss_salt)
        self.assertTrue(ok, why)

    def test_signatures_verify_with_openssl(self):
        self.assertEqual(self.file("data.bin"), MESSAGE)
        self.verify(RSA_KEY, self.file("rsa-pkcs1.sig"))
        self.verify(RSA_KEY, self.file("rsa-pss.sig"), pss_salt=32)
        raw = self.file("ec.sig")
        self.assertEqual(len(raw), 64)  # raw r||s, what CNG wants
        self.verify(EC_KEY, ecdsa_raw_to_der(raw))

    def test_openssl_refuses_a_wrong_signature(self):
        """The verification above can fail: a signature over another message does not pass."""
        ok, _ = self.srv.openssl.verify_digest_sig(self.pubkey_pem(RSA_KEY), "sha256",
                                                   MESSAGE + b"x", self.file("rsa-pkcs1.sig"))
        self.assertFalse(ok)

    def test_audit_names_the_caller_and_only_real_signatures_reached_the_server(self):
        # PKCS#1 (with SHA256 and as a raw DigestInfo), PSS and ECDSA: four. Size queries,
        # short buffers and refused inputs never reach the server.
        recs = self.signs
        self.assertEqual(len(recs), 4, recs)
        self.assertEqual(sorted((r["detail"]["key"], r["detail"]["mechanism"]) for r in recs),
                         [(EC_KEY, "ecdsa"), (RSA_KEY, "rsa-pkcs1"), (RSA_KEY, "rsa-pkcs1"),
                          (RSA_KEY, "rsa-pss")], recs)
        for r in recs:
            self.assertEqual(r["outcome"], "allowed", r)
            self.assertEqual(r["actor"], "user:winuser")
            self.assertEqual(r["detail"]["hash"], "sha256", r)
            app = r["detail"]["client"]["application"]
            self.assertEqual(app.lower(), z_path(EXE).lower(), r)


if __name__ == "__main__":
    exit_unless_runnable(ARCH)
    unittest.main(verbosity=2)
