/* Typed handles: every NCRYPT_PROV_HANDLE, NCRYPT_KEY_HANDLE and EnumKeys state is a pointer to
 * an object in this table of live objects. A handle is never dereferenced before it is found
 * here with the right magic, so a stale, freed or forged handle gets NTE_INVALID_HANDLE
 * instead of a crash; the reference taken by a lookup keeps the object alive for the call. */
#include "ksp.h"

static SRWLOCK table_lock = SRWLOCK_INIT;
static ksp_obj *live; /* every registered object not yet destroyed */

void ksp_obj_register(ksp_obj *o, ksp_magic magic, void (*destroy)(ksp_obj *o))
{
    o->magic = magic;
    o->refs = 1; /* the handle's own */
    o->closed = 0;
    o->destroy = destroy;
    AcquireSRWLockExclusive(&table_lock);
    o->next = live;
    live = o;
    ReleaseSRWLockExclusive(&table_lock);
}

/* Caller holds the lock. */
static ksp_obj *find(ULONG_PTR handle, ksp_magic magic)
{
    for (ksp_obj *o = live; o; o = o->next)
        if ((ULONG_PTR)o == handle)
            return !o->closed && o->magic == magic ? o : NULL;
    return NULL;
}

/* Caller holds the lock; returns 1 when the object left the table and must be destroyed. */
static int drop(ksp_obj *o)
{
    if (--o->refs > 0)
        return 0;
    for (ksp_obj **pp = &live; *pp; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    o->magic = 0;
    return 1;
}

ksp_obj *ksp_obj_acquire(ULONG_PTR handle, ksp_magic magic)
{
    ksp_obj *o;
    if (!handle)
        return NULL;
    AcquireSRWLockExclusive(&table_lock);
    o = find(handle, magic);
    if (o)
        o->refs++;
    ReleaseSRWLockExclusive(&table_lock);
    return o;
}

void ksp_obj_release(ksp_obj *o)
{
    int gone;
    AcquireSRWLockExclusive(&table_lock);
    gone = drop(o);
    ReleaseSRWLockExclusive(&table_lock);
    if (gone)
        o->destroy(o);
}

int ksp_obj_close(ULONG_PTR handle, ksp_magic magic)
{
    ksp_obj *o;
    int gone = 0;
    if (!handle)
        return -1;
    AcquireSRWLockExclusive(&table_lock);
    o = find(handle, magic);
    if (o) {
        o->closed = 1;
        gone = drop(o);
    }
    ReleaseSRWLockExclusive(&table_lock);
    if (gone)
        o->destroy(o);
    return o ? 0 : -1;
}

ksp_prov *ksp_prov_get(NCRYPT_PROV_HANDLE h)
{
    ksp_obj *o = ksp_obj_acquire(h, KSP_MAGIC_PROV);
    return o ? (ksp_prov *)o : NULL;
}

ksp_key *ksp_key_get(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk)
{
    ksp_obj *o = ksp_obj_acquire(hk, KSP_MAGIC_KEY);
    ksp_key *k = o ? (ksp_key *)o : NULL;
    if (k && (NCRYPT_PROV_HANDLE)k->prov != hp) { /* another provider's key */
        ksp_obj_release(o);
        return NULL;
    }
    return k;
}
