/* POST /api/v1/auth/token: exchanges a credential for a short-lived access token. Three grants:
 * an API key; a service account's signed JWT assertion (RFC 7523, ES256, key enrolled
 * before); a CI OIDC ID token (RFC 8693 token exchange) that a configured rule maps to a
 * service account. A token issued over mTLS is bound to that machine's certificate. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/credentials.h"
#include "../auth/jwt.h"
#include "../auth/oidc.h"
#include "../common/util.h"
#include "../store/identity_db.h"
#include "internal.h"

#define GRANT_API_KEY        "api_key"
#define GRANT_JWT_BEARER     "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define TOKEN_TYPE_ID_TOKEN  "urn:ietf:params:oauth:token-type:id_token"

#define ASSERTION_SKEW         60  /* iat/nbf may be this far ahead of the server's clock */
#define ASSERTION_MAX_LIFETIME 300 /* exp - iat */
#define JTI_MAX                128
#define PRESENTED_MAX          255 /* longer presented values are left out of denial records */

typedef struct {
    api_call *c;
    cJSON *detail;   /* the grant's part of the audit record; owned by the caller */
    const char *jti; /* jwt-bearer: remembered until jti_expires, never accepted twice */
    int64_t jti_expires;
    int64_t checked_at; /* the clock reading the assertion's exp was checked against */
    uint8_t token_hash[32];
    int64_t expires_at;
    /* The credential the token is minted from, checked again inside the transaction so that
     * a revocation committed after the read snapshot still wins. */
    char api_key_prefix[SRV_APIKEY_PREFIX_LEN + 1];
    const char *kid; /* jwt-bearer: the enrolled key */
} token_job;

/* The credential and its owner are still good at commit time; the token remembers the
 * credential, so revoking it revokes the token. */
srv_status api_token_source_check(srv_db *db, int64_t user_id, const char *api_key_prefix,
                                  const char *kid, const uint8_t token_hash[32], srv_error *err)
{
    int64_t now = srv_now(), api_key_id = 0;
    srv_user u;
    srv_status st = srv_db_user_get_by_id(db, user_id, &u, err);
    if (st != SRV_OK)
        return st;
    if (u.disabled)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "\"%s\" is disabled", u.name);
    if (api_key_prefix && api_key_prefix[0]) {
        st = srv_db_apikey_active_id(db, u.id, api_key_prefix, &api_key_id, err);
        if (st == SRV_E_NOT_FOUND)
            return srv_fail(err, SRV_E_BAD_CREDENTIALS, "unknown or revoked API key");
        if (st == SRV_OK)
            st = srv_db_apikey_touch(db, api_key_id, now, err);
    } else if (kid) {
        st = srv_db_sakey_use(db, u.id, kid, now, err);
    }
    if (st == SRV_OK)
        st = srv_db_token_set_source(db, token_hash, api_key_id, kid, err);
    return st;
}

static srv_status check_source(srv_db *db, token_job *j, srv_error *err)
{
    return api_token_source_check(db, j->c->user.id, j->api_key_prefix, j->kid, j->token_hash, err);
}

static srv_status store_token(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    token_job *j = ctx;
    srv_status st = SRV_OK;

    if (j->jti) {
        /* The purge uses the very clock reading the exp check used: a later one could purge
         * this jti's earlier use in the second of its exp and let a replay through. */
        st = srv_db_jti_use(db, j->c->user.id, j->jti, j->jti_expires, j->checked_at, err);
        if (st == SRV_E_EXISTS)
            return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                            "assertion jti was already used (replay); sign a new assertion with "
                            "a fresh jti");
    }
    if (st == SRV_OK)
        st = srv_db_token_insert(db, j->token_hash, j->c->user.id, j->expires_at, err);
    if (st == SRV_OK)
        st = check_source(db, j, err);
    if (st == SRV_OK && j->c->machine_id)
        st = srv_db_token_bind(db, j->token_hash, j->c->machine_id, err);
    if (st == SRV_OK)
        st = api_audit(j->c, db, audit, "auth.token", j->detail, err);
    return st;
}

/* Adds a value the client presented (unverified) to a denial record, if it is short. */
static void add_presented(cJSON *presented, const char *name, const char *value)
{
    if (presented && value && *value && strlen(value) <= PRESENTED_MAX)
        cJSON_AddStringToObject(presented, name, value);
}

/* Looks up the service account a verified credential names; only service accounts qualify. */
static srv_status service_account(api_call *c, const char *name, srv_error *err)
{
    srv_status st = srv_db_user_get(c->w->db, name, &c->user, err);
    if (st == SRV_E_USER_NOT_FOUND)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "no service account named \"%s\"", name);
    if (st != SRV_OK)
        return st;
    if (c->user.kind != SRV_KIND_SERVICE)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "\"%s\" is not a service account", name);
    if (c->user.disabled)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "service account \"%s\" is disabled", name);
    return SRV_OK;
}

/* ---- grants --------------------------------------------------------------------------------- */

srv_status api_check_api_key(api_call *c, const char *key, char prefix[SRV_APIKEY_PREFIX_LEN + 1],
                             cJSON *deny, srv_error *err)
{
    uint8_t presented[32], stored[32];
    int64_t user_id = 0;
    srv_status st;

    if (!srv_apikey_parse(key, prefix, presented))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "malformed API key");
    if (deny)
        cJSON_AddStringToObject(deny, "api_key_prefix", prefix);
    if ((st = srv_db_apikey_find(c->w->db, prefix, &user_id, stored, err)) != SRV_OK)
        return st;
    if (!srv_equal_ct(presented, stored, 32))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "unknown or revoked API key");
    if ((st = srv_db_user_get_by_id(c->w->db, user_id, &c->user, err)) != SRV_OK)
        return st;
    if (c->user.disabled)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "user is disabled");
    return SRV_OK;
}

static srv_status grant_api_key(api_call *c, token_job *job, cJSON *deny, srv_error *err)
{
    static const char *const fields[] = {"grant_type", "api_key", "totp", NULL};
    char prefix[SRV_APIKEY_PREFIX_LEN + 1];
    const char *key = NULL, *totp = NULL;
    srv_status st;

    if ((st = srv_json_check_fields(c->body, fields, err)) != SRV_OK ||
        (st = srv_json_get_string(c->body, "api_key", 1, SRV_APIKEY_TEXT_MAX, &key, err)) !=
            SRV_OK ||
        (st = srv_json_get_string(c->body, "totp", 0, 16, &totp, err)) != SRV_OK ||
        (st = api_check_api_key(c, key, prefix, deny, err)) != SRV_OK)
        return st;
    /* Admins' API tokens need a one-time code too when the server says so. */
    if (c->user.role == SRV_ROLE_ADMIN && c->w->app->cfg.admin_api_totp &&
        (st = api_totp_check(c, totp, err)) != SRV_OK)
        return st;
    cJSON_AddStringToObject(job->detail, "method", "api_key");
    cJSON_AddStringToObject(job->detail, "api_key_prefix", prefix);
    snprintf(job->api_key_prefix, sizeof(job->api_key_prefix), "%s", prefix);
    return SRV_OK;
}

/* RFC 7523 section 3: iss = sub = the service account, aud = ours, a short life, a fresh jti,
 * signed with a key the account enrolled. The jti is recorded by store_token. */
static srv_status grant_jwt_bearer(api_call *c, token_job *job, srv_jwt *jwt, cJSON *deny,
                                   srv_error *err)
{
    static const char *const fields[] = {"grant_type", "assertion", NULL};
    srv_jwt_time_rules times = {srv_now(), 0, ASSERTION_SKEW, ASSERTION_MAX_LIFETIME};
    const char *assertion = NULL, *iss = NULL, *sub = NULL, *jti = NULL;
    cJSON *presented = cJSON_AddObjectToObject(deny, "presented");
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    EVP_PKEY *key = NULL;
    srv_status st;

    if ((st = srv_json_check_fields(c->body, fields, err)) != SRV_OK ||
        (st = srv_json_get_string(c->body, "assertion", 1, SRV_JWT_TEXT_MAX, &assertion, err)) !=
            SRV_OK ||
        (st = srv_jwt_parse(assertion, "assertion", SRV_JWT_ALLOW(SRV_JWT_ES256), jwt, err)) !=
            SRV_OK)
        return st;
    add_presented(presented, "kid", jwt->kid);
    if ((st = srv_jwt_claim_string(jwt, "iss", 1, SRV_NAME_MAX, &iss, err)) != SRV_OK ||
        (st = srv_jwt_claim_string(jwt, "sub", 1, SRV_NAME_MAX, &sub, err)) != SRV_OK)
        return st;
    add_presented(presented, "iss", iss);
    if (strcmp(iss, sub) != 0 || !srv_valid_name(iss, SRV_NAME_MAX))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "assertion iss and sub must both be the service account's name");
    if (!jwt->kid)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "assertion header needs the kid returned at enrollment");
    if ((st = service_account(c, iss, err)) != SRV_OK)
        return st;
    st = srv_db_sa_key_get(c->w->db, c->user.id, jwt->kid, &spki, &spki_len, err);
    if (st == SRV_E_NOT_FOUND)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "unknown kid \"%.64s\": service account \"%s\" enrolled no such key",
                        jwt->kid, iss);
    if (st != SRV_OK)
        return st;
    key = srv_jwt_p256_from_spki(spki, spki_len, err);
    free(spki);
    if (!key)
        return srv_fail(err, SRV_E_INTERNAL, "the enrolled key %.64s is unusable", jwt->kid);
    st = srv_jwt_verify(jwt, key, err);
    EVP_PKEY_free(key);
    if (st != SRV_OK)
        return st;
    /* The signature holds: from here on the claims are the account's own. */
    if (!srv_jwt_audience_has(jwt, c->w->app->cfg.auth_audience))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "assertion audience does not include \"%s\" (this server's "
                        "auth_audience)",
                        c->w->app->cfg.auth_audience);
    if ((st = srv_jwt_check_time(jwt, &times, &job->jti_expires, err)) != SRV_OK ||
        (st = srv_jwt_claim_string(jwt, "jti", 1, JTI_MAX, &jti, err)) != SRV_OK)
        return st;
    /* Accepted while now < exp + leeway: the jti is kept strictly past that, with the skew
     * allowed for clocks as a margin. */
    job->checked_at = times.now;
    job->jti_expires += times.exp_leeway + ASSERTION_SKEW + 1;
    add_presented(presented, "jti", jti);
    job->jti = jti;
    job->kid = jwt->kid;
    cJSON_AddStringToObject(job->detail, "method", "jwt_bearer");
    cJSON_AddStringToObject(job->detail, "kid", jwt->kid);
    cJSON_AddStringToObject(job->detail, "jti", jti);
    return SRV_OK;
}

static srv_status grant_token_exchange(api_call *c, token_job *job, cJSON *deny, srv_error *err)
{
    static const char *const fields[] = {"grant_type", "subject_token", "subject_token_type", NULL};
    const char *token = NULL, *type = NULL;
    cJSON *presented = cJSON_AddObjectToObject(deny, "presented");
    srv_oidc_result res;
    srv_status st;

    if ((st = srv_json_check_fields(c->body, fields, err)) != SRV_OK ||
        (st = srv_json_get_string(c->body, "subject_token", 1, SRV_JWT_TEXT_MAX, &token, err)) !=
            SRV_OK ||
        (st = srv_json_get_string(c->body, "subject_token_type", 1, 128, &type, err)) != SRV_OK)
        return st;
    if (strcmp(type, TOKEN_TYPE_ID_TOKEN) != 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "subject_token_type must be \"%s\"",
                        TOKEN_TYPE_ID_TOKEN);
    if (!c->w->app->oidc)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "this server trusts no OIDC issuer (oidc_config is not set)");
    st = srv_oidc_exchange(c->w->app->oidc, token, srv_now(), &res, err);
    add_presented(presented, "iss", res.issuer);
    add_presented(presented, "sub", res.subject);
    add_presented(presented, "kid", res.kid);
    if (st != SRV_OK)
        return st;
    cJSON_AddNumberToObject(deny, "rule", res.rule);
    st = service_account(c, res.service_account, err);
    if (st == SRV_E_BAD_CREDENTIALS) {
        srv_error inner = *err;
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "rule %d of issuer %s: %s", res.rule,
                        res.issuer, inner.message);
    }
    if (st != SRV_OK)
        return st;
    cJSON_AddStringToObject(job->detail, "method", "oidc");
    cJSON_AddStringToObject(job->detail, "issuer", res.issuer);
    cJSON_AddStringToObject(job->detail, "subject", res.subject);
    cJSON_AddNumberToObject(job->detail, "rule", res.rule);
    cJSON_AddStringToObject(job->detail, "kid", res.kid);
    return SRV_OK;
}

/* ---- the call ------------------------------------------------------------------------------- */

void api_token(api_call *c)
{
    const char *grant = NULL;
    char token[SRV_TOKEN_TEXT_MAX + 1];
    cJSON *deny = cJSON_CreateObject(), *doc;
    token_job job;
    srv_jwt jwt;
    srv_error err;
    srv_status st;

    memset(&job, 0, sizeof(job));
    memset(&jwt, 0, sizeof(jwt));
    job.c = c;
    job.detail = cJSON_CreateObject();
    if (!deny || !job.detail) {
        srv_fail(&err, SRV_E_NOMEM, "out of memory");
        goto fail;
    }
    if (srv_json_get_string(c->body, "grant_type", 1, 64, &grant, &err) != SRV_OK)
        goto fail;
    cJSON_AddStringToObject(deny, "grant_type", grant);
    if (strcmp(grant, GRANT_API_KEY) == 0)
        st = grant_api_key(c, &job, deny, &err);
    else if (strcmp(grant, GRANT_JWT_BEARER) == 0)
        st = grant_jwt_bearer(c, &job, &jwt, deny, &err);
    else if (strcmp(grant, GRANT_TOKEN_EXCHANGE) == 0)
        st = grant_token_exchange(c, &job, deny, &err);
    else
        st = srv_fail(&err, SRV_E_INVALID_FIELD, "grant_type must be \"%s\", \"%s\" or \"%s\"",
                      GRANT_API_KEY, GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE);
    if (st != SRV_OK)
        goto fail;
    api_set_actor(c);

    job.expires_at = srv_now() + c->w->app->cfg.token_ttl;
    cJSON_AddNumberToObject(job.detail, "expires_at", (double)job.expires_at);
    if (srv_token_new(token, job.token_hash, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, store_token, &job, &err) != SRV_OK)
        goto fail;

    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "access_token", token);
    cJSON_AddStringToObject(doc, "token_type", "Bearer");
    cJSON_AddNumberToObject(doc, "expires_in", c->w->app->cfg.token_ttl);
    cJSON_AddStringToObject(doc, "user", c->user.name);
    cJSON_AddStringToObject(doc, "role", srv_role_name(c->user.role));
    cJSON_AddStringToObject(doc, "kind", srv_user_kind_name(c->user.kind));
    if (c->machine_id)
        cJSON_AddStringToObject(doc, "machine", c->machine);
    OPENSSL_cleanse(token, sizeof(token));
    api_reply(c, 200, doc);
    goto out;
fail:
    /* Who the credential named is in "presented"; a refused caller is nobody we know. */
    snprintf(c->actor, sizeof(c->actor), "anonymous");
    api_deny(c, &err, deny);
    deny = NULL; /* api_deny consumed it */
out:
    cJSON_Delete(deny);
    cJSON_Delete(job.detail);
    srv_jwt_clear(&jwt);
}
