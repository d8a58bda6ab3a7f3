"""The container entry point (deploy/container/entrypoint.sh) run outside a container
(ctest deploy.entrypoint): it must assemble a state directory from mounts laid out as
Kubernetes mounts them (ConfigMap and Secret files group/world readable), copy the PIN, key and
password files to mode 0600, and exec signum-server in its own place (same pid: PID 1 in a
container gets SIGTERM). The node behind it reaches its token through p11-kit-client.so and a
database outside its state directory, as a pod does; it must serve, sign and stop cleanly.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

import p11kit_harness as p11  # noqa: E402
from signum_harness import (SERVER_BIN, START_TIMEOUT, Server, _die_with_parent,  # noqa: E402
                            ecdsa_raw_to_der, pem, run, unb64)

ENTRYPOINT = os.path.join(ROOT, "deploy", "container", "entrypoint.sh")
TOKEN = "pod-hsm"
PIN = "pod-user-pin"


def write(path, data, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)
    os.chmod(path, mode)


class PodNode(Server):
    """A node started by the entry point from mounts made out of `source`'s state."""

    def __init__(self, source, **kw):
        self._source = source
        super().__init__(name="pod", start=False, **kw)

    def init(self, ca_key_type=None):
        src = self._source
        self.mounts = os.path.join(self.root, "etc-signum")
        self.run_dir = os.path.join(self.root, "run-signum")
        os.makedirs(self.run_dir)
        with open(src.conf_path) as f:
            conf = f.read()
        # The database lives outside the pod (here: the source's SQLite file).
        conf += "database = %s\nport = 0\n" % src.db_path

        def read(rel):
            with open(os.path.join(src.state, rel)) as f:
                return f.read()
        # As Kubernetes mounts ConfigMaps and Secrets: readable by group and others.
        write(os.path.join(self.mounts, "config", "signum-server.conf"), conf, 0o644)
        write(os.path.join(self.mounts, "tls", "tls.crt"), read("tls/server.crt"), 0o644)
        write(os.path.join(self.mounts, "tls", "tls.key"), read("tls/server.key"), 0o644)
        write(os.path.join(self.mounts, "ca", "ca.crt"), read("ca/ca.crt"), 0o644)
        write(os.path.join(self.mounts, "secrets", "hsm-user.pin"), PIN + "\n", 0o644)
        write(os.path.join(self.mounts, "secrets", "pgpass"), "db:5432:signum:signum:x\n", 0o644)
        shutil.copyfile(src.admin_key_file, self.admin_key_file)
        self.init_output = ""

    def env(self):
        env = dict(os.environ)
        env.update({"SIGNUM_STATE": self.state, "SIGNUM_CONFIG_DIR": self.mounts,
                    "SIGNUM_RUN_DIR": self.run_dir, "SIGNUM_SERVER_BIN": SERVER_BIN})
        return env

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["sh", ENTRYPOINT, "serve"], env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the entry point exited %d\n%s" % (self.proc.returncode,
                                                                     self.log()))
            try:
                with open(self.run_json) as f:
                    info = json.load(f)
                self.run_info = info
                self.port = int(info["port"])
                return
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        raise RuntimeError("no run.json within %.0f s\n%s" % (START_TIMEOUT, self.log()))


@unittest.skipIf(p11.available(), p11.available())
class Entrypoint(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.hsm_dir = tempfile.mkdtemp(prefix="signum-pod-hsm-")
        cls.addClassCleanup(shutil.rmtree, cls.hsm_dir, True)
        conf = p11.make_softhsm_token(cls.hsm_dir, TOKEN, PIN)
        cls.hsm = p11.P11KitServer(conf, TOKEN, os.path.join(cls.hsm_dir, "p11.sock"))
        cls.addClassCleanup(cls.hsm.kill)
        cls.hsm.start()
        os.environ["P11_KIT_SERVER_ADDRESS"] = cls.hsm.address
        cls.source = p11.NetworkHsmNode(cls.hsm, PIN, name="pod-source", start=False)
        cls.addClassCleanup(cls.source.cleanup)
        cls.node = PodNode(cls.source)
        cls.addClassCleanup(cls.node.cleanup)
        cls.node.start()

    def test_serves_from_mounts_and_stops_cleanly(self):
        node = self.node
        self.assertEqual(node.run_info["pid"], node.proc.pid,
                         "the entry point must exec signum-server, not run it as a child")
        for rel in ("hsm/user.pin", "tls/server.key", "signum-server.conf"):
            self.assertEqual(os.stat(os.path.join(node.state, rel)).st_mode & 0o777, 0o600, rel)
        self.assertEqual(os.stat(os.path.join(node.run_dir, "pgpass")).st_mode & 0o777, 0o600)
        with open(os.path.join(node.state, "hsm", "user.pin")) as f:
            self.assertEqual(f.read().strip(), PIN)
        self.assertFalse(os.path.exists(os.path.join(node.state, "hsm", "tokens")))
        h = node.request("GET", "/healthz")
        self.assertEqual(h.status, 200, h)

        key = node.create_key("pod-key", "ec-p256")
        token = node.token_for(node.create_user("pod-signer"))
        node.grant("pod-key", "pod-signer")
        msg = b"signed in a pod"
        r = node.sign_request(token, "pod-key", "ecdsa", "sha256",
                              digest=hashlib.sha256(msg).digest())
        self.assertEqual(r.status, 200, r)
        ok, text = node.openssl.verify_digest_sig(
            pem(unb64(key["public_key"]), "PUBLIC KEY").encode(), "sha256", msg,
            ecdsa_raw_to_der(unb64(r.json["signature"])))
        self.assertTrue(ok, text)
        self.assertEqual(node.stop(), 0)

    def test_other_subcommands_pass_through(self):
        proc = run(["sh", ENTRYPOINT, "init", "--help"], env=self.node.env())
        self.assertEqual(proc.returncode, 0, proc)
        self.assertIn(b"--hsm-pin-file", proc.stdout)

    def test_refuses_without_configuration(self):
        env = self.node.env()
        env["SIGNUM_CONFIG_DIR"] = os.path.join(self.node.root, "absent")
        env["SIGNUM_STATE"] = os.path.join(self.node.root, "absent-state")
        proc = run(["sh", ENTRYPOINT, "serve"], env=env)
        self.assertEqual(proc.returncode, 2, proc)
        self.assertIn(b"run 'signum-server init", proc.stderr)
        self.assertFalse(os.path.exists(env["SIGNUM_STATE"]))


if __name__ == "__main__":
    unittest.main()
