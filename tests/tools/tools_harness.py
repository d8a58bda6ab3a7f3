"""Harness for the real-tool tests: a signum-server (SoftHSMv2 behind it) on 127.0.0.1, a user
with keys, certificates and grants, and the environment of one user whose signum-agent the
module starts on demand. Each tool signs through libsignumpkcs11.so; each result is checked by
an independent verifier (openssl, osslsigncode verify, jarsigner -verify, gpg, rpmkeys, git).

Paths come from CMake: SIGNUM_PKCS11, SIGNUM_SERVER, SIGNUM_AGENT, SIGNUM_UTIL. Standard
library only; every command has a time limit.
"""

import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from agent_harness import Agent  # noqa: E402
from signum_harness import SOFTHSM_MODULE, Server, pem, run  # noqa: E402

MODULE = os.environ.get("SIGNUM_PKCS11") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "linux-pkcs11", "libsignumpkcs11.so"))

TOOL_TIMEOUT = 90.0

__all__ = ["MODULE", "SOFTHSM_MODULE", "ToolTestCase", "pem", "run"]


class ToolTestCase(unittest.TestCase):
    """One server, one user (alice) and one agent environment per class.

    KEYS: (name, type) pairs, each with a certificate from the server's CA and granted."""

    KEYS = (("rel-rsa", "rsa2048"), ("rel-ec", "ec-p256"))
    USER = "alice"

    @classmethod
    def setUpClass(cls):
        cls.server = Server(name=cls.__name__)
        cls.addClassCleanup(cls.server.cleanup)
        cls.api_key = cls.server.create_user(cls.USER)
        for name, kind in cls.KEYS:
            cls.server.create_key(name, kind)
            cls.server.issue_cert(name, "Signum test " + name)
            cls.server.grant(name, cls.USER)
        cls.agent = Agent(["https://localhost:%d" % cls.server.port], cls.server.ca_cert_path,
                          api_key=cls.api_key, name=cls.__name__)
        cls.addClassCleanup(cls.agent.cleanup)
        cls.dir = os.path.join(cls.agent.root, "work")
        os.mkdir(cls.dir)
        cls.token = "Signum " + cls.USER
        cls.token_uri = "pkcs11:token=Signum%20" + cls.USER
        with open(cls.path("ca.pem"), "w") as f:
            f.write(cls.server.ca_pem())
        cls.prepare()

    @classmethod
    def prepare(cls):
        """Per-class fixtures."""

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()
        cls.server.stop()

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result is not None else None
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            sys.stderr.write("\n%s failed\nagent log:\n%s\n%s\n" % (
                self.id(), type(self).agent.log(), type(self).server.log(40)))
        return out

    # -- helpers
    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    @classmethod
    def write(cls, name, data):
        p = cls.path(name)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return p

    @classmethod
    def env(cls, extra=None):
        e = dict(cls.agent.env)
        e.update(extra or {})
        return e

    @classmethod
    def tool(cls, args, extra_env=None, input=None, timeout=TOOL_TIMEOUT, cwd=None):
        """Runs a tool as the user; returns CompletedProcess with text output."""
        proc = subprocess.run(args, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=cls.env(extra_env), timeout=timeout, cwd=cwd or cls.dir)
        proc.out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        return proc

    def tool_ok(self, args, **kw):
        proc = self.tool(args, **kw)
        self.assertEqual(proc.returncode, 0, "%s exited %d:\n%s" % (" ".join(args),
                                                                    proc.returncode, proc.out))
        return proc

    @classmethod
    def cert_der(cls, key):
        return cls.server.get_key(key)["certificate"]

    @classmethod
    def cert_pem_file(cls, key):
        """The key's certificate as PEM, as the server issued it (for verifiers only)."""
        import base64
        p = cls.path(key + ".crt")
        with open(p, "w") as f:
            f.write(pem(base64.b64decode(cls.cert_der(key))))
        return p

    @classmethod
    def pubkey_file(cls, key):
        p = cls.path(key + ".pub")
        out = run(["openssl", "x509", "-in", cls.cert_pem_file(key), "-pubkey", "-noout"],
                  check=True).stdout
        with open(p, "wb") as f:
            f.write(out)
        return p

    def openssl_verify(self, key, msg_file, sig_file, *sigopts, md="sha256"):
        args = ["openssl", "dgst", "-" + md, "-verify", self.pubkey_file(key)]
        for o in sigopts:
            args += ["-sigopt", o]
        proc = run(args + ["-signature", sig_file, msg_file])
        self.assertEqual(proc.returncode, 0, "openssl does not verify %s: %s" % (
            sig_file, (proc.stdout + proc.stderr).decode(errors="replace")))

    @classmethod
    def key_id(cls, key):
        return cls.server.get_key(key)["id"]

    def audit_signs(self, after):
        return [r for r in self.server.audit_show(after=after) if r["action"] == "sign"]


def timed(fn, repeat):
    """Median wall time of fn() over repeat runs, in milliseconds."""
    times = []
    for _ in range(repeat):
        t0 = time.monotonic()
        fn()
        times.append((time.monotonic() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]
