/* Server status codes: one enum for every layer, one table mapping them to HTTP and to the
 * stable machine codes clients see (status.c). */
#ifndef SRV_STATUS_H
#define SRV_STATUS_H

#include <stddef.h>

typedef enum {
    SRV_OK = 0,
    SRV_E_INTERNAL,
    SRV_E_NOMEM,
    SRV_E_BAD_JSON,
    SRV_E_BODY_TOO_LARGE,
    SRV_E_CONTENT_TYPE,
    SRV_E_INVALID_FIELD,
    SRV_E_UNKNOWN_FIELD,
    SRV_E_BAD_BASE64,
    SRV_E_DIGEST_LENGTH,
    SRV_E_UNAUTHENTICATED,
    SRV_E_TOKEN_INVALID,
    SRV_E_TOKEN_EXPIRED,
    SRV_E_BAD_CREDENTIALS,
    SRV_E_FORBIDDEN,
    SRV_E_KEY_NOT_FOUND,
    SRV_E_KEY_DISABLED,
    SRV_E_KEY_NOT_GRANTED,
    SRV_E_USER_NOT_FOUND,
    SRV_E_NOT_FOUND,
    SRV_E_METHOD,
    SRV_E_EXISTS,
    SRV_E_REQUEST_ID_CONFLICT,
    SRV_E_REQUEST_IN_PROGRESS,
    SRV_E_MECHANISM,
    SRV_E_CERTIFICATE,
    SRV_E_HSM,
    SRV_E_HSM_UNAVAILABLE, /* the HSM failed; recovering (hsm/hsm.h) */
    SRV_E_DATABASE,
    SRV_E_AUDIT,
    SRV_E_UNAVAILABLE,
    SRV_E_CONFIG,
    SRV_E_IO,
    /* Policy decisions and approvals (server/src/policy, api/approvals.c). */
    SRV_E_POLICY_DENIED_RULE,
    SRV_E_QUOTA_EXCEEDED,
    SRV_E_OUTSIDE_TIME_WINDOW,
    SRV_E_MACHINE_NOT_ALLOWED,
    SRV_E_NETWORK_NOT_ALLOWED,
    SRV_E_APPLICATION_NOT_ALLOWED,
    SRV_E_HASH_NOT_ALLOWED,
    SRV_E_MECHANISM_NOT_ALLOWED,
    SRV_E_NOT_APPROVER,
    SRV_E_SELF_APPROVAL,
    SRV_E_ALREADY_DECIDED,
    SRV_E_APPROVAL_CLOSED,
    SRV_E_APPROVAL_REJECTED,
    SRV_E_APPROVAL_EXPIRED,
    /* Issue 14 (signing service, approvals). */
    SRV_E_APPROVAL_POLICY_CHANGED,
    SRV_E_REASON_REQUIRED,
    SRV_E_CERT_REVOKED,    /* the key's certificate is revoked */
    SRV_E_CERT_EXPIRED,    /* the key's certificate has expired */
    SRV_E_KEY_USAGE_LIMIT, /* the key made as many signatures as its limit allows */
    SRV_E_PROJECT_NOT_FOUND,
    SRV_E_PROJECT_NOT_EMPTY, /* a project that still holds keys cannot be deleted */
    SRV_E_TOTP_REQUIRED,     /* an admin logs in with a one-time code */
    SRV_E_TOTP_INVALID,
    SRV_E_TOTP_REPLAYED,      /* that code was used already */
    SRV_E_TOO_MANY_ATTEMPTS,  /* failed codes: locked for a while */
    SRV_E_CSRF,               /* a console call that changes something without its CSRF token */
    SRV_E_SESSION_EXPIRED,    /* a console session idle for too long, or past its lifetime */
    SRV_E_TOO_MANY_DIGESTS,   /* a signing job over its cap of digests */
    SRV_E_JOB_QUEUE_FULL,     /* the caller's queued job digests would pass their cap */
    SRV_E_APPROVAL_NOT_ASYNC, /* a rule asks for approval: no signing job, sign synchronously */
    /* Issue 18: the provenance gate (policy/provenance.h). */
    SRV_E_PROVENANCE_DENIED,    /* a require rule's provenance is missing or not met */
    SRV_E_PROVENANCE_INVALID,   /* the request's provenance is malformed */
    SRV_E_PROVENANCE_TOO_LARGE, /* its envelope is over SRV_PROV_ENVELOPE_MAX */
    SRV_STATUS_COUNT
} srv_status;

/* A status and a human message; the message never holds a secret. */
typedef struct {
    srv_status status;
    char message[256];
} srv_error;

/* Sets err (if not NULL) and returns status, so callers can write `return srv_fail(...)`. */
srv_status srv_fail(srv_error *err, srv_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stable machine code ("key_not_granted") and HTTP status for a status. */
const char *srv_status_code(srv_status status);
int srv_status_http(srv_status status);

#endif
