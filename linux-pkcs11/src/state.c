/* The module's global state, its one lock (set up for whichever of the four C_Initialize
 * locking cases the application chose) and the entry check every C_* function starts with.
 * Below every p11-*.c file: it calls none of them. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "p11.h"

p11_global p11;

static struct {
    int app; /* the application's mutex functions, not pthreads */
    CK_CREATEMUTEX create;
    CK_DESTROYMUTEX destroy;
    CK_LOCKMUTEX lock;
    CK_UNLOCKMUTEX unlock;
    void *app_mutex;
    pthread_mutex_t os;
} lk;

int p11_lock_is_app(void)
{
    return lk.app;
}

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
CK_RV p11_lock_setup(const CK_C_INITIALIZE_ARGS *a)
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

void p11_lock_teardown(void)
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
