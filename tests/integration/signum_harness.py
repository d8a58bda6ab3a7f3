"""Harness for integration tests against a real signum-server.

Each Server owns a temporary directory with its own state (SoftHSMv2 token, SQLite database,
CA, TLS certificate). Nothing is mocked: tests talk HTTPS to the real binary and verify
signatures with the openssl command-line tool.

The binary comes from $SIGNUM_SERVER (set by CMake); failing that, the usual build tree path.
Standard library only.
"""

import base64
import hashlib
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pg_harness  # noqa: E402

# With $SIGNUM_TEST_PG (a PostgreSQL server started by pg_harness.py), every Server keeps its
# data in a database of its own there instead of a SQLite file.
PG_ROOT = os.environ.get("SIGNUM_TEST_PG") or None
SERVER_BIN = os.environ.get("SIGNUM_SERVER") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "server", "signum-server"))
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

START_TIMEOUT = 20.0    # serve until run.json appears
STOP_TIMEOUT = 20.0     # SIGTERM until exit
CMD_TIMEOUT = 60.0      # any CLI invocation (init, audit, openssl, pkcs11-tool)
HTTP_TIMEOUT = 30.0     # one HTTP exchange (the audit-lock test needs > 10 s)

HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
HASH_LEN = {"sha256": 32, "sha384": 48, "sha512": 64}


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text.encode("ascii"), validate=True)


def run(args, input=None, env=None, timeout=CMD_TIMEOUT, check=False):
    """Runs a command with a bounded time; returns CompletedProcess (bytes)."""
    proc = subprocess.run(args, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), proc.returncode, proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace")))
    return proc


def sha256_file_tree(root):
    """Maps every path under root to (mode, sha256 of content) so two snapshots can be compared
    byte for byte, including directories and permissions."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        out[rel + "/"] = ("dir", oct(os.lstat(dirpath).st_mode))
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            with open(p, "rb") as f:
                out[os.path.join(rel, name)] = (oct(st.st_mode), st.st_size,
                                                hashlib.sha256(f.read()).hexdigest())
    return out


# ---- DER / PEM helpers ---------------------------------------------------------------------

def _der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der_int(value):
    b = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + _der_len(len(b)) + b


def ecdsa_raw_to_der(raw):
    """r||s (each half) to ASN.1 ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }."""
    assert len(raw) % 2 == 0, "raw ECDSA signature has odd length %d" % len(raw)
    half = len(raw) // 2
    r = int.from_bytes(raw[:half], "big")
    s = int.from_bytes(raw[half:], "big")
    body = _der_int(r) + _der_int(s)
    return b"\x30" + _der_len(len(body)) + body


def pem(der, label="CERTIFICATE"):
    text = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def pem_to_der_list(text):
    out = []
    for block in text.split("-----BEGIN CERTIFICATE-----")[1:]:
        body = block.split("-----END CERTIFICATE-----")[0]
        out.append(base64.b64decode("".join(body.split())))
    return out


# ---- openssl as an independent verifier ------------------------------------------------------

class OpenSSL:
    """Runs the openssl CLI in a scratch directory."""

    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self._n = itertools.count(1)  # next() on it is atomic: tmp() is thread safe

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return p

    def tmp(self, data, suffix=""):
        return self.write("f%d%s" % (next(self._n), suffix), data)

    def __call__(self, *args, input=None, check=True):
        return run(["openssl"] + list(args), input=input, check=check)

    def pubkey_from_cert(self, cert_der):
        """PEM public key taken out of a certificate (DER)."""
        cert = self.tmp(cert_der, ".der")
        return self("x509", "-inform", "DER", "-in", cert, "-noout", "-pubkey").stdout

    def spki_der_from_cert(self, cert_der):
        pub = self.tmp(self.pubkey_from_cert(cert_der), ".pem")
        return self("pkey", "-pubin", "-in", pub, "-outform", "DER").stdout

    def verify_digest_sig(self, pub_pem, hash_name, message, signature, pss_salt=None):
        """True if openssl accepts signature over message (openssl hashes it itself)."""
        pub = self.tmp(pub_pem, ".pem")
        msg = self.tmp(message, ".msg")
        sig = self.tmp(signature, ".sig")
        args = ["dgst", "-" + hash_name, "-verify", pub, "-signature", sig]
        if pss_salt is not None:
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt",
                     "rsa_pss_saltlen:%d" % pss_salt, "-sigopt", "rsa_mgf1_md:" + hash_name]
        args.append(msg)
        proc = self(*args, check=False)
        ok = proc.returncode == 0 and b"Verified OK" in proc.stdout
        return ok, (proc.stdout + proc.stderr).decode(errors="replace")


# ---- HTTP ------------------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    @property
    def error_code(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:400])


class _Conn(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 while verifying the certificate for 'localhost'."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname="localhost")


class ApiError(AssertionError):
    pass


# ---- the server ------------------------------------------------------------------------------

class Server:
    """A signum-server with its own throwaway state directory."""

    def __init__(self, ca_key_type=None, conf=None, start=True, name="signum"):
        self.root = tempfile.mkdtemp(prefix="signum-it-%s-" % name)
        # The database's name follows the temporary directory's, unique on this machine.
        self.pg_db = ("s_" + os.path.basename(self.root).replace("-", "_").lower()
                      if PG_ROOT else None)
        self.state = os.path.join(self.root, "state")
        self.admin_key_file = os.path.join(self.root, "admin.key")
        self.log_path = os.path.join(self.root, "serve.log")
        self.proc = None
        self.port = None
        self._log = None
        self._admin_token = None
        self.openssl = OpenSSL(os.path.join(self.root, "scratch"))
        try:
            self.init(ca_key_type)
            if conf:
                self.set_conf(conf)
            if start:
                self.start()
        except BaseException:
            self.cleanup()
            raise

    # -- paths
    @property
    def db_path(self):
        return os.path.join(self.state, "signum.db")

    @property
    def ca_cert_path(self):
        return os.path.join(self.state, "ca", "ca.crt")

    @property
    def conf_path(self):
        return os.path.join(self.state, "signum-server.conf")

    @property
    def run_json(self):
        return os.path.join(self.state, "run.json")

    def ca_pem(self):
        with open(self.ca_cert_path) as f:
            return f.read()

    def admin_api_key(self):
        with open(self.admin_key_file) as f:
            return f.read().strip()

    # -- lifecycle
    def init(self, ca_key_type=None):
        args = [SERVER_BIN, "init", "--state", self.state, "--admin-key-file",
                self.admin_key_file, "--port", "0"]
        if ca_key_type:
            args += ["--ca-key-type", ca_key_type]
        if self.pg_db:
            pg_harness.create_database(PG_ROOT, self.pg_db)
            args += ["--database", pg_harness.url(PG_ROOT, self.pg_db)]
        proc = run(args)
        self.init_output = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError("signum-server init failed (%d): %s %s" % (
                proc.returncode, self.init_output, proc.stderr.decode(errors="replace")))
        return proc

    def set_conf(self, settings):
        """Rewrites 'key = value' lines of signum-server.conf (appending unknown keys)."""
        with open(self.conf_path) as f:
            lines = f.read().splitlines()
        todo = dict(settings)
        for i, line in enumerate(lines):
            key = line.split("=", 1)[0].strip()
            if "=" in line and not line.lstrip().startswith("#") and key in todo:
                lines[i] = "%s = %s" % (key, todo.pop(key))
        lines += ["%s = %s" % kv for kv in todo.items()]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        if os.path.exists(self.run_json):
            os.unlink(self.run_json)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SERVER_BIN, "serve", "--state", self.state],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("signum-server serve exited %d during start-up\n%s" % (
                    self.proc.returncode, self.log()))
            try:
                with open(self.run_json) as f:
                    info = json.load(f)
                if info.get("pid") == self.proc.pid and info.get("port"):
                    self.port = int(info["port"])
                    self.run_info = info
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("signum-server did not write run.json within %.0f s\n%s" % (
            START_TIMEOUT, self.log()))

    def stop(self):
        """SIGTERM, bounded wait; returns the exit code, asserting it is 0."""
        rc = self.terminate()
        if rc != 0:
            raise AssertionError("signum-server exited %r after SIGTERM\n%s" % (rc, self.log()))
        return rc

    def terminate(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("signum-server did not stop within %.0f s of SIGTERM\n%s"
                                     % (STOP_TIMEOUT, self.log()))
        rc = self.proc.returncode
        self._close_log()
        return rc

    def kill(self):
        """Always safe: kills the process if it is still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def cleanup(self):
        self.kill()
        if os.environ.get("SIGNUM_KEEP_STATE"):
            sys.stderr.write("keeping %s\n" % self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self, tail=200):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "---- server log %s (last %d lines) ----\n%s\n---- end of server log ----" % (
            self.log_path, tail, "\n".join(lines[-tail:]))

    # -- HTTPS
    def ssl_context(self, cert=None):
        """cert: optional (certfile, keyfile) of a TLS client certificate (mTLS)."""
        ctx = ssl.create_default_context(cafile=self.ca_cert_path)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert is not None:
            ctx.load_cert_chain(cert[0], cert[1])
        return ctx

    def connection(self, timeout=HTTP_TIMEOUT, cert=None):
        return _Conn("localhost", self.port, context=self.ssl_context(cert), timeout=timeout)

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                conn=None, timeout=HTTP_TIMEOUT, cert=None):
        """One HTTPS exchange. body: a dict/list is sent as JSON; raw: bytes sent as is.
        headers: extra headers (a None value removes a default one). cert: a client
        certificate (certfile, keyfile) for a new connection."""
        hdrs = {}
        data = None
        if raw is not None:
            data = raw
            hdrs["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = "Bearer " + token
        for k, v in (headers or {}).items():
            hdrs.pop(k, None)
            for existing in list(hdrs):
                if existing.lower() == k.lower():
                    del hdrs[existing]
            if v is not None:
                hdrs[k] = v
        self.last_request = "%s %s" % (method, path.split("?")[0])
        own = conn is None
        c = conn or self.connection(timeout, cert)
        try:
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            resp = Response(r.status, r.getheaders(), r.read())
        finally:
            if own:
                c.close()
        return resp

    def raw_exchange(self, data, timeout=10.0):
        """Sends raw bytes over a fresh TLS connection and returns every byte received until
        the server closes the connection (or timeout seconds pass)."""
        self.last_request = " ".join(data.split(b"\r\n", 1)[0].decode("latin-1").split()[:2])
        sock = socket.create_connection(("127.0.0.1", self.port), timeout)
        tls = self.ssl_context().wrap_socket(sock, server_hostname="localhost")
        got = b""
        try:
            try:
                tls.sendall(data)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = tls.recv(65536)
                except socket.timeout:
                    break
                except (ConnectionResetError, ssl.SSLError, OSError):
                    break
                if not chunk:
                    break
                got += chunk
        finally:
            tls.close()
        return got

    def call(self, method, path, body=None, token=None, expect=200, **kw):
        r = self.request(method, path, body=body, token=token, **kw)
        if r.status != expect:
            raise ApiError("%s %s: expected %d, got %r" % (method, path, expect, r))
        return r.json

    # -- API helpers
    def token_for(self, api_key):
        return self.call("POST", "/api/v1/auth/token",
                         {"grant_type": "api_key", "api_key": api_key})["access_token"]

    def admin_token(self):
        if self._admin_token is None:
            self._admin_token = self.token_for(self.admin_api_key())
        return self._admin_token

    def create_user(self, name, role="signer"):
        return self.call("POST", "/api/v1/admin/users", {"name": name, "role": role},
                         token=self.admin_token(), expect=201)["api_key"]

    def create_key(self, name, type):
        return self.call("POST", "/api/v1/admin/keys", {"name": name, "type": type},
                         token=self.admin_token(), expect=201)

    def issue_cert(self, name, cn, **extra):
        body = {"common_name": cn}
        body.update(extra)
        return self.call("POST", "/api/v1/admin/keys/%s/certificate" % name, body,
                         token=self.admin_token(), expect=201)

    def grant(self, key, user):
        return self.call("POST", "/api/v1/admin/keys/%s/grants" % key, {"user": user},
                         token=self.admin_token(), expect=201)

    def disable(self, key, reason="test"):
        return self.call("POST", "/api/v1/admin/keys/%s/disable" % key, {"reason": reason},
                         token=self.admin_token(), expect=200)

    def get_key(self, name):
        return self.call("GET", "/api/v1/admin/keys/%s" % name, token=self.admin_token())

    def sign_request(self, token, key, mechanism, hash, digest=None, digests=None, cert=None,
                     **extra):
        """cert: a client certificate (certfile, keyfile) to send the request over mTLS."""
        body = {"key": key, "mechanism": mechanism, "hash": hash}
        if digest is not None:
            body["digest"] = b64(digest)
        if digests is not None:
            body["digests"] = [b64(d) for d in digests]
        body.update(extra)
        return self.request("POST", "/api/v1/sign", body, token=token, cert=cert)

    def sign(self, token, key, mechanism, hash, digest=None, digests=None, cert=None, **extra):
        r = self.sign_request(token, key, mechanism, hash, digest, digests, cert, **extra)
        if r.status != 200:
            raise ApiError("sign with %s/%s/%s: %r" % (key, mechanism, hash, r))
        return r.json

    def metrics(self):
        r = self.request("GET", "/metrics")
        assert r.status == 200, r
        out = {}
        for line in r.body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.split()
                out[name] = float(value)
        return out

    # -- offline tools
    def cli(self, *args, state=None):
        return run([SERVER_BIN] + list(args) + ["--state", state or self.state])

    def audit_verify(self, state=None):
        proc = self.cli("audit", "verify", state=state)
        return proc.returncode, proc.stdout.decode(errors="replace")

    def audit_show(self, after=0, state=None):
        """Records as dicts, from `audit show --json` (one JSON object per line)."""
        args = ["audit", "show", "--json"]
        if after:
            args += ["--after", str(after)]
        proc = self.cli(*args, state=state)
        if proc.returncode != 0:
            raise AssertionError("audit show failed: %s" % proc.stderr.decode(errors="replace"))
        lines = proc.stdout.decode().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def audit_last_seq(self):
        with self.db() as db:
            row = db.execute("SELECT max(seq) FROM audit").fetchone()
        return row[0] or 0

    def db(self, timeout=10.0):
        """A direct connection (autocommit mode) to the state's database: SQLite, or the
        server's PostgreSQL database through psql."""
        if self.pg_db:
            return _Closing(pg_harness.PgDb(PG_ROOT, self.pg_db))
        conn = sqlite3.connect(self.db_path, timeout=timeout, isolation_level=None)
        return _Closing(conn)

    def db_bytes(self):
        """Everything the database holds, as bytes (to show a secret is not in it): the SQLite
        files, or a pg_dump of the PostgreSQL database."""
        if self.pg_db:
            return pg_harness.dump(PG_ROOT, self.pg_db)
        data = b""
        for path in (self.db_path, self.db_path + "-wal"):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data += f.read()
        return data

    def writer_lock(self):
        """Holds the database's write lock from outside the server (a context manager): an
        exclusive SQLite transaction, or the PostgreSQL writer lock the nodes share."""
        if self.pg_db:
            return pg_harness.WriterLock(PG_ROOT, self.pg_db)
        return _SqliteLock(self.db_path)

    def state_db(self, state):
        """A connection to the database of a state directory (this one or a copy)."""
        if self.pg_db:
            return _Closing(pg_harness.PgDb(PG_ROOT, _conf_database_name(state)))
        conn = sqlite3.connect(os.path.join(state, "signum.db"), isolation_level=None, timeout=10)
        return _Closing(conn)

    def copy_state(self, dst):
        """A copy of the (stopped) server's state directory, with a copy of its database."""
        shutil.copytree(self.state, dst)
        if self.pg_db:
            name = "%s_c%d" % (self.pg_db, len(os.listdir(os.path.dirname(dst))))
            pg_harness.psql(PG_ROOT, "postgres",
                            'CREATE DATABASE "%s" TEMPLATE "%s"' % (name, self.pg_db))
            conf = os.path.join(dst, "signum-server.conf")
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace("/%s?" % self.pg_db, "/%s?" % name))
        return dst

    def db_snapshot(self):
        """Every row of every table except the audit log with its checkpoints (a timed one may
        fall due at any moment) and the usage counters (daily and hourly: they count refused
        sign requests, as the audit log records them), to check that nothing changed."""
        snap = {}
        skip = ("audit", "audit_checkpoints", "usage_daily", "usage_hourly")
        if self.pg_db:
            return pg_harness.PgDb(PG_ROOT, self.pg_db).snapshot(skip)
        with self.db() as db:
            tables = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            for t in tables:
                if t in skip:
                    continue
                snap[t] = sorted(db.execute("SELECT * FROM \"%s\"" % t).fetchall(), key=repr)
        return snap

    def hsm_env(self):
        env = dict(os.environ)
        env["SOFTHSM2_CONF"] = os.path.join(self.state, "hsm", "softhsm2.conf")
        return env

    def user_pin(self):
        with open(os.path.join(self.state, "hsm", "user.pin")) as f:
            return f.read().strip()


def _die_with_parent():
    """In the server child: get SIGKILL if the test process dies (even by SIGKILL, as on a
    ctest timeout), so no server outlives its test."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _conf_database_name(state):
    with open(os.path.join(state, "signum-server.conf")) as f:
        for line in f:
            if line.startswith("database"):
                return line.split("=", 1)[1].strip().split("?")[0].rsplit("/", 1)[1]
    raise RuntimeError("no database in %s" % state)


class _SqliteLock:
    def __init__(self, path):
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=10)

    def __enter__(self):
        self.conn.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *exc):
        try:
            self.conn.execute("ROLLBACK")
        finally:
            self.conn.close()
        return False


class _Closing:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        self.conn.close()
        return False


# ---- test-case base --------------------------------------------------------------------------

class ServerTestCase(unittest.TestCase):
    """One server per class (setUpClass); always killed, log printed on any failure."""

    server_options = {}
    server = None

    @classmethod
    def setUpClass(cls):
        opts = dict(cls.server_options)
        opts.setdefault("name", cls.__name__)
        cls.server = Server(**opts)
        cls.addClassCleanup(cls.server.cleanup)
        try:
            cls.prepare()
        except BaseException:
            sys.stderr.write("\n%s.prepare failed\n%s\n" % (cls.__name__, cls.server.log()))
            raise

    @classmethod
    def prepare(cls):
        """Per-class fixtures, with cls.server running."""

    @classmethod
    def tearDownClass(cls):
        # A clean SIGTERM stop with exit code 0: under -DSIGNUM_SANITIZE=ON a leak or memory
        # error found at exit makes the server exit non-zero, which fails the class here.
        if cls.server is None:
            return
        try:
            if cls.server.proc is not None and cls.server.proc.poll() is None:
                cls.server.stop()
            elif cls.server.proc is not None and cls.server.proc.returncode not in (0, None):
                raise AssertionError("signum-server exited %r during the tests\n%s"
                                     % (cls.server.proc.returncode, cls.server.log()))
        finally:
            cls.server.kill()

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result is not None else None
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            srv = type(self).server
            if srv is not None:
                sys.stderr.write("\n%s failed; server state %s\n%s\n" % (
                    self.id(), srv.root, srv.log()))
        return out

    # -- assertions shared by the test files
    def assertError(self, resp, status, code):
        self.assertEqual(resp.status, status, "expected %d %s, got %r" % (status, code, resp))
        self.assertEqual(resp.error_code, code, "expected code %s, got %r" % (code, resp))
        self.assertIsInstance(resp.json["error"].get("message"), str)
        self.assertTrue(resp.json["error"]["message"])
        self.assertNotIn("signature", resp.json)
        self.assertNotIn("signatures", resp.json)
