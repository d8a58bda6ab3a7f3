/* What transport.c needs of an HTTPS backend (transport_curl.c; WinHTTP on Windows): one
 * attempt of one call against one configured server. */
#ifndef AG_TRANSPORT_BACKEND_H
#define AG_TRANSPORT_BACKEND_H

#include "agent.h"

#define AG_MAX_RESPONSE    (4 * 1024 * 1024)
#define AG_MAX_RETRY_AFTER 30

typedef struct ag_backend ag_backend;

typedef enum { TRY_DONE, TRY_CONNECT_FAILED, TRY_RETRYABLE, TRY_FATAL } try_result;

sg_status ag_backend_new(const ag_config *cfg, ag_backend **out, ag_error *err);
void ag_backend_free(ag_backend *b);
/* TRY_DONE: resp holds an answer (any status but those ag_http_retryable() takes, which are
 * TRY_RETRYABLE);
 * TRY_CONNECT_FAILED: try the next server; TRY_FATAL: err says why, never retried. */
try_result ag_backend_try(ag_backend *b, unsigned server, const char *method, const char *path,
                          const char *bearer, const char *json_body, const char *if_none_match,
                          ag_response *resp, ag_error *err);
/* Takes what the agent uses from one response header line (ETag, Retry-After). */
void ag_response_header(ag_response *r, const char *line);

#endif
