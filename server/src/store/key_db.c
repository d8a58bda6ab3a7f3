/* SQLite queries of a key's lifecycle state; see key_db.h. */
#include "key_db.h"

#include <stdio.h>
#include <string.h>

#include "db_internal.h"

enum {
    S_STATE,
    S_SET_STATE,
    S_CERT_REVOKED,
    S_SIGNED_SINCE,
    S_VERSION_KEEP,
    S_KEY_REPLACE,
    S_CERT_DROP,
    S_VERSIONS,
    S_VERSION_RETIRE,
    S_COUNT
};
_Static_assert(SRV_DB_SLOT_KEY + S_COUNT <= SRV_DB_SLOT_AUDIT_QUERY,
               "key queries overlap the audit search's");

static const char *const sql[S_COUNT] = {
    [S_STATE] = "SELECT k.disabled, coalesce(k.disabled_reason, ''), c.key_id IS NOT NULL,"
                " coalesce(c.not_after, 0), coalesce(c.revoked_at, 0), k.signatures_total,"
                " coalesce(k.usage_limit, -1) FROM keys k LEFT JOIN certificates c ON c.key_id = "
                "k.id WHERE k.id = ?1",
    [S_SET_STATE] = "UPDATE keys SET disabled = ?2, disabled_reason = ?3, disabled_at = ?4"
                    " WHERE id = ?1",
    [S_CERT_REVOKED] = "UPDATE certificates SET revoked_at = ?2 WHERE key_id = ?1",
    /* The audit log is append-only and small per key; a suspension is rare. */
    [S_SIGNED_SINCE] = "SELECT seq, time, actor, record FROM audit WHERE action = 'sign'"
                       " AND outcome = 'allowed' AND time >= ?2"
                       " AND json_extract(record, '$.detail.key') = ?1 ORDER BY seq LIMIT ?3",
    [S_VERSION_KEEP] = "INSERT INTO key_versions(key_id, version, ckaid, spki, cert_der, chain_pem,"
                       " cert_not_after, created_at, rotated_at)"
                       " SELECT k.id, k.version, k.ckaid, k.spki, c.der, c.chain_pem, c.not_after,"
                       " k.created_at, ?2 FROM keys k LEFT JOIN certificates c ON c.key_id = k.id"
                       " WHERE k.id = ?1",
    [S_KEY_REPLACE] = "UPDATE keys SET ckaid = ?2, spki = ?3, version = version + 1,"
                      " created_at = ?4 WHERE id = ?1 AND ckaid = ?5",
    [S_CERT_DROP] = "DELETE FROM certificates WHERE key_id = ?1",
    [S_VERSIONS] = "SELECT version, ckaid, cert_der, coalesce(cert_not_after, 0), created_at,"
                   " rotated_at, coalesce(retired_at, 0) FROM key_versions WHERE key_id = ?1"
                   " AND (?2 = 0 OR version = ?2) ORDER BY version",
    [S_VERSION_RETIRE] = "UPDATE key_versions SET retired_at = ?3 WHERE key_id = ?1"
                         " AND version = ?2 AND retired_at IS NULL",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_KEY + q, sql[q], err);
}

srv_status srv_db_key_state(srv_db *db, int64_t key_id, srv_key_state *out, srv_error *err)
{
    srv_stmt *s = stmt(db, S_STATE, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    memset(out, 0, sizeof(*out));
    srv_bind_int64(s, 1, key_id);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        const unsigned char *reason = srv_col_text(s, 1);
        out->disabled = srv_col_int(s, 0);
        snprintf(out->reason, sizeof(out->reason), "%s", reason ? (const char *)reason : "");
        out->has_cert = srv_col_int(s, 2);
        out->cert_not_after = srv_col_int64(s, 3);
        out->cert_revoked_at = srv_col_int64(s, 4);
        out->signatures_total = srv_col_int64(s, 5);
        out->usage_limit = srv_col_int64(s, 6);
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_KEY_NOT_FOUND, "the key no longer exists");
    } else {
        st = srv_db_fail(db, err, "key state");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_key_set_state(srv_db *db, int64_t key_id, int disabled, const char *reason,
                                int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_SET_STATE, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int(s, 2, disabled ? 1 : 0);
    if (disabled && reason)
        srv_bind_text(s, 3, reason, -1);
    else
        srv_bind_null(s, 3);
    srv_bind_int64(s, 4, now);
    return srv_db_step_done(db, s, err, "key state");
}

srv_status srv_db_cert_mark_revoked(srv_db *db, int64_t key_id, int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_CERT_REVOKED, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int64(s, 2, now);
    return srv_db_step_done(db, s, err, "certificate revocation");
}

srv_status srv_db_signatures_since(srv_db *db, const char *key_name, const char *since, long limit,
                                   srv_signature_cb cb, void *ctx, int *more, srv_error *err)
{
    srv_stmt *s = stmt(db, S_SIGNED_SINCE, err);
    srv_signature_row row;
    long n = 0;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    *more = 0;
    srv_bind_text(s, 1, key_name, -1);
    srv_bind_text(s, 2, since, -1);
    srv_bind_int64(s, 3, (int64_t)limit + 1);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        if (n++ == limit) {
            *more = 1;
            continue;
        }
        row.seq = srv_col_int64(s, 0);
        row.time = (const char *)srv_col_text(s, 1);
        row.actor = (const char *)srv_col_text(s, 2);
        row.record = (const char *)srv_col_text(s, 3);
        cb(&row, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "signatures since");
}

srv_status srv_db_key_rotate(srv_db *db, int64_t key_id, const uint8_t *old_ckaid,
                             const uint8_t *ckaid, const uint8_t *spki, size_t spki_len,
                             int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_VERSION_KEEP, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int64(s, 2, now);
    if ((st = srv_db_step_done(db, s, err, "key version")) != SRV_OK)
        return st;
    if (!(s = stmt(db, S_KEY_REPLACE, err)))
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_blob(s, 2, ckaid, SRV_CKAID_LEN);
    srv_bind_blob(s, 3, spki, (int)spki_len);
    srv_bind_int64(s, 4, now);
    srv_bind_blob(s, 5, old_ckaid, SRV_CKAID_LEN);
    if ((st = srv_db_step_done(db, s, err, "key rotation")) != SRV_OK)
        return st;
    if (srv_db_changes(db) != 1)
        return srv_fail(err, SRV_E_EXISTS, "the key was rotated meanwhile; try again");
    if (!(s = stmt(db, S_CERT_DROP, err)))
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    return srv_db_step_done(db, s, err, "certificate");
}

srv_status srv_db_key_versions(srv_db *db, int64_t key_id, int64_t version, srv_key_version_cb cb,
                               void *ctx, srv_error *err)
{
    srv_stmt *s = stmt(db, S_VERSIONS, err);
    srv_key_version v;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int64(s, 2, version);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        memset(&v, 0, sizeof(v));
        v.version = srv_col_int64(s, 0);
        if (srv_col_bytes(s, 1) == SRV_CKAID_LEN)
            memcpy(v.ckaid, srv_col_blob(s, 1), SRV_CKAID_LEN);
        v.cert_der = srv_col_blob(s, 2);
        v.cert_der_len = (size_t)srv_col_bytes(s, 2);
        v.cert_not_after = srv_col_int64(s, 3);
        v.created_at = srv_col_int64(s, 4);
        v.rotated_at = srv_col_int64(s, 5);
        v.retired_at = srv_col_int64(s, 6);
        cb(&v, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "key versions");
}

srv_status srv_db_key_version_retire(srv_db *db, int64_t key_id, int64_t version, int64_t now,
                                     srv_error *err)
{
    srv_stmt *s = stmt(db, S_VERSION_RETIRE, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int64(s, 2, version);
    srv_bind_int64(s, 3, now);
    if ((st = srv_db_step_done(db, s, err, "key version")) != SRV_OK)
        return st;
    if (srv_db_changes(db) != 1)
        return srv_fail(err, SRV_E_NOT_FOUND,
                        "no earlier version %lld of the key that is not "
                        "retired",
                        (long long)version);
    return SRV_OK;
}
