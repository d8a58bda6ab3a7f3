/* The one map from the client library's status to TKErrorCode; README.md ("Errors") shows it.
 * CryptoTokenKit has nine codes and no "refused": a policy refusal is an authentication
 * failure of this signature, everything between us and the HSM a communication error. */
#include "sgtk.h"

sgtk_error sgtk_map_status(sg_status st)
{
    switch (st) {
    case SG_OK: return SGTK_OK;
    /* No credentials yet: signum-util login, then the same signature works. */
    case SG_ERR_NOT_LOGGED_IN: return SGTK_E_AUTHENTICATION_NEEDED;
    /* The server refused the credentials, or refused this signature (grant, policy, a disabled
     * key or caller, a spent quota): retrying the same request does not help. */
    case SG_ERR_AUTH_FAILED:
    case SG_ERR_DENIED:
    case SG_ERR_QUOTA_EXCEEDED: return SGTK_E_AUTHENTICATION_FAILED;
    /* The key left the listing after the keychain item was published. */
    case SG_ERR_KEY_NOT_FOUND: return SGTK_E_OBJECT_NOT_FOUND;
    case SG_ERR_BAD_INPUT: return SGTK_E_BAD_PARAMETER;
    case SG_ERR_UNSUPPORTED: return SGTK_E_NOT_IMPLEMENTED;
    case SG_ERR_PROTOCOL: return SGTK_E_CORRUPTED_DATA;
    /* The agent, the network, the server or its HSM: the signature may work later. */
    case SG_ERR_AGENT_UNAVAILABLE:
    case SG_ERR_NETWORK:
    case SG_ERR_TIMEOUT:
    case SG_ERR_SERVER:
    case SG_ERR_HSM:
    case SG_ERR_NOMEM:
    case SG_ERR_BUFFER_TOO_SMALL:
    case SG_ERR_INTERNAL:
    case SG_STATUS_COUNT: break;
    }
    return SGTK_E_COMMUNICATION;
}

const char *sgtk_error_name(sgtk_error e)
{
    switch (e) {
    case SGTK_OK: return "OK";
    case SGTK_E_NOT_IMPLEMENTED: return "TKErrorCodeNotImplemented";
    case SGTK_E_COMMUNICATION: return "TKErrorCodeCommunicationError";
    case SGTK_E_CORRUPTED_DATA: return "TKErrorCodeCorruptedData";
    case SGTK_E_CANCELED_BY_USER: return "TKErrorCodeCanceledByUser";
    case SGTK_E_AUTHENTICATION_FAILED: return "TKErrorCodeAuthenticationFailed";
    case SGTK_E_OBJECT_NOT_FOUND: return "TKErrorCodeObjectNotFound";
    case SGTK_E_TOKEN_NOT_FOUND: return "TKErrorCodeTokenNotFound";
    case SGTK_E_BAD_PARAMETER: return "TKErrorCodeBadParameter";
    case SGTK_E_AUTHENTICATION_NEEDED: return "TKErrorCodeAuthenticationNeeded";
    }
    return "unknown";
}
