/* SQLite queries of console sessions and TOTP secrets; see console_db.h. */
#include "console_db.h"

#include <string.h>

#include "db_internal.h"

enum {
    S_TOTP_GET,
    S_TOTP_PENDING,
    S_TOTP_CONFIRM,
    S_TOTP_USED,
    S_TOTP_FAILED,
    S_TOTP_LOCK,
    S_TOTP_DELETE,
    S_TOKEN_CONSOLE_SET,
    S_TOKEN_CONSOLE_GET,
    S_TOKEN_TOUCH,
    S_TOKEN_REVOKE,
    S_COUNT
};
_Static_assert(SRV_DB_SLOT_CONSOLE + S_COUNT <= SRV_DB_EXT_SLOTS, "too few statement slots");

static const char *const sql[S_COUNT] = {
    [S_TOTP_GET] = "SELECT ckaid, enrollment_hash, created_at, coalesce(confirmed_at, 0),"
                   " locked_until, last_step, failures FROM totp_secrets WHERE user_id = ?1",
    [S_TOTP_PENDING] = "INSERT INTO totp_secrets(user_id, ckaid, enrollment_hash,"
                       " created_at) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(user_id) DO UPDATE SET"
                       " ckaid = excluded.ckaid, enrollment_hash = excluded.enrollment_hash,"
                       " created_at = excluded.created_at, confirmed_at = NULL, last_step = 0,"
                       " failures = 0, locked_until = 0",
    [S_TOTP_CONFIRM] = "UPDATE totp_secrets SET confirmed_at = ?3, enrollment_hash = NULL,"
                       " last_step = ?2, failures = 0 WHERE user_id = ?1",
    [S_TOTP_USED] = "UPDATE totp_secrets SET last_step = ?2, failures = 0 WHERE user_id = ?1",
    [S_TOTP_FAILED] = "UPDATE totp_secrets SET failures = failures + 1 WHERE user_id = ?1"
                      " RETURNING failures",
    [S_TOTP_LOCK] = "UPDATE totp_secrets SET failures = 0, locked_until = ?2 WHERE user_id = ?1",
    [S_TOTP_DELETE] = "DELETE FROM totp_secrets WHERE user_id = ?1",
    [S_TOKEN_CONSOLE_SET] = "UPDATE access_tokens SET csrf_hash = ?2, last_seen = ?3"
                            " WHERE hash = ?1",
    [S_TOKEN_CONSOLE_GET] = "SELECT csrf_hash, coalesce(last_seen, 0) FROM access_tokens"
                            " WHERE hash = ?1",
    [S_TOKEN_TOUCH] = "UPDATE access_tokens SET last_seen = ?2 WHERE hash = ?1",
    [S_TOKEN_REVOKE] = "UPDATE access_tokens SET revoked = 1 WHERE hash = ?1",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_CONSOLE + q, sql[q], err);
}

srv_status srv_db_totp_get(srv_db *db, int64_t user_id, srv_totp_row *out, srv_error *err)
{
    srv_stmt *s = stmt(db, S_TOTP_GET, err);
    srv_status st = SRV_OK;
    int rc;
    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW && srv_col_bytes(s, 0) == SRV_CKAID_LEN) {
        memcpy(out->ckaid, srv_col_blob(s, 0), SRV_CKAID_LEN);
        if (srv_col_bytes(s, 1) == 32) {
            out->has_enrollment = 1;
            memcpy(out->enrollment_hash, srv_col_blob(s, 1), 32);
        }
        out->created_at = srv_col_int64(s, 2);
        out->confirmed_at = srv_col_int64(s, 3);
        out->locked_until = srv_col_int64(s, 4);
        out->last_step = srv_col_int64(s, 5);
        out->failures = srv_col_int64(s, 6);
    } else if (rc == SRV_DB_ROW || rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "no TOTP secret");
    } else {
        st = srv_db_fail(db, err, "TOTP lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_totp_put_pending(srv_db *db, int64_t user_id, const uint8_t *ckaid,
                                   const uint8_t enrollment_hash[32], int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_TOTP_PENDING, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_blob(s, 2, ckaid, SRV_CKAID_LEN);
    srv_bind_blob(s, 3, enrollment_hash, 32);
    srv_bind_int64(s, 4, now);
    return srv_db_step_done(db, s, err, "TOTP secret");
}

static srv_status user_step(srv_db *db, int q, int64_t user_id, int64_t a, int64_t b,
                            srv_error *err)
{
    srv_stmt *s = stmt(db, q, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    if (q != S_TOTP_DELETE)
        srv_bind_int64(s, 2, a);
    if (q == S_TOTP_CONFIRM)
        srv_bind_int64(s, 3, b);
    return srv_db_step_done(db, s, err, "TOTP secret");
}

srv_status srv_db_totp_confirm(srv_db *db, int64_t user_id, int64_t step, int64_t now,
                               srv_error *err)
{
    return user_step(db, S_TOTP_CONFIRM, user_id, step, now, err);
}

srv_status srv_db_totp_used(srv_db *db, int64_t user_id, int64_t step, srv_error *err)
{
    return user_step(db, S_TOTP_USED, user_id, step, 0, err);
}

srv_status srv_db_totp_delete(srv_db *db, int64_t user_id, srv_error *err)
{
    return user_step(db, S_TOTP_DELETE, user_id, 0, 0, err);
}

srv_status srv_db_totp_failed(srv_db *db, int64_t user_id, int64_t now, int max, int lock_secs,
                              int *locked, srv_error *err)
{
    srv_stmt *s = stmt(db, S_TOTP_FAILED, err);
    int64_t failures = 0;
    int rc;
    *locked = 0;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        failures = srv_col_int64(s, 0);
    while (rc == SRV_DB_ROW)
        rc = srv_step(s);
    srv_reset(s);
    if (rc != SRV_DB_DONE)
        return srv_db_fail(db, err, "TOTP failure count");
    if (failures < max)
        return SRV_OK;
    *locked = 1;
    return user_step(db, S_TOTP_LOCK, user_id, now + lock_secs, 0, err);
}

static srv_status token_step(srv_db *db, int q, const uint8_t hash[32], const uint8_t *blob,
                             int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, q, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    if (q == S_TOKEN_CONSOLE_SET) {
        srv_bind_blob(s, 2, blob, 32);
        srv_bind_int64(s, 3, now);
    } else if (q == S_TOKEN_TOUCH) {
        srv_bind_int64(s, 2, now);
    }
    return srv_db_step_done(db, s, err, "access token");
}

srv_status srv_db_token_console_set(srv_db *db, const uint8_t hash[32], const uint8_t csrf_hash[32],
                                    int64_t now, srv_error *err)
{
    return token_step(db, S_TOKEN_CONSOLE_SET, hash, csrf_hash, now, err);
}

srv_status srv_db_token_touch(srv_db *db, const uint8_t hash[32], int64_t now, srv_error *err)
{
    return token_step(db, S_TOKEN_TOUCH, hash, NULL, now, err);
}

srv_status srv_db_token_revoke_one(srv_db *db, const uint8_t hash[32], srv_error *err)
{
    return token_step(db, S_TOKEN_REVOKE, hash, NULL, 0, err);
}

srv_status srv_db_token_console_get(srv_db *db, const uint8_t hash[32], int *console,
                                    uint8_t csrf_hash[32], int64_t *last_seen, srv_error *err)
{
    srv_stmt *s = stmt(db, S_TOKEN_CONSOLE_GET, err);
    int rc;
    *console = 0;
    *last_seen = 0;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW && srv_col_bytes(s, 0) == 32) {
        *console = 1;
        memcpy(csrf_hash, srv_col_blob(s, 0), 32);
        *last_seen = srv_col_int64(s, 1);
    }
    srv_reset(s);
    return rc == SRV_DB_ROW || rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "access token");
}
