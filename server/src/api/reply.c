/* Replies: JSON answers (wiped once sent), cacheable answers with an ETag, audit records of a
 * request, and the one error path: a JSON error and its denial record, written before the
 * answer leaves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "../audit/denials.h"
#include "../auth/credentials.h"
#include "../common/b64.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../store/usage_db.h"
#include "internal.h"

/* Wipes every string of a JSON tree before it is freed: request bodies hold API keys and
 * assertions, replies hold access tokens and new API keys. */
void api_json_wipe(cJSON *item)
{
    for (; item; item = item->next) {
        if (item->valuestring)
            OPENSSL_cleanse(item->valuestring, strlen(item->valuestring));
        api_json_wipe(item->child);
    }
}

/* ---- replies ------------------------------------------------------------------------------ */

void api_reply(api_call *c, int status, cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    api_json_wipe(doc);
    cJSON_Delete(doc);
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
        c->ex->status = 503;
        c->ex->response = strdup(oom);
        c->ex->response_len = c->ex->response ? strlen(oom) : 0;
        return;
    }
    c->ex->status = status;
    c->ex->response = text;
    c->ex->response_len = strlen(text);
}

static const char *method_name(srv_http_method m)
{
    static const char *names[] = {"GET", "POST", "PUT", "DELETE", "OTHER"};
    return names[m];
}

void api_add_machine(const api_call *c, cJSON *detail)
{
    if (detail && c->machine_id && !cJSON_HasObjectItem(detail, "machine"))
        cJSON_AddStringToObject(detail, "machine", c->machine);
    if (detail && c->project[0] && !cJSON_HasObjectItem(detail, "project"))
        cJSON_AddStringToObject(detail, "project", c->project);
}

void api_add_request_detail(api_call *c, cJSON *detail)
{
    cJSON_AddStringToObject(detail, "method", method_name(c->ex->method));
    cJSON_AddStringToObject(detail, "path", c->ex->path);
    cJSON_AddStringToObject(detail, "peer", c->ex->peer);
    api_add_machine(c, detail);
}

srv_status api_audit(const api_call *c, srv_db *db, srv_audit_head *audit, const char *action,
                     cJSON *detail, srv_error *err)
{
    srv_audit_event ev = {0, c->actor, action, "ok", detail};
    api_add_machine(c, detail);
    return srv_audit_append(db, audit, &ev, err);
}

/* ---- validators --------------------------------------------------------------------------- */

#define IF_NONE_MATCH_MAX 4096

/* Whether an If-None-Match list names etag (weak comparison, RFC 9110 section 13.1.2). */
static int etag_listed(const char *header, const char *etag)
{
    size_t n = strlen(etag);
    const char *p = header;

    if (!header || strlen(header) > IF_NONE_MATCH_MAX)
        return 0;
    if (strspn(header, " \t*") == strlen(header) && strchr(header, '*'))
        return 1; /* "*": any current representation */
    while (*p) {
        p += strspn(p, " \t,");
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || strchr(" \t,", p[n])))
            return 1;
        /* Skip this entity-tag; a quoted one may itself hold commas. */
        if (*p == '"') {
            const char *end = strchr(p + 1, '"');
            p = end ? end + 1 : p + strlen(p);
        }
        p += strcspn(p, ",");
    }
    return 0;
}

void api_reply_cacheable(api_call *c, cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    uint8_t digest[SRV_SHA256_LEN];
    char hex[33], etag[36];

    cJSON_Delete(doc);
    if (!text) {
        api_reply(c, 200, NULL); /* answers out_of_memory */
        return;
    }
    /* A strong validator: 128 bits of the SHA-256 of the exact body. */
    srv_sha256(text, strlen(text), digest);
    srv_hex_encode(digest, 16, hex);
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    srv_http_add_header(c->ex, "ETag", etag);
    if (etag_listed(c->ex->if_none_match, etag)) {
        free(text);
        c->ex->status = 304;
        return;
    }
    c->ex->status = 200;
    c->ex->response = text;
    c->ex->response_len = strlen(text);
}

/* What an unauthenticated refusal may write: every string capped (the path above all), no
 * request body, a bounded detail. Only the route's own facts are kept past the cap. */
static cJSON *cap_anonymous_detail(cJSON *detail)
{
    static const char *const core[] = {"code",        "message", "method",  "path",
                                       "path_length", "peer",    "machine", NULL};
    char *text;
    size_t len;
    cJSON *small;
    cJSON_DeleteItemFromObjectCaseSensitive(detail, "body");
    srv_audit_truncate_strings(detail, SRV_AUDIT_ANON_FIELD_MAX);
    text = cJSON_PrintUnformatted(detail);
    len = text ? strlen(text) : SIZE_MAX;
    free(text);
    if (len <= SRV_AUDIT_ANON_DETAIL_MAX)
        return detail;
    small = cJSON_CreateObject();
    if (!small)
        return detail;
    for (const char *const *f = core; *f; f++) {
        cJSON *item = cJSON_GetObjectItemCaseSensitive(detail, *f);
        if (item)
            cJSON_AddItemToObject(small, *f, cJSON_Duplicate(item, 1));
    }
    cJSON_AddNumberToObject(small, "detail_length", (double)len);
    cJSON_Delete(detail);
    return small;
}

typedef struct {
    const api_call *c;
    const srv_audit_event *ev;
} denial_job;

/* A refused sign request by a known signer on a known key: its record and the key's daily
 * denial count in one transaction. */
static srv_status run_counted_denial(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    denial_job *j = ctx;
    srv_status st = srv_audit_append(db, audit, j->ev, err);
    if (st == SRV_OK)
        st = srv_db_usage_record(db, srv_now(), j->c->usage_key_id, j->c->user.id, 0, 1, err);
    return st;
}

void api_deny(api_call *c, const srv_error *err, cJSON *detail)
{
    srv_app *app = c->w->app;
    int http = srv_status_http(err->status);
    cJSON *doc = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(doc, "error");
    srv_audit_event ev;
    srv_error aerr;
    int record = 1;

    srv_db_read_end(c->w->db); /* no snapshot held while the writer commits */
    if (!detail)
        detail = cJSON_CreateObject();
    if (detail) {
        cJSON_AddStringToObject(detail, "code", srv_status_code(err->status));
        cJSON_AddStringToObject(detail, "message", err->message);
        api_add_request_detail(c, detail);
        if (!c->authenticated)
            detail = cap_anonymous_detail(detail);
    }
    memset(&ev, 0, sizeof(ev));
    ev.actor = c->actor;
    ev.action = c->action ? c->action : "http.request";
    ev.outcome = http >= 500 ? "error" : "denied";
    ev.detail = detail;
    /* Anyone can make us refuse: past a burst per source and code, unauthenticated refusals
     * are counted into an aggregated record (audit/denials.h). Server errors never are. */
    if (!c->authenticated && http < 500)
        record = srv_denials_admit(app->denial_log, c->ex->peer, srv_status_code(err->status),
                                   ev.action, c->ex->path);
    /* The denial is recorded before the answer leaves; if even that fails we still answer,
     * since a refusal hands nothing out, but the operator must hear about it. */
    if (record && c->authenticated && c->usage_key_id) {
        denial_job job = {c, &ev};
        if (srv_writer_run(app->writer, run_counted_denial, &job, &aerr) != SRV_OK)
            srv_log(SRV_LOG_ERROR, "audit", "cannot record a denial: %s", aerr.message);
    } else if (record && srv_writer_audit(app->writer, &ev, NULL, &aerr) != SRV_OK) {
        srv_log(SRV_LOG_ERROR, "audit", "cannot record a denial: %s", aerr.message);
    }
    cJSON_Delete(detail);
    atomic_fetch_add(&app->denials, 1);

    cJSON_AddStringToObject(e, "code", srv_status_code(err->status));
    cJSON_AddStringToObject(e, "message", err->message);
    if (http == 401)
        srv_http_add_header(c->ex, "WWW-Authenticate", "Bearer realm=\"signum\"");
    if (http == 503)
        srv_http_add_header(c->ex, "Retry-After", "1");
    api_reply(c, http, doc);
}

void api_reply_error(api_call *c, const srv_error *err)
{
    api_deny(c, err, NULL);
}

void api_set_actor(api_call *c)
{
    snprintf(c->actor, sizeof(c->actor), "%s:%s",
             c->user.kind == SRV_KIND_SERVICE ? "service" : "user", c->user.name);
}

srv_status api_get_reason(const cJSON *body, const char **reason, srv_error *err)
{
    srv_status st = srv_json_get_string(body, "reason", 1, API_REASON_MAX, reason, err);
    if (st == SRV_OK && !**reason)
        st = srv_fail(err, SRV_E_INVALID_FIELD, "reason must say why (1-%d characters)",
                      API_REASON_MAX);
    return st;
}

srv_status api_reason_only(const cJSON *body, const char **reason, srv_error *err)
{
    static const char *const fields[] = {"reason", NULL};
    srv_status st = srv_json_check_fields(body, fields, err);
    return st == SRV_OK ? api_get_reason(body, reason, err) : st;
}
