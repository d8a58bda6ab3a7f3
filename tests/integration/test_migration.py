"""Upgrading a database from an older schema to the current one: the current signum-server
opens an old database holding users, keys, a grant and a policy rule, migrates it, and signing
with the grant and with the rule, the key listings and the projects that came later all work
on it. On SQLite the old database is of schema version 10 (before projects); on PostgreSQL
(SIGNUM_TEST_PG) of version 13, the schema PostgreSQL came at: no older one ever existed."""

import json
import os
import re
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_harness  # noqa: E402
from signum_harness import HASHES, PG_ROOT, Server, ecdsa_raw_to_der, unb64  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_C = os.path.join(ROOT, "server", "src", "store", "schema.c")
DB_H = os.path.join(ROOT, "server", "src", "store", "db.h")
BEFORE_PROJECTS = 10  # the SQLite step 10 -> 11 created the projects table
MESSAGE = b"signed after the upgrade"
DIGEST = HASHES["sha256"](MESSAGE).digest()


def c_array(name):
    """The initializer of the array `name` in schema.c as Python values: adjacent string
    literals and the file's string macros (#define T "...") joined, integers, {...} as lists."""
    with open(SCHEMA_C) as f:
        text = f.read()
    macros = {m.group(1): m.group(2).encode().decode("unicode_escape") for m in re.finditer(
        r'^#define (\w+)\s+"((?:[^"\\]|\\.)*)"\s*$', text, re.M)}
    body = re.split(r"\b%s\[\] = \{" % name, text, maxsplit=1)[1].split("\n};", 1)[0]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    tokens = re.finditer(r'"((?:[^"\\]|\\.)*)"|(\d+)|(\w+)|([{},])|(\S)', body)

    def element(pieces):
        if all(isinstance(p, str) for p in pieces):
            return "".join(pieces)
        if len(pieces) != 1:
            raise AssertionError("cannot join %r in %s" % (pieces, name))
        return pieces[0]

    def items():
        out, pieces = [], []
        for token in tokens:
            literal, number, ident, punct, other = token.groups()
            if other or (ident and ident not in macros):
                raise AssertionError("unexpected token %r in %s" % (token.group(0), name))
            if punct == "{":
                pieces.append(items())
            elif punct == "}":
                break
            elif punct == ",":
                out.append(element(pieces))
                pieces = []
            elif number:
                pieces.append(int(number))
            else:
                pieces.append(macros[ident] if ident else
                              literal.encode().decode("unicode_escape"))
        if pieces:
            out.append(element(pieces))
        return out

    return items()


def schema_version():
    with open(DB_H) as f:
        return int(re.search(r"#define SRV_DB_SCHEMA_VERSION (\d+)", f.read()).group(1))


def migration_steps(pg):
    """[(version, sql)] of the engine's migrations, each bringing the schema to version. They
    are append-only: the first ones are the SQL that made every database of an old version."""
    if pg:
        steps = [tuple(step) for step in c_array("pg_steps")]
    else:
        steps = list(enumerate(c_array("sqlite_steps"), 1))
    assert steps[-1][0] == schema_version(), steps[-1][0]
    return steps


def created_later(steps):
    """The tables and the (table, column)s the steps create."""
    sql = "".join(s for _, s in steps)
    return (set(re.findall(r"CREATE TABLE (\w+)", sql)),
            set(re.findall(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", sql)))


class OldSqlite:
    """The old database as a new SQLite file beside the server's, swapped in for it."""

    def __init__(self, server):
        self.server, self.path = server, os.path.join(server.root, "old.db")
        self.db = sqlite3.connect(self.path, isolation_level=None)

    def run_step(self, version, sql):
        self.db.executescript("BEGIN;" + sql + ";PRAGMA user_version = %d;COMMIT;" % version)

    def version(self):
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def tables(self):
        return [r[0] for r in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]

    def columns(self, table, schema="main"):
        return [r[1] for r in self.db.execute('PRAGMA %s.table_info("%s")' % (schema, table))]

    def copy_rows(self, tables):
        self.db.execute("ATTACH DATABASE ? AS cur", (self.server.db_path,))
        self.db.execute("BEGIN")
        for t in tables:
            cur = self.columns(t, "cur")
            cols = ", ".join('"%s"' % c for c in self.columns(t) if c in cur)
            self.db.execute('INSERT INTO main."%s"(%s) SELECT %s FROM cur."%s"'
                            % (t, cols, cols, t))
        self.db.execute("COMMIT")
        self.db.execute("DETACH DATABASE cur")

    def swap_in(self):
        self.db.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.server.db_path + suffix):
                os.unlink(self.server.db_path + suffix)
        os.rename(self.path, self.server.db_path)


class OldPg:
    """The old database as a new PostgreSQL database, renamed to the server's."""

    def __init__(self, server):
        self.server, self.name = server, server.pg_db + "_old"
        pg_harness.create_database(PG_ROOT, self.name)
        self.db = pg_harness.PgDb(PG_ROOT, self.name)

    def run_step(self, version, sql):
        pg_harness.psql(PG_ROOT, self.name, sql + ";CREATE TABLE IF NOT EXISTS signum_schema("
                        "version BIGINT NOT NULL);INSERT INTO signum_schema VALUES(%d)" % version)

    def version(self):
        return self.db.execute("SELECT max(version) FROM signum_schema").fetchone()[0]

    def tables(self):
        return self.db.tables()

    def columns(self, table, db=None):
        return [r[0] for r in (db or self.db).execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name = ? ORDER BY ordinal_position", (table,))]

    def copy_rows(self, tables):
        cur_db = pg_harness.PgDb(PG_ROOT, self.server.pg_db)
        copied = {}
        for t in tables:
            cur = self.columns(t, cur_db)
            copied[t] = [c for c in self.columns(t) if c in cur]
        pg_harness.copy_rows(PG_ROOT, self.server.pg_db, self.name, copied)
        # The identity columns go on after the copied ids, as a server's own inserts leave them.
        for t, c in self.db.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND is_identity = 'YES'"):
            self.db.execute("SELECT setval(pg_get_serial_sequence('\"%s\"', '%s'),"
                            " coalesce(max(\"%s\"), 0) + 1, false) FROM \"%s\"" % (t, c, c, t))

    def swap_in(self):
        pg_harness.psql(PG_ROOT, "postgres", 'DROP DATABASE "%s"' % self.server.pg_db)
        pg_harness.psql(PG_ROOT, "postgres", 'ALTER DATABASE "%s" RENAME TO "%s"'
                        % (self.name, self.server.pg_db))


def current_version(db, pg):
    sql = "SELECT max(version) FROM signum_schema" if pg else "PRAGMA user_version"
    return db.execute(sql).fetchone()[0]


class MigrationTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(ca_key_type="ec-p256", name="migration")
        self.addCleanup(self.server.cleanup)
        self.pg = self.server.pg_db is not None
        self.assertEqual(self.pg, PG_ROOT is not None)

    def build_old_database(self):
        """The old database: the old steps run on an empty one, then the rows the server made
        (users and their API keys, the CA, HSM-backed keys and certificates, the audit log)
        copied in, column by column as far as the old version had the column; it replaces the
        (stopped) server's database."""
        steps = migration_steps(self.pg)
        old_version = steps[0][0] if self.pg else BEFORE_PROJECTS
        old = (OldPg if self.pg else OldSqlite)(self.server)
        for version, sql in steps:
            if version <= old_version:
                old.run_step(version, sql)
        self.assertEqual(old.version(), old_version)
        tables = old.tables()
        later_tables, later_columns = created_later(s for s in steps if s[0] > old_version)
        self.assertTrue(later_tables, "no step after version %d creates a table" % old_version)
        self.assertFalse(later_tables & set(tables), tables)
        for table, column in later_columns:
            if table in tables:
                self.assertNotIn(column, old.columns(table), table)
        if not self.pg:
            self.assertIn("projects", later_tables)
        old.copy_rows(tables)
        old.swap_in()
        return old_version

    def add_old_rows(self, now):
        """The grant and the policy rule as an old server stored them (the rule's document
        canonical: keys sorted, no spaces)."""
        rule = {"name": "bob-may-sign", "effect": "allow", "priority": 10,
                "subjects": {"users": ["bob"]}, "keys": {"names": ["mig-rule"]}}
        doc = json.dumps(rule, sort_keys=True, separators=(",", ":"))
        with self.server.db() as db:
            ids = dict(db.execute("SELECT name, id FROM users"))
            keys = dict(db.execute("SELECT name, id FROM keys"))
            db.execute("INSERT INTO grants(key_id, user_id, created_at) VALUES(?, ?, ?)",
                       (keys["mig-grant"], ids["alice"], now))
            db.execute("INSERT INTO policies(name, version, document, updated_at)"
                       " VALUES(?, 1, ?, ?)", (rule["name"], doc, now))
            db.execute("INSERT INTO policy_versions(name, version, document, changed_at)"
                       " VALUES(?, 1, ?, ?)", (rule["name"], doc, now))

    def listing(self, token):
        return sorted(k["name"] for k in self.server.call("GET", "/api/v1/keys",
                                                          token=token)["keys"])

    def test_old_database_migrates_and_signs(self):
        s = self.server
        for name in ("mig-grant", "mig-rule", "mig-other"):
            s.create_key(name, "ec-p256")
        s.issue_cert("mig-grant", "Migrated grant key")
        users = {name: s.create_user(name) for name in ("alice", "bob", "carol")}
        admin_key = s.admin_api_key()
        s.stop()

        old_version = self.build_old_database()
        self.add_old_rows(1700000000)

        s._admin_token = None
        s.start()
        log = s.log()
        self.assertIn("schema migrated to version %d" % (old_version + 1), log)
        self.assertIn("schema migrated to version %d" % schema_version(), log)
        with s.db() as db:
            self.assertEqual(current_version(db, self.pg), schema_version())
            self.assertEqual(db.execute("SELECT count(*) FROM projects").fetchone()[0], 0)

        tokens = {name: s.token_for(key) for name, key in users.items()}
        # The key listings: what the grant and the rule let each signer use, nothing more.
        self.assertEqual(self.listing(tokens["alice"]), ["mig-grant"])
        self.assertEqual(self.listing(tokens["bob"]), ["mig-rule"])
        self.assertEqual(self.listing(tokens["carol"]), [])
        admin = s.token_for(admin_key)
        listed = {k["name"]: k for k in s.call("GET", "/api/v1/admin/keys", token=admin)["keys"]}
        self.assertEqual(sorted(listed), ["mig-grant", "mig-other", "mig-rule"])
        self.assertTrue(all(not k["disabled"] for k in listed.values()), listed)
        self.assertTrue(listed["mig-grant"]["certificate"])
        self.assertIsNone(listed["mig-rule"]["certificate"])
        self.assertTrue(all(k["project"] is None for k in listed.values()), listed)
        self.assertEqual([g["user"] for g in s.call("GET", "/api/v1/admin/keys/mig-grant/grants",
                                                    token=admin)["grants"]], ["alice"])

        # Signing: through the grant, through the rule; nothing else is allowed.
        def verified(user, key):
            r = s.sign(tokens[user], key, "ecdsa", "sha256", digest=DIGEST)
            spki = s.openssl.tmp(unb64(listed[key]["public_key"]), ".der")
            pub = s.openssl("pkey", "-pubin", "-inform", "DER", "-in", spki).stdout
            ok, out = s.openssl.verify_digest_sig(pub, "sha256", MESSAGE,
                                                  ecdsa_raw_to_der(unb64(r["signature"])))
            self.assertTrue(ok, out)

        verified("alice", "mig-grant")
        verified("bob", "mig-rule")
        for user, key in (("alice", "mig-rule"), ("bob", "mig-grant"), ("carol", "mig-other")):
            self.assertError(s.sign_request(tokens[user], key, "ecdsa", "sha256", DIGEST), 403,
                             "key_not_granted")
        rules = [r["detail"]["policy"]["rule"] for r in s.audit_show()
                 if r["action"] == "sign" and r["outcome"] == "allowed"]
        self.assertEqual(rules[-2:], ["grant", "bob-may-sign"])

        # What came after version 10 works on the migrated data: a project takes the key.
        s.call("POST", "/api/v1/admin/projects", {"name": "migrated"}, token=admin, expect=201)
        s.call("PUT", "/api/v1/admin/keys/mig-other/project",
               {"project": "migrated", "reason": "after the upgrade"}, token=admin)
        s.call("POST", "/api/v1/admin/projects/migrated/members",
               {"user": "carol", "role": "signer", "reason": "after the upgrade"}, token=admin,
               expect=201)
        self.assertEqual(self.listing(tokens["carol"]), ["mig-other"])
        verified("carol", "mig-other")
        rc, out = s.audit_verify()
        self.assertEqual(rc, 0, out)

    def assertError(self, r, status, code):
        self.assertEqual((r.status, r.error_code), (status, code), r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
