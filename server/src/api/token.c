/* POST /api/v1/auth/token: exchanges an API key for a short-lived access token. */
#include <openssl/crypto.h>
#include <string.h>

#include "../auth/credentials.h"
#include "../common/util.h"
#include "internal.h"

typedef struct {
    const srv_user *user;
    const char *prefix;
    uint8_t token_hash[32];
    int64_t expires_at;
} token_job;

static srv_status store_token(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    token_job *j = ctx;
    cJSON *detail = cJSON_CreateObject();
    srv_audit_event ev = {0, NULL, "auth.token", "ok", detail};
    char actor[96];
    srv_status st = srv_db_token_insert(db, j->token_hash, j->user->id, j->expires_at, err);

    snprintf(actor, sizeof(actor), "user:%s", j->user->name);
    ev.actor = actor;
    cJSON_AddStringToObject(detail, "method", "api_key");
    cJSON_AddStringToObject(detail, "api_key_prefix", j->prefix);
    cJSON_AddNumberToObject(detail, "expires_at", (double)j->expires_at);
    if (st == SRV_OK)
        st = srv_audit_append(db, audit, &ev, err);
    cJSON_Delete(detail);
    return st;
}

void api_token(api_call *c)
{
    static const char *const fields[] = {"grant_type", "api_key", NULL};
    const char *grant = NULL, *key = NULL;
    char prefix[SRV_APIKEY_PREFIX_LEN + 1], token[SRV_TOKEN_TEXT_MAX + 1];
    uint8_t presented[32], stored[32];
    int64_t user_id = 0;
    token_job job;
    cJSON *doc;
    srv_error err;

    memset(&job, 0, sizeof(job));
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "grant_type", 1, 32, &grant, &err) != SRV_OK ||
        srv_json_get_string(c->body, "api_key", 1, SRV_APIKEY_TEXT_MAX, &key, &err) != SRV_OK)
        goto fail;
    if (strcmp(grant, "api_key") != 0) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "grant_type must be \"api_key\"");
        goto fail;
    }
    if (!srv_apikey_parse(key, prefix, presented)) {
        srv_fail(&err, SRV_E_BAD_CREDENTIALS, "malformed API key");
        goto fail;
    }
    if (srv_db_apikey_find(c->w->db, prefix, &user_id, stored, &err) != SRV_OK)
        goto fail;
    if (!srv_equal_ct(presented, stored, 32)) {
        srv_fail(&err, SRV_E_BAD_CREDENTIALS, "unknown or revoked API key");
        goto fail;
    }
    if (srv_db_user_get_by_id(c->w->db, user_id, &c->user, &err) != SRV_OK)
        goto fail;
    if (c->user.disabled) {
        srv_fail(&err, SRV_E_BAD_CREDENTIALS, "user is disabled");
        goto fail;
    }
    snprintf(c->actor, sizeof(c->actor), "user:%s", c->user.name);

    job.user = &c->user;
    job.prefix = prefix;
    job.expires_at = srv_now() + c->w->app->cfg.token_ttl;
    if (srv_token_new(token, job.token_hash, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, store_token, &job, &err) != SRV_OK)
        goto fail;

    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "access_token", token);
    cJSON_AddStringToObject(doc, "token_type", "Bearer");
    cJSON_AddNumberToObject(doc, "expires_in", c->w->app->cfg.token_ttl);
    cJSON_AddStringToObject(doc, "user", c->user.name);
    cJSON_AddStringToObject(doc, "role", srv_role_name(c->user.role));
    OPENSSL_cleanse(token, sizeof(token));
    api_reply(c, 200, doc);
    return;
fail : {
    cJSON *detail = cJSON_CreateObject();
    if (detail && key && srv_apikey_parse(key, prefix, presented))
        cJSON_AddStringToObject(detail, "api_key_prefix", prefix);
    api_deny(c, &err, detail);
}
}
