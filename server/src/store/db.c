/* SQLite storage: connection setup, migrations, and a prepared statement per query. */
#include "db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/util.h"
#include "db_internal.h"
#include "syncvfs.h"

/* Each entry brings the schema from version i to i+1, in one transaction. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK(role IN ('admin','signer')), created_at INTEGER NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE api_keys(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
    " prefix TEXT NOT NULL UNIQUE, hash BLOB NOT NULL, created_at INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE access_tokens(hash BLOB PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES "
    "users(id),"
    " expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE keys(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, ckaid BLOB NOT NULL "
    "UNIQUE,"
    " type TEXT NOT NULL, spki BLOB NOT NULL, is_ca INTEGER NOT NULL DEFAULT 0,"
    " disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
    "CREATE TABLE certificates(key_id INTEGER PRIMARY KEY REFERENCES keys(id), der BLOB NOT NULL,"
    " chain_pem TEXT NOT NULL DEFAULT '', not_after INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE grants(key_id INTEGER NOT NULL REFERENCES keys(id),"
    " user_id INTEGER NOT NULL REFERENCES users(id), created_at INTEGER NOT NULL,"
    " PRIMARY KEY(key_id, user_id)) WITHOUT ROWID;"
    "CREATE TABLE sign_requests(user_id INTEGER NOT NULL, request_id TEXT NOT NULL,"
    " fingerprint BLOB NOT NULL, response TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " PRIMARY KEY(user_id, request_id)) WITHOUT ROWID;"
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY, time TEXT NOT NULL, actor TEXT NOT NULL,"
    " action TEXT NOT NULL, outcome TEXT NOT NULL, record TEXT NOT NULL, hash TEXT NOT NULL);",
    /* 1 -> 2: service accounts, enrollment, machines (mTLS), token binding and revocation. */
    "ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'user'"
    " CHECK(kind IN ('user','service'));"
    "CREATE TABLE machines(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL, cert_sha256 BLOB UNIQUE, cert_serial TEXT,"
    " cert_not_after INTEGER, enrolled_at INTEGER, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE enrollment_tokens(hash BLOB PRIMARY KEY, user_id INTEGER REFERENCES users(id),"
    " machine_id INTEGER REFERENCES machines(id), expires_at INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, used_at INTEGER,"
    " CHECK((user_id IS NULL) <> (machine_id IS NULL))) WITHOUT ROWID;"
    "CREATE TABLE service_account_keys(kid TEXT PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id), spki BLOB NOT NULL,"
    " created_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE used_jtis(user_id INTEGER NOT NULL REFERENCES users(id), jti TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL, PRIMARY KEY(user_id, jti)) WITHOUT ROWID;"
    "CREATE INDEX used_jtis_expiry ON used_jtis(expires_at);"
    "ALTER TABLE access_tokens ADD COLUMN machine_id INTEGER REFERENCES machines(id);"
    "CREATE INDEX access_tokens_user ON access_tokens(user_id);"
    "CREATE INDEX access_tokens_machine ON access_tokens(machine_id);",
    /* 2 -> 3: audit checkpoints signed by an HSM audit key, exporters' persistent cursors. */
    "CREATE TABLE audit_keys(id INTEGER PRIMARY KEY, ckaid BLOB NOT NULL UNIQUE,"
    " type TEXT NOT NULL, spki BLOB NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE audit_checkpoints(seq INTEGER PRIMARY KEY,"
    " key_id INTEGER NOT NULL REFERENCES audit_keys(id), payload TEXT NOT NULL,"
    " signature BLOB NOT NULL);"
    "CREATE TABLE export_cursors(sink TEXT PRIMARY KEY, seq INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 3 -> 4: policy rules (versioned), user and key groups, signature counts for quotas,
     * approval requests and their votes. */
    "CREATE TABLE policies(name TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " document TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE policy_versions(name TEXT NOT NULL, version INTEGER NOT NULL, document TEXT,"
    " changed_at INTEGER NOT NULL, PRIMARY KEY(name, version)) WITHOUT ROWID;"
    "CREATE TABLE policy_groups(kind TEXT NOT NULL CHECK(kind IN ('user','key')),"
    " name TEXT NOT NULL, members TEXT NOT NULL, updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(kind, name)) WITHOUT ROWID;"
    "CREATE TABLE sign_usage(id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL REFERENCES users(id), key_id INTEGER NOT NULL REFERENCES keys(id),"
    " count INTEGER NOT NULL);"
    "CREATE INDEX sign_usage_key ON sign_usage(key_id, time);"
    "CREATE INDEX sign_usage_user ON sign_usage(user_id, time);"
    "CREATE TABLE approval_requests(id TEXT PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id), key_id INTEGER NOT NULL REFERENCES keys(id),"
    " rule TEXT NOT NULL, request TEXT NOT NULL, required INTEGER NOT NULL,"
    " approvers TEXT NOT NULL, status TEXT NOT NULL"
    " CHECK(status IN ('pending','approved','rejected','signed')),"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, response TEXT,"
    " decided_at INTEGER) WITHOUT ROWID;"
    "CREATE TABLE approval_votes(request_id TEXT NOT NULL REFERENCES approval_requests(id),"
    " approver TEXT NOT NULL, decision TEXT NOT NULL CHECK(decision IN ('approve','reject')),"
    " time INTEGER NOT NULL, PRIMARY KEY(request_id, approver)) WITHOUT ROWID;",
    /* 4 -> 5: the identity lifecycle: deleted identities, API keys' use and revocation time,
     * revocable enrolled keys, and what each access token was minted from. */
    "ALTER TABLE users ADD COLUMN deleted_at INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;"
    "ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;"
    "CREATE INDEX api_keys_user ON api_keys(user_id);"
    "ALTER TABLE service_account_keys ADD COLUMN revoked_at INTEGER;"
    "ALTER TABLE service_account_keys ADD COLUMN last_used_at INTEGER;"
    "ALTER TABLE access_tokens ADD COLUMN api_key_id INTEGER REFERENCES api_keys(id);"
    "ALTER TABLE access_tokens ADD COLUMN sa_kid TEXT;"
    "CREATE INDEX access_tokens_api_key ON access_tokens(api_key_id);",
    /* 5 -> 6: certificates the built-in CA revoked, and its current CRL. */
    "CREATE TABLE cert_revocations(serial TEXT PRIMARY KEY,"
    " key_id INTEGER NOT NULL REFERENCES keys(id), reason INTEGER NOT NULL,"
    " revoked_at INTEGER NOT NULL, not_after INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE crl(id INTEGER PRIMARY KEY CHECK(id = 1), number INTEGER NOT NULL,"
    " der BLOB NOT NULL, this_update INTEGER NOT NULL, next_update INTEGER NOT NULL);",
    /* 6 -> 7: the reason an approver gave for a rejection. */
    "ALTER TABLE approval_votes ADD COLUMN reason TEXT;",
    /* 7 -> 8: why and when a key was disabled (suspended), and the revocation of a key's
     * current certificate. */
    "ALTER TABLE keys ADD COLUMN disabled_reason TEXT;"
    "ALTER TABLE keys ADD COLUMN disabled_at INTEGER;"
    "ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;",
    /* 8 -> 9: usage counted per day, key and signer (one row updated per request, never a row
     * per signature), each key's total and its optional limit. */
    "CREATE TABLE usage_daily(day INTEGER NOT NULL, key_id INTEGER NOT NULL REFERENCES keys(id),"
    " user_id INTEGER NOT NULL REFERENCES users(id), signatures INTEGER NOT NULL DEFAULT 0,"
    " denials INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(day, key_id, user_id)) WITHOUT ROWID;"
    "CREATE INDEX usage_daily_key ON usage_daily(key_id, day);"
    "CREATE INDEX usage_daily_user ON usage_daily(user_id, day);"
    "ALTER TABLE keys ADD COLUMN signatures_total INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE keys ADD COLUMN usage_limit INTEGER;",
    /* 9 -> 10: key versions: a rotation keeps the earlier key (and its certificate, for
     * verification) until it is retired, which destroys it in the HSM. */
    "ALTER TABLE keys ADD COLUMN version INTEGER NOT NULL DEFAULT 1;"
    "CREATE TABLE key_versions(key_id INTEGER NOT NULL REFERENCES keys(id),"
    " version INTEGER NOT NULL, ckaid BLOB NOT NULL UNIQUE, spki BLOB NOT NULL, cert_der BLOB,"
    " chain_pem TEXT, cert_not_after INTEGER, created_at INTEGER NOT NULL,"
    " rotated_at INTEGER NOT NULL, retired_at INTEGER, PRIMARY KEY(key_id, version))"
    " WITHOUT ROWID;",
    /* 10 -> 11: projects: a key belongs to at most one; members (a user, a service account or
     * a user group) hold roles in it (admin, signer, approver). */
    "CREATE TABLE projects(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);"
    "ALTER TABLE keys ADD COLUMN project_id INTEGER REFERENCES projects(id);"
    "CREATE INDEX keys_project ON keys(project_id);"
    "CREATE TABLE project_members(project_id INTEGER NOT NULL REFERENCES projects(id),"
    " role TEXT NOT NULL CHECK(role IN ('admin','signer','approver')),"
    " user_id INTEGER REFERENCES users(id), user_group TEXT, created_at INTEGER NOT NULL,"
    " CHECK((user_id IS NULL) <> (user_group IS NULL)));"
    "CREATE UNIQUE INDEX project_members_user ON project_members(project_id, role, user_id)"
    " WHERE user_id IS NOT NULL;"
    "CREATE UNIQUE INDEX project_members_group ON project_members(project_id, role, user_group)"
    " WHERE user_group IS NOT NULL;"
    "CREATE INDEX project_members_by_user ON project_members(user_id);",
    /* 11 -> 12: console sessions are access tokens carried in a cookie, with the hash of
     * their CSRF token and when they were last used (idle timeout); TOTP secrets of users
     * (the secret itself is in the HSM, by ckaid). */
    "ALTER TABLE access_tokens ADD COLUMN csrf_hash BLOB;"
    "ALTER TABLE access_tokens ADD COLUMN last_seen INTEGER;"
    "CREATE TABLE totp_secrets(user_id INTEGER PRIMARY KEY REFERENCES users(id),"
    " ckaid BLOB NOT NULL UNIQUE, enrollment_hash BLOB, created_at INTEGER NOT NULL,"
    " confirmed_at INTEGER, last_step INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0);",
    /* 12 -> 13: signatures and denials per hour (all keys: the dashboard's chart), and the
     * verified machine an approval request came from. */
    "CREATE TABLE usage_hourly(hour INTEGER PRIMARY KEY, signatures INTEGER NOT NULL DEFAULT 0,"
    " denials INTEGER NOT NULL DEFAULT 0);"
    "ALTER TABLE approval_requests ADD COLUMN machine TEXT;"
    "CREATE INDEX approval_requests_user ON approval_requests(user_id, created_at);",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == SRV_DB_SCHEMA_VERSION,
               "one migration per schema version");

static const char *const queries[Q_COUNT] = {
    [Q_USER_INSERT] = "INSERT INTO users(name, role, created_at) VALUES(?1, ?2, ?3)",
    [Q_USER_GET] = "SELECT id, name, role, disabled, kind FROM users WHERE name = ?1",
    [Q_USER_GET_ID] = "SELECT id, name, role, disabled, kind FROM users WHERE id = ?1",
    [Q_USERS_LIST] = "SELECT id, name, role, disabled, kind, created_at FROM users"
                     " WHERE deleted_at IS NULL ORDER BY name",
    [Q_SA_INSERT] = "INSERT INTO users(name, role, kind, created_at) VALUES(?1, 'signer',"
                    " 'service', ?2)",
    [Q_APIKEY_INSERT] =
        "INSERT INTO api_keys(user_id, prefix, hash, created_at) VALUES(?1, ?2, ?3, ?4)",
    [Q_APIKEY_FIND] = "SELECT user_id, hash FROM api_keys WHERE prefix = ?1 AND revoked = 0",
    [Q_TOKEN_INSERT] = "INSERT INTO access_tokens(hash, user_id, expires_at) VALUES(?1, ?2, ?3)",
    [Q_TOKEN_FIND] =
        "SELECT user_id, expires_at FROM access_tokens WHERE hash = ?1 AND revoked = 0",
    [Q_TOKEN_BIND] = "UPDATE access_tokens SET machine_id = ?2 WHERE hash = ?1",
    [Q_TOKEN_MACHINE] = "SELECT machine_id FROM access_tokens WHERE hash = ?1",
    [Q_TOKENS_REVOKE_USER] = "UPDATE access_tokens SET revoked = 1"
                             " WHERE user_id = ?1 AND revoked = 0 AND expires_at > ?2",
    [Q_TOKENS_REVOKE_MACHINE] = "UPDATE access_tokens SET revoked = 1"
                                " WHERE machine_id = ?1 AND revoked = 0 AND expires_at > ?2",
    [Q_ENROLL_INSERT] = "INSERT INTO enrollment_tokens(hash, user_id, machine_id, expires_at,"
                        " created_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_ENROLL_GET] =
        "SELECT user_id, machine_id, expires_at, used_at FROM enrollment_tokens WHERE hash = ?1",
    [Q_ENROLL_USE] = "UPDATE enrollment_tokens SET used_at = ?2"
                     " WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
    [Q_SAKEY_INSERT] = "INSERT INTO service_account_keys(kid, user_id, spki, created_at)"
                       " VALUES(?1, ?2, ?3, ?4)",
    [Q_SAKEY_GET] = "SELECT spki FROM service_account_keys WHERE user_id = ?1 AND kid = ?2"
                    " AND revoked_at IS NULL",
    [Q_JTI_PURGE] = "DELETE FROM used_jtis WHERE expires_at <= ?1",
    [Q_JTI_INSERT] = "INSERT INTO used_jtis(user_id, jti, expires_at) VALUES(?1, ?2, ?3)",
    [Q_MACHINE_INSERT] = "INSERT INTO machines(name, created_at) VALUES(?1, ?2)",
    [Q_MACHINE_GET] = "SELECT id, name, revoked, cert_sha256, cert_serial, cert_not_after,"
                      " enrolled_at, created_at FROM machines WHERE name = ?1",
    [Q_MACHINE_GET_ID] = "SELECT id, name, revoked, cert_sha256, cert_serial, cert_not_after,"
                         " enrolled_at, created_at FROM machines WHERE id = ?1",
    [Q_MACHINE_BY_CERT] = "SELECT id, name, revoked, cert_sha256, cert_serial, cert_not_after,"
                          " enrolled_at, created_at FROM machines WHERE cert_sha256 = ?1",
    [Q_MACHINE_SET_CERT] = "UPDATE machines SET cert_sha256 = ?2, cert_serial = ?3,"
                           " cert_not_after = ?4, enrolled_at = ?5 WHERE id = ?1",
    [Q_MACHINE_REVOKE] = "UPDATE machines SET revoked = 1 WHERE id = ?1",
    [Q_MACHINES_LIST] = "SELECT id, name, revoked, cert_sha256, cert_serial, cert_not_after,"
                        " enrolled_at, created_at FROM machines ORDER BY name",
    [Q_KEY_INSERT] = "INSERT INTO keys(name, ckaid, type, spki, is_ca, disabled, created_at)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6)",
    [Q_KEY_GET] = "SELECT id, name, ckaid, type, spki, is_ca, disabled, created_at, project_id,"
                  " (SELECT p.name FROM projects p WHERE p.id = keys.project_id) FROM keys"
                  " WHERE name = ?1",
    [Q_KEY_DISABLE] = "UPDATE keys SET disabled = 1 WHERE id = ?1",
    [Q_KEYS_ALL] = "SELECT id, name, ckaid, type, spki, is_ca, disabled, created_at, project_id,"
                   " (SELECT p.name FROM projects p WHERE p.id = keys.project_id) FROM keys"
                   " WHERE is_ca = 0 ORDER BY name",
    [Q_KEYS_USER] = "SELECT k.id, k.name, k.ckaid, k.type, k.spki, k.is_ca, k.disabled,"
                    " k.created_at, k.project_id, (SELECT p.name FROM projects p"
                    " WHERE p.id = k.project_id) FROM keys k JOIN grants g ON g.key_id = k.id"
                    " WHERE g.user_id = ?1 AND k.disabled = 0 AND k.is_ca = 0 ORDER BY k.name",
    [Q_CERT_SET] = "INSERT OR REPLACE INTO certificates(key_id, der, chain_pem, not_after,"
                   " created_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_CERT_GET] = "SELECT der, chain_pem, not_after FROM certificates WHERE key_id = ?1",
    [Q_GRANT_INSERT] = "INSERT INTO grants(key_id, user_id, created_at) VALUES(?1, ?2, ?3)",
    [Q_GRANT_EXISTS] = "SELECT 1 FROM grants WHERE key_id = ?1 AND user_id = ?2",
    [Q_SIGNREQ_GET] = "SELECT fingerprint, response, created_at FROM sign_requests"
                      " WHERE user_id = ?1 AND request_id = ?2",
    [Q_SIGNREQ_INSERT] = "INSERT INTO sign_requests(user_id, request_id, fingerprint, response,"
                         " created_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [Q_AUDIT_INSERT] = "INSERT INTO audit(seq, time, actor, action, outcome, record, hash)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_AUDIT_ITER] = "SELECT seq, time, actor, action, outcome, record, hash FROM audit"
                     " WHERE seq > ?1 ORDER BY seq",
    [Q_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [Q_AUDIT_KEY_INSERT] = "INSERT INTO audit_keys(ckaid, type, spki, created_at)"
                           " VALUES(?1, ?2, ?3, ?4)",
    [Q_AUDIT_KEY_LATEST] = "SELECT id, ckaid, type, spki FROM audit_keys ORDER BY id DESC LIMIT 1",
    [Q_AUDIT_KEYS_ALL] = "SELECT id, ckaid, type, spki FROM audit_keys ORDER BY id",
    [Q_CHECKPOINT_INSERT] = "INSERT INTO audit_checkpoints(seq, key_id, payload, signature)"
                            " VALUES(?1, ?2, ?3, ?4)",
    [Q_CHECKPOINT_LAST] = "SELECT seq, key_id, payload, signature FROM audit_checkpoints"
                          " ORDER BY seq DESC LIMIT 1",
    [Q_CHECKPOINTS_ALL] = "SELECT seq, key_id, payload, signature FROM audit_checkpoints"
                          " ORDER BY seq",
    [Q_CURSOR_GET] = "SELECT seq FROM export_cursors WHERE sink = ?1",
    [Q_CURSOR_SET] = "INSERT OR REPLACE INTO export_cursors(sink, seq, updated_at)"
                     " VALUES(?1, ?2, ?3)",
};

struct srv_db {
    sqlite3 *conn;
    sqlite3_stmt *stmts[Q_COUNT];
    sqlite3_stmt *ext_stmts[SRV_DB_EXT_SLOTS]; /* db_internal.h */
    sqlite3_stmt *tx_stmts[SRV_TX_COUNT];
    int writer;
};

static srv_status db_fail(srv_db *db, srv_error *err, const char *what)
{
    return srv_fail(err, SRV_E_DATABASE, "%s: %s", what, sqlite3_errmsg(db->conn));
}

/* Returns the cached statement for q, reset and with bindings cleared. */
sqlite3_stmt *srv_db_stmt(srv_db *db, query_id q, srv_error *err)
{
    if (!db->stmts[q] && sqlite3_prepare_v3(db->conn, queries[q], -1, SQLITE_PREPARE_PERSISTENT,
                                            &db->stmts[q], NULL) != SQLITE_OK) {
        db_fail(db, err, "prepare");
        return NULL;
    }
    sqlite3_reset(db->stmts[q]);
    sqlite3_clear_bindings(db->stmts[q]);
    return db->stmts[q];
}

/* Runs a statement that returns no rows; maps constraint violations to SRV_E_EXISTS. */
static srv_status step_done(srv_db *db, sqlite3_stmt *s, srv_error *err, const char *what)
{
    int rc = sqlite3_step(s);
    srv_status st = SRV_OK;
    if (rc == SQLITE_CONSTRAINT)
        st = srv_fail(err, SRV_E_EXISTS, "%s: already exists", what);
    else if (rc != SQLITE_DONE)
        st = db_fail(db, err, what);
    sqlite3_reset(s);
    return st;
}

/* ---- for query families kept in their own files (db_internal.h) ---------------------------- */

sqlite3_stmt *srv_db_stmt_ext(srv_db *db, int slot, const char *sql, srv_error *err)
{
    if (slot < 0 || slot >= SRV_DB_EXT_SLOTS) {
        srv_fail(err, SRV_E_INTERNAL, "statement slot %d out of range", slot);
        return NULL;
    }
    if (!db->ext_stmts[slot] && sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                                   &db->ext_stmts[slot], NULL) != SQLITE_OK) {
        db_fail(db, err, "prepare");
        return NULL;
    }
    sqlite3_reset(db->ext_stmts[slot]);
    sqlite3_clear_bindings(db->ext_stmts[slot]);
    return db->ext_stmts[slot];
}

srv_status srv_db_step_done(srv_db *db, sqlite3_stmt *s, srv_error *err, const char *what)
{
    return step_done(db, s, err, what);
}

srv_status srv_db_fail(srv_db *db, srv_error *err, const char *what)
{
    return db_fail(db, err, what);
}

int srv_db_changes(srv_db *db)
{
    return sqlite3_changes(db->conn);
}

srv_status srv_db_exec(srv_db *db, const char *sql, srv_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
        srv_status st = srv_fail(err, SRV_E_DATABASE, "%s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return st;
    }
    return SRV_OK;
}

int srv_db_in_transaction(srv_db *db)
{
    return !sqlite3_get_autocommit(db->conn);
}

srv_status srv_db_tx(srv_db *db, srv_tx_op op, srv_error *err)
{
    static const char *const sql[SRV_TX_COUNT] = {
        [SRV_TX_BEGIN] = "BEGIN",
        [SRV_TX_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
        [SRV_TX_COMMIT] = "COMMIT",
        [SRV_TX_ROLLBACK] = "ROLLBACK",
        [SRV_TX_SAVEPOINT_JOB] = "SAVEPOINT job",
        [SRV_TX_RELEASE_JOB] = "RELEASE job",
        [SRV_TX_ROLLBACK_TO_JOB] = "ROLLBACK TO job",
        [SRV_TX_SAVEPOINT_CHECKPOINT] = "SAVEPOINT checkpoint",
        [SRV_TX_RELEASE_CHECKPOINT] = "RELEASE checkpoint",
        [SRV_TX_ROLLBACK_TO_CHECKPOINT] = "ROLLBACK TO checkpoint",
    };
    sqlite3_stmt *s;
    int rc;

    if ((unsigned)op >= SRV_TX_COUNT)
        return srv_fail(err, SRV_E_INTERNAL, "unknown transaction statement %d", (int)op);
    if (!db->tx_stmts[op] && sqlite3_prepare_v3(db->conn, sql[op], -1, SQLITE_PREPARE_PERSISTENT,
                                                &db->tx_stmts[op], NULL) != SQLITE_OK)
        return db_fail(db, err, sql[op]);
    s = db->tx_stmts[op];
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        srv_status st = db_fail(db, err, sql[op]);
        sqlite3_reset(s);
        return st;
    }
    sqlite3_reset(s);
    return SRV_OK;
}

void srv_db_read_begin(srv_db *db)
{
    srv_db_read_end(db);
    srv_db_tx(db, SRV_TX_BEGIN, NULL); /* on failure the lookups run in autocommit, as before */
}

void srv_db_read_end(srv_db *db)
{
    if (sqlite3_get_autocommit(db->conn))
        return;
    if (srv_db_tx(db, SRV_TX_COMMIT, NULL) != SRV_OK)
        srv_db_tx(db, SRV_TX_ROLLBACK, NULL);
    if (!sqlite3_get_autocommit(db->conn))
        srv_log(SRV_LOG_ERROR, "db", "a read transaction could not be ended");
}

static int user_version(srv_db *db)
{
    sqlite3_stmt *s = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db->conn, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

int srv_db_schema_version(srv_db *db)
{
    return user_version(db);
}

static srv_status migrate(srv_db *db, srv_error *err)
{
    int v = user_version(db);
    char sql[64];
    if (v < 0)
        return db_fail(db, err, "read schema version");
    if (v > SRV_DB_SCHEMA_VERSION)
        return srv_fail(err, SRV_E_DATABASE,
                        "database schema version %d is newer than this server (%d)", v,
                        SRV_DB_SCHEMA_VERSION);
    for (; v < SRV_DB_SCHEMA_VERSION; v++) {
        srv_status st = srv_db_exec(db, "BEGIN IMMEDIATE", err);
        if (st != SRV_OK)
            return st;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if ((st = srv_db_exec(db, migrations[v], err)) != SRV_OK ||
            (st = srv_db_exec(db, sql, err)) != SRV_OK ||
            (st = srv_db_exec(db, "COMMIT", err)) != SRV_OK) {
            srv_db_exec(db, "ROLLBACK", NULL);
            return st;
        }
        srv_log(SRV_LOG_INFO, "db", "schema migrated to version %d", v + 1);
    }
    return SRV_OK;
}

srv_status srv_db_open(const char *path, int writer, srv_db **out, srv_error *err)
{
    srv_db *db = calloc(1, sizeof(*db));
    srv_status st;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);

    *out = NULL;
    if (!db)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    db->writer = writer;
    /* The writer's commits go through the timed-sync VFS (fsync time for /metrics). */
    if (sqlite3_open_v2(path, &db->conn, flags, writer ? srv_syncvfs_name() : NULL) != SQLITE_OK) {
        st = srv_fail(err, SRV_E_DATABASE, "cannot open database %s: %s", path,
                      db->conn ? sqlite3_errmsg(db->conn) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db->conn, 5000);
    sqlite3_extended_result_codes(db->conn, 0);
    /* WAL lets readers run beside the single writer; FULL makes each commit durable. */
    if ((st = srv_db_exec(db, "PRAGMA journal_mode = WAL", err)) != SRV_OK ||
        (st = srv_db_exec(db, "PRAGMA foreign_keys = ON", err)) != SRV_OK ||
        (st = srv_db_exec(db, writer ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                          err)) != SRV_OK)
        goto fail;
    if (writer) {
        if ((st = migrate(db, err)) != SRV_OK)
            goto fail;
    } else if (user_version(db) != SRV_DB_SCHEMA_VERSION) {
        st = srv_fail(err, SRV_E_DATABASE, "database %s has schema version %d, expected %d", path,
                      user_version(db), SRV_DB_SCHEMA_VERSION);
        goto fail;
    }
    *out = db;
    return SRV_OK;
fail:
    srv_db_close(db);
    return st;
}

void srv_db_close(srv_db *db)
{
    if (!db)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(db->stmts[i]);
    for (int i = 0; i < SRV_DB_EXT_SLOTS; i++)
        sqlite3_finalize(db->ext_stmts[i]);
    for (int i = 0; i < SRV_TX_COUNT; i++)
        sqlite3_finalize(db->tx_stmts[i]);
    sqlite3_close(db->conn);
    free(db);
}

srv_status srv_db_ping(srv_db *db, srv_error *err)
{
    return user_version(db) == SRV_DB_SCHEMA_VERSION
               ? SRV_OK
               : srv_fail(err, SRV_E_DATABASE, "database not readable or wrong schema");
}

void srv_key_clear(srv_key *key)
{
    free(key->spki);
    memset(key, 0, sizeof(*key));
}

void srv_cert_record_clear(srv_cert_record *cert)
{
    free(cert->der);
    free(cert->chain_pem);
    memset(cert, 0, sizeof(*cert));
}

void srv_sign_request_clear(srv_sign_request *req)
{
    free(req->response);
    memset(req, 0, sizeof(*req));
}

const char *srv_role_name(srv_role role)
{
    return role == SRV_ROLE_ADMIN ? "admin" : "signer";
}

int srv_role_parse(const char *name, srv_role *out)
{
    if (strcmp(name, "admin") == 0)
        *out = SRV_ROLE_ADMIN;
    else if (strcmp(name, "signer") == 0)
        *out = SRV_ROLE_SIGNER;
    else
        return 0;
    return 1;
}

const char *srv_user_kind_name(srv_user_kind kind)
{
    return kind == SRV_KIND_SERVICE ? "service" : "user";
}

srv_user_kind srv_db_kind_parse(const unsigned char *text)
{
    return text && strcmp((const char *)text, "service") == 0 ? SRV_KIND_SERVICE : SRV_KIND_USER;
}

void srv_db_copy_text(char *dst, size_t len, const unsigned char *src)
{
    snprintf(dst, len, "%s", src ? (const char *)src : "");
}

/* ---- meta --------------------------------------------------------------------------------- */

srv_status srv_db_meta_set(srv_db *db, const char *key, const char *value, srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_META_SET, err);
    if (!s)
        return SRV_E_DATABASE;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    return step_done(db, s, err, "meta");
}

srv_status srv_db_meta_get(srv_db *db, const char *key, char *value, size_t value_len,
                           srv_error *err)
{
    sqlite3_stmt *s = srv_db_stmt(db, Q_META_GET, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        srv_db_copy_text(value, value_len, sqlite3_column_text(s, 0));
    else if (rc == SQLITE_DONE)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no setting %s", key);
    else
        st = db_fail(db, err, "meta lookup");
    sqlite3_reset(s);
    return st;
}

long long srv_db_last_rowid(srv_db *db)
{
    return (long long)sqlite3_last_insert_rowid(db->conn);
}
