/* Connection admission, deadlines and framing checks (see guard.h). Loop thread only, except
 * the statistics, which /metrics reads from a worker. */
#include "guard.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "ratelog.h"

#define LINE_KEEP    128   /* bytes kept of each header line: enough for every line checked */
#define HEAD_MAX     16384 /* whole header block; evhttp's own limit is the same on fewer bytes */
#define ADDR_BUCKETS 256

typedef struct addr_entry {
    struct addr_entry *next;
    unsigned char key[17]; /* family byte + up to 16 address bytes */
    unsigned count;
} addr_entry;

struct srv_http_guard {
    struct event_base *base;
    srv_http_guard_config cfg;
    unsigned open;    /* admitted and still open */
    unsigned tracked; /* attached and not yet freed (the guard lives until it is 0) */
    int dying;
    addr_entry *buckets[ADDR_BUCKETS];
};

typedef enum { ST_ADMIT, ST_HEAD, ST_BODY, ST_CHUNKED, ST_IDLE, ST_DEAD } conn_state;
typedef enum { DL_NONE, DL_HEAD, DL_BODY } deadline_kind;

typedef struct {
    srv_http_guard *g;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* set when the guard takes the connection over */
    struct event *timer;             /* admission (activated at once), then the deadlines */
    addr_entry *addr;                /* counted against the caps when set */
    conn_state state;
    deadline_kind deadline;
    unsigned busy; /* requests handed to the handler, reply not yet queued */
    /* the header block being read */
    size_t head_bytes, line_len;
    unsigned lines, n_cl, n_te;
    int no_body; /* HEAD or TRACE: evhttp reads no body whatever the headers say */
    char line[LINE_KEEP];
    char last; /* last byte of the current line */
    uint64_t content_length, body_left;
    int status;
    const char *code, *error;
    int in_cb;
    int close_after; /* a framing error behind a request being handled: close after its reply */
} gconn;

static int conn_idx = -1;
static atomic_ulong st_open, st_accepted, st_refused_total, st_refused_addr, st_head_to, st_body_to,
    st_framing;

static srv_ratelog_bucket log_refused = SRV_RATELOG_INIT("http", 1.0, 5.0);
static srv_ratelog_bucket log_deadline = SRV_RATELOG_INIT("http", 1.0, 5.0);
static srv_ratelog_bucket log_framing = SRV_RATELOG_INIT("http", 1.0, 5.0);

srv_http_guard_stats srv_http_guard_get_stats(void)
{
    srv_http_guard_stats s = {atomic_load(&st_open),          atomic_load(&st_accepted),
                              atomic_load(&st_refused_total), atomic_load(&st_refused_addr),
                              atomic_load(&st_head_to),       atomic_load(&st_body_to),
                              atomic_load(&st_framing)};
    return s;
}

/* ---- per-address counts -------------------------------------------------------------------- */

static int addr_key(int fd, unsigned char key[17], char *text, size_t text_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(key, 0, 17);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
        snprintf(text, text_len, "%u.%u.%u.%u", key[1], key[2], key[3], key[4]);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        key[0] = 6;
        memcpy(key + 1, &in6->sin6_addr, 16);
        snprintf(text, text_len, "an IPv6 address");
    } else {
        key[0] = 1; /* a Unix socket or the like: one shared bucket */
        snprintf(text, text_len, "a local socket");
    }
    return 0;
}

static unsigned addr_hash(const unsigned char key[17])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % ADDR_BUCKETS;
}

static addr_entry *addr_get(srv_http_guard *g, const unsigned char key[17])
{
    addr_entry **head = &g->buckets[addr_hash(key)], *e;
    for (e = *head; e; e = e->next)
        if (memcmp(e->key, key, 17) == 0)
            return e;
    if (!(e = calloc(1, sizeof(*e))))
        return NULL;
    memcpy(e->key, key, 17);
    e->next = *head;
    *head = e;
    return e;
}

static void addr_release(srv_http_guard *g, addr_entry *e)
{
    addr_entry **p;
    if (--e->count > 0)
        return;
    for (p = &g->buckets[addr_hash(e->key)]; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            free(e);
            return;
        }
}

/* ---- lifetime ------------------------------------------------------------------------------ */

static void guard_destroy(srv_http_guard *g)
{
    for (unsigned i = 0; i < ADDR_BUCKETS; i++)
        while (g->buckets[i]) {
            addr_entry *e = g->buckets[i];
            g->buckets[i] = e->next;
            free(e);
        }
    free(g);
}

/* SSL ex_data destructor: the connection (its bufferevent, hence its SSL) is gone. */
static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    gconn *c = ptr;
    srv_http_guard *g;
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (!c)
        return;
    g = c->g;
    if (c->addr) {
        addr_release(g, c->addr);
        g->open--;
        atomic_fetch_sub(&st_open, 1);
    }
    if (c->timer)
        event_free(c->timer);
    free(c);
    if (--g->tracked == 0 && g->dying)
        guard_destroy(g);
}

srv_http_guard *srv_http_guard_new(struct event_base *base, const srv_http_guard_config *cfg)
{
    srv_http_guard *g;
    if (conn_idx < 0)
        conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
    if (conn_idx < 0 || !(g = calloc(1, sizeof(*g))))
        return NULL;
    g->base = base;
    g->cfg = *cfg;
    return g;
}

void srv_http_guard_free(srv_http_guard *g)
{
    if (!g)
        return;
    if (g->tracked == 0)
        guard_destroy(g);
    else
        g->dying = 1; /* the last connection's destructor frees it */
}

static gconn *conn_of(struct bufferevent *bev)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl && conn_idx >= 0 ? SSL_get_ex_data(ssl, conn_idx) : NULL;
}

/* evhttp registers every callback of its connection's bufferevent with the connection as the
 * argument (libevent 2.1 http.c); the guard frees a connection through the public API. */
static struct evhttp_connection *evcon_of(gconn *c)
{
    void *arg = NULL;
    if (c->evcon)
        return c->evcon;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
    return arg;
}

/* Frees the connection now; c is gone afterwards. */
static void conn_close(gconn *c)
{
    struct evhttp_connection *evcon = evcon_of(c);
    c->state = ST_DEAD;
    if (evcon)
        evhttp_connection_free(evcon);
}

static void arm(gconn *c, deadline_kind kind)
{
    struct timeval tv = {kind == DL_BODY ? c->g->cfg.body_timeout : c->g->cfg.header_timeout, 0};
    c->deadline = kind;
    if (kind == DL_NONE)
        event_del(c->timer);
    else
        event_add(c->timer, &tv);
}

/* ---- admission and deadlines --------------------------------------------------------------- */

static void admit(gconn *c)
{
    srv_http_guard *g = c->g;
    unsigned char key[17];
    char text[48];
    addr_entry *e = NULL;
    int fd = (int)bufferevent_getfd(c->bev);

    if (fd < 0 || addr_key(fd, key, text, sizeof(text)) != 0) {
        conn_close(c); /* the peer is already gone */
        return;
    }
    if (g->open >= g->cfg.max_conns) {
        atomic_fetch_add(&st_refused_total, 1);
        srv_ratelog(&log_refused, SRV_LOG_WARN,
                    "refused a connection from %s: %u connections open (max_connections)", text,
                    g->open);
        conn_close(c);
        return;
    }
    if (!(e = addr_get(g, key)) || e->count >= g->cfg.max_per_addr) {
        atomic_fetch_add(&st_refused_addr, 1);
        srv_ratelog(&log_refused, SRV_LOG_WARN,
                    "refused a connection from %s: %u open from that address "
                    "(max_connections_per_address)",
                    text, e ? e->count : 0);
        conn_close(c);
        return;
    }
    e->count++;
    c->addr = e;
    g->open++;
    atomic_fetch_add(&st_open, 1);
    atomic_fetch_add(&st_accepted, 1);
    c->state = ST_HEAD;
    arm(c, DL_HEAD); /* the first request's deadline covers the TLS handshake too */
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    gconn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == ST_ADMIT) {
        admit(c);
        return;
    }
    if (c->deadline == DL_NONE)
        return;
    if (c->busy) {
        /* A pipelined request waits behind one being handled: its clock starts later. */
        arm(c, c->deadline);
        return;
    }
    if (c->deadline == DL_BODY) {
        atomic_fetch_add(&st_body_to, 1);
        srv_ratelog(&log_deadline, SRV_LOG_INFO,
                    "closed a connection: request body not received within %d s (body_timeout)",
                    c->g->cfg.body_timeout);
    } else {
        atomic_fetch_add(&st_head_to, 1);
        srv_ratelog(&log_deadline, SRV_LOG_INFO,
                    "closed a connection: TLS handshake and request headers not received "
                    "within %d s (header_timeout)",
                    c->g->cfg.header_timeout);
    }
    conn_close(c);
}

/* ---- framing errors ------------------------------------------------------------------------ */

/* The error is out: send FIN, then read (and drop) until the peer closes or the timeout. A
 * close with unread bytes pending would send a reset, which can destroy the answer before the
 * client reads it. */
static void framing_write_done(struct bufferevent *bev, void *arg)
{
    gconn *c = arg;
    int fd;
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    fd = (int)bufferevent_getfd(bev);
    if (fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        conn_close(c);
        return;
    }
    bufferevent_disable(bev, EV_WRITE);
    bufferevent_enable(bev, EV_READ);
}

static void framing_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    conn_close(arg);
}

/* Answers the framing error in JSON and closes: evhttp never interprets the headers. The
 * guard takes the bufferevent over (evhttp is reading, so it has nothing queued to write). */
static void framing_reply(gconn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const char *reason = c->status == 431 ? "Request Header Fields Too Large" : "Bad Request";

    atomic_fetch_add(&st_framing, 1);
    srv_ratelog(&log_framing, SRV_LOG_INFO, "refused a request: %s", c->error);
    if (c->busy) {
        /* A request of this connection is in a worker: evhttp owns its reply. That reply
         * closes the connection, and the bad request is never read. */
        c->close_after = 1;
        c->state = ST_DEAD;
        arm(c, DL_NONE);
        c->in_cb = 1;
        evbuffer_drain(in, evbuffer_get_length(in));
        c->in_cb = 0;
        return;
    }
    c->evcon = evcon_of(c);
    c->state = ST_DEAD;
    arm(c, DL_NONE);
    c->in_cb = 1;
    evbuffer_drain(in, evbuffer_get_length(in));
    c->in_cb = 0;
    bufferevent_setcb(c->bev, NULL, framing_write_done, framing_event, c);
    bufferevent_disable(c->bev, EV_READ); /* until the answer is out; then until EOF */
    {
        char body[256];
        int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                         c->code, c->error);
        evbuffer_add_printf(bufferevent_get_output(c->bev),
                            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                            "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
                            c->status, reason, n, body);
    }
    /* A peer that does not read its error, or does not close, does not keep the socket. */
    {
        struct timeval tv = {c->g->cfg.header_timeout, 0};
        bufferevent_set_timeouts(c->bev, &tv, &tv);
    }
    bufferevent_enable(c->bev, EV_WRITE);
}

/* ---- the request stream -------------------------------------------------------------------- */

static void fail(gconn *c, int status, const char *code, const char *message)
{
    if (!c->error) {
        c->status = status;
        c->code = code;
        c->error = message;
    }
}

static int ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* value: the bytes after the colon, without the line end; trimmed of optional whitespace. */
static void trim(const char **v, size_t *n)
{
    while (*n && ows(**v))
        (*v)++, (*n)--;
    while (*n && ows((*v)[*n - 1]))
        (*n)--;
}

static void header_line(gconn *c, size_t len)
{
    size_t kept = len < LINE_KEEP ? len : LINE_KEEP, colon;
    const char *value;
    size_t vlen;
    char *p;

    if (ows(c->line[0])) {
        fail(c, 400, "bad_framing", "folded header lines are not accepted");
        return;
    }
    p = memchr(c->line, ':', kept);
    if (!p) {
        if (len <= LINE_KEEP)
            fail(c, 400, "bad_framing", "malformed header line");
        return; /* a header name longer than LINE_KEEP is none of those checked */
    }
    colon = (size_t)(p - c->line);
    if (colon == 0 || memchr(c->line, ' ', colon) || memchr(c->line, '\t', colon)) {
        fail(c, 400, "bad_framing", "malformed header line (whitespace in or before the name)");
        return;
    }
    value = p + 1;
    vlen = kept - colon - 1;
    trim(&value, &vlen);
    if (colon == 14 && strncasecmp(c->line, "Content-Length", 14) == 0) {
        if (++c->n_cl > 1) {
            fail(c, 400, "bad_framing", "more than one Content-Length header");
            return;
        }
        if (len > LINE_KEEP || vlen == 0 || vlen > 18 || strspn(value, "0123456789") < vlen) {
            fail(c, 400, "bad_framing", "Content-Length must be a plain decimal number");
            return;
        }
        c->content_length = 0;
        for (size_t i = 0; i < vlen; i++)
            c->content_length = c->content_length * 10 + (uint64_t)(value[i] - '0');
    } else if (colon == 17 && strncasecmp(c->line, "Transfer-Encoding", 17) == 0) {
        if (++c->n_te > 1) {
            fail(c, 400, "bad_framing", "more than one Transfer-Encoding header");
            return;
        }
        if (len > LINE_KEEP || vlen != 7 || strncasecmp(value, "chunked", 7) != 0)
            fail(c, 400, "bad_framing", "Transfer-Encoding must be exactly chunked");
    }
}

static void start_request(gconn *c, int first)
{
    c->state = ST_HEAD;
    c->head_bytes = c->line_len = 0;
    c->lines = c->n_cl = c->n_te = 0;
    c->no_body = 0;
    c->content_length = 0;
    if (!first)
        arm(c, DL_HEAD);
}

static void end_headers(gconn *c)
{
    if (c->n_cl && c->n_te)
        fail(c, 400, "bad_framing", "Content-Length together with Transfer-Encoding");
    else if (c->no_body && (c->n_cl || c->n_te))
        fail(c, 400, "bad_framing", "a HEAD or TRACE request has no body");
    if (c->error)
        return;
    if (c->n_te) {
        c->state = ST_CHUNKED; /* ends when the handler gets the request */
        arm(c, DL_BODY);
    } else if (c->content_length > 0) {
        c->state = ST_BODY;
        c->body_left = c->content_length;
        arm(c, DL_BODY);
    } else {
        c->state = ST_IDLE;
        arm(c, DL_NONE);
    }
}

static void end_line(gconn *c)
{
    size_t len = c->line_len;
    if (len && c->last == '\r')
        len--; /* evhttp splits lines at LF with an optional CR: so does the guard */
    if (len == 0) {
        if (c->lines > 0)
            end_headers(c);
        return; /* empty lines before a request line are evhttp's to judge */
    }
    if (c->lines++ == 0) {
        size_t kept = len < LINE_KEEP ? len : LINE_KEEP;
        c->no_body = (kept > 5 && memcmp(c->line, "HEAD ", 5) == 0) ||
                     (kept > 6 && memcmp(c->line, "TRACE ", 6) == 0);
        return;
    }
    header_line(c, len);
}

static void feed(gconn *c, const char *data, size_t n)
{
    size_t i = 0;
    while (i < n && !c->error) {
        switch (c->state) {
        case ST_IDLE: start_request(c, 0); break;
        case ST_BODY: {
            size_t take = n - i;
            if ((uint64_t)take > c->body_left)
                take = (size_t)c->body_left;
            c->body_left -= take;
            i += take;
            if (c->body_left == 0) {
                c->state = ST_IDLE;
                arm(c, DL_NONE);
            }
            break;
        }
        case ST_CHUNKED:
        case ST_DEAD: return;
        case ST_ADMIT:
        case ST_HEAD: {
            char ch = data[i++];
            if (++c->head_bytes > HEAD_MAX) {
                fail(c, 431, "headers_too_large", "request headers exceed 16384 bytes");
                break;
            }
            if (ch == '\n') {
                end_line(c);
                c->line_len = 0;
                c->last = 0;
            } else {
                if (c->line_len < LINE_KEEP)
                    c->line[c->line_len] = ch;
                c->line_len++;
                c->last = ch;
            }
            break;
        }
        }
    }
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    gconn *c = arg;
    size_t len, at;

    if (info->n_added == 0 || c->in_cb)
        return;
    len = evbuffer_get_length(buf);
    if (c->state == ST_DEAD) {
        c->in_cb = 1;
        evbuffer_drain(buf, len);
        c->in_cb = 0;
        return;
    }
    /* The bytes just added are the last n_added: callbacks run as soon as data arrives,
     * before evhttp's read callback drains any of it. */
    at = len >= info->n_added ? len - info->n_added : 0;
    while (at < len && !c->error && c->state != ST_CHUNKED) {
        char tmp[4096];
        struct evbuffer_ptr pos;
        ev_ssize_t got;
        if (evbuffer_ptr_set(buf, &pos, at, EVBUFFER_PTR_SET) != 0)
            break;
        got =
            evbuffer_copyout_from(buf, &pos, tmp, len - at < sizeof(tmp) ? len - at : sizeof(tmp));
        if (got <= 0)
            break;
        feed(c, tmp, (size_t)got);
        at += (size_t)got;
    }
    if (c->error)
        framing_reply(c);
}

/* ---- the front end's hooks ----------------------------------------------------------------- */

int srv_http_guard_attach(srv_http_guard *g, SSL *ssl, struct bufferevent *bev)
{
    gconn *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->g = g;
    c->bev = bev;
    c->state = ST_ADMIT;
    c->timer = evtimer_new(g->base, on_timer, c);
    if (!c->timer || SSL_set_ex_data(ssl, conn_idx, c) != 1) {
        if (c->timer)
            event_free(c->timer);
        free(c);
        return -1;
    }
    g->tracked++;
    /* Without the stream check the connection is refused rather than left unguarded (the
     * caller frees the bufferevent, and with it this tracking). */
    if (!evbuffer_add_cb(bufferevent_get_input(bev), on_input, c))
        return -1;
    /* evhttp gives the bufferevent its socket once this factory returns, in the same
     * accept callback: admission runs right after, before any byte of the peer is read. */
    event_active(c->timer, EV_TIMEOUT, 0);
    return 0;
}

void srv_http_guard_request_begin(struct bufferevent *bev)
{
    gconn *c = conn_of(bev);
    if (!c)
        return;
    c->busy++;
    if (c->state == ST_CHUNKED) {
        c->state = ST_IDLE;
        arm(c, DL_NONE);
    }
}

int srv_http_guard_request_end(struct bufferevent *bev)
{
    gconn *c = conn_of(bev);
    if (!c)
        return 0;
    if (c->busy)
        c->busy--;
    return c->close_after;
}
