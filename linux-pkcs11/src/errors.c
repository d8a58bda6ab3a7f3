/* The one map from the client library's status to CK_RV, and CK_RV names for the debug log.
 * The table is documented in linux-pkcs11/README.md; change both together. */
#include "p11.h"

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

const char *p11_rv_name(CK_RV rv)
{
    switch (rv) {
#define N(x)                                                                                       \
    case x: return #x;
        N(CKR_OK)
        N(CKR_HOST_MEMORY)
        N(CKR_SLOT_ID_INVALID)
        N(CKR_GENERAL_ERROR)
        N(CKR_FUNCTION_FAILED)
        N(CKR_ARGUMENTS_BAD)
        N(CKR_CANT_LOCK)
        N(CKR_ATTRIBUTE_SENSITIVE)
        N(CKR_ATTRIBUTE_TYPE_INVALID)
        N(CKR_ATTRIBUTE_VALUE_INVALID)
        N(CKR_DATA_INVALID)
        N(CKR_DATA_LEN_RANGE)
        N(CKR_DEVICE_ERROR)
        N(CKR_DEVICE_REMOVED)
        N(CKR_FUNCTION_NOT_PARALLEL)
        N(CKR_FUNCTION_NOT_SUPPORTED)
        N(CKR_KEY_HANDLE_INVALID)
        N(CKR_KEY_TYPE_INCONSISTENT)
        N(CKR_KEY_FUNCTION_NOT_PERMITTED)
        N(CKR_MECHANISM_INVALID)
        N(CKR_MECHANISM_PARAM_INVALID)
        N(CKR_OBJECT_HANDLE_INVALID)
        N(CKR_OPERATION_ACTIVE)
        N(CKR_OPERATION_NOT_INITIALIZED)
        N(CKR_PIN_INCORRECT)
        N(CKR_PIN_LEN_RANGE)
        N(CKR_SESSION_HANDLE_INVALID)
        N(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
        N(CKR_SESSION_READ_ONLY)
        N(CKR_SESSION_COUNT)
        N(CKR_TEMPLATE_INCONSISTENT)
        N(CKR_TOKEN_NOT_PRESENT)
        N(CKR_TOKEN_WRITE_PROTECTED)
        N(CKR_USER_ALREADY_LOGGED_IN)
        N(CKR_USER_NOT_LOGGED_IN)
        N(CKR_USER_TYPE_INVALID)
        N(CKR_RANDOM_NO_RNG)
        N(CKR_BUFFER_TOO_SMALL)
        N(CKR_CRYPTOKI_NOT_INITIALIZED)
        N(CKR_CRYPTOKI_ALREADY_INITIALIZED)
        N(CKR_FUNCTION_REJECTED)
#undef N
    }
    return "CKR_(other)";
}
