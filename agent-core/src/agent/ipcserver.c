/* The agent's IPC request dispatch, whatever carries the frames: every frame validated
 * before use, one handler per message type. The listeners (a Unix socket in
 * ipcserver_posix.c, a named pipe in ipcserver_win.c) accept connections, establish who the
 * peer is, and hand each connection to ag_conn_serve on its own thread. */
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signum/os.h"
#include "signum/common/b64.h"
#include "../common/ipc.h"
#include "agent.h"
#include "ipcserver.h"

static atomic_long last_activity;
static atomic_int stop_requested;

void ag_activity_touch(void)
{
    atomic_store(&last_activity, (long)time(NULL));
}

long ag_activity_last(void)
{
    return atomic_load(&last_activity);
}

int ag_stop_requested(void)
{
    return atomic_load(&stop_requested);
}

void ag_request_stop(void)
{
    atomic_store(&stop_requested, 1);
}

/* ---- replies ------------------------------------------------------------------------------ */

static void send_frame(ipc_fd fd, ipc_writer *w)
{
    if (ipc_writer_finish(w) == 0)
        ipc_write_all(fd, w->buf, w->len, 10000);
    ipc_writer_free(w);
}

static void send_error(ipc_fd fd, uint32_t id, sg_status st, const char *msg)
{
    ipc_writer w;
    char trimmed[1025];
    snprintf(trimmed, sizeof(trimmed), "%s", msg);
    ipc_writer_init(&w, IPC_MSG_ERROR, id);
    ipc_put_u32(&w, IPC_TAG_CODE, (uint32_t)st);
    ipc_put_text(&w, IPC_TAG_MESSAGE, trimmed);
    send_frame(fd, &w);
}

/* ---- handlers ----------------------------------------------------------------------------- */

static int put_b64(ipc_writer *w, ipc_tag tag, const char *b64)
{
    uint8_t buf[16384];
    size_t len;
    if (!b64 ||
        sgc_b64_decode(b64, strlen(b64), SGC_B64, buf, sizeof(buf), &len, NULL, 0) != SGC_OK)
        return -1;
    ipc_put_bytes(w, tag, buf, len);
    return 0;
}

static int hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void handle_list_keys(ag_server *srv, ipc_fd fd, uint32_t id)
{
    ag_error err;
    char *json = NULL;
    cJSON *doc = NULL, *keys, *k;
    ipc_writer w;

    if (ag_session_keys(srv->session, &json, &err) != SG_OK) {
        send_error(fd, id, err.status, err.message);
        return;
    }
    doc = cJSON_Parse(json);
    free(json);
    keys = doc ? cJSON_GetObjectItemCaseSensitive(doc, "keys") : NULL;
    if (!cJSON_IsArray(keys)) {
        cJSON_Delete(doc);
        send_error(fd, id, SG_ERR_PROTOCOL, "malformed key listing from the server");
        return;
    }
    ipc_writer_init(&w, IPC_MSG_LIST_KEYS | IPC_REPLY, id);
    cJSON_ArrayForEach(k, keys)
    {
        const char *name = jstr(k, "name"), *type = jstr(k, "type"), *idhex = jstr(k, "id");
        const cJSON *chain = cJSON_GetObjectItemCaseSensitive(k, "chain"), *c;
        uint8_t ckaid[64];
        size_t ckaid_len;
        size_t mark;
        if (!name || !type || !idhex || hex_decode(idhex, ckaid, sizeof(ckaid), &ckaid_len) != 0)
            continue;
        mark = ipc_begin_nested(&w, IPC_TAG_KEY_ENTRY);
        ipc_put_text(&w, IPC_TAG_KEY, name);
        ipc_put_text(&w, IPC_TAG_KEY_TYPE, type);
        ipc_put_bytes(&w, IPC_TAG_KEY_ID, ckaid, ckaid_len);
        put_b64(&w, IPC_TAG_PUBLIC_KEY, jstr(k, "public_key"));
        if (jstr(k, "certificate"))
            put_b64(&w, IPC_TAG_CERT, jstr(k, "certificate"));
        if (cJSON_IsArray(chain))
            cJSON_ArrayForEach(c, chain) if (cJSON_IsString(c))
                put_b64(&w, IPC_TAG_CHAIN, c->valuestring);
        ipc_end_nested(&w, mark);
    }
    cJSON_Delete(doc);
    if (w.failed) {
        ipc_writer_free(&w);
        send_error(fd, id, SG_ERR_PROTOCOL, "key listing exceeds the protocol's limits");
        return;
    }
    send_frame(fd, &w);
}

/* name: the longest prefix of the UTF-8 text s within cap bytes, cut on a character boundary. */
static void add_text(cJSON *obj, const char *name, const char *s, size_t cap)
{
    char buf[AG_PATH_MAX > AG_CTX_COMMAND_LINE_MAX ? AG_PATH_MAX : AG_CTX_COMMAND_LINE_MAX];
    size_t n = ag_ctx_fit(s, cap < sizeof(buf) - 1 ? cap : sizeof(buf) - 1);
    memcpy(buf, s, n);
    buf[n] = '\0';
    cJSON_AddStringToObject(obj, name, buf);
}

/* What the kernel says about the caller goes to the server's audit log (and its policy rules)
 * as the body's "context", replacing whatever the caller put there. */
static void add_caller_context(cJSON *body, const ag_caller *caller)
{
    char host[256] = "";
    cJSON *ctx;

    cJSON_DeleteItemFromObjectCaseSensitive(body, "context");
    ctx = cJSON_AddObjectToObject(body, "context");
    /* Within the server's caps (AG_CTX_*_MAX), cut on a character boundary: caller.c escaped
     * and capped the POSIX fields already; a Windows image path is UTF-8 of any length. */
    add_text(ctx, "application", caller->exe[0] ? caller->exe : "unknown", AG_CTX_APPLICATION_MAX);
    add_text(ctx, "command_line", caller->cmdline, AG_CTX_COMMAND_LINE_MAX);
    cJSON_AddNumberToObject(ctx, "pid", caller->pid);
    if (ag_hostname(host, sizeof(host)) == 0 && host[0]) {
        char host_text[AG_CTX_HOST_MAX + 1];
        ag_ctx_escape(host, strlen(host), host_text, AG_CTX_HOST_MAX);
        cJSON_AddStringToObject(ctx, "host", host_text);
    }
}

static void handle_sign(ag_server *srv, ipc_fd fd, uint32_t id, const ipc_fields *req,
                        const ag_caller *caller)
{
    char key[65], mech[17], hash[17], rid[129];
    uint32_t salt = 0;
    int has_salt;
    size_t pos = 0, n = 0;
    ipc_field f;
    cJSON *body = cJSON_CreateObject(), *digests = NULL, *doc = NULL;
    const cJSON *sigs, *one;
    ag_response resp;
    ag_error err;
    ipc_writer w;
    char *text;
    sg_status st;

    memset(&resp, 0, sizeof(resp));
    if (ipc_get_text(req, IPC_TAG_KEY, key, sizeof(key)) != 1 ||
        ipc_get_text(req, IPC_TAG_MECH, mech, sizeof(mech)) != 1 ||
        ipc_get_text(req, IPC_TAG_HASH, hash, sizeof(hash)) != 1 ||
        ipc_get_text(req, IPC_TAG_REQUEST_ID, rid, sizeof(rid)) != 1) {
        cJSON_Delete(body);
        send_error(fd, id, SG_ERR_BAD_INPUT, "a sign request needs key, mechanism, hash, id");
        return;
    }
    has_salt = ipc_get_u32(req, IPC_TAG_SALT, &salt) == 1;
    cJSON_AddStringToObject(body, "key", key);
    cJSON_AddStringToObject(body, "mechanism", mech);
    cJSON_AddStringToObject(body, "hash", hash);
    if (has_salt)
        cJSON_AddNumberToObject(body, "salt_length", salt);
    while (ipc_next(req, &pos, &f))
        n += f.tag == IPC_TAG_DIGEST;
    if (n == 0 || n > 64) {
        cJSON_Delete(body);
        send_error(fd, id, SG_ERR_BAD_INPUT, "a sign request carries 1-64 digests");
        return;
    }
    if (n > 1)
        digests = cJSON_AddArrayToObject(body, "digests");
    pos = 0;
    while (ipc_next(req, &pos, &f)) {
        char *b64;
        if (f.tag != IPC_TAG_DIGEST)
            continue;
        b64 = sgc_b64_encode(f.value, f.len);
        if (!b64)
            break;
        if (digests)
            cJSON_AddItemToArray(digests, cJSON_CreateString(b64));
        else
            cJSON_AddStringToObject(body, "digest", b64);
        free(b64);
    }
    cJSON_AddStringToObject(body, "request_id", rid);
    if (ipc_find(req, IPC_TAG_PROVENANCE, &f)) {
        /* Relayed as it came: the server checks every member of it. */
        cJSON *prov = cJSON_ParseWithLength((const char *)f.value, f.len);
        if (!cJSON_IsObject(prov)) {
            cJSON_Delete(prov);
            cJSON_Delete(body);
            send_error(fd, id, SG_ERR_BAD_INPUT,
                       "a sign request's provenance must be a JSON object");
            return;
        }
        cJSON_AddItemToObject(body, "provenance", prov);
    }
    add_caller_context(body, caller);
    text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text) {
        send_error(fd, id, SG_ERR_NOMEM, "out of memory");
        return;
    }
    st = ag_session_call(srv->session, "POST", "/api/v1/sign", text, NULL, &resp, &err);
    free(text);
    if (st != SG_OK) {
        send_error(fd, id, st, err.message);
        return;
    }
    if (resp.status != 200) {
        st = ag_map_server_error(resp.status, resp.body, &err);
        ag_log("ipc", "sign with %s for %s (pid %ld) refused: %s", key, caller->exe,
               (long)caller->pid, err.message);
        ag_response_free(&resp);
        send_error(fd, id, st, err.message);
        return;
    }
    doc = cJSON_Parse(resp.body);
    ag_response_free(&resp);
    ipc_writer_init(&w, IPC_MSG_SIGN | IPC_REPLY, id);
    sigs = doc ? cJSON_GetObjectItemCaseSensitive(doc, "signatures") : NULL;
    one = doc ? cJSON_GetObjectItemCaseSensitive(doc, "signature") : NULL;
    if (cJSON_IsArray(sigs)) {
        const cJSON *s;
        cJSON_ArrayForEach(s, sigs) if (!cJSON_IsString(s) ||
                                        put_b64(&w, IPC_TAG_SIGNATURE, s->valuestring) != 0)
            w.failed = 1;
    } else if (cJSON_IsString(one)) {
        if (put_b64(&w, IPC_TAG_SIGNATURE, one->valuestring) != 0)
            w.failed = 1;
    } else {
        w.failed = 1;
    }
    {
        const cJSON *a = doc ? cJSON_GetObjectItemCaseSensitive(doc, "audit_id") : NULL;
        if (cJSON_IsNumber(a))
            ipc_put_u64(&w, IPC_TAG_AUDIT_ID, (uint64_t)a->valuedouble);
    }
    cJSON_Delete(doc);
    if (w.failed) {
        ipc_writer_free(&w);
        send_error(fd, id, SG_ERR_PROTOCOL, "malformed sign answer from the server");
        return;
    }
    send_frame(fd, &w);
}

/* The API calls the agent makes on the user's behalf (IPC_MSG_API): identity, policy, group
 * and approval administration, polling one's own pending sign request, and signing jobs. The
 * server decides who may do what; this list keeps a local process from using the session for
 * anything else (signing goes through IPC_MSG_SIGN, and a job's body gets the same caller
 * context). "*" is one path segment. */
static const struct {
    const char *method, *pattern;
} api_allowed[] = {
    {"GET", "/api/v1/admin/users"},
    {"POST", "/api/v1/admin/users"},
    {"GET", "/api/v1/admin/users/*"},
    {"DELETE", "/api/v1/admin/users/*"},
    {"POST", "/api/v1/admin/users/*/disable"},
    {"POST", "/api/v1/admin/users/*/enable"},
    {"GET", "/api/v1/admin/users/*/api-keys"},
    {"POST", "/api/v1/admin/users/*/api-keys"},
    {"POST", "/api/v1/admin/users/*/api-keys/revoke-all"},
    {"POST", "/api/v1/admin/users/*/api-keys/*/revoke"},
    {"POST", "/api/v1/admin/users/*/revoke-tokens"},
    {"GET", "/api/v1/admin/service-accounts"},
    {"POST", "/api/v1/admin/service-accounts"},
    {"GET", "/api/v1/admin/service-accounts/*"},
    {"DELETE", "/api/v1/admin/service-accounts/*"},
    {"POST", "/api/v1/admin/service-accounts/*/disable"},
    {"POST", "/api/v1/admin/service-accounts/*/enable"},
    {"POST", "/api/v1/admin/service-accounts/*/enrollment-tokens"},
    {"GET", "/api/v1/admin/service-accounts/*/keys"},
    {"POST", "/api/v1/admin/service-accounts/*/keys/*/revoke"},
    {"GET", "/api/v1/admin/machines?"},
    {"POST", "/api/v1/admin/machines"},
    {"POST", "/api/v1/admin/machines/*/enrollment-tokens"},
    {"POST", "/api/v1/admin/machines/*/revoke"},
    {"POST", "/api/v1/admin/machines/*/enable"},
    {"GET", "/api/v1/admin/keys"},
    {"POST", "/api/v1/admin/keys"},
    {"GET", "/api/v1/admin/keys/*"},
    {"POST", "/api/v1/admin/keys/*/certificate"},
    {"PUT", "/api/v1/admin/keys/*/certificate"},
    {"POST", "/api/v1/admin/keys/*/certificate/revoke"},
    {"POST", "/api/v1/admin/keys/*/csr"},
    {"POST", "/api/v1/admin/keys/*/grants"},
    {"GET", "/api/v1/admin/keys/*/grants"},
    {"DELETE", "/api/v1/admin/keys/*/grants/*"},
    {"PUT", "/api/v1/admin/keys/*/project"},
    {"GET", "/api/v1/admin/projects"},
    {"POST", "/api/v1/admin/projects"},
    {"GET", "/api/v1/admin/projects/*"},
    {"DELETE", "/api/v1/admin/projects/*"},
    {"POST", "/api/v1/admin/projects/*/members"},
    {"POST", "/api/v1/admin/projects/*/members/remove"},
    {"POST", "/api/v1/admin/keys/*/disable"},
    {"POST", "/api/v1/admin/keys/*/suspend"},
    {"POST", "/api/v1/admin/keys/*/rotate"},
    {"GET", "/api/v1/admin/keys/*/versions"},
    {"POST", "/api/v1/admin/keys/*/versions/*/retire"},
    {"POST", "/api/v1/admin/keys/*/enable"},
    {"GET", "/api/v1/admin/audit?"},
    {"GET", "/api/v1/admin/usage?"},
    {"GET", "/api/v1/admin/alerts?"},
    {"PUT", "/api/v1/admin/keys/*/usage-limit"},
    {"GET", "/api/v1/admin/policies"},
    {"POST", "/api/v1/admin/policies"},
    {"POST", "/api/v1/admin/policies/explain"},
    {"GET", "/api/v1/admin/policies/*"},
    {"PUT", "/api/v1/admin/policies/*"},
    {"DELETE", "/api/v1/admin/policies/*"},
    {"GET", "/api/v1/admin/policy-set"},
    {"PUT", "/api/v1/admin/policy-set"},
    {"GET", "/api/v1/admin/groups"},
    {"PUT", "/api/v1/admin/groups/*"},
    {"DELETE", "/api/v1/admin/groups/*"},
    {"GET", "/api/v1/admin/key-groups"},
    {"PUT", "/api/v1/admin/key-groups/*"},
    {"DELETE", "/api/v1/admin/key-groups/*"},
    {"GET", "/api/v1/approvals"},
    {"POST", "/api/v1/approvals/*/approve"},
    {"POST", "/api/v1/approvals/*/reject"},
    {"GET", "/api/v1/sign/requests/*"},
    /* Signing jobs: the agent puts the caller's context into the body as for IPC_MSG_SIGN. */
    {"POST", "/api/v1/sign/jobs"},
    {"GET", "/api/v1/sign/jobs/*?"},
};

/* A path segment: 1-128 of [A-Za-z0-9._@-], never "." or ".." (no query, no escapes). */
static int segment_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-' || ch == '@'))
            return 0;
    }
    return 1;
}

static int path_matches(const char *pattern, const char *path)
{
    while (*pattern == '/' && *path == '/') {
        const char *pe, *se;
        size_t pl, sl;
        pattern++;
        path++;
        pe = pattern + strcspn(pattern, "/");
        se = path + strcspn(path, "/");
        pl = (size_t)(pe - pattern);
        sl = (size_t)(se - path);
        if (!segment_ok(path, sl))
            return 0;
        if (!(pl == 1 && *pattern == '*') && (pl != sl || memcmp(pattern, path, pl) != 0))
            return 0;
        pattern = pe;
        path = se;
    }
    return !*pattern && !*path;
}

/* A pattern ending in "?" takes a query string of [A-Za-z0-9._~%&=+-] (the rest of the
 * pattern matches the path before it); no other call carries one. */
static int query_ok(const char *q)
{
    return strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~%&=+-") ==
           strlen(q);
}

static int api_call_allowed(const char *method, const char *path)
{
    char bare[513], pattern[128];
    const char *query = strchr(path, '?');
    size_t n = query ? (size_t)(query - path) : strlen(path);

    if (n >= sizeof(bare) || (query && !query_ok(query + 1)))
        return 0;
    memcpy(bare, path, n);
    bare[n] = '\0';
    for (size_t i = 0; i < sizeof(api_allowed) / sizeof(api_allowed[0]); i++) {
        size_t len = strlen(api_allowed[i].pattern);
        int takes_query = len > 0 && api_allowed[i].pattern[len - 1] == '?';
        if (strcmp(api_allowed[i].method, method) != 0 || (query && !takes_query) ||
            len >= sizeof(pattern))
            continue;
        memcpy(pattern, api_allowed[i].pattern, len + 1);
        if (takes_query)
            pattern[len - 1] = '\0';
        if (path_matches(pattern, bare))
            return 1;
    }
    return 0;
}

/* A signing job is a sign request: its body gets the caller's context as IPC_MSG_SIGN's does,
 * so that policy rules on the application and the audit log see who asked. NULL if the body is
 * not one JSON object. */
static char *job_body_with_context(const char *body, const ag_caller *caller)
{
    cJSON *doc = body ? cJSON_Parse(body) : NULL;
    char *text = NULL;

    if (cJSON_IsObject(doc)) {
        add_caller_context(doc, caller);
        text = cJSON_PrintUnformatted(doc);
    }
    cJSON_Delete(doc);
    return text;
}

static void handle_api(ag_server *srv, ipc_fd fd, uint32_t id, const ipc_fields *req,
                       const ag_caller *caller)
{
    char method[9], path[513], msg[700];
    char *body = NULL;
    ipc_field f;
    ag_response resp;
    ag_error err;
    ipc_writer w;
    sg_status st;

    memset(&resp, 0, sizeof(resp));
    if (ipc_get_text(req, IPC_TAG_METHOD, method, sizeof(method)) != 1 ||
        ipc_get_text(req, IPC_TAG_PATH, path, sizeof(path)) != 1) {
        send_error(fd, id, SG_ERR_BAD_INPUT, "an API call needs a method and a path");
        goto out;
    }
    if (!api_call_allowed(method, path)) {
        ag_log("ipc", "refused API call %s %s from pid %ld (%s): not on the allow-list", method,
               path, (long)caller->pid, caller->exe);
        snprintf(msg, sizeof(msg),
                 "the agent does not make %s %s on your behalf (only administration, approval, "
                 "sign-request and signing-job calls)",
                 method, path);
        send_error(fd, id, SG_ERR_DENIED, msg);
        goto out;
    }
    if (ipc_find(req, IPC_TAG_BODY, &f)) {
        body = malloc((size_t)f.len + 1);
        if (!body) {
            send_error(fd, id, SG_ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(body, f.value, f.len);
        body[f.len] = '\0';
    }
    if (!strcmp(method, "POST") && !strcmp(path, "/api/v1/sign/jobs")) {
        char *with_ctx = job_body_with_context(body, caller);
        if (!with_ctx) {
            send_error(fd, id, SG_ERR_BAD_INPUT, "a signing job's body must be one JSON object");
            goto out;
        }
        free(body);
        body = with_ctx;
    }
    ag_debug("ipc", "API call %s %s for pid %ld (%s)", method, path, (long)caller->pid,
             caller->exe);
    st = ag_session_call(srv->session, method, path, body, NULL, &resp, &err);
    if (st != SG_OK) {
        send_error(fd, id, st, err.message);
        goto out;
    }
    if (resp.body_len > IPC_API_ANSWER_MAX ||
        (resp.body && memchr(resp.body, '\0', resp.body_len))) {
        send_error(fd, id, SG_ERR_PROTOCOL, "the server's answer exceeds the protocol's limits");
        goto out;
    }
    ipc_writer_init(&w, IPC_MSG_API | IPC_REPLY, id);
    ipc_put_u32(&w, IPC_TAG_HTTP_STATUS, (uint32_t)resp.status);
    ipc_put_bytes(&w, IPC_TAG_ANSWER, resp.body ? resp.body : "", resp.body ? resp.body_len : 0);
    if (w.failed) {
        ipc_writer_free(&w);
        send_error(fd, id, SG_ERR_PROTOCOL, "the server's answer exceeds the protocol's limits");
        goto out;
    }
    send_frame(fd, &w);
out:
    free(body);
    ag_response_free(&resp);
}

static void handle_status(ag_server *srv, ipc_fd fd, uint32_t id)
{
    ag_session_info info;
    ipc_writer w;
    ag_session_info_get(srv->session, &info);
    ipc_writer_init(&w, IPC_MSG_STATUS | IPC_REPLY, id);
    ipc_put_text(&w, IPC_TAG_VERSION, SIGNUM_VERSION);
    ipc_put_u32(&w, IPC_TAG_PID, (uint32_t)sg_os_pid());
    ipc_put_u32(&w, IPC_TAG_LOGGED_IN, (uint32_t)info.logged_in);
    ipc_put_text(&w, IPC_TAG_IDENTITY, info.identity);
    ipc_put_text(&w, IPC_TAG_SERVER,
                 srv->cfg->server_count ? srv->cfg->servers[0] : "(none configured)");
    ipc_put_text(&w, IPC_TAG_AUTH_METHOD, info.auth_method);
    ipc_put_u64(&w, IPC_TAG_EXPIRES, info.expires);
    send_frame(fd, &w);
}

static void handle_login(ag_server *srv, ipc_fd fd, uint32_t id, const ipc_fields *req)
{
    char secret[257];
    ag_error err;
    ipc_writer w;
    ag_session_info info;
    if (ipc_get_text(req, IPC_TAG_SECRET, secret, sizeof(secret)) != 1) {
        send_error(fd, id, SG_ERR_BAD_INPUT, "login needs a secret");
        return;
    }
    if (ag_session_login(srv->session, secret, &err) != SG_OK) {
        memset(secret, 0, sizeof(secret));
        send_error(fd, id, err.status, err.message);
        return;
    }
    memset(secret, 0, sizeof(secret));
    ag_session_info_get(srv->session, &info);
    ipc_writer_init(&w, IPC_MSG_LOGIN | IPC_REPLY, id);
    ipc_put_text(&w, IPC_TAG_IDENTITY, info.identity);
    send_frame(fd, &w);
}

static void handle_simple(ipc_fd fd, uint16_t type, uint32_t id)
{
    ipc_writer w;
    ipc_writer_init(&w, type | IPC_REPLY, id);
    if (type == IPC_MSG_HELLO)
        ipc_put_text(&w, IPC_TAG_VERSION, SIGNUM_VERSION);
    send_frame(fd, &w);
}

void ag_conn_refuse(ipc_fd fd, sg_status st, const char *msg)
{
    send_error(fd, 0, st, msg);
}

/* ---- one connection ----------------------------------------------------------------------- */

void ag_conn_serve(ag_server *srv, ipc_fd fd, ag_caller *caller, ag_conn_check check, void *ctx)
{
    int first = 1;

    while (!ag_stop_requested()) {
        ipc_header hdr;
        ipc_fields fields;
        uint8_t *payload = NULL;
        const char *why = "";
        int rc = ipc_read_frame(fd, &hdr, &payload, AG_IDLE_CONNECTION_MS, AG_FRAME_REST_MS, &why);

        if (rc == -1 || rc == -2)
            break; /* closed, or stalled: drop it */
        ag_activity_touch();
        if (first && check) {
            if (check(fd, caller, ctx) != 0) {
                send_error(fd, 0, SG_ERR_DENIED, "this agent serves only its own user");
                free(payload);
                break;
            }
            ag_debug("ipc", "connection from pid %ld (%s)", caller->pid, caller->exe);
        }
        first = 0;
        if (rc == -3 || ipc_fields_validate(payload, hdr.length, &fields, &why) != 0) {
            ag_log("ipc", "malformed frame from pid %ld: %s", caller->pid, why);
            send_error(fd, rc == -3 ? 0 : hdr.id, SG_ERR_PROTOCOL, why);
            free(payload);
            break; /* framing can no longer be trusted */
        }
        switch (hdr.type) {
        case IPC_MSG_HELLO: handle_simple(fd, hdr.type, hdr.id); break;
        case IPC_MSG_STATUS: handle_status(srv, fd, hdr.id); break;
        case IPC_MSG_LIST_KEYS: handle_list_keys(srv, fd, hdr.id); break;
        case IPC_MSG_SIGN: handle_sign(srv, fd, hdr.id, &fields, caller); break;
        case IPC_MSG_LOGIN: handle_login(srv, fd, hdr.id, &fields); break;
        case IPC_MSG_API: handle_api(srv, fd, hdr.id, &fields, caller); break;
        case IPC_MSG_LOGOUT:
            ag_session_logout(srv->session);
            handle_simple(fd, hdr.type, hdr.id);
            break;
        case IPC_MSG_SHUTDOWN:
            ag_log("agent", "shutdown requested by pid %ld (%s)", caller->pid, caller->exe);
            handle_simple(fd, hdr.type, hdr.id);
            ag_request_stop();
            break;
        default: send_error(fd, hdr.id, SG_ERR_UNSUPPORTED, "unknown request type"); break;
        }
        if (payload) {
            memset(payload, 0, hdr.length); /* may have held a secret */
            free(payload);
        }
        ag_activity_touch();
    }
}
