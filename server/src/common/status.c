/* The one map from srv_status to HTTP status and stable machine code. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    const char *code;
    int http;
} status_map[SRV_STATUS_COUNT] = {
    [SRV_OK] = {"ok", 200},
    [SRV_E_INTERNAL] = {"internal_error", 500},
    [SRV_E_NOMEM] = {"out_of_memory", 503},
    [SRV_E_BAD_JSON] = {"malformed_json", 400},
    [SRV_E_BODY_TOO_LARGE] = {"body_too_large", 413},
    [SRV_E_CONTENT_TYPE] = {"unsupported_content_type", 415},
    [SRV_E_INVALID_FIELD] = {"invalid_field", 400},
    [SRV_E_UNKNOWN_FIELD] = {"unknown_field", 400},
    [SRV_E_BAD_BASE64] = {"bad_base64", 400},
    [SRV_E_DIGEST_LENGTH] = {"digest_length_mismatch", 400},
    [SRV_E_UNAUTHENTICATED] = {"unauthenticated", 401},
    [SRV_E_TOKEN_INVALID] = {"token_invalid", 401},
    [SRV_E_TOKEN_EXPIRED] = {"token_expired", 401},
    [SRV_E_BAD_CREDENTIALS] = {"bad_credentials", 401},
    [SRV_E_FORBIDDEN] = {"forbidden", 403},
    [SRV_E_KEY_NOT_FOUND] = {"key_not_found", 404},
    [SRV_E_KEY_DISABLED] = {"key_disabled", 403},
    [SRV_E_KEY_NOT_GRANTED] = {"key_not_granted", 403},
    [SRV_E_USER_NOT_FOUND] = {"user_not_found", 404},
    [SRV_E_NOT_FOUND] = {"not_found", 404},
    [SRV_E_METHOD] = {"method_not_allowed", 405},
    [SRV_E_EXISTS] = {"already_exists", 409},
    [SRV_E_REQUEST_ID_CONFLICT] = {"request_id_conflict", 409},
    [SRV_E_REQUEST_IN_PROGRESS] = {"request_in_progress", 409},
    [SRV_E_MECHANISM] = {"mechanism_not_supported", 400},
    [SRV_E_CERTIFICATE] = {"invalid_certificate", 400},
    [SRV_E_HSM] = {"hsm_error", 502},
    [SRV_E_HSM_UNAVAILABLE] = {"hsm_unavailable", 503},
    [SRV_E_DATABASE] = {"database_error", 500},
    [SRV_E_AUDIT] = {"audit_unavailable", 503},
    [SRV_E_UNAVAILABLE] = {"unavailable", 503},
    [SRV_E_CONFIG] = {"configuration_error", 500},
    [SRV_E_IO] = {"io_error", 500},
    [SRV_E_POLICY_DENIED_RULE] = {"policy_denied_rule", 403},
    [SRV_E_QUOTA_EXCEEDED] = {"quota_exceeded", 429},
    [SRV_E_OUTSIDE_TIME_WINDOW] = {"outside_time_window", 403},
    [SRV_E_MACHINE_NOT_ALLOWED] = {"machine_not_allowed", 403},
    [SRV_E_NETWORK_NOT_ALLOWED] = {"network_not_allowed", 403},
    [SRV_E_APPLICATION_NOT_ALLOWED] = {"application_not_allowed", 403},
    [SRV_E_HASH_NOT_ALLOWED] = {"hash_not_allowed", 403},
    [SRV_E_MECHANISM_NOT_ALLOWED] = {"mechanism_not_allowed", 403},
    [SRV_E_NOT_APPROVER] = {"not_an_approver", 403},
    [SRV_E_SELF_APPROVAL] = {"self_approval_forbidden", 403},
    [SRV_E_ALREADY_DECIDED] = {"already_decided", 409},
    [SRV_E_APPROVAL_CLOSED] = {"approval_closed", 409},
    [SRV_E_APPROVAL_REJECTED] = {"approval_rejected", 403},
    [SRV_E_APPROVAL_EXPIRED] = {"approval_expired", 410},
    [SRV_E_APPROVAL_POLICY_CHANGED] = {"approval_policy_changed", 409},
    [SRV_E_REASON_REQUIRED] = {"reason_required", 400},
    [SRV_E_CERT_REVOKED] = {"certificate_revoked", 403},
    [SRV_E_CERT_EXPIRED] = {"certificate_expired", 403},
    [SRV_E_KEY_USAGE_LIMIT] = {"key_usage_limit", 403},
    [SRV_E_PROJECT_NOT_FOUND] = {"project_not_found", 404},
    [SRV_E_PROJECT_NOT_EMPTY] = {"project_not_empty", 409},
    [SRV_E_TOTP_REQUIRED] = {"totp_required", 401},
    [SRV_E_TOTP_INVALID] = {"totp_invalid", 401},
    [SRV_E_TOTP_REPLAYED] = {"totp_replayed", 401},
    [SRV_E_TOO_MANY_ATTEMPTS] = {"too_many_attempts", 429},
    [SRV_E_CSRF] = {"csrf_token_invalid", 403},
    [SRV_E_SESSION_EXPIRED] = {"session_expired", 401},
    [SRV_E_TOO_MANY_DIGESTS] = {"too_many_digests", 413},
    [SRV_E_JOB_QUEUE_FULL] = {"job_queue_full", 429},
    [SRV_E_APPROVAL_NOT_ASYNC] = {"approval_not_async", 403},
    [SRV_E_PROVENANCE_DENIED] = {"provenance_denied", 403},
    [SRV_E_PROVENANCE_INVALID] = {"provenance_invalid", 400},
    [SRV_E_PROVENANCE_TOO_LARGE] = {"provenance_too_large", 400},
};

srv_status srv_fail(srv_error *err, srv_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *srv_status_code(srv_status status)
{
    if ((unsigned)status >= SRV_STATUS_COUNT || !status_map[status].code)
        return "internal_error";
    return status_map[status].code;
}

int srv_status_http(srv_status status)
{
    if ((unsigned)status >= SRV_STATUS_COUNT || !status_map[status].http)
        return 500;
    return status_map[status].http;
}
