/* Queries of the alerts outbox and of the alert rules; see alert_db.h. */
#include "alert_db.h"

#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

enum {
    S_INSERT,
    S_NEXT,
    S_RECENT,
    S_PENDING,
    S_LAST,
    S_PRUNE,
    S_USAGE_KEY,
    S_USAGE_SIGNER,
    S_JOBS,
    S_SINCE,
    S_COUNT
};
_Static_assert(SRV_DB_SLOT_ALERT + S_COUNT <= SRV_DB_EXT_SLOTS, "alert_db.c passes the slots");

#define COLS "id, event_id, rule, subject, severity, created_at, dropped, body"

static const char *const sql[S_COUNT] = {
    [S_INSERT] = "INSERT INTO alerts(event_id, rule, subject, severity, created_at, dropped, body)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_NEXT] = "SELECT " COLS " FROM alerts WHERE id > ?1 AND dropped = 0 ORDER BY id LIMIT 1",
    [S_RECENT] = "SELECT " COLS " FROM alerts ORDER BY id DESC LIMIT ?1",
    [S_PENDING] = "SELECT count(*) FROM alerts WHERE id > ?1 AND dropped = 0",
    [S_LAST] = "SELECT max(created_at) FROM alerts WHERE rule = ?1 AND subject = ?2",
    /* Dropped alerts wait for no webhook: they go with age alone. */
    [S_PRUNE] = "DELETE FROM alerts WHERE (id <= ?1 OR dropped = 1)"
                " AND id <= (SELECT max(id) FROM alerts) - ?2",
    [S_USAGE_KEY] = "SELECT coalesce(sum(u.signatures), 0) FROM usage_daily u"
                    " JOIN keys k ON k.id = u.key_id WHERE k.name = ?1 AND u.day BETWEEN ?2 AND ?3",
    [S_USAGE_SIGNER] = "SELECT coalesce(sum(u.signatures), 0) FROM usage_daily u"
                       " JOIN users s ON s.id = u.user_id"
                       " WHERE s.name = ?1 AND u.day BETWEEN ?2 AND ?3",
    [S_JOBS] = "SELECT count(*), coalesce(min(created_at), 0) FROM sign_jobs"
               " WHERE status IN ('queued', 'running')",
    /* Record times are RFC 3339 UTC of one shape: they sort as text. */
    [S_SINCE] = "SELECT coalesce(min(seq), 0) FROM audit WHERE time >= ?1",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_ALERT + q, sql[q], err);
}

srv_status srv_db_alert_insert(srv_db *db, const srv_alert_row *row, int64_t *id, srv_error *err)
{
    srv_stmt *s = stmt(db, S_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, row->event_id, -1);
    srv_bind_text(s, 2, row->rule, -1);
    srv_bind_text(s, 3, row->subject, -1);
    srv_bind_text(s, 4, row->severity, -1);
    srv_bind_int64(s, 5, row->created_at);
    srv_bind_int(s, 6, row->dropped ? 1 : 0);
    srv_bind_text(s, 7, row->body, -1);
    if ((st = srv_db_step_done(db, s, err, "alert")) == SRV_OK && id)
        *id = srv_db_last_rowid(db);
    return st;
}

static void read_row(srv_stmt *s, srv_alert_row *out)
{
    memset(out, 0, sizeof(*out));
    out->id = srv_col_int64(s, 0);
    srv_db_copy_text(out->event_id, sizeof(out->event_id), srv_col_text(s, 1));
    srv_db_copy_text(out->rule, sizeof(out->rule), srv_col_text(s, 2));
    srv_db_copy_text(out->subject, sizeof(out->subject), srv_col_text(s, 3));
    srv_db_copy_text(out->severity, sizeof(out->severity), srv_col_text(s, 4));
    out->created_at = srv_col_int64(s, 5);
    out->dropped = srv_col_int(s, 6);
    out->body = (const char *)srv_col_text(s, 7);
}

srv_status srv_db_alert_next(srv_db *db, int64_t after_id, srv_alert_row *out, char **body,
                             srv_error *err)
{
    srv_stmt *s = stmt(db, S_NEXT, err);
    srv_status st = SRV_OK;
    int rc;
    *body = NULL;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, after_id);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        read_row(s, out);
        if (!(*body = strdup(out->body ? out->body : "")))
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        out->body = NULL;
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "no alert after %lld", (long long)after_id);
    } else {
        st = srv_db_fail(db, err, "alert");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_alerts_recent(srv_db *db, long long limit, srv_alert_cb cb, void *ctx,
                                srv_error *err)
{
    srv_stmt *s = stmt(db, S_RECENT, err);
    srv_alert_row row;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, limit);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        read_row(s, &row);
        cb(&row, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "alerts");
}

/* One row, two integer columns at most. */
static srv_status two_ints(srv_db *db, srv_stmt *s, long long *a, int64_t *b, srv_error *err,
                           const char *what)
{
    int rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        *a = srv_col_int64(s, 0);
        if (b)
            *b = srv_col_int64(s, 1);
    }
    srv_reset(s);
    return rc == SRV_DB_ROW ? SRV_OK : srv_db_fail(db, err, what);
}

srv_status srv_db_alerts_pending(srv_db *db, int64_t after_id, long long *n, srv_error *err)
{
    srv_stmt *s = stmt(db, S_PENDING, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, after_id);
    return two_ints(db, s, n, NULL, err, "pending alerts");
}

srv_status srv_db_alert_last(srv_db *db, const char *rule, const char *subject, int64_t *at,
                             srv_error *err)
{
    srv_stmt *s = stmt(db, S_LAST, err);
    long long v = 0;
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, rule, -1);
    srv_bind_text(s, 2, subject, -1);
    st = two_ints(db, s, &v, NULL, err, "last alert"); /* max() of nothing reads as 0 */
    *at = v;
    return st;
}

srv_status srv_db_alerts_prune(srv_db *db, int64_t upto_id, long long keep, srv_error *err)
{
    srv_stmt *s = stmt(db, S_PRUNE, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, upto_id);
    srv_bind_int64(s, 2, keep);
    return srv_db_step_done(db, s, err, "alerts prune");
}

srv_status srv_db_usage_signatures(srv_db *db, int by_signer, const char *name, int64_t from_day,
                                   int64_t to_day, long long *n, srv_error *err)
{
    srv_stmt *s = stmt(db, by_signer ? S_USAGE_SIGNER : S_USAGE_KEY, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    srv_bind_int64(s, 2, from_day);
    srv_bind_int64(s, 3, to_day);
    return two_ints(db, s, n, NULL, err, "usage");
}

srv_status srv_db_job_queue_stats(srv_db *db, long long *depth, int64_t *oldest, srv_error *err)
{
    srv_stmt *s = stmt(db, S_JOBS, err);
    if (!s)
        return SRV_E_DATABASE;
    return two_ints(db, s, depth, oldest, err, "job queue");
}

srv_status srv_db_audit_first_since(srv_db *db, const char *time, int64_t *seq, srv_error *err)
{
    srv_stmt *s = stmt(db, S_SINCE, err);
    long long v = 0;
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, time, -1);
    st = two_ints(db, s, &v, NULL, err, "audit by time");
    *seq = v;
    return st;
}
