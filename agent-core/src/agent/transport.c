/* The agent's HTTPS calls, whatever carries them: retries with backoff and jitter, failover
 * across the configured servers. One attempt is the backend's job (signum/https.h):
 * libcurl in transport_curl.c; WinHTTP on Windows (issue #3). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "signum/os.h"
#include "signum/https.h"

struct ag_transport {
    const ag_config *cfg;
    ag_backend *backend;
    pthread_mutex_t pref_lock;
    unsigned preferred; /* index of the server that answered last */
};

sg_status ag_transport_new(const ag_config *cfg, const char *user_agent, ag_transport **out,
                           ag_error *err)
{
    ag_transport *t = calloc(1, sizeof(*t));
    sg_status st;
    *out = NULL;
    if (!t)
        return ag_fail(err, SG_ERR_NOMEM, "out of memory");
    t->cfg = cfg;
    if ((st = ag_backend_new(cfg, user_agent, &t->backend, err)) != SG_OK) {
        free(t);
        return st;
    }
    pthread_mutex_init(&t->pref_lock, NULL);
    *out = t;
    return SG_OK;
}

void ag_transport_free(ag_transport *t)
{
    if (!t)
        return;
    ag_backend_free(t->backend);
    pthread_mutex_destroy(&t->pref_lock);
    free(t);
}

const char *ag_transport_server(ag_transport *t)
{
    unsigned i;
    if (t->cfg->server_count == 0)
        return "";
    pthread_mutex_lock(&t->pref_lock);
    i = t->preferred;
    pthread_mutex_unlock(&t->pref_lock);
    return t->cfg->servers[i];
}

/* Exponential backoff with full jitter: uniform in [0, base * 2^attempt], at least 50 ms. */
static void backoff(int attempt, long retry_after)
{
    uint32_t r = 0;
    long ms;
    if (retry_after >= 0) {
        ms = retry_after * 1000;
    } else {
        long cap = 100L << (attempt < 6 ? attempt : 6);
        if (sg_os_random(&r, sizeof(r)) != 0)
            r = (uint32_t)time(NULL);
        ms = 50 + (long)(r % (uint32_t)cap);
    }
    sg_os_sleep_ms((int)ms);
}

sg_status ag_http(ag_transport *t, const char *method, const char *path, const char *bearer,
                  const char *json_body, const char *if_none_match, ag_response *resp,
                  ag_error *err)
{
    const ag_config *cfg = t->cfg;
    int attempt;

    memset(resp, 0, sizeof(*resp));
    if (cfg->server_count == 0)
        return ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                       "no server configured: set SIGNUM_SERVER or server = in agent.conf");
    for (attempt = 0; attempt <= cfg->retries; attempt++) {
        unsigned start, k;
        try_result tr = TRY_CONNECT_FAILED;
        pthread_mutex_lock(&t->pref_lock);
        start = t->preferred;
        pthread_mutex_unlock(&t->pref_lock);
        /* Fail over through every server before backing off. */
        for (k = 0; k < cfg->server_count; k++) {
            unsigned i = (start + k) % cfg->server_count;
            tr = ag_backend_try(t->backend, i, method, path, bearer, json_body, if_none_match, resp,
                                err);
            if (tr != TRY_CONNECT_FAILED) {
                if (i != start) {
                    ag_log("http", "failed over to %s", cfg->servers[i]);
                    pthread_mutex_lock(&t->pref_lock);
                    t->preferred = i;
                    pthread_mutex_unlock(&t->pref_lock);
                }
                break;
            }
        }
        if (tr == TRY_DONE)
            return SG_OK;
        if (tr == TRY_FATAL)
            return err->status;
        if (attempt == cfg->retries)
            break;
        ag_debug("http", "attempt %d of %s %s failed; backing off", attempt + 1, method, path);
        backoff(attempt, tr == TRY_RETRYABLE ? resp->retry_after : -1);
    }
    if (ag_http_retryable(resp->status, resp->body))
        return ag_map_server_error(resp->status, resp->body, err);
    if (cfg->server_count > 1) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        return ag_fail(err, err->status, "no server reachable (%u tried, last: %s)",
                       cfg->server_count, msg);
    }
    return err->status;
}
