"""Shared harness for the end-to-end tests of the Windows parts under wine64.

A real signum-server on 127.0.0.1 (tests/integration/signum_harness.py) and the real Windows
binaries of the mingw build, run by wine64 in the test run's prefix (created by the `wine`
ctest fixture, tests/wine/setup.sh). Standard library only. The API, kept stable:

    from wine_harness import WineEnv, server_with_keys, z_path

    srv, api_key = server_with_keys("mytest", keys=[("rsa", "rsa2048"), ("ec", "ec-p256")])
        # a started Server (signum_harness.Server) with a signer user "winuser" (its API key
        # is returned), the keys created, a codeSigning certificate issued for each, and
        # granted to winuser. Call srv.cleanup() at the end.
    w = WineEnv("mytest", srv, api_key)
        # one agent pipe (\\.\pipe\signum-test-mytest-<pid>), one cache directory and one
        # scratch directory for this test; w.env is the environment for wine64. Several
        # WineEnv (distinct names) may share one server; servers=[port or URL, ...] gives a
        # failover list instead of the one server.
    r = w.run("tests/windows/agent_client.exe", "status")   # CompletedProcess (text)
    r = w.run_json("tests/windows/agent_client.exe", "keys") # stdout's last line as JSON
    w.audit_signs(after_seq)   # the server's audit records of action "sign" after a seq
    w.stop_agent()             # SHUTDOWN over the pipe (agent_client.exe shutdown)
    w.close()                  # stop_agent(), remove the scratch directory
    srv.cleanup()              # the server is the caller's to stop

Environment given to every Windows program (w.env; override per call with run(env=...)):
WINEPREFIX=$WINE_DIR/prefix, WINEDEBUG=-all, WINEDLLOVERRIDES, PATH with /usr/lib/wine,
SIGNUM_SERVER=https://localhost:<port> (the server's certificate has DNS:localhost, and
Wine's WinHTTP never matches an IP address SAN), SIGNUM_API_KEY, SIGNUM_CA_FILE (Z:\\ path
of the server's CA), SIGNUM_AGENT (Z:\\ path of build-mingw/agent-core/signum-agent.exe),
SIGNUM_AGENT_SOCKET (this test's pipe), SIGNUM_CACHE_DIR (this test's, not yet existing so
the agent creates it with its DACL), SIGNUM_IDLE_TIMEOUT=120 (an agent left behind by a
crashed test goes away by itself).

Required environment (set by tests/wine/CMakeLists.txt): WINE_DIR, MINGW_BUILD_DIR,
SOURCE_DIR; SIGNUM_SERVER_BIN or the integration harness's default for the server binary.
A missing prerequisite raises, so the test fails loudly.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))

if os.environ.get("SIGNUM_SERVER_BIN"):
    # signum_harness reads the server binary from $SIGNUM_SERVER, which under Wine is the URL.
    os.environ["SIGNUM_SERVER"] = os.environ["SIGNUM_SERVER_BIN"]
import signum_harness  # noqa: E402

WINE_TIMEOUT = 100.0  # one Windows program, seconds (the COMMON rule: timeout 100 wine64)
USER = "winuser"


def z_path(path):
    """A Unix path as Wine shows it: Z:\\path\\with\\backslashes."""
    return "Z:" + os.path.abspath(path).replace("/", "\\")


def _need_env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError("%s is not set (run through ctest: tests/wine/CMakeLists.txt)" % name)
    return value


def wine_dir():
    return _need_env("WINE_DIR")


def mingw_dir():
    return _need_env("MINGW_BUILD_DIR")


def server_with_keys(name, keys=(("rsa", "rsa2048"), ("ec", "ec-p256")), user=USER):
    """A started server with a signer user (its API key returned), and keys (name, type) each
    with a codeSigning certificate and a grant to the user."""
    srv = signum_harness.Server(name="wine-" + name)
    try:
        api_key = srv.create_user(user)
        for key_name, key_type in keys:
            srv.create_key(key_name, key_type)
            srv.issue_cert(key_name, "Signum Wine test %s" % key_name)  # EKU codeSigning
            srv.grant(key_name, user)
    except BaseException:
        srv.cleanup()
        raise
    return srv, api_key


class WineEnv:
    """One test's Windows side: its pipe, cache and scratch directories, and environment."""

    def __init__(self, name, server, api_key, servers=None):
        self.name = name
        self.server = server
        self.api_key = api_key
        self.prefix = os.path.join(wine_dir(), "prefix")
        if not os.path.isdir(self.prefix):
            raise RuntimeError("no Wine prefix at %s (the wine.setup fixture makes it)"
                               % self.prefix)
        self.agent_exe = os.path.join(mingw_dir(), "agent-core", "signum-agent.exe")
        if not os.path.isfile(self.agent_exe):
            raise RuntimeError("%s is missing: build-mingw was not built" % self.agent_exe)
        self.scratch = tempfile.mkdtemp(prefix="signum-wine-%s-" % name)
        self.cache_dir = os.path.join(self.scratch, "cache")  # made by the agent, private
        self.pipe = "\\\\.\\pipe\\signum-test-%s-%d" % (name, os.getpid())
        self.env = dict(os.environ)
        self.env.update({
            "WINEPREFIX": self.prefix,
            "WINEDEBUG": "-all",
            "WINEDLLOVERRIDES": "mscoree,mshtml=",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/lib/wine",
            "SIGNUM_SERVER": self.server_urls(servers),
            "SIGNUM_API_KEY": api_key,
            "SIGNUM_CA_FILE": z_path(server.ca_cert_path),
            "SIGNUM_AGENT": z_path(self.agent_exe),
            "SIGNUM_AGENT_SOCKET": self.pipe,
            "SIGNUM_CACHE_DIR": z_path(self.cache_dir),
            "SIGNUM_IDLE_TIMEOUT": "120",
        })
        for var in ("SIGNUM_CONFIG", "SIGNUM_NO_AUTOSTART", "SIGNUM_DEBUG"):
            self.env.pop(var, None)

    def server_urls(self, servers=None):
        """https://localhost:<port>, or a comma-separated list of the given ports/URLs."""
        if servers is None:
            return "https://localhost:%d" % self.server.port
        return ",".join(s if isinstance(s, str) else "https://localhost:%d" % s
                        for s in servers)

    def exe(self, relative):
        path = os.path.join(mingw_dir(), relative)
        if not os.path.isfile(path):
            raise RuntimeError("%s is missing from the mingw build" % path)
        return path

    def run(self, relative_exe, *args, env=None, timeout=WINE_TIMEOUT, input=None):
        """Runs build-mingw/<relative_exe> under wine64; CompletedProcess with text output.
        input: bytes for stdin, or None."""
        full_env = dict(self.env)
        if env:
            for k, v in env.items():
                if v is None:
                    full_env.pop(k, None)
                else:
                    full_env[k] = v
        # Output goes to files, not pipes: the agent a client starts (and the wineserver)
        # would inherit the pipes' Unix descriptors and keep them open long after the program
        # exits, so reading to EOF would hang.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(["wine64", self.exe(relative_exe)] + [str(a) for a in args],
                                  env=full_env, input=input, stdout=out, stderr=err,
                                  timeout=timeout)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                proc.args, proc.returncode, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"))

    def run_json(self, relative_exe, *args, expect_rc=0, **kw):
        """run(), then the last stdout line as JSON; asserts the exit code."""
        r = self.run(relative_exe, *args, **kw)
        lines = [line for line in r.stdout.splitlines() if line.strip()]
        if r.returncode != expect_rc or not lines:
            raise AssertionError("%s %s exited %d (expected %d)\nstdout: %s\nstderr: %s\n%s"
                                 % (relative_exe, " ".join(map(str, args)), r.returncode,
                                    expect_rc, r.stdout, r.stderr, self.agent_log()))
        return json.loads(lines[-1])

    def agent_log(self, tail=60):
        """The agent's log when detached (%LOCALAPPDATA%\\Signum\\agent.log in the prefix)."""
        users = os.path.join(self.prefix, "drive_c", "users")
        out = []
        for user in (os.listdir(users) if os.path.isdir(users) else []):
            p = os.path.join(users, user, "AppData", "Local", "Signum", "agent.log")
            if os.path.isfile(p):
                with open(p, errors="replace") as f:
                    lines = [line for line in f if self.pipe in line or "signum-agent[" in line]
                out.append("agent.log (%s):\n%s" % (p, "".join(lines[-tail:])))
        return "\n".join(out)

    def audit_signs(self, after=0):
        return [r for r in self.server.audit_show(after=after) if r["action"] == "sign"]

    def stop_agent(self):
        """Asks this test's agent to exit (no autostart); True if one answered."""
        r = self.run("tests/windows/agent_client.exe", "shutdown",
                     env={"SIGNUM_NO_AUTOSTART": "1"}, timeout=30)
        stopped = r.returncode == 0
        if stopped:
            # Bounded wait until the pipe name is gone.
            for _ in range(50):
                s = self.run("tests/windows/agent_client.exe", "status",
                             env={"SIGNUM_NO_AUTOSTART": "1"}, timeout=30)
                if s.returncode != 0:
                    break
                time.sleep(0.1)
        return stopped

    def close(self):
        """Stops this test's agent and removes the scratch directory (not the server)."""
        try:
            self.stop_agent()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)


def dead_port():
    """A 127.0.0.1 port with nothing listening (bound, then closed)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
