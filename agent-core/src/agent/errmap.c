/* The one map from a server answer (HTTP status and the JSON error code, server/API.md
 * "Errors") to sg_status, and beside it the one rule for which answers are worth retrying.
 * Every caller (transport, session, sign, key listing) goes through these two functions; the
 * providers then map sg_status once more into their own API (linux-pkcs11/src/errors.c,
 * windows-ksp/src/errors.c, windows-csp/src/csp_errors.c). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "signum/https.h"

/* Every code server/API.md documents. A code not listed falls back to its HTTP status. */
static const struct {
    const char *code;
    sg_status st;
} code_map[] = {
    /* 400: what the agent built is wrong (it writes the JSON, the base64 and the field set),
     * so the caller's data is not to blame: a protocol error, not "bad input". */
    {"malformed_json", SG_ERR_PROTOCOL},
    {"unknown_field", SG_ERR_PROTOCOL},
    {"bad_base64", SG_ERR_PROTOCOL},
    {"method_not_allowed", SG_ERR_PROTOCOL},
    {"unsupported_content_type", SG_ERR_PROTOCOL},
    {"request_id_conflict", SG_ERR_PROTOCOL}, /* the client library makes the ids */
    {"bad_framing", SG_ERR_PROTOCOL},
    {"bad_request", SG_ERR_PROTOCOL},
    {"headers_too_large", SG_ERR_PROTOCOL},
    /* 400: what the caller asked for is wrong. */
    {"invalid_field", SG_ERR_BAD_INPUT},
    {"digest_length_mismatch", SG_ERR_BAD_INPUT},
    {"invalid_certificate", SG_ERR_BAD_INPUT},
    {"body_too_large", SG_ERR_BAD_INPUT},
    {"already_exists", SG_ERR_BAD_INPUT},
    {"already_decided", SG_ERR_BAD_INPUT},
    {"approval_closed", SG_ERR_BAD_INPUT},
    {"reason_required", SG_ERR_BAD_INPUT},
    {"user_not_found", SG_ERR_BAD_INPUT},
    {"not_found", SG_ERR_BAD_INPUT},
    {"project_not_found", SG_ERR_BAD_INPUT},
    {"project_not_empty", SG_ERR_BAD_INPUT},
    {"provenance_invalid", SG_ERR_BAD_INPUT},
    {"provenance_too_large", SG_ERR_BAD_INPUT},
    {"mechanism_not_supported", SG_ERR_UNSUPPORTED},
    /* 401 */
    {"unauthenticated", SG_ERR_NOT_LOGGED_IN},
    {"bad_credentials", SG_ERR_AUTH_FAILED},
    {"token_invalid", SG_ERR_AUTH_FAILED},
    {"token_expired", SG_ERR_AUTH_FAILED},
    {"totp_required", SG_ERR_AUTH_FAILED},
    {"totp_invalid", SG_ERR_AUTH_FAILED},
    {"totp_replayed", SG_ERR_AUTH_FAILED},
    {"session_expired", SG_ERR_AUTH_FAILED},
    /* 403, 410: the server said no to this call or signature. */
    {"forbidden", SG_ERR_DENIED},
    {"csrf_token_invalid", SG_ERR_DENIED},
    {"key_not_granted", SG_ERR_DENIED},
    {"key_disabled", SG_ERR_DENIED},
    {"policy_denied_rule", SG_ERR_DENIED},
    {"outside_time_window", SG_ERR_DENIED},
    {"machine_not_allowed", SG_ERR_DENIED},
    {"network_not_allowed", SG_ERR_DENIED},
    {"application_not_allowed", SG_ERR_DENIED},
    {"hash_not_allowed", SG_ERR_DENIED},
    {"mechanism_not_allowed", SG_ERR_DENIED},
    {"not_an_approver", SG_ERR_DENIED},
    {"self_approval_forbidden", SG_ERR_DENIED},
    {"approval_rejected", SG_ERR_DENIED},
    {"approval_expired", SG_ERR_DENIED},
    {"approval_policy_changed", SG_ERR_DENIED},
    {"certificate_revoked", SG_ERR_DENIED},
    {"certificate_expired", SG_ERR_DENIED},
    {"key_usage_limit", SG_ERR_DENIED},
    {"provenance_denied", SG_ERR_DENIED}, /* a provenance rule is not met: the message says why */
    /* 404 */
    {"key_not_found", SG_ERR_KEY_NOT_FOUND},
    /* 429: too many failed one-time codes: a refusal of the credentials for now. */
    {"too_many_attempts", SG_ERR_AUTH_FAILED},
    /* 429: a policy quota is spent. A refusal for now, not a fault; not retried. */
    {"quota_exceeded", SG_ERR_QUOTA_EXCEEDED},
    /* 5xx */
    {"hsm_error", SG_ERR_HSM},
    {"hsm_unavailable", SG_ERR_HSM},
    {"audit_unavailable", SG_ERR_SERVER},
    {"overloaded", SG_ERR_SERVER},
    {"unavailable", SG_ERR_SERVER},
};

static sg_status by_status(long http_status)
{
    if (http_status >= 500)
        return SG_ERR_SERVER;
    switch (http_status) {
    case 401: return SG_ERR_AUTH_FAILED;
    case 403:
    case 410: return SG_ERR_DENIED;
    case 404: return SG_ERR_KEY_NOT_FOUND;
    case 405:
    case 415: return SG_ERR_PROTOCOL;
    case 429: return SG_ERR_SERVER; /* rate limited without a code we know: busy */
    default: return SG_ERR_BAD_INPUT;
    }
}

void ag_server_error_fields(const char *body, char *code, size_t code_len, char *msg,
                            size_t msg_len)
{
    cJSON *doc = body ? cJSON_Parse(body) : NULL;
    const cJSON *e = doc ? cJSON_GetObjectItemCaseSensitive(doc, "error") : NULL;
    const cJSON *c = e ? cJSON_GetObjectItemCaseSensitive(e, "code") : NULL;
    const cJSON *m = e ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
    snprintf(code, code_len, "%s", cJSON_IsString(c) ? c->valuestring : "");
    if (msg)
        snprintf(msg, msg_len, "%s", cJSON_IsString(m) ? m->valuestring : "");
    cJSON_Delete(doc);
}

sg_status ag_map_server_error(long http_status, const char *body, ag_error *err)
{
    char code[64], msg[400];
    sg_status st;

    if (http_status == 202) {
        /* A sign request that needs approval: nothing is signed now. */
        cJSON *doc = body ? cJSON_Parse(body) : NULL;
        const cJSON *id = doc ? cJSON_GetObjectItemCaseSensitive(doc, "approval_id") : NULL;
        ag_fail(err, SG_ERR_DENIED,
                "server: the signature needs approval (approval_id %s); it is made once the "
                "request is approved (HTTP 202)",
                cJSON_IsString(id) ? id->valuestring : "unknown");
        cJSON_Delete(doc);
        return SG_ERR_DENIED;
    }
    ag_server_error_fields(body, code, sizeof(code), msg, sizeof(msg));
    st = by_status(http_status);
    for (size_t i = 0; code[0] && i < sizeof(code_map) / sizeof(code_map[0]); i++)
        if (strcmp(code, code_map[i].code) == 0) {
            st = code_map[i].st;
            break;
        }
    return ag_fail(err, st, "server: %s (%s, HTTP %ld)", msg[0] ? msg : "no message",
                   code[0] ? code : "no code", http_status);
}

int ag_http_retryable(long http_status, const char *body)
{
    char code[64];
    if (http_status >= 500)
        return 1; /* a failing, overloaded or restarting server; sign requests carry an id */
    if (http_status != 429)
        return 0; /* any other 4xx would be answered the same again */
    /* A spent quota stays spent for its window: retrying within seconds only delays the
     * refusal. Other 429s (rate limits) pass with time. */
    ag_server_error_fields(body, code, sizeof(code), NULL, 0);
    return strcmp(code, "quota_exceeded") != 0 && strcmp(code, "too_many_attempts") != 0;
}
