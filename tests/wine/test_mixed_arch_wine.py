"""wine32.mixed_arch: a 32-bit host and a 64-bit host sign through the same x64 agent (issue 20).

On Windows a 32-bit signing host (the 32-bit signtool.exe that Office's VBA SIPs need) loads
the x86 signumksp.dll, a 64-bit one the x64 DLL; both must reach the user's one agent. Here, in
the run's prefix against a real signum-server on 127.0.0.1:

1. The agent's path is recorded where the installer records it, HKLM\\SOFTWARE\\Signum\\AgentPath
   in the 64-bit registry view, and SIGNUM_AGENT is unset: the x86 test_ksp.exe (its client
   library reads the 64-bit view although it runs in the WOW64 one) starts the x64 agent and
   signs RSA PKCS#1 v1.5 and PSS.
2. The x64 test_ksp.exe signs through that agent with autostart off (SIGNUM_NO_AUTOSTART=1).
3. agent_client.exe of both builds reports the same agent process.
Every signature is verified with openssl against the server's certificate, and the audit log
names each host's own image path.

On a machine that cannot run 32-bit programs the test exits 77 (ctest: skipped).
Environment: WINE_DIR, MINGW_BUILD_DIR, MINGW32_BUILD_DIR, SOURCE_DIR, SIGNUM_SERVER_BIN.
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

# wine_harness first: it points signum_harness at the server binary ($SIGNUM_SERVER_BIN).
from wine_harness import (WineEnv, exit_unless_runnable, loader, server_with_keys,  # noqa: E402
                          z_path)
from signum_harness import unb64  # noqa: E402

RSA_KEY, EC_KEY = "mixed-rsa", "mixed-ec"
MESSAGE = b"Signum KSP test message\n"  # what test_ksp.exe signs (tests/windows/test_ksp.c)
INSTALL_KEY = r"HKLM\Software\Signum"
CLIENT = "tests/windows/agent_client.exe"
KSP_EXE = "tests/windows/test_ksp.exe"


class MixedArchitectures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv, api_key = server_with_keys("mixed", keys=((RSA_KEY, "rsa2048"),
                                                           (EC_KEY, "ec-p256")))
        cls.w = None
        try:
            cls.w = WineEnv("mixed", cls.srv, api_key, arch="x86")
            cls.before = cls.srv.audit_last_seq()
            cls.reg("add", "/v", "AgentPath", "/t", "REG_SZ", "/d", z_path(cls.w.agent_exe),
                    "/f")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.w is not None:
                cls.reg("delete", "/f")
                cls.w.close()
        finally:
            cls.srv.cleanup()

    @classmethod
    def reg(cls, verb, *args):
        """wine64 reg VERB on HKLM\\Software\\Signum: the 64-bit view, as the installer writes."""
        r = subprocess.run([loader("x64"), "reg", verb, INSTALL_KEY] + list(args),
                           env=cls.w.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, errors="replace", timeout=100)
        if verb == "add" and r.returncode != 0:
            raise AssertionError("reg add exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))

    def sign_with(self, arch, env):
        """test_ksp.exe of `arch` online; its output directory. Asserts it passed."""
        out_dir = tempfile.mkdtemp(prefix="ksp-%s-" % arch, dir=self.w.scratch)
        dll = os.path.join(os.path.dirname(self.w.exe(KSP_EXE, arch)), "..", "..",
                           "windows-ksp", "signumksp.dll")
        full = {"SIGNUM_KSP_DLL": z_path(os.path.normpath(dll)),
                "SIGNUM_TEST_PIN": self.w.api_key, "SIGNUM_DEBUG": "ksp"}
        full.update(env)
        r = self.w.run(KSP_EXE, "online", z_path(out_dir), RSA_KEY, EC_KEY, env=full, arch=arch)
        out = r.stdout.replace("\r", "")
        self.assertEqual(r.returncode, 0, "%s: %s\n%s\n%s" % (arch, out, r.stderr,
                                                              self.w.agent_log()))
        self.assertIn("online: 0 failure(s)", out)
        return out_dir

    def verify(self, out_dir):
        cert = unb64(self.srv.get_key(RSA_KEY)["certificate"])
        pem = self.srv.openssl.pubkey_from_cert(cert)
        with open(os.path.join(out_dir, "data.bin"), "rb") as f:
            self.assertEqual(f.read(), MESSAGE)
        for name, salt in (("rsa-pkcs1.sig", None), ("rsa-pss.sig", 32)):
            with open(os.path.join(out_dir, name), "rb") as f:
                ok, why = self.srv.openssl.verify_digest_sig(pem, "sha256", MESSAGE, f.read(),
                                                             pss_salt=salt)
            self.assertTrue(ok, "%s %s: %s" % (out_dir, name, why))

    def agent_pid(self, arch):
        return self.w.run_json(CLIENT, "status", env={"SIGNUM_NO_AUTOSTART": "1"},
                               arch=arch)["pid"]

    def test_both_hosts_sign_through_one_agent(self):
        # 1. The 32-bit host finds the agent through the registry (64-bit view) and starts it.
        out32 = self.sign_with("x86", {"SIGNUM_AGENT": None})
        self.verify(out32)
        pid = self.agent_pid("x64")
        # 2. The 64-bit host, with autostart off, can only use that agent.
        out64 = self.sign_with("x64", {"SIGNUM_NO_AUTOSTART": "1"})
        self.verify(out64)
        # 3. Both architectures' clients see the same agent process.
        self.assertEqual(self.agent_pid("x86"), pid)
        self.assertEqual(self.agent_pid("x64"), pid)
        signs = [r for r in self.srv.audit_show(after=self.before) if r["action"] == "sign"]
        by_app = {}
        for r in signs:
            self.assertEqual(r["outcome"], "allowed", r)
            app = r["detail"]["client"]["application"].lower()
            by_app[app] = by_app.get(app, 0) + 1
        # test_ksp.exe online: PKCS#1 twice (SHA-256 and a raw DigestInfo), PSS, ECDSA.
        self.assertEqual(by_app, {z_path(self.w.exe(KSP_EXE, "x86")).lower(): 4,
                                  z_path(self.w.exe(KSP_EXE, "x64")).lower(): 4}, signs)


if __name__ == "__main__":
    exit_unless_runnable("x86")
    unittest.main(verbosity=2)
