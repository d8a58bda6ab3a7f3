"""Upgrading a database from before projects (schema version 10) to the current schema: the
current signum-server opens an old SQLite database holding users, keys, a grant and a policy
rule, migrates it, and signing with the grant and with the rule, the key listings and the
projects that came later all work on it."""

import json
import os
import re
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from signum_harness import HASHES, Server, ecdsa_raw_to_der, unb64  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_C = os.path.join(ROOT, "server", "src", "store", "schema.c")
DB_H = os.path.join(ROOT, "server", "src", "store", "db.h")
BEFORE_PROJECTS = 10  # the step 10 -> 11 created the projects table
MESSAGE = b"signed after the upgrade"
DIGEST = HASHES["sha256"](MESSAGE).digest()


def sqlite_steps():
    """The SQLite migration steps of schema.c, in order: each one brings version i to i + 1.
    They are append-only, so steps 0..9 are the SQL that made every version-10 database."""
    with open(SCHEMA_C) as f:
        text = f.read()
    body = text.split("static const char *const sqlite_steps[] = {", 1)[1].split("\n};", 1)[0]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    steps, current = [], []
    for token in re.finditer(r'"((?:[^"\\]|\\.)*)"|(,)|(\S)', body):
        literal, comma, other = token.groups()
        if other:
            raise AssertionError("unexpected token %r in sqlite_steps" % other)
        if comma:
            steps.append("".join(current))
            current = []
        else:
            current.append(literal.encode().decode("unicode_escape"))
    if current:
        steps.append("".join(current))
    return steps


def schema_version():
    with open(DB_H) as f:
        return int(re.search(r"#define SRV_DB_SCHEMA_VERSION (\d+)", f.read()).group(1))


def columns(db, schema, table):
    return [r[1] for r in db.execute('PRAGMA %s.table_info("%s")' % (schema, table))]


class MigrationTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(ca_key_type="ec-p256", name="migration")
        self.addCleanup(self.server.cleanup)
        self.assertIsNone(self.server.pg_db, "this test builds an old SQLite database")

    def build_old_database(self, path):
        """A version-10 database: the old steps run on an empty file, then the rows the server
        made (users and their API keys, the CA, HSM-backed keys and certificates, the audit
        log) copied in, column by column as far as version 10 had the column."""
        steps = sqlite_steps()
        self.assertEqual(len(steps), schema_version())
        old = sqlite3.connect(path, isolation_level=None)
        try:
            for v in range(BEFORE_PROJECTS):
                old.executescript("BEGIN;" + steps[v] + ";PRAGMA user_version = %d;COMMIT;"
                                  % (v + 1))
            self.assertEqual(old.execute("PRAGMA user_version").fetchone()[0], BEFORE_PROJECTS)
            tables = [r[0] for r in old.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            self.assertNotIn("projects", tables)
            self.assertNotIn("project_id", columns(old, "main", "keys"))
            old.execute("ATTACH DATABASE ? AS cur", (self.server.db_path,))
            old.execute("BEGIN")
            for t in tables:
                cur = columns(old, "cur", t)
                cols = ", ".join('"%s"' % c for c in columns(old, "main", t) if c in cur)
                old.execute('INSERT INTO main."%s"(%s) SELECT %s FROM cur."%s"'
                            % (t, cols, cols, t))
            old.execute("COMMIT")
            old.execute("DETACH DATABASE cur")
        finally:
            old.close()

    def add_old_rows(self, path, now):
        """The grant and the policy rule as a version-10 server stored them (the rule's
        document canonical: keys sorted, no spaces)."""
        rule = {"name": "bob-may-sign", "effect": "allow", "priority": 10,
                "subjects": {"users": ["bob"]}, "keys": {"names": ["mig-rule"]}}
        doc = json.dumps(rule, sort_keys=True, separators=(",", ":"))
        with sqlite3.connect(path, isolation_level=None) as db:
            ids = dict(db.execute("SELECT name, id FROM users"))
            keys = dict(db.execute("SELECT name, id FROM keys"))
            db.execute("INSERT INTO grants(key_id, user_id, created_at) VALUES(?, ?, ?)",
                       (keys["mig-grant"], ids["alice"], now))
            db.execute("INSERT INTO policies(name, version, document, updated_at)"
                       " VALUES(?, 1, ?, ?)", (rule["name"], doc, now))
            db.execute("INSERT INTO policy_versions(name, version, document, changed_at)"
                       " VALUES(?, 1, ?, ?)", (rule["name"], doc, now))
        db.close()

    def listing(self, token):
        return sorted(k["name"] for k in self.server.call("GET", "/api/v1/keys",
                                                          token=token)["keys"])

    def test_version_10_database_migrates_and_signs(self):
        s = self.server
        for name in ("mig-grant", "mig-rule", "mig-other"):
            s.create_key(name, "ec-p256")
        s.issue_cert("mig-grant", "Migrated grant key")
        users = {name: s.create_user(name) for name in ("alice", "bob", "carol")}
        admin_key = s.admin_api_key()
        s.stop()

        old_path = os.path.join(s.root, "old.db")
        self.build_old_database(old_path)
        self.add_old_rows(old_path, 1700000000)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(s.db_path + suffix):
                os.unlink(s.db_path + suffix)
        os.rename(old_path, s.db_path)

        s._admin_token = None
        s.start()
        self.assertIn("schema migrated to version %d" % schema_version(), s.log())
        with s.db() as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], schema_version())
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
