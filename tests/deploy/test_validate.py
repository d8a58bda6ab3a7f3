"""deploy/validate.py must catch what it claims to (ctest deploy.validate_selftest): deploy/
as it is passes; each test breaks one thing in a copy of it and expects that check to fail."""

import io
import os
import shutil
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "deploy"))

import validate  # noqa: E402

SERVER = os.environ.get("SIGNUM_SERVER")


class ValidateSelftest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        c = validate.Checker(ROOT, SERVER)
        with redirect_stdout(io.StringIO()):
            rc = c.run()
        assert (rc, c.failures) == (0, []), "deploy/ itself must pass: %r" % c.failures

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="signum-deploy-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        shutil.copytree(os.path.join(ROOT, "deploy"), os.path.join(self.tmp, "deploy"))
        os.makedirs(os.path.join(self.tmp, "server", "src"))
        shutil.copyfile(os.path.join(ROOT, "server", "src", "config.c"),
                        os.path.join(self.tmp, "server", "src", "config.c"))
        for d in ("server", "agent-core", "linux-pkcs11", "common"):
            if os.path.exists(os.path.join(ROOT, d, "CMakeLists.txt")):
                os.makedirs(os.path.join(self.tmp, d), exist_ok=True)
                shutil.copyfile(os.path.join(ROOT, d, "CMakeLists.txt"),
                                os.path.join(self.tmp, d, "CMakeLists.txt"))

    def run_checker(self, server=None):
        c = validate.Checker(self.tmp, server)
        with redirect_stdout(io.StringIO()):
            rc = c.run()
        return rc, c.failures

    def edit(self, rel, old, new):
        p = os.path.join(self.tmp, "deploy", rel)
        with open(p) as f:
            text = f.read()
        self.assertIn(old, text, "%s changed: the selftest's edit no longer applies" % rel)
        with open(p, "w") as f:
            f.write(text.replace(old, new, 1))

    def assertCaught(self, rel, old, new, expect, server=None):
        self.edit(rel, old, new)
        rc, failures = self.run_checker(server)
        self.assertEqual(rc, 1, "not caught: %s" % expect)
        self.assertTrue(any(expect in f for f in failures),
                        "expected a failure mentioning %r, got %r" % (expect, failures))

    def test_readiness_probe_path(self):
        self.assertCaught("kubernetes/deployment.yaml", "path: /healthz/ready", "path: /healthz",
                          "readinessProbe must be an HTTPS GET of /healthz/ready")

    def test_grace_period_shorter_than_the_drain(self):
        self.assertCaught("kubernetes/deployment.yaml", "terminationGracePeriodSeconds: 35",
                          "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds 20")

    def test_secret_literal_in_env(self):
        self.assertCaught("kubernetes/deployment.yaml",
                          "            - name: SIGNUM_STATE\n",
                          "            - name: PGPASSWORD\n              value: hunter2\n"
                          "            - name: SIGNUM_STATE\n",
                          "PGPASSWORD is a literal")

    def test_password_in_database_url(self):
        self.assertCaught("kubernetes/configmap.yaml", "postgresql://signum@",
                          "postgresql://signum:hunter2@", "the database URL carries a password")

    def test_unknown_config_key(self):
        self.assertCaught("kubernetes/configmap.yaml", "    workers = 8\n",
                          "    workers = 8\n    hsm_modul = x\n", "unknown key 'hsm_modul'")

    def test_selector_mismatch(self):
        self.assertCaught("kubernetes/service.yaml",
                          "  selector:\n    app.kubernetes.io/name: signum-server",
                          "  selector:\n    app.kubernetes.io/name: signum",
                          "Service signum selector")

    def test_missing_secret(self):
        self.assertCaught("kubernetes/deployment.yaml", "secretName: signum-tls",
                          "secretName: signum-tls-typo", "Secret signum-tls-typo")

    def test_yaml_syntax(self):
        self.assertCaught("kubernetes/service.yaml", "  type: ClusterIP\n",
                          "  type: ClusterIP\n  type: NodePort\n", "yamllint")

    def test_missing_build_package(self):
        self.assertCaught("container/Dockerfile", " libqrencode-dev ", " ",
                          "pkg-config module libqrencode from libqrencode-dev")

    def test_root_user_in_image(self):
        self.assertCaught("container/Dockerfile", "USER 10001:10001", "USER root",
                          "numeric non-root USER")

    def test_dev_package_at_run_time(self):
        self.assertCaught("container/Dockerfile", "libpq5 \\", "libpq5 libpq-dev \\",
                          "build packages in the runtime stage: libpq-dev")

    def test_entrypoint_shellcheck(self):
        self.assertCaught("container/entrypoint.sh", 'state=${SIGNUM_STATE:-/var/lib/signum/state}',
                          'state=${SIGNUM_STATE:-/var/lib/signum/state}\nfor f in `ls $cfg`; do :; done',
                          "entrypoint.sh: shellcheck")

    def test_haproxy_syntax(self):
        self.assertCaught("haproxy/haproxy.cfg", "balance leastconn", "balance fewestconn",
                          "haproxy.cfg: haproxy")

    def test_haproxy_checks_ready(self):
        self.assertCaught("haproxy/haproxy.cfg", "uri /healthz/ready", "uri /healthz",
                          "the health check must be GET /healthz/ready")

    @unittest.skipUnless(SERVER, "SIGNUM_SERVER names the binary whose libraries are checked")
    def test_missing_runtime_library(self):
        self.assertCaught("container/Dockerfile", " libcjson1 ", " ",
                          "which the runtime stage does not install", server=SERVER)


if __name__ == "__main__":
    unittest.main()
