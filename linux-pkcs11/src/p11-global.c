/* C_Initialize, C_Finalize, C_GetInfo and the fork rule. The global state and its lock are
 * state.c's; the ways in (C_GetFunctionList, the 3.0 interfaces) are p11-interface.c's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11.h"

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
    rv = p11_lock_setup(a);
    if (rv != CKR_OK)
        goto out;
    opts.application = "libsignumpkcs11";
    if (sg_client_new(&opts, &p11.client) != SG_OK) {
        p11_debug("C_Initialize: %s", sg_last_error());
        p11_lock_teardown();
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    p11.pid = getpid();
    p11.initialized = 1;
    p11_debug("C_Initialize: %s locking, pid %ld", p11_lock_is_app() ? "application" : "OS",
              (long)p11.pid);
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
    p11_lock_teardown();
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

CK_RV p11_get_info(CK_INFO_PTR info, CK_BYTE major, CK_BYTE minor)
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
    return p11_get_info(pInfo, 2, 40);
}
