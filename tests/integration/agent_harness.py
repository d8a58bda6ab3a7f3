"""Harness for the Signum Agent tests: a real signum-agent (started on demand by the client
library, as tools start it) in a throwaway per-test home, talking to a real signum-server.

Binaries come from $SIGNUM_AGENT and $SIGNUM_UTIL (set by CMake). Standard library only.
"""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from signum_harness import HERE, run

AGENT_BIN = os.environ.get("SIGNUM_AGENT") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "agent-core", "signum-agent"))
UTIL_BIN = os.environ.get("SIGNUM_UTIL") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "agent-core", "signum-util"))

STOP_TIMEOUT = 15.0

# IPC protocol constants (agent-core/src/common/ipc.h).
IPC_MAGIC = 0x53474E31
MSG_HELLO, MSG_STATUS, MSG_ERROR = 1, 2, 0xFFFF
TAG_CODE, TAG_MESSAGE, TAG_VERSION = 1, 2, 3
SG_ERR_DENIED, SG_ERR_PROTOCOL = 4, 11


def frame(msg_type, fields=b"", msg_id=1, length=None, magic=IPC_MAGIC, version=1):
    return struct.pack(">IHHII", magic, version, msg_type, msg_id,
                       len(fields) if length is None else length) + fields


def field(tag, value):
    return struct.pack(">HI", tag, len(value)) + value


def read_frame(sock, timeout=10.0):
    """Returns (type, {tag: [values]}) or None on EOF."""
    sock.settimeout(timeout)
    head = b""
    while len(head) < 16:
        chunk = sock.recv(16 - len(head))
        if not chunk:
            return None
        head += chunk
    _, _, msg_type, _, length = struct.unpack(">IHHII", head)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    fields, pos = {}, 0
    while pos < len(body):
        tag, flen = struct.unpack(">HI", body[pos:pos + 6])
        fields.setdefault(tag, []).append(body[pos + 6:pos + 6 + flen])
        pos += 6 + flen
    return msg_type, fields


class Agent:
    """The environment of one user of one agent: its own runtime, cache and config dirs."""

    def __init__(self, server_urls, ca_file, api_key=None, extra_env=None, name="agent"):
        self.root = tempfile.mkdtemp(prefix="signum-%s-" % name)
        self.runtime = os.path.join(self.root, "run")
        self.cache = os.path.join(self.root, "cache")
        os.mkdir(self.runtime, 0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNUM_")}
        env.update({
            "HOME": self.root,
            "XDG_RUNTIME_DIR": self.runtime,
            "XDG_CACHE_HOME": self.cache,
            "XDG_CONFIG_HOME": os.path.join(self.root, "config"),
            "SIGNUM_SERVER": ",".join(server_urls),
            "SIGNUM_CA_FILE": ca_file,
            "SIGNUM_AGENT": AGENT_BIN,
            "SIGNUM_IDLE_TIMEOUT": "60",
        })
        if api_key:
            env["SIGNUM_API_KEY"] = api_key
        env.update(extra_env or {})
        self.env = env

    @property
    def socket_path(self):
        return os.path.join(self.runtime, "signum", "agent.sock")

    @property
    def session_file(self):
        return os.path.join(self.cache, "signum", "session.json")

    def util(self, *args, input=None, env=None, timeout=60.0):
        e = dict(self.env)
        e.update(env or {})
        return run([UTIL_BIN] + list(args), input=input, env=e, timeout=timeout)

    def util_ok(self, *args, **kw):
        proc = self.util(*args, **kw)
        if proc.returncode != 0:
            raise AssertionError("signum-util %s exited %d\nstdout: %s\nstderr: %s\nagent log:\n%s"
                                 % (" ".join(args), proc.returncode, proc.stdout.decode(),
                                    proc.stderr.decode(), self.log()))
        return proc

    def pid(self):
        proc = self.util("agent", "status", env={"SIGNUM_NO_AUTOSTART": "1"})
        for line in proc.stdout.decode().splitlines():
            if line.startswith("agent:") and "pid" in line:
                return int(line.split("pid")[1].split(",")[0])
        return None

    def running(self):
        return os.path.exists(self.socket_path)

    def stop(self):
        """Stops the agent and waits for it to be gone; asserts no sanitizer report."""
        pid = self.pid()
        self.util("agent", "stop", env={"SIGNUM_NO_AUTOSTART": "1"})
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if not os.path.exists(self.socket_path) and (pid is None or not _alive(pid)):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("agent did not stop within %.0f s\n%s" % (STOP_TIMEOUT,
                                                                            self.log()))
        self.assert_clean_log()

    def assert_clean_log(self):
        log = self.log()
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError("sanitizer report in the agent log:\n" + log)

    def log(self):
        try:
            with open(os.path.join(self.runtime, "signum", "agent.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.socket_path)
        return s

    def cleanup(self):
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid):
    """Exists and is not a zombie: a daemon's reaper (init) may take its time."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
