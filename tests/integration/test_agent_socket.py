"""The agent's socket when XDG_RUNTIME_DIR is unset: the client library and the agent fall back
to /tmp/signum-<uid>/agent.sock, a name in a directory every user can write. Another user may
plant that directory (or a link, or a listener) first. Real binaries: signum-util, signum-agent
and libsignumpkcs11.so through pkcs11-tool, against a real server.

Each case plants a listener run by another uid (nobody) and checks that it received not one
byte (no API key, no PIN, no digest) and that the tool failed saying which path is wrong and
why. Needs root (to plant as nobody and to be the victim). The fallback path is fixed, so the
test runs in a private mount namespace with its own /tmp (unshare), never touching the
machine's /tmp/signum-<uid>."""

import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

PRIVATE_TMP = "SIGNUM_TEST_PRIVATE_TMP"


def _reexec_in_private_tmp():
    """Runs this file again with a tmpfs of its own on /tmp; returns its exit code, or None
    if a private mount namespace cannot be made here (then the machine's /tmp is used, and
    only if no fallback directory of ours is there)."""
    if os.environ.get(PRIVATE_TMP) or os.getuid() != 0 or not shutil.which("unshare"):
        return None
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                            "mount -t tmpfs -o mode=1777 tmpfs /tmp"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    if probe.returncode != 0:
        return None
    env = dict(os.environ, **{PRIVATE_TMP: "1"})
    # What the test runs from may itself live under /tmp (a checkout, a build, an
    # interpreter): those top-level entries are bound back into the private /tmp from the old
    # one, reached through a descriptor opened before the tmpfs hides it.
    needed = [HERE, sys.executable] + [os.environ.get(v, "") for v in
                                       ("SIGNUM_SERVER", "SIGNUM_AGENT", "SIGNUM_UTIL",
                                        "SIGNUM_PKCS11")]
    tops = sorted({os.path.realpath(p).split("/")[2] for p in needed
                   if os.path.realpath(p or "/").startswith("/tmp/")})
    script = "exec 3</tmp && mount -t tmpfs -o mode=1777 tmpfs /tmp"
    for top in tops:
        script += (" && mkdir -p '/tmp/%s' && mount --no-canonicalize --bind '/proc/self/fd/3/%s' '/tmp/%s'"
                   % (top, top, top))
    script += ' && exec 3<&- && exec "$0" "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                           script, sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
                          env=env).returncode


if __name__ == "__main__":
    rc = _reexec_in_private_tmp()
    if rc is not None:
        sys.exit(rc)

from agent_harness import AGENT_BIN, UTIL_BIN, Agent  # noqa: E402
from signum_harness import Server, run  # noqa: E402

MODULE = os.environ.get("SIGNUM_PKCS11") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "linux-pkcs11", "libsignumpkcs11.so"))
NOBODY = 65534
FALLBACK_DIR = "/tmp/signum-%d" % os.getuid()
FALLBACK_SOCKET = FALLBACK_DIR + "/agent.sock"
TOOL_TIMEOUT = 60.0

# The planted listener: binds as root where the case says, then drops to `run_uid` before
# listen() (the credentials a connecting client sees are those of listen()'s caller), and
# records every byte any client sends. On stdin EOF it drains what is still queued and prints
# {"bytes": n, "data": hex} as its last line.
LISTENER = r"""
import json, os, select, socket, sys
path, run_uid = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
os.setgroups([])
os.setresgid(run_uid, run_uid, run_uid)
os.setresuid(run_uid, run_uid, run_uid)
s.listen(16)
print("ready", flush=True)
got = b""
def take(conn):
    global got
    conn.settimeout(1.0)
    try:
        while True:
            b = conn.recv(65536)
            if not b:
                break
            got += b
    except OSError:
        pass
    conn.close()
done = False
while not done:
    r, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in r:
        sys.stdin.read()
        done = True
        s.setblocking(False)
        while True:
            try:
                c, _ = s.accept()
            except BlockingIOError:
                break
            c.setblocking(True)
            take(c)
    elif s in r:
        c, _ = s.accept()
        take(c)
print(json.dumps({"bytes": len(got), "data": got.hex()}), flush=True)
"""


class Listener:
    def __init__(self, path, run_uid):
        self.proc = subprocess.Popen([sys.executable, "-c", LISTENER, path, str(run_uid)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.proc.kill()
            raise AssertionError("the planted listener did not start: %r" % line)

    def received(self):
        """Stops the listener; returns every byte it was sent."""
        out, _ = self.proc.communicate(timeout=30)
        result = json.loads(out.decode().strip().splitlines()[-1])
        return bytes.fromhex(result["data"])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def clean_fallback():
    if os.path.islink(FALLBACK_DIR) or os.path.isfile(FALLBACK_DIR):
        os.unlink(FALLBACK_DIR)
    elif os.path.isdir(FALLBACK_DIR):
        shutil.rmtree(FALLBACK_DIR, ignore_errors=True)


class FallbackSocket(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert os.getuid() == 0, "run as root: the test plants listeners as uid nobody"
        if not os.environ.get(PRIVATE_TMP) and os.path.lexists(FALLBACK_DIR):
            raise AssertionError("%s exists and no private /tmp could be made; remove it"
                                 % FALLBACK_DIR)
        cls.server = Server(name="agent-socket")
        cls.addClassCleanup(cls.server.cleanup)
        cls.api_key = cls.server.create_user("alice")
        cls.server.create_key("sock-ec", "ec-p256")
        cls.server.grant("sock-ec", "alice")
        cls.agent = Agent(["https://localhost:%d" % cls.server.port], cls.server.ca_cert_path,
                          name="agent-socket")
        cls.addClassCleanup(cls.agent.cleanup)
        # The user's environment as cron or ssh without a session has it: no XDG_RUNTIME_DIR,
        # no explicit socket, no API key but the one the tool hands over.
        cls.env = {k: v for k, v in cls.agent.env.items()
                   if k not in ("XDG_RUNTIME_DIR", "SIGNUM_AGENT_SOCKET", "SIGNUM_API_KEY")}
        cls.key_id = cls.server.get_key("sock-ec")["id"]
        cls.msg = os.path.join(cls.agent.root, "msg.txt")
        with open(cls.msg, "wb") as f:
            f.write(b"to be signed\n")

    def setUp(self):
        clean_fallback()
        self.addCleanup(clean_fallback)

    def plant(self, dir_mode, dir_uid, listener_uid=NOBODY, link=False):
        """Makes the fallback directory as another user would, with a listener in it."""
        target = FALLBACK_DIR
        if link:
            target = "/tmp/planted-%d" % os.getpid()
            os.mkdir(target)
            self.addCleanup(shutil.rmtree, target, True)
            os.chown(target, NOBODY, NOBODY)
            os.symlink(target, FALLBACK_DIR)
            os.lchown(FALLBACK_DIR, NOBODY, NOBODY)
        else:
            os.mkdir(FALLBACK_DIR)
        os.chmod(target, dir_mode)
        os.chown(target, dir_uid, dir_uid)
        listener = Listener(os.path.join(target, "agent.sock"), listener_uid)
        self.addCleanup(listener.kill)
        return listener

    def util(self, *args, input=None):
        proc = run([UTIL_BIN] + list(args), input=input, env=self.env, timeout=TOOL_TIMEOUT)
        proc.out = (proc.stdout + proc.stderr).decode(errors="replace")
        return proc

    def pkcs11_sign(self):
        """pkcs11-tool --login with the API key as the PIN, then a signature."""
        log = os.path.join(self.agent.root, "p11-%s.log" % self._testMethodName)
        env = dict(self.env, SIGNUM_DEBUG="p11", SIGNUM_P11_LOG=log)
        if os.environ.get("SIGNUM_ASAN_RUNTIME"):
            # The sanitizer build's module needs its runtime loaded before pkcs11-tool's own
            # libraries; the tool itself is not what this test checks for leaks.
            env.update(LD_PRELOAD=os.environ["SIGNUM_ASAN_RUNTIME"], ASAN_OPTIONS="detect_leaks=0")
        proc = subprocess.run(["pkcs11-tool", "--module", MODULE, "--login", "--pin",
                               self.api_key, "--sign", "-m", "ECDSA-SHA256", "--id",
                               self.key_id, "-i", self.msg, "-o",
                               os.path.join(self.agent.root, "out.sig")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=TOOL_TIMEOUT)
        proc.out = proc.stdout.decode(errors="replace")
        try:
            with open(log, errors="replace") as f:
                proc.debug = f.read()
        except OSError:
            proc.debug = ""
        return proc

    def assert_refused(self, listener, problem):
        """signum-util login and pkcs11-tool both fail, saying what is wrong with which path,
        and the listener got nothing."""
        login = self.util("login", input=(self.api_key + "\n").encode())
        p11 = self.pkcs11_sign()
        got = listener.received()
        self.assertNotIn(self.api_key.encode(), got, "the planted listener got the API key")
        self.assertEqual(len(got), 0, "the planted listener received %d bytes" % len(got))
        self.assertNotEqual(login.returncode, 0, login.out)
        self.assertIn(FALLBACK_DIR, login.out)
        self.assertIn(problem, login.out)
        self.assertNotEqual(p11.returncode, 0, p11.out)
        self.assertIn(FALLBACK_DIR, p11.debug, "the module's debug log must say why:\n"
                      + p11.debug)
        self.assertIn(problem, p11.debug)
        # No agent was started into the planted place either.
        self.assertFalse(os.path.exists(os.path.join(FALLBACK_DIR, "agent.log")))

    def test_directory_planted_by_another_user(self):
        listener = self.plant(0o777, NOBODY)
        self.assert_refused(listener, "owned by uid 65534")

    def test_directory_private_to_another_user(self):
        listener = self.plant(0o700, NOBODY)
        self.assert_refused(listener, "owned by uid 65534")

    def test_our_directory_open_to_others(self):
        listener = self.plant(0o777, os.getuid())
        self.assert_refused(listener, "mode 0777")

    def test_symbolic_link(self):
        listener = self.plant(0o700, NOBODY, link=True)
        self.assert_refused(listener, "symbolic link")

    def test_listener_of_another_uid_in_our_directory(self):
        # The directory passes (ours, 0700): only the listener's credentials give it away.
        listener = self.plant(0o700, os.getuid())
        self.assert_refused(listener, "runs as uid 65534")

    def test_agent_refuses_a_planted_directory(self):
        os.mkdir(FALLBACK_DIR)
        os.chmod(FALLBACK_DIR, 0o777)
        os.chown(FALLBACK_DIR, NOBODY, NOBODY)
        proc = run([AGENT_BIN, "--foreground"], env=self.env, timeout=TOOL_TIMEOUT)
        err = proc.stderr.decode(errors="replace")
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn(FALLBACK_DIR, err)
        self.assertIn("owned by uid 65534", err)
        self.assertEqual(os.listdir(FALLBACK_DIR), [])

    def test_fallback_works_when_ours(self):
        """The control: with nothing planted, the agent makes the directory 0700 and serves."""
        proc = self.util("login", input=(self.api_key + "\n").encode())
        self.assertEqual(proc.returncode, 0, proc.out)
        st = os.lstat(FALLBACK_DIR)
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (os.getuid(), 0o700))
        p11 = self.pkcs11_sign()
        self.assertEqual(p11.returncode, 0, p11.out + p11.debug)
        proc = self.util("agent", "stop")
        self.assertEqual(proc.returncode, 0, proc.out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
