/* SQLite queries of the built-in CA's revocations and CRL; see ca_db.h. */
#include "ca_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

enum { S_REVOKE, S_REVOKED_GET, S_REVOKED_LIST, S_CRL_GET, S_CRL_PUT, S_COUNT };
_Static_assert(SRV_DB_SLOT_CA + S_COUNT <= SRV_DB_SLOT_KEY, "ca queries overlap key_db.c's");

static const char *const sql[S_COUNT] = {
    [S_REVOKE] = "INSERT INTO cert_revocations(serial, key_id, reason, revoked_at, not_after)"
                 " VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_REVOKED_GET] = "SELECT serial, key_id, reason, revoked_at, not_after"
                      " FROM cert_revocations WHERE serial = ?1",
    [S_REVOKED_LIST] = "SELECT serial, key_id, reason, revoked_at, not_after"
                       " FROM cert_revocations ORDER BY revoked_at, serial",
    [S_CRL_GET] = "SELECT number, der, next_update FROM crl WHERE id = 1",
    [S_CRL_PUT] = "INSERT INTO crl(id, number, der, this_update, next_update)"
                  " VALUES(1, ?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET"
                  " number = excluded.number, der = excluded.der,"
                  " this_update = excluded.this_update, next_update = excluded.next_update",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_CA + q, sql[q], err);
}

static void revocation_row(srv_stmt *s, srv_revocation *r)
{
    const unsigned char *serial = srv_col_text(s, 0);
    memset(r, 0, sizeof(*r));
    snprintf(r->serial, sizeof(r->serial), "%s", serial ? (const char *)serial : "");
    r->key_id = srv_col_int64(s, 1);
    r->reason = srv_col_int(s, 2);
    r->revoked_at = srv_col_int64(s, 3);
    r->not_after = srv_col_int64(s, 4);
}

srv_status srv_db_revocation_insert(srv_db *db, const srv_revocation *r, srv_error *err)
{
    srv_stmt *s = stmt(db, S_REVOKE, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, r->serial, -1);
    srv_bind_int64(s, 2, r->key_id);
    srv_bind_int(s, 3, r->reason);
    srv_bind_int64(s, 4, r->revoked_at);
    srv_bind_int64(s, 5, r->not_after);
    return srv_db_step_done(db, s, err, "certificate revocation");
}

srv_status srv_db_revocation_get(srv_db *db, const char *serial, srv_revocation *out,
                                 srv_error *err)
{
    srv_stmt *s = stmt(db, S_REVOKED_GET, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, serial, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        revocation_row(s, out);
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_NOT_FOUND, "certificate %s is not revoked", serial);
    else
        st = srv_db_fail(db, err, "revocation lookup");
    srv_reset(s);
    return st;
}

srv_status srv_db_revocations_list(srv_db *db, srv_revocation_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = stmt(db, S_REVOKED_LIST, err);
    srv_revocation r;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        revocation_row(s, &r);
        cb(&r, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "revocation list");
}

srv_status srv_db_crl_get(srv_db *db, int64_t *number, uint8_t **der, size_t *der_len,
                          int64_t *next_update, srv_error *err)
{
    srv_stmt *s = stmt(db, S_CRL_GET, err);
    srv_status st = SRV_OK;
    int rc;
    *der = NULL;
    if (!s)
        return SRV_E_DATABASE;
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        int n = srv_col_bytes(s, 1);
        *number = srv_col_int64(s, 0);
        *next_update = srv_col_int64(s, 2);
        *der = n > 0 ? malloc((size_t)n) : NULL;
        if (!*der)
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        else {
            memcpy(*der, srv_col_blob(s, 1), (size_t)n);
            *der_len = (size_t)n;
        }
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "no CRL yet");
    } else {
        st = srv_db_fail(db, err, "CRL lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_crl_put(srv_db *db, int64_t number, const uint8_t *der, size_t der_len,
                          int64_t this_update, int64_t next_update, srv_error *err)
{
    srv_stmt *s = stmt(db, S_CRL_PUT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, number);
    srv_bind_blob(s, 2, der, (int)der_len);
    srv_bind_int64(s, 3, this_update);
    srv_bind_int64(s, 4, next_update);
    return srv_db_step_done(db, s, err, "CRL");
}
