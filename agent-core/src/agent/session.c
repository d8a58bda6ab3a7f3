/* The agent's session: credentials, the access token (one login shared by every caller,
 * refreshed before expiry, one re-authentication on 401), the key listing with its ETag, and
 * what survives a restart in the per-user cache directory. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "signum/crypto.h"

struct ag_session {
    const ag_config *cfg;
    ag_transport *t;
    pthread_mutex_t auth_lock; /* held while logging in: concurrent callers wait and share */
    pthread_mutex_t lock;      /* protects the fields below */
    char api_key[257];         /* from the config or a LOGIN; wins over other methods */
    char method[33];           /* api_key | service_account | oidc | none */
    char token[128];
    int64_t expires_at;
    int64_t issued_at;
    char identity[129];
    unsigned generation; /* bumps on every new token */
    char *keys_json;
    char keys_etag[130];
    int64_t keys_fetched_at;
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- persisted cache ---------------------------------------------------------------------- */

/* Which credential a cached token belongs to, without keeping the credential itself: the
 * hash of the API key, of the service account and its key id, or of the OIDC token. */
static void credential_id(const ag_session *s, char out[33])
{
    const char *parts[3] = {"none", "", ""};
    uint8_t d[64];
    size_t dlen = sizeof(d);
    static const char hex[] = "0123456789abcdef";
    sg_digest_ctx md;

    if (!strcmp(s->method, "api_key")) {
        parts[0] = "api_key";
        parts[1] = s->api_key;
    } else if (!strcmp(s->method, "service_account")) {
        parts[0] = "sa";
        parts[1] = s->cfg->service_account;
        parts[2] = s->cfg->key_id;
    } else if (!strcmp(s->method, "oidc")) {
        parts[0] = "oidc";
        parts[1] = s->cfg->oidc_token;
        parts[2] = s->cfg->oidc_token_file;
    }
    memset(out, '0', 32);
    out[32] = '\0';
    if (sg_digest_init(&md, SG_HASH_SHA256) != SG_OK)
        return;
    for (int i = 0; i < 3; i++)
        sg_digest_update(&md, parts[i], strlen(parts[i]) + 1); /* with the NUL: unambiguous */
    if (sg_digest_final(&md, d, &dlen) != SG_OK) {             /* frees md on success */
        sg_digest_free(&md);
        return;
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
}

/* A cache file as a JSON object, or NULL (absent, or not a file we trust: cache_posix.c says
 * which files those are). */
static cJSON *cache_read(const ag_config *cfg, const char *name)
{
    size_t len = 0;
    char *text = ag_cache_load(cfg, name, &len);
    cJSON *doc;
    if (!text)
        return NULL;
    doc = cJSON_ParseWithLength(text, len);
    if (!doc || !cJSON_IsObject(doc)) {
        ag_log("cache", "ignoring %s in %s: not a cache file of ours (corrupt or truncated)", name,
               cfg->cache_dir);
        cJSON_Delete(doc);
        doc = NULL;
    }
    ag_wipe(text, len);
    free(text);
    return doc;
}

static void cache_write(const ag_config *cfg, const char *name, const cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc);
    if (!text)
        return;
    ag_cache_store(cfg, name, text, strlen(text));
    ag_wipe(text, strlen(text));
    free(text);
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double json_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void servers_id(const ag_config *cfg, char *out, size_t len)
{
    out[0] = '\0';
    for (unsigned i = 0; i < cfg->server_count; i++) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s", i ? "," : "", cfg->servers[i]);
    }
}

/* Loads a persisted token if it belongs to the same servers and credential and has life. */
static void load_session(ag_session *s)
{
    cJSON *doc = cache_read(s->cfg, "session.json");
    char servers[AG_MAX_SERVERS * 513], cred[33];
    const char *tok, *srv, *cid, *ident;
    int64_t exp;

    if (!doc)
        return;
    servers_id(s->cfg, servers, sizeof(servers));
    credential_id(s, cred);
    tok = json_str(doc, "access_token");
    srv = json_str(doc, "servers");
    cid = json_str(doc, "credential");
    ident = json_str(doc, "identity");
    exp = (int64_t)json_num(doc, "expires_at");
    if (tok && srv && cid && ident && strcmp(srv, servers) == 0 && strcmp(cid, cred) == 0 &&
        strlen(tok) < sizeof(s->token) && exp > now_s() + 5) {
        snprintf(s->token, sizeof(s->token), "%s", tok);
        snprintf(s->identity, sizeof(s->identity), "%s", ident);
        s->expires_at = exp;
        s->issued_at = (int64_t)json_num(doc, "issued_at");
        ag_debug("cache", "reusing the persisted access token of %s", s->identity);
    } else {
        ag_debug("cache", "persisted session not usable (other server, credential or expired)");
    }
    cJSON_Delete(doc);
}

static void save_session(ag_session *s)
{
    char servers[AG_MAX_SERVERS * 513], cred[33];
    cJSON *doc = cJSON_CreateObject();
    servers_id(s->cfg, servers, sizeof(servers));
    credential_id(s, cred);
    cJSON_AddStringToObject(doc, "servers", servers);
    cJSON_AddStringToObject(doc, "credential", cred);
    cJSON_AddStringToObject(doc, "identity", s->identity);
    cJSON_AddStringToObject(doc, "access_token", s->token);
    cJSON_AddNumberToObject(doc, "expires_at", (double)s->expires_at);
    cJSON_AddNumberToObject(doc, "issued_at", (double)s->issued_at);
    cache_write(s->cfg, "session.json", doc);
    cJSON_Delete(doc);
}

/* ---- the session -------------------------------------------------------------------------- */

sg_status ag_session_new(const ag_config *cfg, ag_transport *t, ag_session **out, ag_error *err)
{
    ag_session *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (!s)
        return ag_fail(err, SG_ERR_NOMEM, "out of memory");
    s->cfg = cfg;
    s->t = t;
    pthread_mutex_init(&s->auth_lock, NULL);
    pthread_mutex_init(&s->lock, NULL);
    snprintf(s->api_key, sizeof(s->api_key), "%s", cfg->api_key);
    snprintf(s->method, sizeof(s->method), "%s",
             ag_config_auth_method(cfg) ? ag_config_auth_method(cfg) : "none");
    if (strcmp(s->method, "none") != 0)
        load_session(s);
    *out = s;
    return SG_OK;
}

void ag_session_free(ag_session *s)
{
    if (!s)
        return;
    ag_wipe(s->api_key, sizeof(s->api_key));
    ag_wipe(s->token, sizeof(s->token));
    free(s->keys_json);
    pthread_mutex_destroy(&s->auth_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The token request for a method. A LOGIN's API key (api_key != NULL) wins. */
static sg_status token_request(ag_session *s, const char *api_key, char **body, char *method,
                               ag_error *err)
{
    cJSON *req = cJSON_CreateObject();
    char *secret = NULL;
    sg_status st = SG_OK;

    if (api_key && *api_key) {
        snprintf(method, 33, "api_key");
        cJSON_AddStringToObject(req, "grant_type", "api_key");
        cJSON_AddStringToObject(req, "api_key", api_key);
    } else if (!strcmp(s->method, "service_account")) {
        snprintf(method, 33, "service_account");
        if ((st = ag_jwt_assertion(s->cfg, &secret, err)) == SG_OK) {
            cJSON_AddStringToObject(req, "grant_type",
                                    "urn:ietf:params:oauth:grant-type:jwt-bearer");
            cJSON_AddStringToObject(req, "assertion", secret);
        }
    } else if (!strcmp(s->method, "oidc")) {
        snprintf(method, 33, "oidc");
        if ((st = ag_oidc_token(s->cfg, &secret, err)) == SG_OK) {
            cJSON_AddStringToObject(req, "grant_type",
                                    "urn:ietf:params:oauth:grant-type:token-exchange");
            cJSON_AddStringToObject(req, "subject_token", secret);
            cJSON_AddStringToObject(req, "subject_token_type",
                                    "urn:ietf:params:oauth:token-type:id_token");
        }
    } else {
        st = ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                     "no credentials: run 'signum-util login', set SIGNUM_API_KEY, or enroll a "
                     "service account");
    }
    if (secret) {
        ag_wipe(secret, strlen(secret));
        free(secret);
    }
    *body = st == SG_OK ? cJSON_PrintUnformatted(req) : NULL;
    cJSON_Delete(req);
    if (st == SG_OK && !*body)
        st = ag_fail(err, SG_ERR_NOMEM, "out of memory");
    return st;
}

/* Gets a token with the configured (or given) credentials. Called with auth_lock held. */
static sg_status login_locked(ag_session *s, const char *api_key, ag_error *err)
{
    cJSON *doc = NULL;
    ag_response resp;
    char *body = NULL, method[33];
    const char *tok, *user;
    double ttl;
    sg_status st;

    memset(&resp, 0, sizeof(resp));
    st = token_request(s, api_key && *api_key ? api_key : s->api_key, &body, method, err);
    if (st != SG_OK)
        return st;
    st = ag_http(s->t, "POST", "/api/v1/auth/token", NULL, body, NULL, &resp, err);
    ag_wipe(body, strlen(body));
    free(body);
    if (st != SG_OK)
        return st;
    if (resp.status != 200) {
        st = ag_map_server_error(resp.status, resp.body, err);
        if (resp.status == 401) {
            char msg[sizeof(err->message)];
            snprintf(msg, sizeof(msg), "%s", err->message);
            st = ag_fail(err, SG_ERR_AUTH_FAILED, "the server refused the %s: %s",
                         !strcmp(method, "api_key") ? "API key"
                         : !strcmp(method, "oidc")  ? "OIDC token"
                                                    : "service-account assertion",
                         msg);
        }
        goto out;
    }
    doc = cJSON_Parse(resp.body);
    tok = doc ? json_str(doc, "access_token") : NULL;
    user = doc ? json_str(doc, "user") : NULL;
    ttl = doc ? json_num(doc, "expires_in") : 0;
    if (!tok || !user || ttl <= 0 || strlen(tok) >= sizeof(s->token)) {
        st = ag_fail(err, SG_ERR_PROTOCOL, "malformed token answer from the server");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    snprintf(s->token, sizeof(s->token), "%s", tok);
    snprintf(s->identity, sizeof(s->identity), "%s", user);
    s->issued_at = now_s();
    s->expires_at = s->issued_at + (int64_t)ttl;
    s->generation++;
    snprintf(s->method, sizeof(s->method), "%s", method);
    if (!strcmp(method, "api_key") && api_key != s->api_key)
        snprintf(s->api_key, sizeof(s->api_key), "%s", api_key);
    pthread_mutex_unlock(&s->lock);
    ag_log("auth", "logged in as %s with %s (token valid %.0f s)", user, method, ttl);
    save_session(s);
out:
    cJSON_Delete(doc);
    ag_response_free(&resp);
    return st;
}

/* A token is refreshed when less than a tenth of its life is left (5 to 60 s): early enough
 * that no request meets an expired token, late enough not to log in on every call. */
static int token_usable(ag_session *s)
{
    int64_t left = s->expires_at - now_s();
    int64_t margin = (s->expires_at - s->issued_at) / 10;
    margin = margin < 5 ? 5 : margin > 60 ? 60 : margin;
    return s->token[0] && left > margin;
}

/* Gets a usable token into out. `stale` names a generation known to be bad (after a 401):
 * the first caller through re-authenticates; later ones find the fresh token. */
static sg_status get_token(ag_session *s, char *out, size_t out_len, unsigned *gen, int stale_gen,
                           ag_error *err)
{
    sg_status st = SG_OK;
    pthread_mutex_lock(&s->lock);
    if (token_usable(s) && (stale_gen < 0 || s->generation != (unsigned)stale_gen)) {
        snprintf(out, out_len, "%s", s->token);
        *gen = s->generation;
        pthread_mutex_unlock(&s->lock);
        return SG_OK;
    }
    pthread_mutex_unlock(&s->lock);

    pthread_mutex_lock(&s->auth_lock);
    pthread_mutex_lock(&s->lock);
    if (!(token_usable(s) && (stale_gen < 0 || s->generation != (unsigned)stale_gen))) {
        pthread_mutex_unlock(&s->lock);
        st = login_locked(s, s->api_key, err);
        pthread_mutex_lock(&s->lock);
    }
    if (st == SG_OK) {
        snprintf(out, out_len, "%s", s->token);
        *gen = s->generation;
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->auth_lock);
    return st;
}

sg_status ag_session_call(ag_session *s, const char *method, const char *path,
                          const char *json_body, const char *if_none_match, ag_response *resp,
                          ag_error *err)
{
    char token[128];
    unsigned gen = 0;
    sg_status st = get_token(s, token, sizeof(token), &gen, -1, err);
    if (st != SG_OK)
        return st;
    st = ag_http(s->t, method, path, token, json_body, if_none_match, resp, err);
    if (st == SG_OK && resp->status == 401) {
        /* Revoked or expired behind our back: exactly one re-authentication, one retry. */
        ag_log("auth", "server answered 401; re-authenticating once");
        ag_response_free(resp);
        st = get_token(s, token, sizeof(token), &gen, (int)gen, err);
        if (st == SG_OK)
            st = ag_http(s->t, method, path, token, json_body, if_none_match, resp, err);
    }
    ag_wipe(token, sizeof(token));
    return st;
}

sg_status ag_session_login(ag_session *s, const char *api_key, ag_error *err)
{
    sg_status st;
    pthread_mutex_lock(&s->auth_lock);
    st = login_locked(s, api_key, err);
    pthread_mutex_unlock(&s->auth_lock);
    return st;
}

void ag_session_logout(ag_session *s)
{
    pthread_mutex_lock(&s->auth_lock);
    pthread_mutex_lock(&s->lock);
    ag_wipe(s->api_key, sizeof(s->api_key));
    ag_wipe(s->token, sizeof(s->token));
    s->identity[0] = '\0';
    s->expires_at = 0;
    snprintf(s->method, sizeof(s->method), "none"); /* forgotten until the next login */
    free(s->keys_json);
    s->keys_json = NULL;
    s->keys_etag[0] = '\0';
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->auth_lock);
    ag_cache_remove(s->cfg, "session.json");
    ag_cache_remove(s->cfg, "keys.json");
}

void ag_session_info_get(ag_session *s, ag_session_info *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->lock);
    out->logged_in = token_usable(s);
    snprintf(out->identity, sizeof(out->identity), "%s", s->identity);
    snprintf(out->auth_method, sizeof(out->auth_method), "%s", s->method);
    out->expires = s->token[0] ? (uint64_t)s->expires_at : 0;
    pthread_mutex_unlock(&s->lock);
}

/* ---- key listing -------------------------------------------------------------------------- */

sg_status ag_session_keys(ag_session *s, char **json, ag_error *err)
{
    char etag[130];
    ag_response resp;
    sg_status st;

    *json = NULL;
    pthread_mutex_lock(&s->lock);
    if (!s->keys_json) {
        /* A listing from before a restart is a starting point for revalidation only. */
        cJSON *doc = cache_read(s->cfg, "keys.json");
        const char *body = doc ? json_str(doc, "body") : NULL,
                   *tag = doc ? json_str(doc, "etag") : NULL;
        if (body && tag && strlen(tag) < sizeof(s->keys_etag) && (s->keys_json = strdup(body))) {
            snprintf(s->keys_etag, sizeof(s->keys_etag), "%s", tag);
            s->keys_fetched_at = 0;
        }
        cJSON_Delete(doc);
    }
    if (s->keys_json && now_s() - s->keys_fetched_at < s->cfg->keys_refresh) {
        *json = strdup(s->keys_json);
        pthread_mutex_unlock(&s->lock);
        return *json ? SG_OK : ag_fail(err, SG_ERR_NOMEM, "out of memory");
    }
    snprintf(etag, sizeof(etag), "%s", s->keys_json ? s->keys_etag : "");
    pthread_mutex_unlock(&s->lock);

    st = ag_session_call(s, "GET", "/api/v1/keys", NULL, etag[0] ? etag : NULL, &resp, err);
    if (st != SG_OK)
        return st;
    pthread_mutex_lock(&s->lock);
    if (resp.status == 304 && s->keys_json) {
        s->keys_fetched_at = now_s();
        ag_debug("cache", "key listing unchanged (ETag %s)", s->keys_etag);
    } else if (resp.status == 200 && resp.body) {
        cJSON *doc = cJSON_CreateObject();
        free(s->keys_json);
        s->keys_json = strdup(resp.body);
        snprintf(s->keys_etag, sizeof(s->keys_etag), "%s", resp.etag);
        s->keys_fetched_at = now_s();
        cJSON_AddStringToObject(doc, "etag", s->keys_etag);
        cJSON_AddStringToObject(doc, "body", resp.body);
        if (s->keys_etag[0])
            cache_write(s->cfg, "keys.json", doc);
        cJSON_Delete(doc);
    } else {
        pthread_mutex_unlock(&s->lock);
        st = ag_map_server_error(resp.status, resp.body, err);
        ag_response_free(&resp);
        return st;
    }
    *json = s->keys_json ? strdup(s->keys_json) : NULL;
    pthread_mutex_unlock(&s->lock);
    ag_response_free(&resp);
    return *json ? SG_OK : ag_fail(err, SG_ERR_NOMEM, "out of memory");
}
