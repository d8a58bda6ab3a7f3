/* SQLite queries of the identity lifecycle; see identity_db.h. */
#include "identity_db.h"

#include <stdio.h>
#include <string.h>

#include "../common/util.h"
#include "db_internal.h"

enum {
    S_IDS_LIST,
    S_ID_GET,
    S_ID_SET_DISABLED,
    S_ID_DELETE,
    S_ID_DROP_GRANTS,
    S_APIKEYS_LIST,
    S_APIKEY_ACTIVE,
    S_APIKEY_REVOKE_ONE,
    S_APIKEY_REVOKE_ALL,
    S_APIKEY_TOKENS_REVOKE,
    S_APIKEY_TOUCH,
    S_SAKEYS_LIST,
    S_SAKEY_REVOKE_ONE,
    S_SAKEY_REVOKE_ALL,
    S_SAKEY_TOKENS_REVOKE,
    S_SAKEY_USE,
    S_TOKEN_SOURCE,
    S_COUNT
};
_Static_assert(SRV_DB_SLOT_IDENTITY + S_COUNT <= SRV_DB_SLOT_CA,
               "identity queries overlap ca_db.c's");

#define ID_COLUMNS "id, name, role, disabled, kind, created_at, coalesce(deleted_at, 0)"

static const char *const sql[S_COUNT] = {
    [S_IDS_LIST] = "SELECT " ID_COLUMNS " FROM users WHERE kind = ?1"
                   " AND (?2 <> 0 OR deleted_at IS NULL) ORDER BY name",
    [S_ID_GET] = "SELECT " ID_COLUMNS " FROM users WHERE name = ?1",
    [S_ID_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE id = ?1 AND deleted_at IS NULL",
    [S_ID_DELETE] = "UPDATE users SET disabled = 1, deleted_at = ?2 WHERE id = ?1"
                    " AND deleted_at IS NULL",
    [S_ID_DROP_GRANTS] = "DELETE FROM grants WHERE user_id = ?1",
    [S_APIKEYS_LIST] = "SELECT id, prefix, created_at, coalesce(last_used_at, 0), revoked,"
                       " coalesce(revoked_at, 0) FROM api_keys WHERE user_id = ?1 ORDER BY id",
    [S_APIKEY_ACTIVE] = "SELECT id FROM api_keys WHERE user_id = ?1 AND prefix = ?2"
                        " AND revoked = 0",
    [S_APIKEY_REVOKE_ONE] = "UPDATE api_keys SET revoked = 1, revoked_at = ?3"
                            " WHERE user_id = ?1 AND prefix = ?2 AND revoked = 0",
    [S_APIKEY_REVOKE_ALL] = "UPDATE api_keys SET revoked = 1, revoked_at = ?3"
                            " WHERE user_id = ?1 AND revoked = 0 AND ?2 IS NULL",
    [S_APIKEY_TOKENS_REVOKE] = "UPDATE access_tokens SET revoked = 1 WHERE revoked = 0"
                               " AND expires_at > ?3 AND api_key_id IN (SELECT id FROM api_keys"
                               " WHERE user_id = ?1 AND (?2 IS NULL OR prefix = ?2))",
    [S_APIKEY_TOUCH] = "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
    [S_SAKEYS_LIST] = "SELECT kid, created_at, coalesce(revoked_at, 0), coalesce(last_used_at, 0)"
                      " FROM service_account_keys WHERE user_id = ?1 ORDER BY created_at, kid",
    [S_SAKEY_REVOKE_ONE] = "UPDATE service_account_keys SET revoked_at = ?3"
                           " WHERE user_id = ?1 AND kid = ?2 AND revoked_at IS NULL",
    [S_SAKEY_REVOKE_ALL] = "UPDATE service_account_keys SET revoked_at = ?3"
                           " WHERE user_id = ?1 AND revoked_at IS NULL AND ?2 IS NULL",
    [S_SAKEY_TOKENS_REVOKE] = "UPDATE access_tokens SET revoked = 1 WHERE revoked = 0"
                              " AND expires_at > ?3 AND user_id = ?1 AND sa_kid IS NOT NULL"
                              " AND (?2 IS NULL OR sa_kid = ?2)",
    [S_SAKEY_USE] = "UPDATE service_account_keys SET last_used_at = ?3"
                    " WHERE user_id = ?1 AND kid = ?2 AND revoked_at IS NULL",
    [S_TOKEN_SOURCE] = "UPDATE access_tokens SET api_key_id = ?2, sa_kid = ?3 WHERE hash = ?1",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_IDENTITY + q, sql[q], err);
}

static void copy_column(char *dst, size_t len, srv_stmt *s, int col)
{
    const unsigned char *t = srv_col_text(s, col);
    snprintf(dst, len, "%s", t ? (const char *)t : "");
}

static void identity_row(srv_stmt *s, srv_identity *out)
{
    const unsigned char *kind = srv_col_text(s, 4);
    memset(out, 0, sizeof(*out));
    out->user.id = srv_col_int64(s, 0);
    copy_column(out->user.name, sizeof(out->user.name), s, 1);
    srv_role_parse((const char *)srv_col_text(s, 2), &out->user.role);
    out->user.disabled = srv_col_int(s, 3);
    out->user.kind =
        kind && !strcmp((const char *)kind, "service") ? SRV_KIND_SERVICE : SRV_KIND_USER;
    out->created_at = srv_col_int64(s, 5);
    out->deleted_at = srv_col_int64(s, 6);
}

srv_status srv_db_identities_list(srv_db *db, srv_user_kind kind, int include_deleted,
                                  srv_identity_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = stmt(db, S_IDS_LIST, err);
    srv_identity id;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, kind == SRV_KIND_SERVICE ? "service" : "user", -1);
    srv_bind_int(s, 2, include_deleted ? 1 : 0);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        identity_row(s, &id);
        cb(&id, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "identities list");
}

srv_status srv_db_identity_get(srv_db *db, const char *name, srv_identity *out, srv_error *err)
{
    srv_stmt *s = stmt(db, S_ID_GET, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, name, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        identity_row(s, out);
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_USER_NOT_FOUND, "no user or service account named \"%s\"", name);
    else
        st = srv_db_fail(db, err, "identity lookup");
    srv_reset(s);
    return st;
}

/* Runs an UPDATE/DELETE bound to (id, optional text, time); *changed gets the row count. */
static srv_status run_change(srv_db *db, int q, int64_t id, const char *text, int64_t now,
                             int64_t *changed, srv_error *err)
{
    srv_stmt *s = stmt(db, q, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    if (text)
        srv_bind_text(s, 2, text, -1);
    else
        srv_bind_null(s, 2);
    if (srv_stmt_param_count(s) >= 3)
        srv_bind_int64(s, 3, now);
    st = srv_db_step_done(db, s, err, "identity change");
    if (st == SRV_OK && changed)
        *changed = srv_db_changes(db);
    return st;
}

srv_status srv_db_identity_set_disabled(srv_db *db, int64_t user_id, int disabled, srv_error *err)
{
    srv_stmt *s = stmt(db, S_ID_SET_DISABLED, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_int(s, 2, disabled ? 1 : 0);
    return srv_db_step_done(db, s, err, "identity state");
}

srv_status srv_db_identity_mark_deleted(srv_db *db, int64_t user_id, int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_ID_DELETE, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_int64(s, 2, now);
    return srv_db_step_done(db, s, err, "identity delete");
}

srv_status srv_db_identity_drop_grants(srv_db *db, int64_t user_id, int64_t *count, srv_error *err)
{
    srv_stmt *s = stmt(db, S_ID_DROP_GRANTS, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    st = srv_db_step_done(db, s, err, "grants");
    if (st == SRV_OK)
        *count = srv_db_changes(db);
    return st;
}

srv_status srv_db_apikeys_list(srv_db *db, int64_t user_id, srv_apikey_cb cb, void *ctx,
                               srv_error *err)
{
    srv_stmt *s = stmt(db, S_APIKEYS_LIST, err);
    srv_apikey_info k;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        memset(&k, 0, sizeof(k));
        k.id = srv_col_int64(s, 0);
        copy_column(k.prefix, sizeof(k.prefix), s, 1);
        k.created_at = srv_col_int64(s, 2);
        k.last_used_at = srv_col_int64(s, 3);
        k.revoked = srv_col_int(s, 4);
        k.revoked_at = srv_col_int64(s, 5);
        cb(&k, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "api key list");
}

srv_status srv_db_apikey_active_id(srv_db *db, int64_t user_id, const char *prefix, int64_t *id,
                                   srv_error *err)
{
    srv_stmt *s = stmt(db, S_APIKEY_ACTIVE, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    srv_bind_text(s, 2, prefix, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        *id = srv_col_int64(s, 0);
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no unrevoked API key with prefix %s", prefix);
    else
        st = srv_db_fail(db, err, "api key lookup");
    srv_reset(s);
    return st;
}

srv_status srv_db_apikeys_revoke(srv_db *db, int64_t user_id, const char *prefix, int64_t now,
                                 int64_t *keys, int64_t *tokens, srv_error *err)
{
    int64_t one = 0, all = 0;
    srv_status st;
    /* Tokens first: the statement finds them through keys that are not yet revoked or are. */
    if ((st = run_change(db, S_APIKEY_TOKENS_REVOKE, user_id, prefix, now, tokens, err)) !=
            SRV_OK ||
        (st = run_change(db, S_APIKEY_REVOKE_ONE, user_id, prefix, now, &one, err)) != SRV_OK ||
        (st = run_change(db, S_APIKEY_REVOKE_ALL, user_id, prefix, now, &all, err)) != SRV_OK)
        return st;
    *keys = prefix ? one : all;
    if (prefix && one == 0)
        return srv_fail(err, SRV_E_NOT_FOUND, "no unrevoked API key with prefix %s", prefix);
    return SRV_OK;
}

srv_status srv_db_apikey_touch(srv_db *db, int64_t id, int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_APIKEY_TOUCH, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, id);
    srv_bind_int64(s, 2, now);
    return srv_db_step_done(db, s, err, "api key use");
}

srv_status srv_db_sakeys_list(srv_db *db, int64_t user_id, srv_sakey_cb cb, void *ctx,
                              srv_error *err)
{
    srv_stmt *s = stmt(db, S_SAKEYS_LIST, err);
    srv_sakey_info k;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    while ((rc = srv_step(s)) == SRV_DB_ROW) {
        memset(&k, 0, sizeof(k));
        copy_column(k.kid, sizeof(k.kid), s, 0);
        k.created_at = srv_col_int64(s, 1);
        k.revoked_at = srv_col_int64(s, 2);
        k.last_used_at = srv_col_int64(s, 3);
        cb(&k, ctx);
    }
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "enrolled key list");
}

srv_status srv_db_sakeys_revoke(srv_db *db, int64_t user_id, const char *kid, int64_t now,
                                int64_t *keys, int64_t *tokens, srv_error *err)
{
    int64_t one = 0, all = 0;
    srv_status st;
    if ((st = run_change(db, S_SAKEY_REVOKE_ONE, user_id, kid, now, &one, err)) != SRV_OK ||
        (st = run_change(db, S_SAKEY_REVOKE_ALL, user_id, kid, now, &all, err)) != SRV_OK)
        return st;
    *keys = kid ? one : all;
    if (kid && one == 0)
        return srv_fail(err, SRV_E_NOT_FOUND, "no unrevoked enrolled key with kid %s", kid);
    return run_change(db, S_SAKEY_TOKENS_REVOKE, user_id, kid, now, tokens, err);
}

srv_status srv_db_sakey_use(srv_db *db, int64_t user_id, const char *kid, int64_t now,
                            srv_error *err)
{
    int64_t changed = 0;
    srv_status st = run_change(db, S_SAKEY_USE, user_id, kid, now, &changed, err);
    if (st == SRV_OK && changed == 0)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "the enrolled key %s is revoked", kid);
    return st;
}

srv_status srv_db_token_set_source(srv_db *db, const uint8_t hash[32], int64_t api_key_id,
                                   const char *kid, srv_error *err)
{
    srv_stmt *s = stmt(db, S_TOKEN_SOURCE, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_blob(s, 1, hash, 32);
    if (api_key_id)
        srv_bind_int64(s, 2, api_key_id);
    else
        srv_bind_null(s, 2);
    if (kid)
        srv_bind_text(s, 3, kid, -1);
    else
        srv_bind_null(s, 3);
    return srv_db_step_done(db, s, err, "token source");
}
