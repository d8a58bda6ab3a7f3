/* The queries of the principal, key and audit families (one table, each statement prepared
 * once per connection), the meta settings, and the store's small shared helpers. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/util.h"
#include "db_internal.h"

static const char *const queries[Q_COUNT] = {
    [Q_USER_INSERT] = "INSERT INTO users(name, role, created_at) VALUES(?1, ?2, ?3)",
    [Q_USER_GET] = "SELECT id, name, role, disabled, kind FROM users WHERE name = ?1",
    [Q_USER_GET_ID] = "SELECT id, name, role, disabled, kind FROM users WHERE id = ?1",
    [Q_USERS_LIST] = "SELECT id, name, role, disabled, kind, created_at FROM users"
                     " WHERE deleted_at IS NULL ORDER BY name",
    [Q_SA_INSERT] = "INSERT INTO users(name, role, kind, created_at) VALUES(?1, 'signer',"
                    " 'service', ?2)",
    [Q_APIKEY_INSERT] =
        "INSERT INTO api_keys(user_id, prefix, hash, created_at) VALUES(?1, ?2, ?3, ?4)",
    [Q_APIKEY_FIND] = "SELECT user_id, hash FROM api_keys WHERE prefix = ?1 AND revoked = 0",
    [Q_TOKEN_INSERT] = "INSERT INTO access_tokens(hash, user_id, expires_at) VALUES(?1, ?2, ?3)",
    [Q_TOKEN_FIND] =
        "SELECT user_id, expires_at FROM access_tokens WHERE hash = ?1 AND revoked = 0",
    [Q_TOKEN_BIND] = "UPDATE access_tokens SET machine_id = ?2 WHERE hash = ?1",
    [Q_TOKEN_MACHINE] = "SELECT machine_id FROM access_tokens WHERE hash = ?1",
    [Q_TOKENS_REVOKE_USER] = "UPDATE access_tokens SET revoked = 1"
                             " WHERE user_id = ?1 AND revoked = 0 AND expires_at > ?2",
    [Q_TOKENS_REVOKE_MACHINE] = "UPDATE access_tokens SET revoked = 1"
                                " WHERE machine_id = ?1 AND revoked = 0 AND expires_at > ?2",
    [Q_ENROLL_INSERT] = "INSERT INTO enrollment_tokens(hash, user_id, machine_id, expires_at,"
                        " created_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_ENROLL_GET] =
        "SELECT user_id, machine_id, expires_at, used_at FROM enrollment_tokens WHERE hash = ?1",
    [Q_ENROLL_USE] = "UPDATE enrollment_tokens SET used_at = ?2"
                     " WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
    [Q_SAKEY_INSERT] = "INSERT INTO service_account_keys(kid, user_id, spki, created_at)"
                       " VALUES(?1, ?2, ?3, ?4)",
    [Q_SAKEY_GET] = "SELECT spki FROM service_account_keys WHERE user_id = ?1 AND kid = ?2"
                    " AND revoked_at IS NULL",
    [Q_JTI_PURGE] = "DELETE FROM used_jtis WHERE expires_at <= ?1",
    [Q_JTI_INSERT] = "INSERT INTO used_jtis(user_id, jti, expires_at) VALUES(?1, ?2, ?3)",
    [Q_MACHINE_INSERT] = "INSERT INTO machines(name, created_at) VALUES(?1, ?2)",
    [Q_MACHINE_GET] = "SELECT id, name, revoked, cert_sha256, cert_serial, cert_not_after,"
                      " enrolled_at, created_at FROM machines WHERE name = ?1",
    [Q_MACHINE_GET_ID] = "SELECT id, name, revoked, cert_sha256, cert_serial, cert_not_after,"
                         " enrolled_at, created_at FROM machines WHERE id = ?1",
    [Q_MACHINE_BY_CERT] = "SELECT id, name, revoked, cert_sha256, cert_serial, cert_not_after,"
                          " enrolled_at, created_at FROM machines WHERE cert_sha256 = ?1",
    [Q_MACHINE_SET_CERT] = "UPDATE machines SET cert_sha256 = ?2, cert_serial = ?3,"
                           " cert_not_after = ?4, enrolled_at = ?5 WHERE id = ?1",
    [Q_MACHINE_SET_REVOKED] = "UPDATE machines SET revoked = ?2 WHERE id = ?1",
    [Q_MACHINES_LIST] = "SELECT id, name, revoked, cert_sha256, cert_serial, cert_not_after,"
                        " enrolled_at, created_at FROM machines ORDER BY name",
    [Q_KEY_INSERT] = "INSERT INTO keys(name, ckaid, type, spki, is_ca, disabled, created_at)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6)",
    [Q_KEY_GET] = "SELECT id, name, ckaid, type, spki, is_ca, disabled, created_at, project_id,"
                  " (SELECT p.name FROM projects p WHERE p.id = keys.project_id) FROM keys"
                  " WHERE name = ?1",
    [Q_KEY_DISABLE] = "UPDATE keys SET disabled = 1 WHERE id = ?1",
    [Q_KEYS_ALL] = "SELECT id, name, ckaid, type, spki, is_ca, disabled, created_at, project_id,"
                   " (SELECT p.name FROM projects p WHERE p.id = keys.project_id) FROM keys"
                   " WHERE is_ca = 0 ORDER BY keys.name",
    [Q_KEYS_USER] = "SELECT k.id, k.name, k.ckaid, k.type, k.spki, k.is_ca, k.disabled,"
                    " k.created_at, k.project_id, (SELECT p.name FROM projects p"
                    " WHERE p.id = k.project_id) FROM keys k JOIN grants g ON g.key_id = k.id"
                    " WHERE g.user_id = ?1 AND k.disabled = 0 AND k.is_ca = 0 ORDER BY k.name",
    [Q_CERT_SET] = "INSERT INTO certificates(key_id, der, chain_pem, not_after, created_at)"
                   " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(key_id) DO UPDATE SET"
                   " der = excluded.der, chain_pem = excluded.chain_pem,"
                   " not_after = excluded.not_after, created_at = excluded.created_at,"
                   " revoked_at = NULL",
    [Q_CERT_GET] = "SELECT der, chain_pem, not_after FROM certificates WHERE key_id = ?1",
    [Q_GRANT_INSERT] = "INSERT INTO grants(key_id, user_id, created_at) VALUES(?1, ?2, ?3)",
    [Q_GRANT_EXISTS] = "SELECT 1 FROM grants WHERE key_id = ?1 AND user_id = ?2",
    [Q_SIGNREQ_GET] = "SELECT fingerprint, response, created_at FROM sign_requests"
                      " WHERE user_id = ?1 AND request_id = ?2",
    [Q_SIGNREQ_INSERT] = "INSERT INTO sign_requests(user_id, request_id, fingerprint, response,"
                         " created_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [Q_AUDIT_INSERT] = "INSERT INTO audit(seq, time, actor, action, outcome, record, hash)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_AUDIT_ITER] = "SELECT seq, time, actor, action, outcome, record, hash FROM audit"
                     " WHERE seq > ?1 ORDER BY seq",
    [Q_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [Q_AUDIT_KEY_INSERT] = "INSERT INTO audit_keys(ckaid, type, spki, created_at)"
                           " VALUES(?1, ?2, ?3, ?4)",
    [Q_AUDIT_KEY_LATEST] = "SELECT id, ckaid, type, spki FROM audit_keys ORDER BY id DESC LIMIT 1",
    [Q_AUDIT_KEYS_ALL] = "SELECT id, ckaid, type, spki FROM audit_keys ORDER BY id",
    [Q_CHECKPOINT_INSERT] = "INSERT INTO audit_checkpoints(seq, key_id, payload, signature,"
                            " tsa_token) VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_CHECKPOINT_LAST] = "SELECT seq, key_id, payload, signature, tsa_token"
                          " FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
    [Q_CHECKPOINTS_ALL] = "SELECT seq, key_id, payload, signature, tsa_token"
                          " FROM audit_checkpoints ORDER BY seq",
    [Q_CURSOR_GET] = "SELECT seq FROM export_cursors WHERE sink = ?1",
    [Q_CURSOR_SET] = "INSERT INTO export_cursors(sink, seq, updated_at) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(sink) DO UPDATE SET seq = excluded.seq,"
                     " updated_at = excluded.updated_at",
};

/* Returns the cached statement for q, reset and with bindings cleared. */
srv_stmt *srv_db_stmt(srv_db *db, query_id q, srv_error *err)
{
    return srv_db_stmt_sql(db, q, queries[q], err);
}

void srv_key_clear(srv_key *key)
{
    free(key->spki);
    memset(key, 0, sizeof(*key));
}

void srv_cert_record_clear(srv_cert_record *cert)
{
    free(cert->der);
    free(cert->chain_pem);
    memset(cert, 0, sizeof(*cert));
}

void srv_sign_request_clear(srv_sign_request *req)
{
    free(req->response);
    memset(req, 0, sizeof(*req));
}

const char *srv_role_name(srv_role role)
{
    return role == SRV_ROLE_ADMIN ? "admin" : "signer";
}

int srv_role_parse(const char *name, srv_role *out)
{
    if (strcmp(name, "admin") == 0)
        *out = SRV_ROLE_ADMIN;
    else if (strcmp(name, "signer") == 0)
        *out = SRV_ROLE_SIGNER;
    else
        return 0;
    return 1;
}

const char *srv_user_kind_name(srv_user_kind kind)
{
    return kind == SRV_KIND_SERVICE ? "service" : "user";
}

srv_user_kind srv_db_kind_parse(const unsigned char *text)
{
    return text && strcmp((const char *)text, "service") == 0 ? SRV_KIND_SERVICE : SRV_KIND_USER;
}

void srv_db_copy_text(char *dst, size_t len, const unsigned char *src)
{
    snprintf(dst, len, "%s", src ? (const char *)src : "");
}

/* ---- meta --------------------------------------------------------------------------------- */

srv_status srv_db_meta_set(srv_db *db, const char *key, const char *value, srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_META_SET, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, key, -1);
    srv_bind_text(s, 2, value, -1);
    return srv_db_step_done(db, s, err, "meta");
}

srv_status srv_db_meta_get(srv_db *db, const char *key, char *value, size_t value_len,
                           srv_error *err)
{
    srv_stmt *s = srv_db_stmt(db, Q_META_GET, err);
    srv_status st = SRV_OK;
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, key, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        srv_db_copy_text(value, value_len, srv_col_text(s, 0));
    else if (rc == SRV_DB_DONE)
        st = srv_fail(err, SRV_E_NOT_FOUND, "no setting %s", key);
    else
        st = srv_db_fail(db, err, "meta lookup");
    srv_reset(s);
    return st;
}
