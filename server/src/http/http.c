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
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/log.h"

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
    struct event *sigterm, *sigint, *drain_timer;
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
} server;

static void exchange_free(srv_http_exchange *ex)
{
    free(ex->path);
    free(ex->query);
    free(ex->content_type);
    free(ex->authorization);
    free(ex->if_none_match);
    free(ex->body);
    free(ex->response);
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

/* ---- loop thread: replies ------------------------------------------------------------------ */

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
    for (unsigned i = 0; i < w->ex.header_count; i++)
        evhttp_add_header(out, w->ex.header_names[i], w->ex.header_values[i]);
    if (body && w->ex.response && w->ex.status != 304)
        evbuffer_add(body, w->ex.response, w->ex.response_len);
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
    if (b)
        evbuffer_add_printf(b, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
    evhttp_send_reply(req, status, NULL, b);
    if (b)
        evbuffer_free(b);
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
    char *peer_addr = NULL;
    ev_uint16_t peer_port = 0;
    uint64_t t0 = srv_phase_now();
    work *w;

    if (srv->draining) {
        reject(req, 503, "unavailable", "server is shutting down");
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
    w->ex.path = evhttp_uridecode(raw_path, 0, NULL);
    w->ex.query = raw_query ? strdup(raw_query) : NULL;
    w->ex.content_type = dup_header(in, "Content-Type");
    w->ex.authorization = dup_header(in, "Authorization");
    w->ex.if_none_match = dup_header(in, "If-None-Match");
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
    srv->in_flight++;
    pthread_cond_signal(&srv->wake);
    pthread_mutex_unlock(&srv->lock);
}

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
    SSL_CTX *ctx = arg;
    SSL *ssl = SSL_new(ctx);
    struct bufferevent *bev;
    if (!ssl)
        return NULL;
    if (handshake_idx >= 0 &&
        SSL_set_ex_data(ssl, handshake_idx, (void *)(uintptr_t)srv_phase_now()) == 1)
        SSL_set_info_callback(ssl, tls_info);
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* ---- shutdown ------------------------------------------------------------------------------ */

static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    server *srv = arg;
    (void)fd;
    (void)what;
    /* Stop once every accepted request has its reply, or after 10 s whatever happens. */
    if (srv->in_flight == 0 || ++srv->drain_ticks > 200)
        event_base_loopbreak(srv->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    server *srv = arg;
    struct timeval tick = {0, 50000};
    (void)what;
    if (srv->draining)
        return;
    srv_log(SRV_LOG_INFO, "http", "signal %d: finishing in-flight requests and stopping", (int)sig);
    srv->draining = 1;
    if (srv->bound) {
        evhttp_del_accept_socket(srv->http, srv->bound);
        srv->bound = NULL;
    }
    srv->drain_timer = event_new(srv->base, -1, EV_PERSIST, drain_tick, srv);
    if (!srv->drain_timer || event_add(srv->drain_timer, &tick) != 0)
        event_base_loopbreak(srv->base);
}

srv_status srv_http_serve(const srv_http_config *cfg, srv_error *err)
{
    server srv;
    struct timeval timeout;
    srv_status st = SRV_OK;
    unsigned i;
    int fd, one = 1;

    memset(&srv, 0, sizeof(srv));
    srv.cfg = cfg;
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
    srv.base = event_base_new();
    srv.http = srv.base ? evhttp_new(srv.base) : NULL;
    if (!srv.http) {
        st = srv_fail(err, SRV_E_NOMEM, "cannot create the HTTP server");
        goto out;
    }
    evhttp_set_bevcb(srv.http, make_tls_bev, cfg->tls);
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

    srv.sigterm = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
    srv.sigint = evsignal_new(srv.base, SIGINT, on_signal, &srv);
    if (!srv.sigterm || !srv.sigint || event_add(srv.sigterm, NULL) ||
        event_add(srv.sigint, NULL)) {
        st = srv_fail(err, SRV_E_INTERNAL, "cannot install signal handlers");
        goto out;
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
    if (srv.sigterm)
        event_free(srv.sigterm);
    if (srv.sigint)
        event_free(srv.sigint);
    if (srv.http)
        evhttp_free(srv.http);
    if (srv.base)
        event_base_free(srv.base);
    pthread_mutex_destroy(&srv.lock);
    pthread_cond_destroy(&srv.wake);
    return st;
}
