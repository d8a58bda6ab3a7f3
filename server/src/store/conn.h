/* The connection and statement layer under the store: one srv_db is one connection to one
 * engine (SQLite file or PostgreSQL server); db.c opens it and runs transactions, sql.c and
 * sql_pg.c run statements on it. Only store/ sees this header. */
#ifndef SRV_STORE_CONN_H
#define SRV_STORE_CONN_H

#include <libpq-fe.h>
#include <sqlite3.h>

#include "db_internal.h"
#include "sql.h"

#define SRV_STMT_MAX_PARAMS 16

typedef enum { SRV_ENGINE_SQLITE, SRV_ENGINE_POSTGRESQL } srv_engine;

/* A PostgreSQL parameter as bound: a pointer to the caller's bytes (text, or a blob sent in
 * binary) or to num, where an integer is spelled out. */
typedef struct {
    unsigned oid; /* 0: NULL, the server infers the type */
    const char *value;
    int len;
    int binary;
    char num[24];
} srv_pg_param;

struct srv_stmt {
    srv_db *db;
    sqlite3_stmt *lite;
    /* PostgreSQL: the translated SQL, the bindings, and the result being read. */
    char *pg_sql;
    int pg_insert_once; /* INSERT ... ON CONFLICT DO NOTHING added: no row = the constraint */
    int pg_nparams;     /* the highest parameter bound */
    int pg_param_count; /* the highest $N in the SQL */
    unsigned pg_used;   /* bit N-1: the SQL names $N */
    srv_pg_param params[SRV_STMT_MAX_PARAMS];
    PGresult *res;
    int row, nrows;
    unsigned char *blob[SRV_STMT_MAX_PARAMS]; /* decoded bytea columns of the current row */
    int blob_len[SRV_STMT_MAX_PARAMS];
};

struct srv_db {
    srv_engine engine;
    int writer;
    sqlite3 *lite;
    PGconn *pg;
    char pg_error[256]; /* the last PostgreSQL error, for srv_db_fail */
    long long changes;  /* rows the last write changed */
    srv_stmt *stmts[Q_COUNT];
    srv_stmt *ext_stmts[SRV_DB_EXT_SLOTS];
};

/* A statement for sql on db (prepared on first use by the caller's cache). */
srv_stmt *srv_stmt_new(srv_db *db, const char *sql, srv_error *err);
void srv_stmt_free(srv_stmt *s);

/* PostgreSQL halves of the statement functions (sql.c dispatches). */
srv_stmt *srv_pg_stmt_new(srv_db *db, const char *sql, srv_error *err);
void srv_pg_stmt_free(srv_stmt *s);
void srv_pg_reset(srv_stmt *s);
int srv_pg_step(srv_stmt *s);
const char *srv_pg_value(srv_stmt *s, int i);
const void *srv_pg_blob(srv_stmt *s, int i, int *len);
/* Runs SQL without parameters or rows (DDL, transaction control); 0 on success. */
int srv_pg_exec(srv_db *db, const char *sql);
/* Translates SQL from the shared dialect to PostgreSQL's (malloc'd, NULL if out of memory);
 * *params gets the highest parameter number, *used a bit per parameter the SQL names. */
char *srv_pg_translate(const char *sql, int *params, unsigned *used);

#endif
