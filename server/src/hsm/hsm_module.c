/* The PKCS#11 module: loading and (re-)initialising it, what its errors mean, finding the
 * token, and initialising a fresh token for `signum-server init`. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm_internal.h"
#include "signum/common/names.h"

/* One CK_RV name table for the server and the PKCS#11 module (signum/common/names.h). */
const char *hsm_ckr_name(CK_RV rv)
{
    return sgc_ckr_name(rv);
}

int hsm_rv_unavailable(CK_RV rv)
{
    switch (rv) {
    case CKR_GENERAL_ERROR:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_COUNT:
    case CKR_SLOT_ID_INVALID:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED: return 1;
    default: return 0;
    }
}

int hsm_rv_session_lost(CK_RV rv)
{
    /* All of them: a session (or the whole connection) may be gone, and a fresh one is the
     * cheapest cure to try before declaring the HSM down. */
    return hsm_rv_unavailable(rv);
}

srv_status hsm_fail(srv_error *err, const char *what, CK_RV rv)
{
    if (hsm_rv_unavailable(rv))
        return srv_fail(err, SRV_E_HSM_UNAVAILABLE, "the HSM is unavailable (%s: %s, 0x%lx)", what,
                        hsm_ckr_name(rv), (unsigned long)rv);
    return srv_fail(err, SRV_E_HSM, "%s failed: %s (0x%lx)", what, hsm_ckr_name(rv),
                    (unsigned long)rv);
}

CK_RV hsm_module_initialize(p11_module *m)
{
    CK_C_INITIALIZE_ARGS init_args;
    CK_RV rv;
    memset(&init_args, 0, sizeof(init_args));
    init_args.flags = CKF_OS_LOCKING_OK;
    rv = m->fn->C_Initialize(&init_args);
    return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

srv_status hsm_module_load(const char *path, p11_module *m, srv_error *err)
{
    CK_C_GetFunctionList get_list;
    CK_RV rv;

    memset(m, 0, sizeof(*m));
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl)
        return srv_fail(err, SRV_E_CONFIG, "cannot load PKCS#11 module %s: %s", path, dlerror());
    get_list = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    if (!get_list || get_list(&m->fn) != CKR_OK || !m->fn) {
        dlclose(m->dl);
        m->dl = NULL;
        m->fn = NULL;
        return srv_fail(err, SRV_E_CONFIG, "%s is not a PKCS#11 module", path);
    }
    rv = hsm_module_initialize(m);
    if (rv != CKR_OK) {
        dlclose(m->dl);
        m->dl = NULL;
        m->fn = NULL;
        return hsm_fail(err, "C_Initialize", rv);
    }
    return SRV_OK;
}

void hsm_module_unload(p11_module *m)
{
    if (m->fn)
        m->fn->C_Finalize(NULL);
    if (m->dl)
        dlclose(m->dl);
    memset(m, 0, sizeof(*m));
}

static void pad_label(const char *label, CK_UTF8CHAR out[32])
{
    size_t n = strlen(label);
    memset(out, ' ', 32);
    memcpy(out, label, n > 32 ? 32 : n);
}

/* Finds the slot holding an initialised token with this label. */
srv_status hsm_find_slot(p11_module *m, const char *label, CK_SLOT_ID *slot, srv_error *err)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG count = 0, i;
    CK_UTF8CHAR want[32];
    CK_RV rv;
    srv_status st = SRV_OK;

    pad_label(label, want);
    rv = m->fn->C_GetSlotList(CK_TRUE, NULL, &count);
    if (rv != CKR_OK)
        return hsm_fail(err, "C_GetSlotList", rv);
    slots = calloc(count ? count : 1, sizeof(*slots));
    if (!slots)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    rv = m->fn->C_GetSlotList(CK_TRUE, slots, &count);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_GetSlotList", rv);
        goto out;
    }
    for (i = 0; i < count; i++) {
        CK_TOKEN_INFO info;
        if (m->fn->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if ((info.flags & CKF_TOKEN_INITIALIZED) && memcmp(info.label, want, 32) == 0) {
            *slot = slots[i];
            goto out;
        }
    }
    st = srv_fail(err, SRV_E_CONFIG, "no initialised token labelled \"%s\"", label);
out:
    free(slots);
    return st;
}

srv_status srv_hsm_init_token(const char *module_path, const char *label, const char *so_pin,
                              const char *user_pin, srv_error *err)
{
    p11_module m;
    CK_SLOT_ID *slots = NULL, slot = 0;
    CK_ULONG count = 0, i;
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_UTF8CHAR plabel[32];
    CK_RV rv;
    int found = 0;
    srv_status st;

    if (strlen(label) > 32)
        return srv_fail(err, SRV_E_CONFIG, "token label longer than 32 bytes");
    st = hsm_module_load(module_path, &m, err);
    if (st != SRV_OK)
        return st;
    rv = m.fn->C_GetSlotList(CK_TRUE, NULL, &count);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_GetSlotList", rv);
        goto out;
    }
    slots = calloc(count ? count : 1, sizeof(*slots));
    if (!slots) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    rv = m.fn->C_GetSlotList(CK_TRUE, slots, &count);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_GetSlotList", rv);
        goto out;
    }
    for (i = 0; i < count && !found; i++) {
        CK_TOKEN_INFO info;
        if (m.fn->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            !(info.flags & CKF_TOKEN_INITIALIZED)) {
            slot = slots[i];
            found = 1;
        }
    }
    if (!found) {
        st = srv_fail(err, SRV_E_HSM, "no slot with an uninitialised token");
        goto out;
    }
    pad_label(label, plabel);
    rv = m.fn->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), plabel);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_InitToken", rv);
        goto out;
    }
    /* SoftHSMv2 moves an initialised token to a new slot id: look it up again by label. */
    st = hsm_find_slot(&m, label, &slot, err);
    if (st != SRV_OK)
        goto out;
    rv = m.fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session);
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_OpenSession", rv);
        goto out;
    }
    rv = m.fn->C_Login(session, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
    if (rv != CKR_OK) {
        st = hsm_fail(err, "C_Login(SO)", rv);
        goto out;
    }
    rv = m.fn->C_InitPIN(session, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
    m.fn->C_Logout(session);
    if (rv != CKR_OK)
        st = hsm_fail(err, "C_InitPIN", rv);
out:
    if (session != CK_INVALID_HANDLE)
        m.fn->C_CloseSession(session);
    free(slots);
    hsm_module_unload(&m);
    return st;
}
