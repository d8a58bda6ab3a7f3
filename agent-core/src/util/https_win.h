/* One HTTPS request with WinHTTP for signum-util on Windows (enroll's POST, doctor's checks),
 * the server's certificate verified against the configured CA before any body is sent. */
#ifndef UTIL_HTTPS_WIN_H
#define UTIL_HTTPS_WIN_H

#include <stddef.h>
#include <time.h>

#include "../agent/agent.h"

/* Where a failed request stopped, for doctor's verdicts. */
typedef enum {
    HTTPS_OK,
    HTTPS_FAIL_SETUP,   /* bad URL, out of memory, the CA file */
    HTTPS_FAIL_DNS,     /* the host name did not resolve */
    HTTPS_FAIL_CONNECT, /* no TCP connection (refused, timed out) */
    HTTPS_FAIL_TLS,     /* handshake or certificate verification */
    HTTPS_FAIL_HTTP,    /* the exchange after the handshake */
} https_stage;

typedef struct {
    long status;
    char *body; /* NUL-terminated, malloc'd, at most max_body bytes */
    size_t body_len;
    time_t date; /* the server's Date header, 0 if none */
} https_answer;

/* method "GET" or "POST"; body NULL or JSON. On failure returns the stage and puts a sentence
 * in why; on HTTPS_OK *ans holds the answer (free ans->body). */
https_stage util_https(const ag_config *cfg, unsigned server, const char *method, const char *path,
                       const char *body, size_t max_body, https_answer *ans, char *why,
                       size_t why_len);

#endif
