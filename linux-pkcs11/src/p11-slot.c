/* Slot and token: one slot (id 0), whose token is present while the agent is reachable.
 * Works without a prior C_GetSlotList; mechanisms are answered without the agent. */
#include <stdio.h>
#include <string.h>

#include "p11.h"

static CK_RV slot_list(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_ULONG n = 1;
    if (!count)
        return CKR_ARGUMENTS_BAD;
    if (present) {
        p11_token_ensure();
        n = p11.token.reachable ? 1 : 0;
    }
    if (!list) {
        *count = n;
        return CKR_OK;
    }
    if (*count < n) {
        *count = n;
        return CKR_BUFFER_TOO_SMALL;
    }
    if (n)
        list[0] = P11_SLOT_ID;
    *count = n;
    return CKR_OK;
}

P11_EXPORT CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
                               CK_ULONG_PTR pulCount)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = slot_list(tokenPresent, pSlotList, pulCount);
    return p11_leave(rv, __func__);
}

static void fill_version(CK_VERSION *v)
{
    v->major = SIGNUM_VERSION_MAJOR;
    v->minor = SIGNUM_VERSION_MINOR;
}

static CK_RV slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    if (slot != P11_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (!info)
        return CKR_ARGUMENTS_BAD;
    p11_token_ensure();
    memset(info, 0, sizeof(*info));
    p11_pad(info->slotDescription, sizeof(info->slotDescription), "Signum Agent");
    p11_pad(info->manufacturerID, sizeof(info->manufacturerID), "Signum");
    info->flags = CKF_REMOVABLE_DEVICE | (p11.token.reachable ? CKF_TOKEN_PRESENT : 0);
    fill_version(&info->hardwareVersion);
    fill_version(&info->firmwareVersion);
    return CKR_OK;
}

P11_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = slot_info(slotID, pInfo);
    return p11_leave(rv, __func__);
}

/* Stable for one identity on one server, different for another: what tools key caches on. */
static void token_serial(char out[17])
{
    static const char hex[] = "0123456789abcdef";
    char text[700];
    uint8_t h[SG_MAX_DIGEST];
    size_t hlen = sizeof(h);
    snprintf(text, sizeof(text), "%s@%s", p11.token.identity, p11.token.server);
    if (sg_digest(SG_HASH_SHA256, text, strlen(text), h, &hlen) != SG_OK)
        memset(h, 0, 8);
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[16] = '\0';
}

static CK_RV token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    char label[200], serial[17];
    if (slot != P11_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (!info)
        return CKR_ARGUMENTS_BAD;
    p11_token_ensure();
    if (!p11.token.reachable)
        return CKR_TOKEN_NOT_PRESENT;
    memset(info, 0, sizeof(*info));
    if (p11.token.identity[0])
        snprintf(label, sizeof(label), "Signum %s", p11.token.identity);
    else
        snprintf(label, sizeof(label), "Signum");
    token_serial(serial);
    p11_pad(info->label, sizeof(info->label), label);
    p11_pad(info->manufacturerID, sizeof(info->manufacturerID), "Signum");
    p11_pad(info->model, sizeof(info->model), "Signum Agent");
    p11_pad(info->serialNumber, sizeof(info->serialNumber), serial);
    /* Without an agent session the user must log in, with an API key as the PIN. */
    info->flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_WRITE_PROTECTED |
                  (p11.token.has_session ? 0 : CKF_LOGIN_REQUIRED);
    info->ulMaxSessionCount = P11_MAX_SESSIONS;
    info->ulSessionCount = p11.sessions;
    info->ulMaxRwSessionCount = 0;
    info->ulRwSessionCount = 0;
    info->ulMaxPinLen = P11_MAX_PIN;
    info->ulMinPinLen = 0;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    fill_version(&info->hardwareVersion);
    fill_version(&info->firmwareVersion);
    return CKR_OK;
}

P11_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = token_info(slotID, pInfo);
    return p11_leave(rv, __func__);
}

static CK_RV mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_ULONG n = p11_mech_count();
    if (slot != P11_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    if (!count)
        return CKR_ARGUMENTS_BAD;
    if (!list) {
        *count = n;
        return CKR_OK;
    }
    if (*count < n) {
        *count = n;
        return CKR_BUFFER_TOO_SMALL;
    }
    for (CK_ULONG i = 0; i < n; i++)
        list[i] = p11_mech_at(i)->type;
    *count = n;
    return CKR_OK;
}

P11_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                                    CK_ULONG_PTR pulCount)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    rv = mechanism_list(slotID, pMechanismList, pulCount);
    return p11_leave(rv, __func__);
}

P11_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
                                    CK_MECHANISM_INFO_PTR pInfo)
{
    CK_RV rv = p11_enter();
    if (rv != CKR_OK)
        return rv;
    if (slotID != P11_SLOT_ID)
        rv = CKR_SLOT_ID_INVALID;
    else if (!pInfo)
        rv = CKR_ARGUMENTS_BAD;
    else
        rv = p11_mech_info(type, pInfo);
    return p11_leave(rv, __func__);
}
