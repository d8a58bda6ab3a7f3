/* The agent's HTTPS calls, whatever carries them: failover across the configured servers with
 * per-node health (nodes.h), retries with backoff and jitter. One attempt is the backend's job
 * (signum/https.h): libcurl in transport_curl.c; WinHTTP on Windows (issue #3).
 *
 * A connection failure or a 5xx from one node sends the very same request (same body, so the
 * same request_id: the server's idempotency makes a repeated sign safe) to the next node at
 * once; the failed node is skipped for a growing interval. Only when every node has failed
 * does the call back off and start over, up to `retries` times. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "nodes.h"
#include "signum/https.h"
#include "signum/os.h"

struct ag_transport {
    const ag_config *cfg;
    ag_backend *backend;
    pthread_mutex_t lock; /* guards nodes: every thread of the agent shares one transport */
    ag_nodes nodes;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

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
    pthread_mutex_init(&t->lock, NULL);
    ag_nodes_init(&t->nodes, cfg->server_count, (unsigned)cfg->node_backoff_ms,
                  (unsigned)cfg->node_backoff_max_ms);
    *out = t;
    return SG_OK;
}

void ag_transport_free(ag_transport *t)
{
    if (!t)
        return;
    ag_backend_free(t->backend);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

const char *ag_transport_server(ag_transport *t)
{
    unsigned i;
    if (t->cfg->server_count == 0)
        return "";
    pthread_mutex_lock(&t->lock);
    i = t->nodes.preferred;
    pthread_mutex_unlock(&t->lock);
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

/* Node i failed (no connection, or a 5xx): skipped for a while. */
static void node_failed(ag_transport *t, unsigned i, const char *method, const char *path,
                        const ag_response *resp, const ag_error *err)
{
    unsigned ms;
    pthread_mutex_lock(&t->lock);
    ms = ag_nodes_failed(&t->nodes, i, now_ms());
    pthread_mutex_unlock(&t->lock);
    if (t->cfg->server_count > 1) {
        char why[64];
        if (resp->status >= 500)
            snprintf(why, sizeof(why), "HTTP %ld", resp->status);
        ag_log("http", "%s %s on %s failed (%s); skipping that node for %u ms", method, path,
               t->cfg->servers[i], resp->status >= 500 ? why : err->message, ms);
    }
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
        unsigned order[AG_MAX_SERVERS], n, k;
        try_result tr = TRY_CONNECT_FAILED;
        pthread_mutex_lock(&t->lock);
        n = ag_nodes_order(&t->nodes, now_ms(), order);
        pthread_mutex_unlock(&t->lock);
        /* Fail over through every node before backing off. */
        for (k = 0; k < n; k++) {
            unsigned i = order[k];
            int moved;
            tr = ag_backend_try(t->backend, i, method, path, bearer, json_body, if_none_match, resp,
                                err);
            if (tr == TRY_DONE) {
                pthread_mutex_lock(&t->lock);
                moved = ag_nodes_ok(&t->nodes, i);
                pthread_mutex_unlock(&t->lock);
                if (moved)
                    ag_log("http", "failed over to %s", cfg->servers[i]);
                return SG_OK;
            }
            if (tr == TRY_FATAL)
                return err->status;
            /* A 429 is the caller's rate, not the node's health: wait as told, then again. */
            if (tr == TRY_RETRYABLE && resp->status < 500)
                break;
            node_failed(t, i, method, path, resp, err);
        }
        if (attempt == cfg->retries)
            break;
        ag_debug("http", "attempt %d of %s %s failed on every node; backing off", attempt + 1,
                 method, path);
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
