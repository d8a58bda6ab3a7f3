/* Keys in SQLite: key rows, certificates, grants, and the stored answers of idempotent sign
 * requests (db.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "db_internal.h"

/* ---- keys, certificates, grants ----------------------------------------------------------- */

srv_status srv_db_key_insert(srv_db *db, srv_key *key, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_KEY_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    key->created_at = srv_now();
    srv_bind_text(s, 1, key->name, -1);
    srv_bind_blob(s, 2, key->ckaid, SRV_CKAID_LEN);
    srv_bind_text(s, 3, srv_key_type_name(key->type), -1);
    srv_bind_blob(s, 4, key->spki, (int)key->spki_len);
    srv_bind_int(s, 5, key->is_ca);
    srv_bind_int64(s, 6, key->created_at);
    st = srv_db_step_done(db, s, err, "key");
    if (st == SRV_OK)
        key->id = srv_db_last_rowid(db);
    return st;
}

static srv_status key_from_row(srv_stmt *s, srv_key *out, srv_error *err)
{
    int spki_len = srv_col_bytes(s, 4);
    memset(out, 0, sizeof(*out));
    out->id = srv_col_int64(s, 0);
    srv_db_copy_text(out->name, sizeof(out->name), srv_col_text(s, 1));
    if (srv_col_bytes(s, 2) != SRV_CKAID_LEN ||
        !srv_key_type_parse((const char *)srv_col_text(s, 3), &out->type) || spki_len <= 0)
        return srv_fail(err, SRV_E_DATABASE, "key row %lld is malformed", (long long)out->id);
    memcpy(out->ckaid, srv_col_blob(s, 2), SRV_CKAID_LEN);
    out->spki = malloc((size_t)spki_len);
    if (!out->spki)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    memcpy(out->spki, srv_col_blob(s, 4), (size_t)spki_len);
    out->spki_len = (size_t)spki_len;
    out->is_ca = srv_col_int(s, 5);
    out->disabled = srv_col_int(s, 6);
    out->created_at = srv_col_int64(s, 7);
    out->project_id = srv_col_int64(s, 8);
    srv_db_copy_text(out->project, sizeof(out->project), srv_col_text(s, 9));
    return SRV_OK;
}

srv_status srv_db_key_get(srv_db *db, const char *name, srv_key *out, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_KEY_GET, err);
    srv_status st;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        st = key_from_row(s, out, err);
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_KEY_NOT_FOUND, "no key named \"%s\"", name);
    else
        st = srv_db_fail(db, err, "key lookup");
    srv_reset(s);
    return st;
}

srv_status srv_db_key_disable(srv_db *db, int64_t key_id, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_KEY_DISABLE, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    return srv_db_step_done(db, s, err, "disable key");
}

srv_status srv_db_keys_list(srv_db *db, int64_t user_id, srv_key_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, user_id < 0 ? Q_KEYS_ALL : Q_KEYS_USER, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    if (user_id >= 0)
        srv_bind_int64(s, 1, user_id);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_key k;
        st = key_from_row(s, &k, err);
        if (st != SRV_OK) {
            srv_key_clear(&k);
            break;
        }
        cb(&k, ctx);
        srv_key_clear(&k);
    }
    if (st == SRV_OK && rc != SRV_DB_DONE)
        st = srv_db_fail(db, err, "keys list");
    srv_reset(s);
    return st;
}

srv_status srv_db_cert_set(srv_db *db, int64_t key_id, const uint8_t *der, size_t der_len,
                           const char *chain_pem, int64_t not_after, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_CERT_SET, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_blob(s, 2, der, (int)der_len);
    srv_bind_text(s, 3, chain_pem ? chain_pem : "", -1);
    srv_bind_int64(s, 4, not_after);
    srv_bind_int64(s, 5, srv_now());
    return srv_db_step_done(db, s, err, "certificate");
}

srv_status srv_db_cert_get(srv_db *db, int64_t key_id, srv_cert_record *out, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_CERT_GET, err);
    srv_status st = SRV_OK;
    int rc;
    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        int n = srv_col_bytes(s, 0);
        const unsigned char *chain = srv_col_text(s, 1);
        out->der = malloc(n > 0 ? (size_t)n : 1);
        out->chain_pem = strdup(chain ? (const char *)chain : "");
        if (!out->der || !out->chain_pem) {
            srv_cert_record_clear(out);
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        } else {
            memcpy(out->der, srv_col_blob(s, 0), (size_t)n);
            out->der_len = (size_t)n;
            out->not_after = srv_col_int64(s, 2);
        }
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "the key has no certificate");
    } else {
        st = srv_db_fail(db, err, "certificate lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_grant_insert(srv_db *db, int64_t key_id, int64_t user_id, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_GRANT_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int64(s, 2, user_id);
    srv_bind_int64(s, 3, srv_now());
    return srv_db_step_done(db, s, err, "grant");
}

int srv_db_grant_exists(srv_db *db, int64_t key_id, int64_t user_id)
{
    srv_stmt *s = srv_db_stmt(db, Q_GRANT_EXISTS, NULL);
    int found;
    if (!s)
        return 0;
    srv_bind_int64(s, 1, key_id);
    srv_bind_int64(s, 2, user_id);
    found = srv_step(s) == SRV_DB_ROW;
    srv_reset(s);
    return found;
}

/* ---- idempotent sign requests ------------------------------------------------------------- */

srv_status srv_db_signreq_get(srv_db *db, int64_t user_id, const char *request_id,
                              srv_sign_request *out, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_SIGNREQ_GET, err);
    srv_status st = SRV_OK;
    int rc;
    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_text(s, 2, request_id, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW && srv_col_bytes(s, 0) == 32) {
        const unsigned char *resp = srv_col_text(s, 1);
        out->user_id = user_id;
        memcpy(out->fingerprint, srv_col_blob(s, 0), 32);
        out->created_at = srv_col_int64(s, 2);
        if (resp && !(out->response = strdup((const char *)resp)))
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
    } else if (rc == SRV_DB_ROW || rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "no such request");
    } else {
        st = srv_db_fail(db, err, "request lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_signreq_insert(srv_db *db, int64_t user_id, const char *request_id,
                                 const uint8_t fingerprint[32], const char *response,
                                 srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_SIGNREQ_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_text(s, 2, request_id, -1);
    srv_bind_blob(s, 3, fingerprint, 32);
    srv_bind_text(s, 4, response, -1);
    srv_bind_int64(s, 5, srv_now());
    return srv_db_step_done(db, s, err, "sign request");
}
