/* The one HTTPS client of agent-core, used by signum-agent and signum-util alike, with one set
 * of TLS rules: https only, TLS 1.2 or newer, the server verified (against ca_file when it is
 * set, else the system's roots), the forward-secret AEAD suites for TLS 1.2, and the machine's
 * client certificate (client_cert, client_key) for mTLS. Backends: libcurl
 * (src/agent/transport_curl.c) and WinHTTP (src/agent/transport_winhttp.c); retries and
 * failover above them (src/agent/transport.c); the map of a server's error answer to
 * sg_status with its retry rule (src/agent/errmap.c). */
#ifndef SIGNUM_HTTPS_H
#define SIGNUM_HTTPS_H

#include <stddef.h>
#include <time.h>

#include "signum/agent_config.h"

#define AG_MAX_RESPONSE    (4 * 1024 * 1024)
#define AG_MAX_RETRY_AFTER 30

/* Where a failed attempt stopped (doctor's verdicts follow it). */
typedef enum {
    AG_STAGE_NONE,    /* an answer came */
    AG_STAGE_SETUP,   /* bad URL, out of memory, the CA file */
    AG_STAGE_DNS,     /* the host name did not resolve */
    AG_STAGE_CONNECT, /* no TCP connection (refused, timed out) */
    AG_STAGE_TLS,     /* handshake or certificate verification */
    AG_STAGE_HTTP,    /* the exchange after the handshake */
} ag_stage;

typedef struct {
    long status;
    char *body; /* NUL-terminated, malloc'd */
    size_t body_len;
    char etag[130];
    long retry_after; /* seconds, -1 if absent */
    int server_index; /* which configured server answered */
    time_t date;      /* the server's Date header, 0 if none */
    ag_stage stage;   /* of a failed attempt */
    char reason[200]; /* a failed attempt's cause in the HTTP library's words */
} ag_response;

void ag_response_free(ag_response *r);
/* Takes what we use from one response header line (ETag, Retry-After). */
void ag_response_header(ag_response *r, const char *line);

/* ---- one attempt of one call against one configured server (the backend) ------------------ */

typedef struct ag_backend ag_backend;

typedef enum { TRY_DONE, TRY_CONNECT_FAILED, TRY_RETRYABLE, TRY_FATAL } try_result;

/* user_agent: what the program calls itself ("signum-agent/1.2.3"). cfg must outlive the
 * backend. */
sg_status ag_backend_new(const ag_config *cfg, const char *user_agent, ag_backend **out,
                         ag_error *err);
void ag_backend_free(ag_backend *b);
/* TRY_DONE: resp holds an answer (any status but those ag_http_retryable() takes, which are
 * TRY_RETRYABLE, with the answer in resp too);
 * TRY_CONNECT_FAILED: try the next server; TRY_FATAL: err says why, never retried. On both,
 * resp->stage and resp->reason say where and why it stopped. */
try_result ag_backend_try(ag_backend *b, unsigned server, const char *method, const char *path,
                          const char *bearer, const char *json_body, const char *if_none_match,
                          ag_response *resp, ag_error *err);

/* ---- calls with retries and failover (the transport) --------------------------------------- */

typedef struct ag_transport ag_transport;

sg_status ag_transport_new(const ag_config *cfg, const char *user_agent, ag_transport **out,
                           ag_error *err);
void ag_transport_free(ag_transport *t);
/* One API call with retries (connection errors, 5xx, 429 with Retry-After; never other 4xx)
 * and failover across the configured servers. */
sg_status ag_http(ag_transport *t, const char *method, const char *path, const char *bearer,
                  const char *json_body, const char *if_none_match, ag_response *resp,
                  ag_error *err);
/* The server URL currently preferred (the last one that answered). */
const char *ag_transport_server(ag_transport *t);

/* ---- server answers (errmap.c) -------------------------------------------------------------- */

/* The one map of a server answer that is not a success (HTTP status and JSON error code) to
 * an sg_status with a message, and the one retry rule: 1 if the answer may be retried (5xx,
 * and 429 but a spent quota), else 0. */
sg_status ag_map_server_error(long http_status, const char *body, ag_error *err);
int ag_http_retryable(long http_status, const char *body);
/* The error code and message of an answer body ({"error":{"code","message"}}), each "" if
 * absent; msg may be NULL. */
void ag_server_error_fields(const char *body, char *code, size_t code_len, char *msg,
                            size_t msg_len);

#endif
