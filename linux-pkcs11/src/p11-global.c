/* C_Initialize, C_Finalize, C_GetInfo and the ways in: C_GetFunctionList (2.40),
 * C_GetInterfaceList and C_GetInterface (3.0). Also the one lock, set up for whichever of the
 * four C_Initialize locking cases the application chose, and the fork rule. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11.h"

p11_global p11;

/* Serialises C_Initialize and C_Finalize themselves (they run before and after the lock
 * below exists). */
static pthread_mutex_t init_mutex = PTHREAD_MUTEX_INITIALIZER;

/* What a forked child found initialized: never touched again (the parent's other threads may
 * have been inside it at fork time), but kept reachable so leak checkers stay quiet. */
typedef struct orphan {
    struct orphan *next;
    p11_global state;
} orphan;
static orphan *inherited;

static struct {
    int app; /* the application's mutex functions, not pthreads */
    CK_CREATEMUTEX create;
    CK_DESTROYMUTEX destroy;
    CK_LOCKMUTEX lock;
    CK_UNLOCKMUTEX unlock;
    void *app_mutex;
    pthread_mutex_t os;
} lk;

void p11_lock(void)
{
    if (lk.app)
        lk.lock(lk.app_mutex);
    else
        pthread_mutex_lock(&lk.os);
}

void p11_unlock(void)
{
    if (lk.app)
        lk.unlock(lk.app_mutex);
    else
        pthread_mutex_unlock(&lk.os);
}

/* The four cases of PKCS#11 section 5.4: no arguments or no functions and no flag (we may
 * still use OS locks, and do); CKF_OS_LOCKING_OK with or without functions (OS locks); the
 * application's functions without the flag (we must use them). */
static CK_RV lock_setup(const CK_C_INITIALIZE_ARGS *a)
{
    int fns = 0;
    memset(&lk, 0, sizeof(lk));
    if (a) {
        fns = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex + !!a->UnlockMutex;
        if (fns != 0 && fns != 4)
            return CKR_ARGUMENTS_BAD;
    }
    if (fns == 4 && !(a->flags & CKF_OS_LOCKING_OK)) {
        lk.app = 1;
        lk.create = a->CreateMutex;
        lk.destroy = a->DestroyMutex;
        lk.lock = a->LockMutex;
        lk.unlock = a->UnlockMutex;
        return lk.create(&lk.app_mutex) == CKR_OK ? CKR_OK : CKR_CANT_LOCK;
    }
    return pthread_mutex_init(&lk.os, NULL) == 0 ? CKR_OK : CKR_CANT_LOCK;
}

static void lock_teardown(void)
{
    if (lk.app)
        lk.destroy(lk.app_mutex);
    else
        pthread_mutex_destroy(&lk.os);
    memset(&lk, 0, sizeof(lk));
}

CK_RV p11_enter(void)
{
    if (!p11.initialized || p11.pid != getpid())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    p11_lock();
    return CKR_OK;
}

CK_RV p11_leave(CK_RV rv, const char *fn)
{
    p11_unlock();
    if (p11_log_enabled())
        p11_debug("%s: %s", fn, p11_rv_name(rv));
    return rv;
}

void p11_pad(CK_UTF8CHAR *dst, size_t len, const char *src)
{
    size_t n = strlen(src);
    /* Never cut a UTF-8 sequence in half. */
    if (n > len) {
        n = len;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memset(dst, ' ', len);
    memcpy(dst, src, n);
}

P11_EXPORT CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
    const CK_C_INITIALIZE_ARGS *a = pInitArgs;
    sg_client_options opts = {0};
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&init_mutex);
    if (p11.initialized && p11.pid == getpid()) {
        rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        goto out;
    }
    p11_log_init();
    if (a && a->pReserved) {
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    if (p11.initialized) {
        /* A forked child: set the parent's state aside untouched and start afresh. */
        orphan *old = malloc(sizeof(*old));
        if (old) {
            old->state = p11;
            old->next = inherited;
            inherited = old;
        }
        p11_debug("C_Initialize in forked child %ld: starting afresh", (long)getpid());
        memset(&p11, 0, sizeof(p11));
    }
    rv = lock_setup(a);
    if (rv != CKR_OK)
        goto out;
    opts.application = "libsignumpkcs11";
    if (sg_client_new(&opts, &p11.client) != SG_OK) {
        p11_debug("C_Initialize: %s", sg_last_error());
        lock_teardown();
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    p11.pid = getpid();
    p11.initialized = 1;
    p11_debug("C_Initialize: %s locking, pid %ld", lk.app ? "application" : "OS", (long)p11.pid);
out:
    pthread_mutex_unlock(&init_mutex);
    if (rv != CKR_OK)
        p11_debug("C_Initialize: %s", p11_rv_name(rv));
    return rv;
}

P11_EXPORT CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
    CK_RV rv = CKR_OK;

    if (pReserved)
        return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&init_mutex);
    if (!p11.initialized || p11.pid != getpid()) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        goto out;
    }
    p11_lock();
    p11_sessions_close_all();
    p11_token_clear();
    p11_handle_table_free(&p11.handles);
    sg_client_free(p11.client);
    p11.client = NULL;
    p11.initialized = 0;
    p11_unlock();
    lock_teardown();
    memset(&p11, 0, sizeof(p11));
    p11_debug("C_Finalize: done");
out:
    pthread_mutex_unlock(&init_mutex);
    return rv;
}

static void fill_info(CK_INFO_PTR info, CK_BYTE major, CK_BYTE minor)
{
    memset(info, 0, sizeof(*info));
    info->cryptokiVersion.major = major;
    info->cryptokiVersion.minor = minor;
    p11_pad(info->manufacturerID, sizeof(info->manufacturerID), "Signum");
    p11_pad(info->libraryDescription, sizeof(info->libraryDescription), "Signum remote signing");
    info->libraryVersion.major = SIGNUM_VERSION_MAJOR;
    info->libraryVersion.minor = SIGNUM_VERSION_MINOR;
}

static CK_RV get_info(CK_INFO_PTR info, CK_BYTE major, CK_BYTE minor)
{
    if (!p11.initialized || p11.pid != getpid())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (!info)
        return CKR_ARGUMENTS_BAD;
    fill_info(info, major, minor);
    return CKR_OK;
}

/* Reached through the 2.40 list and by name: a 2.40 application sees a 2.40 library. */
P11_EXPORT CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
    return get_info(pInfo, 2, 40);
}

/* Reached through the 3.0 interface only. */
static CK_RV get_info_30(CK_INFO_PTR pInfo)
{
    return get_info(pInfo, 3, 0);
}

#define P11_240_ENTRIES                                                                            \
    C_Initialize, C_Finalize, C_GetInfo_slot, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,     \
        C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN,  \
        C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState,  \
        C_SetOperationState, C_Login, C_Logout, C_CreateObject, C_CopyObject, C_DestroyObject,     \
        C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit,              \
        C_FindObjects, C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate,              \
        C_EncryptFinal, C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit,   \
        C_Digest, C_DigestUpdate, C_DigestKey, C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate,    \
        C_SignFinal, C_SignRecoverInit, C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate,     \
        C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover, C_DigestEncryptUpdate,                \
        C_DecryptDigestUpdate, C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey,          \
        C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom,    \
        C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent

#define C_GetInfo_slot C_GetInfo
static CK_FUNCTION_LIST list_240 = {{2, 40}, P11_240_ENTRIES};
#undef C_GetInfo_slot

#define C_GetInfo_slot get_info_30
static CK_FUNCTION_LIST_3_0 list_30 = {
    {3, 0},
    P11_240_ENTRIES,
    C_GetInterfaceList,
    C_GetInterface,
    C_LoginUser,
    C_SessionCancel,
    C_MessageEncryptInit,
    C_EncryptMessage,
    C_EncryptMessageBegin,
    C_EncryptMessageNext,
    C_MessageEncryptFinal,
    C_MessageDecryptInit,
    C_DecryptMessage,
    C_DecryptMessageBegin,
    C_DecryptMessageNext,
    C_MessageDecryptFinal,
    C_MessageSignInit,
    C_SignMessage,
    C_SignMessageBegin,
    C_SignMessageNext,
    C_MessageSignFinal,
    C_MessageVerifyInit,
    C_VerifyMessage,
    C_VerifyMessageBegin,
    C_VerifyMessageNext,
    C_MessageVerifyFinal,
};
#undef C_GetInfo_slot

_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_WaitForSlotEvent) ==
                   offsetof(CK_FUNCTION_LIST, C_WaitForSlotEvent),
               "the 3.0 list must begin with the 2.40 list");

static CK_CHAR interface_name[] = "PKCS 11";

/* The default (first) is 3.0; a caller that asks for 2.40 gets the 2.40 list. Neither claims
 * CKF_INTERFACE_FORK_SAFE: a forked child must call C_Initialize again. */
static CK_INTERFACE interfaces[] = {
    {interface_name, &list_30, 0},
    {interface_name, &list_240, 0},
};

#define N_INTERFACES (sizeof(interfaces) / sizeof(interfaces[0]))

P11_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (!ppFunctionList)
        return CKR_ARGUMENTS_BAD;
    *ppFunctionList = &list_240;
    return CKR_OK;
}

P11_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    if (!pInterfacesList) {
        *pulCount = N_INTERFACES;
        return CKR_OK;
    }
    if (*pulCount < N_INTERFACES) {
        *pulCount = N_INTERFACES;
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(pInterfacesList, interfaces, sizeof(interfaces));
    *pulCount = N_INTERFACES;
    return CKR_OK;
}

P11_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                                CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
    if (!ppInterface)
        return CKR_ARGUMENTS_BAD;
    if (pInterfaceName && strcmp((const char *)pInterfaceName, (const char *)interface_name) != 0)
        return CKR_ARGUMENTS_BAD;
    for (size_t i = 0; i < N_INTERFACES; i++) {
        const CK_VERSION *v = interfaces[i].pFunctionList;
        if (pVersion && (v->major != pVersion->major || v->minor != pVersion->minor))
            continue;
        if ((interfaces[i].flags & flags) != flags)
            continue;
        *ppInterface = &interfaces[i];
        return CKR_OK;
    }
    return CKR_ARGUMENTS_BAD;
}
