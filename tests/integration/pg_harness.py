"""A real PostgreSQL server for the tests, and a small SQL client over psql.

`pg_harness.py start DIR` runs initdb and pg_ctl in DIR (as the `postgres` system user when
run as root: PostgreSQL refuses to run as root), listening on a unix socket in DIR and on
127.0.0.1 at a free port (written to DIR/port); `stop DIR` stops it. Tests find it through
$SIGNUM_TEST_PG (= DIR): then every Server of signum_harness gets a database of its own
there, created empty, and `signum-server init --database` fills it.

Standard library only: SQL goes through the psql command-line client.
"""

import os
import re
import shutil
import socket
import subprocess
import sys

PG_BIN = "/usr/lib/postgresql/15/bin"
SUPERUSER = "signum"
NULL = "\x01NULL\x01"
FIELD, RECORD = "\x1f", "\x1e"


def pg_bin(name):
    for d in sorted((p for p in os.listdir("/usr/lib/postgresql")), reverse=True) \
            if os.path.isdir("/usr/lib/postgresql") else []:
        path = os.path.join("/usr/lib/postgresql", d, "bin", name)
        if os.path.exists(path):
            return path
    return shutil.which(name) or os.path.join(PG_BIN, name)


# The client itself, not Debian's perl wrapper: tests call it often.
PSQL = pg_bin("psql")


def _as_owner(args):
    return ["runuser", "-u", "postgres", "--"] + args if os.geteuid() == 0 else args


def start(root):
    """initdb + pg_ctl start in root; returns the socket directory (root itself)."""
    root = os.path.abspath(root)
    data = os.path.join(root, "data")
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        stop(root)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        # The postgres user must reach it through our (private) temporary directories.
        parent = os.path.dirname(root)
        while parent not in ("/", "/tmp") and os.stat(parent).st_uid == 0:
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
            parent = os.path.dirname(parent)
    subprocess.run(_as_owner([pg_bin("initdb"), "-D", data, "-U", SUPERUSER, "--auth=trust",
                              "-E", "UTF8", "--locale=C"]),
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write("listen_addresses = '127.0.0.1'\nport = %d\n" % port)
        f.write("unix_socket_directories = '%s'\nmax_connections = 300\n" % root)
        # Durable commits, as in production: the benchmark compares like with like.
        f.write("fsync = on\nsynchronous_commit = on\n")
    subprocess.run(_as_owner([pg_bin("pg_ctl"), "-D", data, "-l", os.path.join(root, "log"),
                              "-w", "-t", "60", "start"]),
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    with open(os.path.join(root, "port"), "w") as f:
        f.write(str(port))
    return root


def stop(root):
    data = os.path.join(os.path.abspath(root), "data")
    if os.path.exists(data):
        subprocess.run(_as_owner([pg_bin("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def _port(root):
    with open(os.path.join(root, "port")) as f:
        return f.read().strip()


def url(root, dbname):
    """The URL signum-server is configured with (unix socket: no password needed)."""
    return "postgresql://%s@/%s?host=%s&port=%s" % (SUPERUSER, dbname, os.path.abspath(root),
                                                   _port(root))


def tcp_url(root, dbname):
    return "postgresql://%s@127.0.0.1:%s/%s" % (SUPERUSER, _port(root), dbname)


def psql(root, dbname, sql):
    proc = subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-F", FIELD, "-R", RECORD, "-P", "null=" + NULL,
                           url(root, dbname), "-c", sql],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("psql: %s" % proc.stderr.decode(errors="replace").strip())
    return proc.stdout.decode()


def copy_rows(root, src_db, dst_db, tables):
    """Copies rows from one database to another in one transaction: {table: [column]} (COPY
    out of each table, then a script of COPY ... FROM STDIN as pg_dump writes it, with the
    foreign keys unchecked, as the rows come in table by table)."""
    script = [b"SET session_replication_role = replica;\n"]
    for table, columns in tables.items():
        cols = ", ".join('"%s"' % c for c in columns)
        proc = subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", url(root, src_db),
                               "-c", 'COPY "%s"(%s) TO STDOUT' % (table, cols)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError("psql: %s" % proc.stderr.decode(errors="replace").strip())
        script += [('COPY "%s"(%s) FROM STDIN;\n' % (table, cols)).encode(), proc.stdout,
                   b"\\.\n"]
    proc = subprocess.run([PSQL, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", url(root, dst_db),
                           "-f", "-"], input=b"".join(script), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("psql: %s" % proc.stderr.decode(errors="replace").strip())


def create_database(root, dbname):
    psql(root, "postgres", 'CREATE DATABASE "%s"' % dbname)


def dump(root, dbname):
    proc = subprocess.run(["pg_dump", "--no-owner", url(root, dbname)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("pg_dump: %s" % proc.stderr.decode(errors="replace").strip())
    return proc.stdout


# The writer lock of signum-server's nodes (store/conn.c: pg_advisory_xact_lock).
WRITER_LOCK_KEY = 1397182029


class WriterLock:
    """Holds the nodes' writer lock from a psql session until the with-block ends."""

    def __init__(self, root, dbname):
        self.proc = subprocess.Popen([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                      url(root, dbname)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)

    def __enter__(self):
        self.proc.stdin.write("BEGIN;\nSELECT pg_advisory_xact_lock(%d);\n\\echo locked\n"
                              % WRITER_LOCK_KEY)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        while line and "locked" not in line:
            line = self.proc.stdout.readline()
        if "locked" not in line:
            raise RuntimeError("psql could not take the writer lock")
        return self

    def __exit__(self, *exc):
        self.proc.stdin.write("ROLLBACK;\n\\q\n")
        self.proc.stdin.flush()
        self.proc.stdin.close()
        self.proc.wait(30)
        return False


def _literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    return "'%s'" % str(v).replace("'", "''")


def _value(text):
    if text == NULL:
        return None
    if text in ("t", "f"):  # a boolean, which SQLite gives as 1 or 0
        return 1 if text == "t" else 0
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"\\x[0-9a-f]*", text):
        return bytes.fromhex(text[2:])
    return text


class _Result:
    def __init__(self, rows, rowcount):
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return list(self.rows)

    def __iter__(self):
        return iter(self.rows)


class PgDb:
    """What the tests use of sqlite3's connection: execute(sql, params) with ? placeholders,
    fetchone/fetchall; integers, bytes, text and None come back as sqlite3 gives them."""

    def __init__(self, root, dbname):
        self.root, self.dbname = root, dbname

    def execute(self, sql, params=()):
        params = list(params)
        out, i = [], 0
        for part in re.split(r"(\?\d*)", sql):
            if part == "?":
                out.append(_literal(params[i]))
                i += 1
            elif part.startswith("?"):  # ?N, as sqlite3 numbers them
                out.append(_literal(params[int(part[1:]) - 1]))
            else:
                out.append(part)
        text = "".join(out)
        sql_text = text.strip().rstrip(";")
        # psql prints rows for a query; for a write, RETURNING 1 counts what it changed.
        is_write = re.match(r"(?is)\s*(UPDATE|DELETE|INSERT)\b", sql_text) is not None
        if is_write and not re.search(r"(?i)\bRETURNING\b", sql_text):
            sql_text += " RETURNING 1"
        raw = psql(self.root, self.dbname, sql_text)
        if raw.endswith("\n"):  # psql ends its output with one newline
            raw = raw[:-1]
        rows = [tuple(_value(f) for f in r.split(FIELD)) for r in raw.split(RECORD) if r != ""]
        return _Result(rows, len(rows))

    def close(self):
        pass

    def snapshot(self, skip):
        """{table: sorted rows} of every table but those in skip, in one query: each table's
        rows as one JSON array (JSON text has no raw newlines to confuse the parsing)."""
        import json
        tables = [t for t in self.tables() if t not in skip]
        sql = " UNION ALL ".join(
            "SELECT '%s', coalesce((SELECT json_agg(x)::text FROM \"%s\" x), '[]')" % (t, t)
            for t in tables)
        out = {}
        for name, rows in self.execute(sql):
            conv = []
            for row in json.loads(rows):
                conv.append(tuple(_value(v) if isinstance(v, str) else v for v in row.values()))
            out[name] = sorted(conv, key=repr)
        return out

    def tables(self):
        return [r[0] for r in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_name <> 'signum_schema' ORDER BY table_name")]


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: pg_harness.py start|stop DIR")
    if sys.argv[1] == "start":
        print("PostgreSQL at", start(sys.argv[2]))
    else:
        stop(sys.argv[2])
