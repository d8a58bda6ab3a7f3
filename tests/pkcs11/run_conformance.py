"""Runs the PKCS#11 conformance suite (p11_conformance, CMocka) against one module:

  run_conformance.py softhsm   SoftHSMv2 with a throwaway token; keys made here with pkcs11-tool,
                               certificates with openssl through the libp11 engine
  run_conformance.py signum    libsignumpkcs11.so, with a real signum-server (SoftHSMv2 behind it)
                               and a real signum-agent started on demand by the module

Paths come from the environment CMake sets: P11_CONFORMANCE (the binary), SIGNUM_PKCS11 (our
module), SIGNUM_SERVER, SIGNUM_AGENT, SIGNUM_UTIL. Standard library only; every wait bounded.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from signum_harness import SOFTHSM_MODULE, Server, run  # noqa: E402

SUITE_TIMEOUT = 240


def run_suite(env):
    proc = subprocess.run([os.environ["P11_CONFORMANCE"]], env=env, timeout=SUITE_TIMEOUT)
    return proc.returncode


def softhsm():
    root = tempfile.mkdtemp(prefix="signum-p11conf-softhsm-")
    try:
        os.mkdir(os.path.join(root, "tokens"))
        conf = os.path.join(root, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\n"
                    % os.path.join(root, "tokens"))
        env = dict(os.environ, SOFTHSM2_CONF=conf)
        run(["softhsm2-util", "--init-token", "--free", "--label", "sign", "--so-pin",
             "12345678", "--pin", "1234"], env=env, check=True)
        tool = ["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "sign", "--login",
                "--pin", "1234"]
        for key_type, key_id, label in (("rsa:2048", "01", "rsa"), ("EC:prime256v1", "02", "ec")):
            run(tool + ["--keypairgen", "--key-type", key_type, "--id", key_id, "--label", label],
                env=env, check=True)
            pem = os.path.join(root, label + ".pem")
            der = os.path.join(root, label + ".der")
            run(["openssl", "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine",
                 "-key", "pkcs11:token=sign;object=%s;type=private;pin-value=1234" % label,
                 "-subj", "/CN=conformance %s" % label, "-days", "30", "-out", pem],
                env=dict(env, PKCS11_MODULE_PATH=SOFTHSM_MODULE), check=True)
            run(["openssl", "x509", "-in", pem, "-outform", "DER", "-out", der], check=True)
            run(tool + ["--write-object", der, "--type", "cert", "--id", key_id, "--label",
                        label], env=env, check=True)
        env.update(P11_MODULE=SOFTHSM_MODULE, P11_FLAVOR="softhsm", P11_PIN="1234",
                   P11_RSA_LABEL="rsa", P11_EC_LABEL="ec")
        return run_suite(env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def signum():
    from agent_harness import Agent
    server = Server(name="p11conf")
    agent = None
    try:
        user_key = server.create_user("conformance")
        for name, kind in (("rsa", "rsa2048"), ("ec", "ec-p256")):
            server.create_key(name, kind)
            server.issue_cert(name, "conformance " + name)
            server.grant(name, "conformance")
        agent = Agent(["https://localhost:%d" % server.port], server.ca_cert_path,
                      api_key=user_key, name="p11conf")
        env = dict(agent.env)
        # The PIN means nothing while the agent holds a session: any value is accepted.
        env.update(P11_MODULE=os.environ["SIGNUM_PKCS11"], P11_FLAVOR="signum",
                   P11_PIN="any-pin", P11_RSA_LABEL="rsa", P11_EC_LABEL="ec")
        rc = run_suite(env)
        if rc != 0:
            sys.stderr.write("agent log:\n%s\n%s\n" % (agent.log(), server.log(60)))
        agent.stop()
        server.stop()
        return rc
    finally:
        if agent is not None:
            agent.cleanup()
        server.cleanup()


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which not in ("softhsm", "signum"):
        sys.exit("usage: run_conformance.py softhsm|signum")
    sys.exit(softhsm() if which == "softhsm" else signum())
