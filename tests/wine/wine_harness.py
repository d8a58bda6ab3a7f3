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
    WineEnv(..., arch="x86")   # its programs are the x86 build's (build-mingw32/), run by the
        # 32-bit loader `wine`; the agent is always the x64 one (one agent per user). run(...,
        # arch="x64") runs one program of the other build. ARCH ($SIGNUM_WINE_ARCH, default
        # x64) is the architecture a test file was started for; exit_unless_runnable(ARCH)
        # ends a test whose architecture this machine cannot run with SKIP_RC (ctest: skipped,
        # never passed).
    w.close()                  # stop_agent(), remove the scratch directory
    srv.cleanup()              # the server is the caller's to stop

Environment given to every Windows program (w.env; override per call with run(env=...)):
WINEPREFIX=$WINE_DIR/prefix, WINEDEBUG=-all, WINEDLLOVERRIDES, PATH with the run's loaders
first (wine_path(): tests/wine/loaders.sh; x86 programs may run under qemu-i386, emulated(arch),
with timeouts five times wider, wine_timeout()) and /usr/lib/wine last,
SIGNUM_SERVER=https://localhost:<port> (the server's certificate has DNS:localhost, and
Wine's WinHTTP never matches an IP address SAN), SIGNUM_API_KEY, SIGNUM_CA_FILE (Z:\\ path
of the server's CA), SIGNUM_AGENT (Z:\\ path of build-mingw/agent-core/signum-agent.exe),
SIGNUM_AGENT_SOCKET (this test's pipe), SIGNUM_CACHE_DIR (this test's, not yet existing so
the agent creates it with its DACL), SIGNUM_IDLE_TIMEOUT=120 (an agent left behind by a
crashed test goes away by itself).

Required environment (set by tests/wine/CMakeLists.txt): WINE_DIR, MINGW_BUILD_DIR,
MINGW32_BUILD_DIR (the x86 tests), SOURCE_DIR; SIGNUM_SERVER_BIN or the integration harness's default for the server binary.
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
ARCH = os.environ.get("SIGNUM_WINE_ARCH", "x64")
LOADERS = {"x64": "wine64", "x86": "wine"}  # Debian's wine64 and wine32 (in /usr/lib/wine)
SKIP_RC = 77  # ctest SKIP_RETURN_CODE of the wine tests


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


def mingw_dir(arch="x64"):
    """build-mingw/ (x64) or build-mingw32/ (x86)."""
    if arch not in LOADERS:
        raise RuntimeError("unknown architecture %r (SIGNUM_WINE_ARCH: x64 or x86)" % arch)
    return _need_env("MINGW_BUILD_DIR" if arch == "x64" else "MINGW32_BUILD_DIR")


def loader_dir():
    """$WINE_DIR/loaders/lib/wine (tests/wine/loaders.sh): first in every Wine test's PATH."""
    return os.path.join(wine_dir(), "loaders", "lib", "wine")


def wine_path(base=None):
    """The PATH of a Wine program: the run's loaders, then base (default ours), /usr/lib/wine."""
    base = base if base is not None else os.environ.get("PATH", "/usr/bin:/bin")
    return "%s:%s:/usr/lib/wine" % (loader_dir(), base)


def emulated(arch):
    """True if arch's programs run under qemu-i386 (loaders.sh), where starting one alone
    takes tens of seconds of CPU."""
    root = os.environ.get("WINE_DIR")  # no WINE_DIR: wine_dir() raises where it is needed
    return arch == "x86" and bool(root) and \
        os.path.exists(os.path.join(root, "loaders", "x86-emulated"))


def short_when_emulated(arch):
    """True where a test that starts one program per case runs its short suite: arch is
    emulated and SIGNUM_WINE32_FULL=1 (scripts/test.sh --wine32) did not ask for every case."""
    return emulated(arch) and os.environ.get("SIGNUM_WINE32_FULL") != "1"


def wine_timeout(arch, seconds):
    """A program's time bound: five times wider under emulation."""
    return seconds * 5 if emulated(arch) else seconds


def loader(arch="x64"):
    """The Wine loader that runs programs of that architecture (the prefix is a 64-bit one
    with its WOW64 half: wine64 for x64, wine for x86)."""
    mingw_dir(arch)  # checks the name
    return LOADERS[arch]


def unrunnable(arch):
    """None if this machine can run the architecture's programs under Wine, else why not.
    A loader that is not installed is a broken setup (scripts/install-deps.sh installs both)
    and raises; a kernel that refuses 32-bit executables (no IA32 emulation, as in some VMs)
    is a property of the machine, reported so the test is skipped, never passed."""
    path = shutil.which(loader(arch), path=wine_path())
    if not path:
        raise RuntimeError("%s is not installed (scripts/install-deps.sh: wine64, wine32)"
                           % loader(arch))
    try:
        subprocess.run([path, "--version"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=True)
    except OSError as e:
        return "%s cannot be executed on this machine (%s): its kernel runs no %s programs" % (
            path, e.strerror, "32-bit" if arch == "x86" else "64-bit")
    return None


def exit_unless_runnable(arch):
    """Ends the test program with SKIP_RC, saying why, if `arch` cannot run here."""
    why = unrunnable(arch)
    if why:
        print("SKIP (%s tests not run): %s" % (arch, why))
        sys.stdout.flush()
        sys.exit(SKIP_RC)


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

    def __init__(self, name, server, api_key, servers=None, arch=ARCH):
        self.name = name
        self.arch = arch
        self.server = server
        self.api_key = api_key
        self.prefix = os.path.join(wine_dir(), "prefix")
        if not os.path.isdir(self.prefix):
            raise RuntimeError("no Wine prefix at %s (the wine.setup fixture makes it)"
                               % self.prefix)
        self.agent_exe = os.path.join(mingw_dir("x64"), "agent-core", "signum-agent.exe")
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
            "PATH": wine_path(),
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

    def exe(self, relative, arch=None):
        path = os.path.join(mingw_dir(arch or self.arch), relative)
        if not os.path.isfile(path):
            raise RuntimeError("%s is missing from the mingw build" % path)
        return path

    def run(self, relative_exe, *args, env=None, timeout=WINE_TIMEOUT, input=None, arch=None):
        """Runs build-mingw/<relative_exe> under wine64 (arch, default this env's: x86 runs
        build-mingw32/<relative_exe> under wine); CompletedProcess with text output.
        input: bytes for stdin, or None."""
        arch = arch or self.arch
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
            proc = subprocess.run([loader(arch), self.exe(relative_exe, arch)] +
                                  [str(a) for a in args],
                                  env=full_env, input=input, stdout=out, stderr=err,
                                  timeout=wine_timeout(arch, timeout))
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
                     env={"SIGNUM_NO_AUTOSTART": "1"}, timeout=30, arch="x64")
        stopped = r.returncode == 0
        if stopped:
            # Bounded wait until the pipe name is gone.
            for _ in range(50):
                s = self.run("tests/windows/agent_client.exe", "status",
                             env={"SIGNUM_NO_AUTOSTART": "1"}, timeout=30, arch="x64")
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
