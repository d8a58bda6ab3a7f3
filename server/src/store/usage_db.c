/* SQLite queries of usage counting; see usage_db.h. */
#include "usage_db.h"

#include <string.h>

#include "db_internal.h"

enum { S_DAY_ADD, S_TOTAL_ADD, S_KEY_USAGE, S_SET_LIMIT, S_LIST, S_HOUR_ADD, S_HOURS, S_COUNT };
_Static_assert(SRV_DB_SLOT_USAGE + S_COUNT <= SRV_DB_SLOT_PROJECT, "usage overlaps project_db.c");

static const char *const sql[S_COUNT] = {
    [S_DAY_ADD] =
        "INSERT INTO usage_daily(day, key_id, user_id, signatures, denials)"
        " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(day, key_id, user_id) DO UPDATE"
        " SET signatures = usage_daily.signatures + ?4, denials = usage_daily.denials + ?5",
    [S_HOUR_ADD] = "INSERT INTO usage_hourly(hour, signatures, denials) VALUES(?1, ?2, ?3)"
                   " ON CONFLICT(hour) DO UPDATE SET signatures = usage_hourly.signatures + ?2,"
                   " denials = usage_hourly.denials + ?3",
    [S_HOURS] = "SELECT hour, signatures, denials FROM usage_hourly WHERE hour BETWEEN ?1 AND ?2"
                " ORDER BY hour",
    [S_TOTAL_ADD] = "UPDATE keys SET signatures_total = signatures_total + ?2 WHERE id = ?1"
                    " AND (usage_limit IS NULL OR signatures_total + ?2 <= usage_limit)",
    [S_KEY_USAGE] = "SELECT signatures_total, coalesce(usage_limit, -1) FROM keys WHERE id = ?1",
    [S_SET_LIMIT] = "UPDATE keys SET usage_limit = ?2 WHERE id = ?1",
    [S_LIST] = "SELECT u.day, k.name, s.name, u.signatures, u.denials, p.name FROM usage_daily u"
               " JOIN keys k ON k.id = u.key_id JOIN users s ON s.id = u.user_id"
               " LEFT JOIN projects p ON p.id = k.project_id"
               " WHERE u.day BETWEEN ?1 AND ?2 AND (?3 IS NULL OR k.name = ?3)"
               " AND (?4 IS NULL OR s.name = ?4) AND (?6 IS NULL OR p.name = ?6)"
               " ORDER BY u.day, k.name, s.name LIMIT ?5",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_USAGE + q, sql[q], err);
}

srv_status srv_db_usage_record(srv_db *db, int64_t now, int64_t key_id, int64_t user_id,
                               long long signatures, long long denials, srv_error *err)
{
    srv_stmt *s = stmt(db, S_DAY_ADD, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, now / 86400);
    srv_bind_int64(s, 2, key_id);
    srv_bind_int64(s, 3, user_id);
    srv_bind_int64(s, 4, signatures);
    srv_bind_int64(s, 5, denials);
    if ((st = srv_db_step_done(db, s, err, "usage")) != SRV_OK)
        return st;
    if (!(s = stmt(db, S_HOUR_ADD, err)))
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, now / 3600);
    srv_bind_int64(s, 2, signatures);
    srv_bind_int64(s, 3, denials);
    return srv_db_step_done(db, s, err, "hourly usage");
}

srv_status srv_db_usage_hours(srv_db *db, int64_t from_hour, int64_t to_hour, srv_usage_hour_cb cb,
                              void *ctx, srv_error *err)
{
    srv_stmt *s = stmt(db, S_HOURS, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, from_hour);
    srv_bind_int64(s, 2, to_hour);
    while ((rc = srv_step(s)) == SRV_DB_ROW)
        cb(srv_col_int64(s, 0), srv_col_int64(s, 1), srv_col_int64(s, 2), ctx);
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "hourly usage");
}

srv_status srv_db_key_total_add(srv_db *db, int64_t key_id, long long n, srv_error *err)
{
    srv_stmt *s = stmt(db, S_TOTAL_ADD, err);
    srv_status st;
    long long total = 0, limit = -1;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int64(s, 2, n);
    if ((st = srv_db_step_done(db, s, err, "key usage")) != SRV_OK)
        return st;
    if (srv_db_changes(db) == 1)
        return SRV_OK;
    if ((st = srv_db_key_usage(db, key_id, &total, &limit, err)) != SRV_OK)
        return st;
    return srv_fail(err, SRV_E_KEY_USAGE_LIMIT,
                    "the key reached its usage limit: %lld of %lld signatures made, %lld more "
                    "asked",
                    total, limit, n);
}

srv_status srv_db_key_usage(srv_db *db, int64_t key_id, long long *total, long long *limit,
                            srv_error *err)
{
    srv_stmt *s = stmt(db, S_KEY_USAGE, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        *total = srv_col_int64(s, 0);
        *limit = srv_col_int64(s, 1);
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_KEY_NOT_FOUND, "the key no longer exists");
    } else {
        st = srv_db_fail(db, err, "key usage");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_key_set_limit(srv_db *db, int64_t key_id, long long limit, srv_error *err)
{
    srv_stmt *s = stmt(db, S_SET_LIMIT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    if (limit >= 0)
        srv_bind_int64(s, 2, limit);
    else
        srv_bind_null(s, 2);
    return srv_db_step_done(db, s, err, "key usage limit");
}

static void bind_opt(srv_stmt *s, int i, const char *v)
{
    if (v)
        srv_bind_text(s, i, v, -1);
    else
        srv_bind_null(s, i);
}

srv_status srv_db_usage_list(srv_db *db, const srv_usage_filter *f, srv_usage_cb cb, void *ctx,
                             int *more, srv_error *err)
{
    srv_stmt *s = stmt(db, S_LIST, err);
    srv_usage_row row;
    long n = 0;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    *more = 0;
    srv_bind_int64(s, 1, f->from_day);
    srv_bind_int64(s, 2, f->to_day);
    bind_opt(s, 3, f->key);
    bind_opt(s, 4, f->user);
    srv_bind_int64(s, 5, (int64_t)f->limit + 1);
    bind_opt(s, 6, f->project);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        if (n++ == f->limit) {
            *more = 1;
            continue;
        }
        memset(&row, 0, sizeof(row));
        row.day = srv_col_int64(s, 0);
        row.key = (const char *)srv_col_text(s, 1);
        row.user = (const char *)srv_col_text(s, 2);
        row.signatures = srv_col_int64(s, 3);
        row.denials = srv_col_int64(s, 4);
        row.project = (const char *)srv_col_text(s, 5);
        cb(&row, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "usage list");
}
