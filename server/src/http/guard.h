/* Connection guard for the HTTPS front end (loop thread only).
 *
 * evhttp has an idle timeout only (reset by every byte), no connection caps and no hook
 * between accept() and the first request, and it answers framing errors with HTML. The guard
 * rides on each connection's SSL object (ex_data, freed with it) and:
 *  - admits or refuses a connection right after accept (total and per-address caps);
 *  - gives the TLS handshake + request headers one total deadline, and the body another;
 *  - watches the decrypted request stream for framing that could be read two ways
 *    (repeated or non-decimal Content-Length, Content-Length with Transfer-Encoding,
 *    repeated or unknown Transfer-Encoding, folded or malformed header lines) and answers
 *    it with a JSON 400 before evhttp interprets it, then closes the connection. */
#ifndef SRV_HTTP_GUARD_H
#define SRV_HTTP_GUARD_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

typedef struct {
    unsigned max_conns;    /* open connections in total */
    unsigned max_per_addr; /* open connections from one remote address */
    int header_timeout;    /* seconds: accept (or a request's first byte) to end of headers */
    int body_timeout;      /* seconds: end of headers to end of body */
} srv_http_guard_config;

typedef struct {
    unsigned long open, accepted, refused_total, refused_per_addr, header_timeouts, body_timeouts,
        framing_errors;
} srv_http_guard_stats;

typedef struct srv_http_guard srv_http_guard;

srv_http_guard *srv_http_guard_new(struct event_base *base, const srv_http_guard_config *cfg);
void srv_http_guard_free(srv_http_guard *g);

/* From the bufferevent factory: tracks the new connection (admission runs once evhttp has
 * given it its socket). -1 if it cannot be tracked (the caller then refuses it). */
int srv_http_guard_attach(srv_http_guard *g, SSL *ssl, struct bufferevent *bev);

/* A whole request went to a worker / its reply is about to be queued, on the connection of
 * bev. request_end returns 1 when that reply must close the connection (a framing error was
 * seen behind the request). */
void srv_http_guard_request_begin(struct bufferevent *bev);
int srv_http_guard_request_end(struct bufferevent *bev);

srv_http_guard_stats srv_http_guard_get_stats(void);

#endif
