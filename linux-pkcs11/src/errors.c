/* The one map from the client library's status to CK_RV, and CK_RV names for the debug log.
 * The table is documented in linux-pkcs11/README.md; change both together. */
#include "p11.h"
#include "signum/common/names.h"

CK_RV p11_map_status(sg_status st, p11_context ctx)
{
    switch (st) {
    case SG_OK: return CKR_OK;
    /* The agent is our device: gone and not startable, or cut off from every server. */
    case SG_ERR_AGENT_UNAVAILABLE: return CKR_DEVICE_REMOVED;
    case SG_ERR_NETWORK: return CKR_DEVICE_REMOVED;
    /* No credentials, or the server refused them: the user must log in (with an API key as
     * the PIN, or signum-util login). In C_Login a refused credential is a wrong PIN. */
    case SG_ERR_NOT_LOGGED_IN:
    case SG_ERR_AUTH_FAILED:
        return ctx == P11_CTX_LOGIN ? CKR_PIN_INCORRECT : CKR_USER_NOT_LOGGED_IN;
    /* Policy, a missing grant or a disabled key: the server said no to this signature. */
    case SG_ERR_DENIED: return CKR_FUNCTION_REJECTED;
    /* A spent policy quota is a refusal too (not a data or device problem): the server said
     * no to this signature, for now. */
    case SG_ERR_QUOTA_EXCEEDED: return CKR_FUNCTION_REJECTED;
    /* The key left the listing after we fetched it. */
    case SG_ERR_KEY_NOT_FOUND: return CKR_KEY_HANDLE_INVALID;
    case SG_ERR_TIMEOUT:
    case SG_ERR_SERVER:
    case SG_ERR_HSM:
    case SG_ERR_PROTOCOL: return CKR_DEVICE_ERROR;
    case SG_ERR_BAD_INPUT:
        return ctx == P11_CTX_SIGN    ? CKR_DATA_LEN_RANGE
               : ctx == P11_CTX_LOGIN ? CKR_PIN_LEN_RANGE
                                      : CKR_ARGUMENTS_BAD;
    case SG_ERR_NOMEM: return CKR_HOST_MEMORY;
    case SG_ERR_BUFFER_TOO_SMALL: return CKR_BUFFER_TOO_SMALL;
    case SG_ERR_UNSUPPORTED:
        return ctx == P11_CTX_SIGN ? CKR_MECHANISM_INVALID : CKR_FUNCTION_NOT_SUPPORTED;
    case SG_ERR_INTERNAL:
    case SG_STATUS_COUNT: break;
    }
    return CKR_GENERAL_ERROR;
}

/* One CK_RV name table for the module and the server (signum/common/names.h). */
const char *p11_rv_name(CK_RV rv)
{
    return sgc_ckr_name(rv);
}
