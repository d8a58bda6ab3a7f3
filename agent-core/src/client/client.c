/* The client library's IPC side: a small pool of connections to the agent, started on demand,
 * one request/reply per connection at a time, dropped (not reused) after a fork. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/ipc.h"
#include "client_os.h"
#include "signum/client.h"
#include "signum/common/rc.h"
#include "signum/crypto.h"

#define POOL_MAX           8
#define DEFAULT_TIMEOUT_MS 60000
#define AUTOSTART_WAIT_MS  10000

struct sg_client {
    char socket_path[SG_ENDPOINT_MAX];
    int no_autostart;
    char application[257];
    int timeout_ms;
    pthread_mutex_t lock;
    ipc_fd idle[POOL_MAX];
    unsigned nidle;
    long owner; /* the process whose connections sit in idle[] */
    uint32_t next_id;
};

static __thread char last_error[512];

static sg_status fail(sg_status st, const char *fmt, ...) SGC_PRINTF(2, 3);

static sg_status fail(sg_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return st;
}

const char *sg_last_error(void)
{
    return last_error;
}

const char *sg_status_name(sg_status st)
{
    static const char *const names[SG_STATUS_COUNT] = {
        [SG_OK] = "ok",
        [SG_ERR_AGENT_UNAVAILABLE] = "agent_unavailable",
        [SG_ERR_NOT_LOGGED_IN] = "not_logged_in",
        [SG_ERR_AUTH_FAILED] = "auth_failed",
        [SG_ERR_DENIED] = "denied",
        [SG_ERR_KEY_NOT_FOUND] = "key_not_found",
        [SG_ERR_NETWORK] = "network",
        [SG_ERR_TIMEOUT] = "timeout",
        [SG_ERR_SERVER] = "server_error",
        [SG_ERR_HSM] = "hsm_error",
        [SG_ERR_BAD_INPUT] = "bad_input",
        [SG_ERR_PROTOCOL] = "protocol_error",
        [SG_ERR_NOMEM] = "out_of_memory",
        [SG_ERR_BUFFER_TOO_SMALL] = "buffer_too_small",
        [SG_ERR_UNSUPPORTED] = "unsupported",
        [SG_ERR_INTERNAL] = "internal_error",
        [SG_ERR_QUOTA_EXCEEDED] = "quota_exceeded",
    };
    return (unsigned)st < SG_STATUS_COUNT && names[st] ? names[st] : "unknown";
}

sg_status sg_client_new(const sg_client_options *opts, sg_client **out)
{
    sg_client *c = calloc(1, sizeof(*c));
    const char *no = sg_os_getenv("SIGNUM_NO_AUTOSTART");

    *out = NULL;
    if (!c)
        return fail(SG_ERR_NOMEM, "out of memory");
    if (opts && opts->socket_path) {
        if (strlen(opts->socket_path) >= sizeof(c->socket_path)) {
            free(c);
            return fail(SG_ERR_BAD_INPUT, "socket path too long");
        }
        snprintf(c->socket_path, sizeof(c->socket_path), "%s", opts->socket_path);
    } else if (sg_default_socket(c->socket_path, sizeof(c->socket_path)) != 0) {
        free(c);
        return fail(SG_ERR_BAD_INPUT, "agent socket path too long");
    }
    c->no_autostart = (opts && opts->no_autostart) || (no && strcmp(no, "0") != 0 && *no);
    if (opts && opts->application)
        snprintf(c->application, sizeof(c->application), "%s", opts->application);
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    pthread_mutex_init(&c->lock, NULL);
    c->owner = sg_os_pid();
    *out = c;
    return SG_OK;
}

void sg_client_free(sg_client *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->nidle; i++)
        ipc_close(c->idle[i]);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- connections -------------------------------------------------------------------------- */

static sg_status get_connection(sg_client *c, ipc_fd *fd, int *reused)
{
    char why[256];
    int waited = 0, started = 0;

    *reused = 0;
    pthread_mutex_lock(&c->lock);
    if (c->owner != sg_os_pid()) {
        /* A forked child: the parent's connections are not ours to use. Closing our copies
         * leaves the parent's sockets open. */
        for (unsigned i = 0; i < c->nidle; i++)
            ipc_close(c->idle[i]);
        c->nidle = 0;
        c->owner = sg_os_pid();
    }
    if (c->nidle > 0) {
        *fd = c->idle[--c->nidle];
        *reused = 1;
        pthread_mutex_unlock(&c->lock);
        return SG_OK;
    }
    pthread_mutex_unlock(&c->lock);

    for (;;) {
        int absent = 0;
        if (sg_os_connect(c->socket_path, fd, &absent, why, sizeof(why)) == 0)
            return SG_OK;
        if (!absent)
            return fail(SG_ERR_AGENT_UNAVAILABLE, "cannot connect to the agent at %s: %s",
                        c->socket_path, why);
        if (c->no_autostart)
            return fail(SG_ERR_AGENT_UNAVAILABLE,
                        "no agent is running at %s (autostart disabled); run 'signum-util agent "
                        "start'",
                        c->socket_path);
        if (!started) {
            if (sg_os_start_agent(c->socket_path, why, sizeof(why)) != 0)
                return fail(SG_ERR_AGENT_UNAVAILABLE, "%s", why);
            started = 1;
        }
        if (waited >= AUTOSTART_WAIT_MS)
            return fail(SG_ERR_AGENT_UNAVAILABLE,
                        "started the agent but it did not listen at %s within %d s; see its log "
                        "beside the socket",
                        c->socket_path, AUTOSTART_WAIT_MS / 1000);
        sg_os_sleep_ms(20);
        waited += 20;
    }
}

static void put_connection(sg_client *c, ipc_fd fd)
{
    int pooled = 0;
    pthread_mutex_lock(&c->lock);
    if (c->owner == sg_os_pid() && c->nidle < POOL_MAX) {
        c->idle[c->nidle++] = fd;
        pooled = 1;
    }
    pthread_mutex_unlock(&c->lock);
    if (!pooled)
        ipc_close(fd);
}

/* ---- request / reply ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *payload;
    ipc_fields fields;
} reply;

static void reply_free(reply *r)
{
    free(r->payload);
    memset(r, 0, sizeof(*r));
}

/* Sends w (finished here) and reads the reply of the expected type. An error reply becomes its
 * status and message. A broken pooled connection is retried once on a fresh one: every sign
 * request carries a request id, so a repeat cannot make a second signature. */
static sg_status roundtrip(sg_client *c, ipc_writer *w, uint16_t type, reply *r)
{
    const char *why = "";
    sg_status st;
    int attempt;

    memset(r, 0, sizeof(*r));
    if (ipc_writer_finish(w) != 0)
        return fail(SG_ERR_BAD_INPUT, "request exceeds the protocol's limits");
    for (attempt = 0; attempt < 2; attempt++) {
        ipc_header hdr;
        ipc_fd fd;
        int reused, rc;

        st = get_connection(c, &fd, &reused);
        if (st != SG_OK)
            return st;
        rc = ipc_write_all(fd, w->buf, w->len, c->timeout_ms);
        if (rc == 0)
            rc = ipc_read_frame(fd, &hdr, &r->payload, c->timeout_ms, c->timeout_ms, &why);
        if (rc == -1 && attempt == 0) {
            /* The agent closed the connection without answering: an idle pooled one it timed
             * out, or an agent that is shutting down (a new one is then started). Once more;
             * a sign request keeps its request id, so this cannot make a second signature. */
            ipc_close(fd);
            if (!reused)
                sg_os_sleep_ms(50);
            continue;
        }
        if (rc != 0) {
            ipc_close(fd);
            if (rc == -2)
                return fail(SG_ERR_TIMEOUT, "the agent did not answer within %d ms", c->timeout_ms);
            return fail(rc == -3 ? SG_ERR_PROTOCOL : SG_ERR_AGENT_UNAVAILABLE,
                        "agent connection failed: %s", rc == -3 ? why : "connection closed");
        }
        if (ipc_fields_validate(r->payload, hdr.length, &r->fields, &why) != 0 ||
            (hdr.type != (type | IPC_REPLY) && hdr.type != IPC_MSG_ERROR)) {
            ipc_close(fd);
            reply_free(r);
            return fail(SG_ERR_PROTOCOL, "malformed reply from the agent: %s",
                        *why ? why : "unexpected type");
        }
        put_connection(c, fd);
        if (hdr.type == IPC_MSG_ERROR) {
            uint32_t code = SG_ERR_INTERNAL;
            char msg[1025] = "";
            ipc_get_u32(&r->fields, IPC_TAG_CODE, &code);
            ipc_get_text(&r->fields, IPC_TAG_MESSAGE, msg, sizeof(msg));
            reply_free(r);
            if (code == SG_OK || code >= SG_STATUS_COUNT)
                code = SG_ERR_PROTOCOL;
            return fail((sg_status)code, "%s", msg[0] ? msg : sg_status_name((sg_status)code));
        }
        return SG_OK;
    }
    return fail(SG_ERR_AGENT_UNAVAILABLE, "agent connection failed twice");
}

static uint32_t next_id(sg_client *c)
{
    uint32_t id;
    pthread_mutex_lock(&c->lock);
    id = ++c->next_id;
    pthread_mutex_unlock(&c->lock);
    return id;
}

static void copy_bytes(uint8_t **dst, size_t *dst_len, const ipc_field *f, int *oom)
{
    *dst = malloc(f->len ? f->len : 1);
    if (!*dst) {
        *oom = 1;
        return;
    }
    memcpy(*dst, f->value, f->len);
    *dst_len = f->len;
}

static sg_status parse_key(const ipc_field *entry, sg_key *k)
{
    ipc_fields fs = {entry->value, entry->len};
    ipc_field f;
    size_t pos = 0, chains = 0;
    int oom = 0;

    memset(k, 0, sizeof(*k));
    if (ipc_get_text(&fs, IPC_TAG_KEY, k->name, sizeof(k->name)) != 1 ||
        ipc_get_text(&fs, IPC_TAG_KEY_TYPE, k->type, sizeof(k->type)) != 1 ||
        !ipc_find(&fs, IPC_TAG_KEY_ID, &f) || f.len == 0 || f.len > sizeof(k->id))
        return fail(SG_ERR_PROTOCOL, "key entry without name, type or id");
    memcpy(k->id, f.value, f.len);
    k->id_len = f.len;
    while (ipc_next(&fs, &pos, &f))
        chains += f.tag == IPC_TAG_CHAIN;
    if (chains) {
        k->chain = calloc(chains, sizeof(*k->chain));
        k->chain_len = calloc(chains, sizeof(*k->chain_len));
        if (!k->chain || !k->chain_len)
            oom = 1;
    }
    pos = 0;
    while (!oom && ipc_next(&fs, &pos, &f)) {
        if (f.tag == IPC_TAG_PUBLIC_KEY && !k->public_key)
            copy_bytes(&k->public_key, &k->public_key_len, &f, &oom);
        else if (f.tag == IPC_TAG_CERT && !k->cert)
            copy_bytes(&k->cert, &k->cert_len, &f, &oom);
        else if (f.tag == IPC_TAG_CHAIN) {
            copy_bytes(&k->chain[k->chain_count], &k->chain_len[k->chain_count], &f, &oom);
            if (!oom)
                k->chain_count++;
        }
    }
    if (oom)
        return fail(SG_ERR_NOMEM, "out of memory");
    if (!k->public_key)
        return fail(SG_ERR_PROTOCOL, "key %s has no public key", k->name);
    return SG_OK;
}

void sg_key_list_free(sg_key_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++) {
        sg_key *k = &list->keys[i];
        free(k->public_key);
        free(k->cert);
        for (size_t j = 0; j < k->chain_count; j++)
            free(k->chain[j]);
        free(k->chain);
        free(k->chain_len);
    }
    free(list->keys);
    free(list);
}

sg_status sg_list_keys(sg_client *c, sg_key_list **out)
{
    ipc_writer w;
    reply r;
    ipc_field f;
    size_t pos = 0, n = 0;
    sg_key_list *list = NULL;
    sg_status st;

    *out = NULL;
    ipc_writer_init(&w, IPC_MSG_LIST_KEYS, next_id(c));
    st = roundtrip(c, &w, IPC_MSG_LIST_KEYS, &r);
    ipc_writer_free(&w);
    if (st != SG_OK)
        return st;
    while (ipc_next(&r.fields, &pos, &f))
        n += f.tag == IPC_TAG_KEY_ENTRY;
    list = calloc(1, sizeof(*list));
    if (list && n)
        list->keys = calloc(n, sizeof(sg_key));
    if (!list || (n && !list->keys)) {
        free(list);
        reply_free(&r);
        return fail(SG_ERR_NOMEM, "out of memory");
    }
    pos = 0;
    while (ipc_next(&r.fields, &pos, &f)) {
        if (f.tag != IPC_TAG_KEY_ENTRY)
            continue;
        st = parse_key(&f, &list->keys[list->count]);
        list->count++; /* counted even on failure, so free releases its parts */
        if (st != SG_OK) {
            sg_key_list_free(list);
            reply_free(&r);
            return st;
        }
    }
    reply_free(&r);
    *out = list;
    return SG_OK;
}

static void random_request_id(char out[33])
{
    uint8_t raw[16];
    static const char hex[] = "0123456789abcdef";
    if (sg_os_random(raw, sizeof(raw)) != 0) {
        /* No entropy is a broken system; fall back to something unique per process. */
        snprintf(out, 33, "%08lx%08lx", (unsigned long)sg_os_pid(), (unsigned long)time(NULL));
        return;
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
}

sg_status sg_sign(sg_client *c, const sg_sign_request *req, uint8_t *const *sigs, size_t *sig_lens)
{
    char request_id[33];
    ipc_writer w;
    reply r;
    ipc_field f;
    size_t pos = 0, i = 0;
    sg_status st;

    if (!req || !req->key || req->count < 1 || req->count > 64 || !sigs || !sig_lens)
        return fail(SG_ERR_BAD_INPUT, "a sign request needs a key and 1-64 digests");
    for (size_t k = 0; k < req->count; k++)
        if (!req->digests[k])
            return fail(SG_ERR_BAD_INPUT, "digest %zu is missing", k);
    random_request_id(request_id);
    ipc_writer_init(&w, IPC_MSG_SIGN, next_id(c));
    ipc_put_text(&w, IPC_TAG_KEY, req->key);
    ipc_put_text(&w, IPC_TAG_MECH, sg_mech_name(req->mech));
    ipc_put_text(&w, IPC_TAG_HASH, sg_hash_name(req->hash));
    if (req->mech == SG_MECH_RSA_PSS && !req->salt_default)
        ipc_put_u32(&w, IPC_TAG_SALT, req->salt_len);
    for (size_t k = 0; k < req->count; k++)
        ipc_put_bytes(&w, IPC_TAG_DIGEST, req->digests[k], sg_hash_len(req->hash));
    ipc_put_text(&w, IPC_TAG_REQUEST_ID, request_id);
    if (req->provenance)
        ipc_put_text(&w, IPC_TAG_PROVENANCE, req->provenance);
    if (c->application[0])
        ipc_put_text(&w, IPC_TAG_APPLICATION, c->application);
    st = roundtrip(c, &w, IPC_MSG_SIGN, &r);
    ipc_writer_free(&w);
    if (st != SG_OK)
        return st;
    while (ipc_next(&r.fields, &pos, &f)) {
        if (f.tag != IPC_TAG_SIGNATURE)
            continue;
        if (i >= req->count) {
            st = fail(SG_ERR_PROTOCOL, "the agent returned more signatures than digests");
            break;
        }
        if (f.len > sig_lens[i]) {
            sig_lens[i] = f.len;
            st = fail(SG_ERR_BUFFER_TOO_SMALL, "signature %zu needs %u bytes", i, f.len);
            break;
        }
        memcpy(sigs[i], f.value, f.len);
        sig_lens[i] = f.len;
        i++;
    }
    if (st == SG_OK && i != req->count)
        st = fail(SG_ERR_PROTOCOL, "the agent returned %zu signatures for %zu digests", i,
                  req->count);
    reply_free(&r);
    return st;
}

static sg_status simple(sg_client *c, uint16_t type, const char *secret, reply *out)
{
    ipc_writer w;
    reply r;
    sg_status st;
    ipc_writer_init(&w, type, next_id(c));
    if (secret)
        ipc_put_text(&w, IPC_TAG_SECRET, secret);
    st = roundtrip(c, &w, type, &r);
    /* The secret sat in the frame buffer: wipe it before it is freed. */
    if (w.buf)
        memset(w.buf, 0, w.len);
    ipc_writer_free(&w);
    if (st == SG_OK && out)
        *out = r;
    else if (st == SG_OK)
        reply_free(&r);
    return st;
}

sg_status sg_login(sg_client *c, const char *secret)
{
    if (!secret || !*secret || strlen(secret) > 256)
        return fail(SG_ERR_BAD_INPUT, "the secret must be 1-256 characters");
    return simple(c, IPC_MSG_LOGIN, secret, NULL);
}

sg_status sg_logout(sg_client *c)
{
    return simple(c, IPC_MSG_LOGOUT, NULL, NULL);
}

sg_status sg_agent_shutdown(sg_client *c)
{
    return simple(c, IPC_MSG_SHUTDOWN, NULL, NULL);
}

sg_status sg_status_get(sg_client *c, sg_agent_status *out)
{
    reply r;
    uint32_t u = 0;
    sg_status st = simple(c, IPC_MSG_STATUS, NULL, &r);
    memset(out, 0, sizeof(*out));
    if (st != SG_OK)
        return st;
    ipc_get_text(&r.fields, IPC_TAG_VERSION, out->version, sizeof(out->version));
    ipc_get_u32(&r.fields, IPC_TAG_PID, &out->pid);
    ipc_get_text(&r.fields, IPC_TAG_IDENTITY, out->identity, sizeof(out->identity));
    ipc_get_text(&r.fields, IPC_TAG_SERVER, out->server, sizeof(out->server));
    ipc_get_text(&r.fields, IPC_TAG_AUTH_METHOD, out->auth_method, sizeof(out->auth_method));
    ipc_get_u64(&r.fields, IPC_TAG_EXPIRES, &out->token_expires);
    if (ipc_get_u32(&r.fields, IPC_TAG_LOGGED_IN, &u) == 1)
        out->logged_in = u != 0;
    reply_free(&r);
    return SG_OK;
}

_Static_assert(SG_API_BODY_MAX == IPC_API_BODY_MAX && SG_API_ANSWER_MAX == IPC_API_ANSWER_MAX,
               "client.h and ipc.h disagree on the API caps");

sg_status sg_api_call(sg_client *c, const char *method, const char *path, const char *body,
                      long *http_status, char **answer)
{
    ipc_writer w;
    reply r;
    ipc_field f;
    uint32_t code = 0;
    sg_status st;

    if (answer)
        *answer = NULL;
    if (http_status)
        *http_status = 0;
    if (!c || !method || !path || !http_status || !answer || !*method || strlen(method) > 8 ||
        strncmp(path, "/api/v1/", 8) != 0 || strlen(path) > 512)
        return fail(SG_ERR_BAD_INPUT, "an API call needs a method and a path under /api/v1/");
    if (body && strlen(body) > SG_API_BODY_MAX)
        return fail(SG_ERR_BAD_INPUT, "the request body is over %d KiB", SG_API_BODY_MAX / 1024);
    ipc_writer_init(&w, IPC_MSG_API, next_id(c));
    ipc_put_text(&w, IPC_TAG_METHOD, method);
    ipc_put_text(&w, IPC_TAG_PATH, path);
    if (body)
        ipc_put_text(&w, IPC_TAG_BODY, body);
    st = roundtrip(c, &w, IPC_MSG_API, &r);
    ipc_writer_free(&w);
    if (st != SG_OK)
        return st;
    if (ipc_get_u32(&r.fields, IPC_TAG_HTTP_STATUS, &code) != 1 ||
        !ipc_find(&r.fields, IPC_TAG_ANSWER, &f)) {
        st = fail(SG_ERR_PROTOCOL, "the agent's API answer lacks a status or a body");
        goto out;
    }
    *answer = malloc((size_t)f.len + 1);
    if (!*answer) {
        st = fail(SG_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(*answer, f.value, f.len);
    (*answer)[f.len] = '\0';
    *http_status = (long)code;
out:
    reply_free(&r);
    return st;
}

void sg_api_answer_free(char *answer)
{
    free(answer);
}
