/* Principals in SQLite: users and service accounts, API keys, access tokens, enrollment
 * tokens, enrolled service-account keys and their jtis, machines (db.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "db_internal.h"

/* ---- users and credentials ---------------------------------------------------------------- */

srv_status srv_db_user_insert(srv_db *db, const char *name, srv_role role, int64_t *id,
                              srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_USER_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    srv_bind_text(s, 2, srv_role_name(role), -1);
    srv_bind_int64(s, 3, srv_now());
    st = srv_db_step_done(db, s, err, "user");
    if (st == SRV_OK && id)
        *id = srv_db_last_rowid(db);
    return st;
}

static srv_status user_row(srv_db *db, srv_stmt *s, srv_user *out, srv_error *err)
{
    int rc = srv_step(s);
    srv_status st = SRV_OK;
    if (rc == SRV_DB_ROW) {
        memset(out, 0, sizeof(*out));
        out->id = srv_col_int64(s, 0);
        srv_db_copy_text(out->name, sizeof(out->name), srv_col_text(s, 1));
        srv_role_parse((const char *)srv_col_text(s, 2), &out->role);
        out->disabled = srv_col_int(s, 3);
        out->kind = srv_db_kind_parse(srv_col_text(s, 4));
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_USER_NOT_FOUND, "no such user");
    } else {
        st = srv_db_fail(db, err, "user lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_user_get(srv_db *db, const char *name, srv_user *out, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_USER_GET, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    return user_row(db, s, out, err);
}

srv_status srv_db_user_get_by_id(srv_db *db, int64_t id, srv_user *out, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_USER_GET_ID, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    return user_row(db, s, out, err);
}

srv_status srv_db_users_list(srv_db *db, srv_user_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_USERS_LIST, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_user u;
        memset(&u, 0, sizeof(u));
        u.id = srv_col_int64(s, 0);
        srv_db_copy_text(u.name, sizeof(u.name), srv_col_text(s, 1));
        srv_role_parse((const char *)srv_col_text(s, 2), &u.role);
        u.disabled = srv_col_int(s, 3);
        u.kind = srv_db_kind_parse(srv_col_text(s, 4));
        cb(&u, srv_col_int64(s, 5), ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "users list");
}

srv_status srv_db_service_account_insert(srv_db *db, const char *name, int64_t *id, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_SA_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    srv_bind_int64(s, 2, srv_now());
    st = srv_db_step_done(db, s, err, "service account");
    if (st == SRV_OK && id)
        *id = srv_db_last_rowid(db);
    return st;
}

srv_status srv_db_apikey_insert(srv_db *db, int64_t user_id, const char *prefix,
                                const uint8_t hash[32], srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_APIKEY_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_text(s, 2, prefix, -1);
    srv_bind_blob(s, 3, hash, 32);
    srv_bind_int64(s, 4, srv_now());
    return srv_db_step_done(db, s, err, "api key");
}

srv_status srv_db_apikey_find(srv_db *db, const char *prefix, int64_t *user_id, uint8_t hash[32],
                              srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_APIKEY_FIND, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, prefix, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW && srv_col_bytes(s, 1) == 32) {
        *user_id = srv_col_int64(s, 0);
        memcpy(hash, srv_col_blob(s, 1), 32);
    } else if (rc == SRV_DB_ROW || rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS, "unknown or revoked API key");
    } else {
        st = srv_db_fail(db, err, "api key lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_token_insert(srv_db *db, const uint8_t hash[32], int64_t user_id,
                               int64_t expires_at, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_TOKEN_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    srv_bind_int64(s, 2, user_id);
    srv_bind_int64(s, 3, expires_at);
    return srv_db_step_done(db, s, err, "access token");
}

srv_status srv_db_token_find(srv_db *db, const uint8_t hash[32], int64_t *user_id,
                             int64_t *expires_at, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_TOKEN_FIND, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        *user_id = srv_col_int64(s, 0);
        *expires_at = srv_col_int64(s, 1);
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_TOKEN_INVALID,
                      "access token not recognised (unknown, or revoked: get a new one)");
    } else {
        st = srv_db_fail(db, err, "token lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_token_bind(srv_db *db, const uint8_t hash[32], int64_t machine_id, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_TOKEN_BIND, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    srv_bind_int64(s, 2, machine_id);
    return srv_db_step_done(db, s, err, "token binding");
}

srv_status srv_db_token_machine(srv_db *db, const uint8_t hash[32], int64_t *machine_id,
                                srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_TOKEN_MACHINE, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        *machine_id = srv_col_int64(s, 0); /* NULL reads as 0: unbound */
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_TOKEN_INVALID, "access token not recognised");
    else
        st = srv_db_fail(db, err, "token binding lookup");
    srv_reset(s);
    return st;
}

srv_status srv_db_tokens_revoke(srv_db *db, int64_t user_id, int64_t machine_id, int64_t *count,
                                srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, machine_id ? Q_TOKENS_REVOKE_MACHINE : Q_TOKENS_REVOKE_USER, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, machine_id ? machine_id : user_id);
    srv_bind_int64(s, 2, srv_now());
    st = srv_db_step_done(db, s, err, "token revocation");
    if (st == SRV_OK && count)
        *count = srv_db_changes(db);
    return st;
}

/* ---- enrollment ----------------------------------------------------------------------------- */

static void bind_id_or_null(srv_stmt *s, int i, int64_t id)
{
    if (id)
        srv_bind_int64(s, i, id);
    else
        srv_bind_null(s, i);
}

srv_status srv_db_enroll_token_insert(srv_db *db, const uint8_t hash[32],
                                      const srv_enroll_token *tok, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_ENROLL_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    bind_id_or_null(s, 2, tok->user_id);
    bind_id_or_null(s, 3, tok->machine_id);
    srv_bind_int64(s, 4, tok->expires_at);
    srv_bind_int64(s, 5, srv_now());
    return srv_db_step_done(db, s, err, "enrollment token");
}

srv_status srv_db_enroll_token_get(srv_db *db, const uint8_t hash[32], srv_enroll_token *out,
                                   srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_ENROLL_GET, err);
    srv_status st = SRV_OK;
    int rc;
    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        out->user_id = srv_col_int64(s, 0);
        out->machine_id = srv_col_int64(s, 1);
        out->expires_at = srv_col_int64(s, 2);
        out->used_at = srv_col_int64(s, 3);
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "unknown enrollment token");
    } else {
        st = srv_db_fail(db, err, "enrollment token lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_enroll_token_use(srv_db *db, const uint8_t hash[32], int64_t now, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_ENROLL_USE, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    srv_bind_int64(s, 2, now);
    st = srv_db_step_done(db, s, err, "enrollment token");
    if (st == SRV_OK && srv_db_changes(db) != 1)
        st = srv_fail(err, SRV_E_BAD_CREDENTIALS,
                      "enrollment token was used or expired meanwhile; ask for a new one");
    return st;
}

srv_status srv_db_sa_key_insert(srv_db *db, const char *kid, int64_t user_id, const uint8_t *spki,
                                size_t spki_len, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_SAKEY_INSERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, kid, -1);
    srv_bind_int64(s, 2, user_id);
    srv_bind_blob(s, 3, spki, (int)spki_len);
    srv_bind_int64(s, 4, srv_now());
    return srv_db_step_done(db, s, err, "service account key");
}

srv_status srv_db_sa_key_get(srv_db *db, int64_t user_id, const char *kid, uint8_t **spki,
                             size_t *spki_len, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_SAKEY_GET, err);
    srv_status st = SRV_OK;
    int rc;
    *spki = NULL;
    *spki_len = 0;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_text(s, 2, kid, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW && srv_col_bytes(s, 0) > 0) {
        int n = srv_col_bytes(s, 0);
        *spki = malloc((size_t)n);
        if (!*spki) {
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        } else {
            memcpy(*spki, srv_col_blob(s, 0), (size_t)n);
            *spki_len = (size_t)n;
        }
    } else if (rc == SRV_DB_ROW || rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "no such service account key");
    } else {
        st = srv_db_fail(db, err, "service account key lookup");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_jti_use(srv_db *db, int64_t user_id, const char *jti, int64_t expires_at,
                          int64_t now, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_JTI_PURGE, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, now);
    if ((st = srv_db_step_done(db, s, err, "jti purge")) != SRV_OK)
        return st;
    if (!(s = srv_db_stmt(db, Q_JTI_INSERT, err)))
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_text(s, 2, jti, -1);
    srv_bind_int64(s, 3, expires_at);
    return srv_db_step_done(db, s, err, "jti");
}

/* ---- machines ------------------------------------------------------------------------------- */

srv_status srv_db_machine_insert(srv_db *db, const char *name, int64_t *id, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_MACHINE_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    srv_bind_int64(s, 2, srv_now());
    st = srv_db_step_done(db, s, err, "machine");
    if (st == SRV_OK && id)
        *id = srv_db_last_rowid(db);
    return st;
}

static void machine_from_row(srv_stmt *s, srv_machine *out)
{
    memset(out, 0, sizeof(*out));
    out->id = srv_col_int64(s, 0);
    srv_db_copy_text(out->name, sizeof(out->name), srv_col_text(s, 1));
    out->revoked = srv_col_int(s, 2);
    if (srv_col_bytes(s, 3) == 32) {
        out->enrolled = 1;
        memcpy(out->cert_sha256, srv_col_blob(s, 3), 32);
        srv_db_copy_text(out->cert_serial, sizeof(out->cert_serial), srv_col_text(s, 4));
        out->cert_not_after = srv_col_int64(s, 5);
        out->enrolled_at = srv_col_int64(s, 6);
    }
    out->created_at = srv_col_int64(s, 7);
}

static srv_status machine_row(srv_db *db, srv_stmt *s, srv_machine *out, srv_error *err)
{
    int rc = srv_step(s);
    srv_status st = SRV_OK;
    if (rc == SRV_DB_ROW)
        machine_from_row(s, out);
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no such machine");
    else
        st = srv_db_fail(db, err, "machine lookup");
    srv_reset(s);
    return st;
}

srv_status srv_db_machine_get(srv_db *db, const char *name, srv_machine *out, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_MACHINE_GET, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    return machine_row(db, s, out, err);
}

srv_status srv_db_machine_get_by_id(srv_db *db, int64_t id, srv_machine *out, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_MACHINE_GET_ID, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    return machine_row(db, s, out, err);
}

srv_status srv_db_machine_by_cert(srv_db *db, const uint8_t sha256[32], srv_machine *out,
                                  srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_MACHINE_BY_CERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, sha256, 32);
    return machine_row(db, s, out, err);
}

srv_status srv_db_machine_set_cert(srv_db *db, int64_t id, const uint8_t sha256[32],
                                   const char *serial, int64_t not_after, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_MACHINE_SET_CERT, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    srv_bind_blob(s, 2, sha256, 32);
    srv_bind_text(s, 3, serial, -1);
    srv_bind_int64(s, 4, not_after);
    srv_bind_int64(s, 5, srv_now());
    return srv_db_step_done(db, s, err, "machine certificate");
}

srv_status srv_db_machine_set_revoked(srv_db *db, int64_t id, int revoked, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_MACHINE_SET_REVOKED, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    srv_bind_int64(s, 2, revoked ? 1 : 0);
    return srv_db_step_done(db, s, err, "machine revocation");
}

srv_status srv_db_machines_list(srv_db *db, srv_machine_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_MACHINES_LIST, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        srv_machine m;
        machine_from_row(s, &m);
        cb(&m, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "machines list");
}
