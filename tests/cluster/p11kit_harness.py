"""A networked HSM for tests: one SoftHSMv2 token exported by `p11-kit server` on a unix socket,
reached by every signum-server node through p11-kit-client.so (the RPC module of Debian's
p11-kit-modules), as nodes reach a Luna or nShield partition through its vendor client.

Reusable by the cluster tests:
  - make_softhsm_token (the "partition", made with the token's own tool), P11KitServer
    (start; kill = HSM outage; start again = the HSM back), client_module();
  - NetworkHsmNode: a node whose `signum-server init` goes through the remote token
    (--hsm-token, --hsm-pin-file); SharedTokenNode: a second node whose state starts as a copy
    of the first's (same CA, audit key and admin key; its own SQLite database until the shared
    PostgreSQL);
  - TlsPki and SocatTunnel: the socket carried over mutual TLS, as the Kubernetes sidecar does;
  - RemoteToken: PKCS#11 through ctypes (an independent client of the remote token: attributes,
    sensitive values), and pkcs11-tool through the client module.

Standard library only; needs p11-kit, p11-kit-modules, opensc (and socat for the tunnel).
"""

import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from signum_harness import SERVER_BIN, SOFTHSM_MODULE, Server, run  # noqa: E402

P11_KIT = shutil.which("p11-kit")
PKCS11_TOOL = shutil.which("pkcs11-tool")
SOCKET_TIMEOUT = 10.0
SOCAT = shutil.which("socat")


def client_module():
    """Path of p11-kit-client.so (multiarch directory on Debian), or None."""
    found = sorted(glob.glob("/usr/lib/*/pkcs11/p11-kit-client.so") +
                   glob.glob("/usr/lib/pkcs11/p11-kit-client.so") +
                   glob.glob("/usr/lib64/pkcs11/p11-kit-client.so"))
    return found[0] if found else None


def available():
    """Why the networked token cannot be made here, or None if it can."""
    if not P11_KIT:
        return "the p11-kit command is missing (Debian package p11-kit)"
    if not client_module():
        return "p11-kit-client.so is missing (Debian package p11-kit-modules)"
    if not PKCS11_TOOL:
        return "pkcs11-tool is missing (Debian package opensc)"
    return None


def conf_value(conf_path, key, default=None):
    with open(conf_path) as f:
        for line in f:
            if "=" in line and line.split("=", 1)[0].strip() == key:
                return line.split("=", 1)[1].strip()
    return default


class P11KitServer:
    """`p11-kit server` exporting one SoftHSMv2 token on a unix socket."""

    def __init__(self, softhsm_conf, token, sock):
        self.env = dict(os.environ)
        self.env["SOFTHSM2_CONF"] = softhsm_conf
        self.token = token
        self.sock = sock
        self.proc = None

    @property
    def address(self):
        """The value of P11_KIT_SERVER_ADDRESS for the clients."""
        return "unix:path=%s" % self.sock

    def start(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = subprocess.Popen(
            [P11_KIT, "server", "-f", "--provider", SOFTHSM_MODULE, "-n", self.sock,
             "pkcs11:token=%s" % self.token],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_for(self.sock, self.proc, "p11-kit server")

    def kill(self):
        """The server forks one child per client connection, which holds the token: the
        outage is the whole process group (ours alone: it has its own session)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self.proc = None


def make_softhsm_token(directory, label, pin, so_pin="12345678"):
    """A SoftHSMv2 token made with its own tool (as an HSM partition is made with the vendor's),
    in directory; returns the SOFTHSM2_CONF path for the p11-kit server."""
    tokens = os.path.join(directory, "tokens")
    os.makedirs(tokens)
    conf = os.path.join(directory, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                % tokens)
    env = dict(os.environ)
    env["SOFTHSM2_CONF"] = conf
    run(["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", so_pin,
         "--pin", pin], env=env, check=True)
    return conf


class NetworkHsmNode(Server):
    """A node whose `signum-server init` already goes through the network HSM: the token exists
    (hsm: a P11KitServer), init is given its label and user PIN and initialises nothing."""

    def __init__(self, hsm, pin, name="node1", **kw):
        self._hsm = hsm
        self._pin = pin
        super().__init__(name=name, **kw)

    def init(self, ca_key_type=None):
        pin_file = os.path.join(self.root, "hsm-user.pin")
        with open(os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(self._pin + "\n")
        env = dict(os.environ)
        env["P11_KIT_SERVER_ADDRESS"] = self._hsm.address
        args = [SERVER_BIN, "init", "--state", self.state, "--admin-key-file",
                self.admin_key_file, "--port", "0", "--hsm-module", client_module(),
                "--hsm-token", self._hsm.token, "--hsm-pin-file", pin_file]
        if ca_key_type:
            args += ["--ca-key-type", ca_key_type]
        proc = run(args, env=env)
        self.init_output = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError("signum-server init on the network HSM failed (%d): %s %s" % (
                proc.returncode, self.init_output, proc.stderr.decode(errors="replace")))
        return proc


def _wait_for(path, proc, what):
    deadline = time.monotonic() + SOCKET_TIMEOUT
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError("%s exited %d" % (what, proc.returncode))
        if time.monotonic() > deadline:
            raise AssertionError("%s made no %s within %.0f s" % (what, path, SOCKET_TIMEOUT))
        time.sleep(0.02)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TlsPki:
    """A throwaway CA with a server certificate for 127.0.0.1 and client certificates, made
    with the openssl command line (for the socat tunnel's mutual TLS)."""

    def __init__(self, directory, name="tunnel"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_key, self.ca = self.p("%s-ca.key" % name), self.p("%s-ca.crt" % name)
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
             "-subj", "/CN=%s test CA" % name], check=True)

    def p(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, server=False):
        """(cert, key) paths; a server certificate names 127.0.0.1."""
        key, csr, crt, ext = (self.p(name + s) for s in (".key", ".csr", ".crt", ".ext"))
        with open(ext, "w") as f:
            f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\n" if server else
                    "extendedKeyUsage = clientAuth\n")
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name], check=True)
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
             "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext], check=True)
        return crt, key


class SocatTunnel:
    """The p11-kit socket carried over mutual TLS, as deploy/kubernetes/deployment.yaml's
    hsm-tunnel sidecar does: a gateway (OPENSSL-LISTEN on 127.0.0.1 -> the p11-kit server's
    socket) and, per node, a local socket (UNIX-LISTEN -> OPENSSL to the gateway)."""

    def __init__(self):
        self.procs = []

    def _spawn(self, args, wait_path=None):
        proc = subprocess.Popen([SOCAT] + args, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        self.procs.append(proc)
        if wait_path:
            _wait_for(wait_path, proc, "socat")
        return proc

    def gateway(self, pki, target_sock):
        """Listens on a free 127.0.0.1 port; returns it."""
        crt, key = pki.issue("gateway", server=True)
        port = _free_port()
        proc = self._spawn(["OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s,key=%s,"
                            "cafile=%s,verify=1" % (port, crt, key, pki.ca),
                            "UNIX-CONNECT:%s" % target_sock])
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while True:  # listening once a connection is accepted
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return port
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the socat gateway does not listen on %d" % port)
                time.sleep(0.02)

    def local_end(self, pki, port, sock, client_name="node", client_pki=None):
        """The node's side: a unix socket (mode 0600) carried to the gateway, which it checks
        against pki's CA; its client certificate comes from client_pki (default: pki; another
        TlsPki's is refused by the gateway)."""
        crt, key = (client_pki or pki).issue(client_name)
        self._spawn(["UNIX-LISTEN:%s,fork,mode=600" % sock,
                     "OPENSSL:127.0.0.1:%d,cert=%s,key=%s,cafile=%s,verify=1"
                     % (port, crt, key, pki.ca)], wait_path=sock)
        return "unix:path=%s" % sock

    def stop(self):
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
            proc.stderr.close()
        self.procs = []


class SharedTokenNode(Server):
    """Another node on the same token: its state directory is a copy of `source`'s, taken while
    `source` is stopped (its SQLite files consistent), minus the SoftHSMv2 token files, so that
    it can reach the token only through the network. Same CA, audit key and admin API key."""

    def __init__(self, source, name="node2", **kw):
        self._source = source
        super().__init__(name=name, start=False, **kw)

    def init(self, ca_key_type=None):
        assert self._source.proc is None or self._source.proc.poll() is not None, \
            "copy the first node's state while it is stopped"
        shutil.copytree(self._source.state, self.state, symlinks=True,
                        ignore=shutil.ignore_patterns("run.json", "serve.lock", "tokens"))
        shutil.copyfile(self._source.admin_key_file, self.admin_key_file)
        self.init_output = ""


# PKCS#11 through ctypes (standard library): p11-kit-client.so exports only C_GetFunctionList,
# so the calls go through CK_FUNCTION_LIST, whose slots follow this order (PKCS#11 2.40).
_FUNCTIONS = ["C_Initialize", "C_Finalize", "C_GetInfo", "C_GetFunctionList", "C_GetSlotList",
              "C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo",
              "C_InitToken", "C_InitPIN", "C_SetPIN", "C_OpenSession", "C_CloseSession",
              "C_CloseAllSessions", "C_GetSessionInfo", "C_GetOperationState",
              "C_SetOperationState", "C_Login", "C_Logout", "C_CreateObject", "C_CopyObject",
              "C_DestroyObject", "C_GetObjectSize", "C_GetAttributeValue",
              "C_SetAttributeValue", "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal"]

CKR_OK = 0
CKR_ATTRIBUTE_SENSITIVE = 0x11
CKO_PRIVATE_KEY = 3
CKA_CLASS, CKA_LABEL, CKA_VALUE, CKA_ID = 0x0, 0x3, 0x11, 0x102
CKA_SENSITIVE, CKA_SIGN, CKA_PRIVATE_EXPONENT = 0x103, 0x108, 0x123
CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE = 0x162, 0x164, 0x165
CKF_SERIAL_SESSION = 0x4
CKU_USER = 1


_P, _U = ctypes.c_void_p, ctypes.c_ulong
_SIGS = {
    "C_Initialize": (_P,), "C_Finalize": (_P,), "C_GetSlotList": (ctypes.c_ubyte, _P, _P),
    "C_GetTokenInfo": (_U, _P), "C_OpenSession": (_U, _U, _P, _P, _P), "C_CloseSession": (_U,),
    "C_Login": (_U, _U, _P, _U), "C_FindObjectsInit": (_U, _P, _U),
    "C_FindObjects": (_U, _P, _U, _P), "C_FindObjectsFinal": (_U,),
    "C_GetAttributeValue": (_U, _U, _P, _U), "C_SetAttributeValue": (_U, _U, _P, _U),
}


def _addr(obj):
    return ctypes.addressof(obj)


class _Attr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_ulong), ("pValue", ctypes.c_void_p),
                ("ulValueLen", ctypes.c_ulong)]


class _FunctionList(ctypes.Structure):
    _fields_ = [("version", ctypes.c_ubyte * 2)] + [(n, ctypes.c_void_p) for n in _FUNCTIONS]


class RemoteToken:
    """A PKCS#11 client of the network HSM, independent of signum-server: p11-kit-client.so
    loaded here with P11_KIT_SERVER_ADDRESS. One login per `with` block."""

    def __init__(self, address, token, pin):
        self.address = address
        self.token = token
        self.pin = pin
        self.env = dict(os.environ)
        self.env["P11_KIT_SERVER_ADDRESS"] = address
        self._lib = None
        self._fl = None
        self.session = None

    def call(self, name, *args):
        """One PKCS#11 call: ints are CK_ULONGs, pointers are passed as addresses (ints) or
        None; the argument kinds come from _SIGS."""
        proto = ctypes.CFUNCTYPE(ctypes.c_ulong, *_SIGS[name])
        return proto(getattr(self._fl.contents, name))(*args)

    def __enter__(self):
        # p11-kit-client.so reads the address from the environment in C_Initialize; the
        # caller's value comes back in __exit__.
        self._saved_address = os.environ.get("P11_KIT_SERVER_ADDRESS")
        os.environ["P11_KIT_SERVER_ADDRESS"] = self.address
        self._lib = ctypes.CDLL(client_module())
        self._fl = ctypes.POINTER(_FunctionList)()
        rv = self._lib.C_GetFunctionList(ctypes.byref(self._fl))
        assert rv == CKR_OK, "C_GetFunctionList 0x%x" % rv
        rv = self.call("C_Initialize", None)
        if rv != CKR_OK:
            self._restore_address()
            raise AssertionError("C_Initialize 0x%x through %s" % (rv, self.address))
        try:
            return self._open()
        except BaseException:
            self.call("C_Finalize", None)
            self._restore_address()
            raise

    def _restore_address(self):
        if self._saved_address is None:
            os.environ.pop("P11_KIT_SERVER_ADDRESS", None)
        else:
            os.environ["P11_KIT_SERVER_ADDRESS"] = self._saved_address

    def _open(self):
        count = ctypes.c_ulong(0)
        self.call("C_GetSlotList", 1, None, _addr(count))
        slots = (ctypes.c_ulong * max(1, count.value))()
        self.call("C_GetSlotList", 1, _addr(slots), _addr(count))
        want = self.token.encode().ljust(32)
        slot = None
        for i in range(count.value):
            info = ctypes.create_string_buffer(512)  # CK_TOKEN_INFO starts with its label
            if self.call("C_GetTokenInfo", slots[i], _addr(info)) == CKR_OK and \
                    info.raw[:32] == want:
                slot = slots[i]
        assert slot is not None, "no token %r through %s" % (self.token, self.address)
        h = ctypes.c_ulong(0)
        rv = self.call("C_OpenSession", slot, CKF_SERIAL_SESSION, None, None, _addr(h))
        assert rv == CKR_OK, "C_OpenSession 0x%x" % rv
        self.session = h.value
        pin = ctypes.create_string_buffer(self.pin.encode())
        rv = self.call("C_Login", self.session, CKU_USER, _addr(pin), len(self.pin.encode()))
        assert rv == CKR_OK, "C_Login 0x%x" % rv
        return self

    def __exit__(self, *exc):
        self.call("C_CloseSession", self.session)
        self.call("C_Finalize", None)
        self.session = None
        self._restore_address()
        return False

    def find_private_key(self, id_hex=None, label=None):
        """Handles of the private keys with this CKA_ID (hex) and/or CKA_LABEL (at most 8)."""
        cls = ctypes.c_ulong(CKO_PRIVATE_KEY)
        attrs = [_Attr(CKA_CLASS, _addr(cls), ctypes.sizeof(cls))]
        keep = []
        for attr, value in ((CKA_ID, bytes.fromhex(id_hex) if id_hex else None),
                            (CKA_LABEL, label.encode() if label else None)):
            if value is not None:
                buf = ctypes.create_string_buffer(value, len(value))
                keep.append(buf)
                attrs.append(_Attr(attr, _addr(buf), len(value)))
        tmpl = (_Attr * len(attrs))(*attrs)
        rv = self.call("C_FindObjectsInit", self.session, _addr(tmpl), len(attrs))
        assert rv == CKR_OK, "C_FindObjectsInit 0x%x" % rv
        objs = (ctypes.c_ulong * 8)()
        n = ctypes.c_ulong(0)
        rv = self.call("C_FindObjects", self.session, _addr(objs), 8, _addr(n))
        self.call("C_FindObjectsFinal", self.session)
        assert rv == CKR_OK, "C_FindObjects 0x%x" % rv
        return list(objs[:n.value])

    def get_bool(self, obj, attr):
        """(rv, value) of one CK_BBOOL attribute."""
        v = ctypes.c_ubyte(0xff)
        a = (_Attr * 1)(_Attr(attr, _addr(v), 1))
        rv = self.call("C_GetAttributeValue", self.session, obj, _addr(a), 1)
        return rv, bool(v.value)

    def get_value(self, obj, attr):
        """(rv, bytes or None): the length query, then the value if the token gives one."""
        a = (_Attr * 1)(_Attr(attr, None, 0))
        rv = self.call("C_GetAttributeValue", self.session, obj, _addr(a), 1)
        if rv != CKR_OK:
            return rv, None
        buf = ctypes.create_string_buffer(max(1, a[0].ulValueLen))
        a[0].pValue = _addr(buf)
        rv = self.call("C_GetAttributeValue", self.session, obj, _addr(a), 1)
        return rv, (buf.raw[:a[0].ulValueLen] if rv == CKR_OK else None)

    def set_bool(self, obj, attr, value):
        v = ctypes.c_ubyte(1 if value else 0)
        a = (_Attr * 1)(_Attr(attr, _addr(v), 1))
        return self.call("C_SetAttributeValue", self.session, obj, _addr(a), 1)

    def tool(self, *args, check=True):
        """pkcs11-tool through the client module."""
        return run([PKCS11_TOOL, "--module", client_module(), "--token-label", self.token,
                    "--login", "--pin", self.pin] + list(args), env=self.env, check=check)
