/* SQLite query of the audit search; see audit_query_db.h. */
#include "audit_query_db.h"

#include <stdio.h>
#include <string.h>

#include "db_internal.h"

enum { S_SEARCH, S_MAX_SEQ, S_CURSOR, S_COUNT };
_Static_assert(SRV_DB_SLOT_AUDIT_QUERY + S_COUNT <= SRV_DB_SLOT_USAGE,
               "audit search overlaps usage_db.c's");

static const char *const sql[S_COUNT] = {
    [S_SEARCH] = "SELECT seq, time, actor, action, outcome, record, hash FROM audit"
                 " WHERE seq > ?1 AND seq <= ?2"
                 " AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR action = ?4)"
                 " AND (?5 IS NULL OR outcome = ?5) AND (?6 IS NULL OR time >= ?6)"
                 " AND (?7 IS NULL OR time < ?7)"
                 " AND (?8 IS NULL OR json_extract(record, '$.detail.key') = ?8)"
                 " AND (?9 IS NULL OR json_extract(record, '$.detail.request_id') = ?9)"
                 " AND (?11 IS NULL OR json_extract(record, '$.detail.project') = ?11)"
                 " ORDER BY seq LIMIT ?10",
    [S_MAX_SEQ] = "SELECT coalesce(max(seq), 0) FROM audit",
    [S_CURSOR] = "SELECT seq, updated_at FROM export_cursors WHERE sink = ?1",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_AUDIT_QUERY + q, sql[q], err);
}

static void bind_opt(srv_stmt *s, int i, const char *v)
{
    if (v)
        srv_bind_text(s, i, v, -1);
    else
        srv_bind_null(s, i);
}

srv_status srv_db_audit_search(srv_db *db, const srv_audit_query *q, srv_audit_cb cb, void *ctx,
                               int64_t *scanned_to, int *more, srv_error *err)
{
    srv_stmt *s = stmt(db, S_MAX_SEQ, err);
    int64_t last = 0, end;
    long n = 0;
    int rc, stopped = 0;

    if (!s)
        return SRV_E_DATABASE;
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        last = srv_col_int64(s, 0);
    srv_reset(s);
    if (rc != SRV_DB_ROW)
        return srv_db_fail(db, err, "audit head");
    end = q->after + q->window < last ? q->after + q->window : last;
    *scanned_to = end > q->after ? end : q->after;
    if (!(s = stmt(db, S_SEARCH, err)))
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, q->after);
    srv_bind_int64(s, 2, end);
    bind_opt(s, 3, q->actor);
    bind_opt(s, 4, q->action);
    bind_opt(s, 5, q->outcome);
    bind_opt(s, 6, q->since);
    bind_opt(s, 7, q->until);
    bind_opt(s, 8, q->key);
    bind_opt(s, 9, q->request_id);
    srv_bind_int64(s, 10, q->limit);
    bind_opt(s, 11, q->project);
    while (!stopped && (rc = srv_step(s)) == SRV_DB_ROW) {
        srv_audit_row row;
        const unsigned char *t;
        memset(&row, 0, sizeof(row));
        row.seq = srv_col_int64(s, 0);
#define COPY(field, col)                                                                           \
    t = srv_col_text(s, col);                                                                      \
    snprintf(row.field, sizeof(row.field), "%s", t ? (const char *)t : "")
        COPY(time, 1);
        COPY(actor, 2);
        COPY(action, 3);
        COPY(outcome, 4);
#undef COPY
        row.record = (const char *)srv_col_text(s, 5);
        row.hash = (const char *)srv_col_text(s, 6);
        if (!row.record)
            row.record = "";
        if (!row.hash)
            row.hash = "";
        n++;
        /* A full page ends the search at its last match, the cursor for the next page. */
        if (n == q->limit)
            *scanned_to = row.seq;
        stopped = cb(&row, ctx);
        if (stopped)
            *scanned_to = row.seq;
    }
    srv_reset(s);
    if (!stopped && rc != SRV_DB_DONE)
        return srv_db_fail(db, err, "audit search");
    *more = *scanned_to < last;
    return SRV_OK;
}

srv_status srv_db_export_state(srv_db *db, const char *sink, int64_t *delivered,
                               int64_t *updated_at, int64_t *head, srv_error *err)
{
    srv_stmt *s = stmt(db, S_CURSOR, err);
    int rc;
    *delivered = *updated_at = *head = 0;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, sink, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        *delivered = srv_col_int64(s, 0);
        *updated_at = srv_col_int64(s, 1);
    }
    srv_reset(s);
    if (rc != SRV_DB_ROW && rc != SRV_DB_DONE)
        return srv_db_fail(db, err, "export cursor");
    if (!(s = stmt(db, S_MAX_SEQ, err)))
        return SRV_E_DATABASE;
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        *head = srv_col_int64(s, 0);
    srv_reset(s);
    return rc == SRV_DB_ROW ? SRV_OK : srv_db_fail(db, err, "audit head");
}
