/* Timed-sync VFS: each file wraps the default VFS's file; every method forwards, xSync is
 * timed into a thread-local total and the per-call phase totals (common/phase.h). */
#include "syncvfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <string.h>

#include "../common/phase.h"

typedef struct {
    sqlite3_file base;  /* our methods */
    sqlite3_file *real; /* the default VFS's file, allocated just after this struct */
} timed_file;

static sqlite3_vfs timed_vfs;
static sqlite3_vfs *real_vfs;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered;
static _Thread_local uint64_t thread_sync_ns;

#define REAL(f) (((timed_file *)(f))->real)

static int t_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
    f->pMethods = NULL;
    return rc;
}
static int t_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int t_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int t_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int t_sync(sqlite3_file *f, int flags)
{
    uint64_t t0 = srv_phase_now(), dt;
    int rc = REAL(f)->pMethods->xSync(REAL(f), flags);
    dt = srv_phase_now() - t0;
    thread_sync_ns += dt;
    srv_phase_add(SRV_PHASE_FSYNC, dt);
    return rc;
}
static int t_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int t_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}
static int t_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}
static int t_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int t_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int t_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int t_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int t_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}
static int t_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void t_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int t_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int t_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}
static int t_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* One table per io_methods version the real file has, so SQLite sees the same abilities. */
static sqlite3_io_methods methods[4];

static int t_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    timed_file *t = (timed_file *)f;
    int rc, version;
    (void)vfs;
    t->real = (sqlite3_file *)(t + 1);
    memset(t->real, 0, (size_t)real_vfs->szOsFile);
    f->pMethods = NULL;
    rc = real_vfs->xOpen(real_vfs, name, t->real, flags, out_flags);
    if (t->real->pMethods) {
        version = t->real->pMethods->iVersion;
        f->pMethods = &methods[version < 0 ? 0 : version > 3 ? 3 : version];
    }
    return rc;
}

/* The rest of the VFS forwards to the real one. */
static int t_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}
static int t_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int t_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}
static void *t_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return real_vfs->xDlOpen(real_vfs, name);
}
static void t_dlerror(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    real_vfs->xDlError(real_vfs, n, out);
}
static void (*t_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return real_vfs->xDlSym(real_vfs, h, sym);
}
static void t_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    real_vfs->xDlClose(real_vfs, h);
}
static int t_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xRandomness(real_vfs, n, out);
}
static int t_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return real_vfs->xSleep(real_vfs, us);
}
static int t_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return real_vfs->xCurrentTime(real_vfs, out);
}
static int t_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}
static int t_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void setup(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs || real_vfs->iVersion < 2 || !real_vfs->xCurrentTimeInt64)
        return;
    for (int v = 0; v < 4; v++) {
        sqlite3_io_methods *m = &methods[v];
        m->iVersion = v;
        m->xClose = t_close;
        m->xRead = t_read;
        m->xWrite = t_write;
        m->xTruncate = t_truncate;
        m->xSync = t_sync;
        m->xFileSize = t_file_size;
        m->xLock = t_lock;
        m->xUnlock = t_unlock;
        m->xCheckReservedLock = t_check_reserved;
        m->xFileControl = t_file_control;
        m->xSectorSize = t_sector_size;
        m->xDeviceCharacteristics = t_device_characteristics;
        if (v >= 2) {
            m->xShmMap = t_shm_map;
            m->xShmLock = t_shm_lock;
            m->xShmBarrier = t_shm_barrier;
            m->xShmUnmap = t_shm_unmap;
        }
        if (v >= 3) {
            m->xFetch = t_fetch;
            m->xUnfetch = t_unfetch;
        }
    }
    timed_vfs.iVersion = 2;
    timed_vfs.szOsFile = (int)sizeof(timed_file) + real_vfs->szOsFile;
    timed_vfs.mxPathname = real_vfs->mxPathname;
    timed_vfs.zName = "signum-timed-sync";
    timed_vfs.xOpen = t_open;
    timed_vfs.xDelete = t_delete;
    timed_vfs.xAccess = t_access;
    timed_vfs.xFullPathname = t_full_pathname;
    timed_vfs.xDlOpen = t_dlopen;
    timed_vfs.xDlError = t_dlerror;
    timed_vfs.xDlSym = t_dlsym;
    timed_vfs.xDlClose = t_dlclose;
    timed_vfs.xRandomness = t_randomness;
    timed_vfs.xSleep = t_sleep;
    timed_vfs.xCurrentTime = t_current_time;
    timed_vfs.xGetLastError = t_last_error;
    timed_vfs.xCurrentTimeInt64 = t_current_time64;
    registered = sqlite3_vfs_register(&timed_vfs, 0) == SQLITE_OK;
}

const char *srv_syncvfs_name(void)
{
    pthread_once(&once, setup);
    return registered ? timed_vfs.zName : NULL;
}

uint64_t srv_syncvfs_thread_ns(void)
{
    return thread_sync_ns;
}
