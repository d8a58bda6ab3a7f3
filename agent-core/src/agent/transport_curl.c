/* One HTTPS attempt with libcurl: one share handle (connections, TLS sessions, DNS) used by
 * every thread, so all tool processes ride the same warm connections. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "signum/common/buf.h"
#include "signum/https.h"

/* TLS 1.2 suites: forward-secret AEAD only, the server's list (server/src/cmd_serve.c);
 * TLS 1.3 keeps the library's suites, which are all AEAD. */
#define AG_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct ag_backend {
    const ag_config *cfg;
    char user_agent[64];
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

/* Each thread keeps one easy handle, freed when the thread ends; with the share, handles
 * differ but connections do not. */
static pthread_key_t easy_key;
static pthread_once_t easy_once = PTHREAD_ONCE_INIT;

static void easy_free(void *h)
{
    curl_easy_cleanup(h);
}

static void easy_key_init(void)
{
    pthread_key_create(&easy_key, easy_free);
}

static CURL *thread_easy(void)
{
    CURL *h;
    pthread_once(&easy_once, easy_key_init);
    h = pthread_getspecific(easy_key);
    if (!h && (h = curl_easy_init()) && pthread_setspecific(easy_key, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
    ag_backend *t = arg;
    (void)h;
    (void)access;
    pthread_mutex_lock(&t->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    ag_backend *t = arg;
    (void)h;
    pthread_mutex_unlock(&t->locks[data]);
}

sg_status ag_backend_new(const ag_config *cfg, const char *user_agent, ag_backend **out,
                         ag_error *err)
{
    ag_backend *t;
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return ag_fail(err, SG_ERR_INTERNAL, "libcurl initialisation failed");
    t = calloc(1, sizeof(*t));
    if (!t)
        return ag_fail(err, SG_ERR_NOMEM, "out of memory");
    t->cfg = cfg;
    snprintf(t->user_agent, sizeof(t->user_agent), "%s", user_agent);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    t->share = curl_share_init();
    if (!t->share) {
        free(t);
        return ag_fail(err, SG_ERR_NOMEM, "out of memory");
    }
    curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    *out = t;
    return SG_OK;
}

void ag_backend_free(ag_backend *t)
{
    if (!t)
        return;
    {
        /* The main thread's handle (if it made calls) goes before the share it uses. */
        CURL *h;
        pthread_once(&easy_once, easy_key_init);
        h = pthread_getspecific(easy_key);
        if (h) {
            curl_easy_cleanup(h);
            pthread_setspecific(easy_key, NULL);
        }
    }
    curl_share_cleanup(t->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&t->locks[i]);
    free(t);
}

typedef struct {
    ag_response *resp;
    sgc_buf body; /* capped at AG_MAX_RESPONSE; its bytes belong to resp */
    int too_big;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t len = size * n;
    int rc = sgc_buf_add(&s->body, data, len);
    if (rc != SGC_OK) {
        s->too_big = rc == SGC_E_TOO_LARGE;
        return 0;
    }
    /* resp owns the bytes (ag_response_free frees them); the buffer only grows them. */
    s->resp->body = s->body.data;
    s->resp->body_len = s->body.len;
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    ag_response *r = arg;
    size_t len = size * n;
    char line[256];
    if (len >= sizeof(line))
        return len;
    memcpy(line, data, len);
    line[len] = '\0';
    if (strncasecmp(line, "date:", 5) == 0) {
        time_t t = curl_getdate(line + 5 + strspn(line + 5, " "), NULL);
        r->date = t > 0 ? t : 0;
    }
    ag_response_header(r, line);
    return len;
}

/* Where curl stopped: doctor's DNS, TCP and TLS verdicts. */
static ag_stage stage_of(CURLcode rc)
{
    switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_OUT_OF_MEMORY: return AG_STAGE_SETUP;
    case CURLE_COULDNT_RESOLVE_HOST: return AG_STAGE_DNS;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT: return AG_STAGE_CONNECT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER: return AG_STAGE_TLS;
    default: return AG_STAGE_HTTP;
    }
}

try_result ag_backend_try(ag_backend *t, unsigned server, const char *method, const char *path,
                          const char *bearer, const char *json_body, const char *if_none_match,
                          ag_response *resp, ag_error *err)
{
    const ag_config *cfg = t->cfg;
    char url[1024], auth[600], inm[200];
    struct curl_slist *headers = NULL;
    sink s = {.resp = resp};
    CURLcode rc;
    CURL *h;

    h = thread_easy();
    ag_response_free(resp);
    if (!h) {
        resp->stage = AG_STAGE_SETUP;
        snprintf(resp->reason, sizeof(resp->reason), "out of memory");
        ag_fail(err, SG_ERR_NOMEM, "cannot create an HTTP handle");
        return TRY_FATAL;
    }
    curl_easy_reset(h);
    sgc_buf_init(&s.body, AG_MAX_RESPONSE);
    resp->retry_after = -1;
    resp->server_index = (int)server;
    snprintf(url, sizeof(url), "%s%s", cfg->servers[server], path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_SHARE, t->share);
    /* Keep as many warm connections as tools sign in parallel (curl keeps 5 by default). */
    curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 32L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, AG_TLS12_CIPHERS);
    if (cfg->ca_file[0])
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->client_cert[0]) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, cfg->client_cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY,
                         cfg->client_key[0] ? cfg->client_key : cfg->client_cert);
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)cfg->request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, t->user_agent);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (json_body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(json_body));
    }
    if (bearer) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        headers = curl_slist_append(headers, auth);
    }
    if (if_none_match && *if_none_match) {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", if_none_match);
        headers = curl_slist_append(headers, inm);
    }
    /* curl's default Expect: 100-continue costs a round trip on larger bodies. */
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    if (bearer)
        memset(auth, 0, sizeof(auth));

    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        if (ag_http_retryable(resp->status, resp->body))
            return TRY_RETRYABLE;
        return TRY_DONE;
    }
    ag_debug("http", "%s %s: %s", method, url, curl_easy_strerror(rc));
    snprintf(resp->reason, sizeof(resp->reason), "%s", curl_easy_strerror(rc));
    resp->stage = stage_of(rc);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        ag_fail(err, SG_ERR_NETWORK, "cannot connect to %s: %s", cfg->servers[server],
                curl_easy_strerror(rc));
        return TRY_CONNECT_FAILED;
    case CURLE_OPERATION_TIMEDOUT:
        ag_fail(err, SG_ERR_TIMEOUT, "%s did not answer in time", cfg->servers[server]);
        return TRY_CONNECT_FAILED;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
        ag_fail(err, SG_ERR_NETWORK, "connection to %s failed: %s", cfg->servers[server],
                curl_easy_strerror(rc));
        return TRY_CONNECT_FAILED;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        /* Never retried elsewhere silently: a server that fails verification is an alarm. */
        ag_fail(err, SG_ERR_NETWORK, "TLS verification of %s failed: %s (check ca_file)",
                cfg->servers[server], curl_easy_strerror(rc));
        return TRY_FATAL;
    case CURLE_WRITE_ERROR:
        ag_fail(err, s.too_big ? SG_ERR_PROTOCOL : SG_ERR_NOMEM, "server answer %s",
                s.too_big ? "larger than 4 MiB" : "could not be stored");
        return TRY_FATAL;
    default:
        ag_fail(err, SG_ERR_NETWORK, "request to %s failed: %s", cfg->servers[server],
                curl_easy_strerror(rc));
        return TRY_FATAL;
    }
}
