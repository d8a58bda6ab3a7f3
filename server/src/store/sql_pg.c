/* Statements on PostgreSQL (libpq): the shared SQL translated once, parameters sent typed
 * (integers and text as text, blobs in binary), results read as text. An INSERT of a row
 * that exists does nothing and reads as the constraint (on_conflict_nothing), so that the
 * transaction stays usable, as it does in SQLite, where the callers may go on. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

/* ---- translation -------------------------------------------------------------------------- */

static int starts_with(const char *p, const char *word)
{
    return strncmp(p, word, strlen(word)) == 0;
}

/* json_extract(EXPR, '$.a.b') -> (EXPR::jsonb #>> '{a,b}'); p is at "json_extract(". Returns
 * the input consumed, 0 if the call is not of that shape (then it is copied as it is). */
static size_t json_extract(const char *p, char *out, size_t *o)
{
    const char *arg = p + strlen("json_extract("), *comma = strchr(arg, ','), *q, *end;
    if (!comma)
        return 0;
    q = comma + 1;
    while (*q == ' ')
        q++;
    if (q[0] != '\'' || q[1] != '$' || q[2] != '.' || !(end = strchr(q + 3, '\'')) || end[1] != ')')
        return 0;
    *o += (size_t)sprintf(out + *o, "(%.*s::jsonb #>> '{", (int)(comma - arg), arg);
    for (const char *c = q + 3; c < end; c++)
        out[(*o)++] = *c == '.' ? ',' : *c;
    *o += (size_t)sprintf(out + *o, "}')");
    return (size_t)(end + 2 - p);
}

/* json_each(EXPR) ALIAS over an array -> jsonb_array_elements_text(EXPR::jsonb) AS
 * ALIAS(value); p is at "json_each(". Returns the input consumed, 0 if not of that shape. */
static size_t json_each(const char *p, char *out, size_t *o)
{
    const char *arg = p + strlen("json_each("), *close = strchr(arg, ')'), *alias, *end;
    if (!close || close[1] != ' ')
        return 0;
    alias = end = close + 2;
    while (isalnum((unsigned char)*end) || *end == '_')
        end++;
    if (end == alias)
        return 0;
    *o += (size_t)sprintf(out + *o, "jsonb_array_elements_text(%.*s::jsonb) AS %.*s(value)",
                          (int)(close - arg), arg, (int)(end - alias), alias);
    return (size_t)(end - p);
}

char *srv_pg_translate(const char *sql, int *params, unsigned *named)
{
    size_t n = strlen(sql), o = 0;
    /* No rewrite makes its input more than four times longer (" IS ?1" is the worst). */
    char *out = malloc(n * 4 + 64);
    int quoted = 0;
    *params = 0;
    *named = 0;
    if (!out)
        return NULL;
    for (const char *p = sql; *p;) {
        size_t used;
        if (*p == '\'') {
            quoted = !quoted;
            out[o++] = *p++;
        } else if (quoted) {
            out[o++] = *p++;
        } else if (*p == '?' && isdigit((unsigned char)p[1])) {
            /* "x IS ?N" compares with NULL as equal: IS NOT DISTINCT FROM. */
            if (o >= 4 && memcmp(out + o - 4, " IS ", 4) == 0) {
                o -= 1;
                o += (size_t)sprintf(out + o, " NOT DISTINCT FROM ");
            }
            out[o++] = '$';
            p++;
            if (atoi(p) > *params)
                *params = atoi(p);
            if (atoi(p) >= 1 && atoi(p) <= 32)
                *named |= 1u << (atoi(p) - 1);
            while (isdigit((unsigned char)*p))
                out[o++] = *p++;
            /* "?N IS NULL" alone gives the parameter no type: call it text. */
            if (starts_with(p, " IS NULL"))
                o += (size_t)sprintf(out + o, "::text");
        } else if (starts_with(p, "json_extract(") && (used = json_extract(p, out, &o)) > 0) {
            p += used;
        } else if (starts_with(p, "json_each(") && (used = json_each(p, out, &o)) > 0) {
            p += used;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

enum { OID_BYTEA = 17, OID_TEXT = 25 };

/* ---- statements --------------------------------------------------------------------------- */

/* Adds ON CONFLICT DO NOTHING to an INSERT (before its RETURNING); frees sql. */
static char *on_conflict_nothing(char *sql)
{
    static const char clause[] = " ON CONFLICT DO NOTHING";
    char *ret = strstr(sql, " RETURNING"), *out = malloc(strlen(sql) + sizeof(clause));
    size_t at = ret ? (size_t)(ret - sql) : strlen(sql);
    if (out)
        sprintf(out, "%.*s%s%s", (int)at, sql, clause, sql + at);
    free(sql);
    return out;
}

srv_stmt *srv_pg_stmt_new(srv_db *db, const char *sql, srv_error *err)
{
    srv_stmt *s = calloc(1, sizeof(*s));
    const char *p = sql;
    if (!s || !(s->pg_sql = srv_pg_translate(sql, &s->pg_param_count, &s->pg_used))) {
        free(s);
        srv_fail(err, SRV_E_NOMEM, "out of memory");
        return NULL;
    }
    s->db = db;
    if (s->pg_param_count > SRV_STMT_MAX_PARAMS) {
        srv_fail(err, SRV_E_INTERNAL, "a statement has %d parameters, more than %d",
                 s->pg_param_count, SRV_STMT_MAX_PARAMS);
        srv_pg_stmt_free(s);
        return NULL;
    }
    while (*p == ' ')
        p++;
    /* A row that already exists refuses an INSERT ... VALUES in SQLite and the caller may go on
     * (SRV_E_EXISTS); in PostgreSQL the error would abort the whole transaction. So the insert
     * does nothing instead, and no row inserted reads as the constraint. */
    if (starts_with(p, "INSERT") && strstr(s->pg_sql, " VALUES") &&
        !strstr(s->pg_sql, "ON CONFLICT") && !(s->pg_sql = on_conflict_nothing(s->pg_sql))) {
        srv_fail(err, SRV_E_NOMEM, "out of memory");
        srv_pg_stmt_free(s);
        return NULL;
    }
    s->pg_insert_once = strstr(s->pg_sql, " ON CONFLICT DO NOTHING") != NULL;
    return s;
}

static void clear_row(srv_stmt *s)
{
    for (int i = 0; i < SRV_STMT_MAX_PARAMS; i++) {
        PQfreemem(s->blob[i]);
        s->blob[i] = NULL;
        s->blob_len[i] = 0;
    }
}

void srv_pg_reset(srv_stmt *s)
{
    clear_row(s);
    PQclear(s->res);
    s->res = NULL;
    s->row = s->nrows = 0;
}

void srv_pg_stmt_free(srv_stmt *s)
{
    srv_pg_reset(s);
    free(s->pg_sql);
    free(s);
}

static void keep_error(srv_db *db, const PGresult *r)
{
    const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(db->pg);
    size_t n;
    snprintf(db->pg_error, sizeof(db->pg_error), "%s", m && *m ? m : "PostgreSQL error");
    n = strlen(db->pg_error);
    while (n && (db->pg_error[n - 1] == '\n' || db->pg_error[n - 1] == ' '))
        db->pg_error[--n] = '\0';
}

int srv_pg_exec(srv_db *db, const char *sql)
{
    PGresult *r = PQexec(db->pg, sql);
    int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        keep_error(db, r);
    PQclear(r);
    return ok ? 0 : -1;
}

/* Runs the statement. */
static int run(srv_stmt *s)
{
    srv_db *db = s->db;
    const char *values[SRV_STMT_MAX_PARAMS];
    int lengths[SRV_STMT_MAX_PARAMS], formats[SRV_STMT_MAX_PARAMS];
    unsigned oids[SRV_STMT_MAX_PARAMS];
    int rc;
    ExecStatusType est;
    const char *state;

    /* Parameters the SQL names but nobody bound are NULL, as in SQLite. */
    for (int i = 0; i < s->pg_param_count && i < SRV_STMT_MAX_PARAMS; i++) {
        if (i >= s->pg_nparams)
            s->params[i] = (srv_pg_param){0};
        values[i] = s->params[i].value;
        lengths[i] = s->params[i].len;
        formats[i] = s->params[i].binary;
        oids[i] = s->params[i].oid;
        /* A parameter the SQL never names gets no type from it: say text. */
        if (!oids[i] && !(s->pg_used & (1u << i)))
            oids[i] = OID_TEXT;
    }
    s->res = PQexecParams(db->pg, s->pg_sql, s->pg_param_count, oids, values, lengths, formats, 0);
    est = s->res ? PQresultStatus(s->res) : PGRES_FATAL_ERROR;
    if (est == PGRES_TUPLES_OK || est == PGRES_COMMAND_OK) {
        const char *n = PQcmdTuples(s->res);
        db->changes = n && *n ? atoll(n) : 0;
        s->nrows = est == PGRES_TUPLES_OK ? PQntuples(s->res) : 0;
        s->row = -1;
        if (s->pg_insert_once && db->changes == 0) {
            snprintf(db->pg_error, sizeof(db->pg_error), "the row already exists");
            PQclear(s->res);
            s->res = NULL;
            return SRV_DB_CONSTRAINT;
        }
        return SRV_DB_DONE;
    }
    keep_error(db, s->res);
    state = s->res ? PQresultErrorField(s->res, PG_DIAG_SQLSTATE) : NULL;
    /* Class 23: integrity constraint violation. */
    rc = state && state[0] == '2' && state[1] == '3' ? SRV_DB_CONSTRAINT : SRV_DB_ERROR;
    PQclear(s->res);
    s->res = NULL;
    return rc;
}

int srv_pg_step(srv_stmt *s)
{
    if (!s->res) {
        int rc = run(s);
        if (rc != SRV_DB_DONE)
            return rc;
    }
    clear_row(s);
    if (s->row + 1 >= s->nrows) {
        s->row = s->nrows;
        return SRV_DB_DONE;
    }
    s->row++;
    return SRV_DB_ROW;
}

const char *srv_pg_value(srv_stmt *s, int i)
{
    if (!s->res || s->row < 0 || s->row >= s->nrows || i < 0 || i >= PQnfields(s->res) ||
        PQgetisnull(s->res, s->row, i))
        return NULL;
    return PQgetvalue(s->res, s->row, i);
}

const void *srv_pg_blob(srv_stmt *s, int i, int *len)
{
    const char *v = srv_pg_value(s, i);
    size_t n = 0;
    *len = 0;
    if (!v)
        return NULL;
    if (PQftype(s->res, i) != OID_BYTEA || i >= SRV_STMT_MAX_PARAMS) {
        *len = (int)strlen(v);
        return v;
    }
    if (!s->blob[i]) {
        s->blob[i] = PQunescapeBytea((const unsigned char *)v, &n);
        if (!s->blob[i])
            return NULL;
        s->blob_len[i] = (int)n;
    }
    *len = s->blob_len[i];
    return s->blob[i];
}
