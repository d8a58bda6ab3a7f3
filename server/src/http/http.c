/* evhttp + OpenSSL front end with a worker pool; replies are sent back on the loop thread. */
#include "http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "../common/log.h"
#include "guard.h"
#include "probes.h"
#include "ratelog.h"

typedef struct work {
    struct work *next;
    struct evhttp_request *req;
    struct server *srv;
    srv_http_exchange ex;
} work;

typedef struct server {
    const srv_http_config *cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct evconnlistener *listener;
    srv_http_guard *guard;
    struct event *sigterm, *sigint, *drain_timer, *accept_timer;
    unsigned accept_backoff_ms; /* 0 while accepting; else the current pause */
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    work *head, *tail;
    unsigned queued;
    unsigned in_flight; /* accepted by the gencb, reply not yet sent (loop thread only) */
    int stopping;
    int draining;
    unsigned drain_ticks;
    unsigned abandoned; /* still in flight when the drain timed out */
} server;

static void free_wiped(char *p, size_t len)
{
    if (p) {
        OPENSSL_cleanse(p, len);
        free(p);
    }
}

/* Bodies carry API keys, passwords of a kind and assertions; replies carry access tokens and
 * new API keys; Authorization carries a bearer token: none is left behind in freed memory. */
static void exchange_free(srv_http_exchange *ex)
{
    free(ex->path);
    free(ex->query);
    free(ex->content_type);
    free_wiped(ex->authorization, ex->authorization ? strlen(ex->authorization) : 0);
    free(ex->if_none_match);
    free_wiped(ex->cookie, ex->cookie ? strlen(ex->cookie) : 0);
    free_wiped(ex->csrf_token, ex->csrf_token ? strlen(ex->csrf_token) : 0);
    free_wiped(ex->body, ex->body_len);
    free_wiped(ex->response, ex->response_len);
    for (unsigned i = 0; i < ex->header_count; i++)
        free(ex->header_values[i]);
}

void srv_http_add_header(srv_http_exchange *ex, const char *name, const char *value)
{
    char *copy;
    if (ex->header_count >= SRV_HTTP_MAX_HEADERS || !(copy = strdup(value)))
        return;
    ex->header_names[ex->header_count] = name;
    ex->header_values[ex->header_count++] = copy;
}

long srv_http_tls_handshakes(SSL_CTX *tls)
{
    return SSL_CTX_sess_accept_good(tls);
}

static atomic_ulong accept_errors; /* accept() failures (descriptor limit and others) */
static atomic_uint queue_depth;    /* requests waiting for a worker, for /healthz */
static atomic_uint queue_cap;      /* the configured queue_limit */
static atomic_uint in_flight_now;  /* copy of server.in_flight, for /metrics */
static atomic_int draining_now;    /* copy of server.draining, for /healthz/ready */

int srv_http_draining(void)
{
    return atomic_load(&draining_now);
}

unsigned srv_http_queue_depth(void)
{
    return atomic_load(&queue_depth);
}

unsigned srv_http_queue_limit(void)
{
    return atomic_load(&queue_cap);
}

char *srv_http_metrics(void)
{
    srv_http_guard_stats g = srv_http_guard_get_stats();
    char *text = NULL;
    if (asprintf(&text,
                 "# TYPE signum_http_connections_open gauge\n"
                 "signum_http_connections_open %lu\n"
                 "# TYPE signum_http_connections_accepted_total counter\n"
                 "signum_http_connections_accepted_total %lu\n"
                 "# TYPE signum_http_connections_refused_total counter\n"
                 "signum_http_connections_refused_total{reason=\"max_connections\"} %lu\n"
                 "signum_http_connections_refused_total{reason=\"max_connections_per_address\"} "
                 "%lu\n"
                 "# TYPE signum_http_deadline_closes_total counter\n"
                 "signum_http_deadline_closes_total{phase=\"handshake_headers\"} %lu\n"
                 "signum_http_deadline_closes_total{phase=\"body\"} %lu\n"
                 "# TYPE signum_http_framing_errors_total counter\n"
                 "signum_http_framing_errors_total %lu\n"
                 "# TYPE signum_http_accept_errors_total counter\n"
                 "signum_http_accept_errors_total %lu\n"
                 "# TYPE signum_log_lines_suppressed_total counter\n"
                 "signum_log_lines_suppressed_total %lu\n"
                 "# TYPE signum_http_requests_in_flight gauge\n"
                 "signum_http_requests_in_flight %u\n"
                 "# TYPE signum_http_draining gauge\n"
                 "signum_http_draining %d\n",
                 g.open, g.accepted, g.refused_total, g.refused_per_addr, g.header_timeouts,
                 g.body_timeouts, g.framing_errors, atomic_load(&accept_errors),
                 srv_ratelog_suppressed_total(), atomic_load(&in_flight_now),
                 atomic_load(&draining_now)) < 0)
        return NULL;
    return text;
}

/* ---- loop thread: replies ------------------------------------------------------------------ */

static void wipe_sent(const void *data, size_t len, void *extra)
{
    (void)extra;
    OPENSSL_cleanse((void *)data, len);
    free((void *)data);
}

static void send_reply(evutil_socket_t fd, short what, void *arg)
{
    work *w = arg;
    server *srv = w->srv;
    struct evkeyvalq *out = evhttp_request_get_output_headers(w->req);
    struct evbuffer *body = evbuffer_new();
    uint64_t t0 = srv_phase_now(), t1;

    (void)fd;
    (void)what;
    w->ex.phase_ns[SRV_PHASE_REPLY_WAIT] = t0 - w->ex.t_mark;
    /* 304 Not Modified has no body (RFC 9110 section 15.4.5), so no Content-Type either. */
    if (w->ex.status != 304)
        evhttp_add_header(out, "Content-Type",
                          w->ex.response_type ? w->ex.response_type : "application/json");
    evhttp_add_header(out, "Cache-Control", "no-store");
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(out, "Strict-Transport-Security", "max-age=31536000");
    evhttp_add_header(out, "X-Frame-Options", "DENY");
    evhttp_add_header(out, "Referrer-Policy", "no-referrer");
    {
        int own_csp = 0;
        for (unsigned i = 0; i < w->ex.header_count; i++)
            own_csp |= strcmp(w->ex.header_names[i], "Content-Security-Policy") == 0;
        if (!own_csp)
            evhttp_add_header(out, "Content-Security-Policy",
                              "default-src 'none'; frame-ancestors 'none'");
    }
    {
        /* A draining node closes every connection it answers on: the client's next request
         * opens a new one, which the load balancer (or the agent) sends to another node. */
        struct evhttp_connection *conn = evhttp_request_get_connection(w->req);
        int close_conn = srv->draining;
        if (conn && srv_http_guard_request_end(evhttp_connection_get_bufferevent(conn)))
            close_conn = 1;
        if (close_conn)
            evhttp_add_header(out, "Connection", "close");
    }
    for (unsigned i = 0; i < w->ex.header_count; i++)
        evhttp_add_header(out, w->ex.header_names[i], w->ex.header_values[i]);
    /* The reply goes out by reference and is wiped once sent: it may hold a new access
     * token or API key, which a copy in libevent's buffers would leave behind in freed memory. */
    if (body && w->ex.response && w->ex.status != 304 &&
        evbuffer_add_reference(body, w->ex.response, w->ex.response_len, wipe_sent, NULL) == 0)
        w->ex.response = NULL;
    evhttp_send_reply(w->req, w->ex.status ? w->ex.status : 500, NULL, body);
    if (body)
        evbuffer_free(body);
    if (w->ex.timed) {
        t1 = srv_phase_now();
        w->ex.phase_ns[SRV_PHASE_REPLY_SEND] = t1 - t0;
        w->ex.phase_ns[SRV_PHASE_TOTAL] = t1 - w->ex.t_start;
        srv_phase_add_request(w->ex.phase_ns);
    }
    exchange_free(&w->ex);
    free(w);
    srv->in_flight--;
    atomic_store(&in_flight_now, srv->in_flight);
}

static void reply_now(server *srv, work *w)
{
    /* event_base_once is safe from any thread once evthread_use_pthreads() ran. */
    if (event_base_once(srv->base, -1, EV_TIMEOUT, send_reply, w, NULL) != 0)
        srv_log(SRV_LOG_ERROR, "http", "cannot schedule a reply");
}

/* ---- workers ------------------------------------------------------------------------------- */

typedef struct {
    server *srv;
} worker_arg;

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    server *srv = wa->srv;
    void *ctx = srv->cfg->worker_init ? srv->cfg->worker_init(srv->cfg->app) : NULL;

    for (;;) {
        work *w;
        pthread_mutex_lock(&srv->lock);
        while (!srv->head && !srv->stopping)
            pthread_cond_wait(&srv->wake, &srv->lock);
        if (!srv->head) {
            pthread_mutex_unlock(&srv->lock);
            break;
        }
        w = srv->head;
        srv->head = w->next;
        if (!srv->head)
            srv->tail = NULL;
        srv->queued--;
        atomic_store(&queue_depth, srv->queued);
        pthread_mutex_unlock(&srv->lock);
        w->ex.phase_ns[SRV_PHASE_QUEUE_WAIT] = srv_phase_now() - w->ex.t_mark;

        if (ctx)
            srv->cfg->handler(ctx, &w->ex);
        else {
            static const char msg[] =
                "{\"error\":{\"code\":\"unavailable\",\"message\":\"worker not ready\"}}";
            w->ex.status = 503;
            w->ex.response = strdup(msg);
            w->ex.response_len = w->ex.response ? strlen(msg) : 0;
        }
        w->ex.t_mark = srv_phase_now();
        reply_now(srv, w);
    }
    if (ctx && srv->cfg->worker_fini)
        srv->cfg->worker_fini(ctx);
    free(wa);
    return NULL;
}

/* ---- loop thread: requests ----------------------------------------------------------------- */

static char *dup_header(struct evkeyvalq *h, const char *name)
{
    const char *v = evhttp_find_header(h, name);
    return v ? strdup(v) : NULL;
}

/* Reads the connection's client certificate: its fingerprint and whether it verified. */
static void peer_certificate(struct evhttp_connection *conn, srv_http_exchange *ex)
{
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    unsigned int len = sizeof(ex->peer_cert_sha256);
    long verify;

    ex->peer_cert = SRV_PEER_CERT_NONE;
    if (!cert)
        return;
    if (X509_digest(cert, EVP_sha256(), ex->peer_cert_sha256, &len) != 1 ||
        len != sizeof(ex->peer_cert_sha256)) {
        ex->peer_cert = SRV_PEER_CERT_UNVERIFIED;
        snprintf(ex->peer_cert_error, sizeof(ex->peer_cert_error), "cannot hash the certificate");
        return;
    }
    verify = SSL_get_verify_result(ssl);
    if (verify == X509_V_OK) {
        ex->peer_cert = SRV_PEER_CERT_VERIFIED;
    } else {
        ex->peer_cert = SRV_PEER_CERT_UNVERIFIED;
        snprintf(ex->peer_cert_error, sizeof(ex->peer_cert_error), "%s",
                 X509_verify_cert_error_string(verify));
    }
}

static void reject(struct evhttp_request *req, int status, const char *code, const char *message)
{
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    if (b)
        evbuffer_add_printf(b, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
    evhttp_send_reply(req, status, NULL, b);
    if (b)
        evbuffer_free(b);
}

/* Second line of defence behind the guard's stream check (guard.c), which answers these
 * before evhttp interprets the headers: a request is only handled when its framing has one
 * reading. */
static const char *framing_problem(struct evkeyvalq *in)
{
    struct evkeyval *h;
    unsigned n_cl = 0, n_te = 0;
    TAILQ_FOREACH(h, in, next)
    {
        if (evutil_ascii_strcasecmp(h->key, "Content-Length") == 0) {
            size_t n = strlen(h->value);
            if (++n_cl > 1)
                return "more than one Content-Length header";
            if (n == 0 || n > 18 || strspn(h->value, "0123456789") != n)
                return "Content-Length must be a plain decimal number";
        } else if (evutil_ascii_strcasecmp(h->key, "Transfer-Encoding") == 0) {
            if (++n_te > 1)
                return "more than one Transfer-Encoding header";
        }
    }
    return n_cl && n_te ? "Content-Length together with Transfer-Encoding" : NULL;
}

/* The routed path: percent-decoded, refused when a byte decodes to a control character (an
 * encoded NUL would otherwise cut the path short: /healthz%00x routed as /healthz). */
static char *decode_path(const char *raw, int *bad)
{
    size_t len = 0;
    char *path = evhttp_uridecode(raw, 0, &len);
    *bad = 0;
    if (!path)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)path[i] < 0x20 || (unsigned char)path[i] == 0x7f)
            *bad = 1;
    return path;
}

static void reject_close(struct evhttp_request *req, int status, const char *code,
                         const char *message)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    reject(req, status, code, message);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    server *srv = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    const char *raw_path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *raw_query = uri ? evhttp_uri_get_query(uri) : NULL;
    size_t body_len = evbuffer_get_length(body);
    const char *framing = framing_problem(in);
    char *peer_addr = NULL;
    int bad_path = 0;
    ev_uint16_t peer_port = 0;
    uint64_t t0 = srv_phase_now();
    work *w;

    /* Liveness is the loop answering: never queued behind workers busy with a slow HSM. */
    if (srv_http_probe_match(req, raw_path, srv->cfg->live_path)) {
        srv_http_answer_live(req, srv->draining);
        return;
    }
    if (srv->draining) {
        srv_http_answer_draining(req, raw_path, srv->cfg->ready_path, srv->in_flight);
        return;
    }
    if (framing) {
        reject_close(req, 400, "bad_framing", framing);
        return;
    }
    if (!raw_path) {
        reject(req, 400, "bad_request", "request target is not a valid URI");
        return;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        reject(req, 503, "out_of_memory", "out of memory");
        return;
    }
    w->req = req;
    w->srv = srv;
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: w->ex.method = SRV_HTTP_GET; break;
    case EVHTTP_REQ_POST: w->ex.method = SRV_HTTP_POST; break;
    case EVHTTP_REQ_PUT: w->ex.method = SRV_HTTP_PUT; break;
    case EVHTTP_REQ_DELETE: w->ex.method = SRV_HTTP_DELETE; break;
    default: w->ex.method = SRV_HTTP_OTHER; break;
    }
    w->ex.path = decode_path(raw_path, &bad_path);
    if (bad_path) {
        exchange_free(&w->ex);
        free(w);
        reject_close(req, 400, "bad_request", "the path holds an encoded control character");
        return;
    }
    w->ex.query = raw_query ? strdup(raw_query) : NULL;
    w->ex.content_type = dup_header(in, "Content-Type");
    w->ex.authorization = dup_header(in, "Authorization");
    w->ex.if_none_match = dup_header(in, "If-None-Match");
    w->ex.cookie = dup_header(in, "Cookie");
    w->ex.csrf_token = dup_header(in, "X-CSRF-Token");
    w->ex.body = malloc(body_len + 1);
    if (!w->ex.path || !w->ex.body || (raw_query && !w->ex.query)) {
        exchange_free(&w->ex);
        free(w);
        reject(req, 503, "out_of_memory", "out of memory");
        return;
    }
    evbuffer_remove(body, w->ex.body, body_len);
    w->ex.body[body_len] = '\0';
    w->ex.body_len = body_len;
    if (conn) {
        evhttp_connection_get_peer(conn, &peer_addr, &peer_port);
        snprintf(w->ex.peer, sizeof(w->ex.peer), "%s", peer_addr ? peer_addr : "");
    }
    peer_certificate(conn, &w->ex);
    w->ex.t_start = t0;
    w->ex.t_mark = srv_phase_now();
    w->ex.phase_ns[SRV_PHASE_HTTP_READ] = w->ex.t_mark - t0;

    pthread_mutex_lock(&srv->lock);
    if (srv->queued >= srv->cfg->queue_limit) {
        pthread_mutex_unlock(&srv->lock);
        exchange_free(&w->ex);
        free(w);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        reject(req, 503, "overloaded", "too many requests queued; retry later");
        return;
    }
    if (srv->tail)
        srv->tail->next = w;
    else
        srv->head = w;
    srv->tail = w;
    srv->queued++;
    atomic_store(&queue_depth, srv->queued);
    srv->in_flight++;
    atomic_store(&in_flight_now, srv->in_flight);
    if (conn)
        srv_http_guard_request_begin(evhttp_connection_get_bufferevent(conn));
    pthread_cond_signal(&srv->wake);
    pthread_mutex_unlock(&srv->lock);
}

static srv_ratelog_bucket log_accept = SRV_RATELOG_INIT("http", 1.0, 5.0);
static server *srv_current; /* the one server of this process, for the listener error callback */

/* TLS handshake timer: the accept time rides in the SSL's ex_data until the handshake is done
 * (a 64-bit nanosecond value stored in the pointer; 0 once counted). */
static int handshake_idx = -1;

static void tls_info(const SSL *ssl, int where, int ret)
{
    uintptr_t t0;
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE) || handshake_idx < 0)
        return;
    t0 = (uintptr_t)SSL_get_ex_data(ssl, handshake_idx);
    if (!t0)
        return;
    srv_phase_add(SRV_PHASE_TLS_HANDSHAKE, srv_phase_now() - (uint64_t)t0);
    SSL_set_ex_data((SSL *)ssl, handshake_idx, NULL);
}

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
    server *srv = arg;
    SSL *ssl = SSL_new(srv->cfg->tls);
    struct bufferevent *bev;
    srv->accept_backoff_ms = 0; /* accept() works again */
    if (!ssl)
        return NULL;
    if (handshake_idx >= 0 &&
        SSL_set_ex_data(ssl, handshake_idx, (void *)(uintptr_t)srv_phase_now()) == 1)
        SSL_set_info_callback(ssl, tls_info);
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL; /* the SSL was freed with the failed bufferevent */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    if (srv_http_guard_attach(srv->guard, ssl, bev) != 0) {
        /* Out of memory. evhttp cannot be told to refuse here (NULL makes it serve plain
         * HTTP), and unguarded is not an option: no protocol version is left to agree on,
         * so the handshake fails and evhttp drops the connection. */
        srv_ratelog(&log_accept, SRV_LOG_ERROR, "cannot track a new connection: refusing it");
        SSL_set_min_proto_version(ssl, TLS1_3_VERSION);
        SSL_set_max_proto_version(ssl, TLS1_2_VERSION);
    }
    return bev;
}

/* ---- accepting ----------------------------------------------------------------------------- */

static srv_ratelog_bucket log_libevent = SRV_RATELOG_INIT("libevent", 2.0, 10.0);

#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 1000

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    server *srv = arg;
    (void)fd;
    (void)what;
    if (srv->listener)
        evconnlistener_enable(srv->listener);
}

/* accept() failed. At the descriptor limit the listening socket stays readable, so without a
 * pause the loop would spin on it (and log each failure). Pause accepting, doubling the pause
 * while the failures go on; the first accept that succeeds afterwards resets it. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    server *srv = srv_current;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv;
    (void)arg;
    if (!srv || listener != srv->listener)
        return;
    atomic_fetch_add(&accept_errors, 1);
    srv->accept_backoff_ms =
        srv->accept_backoff_ms ? srv->accept_backoff_ms * 2 : ACCEPT_BACKOFF_MIN_MS;
    if (srv->accept_backoff_ms > ACCEPT_BACKOFF_MAX_MS)
        srv->accept_backoff_ms = ACCEPT_BACKOFF_MAX_MS;
    srv_ratelog(&log_accept, SRV_LOG_WARN, "accept(): %s; pausing accepts for %u ms%s",
                evutil_socket_error_to_string(err), srv->accept_backoff_ms,
                err == EMFILE || err == ENFILE ? " (raise the descriptor limit or lower "
                                                 "max_connections)"
                                               : "");
    evconnlistener_disable(listener);
    tv.tv_sec = srv->accept_backoff_ms / 1000;
    tv.tv_usec = (srv->accept_backoff_ms % 1000) * 1000;
    if (!srv->accept_timer || event_add(srv->accept_timer, &tv) != 0)
        evconnlistener_enable(listener); /* better a busy loop than a dead listener */
}

/* libevent's own warnings go through the rate limit too. */
static void on_libevent_log(int severity, const char *msg)
{
    if (severity >= EVENT_LOG_WARN)
        srv_ratelog(&log_libevent, severity >= EVENT_LOG_ERR ? SRV_LOG_ERROR : SRV_LOG_WARN, "%s",
                    msg);
}

/* Descriptors: each connection takes one. Lift the soft limit to the hard one so the caps,
 * not the limit, decide; warn when the caps still do not fit under it. */
static void fit_descriptor_limit(const srv_http_config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->max_conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        srv_log(SRV_LOG_WARN, "http",
                "the descriptor limit (%lu) is below max_connections + 64 (%lu): at the limit, "
                "accepting pauses",
                (unsigned long)rl.rlim_cur, (unsigned long)want);
}

/* ---- shutdown ------------------------------------------------------------------------------ */

#define DRAIN_TICK_MS         50
#define DRAIN_TIMEOUT_DEFAULT 10

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    server *srv = arg;
    int limit =
        srv->cfg->drain_timeout_secs > 0 ? srv->cfg->drain_timeout_secs : DRAIN_TIMEOUT_DEFAULT;
    (void)fd;
    (void)what;
    /* Stop once every accepted request has its reply, or at the drain timeout. */
    if (srv->in_flight == 0) {
        event_base_loopbreak(srv->base);
    } else if (++srv->drain_ticks >= (unsigned)limit * (1000 / DRAIN_TICK_MS)) {
        srv->abandoned = srv->in_flight;
        event_base_loopbreak(srv->base);
    }
}

/* SIGTERM (what Kubernetes and systemd send) or SIGINT starts the drain. The listener stays
 * open so that the load balancer's probe of ready_path gets its 503 rather than a refused
 * connection, and a client that reaches this node anyway is told to go elsewhere. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    server *srv = arg;
    struct timeval tick = {0, DRAIN_TICK_MS * 1000};
    (void)what;
    if (srv->draining)
        return;
    srv_log(SRV_LOG_INFO, "http",
            "signal %d: draining (%u requests in flight, up to %d s), then stopping", (int)sig,
            srv->in_flight,
            srv->cfg->drain_timeout_secs > 0 ? srv->cfg->drain_timeout_secs
                                             : DRAIN_TIMEOUT_DEFAULT);
    srv->draining = 1;
    atomic_store(&draining_now, 1);
    srv->drain_timer = event_new(srv->base, -1, EV_PERSIST, drain_tick, srv);
    if (!srv->drain_timer || event_add(srv->drain_timer, &tick) != 0)
        event_base_loopbreak(srv->base);
}

srv_status srv_http_serve(const srv_http_config *cfg, srv_error *err)
{
    /* Static, not on the stack: after a drain timeout, workers still inside requests keep
     * using it until the process exits (one server per process, as srv_current says). */
    static server srv;
    struct timeval timeout;
    srv_status st = SRV_OK;
    unsigned i;
    int fd, one = 1;

    memset(&srv, 0, sizeof(srv));
    srv.cfg = cfg;
    atomic_store(&queue_cap, cfg->queue_limit);
    atomic_store(&in_flight_now, 0);
    atomic_store(&draining_now, 0);
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.wake, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        st = srv_fail(err, SRV_E_INTERNAL, "libevent threading unavailable");
        goto out;
    }
    _Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "the handshake timer needs 64 bits");
    if (handshake_idx < 0)
        handshake_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    event_set_log_callback(on_libevent_log);
    fit_descriptor_limit(cfg);
    srv.base = event_base_new();
    srv.http = srv.base ? evhttp_new(srv.base) : NULL;
    {
        srv_http_guard_config gc = {cfg->max_conns, cfg->max_conns_per_addr,
                                    cfg->header_timeout_secs, cfg->body_timeout_secs};
        srv.guard = srv.http ? srv_http_guard_new(srv.base, &gc) : NULL;
    }
    srv.accept_timer = srv.base ? evtimer_new(srv.base, accept_resume, &srv) : NULL;
    if (!srv.http || !srv.guard || !srv.accept_timer) {
        st = srv_fail(err, SRV_E_NOMEM, "cannot create the HTTP server");
        goto out;
    }
    srv_current = &srv;
    evhttp_set_bevcb(srv.http, make_tls_bev, &srv);
    evhttp_set_gencb(srv.http, on_request, &srv);
    /* Every method reaches the router, so a wrong one gets a JSON 405 and a denial record. */
    evhttp_set_allowed_methods(
        srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                      EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(srv.http, (ev_ssize_t)cfg->max_body);
    evhttp_set_max_headers_size(srv.http, 16384);
    timeout.tv_sec = cfg->timeout_secs > 0 ? cfg->timeout_secs : 30;
    timeout.tv_usec = 0;
    evhttp_set_timeout_tv(srv.http, &timeout);
    evhttp_set_default_content_type(srv.http, "application/json");

    srv.bound = evhttp_bind_socket_with_handle(srv.http, cfg->host, (ev_uint16_t)cfg->port);
    if (!srv.bound) {
        st = srv_fail(err, SRV_E_CONFIG, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
                      strerror(errno));
        goto out;
    }
    srv.listener = evhttp_bound_socket_get_listener(srv.bound);
    evconnlistener_set_error_cb(srv.listener, on_accept_error);
    /* Before run.json says we listen: a SIGTERM from then on drains, never kills. */
    srv.sigterm = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
    srv.sigint = evsignal_new(srv.base, SIGINT, on_signal, &srv);
    if (!srv.sigterm || !srv.sigint || event_add(srv.sigterm, NULL) ||
        event_add(srv.sigint, NULL)) {
        st = srv_fail(err, SRV_E_INTERNAL, "cannot install signal handlers");
        goto out;
    }
    fd = evhttp_bound_socket_get_fd(srv.bound);
    /* Accepted sockets inherit TCP_NODELAY on Linux: no 40 ms Nagle stalls on small replies. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int port = cfg->port;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
            if (ss.ss_family == AF_INET)
                port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        srv_log(SRV_LOG_INFO, "http", "listening on https://%s:%d with %u workers", cfg->host, port,
                cfg->workers);
        if (cfg->on_listening)
            cfg->on_listening(cfg->app, port);
    }

    srv.threads = calloc(cfg->workers, sizeof(pthread_t));
    if (!srv.threads) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < cfg->workers; i++) {
        worker_arg *wa = calloc(1, sizeof(*wa));
        if (wa)
            wa->srv = &srv;
        if (!wa || pthread_create(&srv.threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            st = srv_fail(err, SRV_E_INTERNAL, "cannot start worker threads");
            goto out;
        }
        srv.nthreads++;
    }
    event_base_dispatch(srv.base);
    if (srv.abandoned) {
        /* Workers still hold requests (an HSM call that does not return): joining them could
         * wait for ever, and freeing what they use under them is worse. Nothing they hold has
         * been handed out; the caller exits the process now. */
        srv_log(SRV_LOG_ERROR, "http",
                "drain timeout: %u requests still in flight after %d s; stopping without them",
                srv.abandoned,
                cfg->drain_timeout_secs > 0 ? cfg->drain_timeout_secs : DRAIN_TIMEOUT_DEFAULT);
        return srv_fail(err, SRV_E_UNAVAILABLE, "%u requests abandoned at the drain timeout",
                        srv.abandoned);
    }
out:
    pthread_mutex_lock(&srv.lock);
    srv.stopping = 1;
    pthread_cond_broadcast(&srv.wake);
    pthread_mutex_unlock(&srv.lock);
    for (i = 0; i < srv.nthreads; i++)
        pthread_join(srv.threads[i], NULL);
    free(srv.threads);
    if (srv.drain_timer)
        event_free(srv.drain_timer);
    if (srv.accept_timer)
        event_free(srv.accept_timer);
    if (srv.sigterm)
        event_free(srv.sigterm);
    if (srv.sigint)
        event_free(srv.sigint);
    if (srv.http)
        evhttp_free(srv.http);
    /* Freed connections finish on the loop (bufferevent finalizers): let them, so the guard's
     * per-connection state goes while the event base is whole. */
    if (srv.base)
        event_base_loop(srv.base, EVLOOP_NONBLOCK);
    srv_http_guard_free(srv.guard);
    srv_current = NULL;
    if (srv.base)
        event_base_free(srv.base);
    event_set_log_callback(NULL);
    pthread_mutex_destroy(&srv.lock);
    pthread_cond_destroy(&srv.wake);
    return st;
}
