/* HTTPS front end: libevent's evhttp over OpenSSL on one event loop thread, with a bounded
 * pool of worker threads doing the real work (database, HSM) so a slow HSM or a slow commit
 * never blocks accepting connections or TLS handshakes. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/phase.h"
#include "../common/status.h"

#define SRV_HTTP_MAX_HEADERS 8

typedef enum {
    SRV_HTTP_GET,
    SRV_HTTP_POST,
    SRV_HTTP_PUT,
    SRV_HTTP_DELETE,
    SRV_HTTP_OTHER
} srv_http_method;

/* The TLS client certificate of the connection a request came on. */
typedef enum {
    SRV_PEER_CERT_NONE,      /* none presented */
    SRV_PEER_CERT_VERIFIED,  /* chains to the configured CA (SSL_get_verify_result OK) */
    SRV_PEER_CERT_UNVERIFIED /* presented but did not verify: peer_cert_error says why */
} srv_peer_cert;

/* One request and its response, owned by the front end; handlers fill in the response. */
typedef struct {
    srv_http_method method;
    char *path;          /* without the query string, percent-decoded */
    char *query;         /* raw query string or NULL */
    char *content_type;  /* NULL if absent */
    char *authorization; /* NULL if absent */
    char *if_none_match; /* NULL if absent */
    char *cookie;        /* NULL if absent; holds a console session token */
    char *csrf_token;    /* X-CSRF-Token, NULL if absent */
    char *body;          /* NUL-terminated copy; body_len excludes the NUL */
    size_t body_len;
    char peer[64]; /* remote address */
    srv_peer_cert peer_cert;
    uint8_t peer_cert_sha256[32]; /* SHA-256 of the certificate's DER, when one was presented */
    char peer_cert_error[96];

    int status;     /* 304 is sent without a body or Content-Type */
    char *response; /* malloc'd; freed by the front end */
    size_t response_len;
    const char *response_type;
    const char *header_names[SRV_HTTP_MAX_HEADERS];
    char *header_values[SRV_HTTP_MAX_HEADERS]; /* malloc'd */
    unsigned header_count;

    /* Phase timers (common/phase.h): handlers add to phase_ns and set timed when the request
     * is one the phase totals describe (a signing request that handed out a signature). */
    int timed;
    uint64_t phase_ns[SRV_PHASE_REQUEST_COUNT];
    uint64_t t_start, t_mark; /* front end: request received, last hand-off */
} srv_http_exchange;

/* Called on a worker thread with that worker's context. */
typedef void (*srv_http_handler)(void *worker_ctx, srv_http_exchange *ex);

typedef struct {
    const char *host;
    int port; /* 0 picks a free port */
    SSL_CTX *tls;
    unsigned workers;
    unsigned queue_limit;    /* requests waiting for a worker before 503 */
    int timeout_secs;        /* idle/stalled connection timeout */
    int header_timeout_secs; /* total: accept or first byte to the end of the headers */
    int body_timeout_secs;   /* total: end of the headers to the end of the body */
    unsigned max_conns;      /* open connections; more are closed at accept */
    unsigned max_conns_per_addr;
    size_t max_body; /* hard transport cap; API caps are lower and answer in JSON */
    srv_http_handler handler;
    void *(*worker_init)(void *app); /* per-worker context, e.g. a database connection */
    void (*worker_fini)(void *worker_ctx);
    void *app;
    /* Called once listening, with the bound port (for the run file). */
    void (*on_listening)(void *app, int port);
    /* Load-balancer probes answered on the loop thread, never queued behind busy workers:
     * GET live_path is 200 while the process serves (draining too); GET ready_path goes to the
     * handler normally and is 503 "draining" from the drain's first moment. NULL: none. */
    const char *live_path, *ready_path;
    /* Seconds a drain waits for in-flight requests (0: 10). */
    int drain_timeout_secs;
} srv_http_config;

/* Serves until SIGTERM or SIGINT, then drains: ready_path answers 503 at once, requests in
 * flight finish (their replies close the connection), new requests get 503 unavailable with
 * Retry-After and Connection: close, and once none is in flight it returns SRV_OK. If some are
 * still in flight after drain_timeout_secs it returns SRV_E_UNAVAILABLE without waiting for
 * the workers that hold them (the caller must then exit at once: see cmd_serve.c). */
srv_status srv_http_serve(const srv_http_config *cfg, srv_error *err);

/* 1 once a drain has begun (for /healthz/ready answered by a worker). */
int srv_http_draining(void);

/* Requests waiting for a worker now, and how many may wait (for /healthz). */
unsigned srv_http_queue_depth(void);
unsigned srv_http_queue_limit(void);

/* TLS handshakes completed since start (for /metrics). */
long srv_http_tls_handshakes(SSL_CTX *tls);

/* Connection counters as Prometheus text (malloc'd, NULL when out of memory), for /metrics. */
char *srv_http_metrics(void);

/* Helper for handlers: adds a response header (name must be a string literal). Every response
 * also gets HSTS, X-Frame-Options DENY, Referrer-Policy no-referrer, nosniff, no-store, and a
 * Content-Security-Policy that allows nothing unless the handler set its own. */
void srv_http_add_header(srv_http_exchange *ex, const char *name, const char *value);

#endif
