/* CK_RV names for the logs of the PKCS#11 module and of the server's HSM layer. The values
 * are PKCS#11's (3.0, section 5.1); no pkcs11.h here, so tests/unit/test_common_names.c checks
 * every entry against one. */
#include "signum/common/names.h"

static const struct {
    unsigned long rv;
    const char *name;
} ckr[] = {
    {0x0UL, "CKR_OK"},
    {0x1UL, "CKR_CANCEL"},
    {0x2UL, "CKR_HOST_MEMORY"},
    {0x3UL, "CKR_SLOT_ID_INVALID"},
    {0x5UL, "CKR_GENERAL_ERROR"},
    {0x6UL, "CKR_FUNCTION_FAILED"},
    {0x7UL, "CKR_ARGUMENTS_BAD"},
    {0x8UL, "CKR_NO_EVENT"},
    {0x9UL, "CKR_NEED_TO_CREATE_THREADS"},
    {0xAUL, "CKR_CANT_LOCK"},
    {0x10UL, "CKR_ATTRIBUTE_READ_ONLY"},
    {0x11UL, "CKR_ATTRIBUTE_SENSITIVE"},
    {0x12UL, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {0x13UL, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {0x20UL, "CKR_DATA_INVALID"},
    {0x21UL, "CKR_DATA_LEN_RANGE"},
    {0x30UL, "CKR_DEVICE_ERROR"},
    {0x31UL, "CKR_DEVICE_MEMORY"},
    {0x32UL, "CKR_DEVICE_REMOVED"},
    {0x50UL, "CKR_FUNCTION_CANCELED"},
    {0x51UL, "CKR_FUNCTION_NOT_PARALLEL"},
    {0x54UL, "CKR_FUNCTION_NOT_SUPPORTED"},
    {0x60UL, "CKR_KEY_HANDLE_INVALID"},
    {0x63UL, "CKR_KEY_TYPE_INCONSISTENT"},
    {0x68UL, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {0x70UL, "CKR_MECHANISM_INVALID"},
    {0x71UL, "CKR_MECHANISM_PARAM_INVALID"},
    {0x82UL, "CKR_OBJECT_HANDLE_INVALID"},
    {0x90UL, "CKR_OPERATION_ACTIVE"},
    {0x91UL, "CKR_OPERATION_NOT_INITIALIZED"},
    {0xA0UL, "CKR_PIN_INCORRECT"},
    {0xA2UL, "CKR_PIN_LEN_RANGE"},
    {0xA4UL, "CKR_PIN_LOCKED"},
    {0xB0UL, "CKR_SESSION_CLOSED"},
    {0xB1UL, "CKR_SESSION_COUNT"},
    {0xB3UL, "CKR_SESSION_HANDLE_INVALID"},
    {0xB4UL, "CKR_SESSION_PARALLEL_NOT_SUPPORTED"},
    {0xB5UL, "CKR_SESSION_READ_ONLY"},
    {0xD0UL, "CKR_TEMPLATE_INCOMPLETE"},
    {0xD1UL, "CKR_TEMPLATE_INCONSISTENT"},
    {0xE0UL, "CKR_TOKEN_NOT_PRESENT"},
    {0xE1UL, "CKR_TOKEN_NOT_RECOGNIZED"},
    {0xE2UL, "CKR_TOKEN_WRITE_PROTECTED"},
    {0x100UL, "CKR_USER_ALREADY_LOGGED_IN"},
    {0x101UL, "CKR_USER_NOT_LOGGED_IN"},
    {0x103UL, "CKR_USER_TYPE_INVALID"},
    {0x121UL, "CKR_RANDOM_NO_RNG"},
    {0x150UL, "CKR_BUFFER_TOO_SMALL"},
    {0x190UL, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {0x191UL, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    {0x200UL, "CKR_FUNCTION_REJECTED"},
};

const char *sgc_ckr_name(unsigned long rv)
{
    for (unsigned i = 0; i < sizeof(ckr) / sizeof(ckr[0]); i++)
        if (ckr[i].rv == rv)
            return ckr[i].name;
    return "CKR_(other)";
}
