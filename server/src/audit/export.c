/* Audit exporters: the cursor loop shared by every sink, and the sinks themselves (syslog over
 * UDP, TCP and TLS; Splunk HEC over HTTPS) behind one small interface. */
#include "export.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/net.h"
#include "../common/util.h"

#define CONNECT_TIMEOUT_MS 5000
#define IO_TIMEOUT_MS      10000
#define IDLE_POLL_MS       200
#define BACKOFF_BASE_MS    250
#define HEC_RESPONSE_MAX   16384
#define UDP_MAX            65000

/* A record read for export; row.record points at text. */
typedef struct {
    srv_audit_row row;
    char *text;
    char hash[65];
} export_rec;

typedef struct sink sink;

/* What a sink does. deliver returns SRV_OK only when the sink has taken every record of the
 * batch; anything else makes the loop back off and send the same batch again later. */
typedef struct {
    const char *kind;
    srv_status (*deliver)(sink *s, const export_rec *recs, size_t n, srv_error *err);
    void (*disconnect)(sink *s);
} sink_ops;

struct sink {
    const sink_ops *ops;
    char name[1100]; /* cursor key: kind and destination */
    char host[256], port[8], path[512];
    char ca_file[PATH_MAX];
    char *token; /* HEC token (never logged) */
    int tls;     /* stream sinks: TLS over the TCP connection */
    int fd;
    SSL_CTX *ssl_ctx;
    SSL *ssl;
    pthread_t thread;
    int started;
    srv_exporters *owner;
};

struct srv_exporters {
    srv_writer *writer;
    char db_path[PATH_MAX];
    char hostname[256];
    unsigned batch, backoff_max_s;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    sink *sinks;
    size_t nsinks;
};

/* ---- plumbing -------------------------------------------------------------------------- */

static void close_fd(sink *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* Connects with a deadline; the socket stays blocking with send/receive timeouts. */
static srv_status tcp_connect(sink *s, int type, srv_error *err)
{
    char why[400];
    int fd = srv_net_connect(s->host, s->port, type, CONNECT_TIMEOUT_MS, IO_TIMEOUT_MS, why,
                             sizeof(why));
    if (fd < 0)
        return srv_fail(err, SRV_E_IO, "%s: %s", s->name, why);
    s->fd = fd;
    return SRV_OK;
}

static srv_status ssl_fail(sink *s, srv_error *err, const char *what)
{
    char buf[200] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return srv_fail(err, SRV_E_IO, "%s: %s%s%s", s->name, what, buf[0] ? ": " : "", buf);
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* TLS 1.2+ with the receiver's certificate verified against ca_file and the host name. */
static srv_status tls_connect(sink *s, srv_error *err)
{
    srv_status st;
    if (!s->ssl_ctx) {
        s->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!s->ssl_ctx)
            return ssl_fail(s, err, "cannot create a TLS context");
        SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER, NULL);
        if ((s->ca_file[0] ? SSL_CTX_load_verify_locations(s->ssl_ctx, s->ca_file, NULL)
                           : SSL_CTX_set_default_verify_paths(s->ssl_ctx)) != 1) {
            st = ssl_fail(s, err, "cannot load the CA file");
            SSL_CTX_free(s->ssl_ctx);
            s->ssl_ctx = NULL;
            return st;
        }
    }
    if ((st = tcp_connect(s, SOCK_STREAM, err)) != SRV_OK)
        return st;
    s->ssl = SSL_new(s->ssl_ctx);
    /* SSL_set1_host checks an IP literal against the certificate's IP addresses; SNI only
     * carries DNS names. */
    if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 || SSL_set1_host(s->ssl, s->host) != 1 ||
        (!is_ip_literal(s->host) && SSL_set_tlsext_host_name(s->ssl, s->host) != 1)) {
        st = ssl_fail(s, err, "cannot set up TLS");
        close_fd(s);
        return st;
    }
    SSL_set_mode(s->ssl, SSL_MODE_AUTO_RETRY);
    if (SSL_connect(s->ssl) != 1) {
        long vr = SSL_get_verify_result(s->ssl);
        st = vr != X509_V_OK ? srv_fail(err, SRV_E_IO, "%s: receiver certificate refused: %s",
                                        s->name, X509_verify_cert_error_string(vr))
                             : ssl_fail(s, err, "TLS handshake failed");
        close_fd(s);
        return st;
    }
    return SRV_OK;
}

static srv_status write_all(sink *s, const char *data, size_t len, srv_error *err)
{
    while (len > 0) {
        ssize_t n;
        if (s->ssl) {
            size_t done = 0;
            n = SSL_write_ex(s->ssl, data, len, &done) == 1 ? (ssize_t)done : -1;
        } else {
            n = send(s->fd, data, len, MSG_NOSIGNAL);
        }
        if (n <= 0) {
            if (!s->ssl && n < 0 && errno == EINTR)
                continue;
            return srv_fail(err, SRV_E_IO, "%s: write failed: %s", s->name,
                            s->ssl ? "TLS error" : strerror(errno));
        }
        data += n;
        len -= (size_t)n;
    }
    return SRV_OK;
}

/* Is an idle stream connection still open? A syslog receiver never talks back, so anything
 * readable is end-of-stream, a reset, or (TLS 1.3) a session ticket we just consume. */
static int stream_alive(sink *s, int wait_ms)
{
    struct pollfd p = {s->fd, POLLIN, 0};
    char buf[512];
    int flags, alive = 1;

    if (s->fd < 0)
        return 0;
    if (poll(&p, 1, wait_ms) == 0)
        return 1;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return 0;
    flags = fcntl(s->fd, F_GETFL);
    fcntl(s->fd, F_SETFL, flags | O_NONBLOCK);
    for (int i = 0; i < 16 && alive; i++) {
        if (s->ssl) {
            size_t got = 0;
            if (SSL_read_ex(s->ssl, buf, sizeof(buf), &got) == 1)
                continue;
            int e = SSL_get_error(s->ssl, 0);
            alive = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
            ERR_clear_error();
            break;
        } else {
            ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
            if (n > 0)
                continue;
            alive = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
    }
    fcntl(s->fd, F_SETFL, flags);
    return alive;
}

/* ---- syslog over TCP and TLS ------------------------------------------------------------- */

static srv_status syslog_stream_deliver(sink *s, const export_rec *recs, size_t n, srv_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    srv_status st = SRV_OK;

    if (s->fd >= 0 && !stream_alive(s, 0))
        close_fd(s);
    if (s->fd < 0 &&
        (st = s->tls ? tls_connect(s, err) : tcp_connect(s, SOCK_STREAM, err)) != SRV_OK)
        return st;
    if (!(f = open_memstream(&buf, &len)))
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == SRV_OK; i++) {
        char *msg = NULL;
        size_t mlen = 0;
        st = srv_syslog_format(&recs[i].row, s->owner->hostname, (long)getpid(), &msg, &mlen, err);
        if (st == SRV_OK)
            fprintf(f, "%zu %s", mlen, msg);
        free(msg);
    }
    if (fclose(f) != 0 && st == SRV_OK)
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
    if (st == SRV_OK)
        st = write_all(s, buf, len, err);
    /* A receiver that died as we wrote answers with a reset: wait a moment for it, so that
     * a batch the kernel swallowed is sent again rather than counted as delivered. */
    if (st == SRV_OK && !stream_alive(s, 20))
        st = srv_fail(err, SRV_E_IO, "%s: connection closed by the receiver", s->name);
    if (st != SRV_OK)
        close_fd(s);
    free(buf);
    return st;
}

/* ---- syslog over UDP: fire and forget --------------------------------------------------- */

static srv_status syslog_udp_deliver(sink *s, const export_rec *recs, size_t n, srv_error *err)
{
    srv_status st;
    if (s->fd < 0 && (st = tcp_connect(s, SOCK_DGRAM, err)) != SRV_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        char *msg = NULL;
        size_t mlen = 0;
        st = srv_syslog_format(&recs[i].row, s->owner->hostname, (long)getpid(), &msg, &mlen, err);
        if (st != SRV_OK)
            return st;
        /* One datagram per record (RFC 5426); a record too big for one is skipped, loudly. */
        if (mlen > UDP_MAX)
            srv_log(SRV_LOG_WARN, "export", "%s: record %lld is %zu bytes, too big for UDP",
                    s->name, (long long)recs[i].row.seq, mlen);
        else if (send(s->fd, msg, mlen, MSG_NOSIGNAL) < 0 && errno != ECONNREFUSED) {
            st = srv_fail(err, SRV_E_IO, "%s: send failed: %s", s->name, strerror(errno));
            free(msg);
            close_fd(s);
            return st;
        }
        free(msg);
    }
    return SRV_OK;
}

/* ---- Splunk HTTP Event Collector --------------------------------------------------------- */

static srv_status hec_deliver(sink *s, const export_rec *recs, size_t n, srv_error *err)
{
    char *body = NULL, *head = NULL, resp[HEC_RESPONSE_MAX + 1];
    size_t body_len = 0, got = 0;
    FILE *f = open_memstream(&body, &body_len);
    srv_status st = SRV_OK;
    int status = -1, head_len;

    if (!f)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    /* HEC takes several events in one body, one JSON object after the other. */
    for (size_t i = 0; i < n && st == SRV_OK; i++) {
        char *ev = NULL;
        st = srv_hec_event(&recs[i].row, s->owner->hostname, &ev, err);
        if (st == SRV_OK)
            fputs(ev, f);
        cJSON_free(ev);
    }
    if (fclose(f) != 0 && st == SRV_OK)
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
    if (st != SRV_OK)
        goto out;
    head_len = asprintf(&head,
                        "POST %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Splunk %s\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                        "User-Agent: signum-server\r\nConnection: close\r\n\r\n",
                        s->path, s->host, s->port, s->token, body_len);
    if (head_len < 0) {
        head = NULL;
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    /* One connection per batch: simple, and a batch of up to export_batch events amortises it. */
    if ((st = tls_connect(s, err)) != SRV_OK ||
        (st = write_all(s, head, (size_t)head_len, err)) != SRV_OK ||
        (st = write_all(s, body, body_len, err)) != SRV_OK)
        goto out;
    /* Only the status line matters; the response is read up to a cap and no further. */
    while (got < HEC_RESPONSE_MAX && !memchr(resp, '\n', got)) {
        size_t n_read = 0;
        if (SSL_read_ex(s->ssl, resp + got, HEC_RESPONSE_MAX - got, &n_read) != 1)
            break;
        got += n_read;
    }
    resp[got] = '\0';
    status = srv_http_status(resp, got);
    if (status != 200) {
        char *eol = strpbrk(resp, "\r\n");
        if (eol)
            *eol = '\0';
        st = srv_fail(err, SRV_E_IO, "%s: HEC answered %s", s->name,
                      status < 0 ? "no HTTP status" : resp);
    }
out:
    if (head) {
        OPENSSL_cleanse(head, strlen(head)); /* it holds the token */
        free(head);
    }
    close_fd(s);
    free(body);
    return st;
}

static const sink_ops syslog_tcp_ops = {"syslog-tcp", syslog_stream_deliver, close_fd};
static const sink_ops syslog_tls_ops = {"syslog-tls", syslog_stream_deliver, close_fd};
static const sink_ops syslog_udp_ops = {"syslog-udp", syslog_udp_deliver, close_fd};
static const sink_ops hec_ops = {"hec", hec_deliver, close_fd};

/* ---- the cursor loop ---------------------------------------------------------------------- */

typedef struct {
    export_rec *recs;
    size_t n, max;
    int nomem;
} batch_state;

static int collect(const srv_audit_row *row, void *ctx)
{
    batch_state *b = ctx;
    export_rec *r = &b->recs[b->n];
    r->row = *row;
    r->text = strdup(row->record);
    if (!r->text) {
        b->nomem = 1;
        return 1;
    }
    snprintf(r->hash, sizeof(r->hash), "%s", row->hash);
    r->row.record = r->text;
    r->row.hash = r->hash;
    return ++b->n >= b->max;
}

static void batch_clear(batch_state *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->recs[i].text);
    b->n = 0;
    b->nomem = 0;
}

typedef struct {
    const char *sink;
    int64_t seq;
} cursor_job;

static srv_status save_cursor(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    cursor_job *c = ctx;
    (void)audit;
    return srv_db_cursor_set(db, c->sink, c->seq, err);
}

/* Sleeps up to ms, or until stop; returns non-zero when stopping. */
static int pause_ms(srv_exporters *e, unsigned ms)
{
    struct timespec ts;
    int stopping;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->lock);
    while (!e->stopping && pthread_cond_timedwait(&e->wake, &e->lock, &ts) != ETIMEDOUT)
        ;
    stopping = e->stopping;
    pthread_mutex_unlock(&e->lock);
    return stopping;
}

static void *sink_main(void *arg)
{
    sink *s = arg;
    srv_exporters *e = s->owner;
    batch_state b = {NULL, 0, e->batch, 0};
    srv_db *db = NULL;
    int64_t cursor = 0;
    unsigned failures = 0;
    srv_error err;

    b.recs = calloc(e->batch, sizeof(*b.recs));
    while (!b.recs || srv_db_open(e->db_path, 0, &db, &err) != SRV_OK ||
           srv_db_cursor_get(db, s->name, &cursor, &err) != SRV_OK) {
        srv_log(SRV_LOG_ERROR, "export", "%s: cannot read the audit log: %s", s->name,
                b.recs ? err.message : "out of memory");
        srv_db_close(db);
        db = NULL;
        if (pause_ms(e, 5000))
            goto out;
        if (!b.recs)
            b.recs = calloc(e->batch, sizeof(*b.recs));
    }
    srv_log(SRV_LOG_INFO, "export", "%s: exporting audit records after %lld", s->name,
            (long long)cursor);
    for (;;) {
        srv_status st;
        cursor_job job;
        pthread_mutex_lock(&e->lock);
        int stopping = e->stopping;
        pthread_mutex_unlock(&e->lock);
        if (stopping)
            break;
        batch_clear(&b);
        st = srv_db_audit_iterate(db, cursor, collect, &b, &err);
        if (st == SRV_OK && b.nomem)
            st = srv_fail(&err, SRV_E_NOMEM, "out of memory");
        if (st == SRV_OK && b.n == 0) {
            if (pause_ms(e, IDLE_POLL_MS))
                break;
            continue;
        }
        if (st == SRV_OK)
            st = s->ops->deliver(s, b.recs, b.n, &err);
        if (st != SRV_OK) {
            /* Said once per outage, then quietly retried; the error never holds the token. */
            if (failures++ == 0)
                srv_log(SRV_LOG_WARN, "export", "%s: %s; retrying with back-off", s->name,
                        err.message);
            s->ops->disconnect(s);
            if (pause_ms(e, srv_backoff_ms(failures, BACKOFF_BASE_MS, e->backoff_max_s)))
                break;
            continue;
        }
        if (failures)
            srv_log(SRV_LOG_INFO, "export", "%s: delivering again after %u failed attempts",
                    s->name, failures);
        failures = 0;
        cursor = b.recs[b.n - 1].row.seq;
        job.sink = s->name;
        job.seq = cursor;
        /* If this fails the records are sent again after a restart: receivers drop
         * duplicates by id. */
        if (srv_writer_run(e->writer, save_cursor, &job, &err) != SRV_OK)
            srv_log(SRV_LOG_WARN, "export", "%s: cannot store the cursor: %s", s->name,
                    err.message);
    }
out:
    batch_clear(&b);
    free(b.recs);
    s->ops->disconnect(s);
    srv_db_close(db);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------------------------- */

static srv_status read_token(const char *path, char **token, srv_error *err)
{
    struct stat sb;
    size_t len = 0;
    srv_status st;
    if (stat(path, &sb) != 0)
        return srv_fail(err, SRV_E_CONFIG, "cannot read export_hec_token_file %s: %s", path,
                        strerror(errno));
    if (sb.st_mode & (S_IRWXG | S_IRWXO))
        return srv_fail(err, SRV_E_CONFIG, "%s is readable by others (mode %o); chmod 600 it", path,
                        (unsigned)(sb.st_mode & 0777));
    if ((st = srv_read_file(path, 1024, token, &len, err)) != SRV_OK)
        return st;
    while (len > 0 && ((*token)[len - 1] == '\n' || (*token)[len - 1] == '\r'))
        (*token)[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)(*token)[i] <= 32 || (*token)[i] == 127)
            len = 0;
    if (len == 0) {
        free(*token);
        *token = NULL;
        return srv_fail(err, SRV_E_CONFIG, "%s holds no usable HEC token", path);
    }
    return SRV_OK;
}

int srv_export_sink_name(const char *kind, const char *dest, char *out, size_t len)
{
    char host[256], port[8], path[512] = "";
    int hec = strcmp(kind, "hec") == 0;
    if (hec ? !srv_parse_https_url(dest, host, sizeof(host), port, sizeof(port), path, sizeof(path))
            : !srv_parse_host_port(dest, host, sizeof(host), port, sizeof(port)))
        return 0;
    snprintf(out, len, "%s:%s:%s%s", kind, host, port, path);
    return 1;
}

static srv_status add_sink(srv_exporters *e, const sink_ops *ops, const char *dest,
                           const char *ca_file, srv_error *err)
{
    sink *s = &e->sinks[e->nsinks];
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->ops = ops;
    s->owner = e;
    if (ops == &hec_ops) {
        if (!srv_parse_https_url(dest, s->host, sizeof(s->host), s->port, sizeof(s->port), s->path,
                                 sizeof(s->path)))
            return srv_fail(err, SRV_E_CONFIG, "export_hec_url must be https://host[:port][/path]");
    } else if (!srv_parse_host_port(dest, s->host, sizeof(s->host), s->port, sizeof(s->port))) {
        return srv_fail(err, SRV_E_CONFIG, "export_%s must be host:port, not \"%s\"", ops->kind,
                        dest);
    }
    srv_export_sink_name(ops->kind, dest, s->name, sizeof(s->name));
    s->tls = ops == &syslog_tls_ops;
    if (ca_file)
        snprintf(s->ca_file, sizeof(s->ca_file), "%s", ca_file);
    e->nsinks++;
    return SRV_OK;
}

srv_status srv_exporters_start(const srv_config *cfg, srv_writer *writer, srv_exporters **out,
                               srv_error *err)
{
    srv_exporters *e;
    pthread_condattr_t attr;
    srv_status st = SRV_OK;

    *out = NULL;
    if (!cfg->export_syslog_tcp[0] && !cfg->export_syslog_tls[0] && !cfg->export_syslog_udp[0] &&
        !cfg->export_hec_url[0])
        return SRV_OK;
    if (!(e = calloc(1, sizeof(*e))) || !(e->sinks = calloc(4, sizeof(sink)))) {
        free(e);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    e->writer = writer;
    e->batch = cfg->export_batch;
    e->backoff_max_s = cfg->export_backoff_max;
    snprintf(e->db_path, sizeof(e->db_path), "%s", cfg->database);
    if (gethostname(e->hostname, sizeof(e->hostname) - 1) != 0)
        snprintf(e->hostname, sizeof(e->hostname), "-");
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (cfg->export_syslog_tcp[0])
        st = add_sink(e, &syslog_tcp_ops, cfg->export_syslog_tcp, NULL, err);
    if (st == SRV_OK && cfg->export_syslog_tls[0])
        st = add_sink(e, &syslog_tls_ops, cfg->export_syslog_tls, cfg->export_syslog_tls_ca, err);
    if (st == SRV_OK && cfg->export_syslog_udp[0])
        st = add_sink(e, &syslog_udp_ops, cfg->export_syslog_udp, NULL, err);
    if (st == SRV_OK && cfg->export_hec_url[0]) {
        if (!cfg->export_hec_token_file[0])
            st = srv_fail(err, SRV_E_CONFIG, "export_hec_url needs export_hec_token_file");
        else if ((st = add_sink(e, &hec_ops, cfg->export_hec_url, cfg->export_hec_ca, err)) ==
                 SRV_OK)
            st = read_token(cfg->export_hec_token_file, &e->sinks[e->nsinks - 1].token, err);
    }
    if (st != SRV_OK) {
        srv_exporters_stop(e);
        return st;
    }
    /* A receiver that goes away must not kill the server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < e->nsinks; i++) {
        if (pthread_create(&e->sinks[i].thread, NULL, sink_main, &e->sinks[i]) != 0) {
            srv_exporters_stop(e);
            return srv_fail(err, SRV_E_INTERNAL, "cannot start an exporter thread");
        }
        e->sinks[i].started = 1;
        srv_log(SRV_LOG_INFO, "export", "audit exporter %s started", e->sinks[i].name);
    }
    *out = e;
    return SRV_OK;
}

void srv_exporters_stop(srv_exporters *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    pthread_cond_broadcast(&e->wake);
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < e->nsinks; i++) {
        sink *s = &e->sinks[i];
        if (s->started)
            pthread_join(s->thread, NULL);
        close_fd(s);
        SSL_CTX_free(s->ssl_ctx);
        if (s->token) {
            OPENSSL_cleanse(s->token, strlen(s->token));
            free(s->token);
        }
    }
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    free(e->sinks);
    free(e);
}
