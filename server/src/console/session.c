/* Console sessions: an API key (and, for an admin, a TOTP code) buys an access token carried
 * in an HttpOnly, Secure, SameSite=Strict cookie instead of a header. It is an access token
 * like any other, so disabling the user or revoking the API key it was minted from ends it on
 * the next request; on top, it ends after console_idle_timeout seconds without a request, and
 * every call that is not a GET must carry its CSRF token, which is derived from the cookie
 * (SHA-256 under a label) so that only the page that logged in can know it. An admin enrols a
 * TOTP authenticator at the first login: the secret is shown once (URI, QR code) and lives in
 * the HSM, which computes every HMAC over it. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/internal.h"
#include "../audit/writer.h"
#include "../auth/totp.h"
#include "../common/b64.h"
#include "../common/util.h"
#include "../store/console_db.h"
#include "../store/identity_db.h"
#include "console.h"
#include "qr.h"

#define COOKIE_NAME    "signum_console"
#define ENROLLMENT_TTL 600 /* seconds to confirm a new authenticator */
#define TOUCH_EVERY    30  /* seconds between writes of a session's last use */
#define ISSUER         "Signum"

/* ---- the CSRF token of a session ----------------------------------------------------------- */

static char *csrf_for(const char *token)
{
    static const char label[] = "signum-console-csrf:";
    uint8_t buf[sizeof(label) - 1 + SRV_TOKEN_TEXT_MAX], h[32];
    size_t n = strlen(token);
    char *out;
    if (n > SRV_TOKEN_TEXT_MAX)
        return NULL;
    memcpy(buf, label, sizeof(label) - 1);
    memcpy(buf + sizeof(label) - 1, token, n);
    srv_sha256(buf, sizeof(label) - 1 + n, h);
    OPENSSL_cleanse(buf, sizeof(buf));
    out = srv_b64url_encode(h, sizeof(h));
    OPENSSL_cleanse(h, sizeof(h));
    return out;
}

/* The value of our cookie in a Cookie header, copied into out; 0 if absent or malformed. */
static int cookie_token(const char *header, char out[SRV_TOKEN_TEXT_MAX + 1])
{
    const char *p = header;
    while (p && *p) {
        size_t n;
        while (*p == ' ' || *p == ';')
            p++;
        n = strcspn(p, ";");
        if (n > sizeof(COOKIE_NAME) && strncmp(p, COOKIE_NAME "=", sizeof(COOKIE_NAME)) == 0) {
            size_t v = n - sizeof(COOKIE_NAME);
            if (v == 0 || v > SRV_TOKEN_TEXT_MAX)
                return 0;
            memcpy(out, p + sizeof(COOKIE_NAME), v);
            out[v] = '\0';
            return 1;
        }
        p += n;
    }
    return 0;
}

/* ---- minting a session --------------------------------------------------------------------- */

typedef struct {
    api_call *c;
    const char *prefix; /* the API key it is minted from */
    uint8_t token_hash[32], csrf_hash[32];
    int64_t expires_at;
    const char *how; /* "api_key", "api_key+totp", "totp_enrolled" */
} session_job;

static srv_status run_session(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    session_job *j = ctx;
    cJSON *detail;
    srv_status st;
    if ((st = srv_db_token_insert(db, j->token_hash, j->c->user.id, j->expires_at, err)) !=
            SRV_OK ||
        (st = api_token_source_check(db, j->c->user.id, j->prefix, NULL, j->token_hash, err)) !=
            SRV_OK ||
        (st = srv_db_token_console_set(db, j->token_hash, j->csrf_hash, srv_now(), err)) != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "method", j->how);
    cJSON_AddStringToObject(detail, "api_key_prefix", j->prefix);
    cJSON_AddNumberToObject(detail, "expires_at", (double)j->expires_at);
    api_add_request_detail(j->c, detail);
    st = api_audit(j->c, db, audit, "console.login", detail, err);
    cJSON_Delete(detail);
    return st;
}

static cJSON *session_json(const api_call *c, const char *csrf, int64_t expires_at)
{
    const srv_config *cfg = &c->w->app->cfg;
    cJSON *doc = cJSON_CreateObject(), *u = cJSON_AddObjectToObject(doc, "user");
    cJSON_AddStringToObject(u, "name", c->user.name);
    cJSON_AddStringToObject(u, "role", srv_role_name(c->user.role));
    cJSON_AddStringToObject(u, "kind", srv_user_kind_name(c->user.kind));
    cJSON_AddStringToObject(doc, "csrf_token", csrf);
    cJSON_AddNumberToObject(doc, "idle_timeout", cfg->console_idle_timeout);
    cJSON_AddNumberToObject(doc, "absolute_timeout", cfg->console_session_ttl);
    if (expires_at)
        cJSON_AddNumberToObject(doc, "expires_at", (double)expires_at);
    return doc;
}

static void mint_session(api_call *c, const char *prefix, const char *how)
{
    char token[SRV_TOKEN_TEXT_MAX + 1], cookie[SRV_TOKEN_TEXT_MAX + 128];
    char *csrf = NULL;
    session_job j;
    srv_error err;

    memset(&j, 0, sizeof(j));
    j.c = c;
    j.prefix = prefix;
    j.how = how;
    j.expires_at = srv_now() + c->w->app->cfg.console_session_ttl;
    if (srv_token_new(token, j.token_hash, &err) != SRV_OK)
        goto fail;
    if (!(csrf = csrf_for(token))) {
        srv_fail(&err, SRV_E_NOMEM, "out of memory");
        goto fail;
    }
    srv_sha256(csrf, strlen(csrf), j.csrf_hash);
    if (srv_writer_run(c->w->app->writer, run_session, &j, &err) != SRV_OK)
        goto fail;
    snprintf(cookie, sizeof(cookie),
             COOKIE_NAME "=%s; Path=/; Secure; HttpOnly; SameSite=Strict; "
                         "Max-Age=%d",
             token, c->w->app->cfg.console_session_ttl);
    srv_http_add_header(c->ex, "Set-Cookie", cookie);
    OPENSSL_cleanse(cookie, sizeof(cookie));
    OPENSSL_cleanse(token, sizeof(token));
    api_reply(c, 200, session_json(c, csrf, j.expires_at));
    free(csrf);
    return;
fail:
    OPENSSL_cleanse(token, sizeof(token));
    free(csrf);
    api_reply_error(c, &err);
}

/* ---- enrolling an authenticator ------------------------------------------------------------ */

typedef struct {
    const api_call *c;
    const uint8_t *ckaid;
    uint8_t enrollment_hash[32];
    uint8_t old_ckaid[SRV_CKAID_LEN];
    int replaced; /* a pending secret was replaced: its HSM object goes too */
} enroll_job;

static srv_status run_enroll(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    enroll_job *j = ctx;
    srv_totp_row row;
    cJSON *detail;
    srv_status st = srv_db_totp_get(db, j->c->user.id, &row, err);
    if (st == SRV_OK && row.confirmed_at)
        return srv_fail(err, SRV_E_EXISTS, "an authenticator is enrolled already");
    if (st == SRV_OK) {
        memcpy(j->old_ckaid, row.ckaid, SRV_CKAID_LEN);
        j->replaced = 1;
    } else if (st != SRV_E_NOT_FOUND) {
        return st;
    }
    if ((st = srv_db_totp_put_pending(db, j->c->user.id, j->ckaid, j->enrollment_hash, srv_now(),
                                      err)) != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    api_add_request_detail((api_call *)j->c, detail);
    st = api_audit(j->c, db, audit, "console.totp_enrollment", detail, err);
    cJSON_Delete(detail);
    return st;
}

/* An admin's first login: a new secret in the HSM, shown once. */
static void start_enrollment(api_call *c)
{
    uint8_t secret[SRV_TOTP_SECRET_LEN], ckaid[SRV_CKAID_LEN], id[16];
    char b32[SRV_TOTP_BASE32_MAX], id_hex[33], uri[256], label[80];
    char *svg = NULL;
    enroll_job j;
    cJSON *doc, *e;
    srv_error err;
    int imported = 0;

    memset(&j, 0, sizeof(j));
    if (srv_random(secret, sizeof(secret), &err) != SRV_OK ||
        srv_random(ckaid, sizeof(ckaid), &err) != SRV_OK ||
        srv_random(id, sizeof(id), &err) != SRV_OK)
        goto fail;
    snprintf(label, sizeof(label), "signum-totp-%s", c->user.name);
    if (srv_hsm_secret_import(c->w->app->hsm, ckaid, sizeof(ckaid), label, secret, sizeof(secret),
                              &err) != SRV_OK)
        goto fail;
    imported = 1;
    srv_hex_encode(id, sizeof(id), id_hex);
    srv_sha256(id_hex, strlen(id_hex), j.enrollment_hash);
    j.c = c;
    j.ckaid = ckaid;
    if (srv_writer_run(c->w->app->writer, run_enroll, &j, &err) != SRV_OK)
        goto fail;
    if (j.replaced)
        srv_hsm_secret_destroy(c->w->app->hsm, j.old_ckaid, SRV_CKAID_LEN, NULL);
    srv_base32_encode(secret, sizeof(secret), b32, sizeof(b32));
    snprintf(uri, sizeof(uri),
             "otpauth://totp/" ISSUER ":%s?secret=%s&issuer=" ISSUER
             "&algorithm=SHA1&digits=%d&period=%d",
             c->user.name, b32, SRV_TOTP_DIGITS, SRV_TOTP_PERIOD);
    svg = srv_qr_svg(uri);
    doc = cJSON_CreateObject();
    e = cJSON_AddObjectToObject(doc, "totp_enrollment");
    cJSON_AddStringToObject(e, "enrollment_id", id_hex);
    cJSON_AddStringToObject(e, "otpauth_uri", uri);
    cJSON_AddStringToObject(e, "secret_base32", b32);
    cJSON_AddNumberToObject(e, "expires_in", ENROLLMENT_TTL);
    if (svg)
        cJSON_AddStringToObject(e, "qr_svg", svg);
    else
        cJSON_AddNullToObject(e, "qr_svg");
    free(svg);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(b32, sizeof(b32));
    OPENSSL_cleanse(uri, sizeof(uri));
    api_reply(c, 200, doc); /* wipes the copies in the document */
    return;
fail:
    if (imported)
        srv_hsm_secret_destroy(c->w->app->hsm, ckaid, sizeof(ckaid), NULL);
    OPENSSL_cleanse(secret, sizeof(secret));
    api_reply_error(c, &err);
}

/* ---- the calls ----------------------------------------------------------------------------- */

/* POST /console/api/login {"api_key", "totp"?} */
void api_console_login(api_call *c)
{
    static const char *const fields[] = {"api_key", "totp", NULL};
    char prefix[SRV_APIKEY_PREFIX_LEN + 1];
    const char *key = NULL, *code = NULL;
    cJSON *deny = cJSON_CreateObject();
    srv_totp_row row;
    srv_error err;
    srv_status st;

    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "api_key", 1, SRV_APIKEY_TEXT_MAX, &key, &err) != SRV_OK ||
        srv_json_get_string(c->body, "totp", 0, 16, &code, &err) != SRV_OK ||
        api_check_api_key(c, key, prefix, deny, &err) != SRV_OK) {
        snprintf(c->actor, sizeof(c->actor), "anonymous");
        api_deny(c, &err, deny);
        return;
    }
    cJSON_Delete(deny);
    st = srv_db_totp_get(c->w->db, c->user.id, &row, &err);
    if (st != SRV_OK && st != SRV_E_NOT_FOUND) {
        api_reply_error(c, &err);
        return;
    }
    /* Admins always log in with a second factor; so does anyone who enrolled one. */
    if (c->user.role == SRV_ROLE_ADMIN && (st == SRV_E_NOT_FOUND || !row.confirmed_at)) {
        c->authenticated = 1;
        api_set_actor(c);
        start_enrollment(c);
        return;
    }
    if (st == SRV_OK && row.confirmed_at) {
        if (api_totp_check(c, code, &err) != SRV_OK) {
            api_deny(c, &err, NULL);
            return;
        }
        mint_session(c, prefix, "api_key+totp");
        return;
    }
    api_set_actor(c);
    c->authenticated = 1;
    mint_session(c, prefix, "api_key");
}

/* POST /console/api/totp/confirm {"api_key", "enrollment_id", "code"}: the first code from
 * the new authenticator proves it works; the enrollment then counts and a session starts. */
void api_console_totp_confirm(api_call *c)
{
    static const char *const fields[] = {"api_key", "enrollment_id", "code", NULL};
    char prefix[SRV_APIKEY_PREFIX_LEN + 1];
    const char *key = NULL, *id = NULL, *code = NULL;
    uint8_t h[32];
    srv_totp_row row;
    srv_error err;

    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "api_key", 1, SRV_APIKEY_TEXT_MAX, &key, &err) != SRV_OK ||
        srv_json_get_string(c->body, "enrollment_id", 1, 64, &id, &err) != SRV_OK ||
        srv_json_get_string(c->body, "code", 1, 16, &code, &err) != SRV_OK ||
        api_check_api_key(c, key, prefix, NULL, &err) != SRV_OK) {
        snprintf(c->actor, sizeof(c->actor), "anonymous");
        api_deny(c, &err, NULL);
        return;
    }
    c->authenticated = 1;
    api_set_actor(c);
    srv_sha256(id, strlen(id), h);
    if (srv_db_totp_get(c->w->db, c->user.id, &row, &err) != SRV_OK || row.confirmed_at ||
        !row.has_enrollment || !srv_equal_ct(h, row.enrollment_hash, 32) ||
        row.created_at + ENROLLMENT_TTL < srv_now()) {
        srv_fail(&err, SRV_E_NOT_FOUND,
                 "no such pending enrollment (it expires after %d s): log in again for a new one",
                 ENROLLMENT_TTL);
        api_deny(c, &err, NULL);
        return;
    }
    if (api_totp_verify(c, &row, code, 1, &err) != SRV_OK) {
        api_deny(c, &err, NULL);
        return;
    }
    mint_session(c, prefix, "totp_enrolled");
}

static srv_status run_logout(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    api_call *c = ctx;
    char token[SRV_TOKEN_TEXT_MAX + 1];
    uint8_t hash[32];
    cJSON *detail;
    srv_status st = SRV_OK;
    if (cookie_token(c->ex->cookie, token) && srv_token_parse(token, hash))
        st = srv_db_token_revoke_one(db, hash, err);
    OPENSSL_cleanse(token, sizeof(token));
    if (st != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    st = api_audit(c, db, audit, "console.logout", detail, err);
    cJSON_Delete(detail);
    return st;
}

/* POST /console/api/logout */
void api_console_logout(api_call *c)
{
    cJSON *doc;
    srv_error err;
    if (srv_writer_run(c->w->app->writer, run_logout, c, &err) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    srv_http_add_header(c->ex, "Set-Cookie",
                        COOKIE_NAME "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "logged_out", 1);
    api_reply(c, 200, doc);
}

/* GET /console/api/session: who is logged in, and the session's CSRF token (after a reload). */
void api_console_session(api_call *c)
{
    char token[SRV_TOKEN_TEXT_MAX + 1];
    char *csrf = NULL;
    srv_error err;
    if (!c->ex->cookie || !cookie_token(c->ex->cookie, token) || !(csrf = csrf_for(token))) {
        OPENSSL_cleanse(token, sizeof(token));
        srv_fail(&err, SRV_E_UNAUTHENTICATED, "no console session: log in");
        api_reply_error(c, &err);
        return;
    }
    OPENSSL_cleanse(token, sizeof(token));
    api_reply(c, 200, session_json(c, csrf, 0));
    free(csrf);
}

/* ---- an admin resets another user's authenticator ----------------------------------------- */

typedef struct {
    const api_call *c;
    const char *reason;
    int64_t user_id;
    uint8_t ckaid[SRV_CKAID_LEN];
    int had;
} reset_job;

static srv_status run_totp_reset(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    reset_job *j = ctx;
    srv_user u;
    srv_totp_row row;
    cJSON *detail;
    srv_status st = srv_db_user_get(db, j->c->params[0], &u, err);
    if (st != SRV_OK)
        return st;
    if (u.id == j->c->user.id)
        return srv_fail(err, SRV_E_FORBIDDEN,
                        "nobody resets their own authenticator: ask another admin");
    st = srv_db_totp_get(db, u.id, &row, err);
    if (st == SRV_E_NOT_FOUND)
        return srv_fail(err, SRV_E_NOT_FOUND, "\"%s\" has no authenticator", u.name);
    if (st != SRV_OK || (st = srv_db_totp_delete(db, u.id, err)) != SRV_OK ||
        (st = srv_db_tokens_revoke(db, u.id, 0, NULL, err)) != SRV_OK)
        return st;
    memcpy(j->ckaid, row.ckaid, SRV_CKAID_LEN);
    j->had = 1;
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "user", u.name);
    cJSON_AddStringToObject(detail, "reason", j->reason);
    st = api_audit(j->c, db, audit, "user.totp_reset", detail, err);
    cJSON_Delete(detail);
    return st;
}

/* POST /api/v1/admin/users/{name}/totp/reset {"reason"}: the user's authenticator is
 * forgotten (its secret destroyed in the HSM) and its sessions and tokens revoked; the next
 * console login enrols a new one. */
void api_admin_user_totp_reset(api_call *c)
{
    reset_job j;
    cJSON *doc;
    srv_error err;

    memset(&j, 0, sizeof(j));
    j.c = c;
    if (api_reason_only(c->body, &j.reason, &err) != SRV_OK)
        goto fail;
    if (srv_writer_run(c->w->app->writer, run_totp_reset, &j, &err) != SRV_OK)
        goto fail;
    if (j.had)
        srv_hsm_secret_destroy(c->w->app->hsm, j.ckaid, SRV_CKAID_LEN, NULL);
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "user", c->params[0]);
    cJSON_AddBoolToObject(doc, "totp_reset", 1);
    cJSON_AddStringToObject(doc, "reason", j.reason);
    api_reply(c, 200, doc);
    return;
fail:
    api_reply_error(c, &err);
}

/* ---- authenticating a request by its cookie ------------------------------------------------ */

typedef struct {
    uint8_t hash[32];
} touch_job;

static srv_status run_touch(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    touch_job *j = ctx;
    (void)audit;
    return srv_db_token_touch(db, j->hash, srv_now(), err);
}

srv_status api_console_authenticate(api_call *c, const uint8_t hash[32], const char *token,
                                    srv_error *err)
{
    uint8_t csrf_hash[32], presented[32];
    int64_t last_seen = 0, now = srv_now();
    int console = 0;
    char *csrf;
    srv_status st = srv_db_token_console_get(c->w->db, hash, &console, csrf_hash, &last_seen, err);

    if (st != SRV_OK)
        return st;
    if (!console)
        return srv_fail(err, SRV_E_TOKEN_INVALID, "the cookie holds no console session");
    if (now - last_seen > c->w->app->cfg.console_idle_timeout)
        return srv_fail(err, SRV_E_SESSION_EXPIRED,
                        "the console session was idle for too long: log in again");
    if (c->ex->method != SRV_HTTP_GET) {
        /* A state-changing call: the page must prove it is ours (SameSite aside). */
        if (!c->ex->csrf_token || !(csrf = csrf_for(token)))
            return srv_fail(err, SRV_E_CSRF, "this call needs the session's X-CSRF-Token header");
        srv_sha256(c->ex->csrf_token, strlen(c->ex->csrf_token), presented);
        st = srv_equal_ct(presented, csrf_hash, 32) && strcmp(csrf, c->ex->csrf_token) == 0
                 ? SRV_OK
                 : srv_fail(err, SRV_E_CSRF, "the X-CSRF-Token header does not match the session");
        free(csrf);
        if (st != SRV_OK)
            return st;
    }
    if (now - last_seen >= TOUCH_EVERY) {
        touch_job j;
        srv_error terr;
        memcpy(j.hash, hash, 32);
        if (srv_writer_run(c->w->app->writer, run_touch, &j, &terr) != SRV_OK)
            return srv_fail(err, terr.status, "%s", terr.message);
    }
    return SRV_OK;
}

int api_console_cookie_token(const api_call *c, char *token)
{
    return c->ex->cookie && cookie_token(c->ex->cookie, token);
}
