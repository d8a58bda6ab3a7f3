/* Connections and transactions on either engine: opening (and migrating) a SQLite file or a
 * PostgreSQL database, transaction control, and the statement caches of db_internal.h.
 *
 * On PostgreSQL several server nodes share the database. The writer's transactions
 * (SRV_TX_BEGIN_IMMEDIATE) take one cluster-wide advisory lock, so that their commits are
 * serialised across nodes as SQLite's are across threads: one audit chain in one total
 * order, each node committing its requests in groups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/util.h"
#include "conn.h"
#include "schema.h"
#include "syncvfs.h"

/* pg_advisory_xact_lock's key for the writer lock: "SGNM". */
#define WRITER_LOCK "SELECT pg_advisory_xact_lock(1397182029)"

srv_status srv_db_fail(srv_db *db, srv_error *err, const char *what)
{
    return srv_fail(err, SRV_E_DATABASE, "%s: %s", what,
                    db->engine == SRV_ENGINE_POSTGRESQL ? db->pg_error : sqlite3_errmsg(db->lite));
}

static srv_stmt *cached(srv_db *db, srv_stmt **slot, const char *sql, srv_error *err)
{
    if (!*slot && !(*slot = srv_stmt_new(db, sql, err)))
        return NULL;
    srv_reset(*slot);
    if ((*slot)->lite)
        sqlite3_clear_bindings((*slot)->lite);
    else {
        (*slot)->pg_nparams = 0;
        memset((*slot)->params, 0, sizeof((*slot)->params));
    }
    return *slot;
}

srv_stmt *srv_db_stmt_sql(srv_db *db, query_id q, const char *sql, srv_error *err)
{
    return cached(db, &db->stmts[q], sql, err);
}

srv_stmt *srv_db_stmt_ext(srv_db *db, int slot, const char *sql, srv_error *err)
{
    if (slot < 0 || slot >= SRV_DB_EXT_SLOTS) {
        srv_fail(err, SRV_E_INTERNAL, "statement slot %d out of range", slot);
        return NULL;
    }
    return cached(db, &db->ext_stmts[slot], sql, err);
}

srv_status srv_db_step_done(srv_db *db, srv_stmt *s, srv_error *err, const char *what)
{
    int rc = srv_step(s);
    srv_status st = SRV_OK;
    if (rc == SRV_DB_CONSTRAINT)
        st = srv_fail(err, SRV_E_EXISTS, "%s: already exists", what);
    else if (rc != SRV_DB_DONE)
        st = srv_db_fail(db, err, what);
    srv_reset(s);
    return st;
}

int srv_db_changes(srv_db *db)
{
    return (int)db->changes;
}

long long srv_db_last_rowid(srv_db *db)
{
    PGresult *r;
    long long id = 0;
    if (db->engine == SRV_ENGINE_SQLITE)
        return (long long)sqlite3_last_insert_rowid(db->lite);
    /* The identity column's sequence, as this session last advanced it. */
    r = PQexec(db->pg, "SELECT lastval()");
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return id;
}

srv_status srv_db_exec(srv_db *db, const char *sql, srv_error *err)
{
    char *msg = NULL;
    if (db->engine == SRV_ENGINE_POSTGRESQL)
        return srv_pg_exec(db, sql) == 0 ? SRV_OK
                                         : srv_fail(err, SRV_E_DATABASE, "%s", db->pg_error);
    if (sqlite3_exec(db->lite, sql, NULL, NULL, &msg) != SQLITE_OK) {
        srv_status st = srv_fail(err, SRV_E_DATABASE, "%s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return st;
    }
    return SRV_OK;
}

int srv_db_in_transaction(srv_db *db)
{
    if (db->engine == SRV_ENGINE_POSTGRESQL) {
        PGTransactionStatusType t = PQtransactionStatus(db->pg);
        return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
    }
    return !sqlite3_get_autocommit(db->lite);
}

/* A PostgreSQL connection the server closed (restart, failover) is opened again before the
 * next transaction; statements hold no server-side state, so nothing else is lost. */
static void pg_revive(srv_db *db)
{
    if (PQstatus(db->pg) == CONNECTION_OK)
        return;
    srv_log(SRV_LOG_WARN, "db", "PostgreSQL connection lost; reconnecting");
    PQreset(db->pg);
    if (PQstatus(db->pg) == CONNECTION_OK) {
        srv_pg_exec(db, "SET client_min_messages = warning");
        srv_pg_exec(db, "SET lock_timeout = 5000");
    }
}

static srv_status pg_tx(srv_db *db, srv_tx_op op, const char *sql, srv_error *err)
{
    PGresult *r;
    int ok;
    if (op == SRV_TX_BEGIN || op == SRV_TX_BEGIN_IMMEDIATE)
        pg_revive(db);
    /* The writer's transaction and its lock in one round trip. */
    r = PQexec(db->pg, op == SRV_TX_BEGIN_IMMEDIATE ? "BEGIN; " WRITER_LOCK : sql);
    ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    /* COMMIT of a transaction that failed answers ROLLBACK: nothing was committed. */
    if (ok && op == SRV_TX_COMMIT && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        ok = 0;
        snprintf(db->pg_error, sizeof(db->pg_error), "the transaction was rolled back");
    } else if (!ok) {
        const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(db->pg);
        snprintf(db->pg_error, sizeof(db->pg_error), "%s", m && *m ? m : "PostgreSQL error");
    }
    PQclear(r);
    if (!ok && op == SRV_TX_BEGIN_IMMEDIATE && PQtransactionStatus(db->pg) != PQTRANS_IDLE)
        srv_pg_exec(db, "ROLLBACK");
    return ok ? SRV_OK : srv_fail(err, SRV_E_DATABASE, "%s: %s", sql, db->pg_error);
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
    srv_stmt *s;
    int rc;

    if ((unsigned)op >= SRV_TX_COUNT)
        return srv_fail(err, SRV_E_INTERNAL, "unknown transaction statement %d", (int)op);
    if (db->engine == SRV_ENGINE_POSTGRESQL)
        return pg_tx(db, op, op == SRV_TX_BEGIN_IMMEDIATE ? "BEGIN" : sql[op], err);
    if (!(s = srv_db_stmt_ext(db, SRV_DB_SLOT_TX + (int)op, sql[op], err)))
        return SRV_E_DATABASE;
    rc = srv_step(s);
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, sql[op]);
}

void srv_db_read_begin(srv_db *db)
{
    /* PostgreSQL reads at READ COMMITTED: a transaction around them would see what each
     * statement sees anyway, for two more round trips. */
    if (db->engine == SRV_ENGINE_POSTGRESQL)
        return;
    srv_db_read_end(db);
    srv_db_tx(db, SRV_TX_BEGIN, NULL); /* on failure the lookups run in autocommit, as before */
}

void srv_db_read_end(srv_db *db)
{
    if (!srv_db_in_transaction(db))
        return;
    if (srv_db_tx(db, SRV_TX_COMMIT, NULL) != SRV_OK)
        srv_db_tx(db, SRV_TX_ROLLBACK, NULL);
    if (srv_db_in_transaction(db))
        srv_log(SRV_LOG_ERROR, "db", "a read transaction could not be ended");
}

/* ---- schema version and migrations -------------------------------------------------------- */

static int pg_version(srv_db *db)
{
    PGresult *r = PQexec(db->pg, "SELECT coalesce(max(version), 0) FROM signum_schema");
    int v = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                ? atoi(PQgetvalue(r, 0, 0))
                : -1;
    PQclear(r);
    return v;
}

int srv_db_schema_version(srv_db *db)
{
    sqlite3_stmt *s = NULL;
    int v = -1;
    if (db->engine == SRV_ENGINE_POSTGRESQL)
        return pg_version(db);
    if (sqlite3_prepare_v2(db->lite, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static srv_status check_version(int v, srv_error *err)
{
    if (v > SRV_DB_SCHEMA_VERSION)
        return srv_fail(err, SRV_E_DATABASE,
                        "database schema version %d is newer than this server (%d)", v,
                        SRV_DB_SCHEMA_VERSION);
    return SRV_OK;
}

static srv_status migrate_sqlite(srv_db *db, srv_error *err)
{
    int v = srv_db_schema_version(db);
    char sql[64];
    srv_status st;
    if (v < 0)
        return srv_db_fail(db, err, "read schema version");
    if ((st = check_version(v, err)) != SRV_OK)
        return st;
    for (; v < SRV_DB_SCHEMA_VERSION; v++) {
        if ((st = srv_db_exec(db, "BEGIN IMMEDIATE", err)) != SRV_OK)
            return st;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if ((st = srv_db_exec(db, srv_schema_sqlite_step(v), err)) != SRV_OK ||
            (st = srv_db_exec(db, sql, err)) != SRV_OK ||
            (st = srv_db_exec(db, "COMMIT", err)) != SRV_OK) {
            srv_db_exec(db, "ROLLBACK", NULL);
            return st;
        }
        srv_log(SRV_LOG_INFO, "db", "schema migrated to version %d", v + 1);
    }
    return SRV_OK;
}

/* Nodes starting together migrate one at a time (the writer lock); the others then find the
 * schema current. */
static srv_status migrate_pg(srv_db *db, srv_error *err)
{
    size_t n;
    const srv_schema_step *steps = srv_schema_pg_steps(&n);
    char sql[96];
    srv_status st;
    int v;

    if ((st = srv_db_exec(db, "CREATE TABLE IF NOT EXISTS signum_schema(version BIGINT NOT NULL)",
                          err)) != SRV_OK ||
        (st = srv_db_tx(db, SRV_TX_BEGIN_IMMEDIATE, err)) != SRV_OK)
        return st;
    if ((v = pg_version(db)) < 0)
        st = srv_fail(err, SRV_E_DATABASE, "read schema version: %s", PQerrorMessage(db->pg));
    else
        st = check_version(v, err);
    for (size_t i = 0; st == SRV_OK && i < n; i++) {
        if (steps[i].to <= v)
            continue;
        snprintf(sql, sizeof(sql), "INSERT INTO signum_schema(version) VALUES(%d)", steps[i].to);
        if ((st = srv_db_exec(db, steps[i].sql, err)) == SRV_OK &&
            (st = srv_db_exec(db, sql, err)) == SRV_OK)
            srv_log(SRV_LOG_INFO, "db", "schema migrated to version %d", steps[i].to);
    }
    if (st == SRV_OK)
        return srv_db_tx(db, SRV_TX_COMMIT, err);
    srv_db_tx(db, SRV_TX_ROLLBACK, NULL);
    return st;
}

/* ---- open and close ----------------------------------------------------------------------- */

static srv_status open_sqlite(srv_db *db, const char *path, srv_error *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (db->writer ? SQLITE_OPEN_CREATE : 0);
    srv_status st;
    /* The writer's commits go through the timed-sync VFS (fsync time for /metrics). */
    if (sqlite3_open_v2(path, &db->lite, flags, db->writer ? srv_syncvfs_name() : NULL) !=
        SQLITE_OK)
        return srv_fail(err, SRV_E_DATABASE, "cannot open database %s: %s", path,
                        db->lite ? sqlite3_errmsg(db->lite) : "out of memory");
    sqlite3_busy_timeout(db->lite, 5000);
    sqlite3_extended_result_codes(db->lite, 0);
    /* WAL lets readers run beside the single writer; FULL makes each commit durable. */
    if ((st = srv_db_exec(db, "PRAGMA journal_mode = WAL", err)) != SRV_OK ||
        (st = srv_db_exec(db, "PRAGMA foreign_keys = ON", err)) != SRV_OK ||
        (st = srv_db_exec(db,
                          db->writer ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                          err)) != SRV_OK)
        return st;
    if (db->writer)
        return migrate_sqlite(db, err);
    if (srv_db_schema_version(db) != SRV_DB_SCHEMA_VERSION)
        return srv_fail(err, SRV_E_DATABASE, "database %s has schema version %d, expected %d", path,
                        srv_db_schema_version(db), SRV_DB_SCHEMA_VERSION);
    return SRV_OK;
}

static srv_status open_pg(srv_db *db, const char *url, srv_error *err)
{
    srv_status st;
    db->pg = PQconnectdb(url);
    if (!db->pg)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    /* The message names host and database, never the password. */
    if (PQstatus(db->pg) != CONNECTION_OK)
        return srv_fail(err, SRV_E_DATABASE, "cannot connect to PostgreSQL database %s on %s: %s",
                        PQdb(db->pg), PQhost(db->pg), PQerrorMessage(db->pg));
    /* As SQLite's busy timeout: a writer lock held elsewhere fails a commit after 5 s. */
    if ((st = srv_db_exec(db, "SET client_min_messages = warning", err)) != SRV_OK ||
        (st = srv_db_exec(db, "SET lock_timeout = 5000", err)) != SRV_OK)
        return st;
    if (db->writer)
        return migrate_pg(db, err);
    if (pg_version(db) != SRV_DB_SCHEMA_VERSION)
        return srv_fail(err, SRV_E_DATABASE,
                        "PostgreSQL database %s has schema version %d, expected %d", PQdb(db->pg),
                        pg_version(db), SRV_DB_SCHEMA_VERSION);
    return SRV_OK;
}

srv_status srv_db_open(const char *database, int writer, srv_db **out, srv_error *err)
{
    srv_db *db = calloc(1, sizeof(*db));
    srv_status st;

    *out = NULL;
    if (!db)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    db->writer = writer;
    db->engine = srv_is_postgresql_url(database) ? SRV_ENGINE_POSTGRESQL : SRV_ENGINE_SQLITE;
    st = db->engine == SRV_ENGINE_POSTGRESQL ? open_pg(db, database, err)
                                             : open_sqlite(db, database, err);
    if (st != SRV_OK) {
        srv_db_close(db);
        return st;
    }
    *out = db;
    return SRV_OK;
}

void srv_db_close(srv_db *db)
{
    if (!db)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        srv_stmt_free(db->stmts[i]);
    for (int i = 0; i < SRV_DB_EXT_SLOTS; i++)
        srv_stmt_free(db->ext_stmts[i]);
    if (db->lite)
        sqlite3_close(db->lite);
    if (db->pg)
        PQfinish(db->pg);
    free(db);
}

int srv_db_shared(const srv_db *db)
{
    return db->engine == SRV_ENGINE_POSTGRESQL;
}

srv_status srv_db_ping(srv_db *db, srv_error *err)
{
    if (db->engine == SRV_ENGINE_POSTGRESQL)
        pg_revive(db);
    return srv_db_schema_version(db) == SRV_DB_SCHEMA_VERSION
               ? SRV_OK
               : srv_fail(err, SRV_E_DATABASE, "database not readable or wrong schema");
}
