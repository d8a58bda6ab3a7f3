/* The webhook sender: one thread that delivers the alerts outbox to every configured webhook
 * in order, one alert at a time, as an HTTP(S) POST of the stored body with an HMAC-SHA256
 * signature header. A webhook's cursor (export_cursors) moves past an alert only after a 2xx;
 * anything else is retried with capped exponential back-off, the later alerts waiting behind
 * it, so a receiver outage delays alerts but never loses or reorders them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../audit/export.h"
#include "../common/log.h"
#include "../common/net.h"
#include "../common/util.h"
#include "../store/alert_db.h"
#include "alerts_internal.h"

#define RESPONSE_MAX    16384
#define BACKOFF_BASE_MS 500
#define IDLE_MS         1000

typedef struct {
    srv_alerts *a;
    alert_webhook *w;
    unsigned timeout_ms;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    uint64_t next_try; /* monotonic us */
    char error[200];
} conn;

static void conn_close(conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        pthread_mutex_lock(&c->a->lock);
        c->a->sending_fd = -1;
        pthread_mutex_unlock(&c->a->lock);
        close(c->fd);
        c->fd = -1;
    }
}

/* c->error = what + detail; the connection is closed. */
static int fail(conn *c, const char *what, const char *detail)
{
    snprintf(c->error, sizeof(c->error), "%s%s", what, detail);
    conn_close(c);
    return -1;
}

static int ssl_fail(conn *c, const char *what)
{
    char buf[160] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(c->error, sizeof(c->error), "%s%s%s", what, buf[0] ? ": " : "", buf);
    conn_close(c);
    return -1;
}

static int tcp_connect(conn *c)
{
    char why[180];
    c->fd = srv_net_connect(c->w->host, c->w->port, SOCK_STREAM, c->timeout_ms, c->timeout_ms, why,
                            sizeof(why));
    if (c->fd < 0)
        return fail(c, why, "");
    /* So that a stop need not wait for a slow receiver (srv_alerts_stop shuts it down). */
    pthread_mutex_lock(&c->a->lock);
    c->a->sending_fd = c->a->stopping ? -1 : c->fd;
    int stopping = c->a->stopping;
    pthread_mutex_unlock(&c->a->lock);
    return stopping ? fail(c, "stopping", "") : 0;
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* TLS 1.2+, the receiver's certificate verified against ca_file (else the system's CAs)
 * and the URL's host name. */
static int tls_connect(conn *c)
{
    if (!c->ctx) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx)
            return ssl_fail(c, "cannot create a TLS context");
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        if ((c->w->ca_file[0] ? SSL_CTX_load_verify_locations(c->ctx, c->w->ca_file, NULL)
                              : SSL_CTX_set_default_verify_paths(c->ctx)) != 1) {
            SSL_CTX_free(c->ctx);
            c->ctx = NULL;
            return ssl_fail(c, "cannot load the CA file");
        }
    }
    if (!(c->ssl = SSL_new(c->ctx)) || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set1_host(c->ssl, c->w->host) != 1 ||
        (!is_ip_literal(c->w->host) && SSL_set_tlsext_host_name(c->ssl, c->w->host) != 1))
        return ssl_fail(c, "cannot set up TLS");
    SSL_set_mode(c->ssl, SSL_MODE_AUTO_RETRY);
    if (SSL_connect(c->ssl) != 1) {
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK) {
            ERR_clear_error();
            return fail(c, "receiver certificate refused: ", X509_verify_cert_error_string(vr));
        }
        return ssl_fail(c, "TLS handshake failed");
    }
    return 0;
}

static int write_all(conn *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n;
        if (c->ssl) {
            size_t done = 0;
            n = SSL_write_ex(c->ssl, data, len, &done) == 1 ? (ssize_t)done : -1;
        } else {
            n = send(c->fd, data, len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
        }
        if (n <= 0)
            return c->ssl ? ssl_fail(c, "write failed")
                          : fail(c, "write failed: ", strerror(errno));
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* POSTs body; returns the HTTP status, or -1 with c->error set. The whole exchange is
 * bounded: connect and each read or write take at most timeout, and the response is read up
 * to its status line only (at most RESPONSE_MAX bytes, within twice the timeout). */
static int post(conn *c, const char *event_id, const char *body)
{
    char head[2048], mac[65], resp[RESPONSE_MAX + 1];
    size_t got = 0, blen = strlen(body);
    uint64_t deadline;
    int n, status;

    alert_hmac_hex(c->w->secret, c->w->secret_len, body, blen, mac);
    n = snprintf(head, sizeof(head),
                 "POST %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nUser-Agent: signum-server\r\n"
                 "X-Signum-Event-Id: %s\r\nX-Signum-Timestamp: %lld\r\n"
                 "X-Signum-Signature: sha256=%s\r\nConnection: close\r\n\r\n",
                 c->w->path, strchr(c->w->host, ':') ? "[" : "", c->w->host,
                 strchr(c->w->host, ':') ? "]" : "", c->w->port, blen, event_id,
                 (long long)srv_now(), mac);
    if (n < 0 || (size_t)n >= sizeof(head))
        return fail(c, "request head too long", "");
    deadline = srv_monotonic_us() + 2ull * c->timeout_ms * 1000u;
    if (tcp_connect(c) != 0 || (c->w->tls && tls_connect(c) != 0) ||
        write_all(c, head, (size_t)n) != 0 || write_all(c, body, blen) != 0)
        return -1;
    while (got < RESPONSE_MAX && !memchr(resp, '\n', got) && srv_monotonic_us() < deadline) {
        ssize_t r;
        if (c->ssl) {
            size_t done = 0;
            r = SSL_read_ex(c->ssl, resp + got, RESPONSE_MAX - got, &done) == 1 ? (ssize_t)done
                                                                                : -1;
        } else {
            r = recv(c->fd, resp + got, RESPONSE_MAX - got, 0);
            if (r < 0 && errno == EINTR)
                continue;
        }
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    ERR_clear_error();
    resp[got] = '\0';
    status = srv_http_status(resp, got);
    conn_close(c);
    if (status < 0)
        return fail(c, got ? "no HTTP status in the response" : "no response", "");
    if (status < 200 || status > 299)
        snprintf(c->error, sizeof(c->error), "answered HTTP %d", status);
    return status;
}

typedef struct {
    const char *cursor;
    int64_t id, prune_upto;
    long long keep;
} cursor_job;

static srv_status save_cursor(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    cursor_job *j = ctx;
    int64_t now = 0;
    srv_status st = srv_db_cursor_get(db, j->cursor, &now, err);
    (void)audit;
    /* Forward only: another node sharing the database may have delivered further. */
    if (st == SRV_OK && j->id > now)
        st = srv_db_cursor_set(db, j->cursor, j->id, err);
    return st == SRV_OK ? srv_db_alerts_prune(db, j->prune_upto, j->keep, err) : st;
}

/* Catches w->delivered_id up with the stored cursor; -1 if it cannot be read. */
static int catch_up_cursor(srv_db *db, alert_webhook *w, srv_alerts *a)
{
    int64_t stored = 0;
    srv_error err;
    if (!srv_db_shared(db))
        return 0; /* SQLite: one server, the cursor is this thread's alone */
    if (srv_db_cursor_get(db, w->cursor, &stored, &err) != SRV_OK) {
        srv_log(SRV_LOG_WARN, "alerts", "reading the webhook cursor: %s", err.message);
        return -1;
    }
    pthread_mutex_lock(&a->lock);
    if (stored > w->delivered_id)
        w->delivered_id = stored;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* Waits up to ms for a new alert or stop; non-zero when stopping. */
static int wait_new(srv_alerts *a, int64_t *seen, unsigned ms)
{
    uint64_t until = srv_monotonic_us() + (uint64_t)ms * 1000u, now;
    int stopping;
    pthread_mutex_lock(&a->lock);
    while (!a->stopping && a->newest_id == *seen && (now = srv_monotonic_us()) < until)
        srv_cond_wait_us(&a->wake, &a->lock, until - now);
    *seen = a->newest_id;
    stopping = a->stopping;
    pthread_mutex_unlock(&a->lock);
    return stopping;
}

/* One attempt at the oldest alert webhook c has not taken; 1 if one was delivered. */
static int deliver_one(srv_alerts *a, srv_db *db, conn *c)
{
    alert_webhook *w = c->w;
    srv_alert_row row;
    char *body = NULL;
    srv_error err;
    srv_status st;
    int status;

    /* Where the cursor is now: in a cluster every node runs a sender, and one that delivered
     * further has moved it (then this one does not send those alerts again). */
    if (catch_up_cursor(db, w, a) != 0)
        return 0;
    st = srv_db_alert_next(db, w->delivered_id, &row, &body, &err);
    if (st == SRV_E_NOT_FOUND)
        return 0;
    if (st != SRV_OK) {
        srv_log(SRV_LOG_WARN, "alerts", "reading the outbox: %s", err.message);
        c->next_try = srv_monotonic_us() + 1000000u;
        return 0;
    }
    c->error[0] = '\0';
    status = post(c, row.event_id, body);
    free(body);
    pthread_mutex_lock(&a->lock);
    w->attempts++;
    w->last_attempt = srv_now();
    w->last_status = status > 0 ? status : 0;
    if (status >= 200 && status <= 299) {
        cursor_job job = {w->cursor, row.id, row.id, a->cfg.keep};
        for (size_t i = 0; i < a->cfg.nwebhooks; i++)
            if (&a->cfg.webhooks[i] != w && a->cfg.webhooks[i].delivered_id < job.prune_upto)
                job.prune_upto = a->cfg.webhooks[i].delivered_id;
        if (w->failures)
            srv_log(SRV_LOG_INFO, "alerts",
                    "webhook %s: delivering again after %u failed "
                    "attempts",
                    w->cursor, w->failures);
        w->delivered_id = row.id;
        w->delivered++;
        w->failures = 0;
        w->last_success = w->last_attempt;
        w->last_error[0] = '\0';
        pthread_mutex_unlock(&a->lock);
        /* If this fails the alert is sent again after a restart: receivers drop duplicates
         * by X-Signum-Event-Id. */
        if (srv_writer_run(a->writer, save_cursor, &job, &err) != SRV_OK)
            srv_log(SRV_LOG_WARN, "alerts", "webhook %s: cannot store the cursor: %s", w->cursor,
                    err.message);
        return 1;
    }
    if (w->failures++ == 0)
        srv_log(SRV_LOG_WARN, "alerts", "webhook %s: alert %lld: %s; retrying with back-off",
                w->cursor, (long long)row.id, c->error);
    snprintf(w->last_error, sizeof(w->last_error), "%s", c->error);
    c->next_try =
        srv_monotonic_us() +
        (uint64_t)srv_backoff_ms(w->failures, BACKOFF_BASE_MS, a->cfg.backoff_max) * 1000u;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

void *alert_sender_main(void *arg)
{
    srv_alerts *a = arg;
    conn conns[ALERT_WEBHOOKS_MAX];
    srv_db *db = NULL;
    int64_t seen = 0;
    srv_error err;

    memset(conns, 0, sizeof(conns));
    for (size_t i = 0; i < a->cfg.nwebhooks; i++) {
        conns[i].a = a;
        conns[i].w = &a->cfg.webhooks[i];
        conns[i].fd = -1;
        conns[i].timeout_ms = a->cfg.timeout * 1000u;
    }
    for (;;) {
        size_t i = 0;
        if (srv_db_open(a->db_path, 0, &db, &err) == SRV_OK) {
            for (; i < a->cfg.nwebhooks; i++) {
                int64_t c = 0;
                if (srv_db_cursor_get(db, a->cfg.webhooks[i].cursor, &c, &err) != SRV_OK)
                    break;
                pthread_mutex_lock(&a->lock);
                a->cfg.webhooks[i].delivered_id = c;
                pthread_mutex_unlock(&a->lock);
            }
            if (i == a->cfg.nwebhooks)
                break;
        }
        srv_log(SRV_LOG_ERROR, "alerts", "webhooks: cannot read the outbox: %s", err.message);
        srv_db_close(db);
        db = NULL;
        if (alert_pause(a, &a->wake, 5000))
            goto out;
    }
    for (;;) {
        uint64_t now = srv_monotonic_us(), soonest = now + IDLE_MS * 1000u;
        int delivered = 0;
        pthread_mutex_lock(&a->lock);
        int stopping = a->stopping;
        seen = a->newest_id;
        pthread_mutex_unlock(&a->lock);
        if (stopping)
            break;
        for (size_t i = 0; i < a->cfg.nwebhooks; i++) {
            if (now < conns[i].next_try) {
                if (conns[i].next_try < soonest)
                    soonest = conns[i].next_try;
                continue;
            }
            delivered += deliver_one(a, db, &conns[i]);
            if (conns[i].next_try > now && conns[i].next_try < soonest)
                soonest = conns[i].next_try;
        }
        if (delivered)
            continue; /* more may be waiting: no pause between alerts of a backlog */
        now = srv_monotonic_us();
        if (soonest > now && wait_new(a, &seen, (unsigned)((soonest - now) / 1000u) + 1))
            break;
    }
out:
    for (size_t i = 0; i < a->cfg.nwebhooks; i++) {
        conn_close(&conns[i]);
        SSL_CTX_free(conns[i].ctx);
    }
    srv_db_close(db);
    return NULL;
}
