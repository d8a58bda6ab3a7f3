/* The statement interface (sql.h): SQLite directly, PostgreSQL through sql_pg.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

srv_stmt *srv_stmt_new(srv_db *db, const char *sql, srv_error *err)
{
    srv_stmt *s;
    if (db->engine == SRV_ENGINE_POSTGRESQL)
        return srv_pg_stmt_new(db, sql, err);
    s = calloc(1, sizeof(*s));
    if (!s) {
        srv_fail(err, SRV_E_NOMEM, "out of memory");
        return NULL;
    }
    s->db = db;
    if (sqlite3_prepare_v3(db->lite, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->lite, NULL) !=
        SQLITE_OK) {
        srv_fail(err, SRV_E_DATABASE, "prepare: %s", sqlite3_errmsg(db->lite));
        free(s);
        return NULL;
    }
    return s;
}

void srv_stmt_free(srv_stmt *s)
{
    if (!s)
        return;
    if (s->db->engine == SRV_ENGINE_POSTGRESQL) {
        srv_pg_stmt_free(s);
        return;
    }
    sqlite3_finalize(s->lite);
    free(s);
}

static void pg_param(srv_stmt *s, int i, unsigned oid, const char *value, int len, int binary)
{
    srv_pg_param *p;
    if (i < 1 || i > SRV_STMT_MAX_PARAMS)
        return;
    p = &s->params[i - 1];
    p->oid = oid;
    p->value = value;
    p->len = len;
    p->binary = binary;
    if (i > s->pg_nparams)
        s->pg_nparams = i;
}

/* PostgreSQL's type oids for what we bind (pg_type.h). */
enum { OID_BYTEA = 17, OID_INT8 = 20, OID_TEXT = 25 };

void srv_bind_int64(srv_stmt *s, int i, int64_t v)
{
    if (s->lite) {
        sqlite3_bind_int64(s->lite, i, v);
        return;
    }
    if (i < 1 || i > SRV_STMT_MAX_PARAMS)
        return;
    snprintf(s->params[i - 1].num, sizeof(s->params[i - 1].num), "%lld", (long long)v);
    pg_param(s, i, OID_INT8, s->params[i - 1].num, 0, 0);
}

void srv_bind_int(srv_stmt *s, int i, int v)
{
    srv_bind_int64(s, i, v);
}

void srv_bind_text(srv_stmt *s, int i, const char *text, int len)
{
    if (s->lite) {
        sqlite3_bind_text(s->lite, i, text, len, SQLITE_STATIC);
        return;
    }
    if (!text) {
        srv_bind_null(s, i);
        return;
    }
    /* libpq sends text up to its NUL: a length-limited one is not sent as such. */
    pg_param(s, i, OID_TEXT, text, len, 0);
}

void srv_bind_blob(srv_stmt *s, int i, const void *data, int len)
{
    if (s->lite) {
        sqlite3_bind_blob(s->lite, i, data, len, SQLITE_STATIC);
        return;
    }
    if (!data) {
        srv_bind_null(s, i);
        return;
    }
    pg_param(s, i, OID_BYTEA, data, len, 1);
}

void srv_bind_null(srv_stmt *s, int i)
{
    if (s->lite)
        sqlite3_bind_null(s->lite, i);
    else
        pg_param(s, i, 0, NULL, 0, 0);
}

int srv_stmt_param_count(srv_stmt *s)
{
    return s->lite ? sqlite3_bind_parameter_count(s->lite) : s->pg_param_count;
}

int srv_step(srv_stmt *s)
{
    int rc;
    if (!s->lite)
        return srv_pg_step(s);
    rc = sqlite3_step(s->lite);
    if (rc == SQLITE_ROW)
        return SRV_DB_ROW;
    if (rc == SQLITE_DONE) {
        s->db->changes = sqlite3_changes(s->db->lite);
        return SRV_DB_DONE;
    }
    return rc == SQLITE_CONSTRAINT ? SRV_DB_CONSTRAINT : SRV_DB_ERROR;
}

void srv_reset(srv_stmt *s)
{
    if (s->lite)
        sqlite3_reset(s->lite);
    else
        srv_pg_reset(s);
}

int64_t srv_col_int64(srv_stmt *s, int i)
{
    const char *v;
    if (s->lite)
        return sqlite3_column_int64(s->lite, i);
    v = srv_pg_value(s, i);
    if (!v)
        return 0;
    /* PostgreSQL spells a boolean t or f. */
    if (*v == 't')
        return 1;
    if (*v == 'f')
        return 0;
    return strtoll(v, NULL, 10);
}

int srv_col_int(srv_stmt *s, int i)
{
    return (int)srv_col_int64(s, i);
}

const unsigned char *srv_col_text(srv_stmt *s, int i)
{
    if (s->lite)
        return sqlite3_column_text(s->lite, i);
    return (const unsigned char *)srv_pg_value(s, i);
}

const void *srv_col_blob(srv_stmt *s, int i)
{
    int len;
    if (s->lite)
        return sqlite3_column_blob(s->lite, i);
    return srv_pg_blob(s, i, &len);
}

int srv_col_bytes(srv_stmt *s, int i)
{
    int len = 0;
    if (s->lite)
        return sqlite3_column_bytes(s->lite, i);
    srv_pg_blob(s, i, &len);
    return len;
}
