"""Raw-socket clients for the connection fault tests: TLS over memory BIOs on plain sockets (so
a test can drip a handshake byte by byte, or watch for the server's close on many sockets with
one select()), loopback source addresses, and process CPU and log figures."""

import os
import select
import socket
import ssl
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def connect(port, src="127.0.0.1", timeout=10.0):
    """A TCP connection to the server from the loopback address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


class Tls:
    """A TLS client over a plain socket; bytes move only when the caller says so."""

    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")

    def client_hello(self):
        """The bytes of the ClientHello, without sending them."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def handshake(self, deadline):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("server closed during the handshake")
                self.inc.write(data)

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def send_plain(self, data):
        self.obj.write(data)
        self.flush()

    def read_until_close(self, deadline):
        """Plaintext received until the server closes (or deadline)."""
        got = b""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not data:
                break
            self.inc.write(data)
            while True:
                try:
                    got += self.obj.read(65536)
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    break
        return got


def tls_connect(port, ctx, src="127.0.0.1", timeout=10.0):
    t = Tls(connect(port, src, timeout), ctx)
    t.handshake(time.monotonic() + timeout)
    return t


def https_get(port, ctx, path, src="127.0.0.1", timeout=10.0):
    """One GET on a new connection; (status, body) or raises."""
    t = tls_connect(port, ctx, src, timeout)
    try:
        t.send_plain(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                      % path).encode())
        raw = t.read_until_close(time.monotonic() + timeout)
    finally:
        t.sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        raise ConnectionError("no response")
    return int(head.split()[1]), body


def metrics(port, ctx, src="127.0.0.250"):
    status, body = https_get(port, ctx, "/metrics", src)
    assert status == 200, (status, body)
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            out[name] = float(value)
    return out


def peer_closed(sock):
    """Whether the server closed this socket (EOF or reset); data is read and dropped."""
    try:
        data = sock.recv(65536)
    except (BlockingIOError, socket.timeout):
        return False
    except OSError:
        return True
    return not data


def wait_closed(socks, deadline):
    """Watches sockets until each is closed by the server or deadline passes; returns
    {sock: monotonic close time} for those that were closed."""
    closed = {}
    by_fd = {s.fileno(): s for s in socks}
    poller = select.poll()
    for s in socks:
        s.setblocking(False)
        poller.register(s, select.POLLIN)
    while len(closed) < len(socks) and time.monotonic() < deadline:
        wait_ms = int(min(0.2, max(0, deadline - time.monotonic())) * 1000)
        now = None
        for fd, _ in poller.poll(wait_ms):
            now = now or time.monotonic()
            s = by_fd[fd]
            if s not in closed and peer_closed(s):
                closed[s] = now
                poller.unregister(fd)
    return closed


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]
