/* The handle table behind HCRYPTPROV, HCRYPTHASH and HCRYPTKEY. A handle is never a pointer:
 * it is CSP_HANDLE_TAG | generation << 12 | slot, so it is never 0, a forged value or one of
 * another kind is refused without being dereferenced, and a destroyed object's value stays
 * dead when its slot is reused (the slot's generation moved on). Slots are handed out round
 * robin, so a value comes back only after 4096 reuses of all 4096 slots.
 *
 * Lifetime: the table holds one reference to each live object, every lookup takes another for
 * the length of the call. Closing a handle takes it out of the table at once (a second close
 * or any later lookup fails) and drops the table's reference; the object is destroyed by
 * whoever drops the last one, so a call running on another thread never sees it freed.
 * Closing a provider context closes its hashes and keys with it (CryptReleaseContext: "all
 * existing session keys and hash objects created by using the hProv handle become invalid"). */
#include "csp.h"

#define CSP_HANDLE_TAG 0x53000000u /* 'S' in the top byte; the rest: generation and slot */
#define SLOT_BITS      12
#define GEN_MASK       0xFFFu

struct slot {
    csp_obj *obj; /* NULL when free */
    uint32_t gen; /* of the current (or last) occupant, 1..GEN_MASK */
};

/* One table per process: CryptoAPI hands a handle to whichever thread calls next. */
static SRWLOCK table_lock = SRWLOCK_INIT;
static struct slot slots[CSP_MAX_HANDLES];
static size_t live, cursor;

_Static_assert(CSP_MAX_HANDLES == 1u << SLOT_BITS, "a slot index fills SLOT_BITS");

static ULONG_PTR encode(size_t i)
{
    return (ULONG_PTR)(CSP_HANDLE_TAG | (slots[i].gen << SLOT_BITS) | (uint32_t)i);
}

/* The slot of a live handle of that type and parent, or -1. Caller holds the lock. */
static long find(ULONG_PTR h, csp_obj_type type, const csp_obj *parent)
{
    size_t i = (size_t)(h & (CSP_MAX_HANDLES - 1));
    /* encode() carries the tag and the generation: a value wider than 32 bits (on x64; on x86
     * a handle has 32), untagged or of an older occupant does not match. */
#if UINTPTR_MAX > UINT32_MAX
    if (h > UINT32_MAX)
        return -1;
#endif
    if (!slots[i].obj || encode(i) != h)
        return -1;
    if (slots[i].obj->type != type || slots[i].obj->parent != parent)
        return -1;
    return (long)i;
}

/* Takes the object out of the table and drops the table's reference; an object whose last
 * reference that was goes onto *dead (destroyed by the caller once the lock is released).
 * Caller holds the lock. */
static void unlink_slot(size_t i, csp_obj **dead)
{
    csp_obj *o = slots[i].obj;
    slots[i].obj = NULL;
    o->closed = 1;
    live--;
    if (--o->refs == 0) {
        o->next_dead = *dead;
        *dead = o;
    }
}

/* Destroys outside the lock (a context's destroy closes its agent connection), keeping the
 * caller's last error: the entry point that dropped the last reference may be failing. */
static void destroy_all(csp_obj *dead)
{
    DWORD err = GetLastError();
    while (dead) {
        csp_obj *next = dead->next_dead;
        dead->destroy(dead);
        dead = next;
    }
    SetLastError(err);
}

DWORD csp_handle_open(csp_obj *o, csp_obj_type type, csp_obj *parent, void (*destroy)(csp_obj *o),
                      ULONG_PTR *out)
{
    DWORD err = (DWORD)NTE_NO_MEMORY;
    o->type = type;
    o->parent = parent;
    o->destroy = destroy;
    o->refs = 1; /* the table's */
    o->closed = 0;
    o->next_dead = NULL;
    AcquireSRWLockExclusive(&table_lock);
    /* A call that looked its context up before another thread released it must not add a
     * child the release did not see (it would outlive the context, orphaned in the table). */
    if (parent && parent->closed)
        err = (DWORD)NTE_BAD_UID;
    else if (live < CSP_MAX_HANDLES) {
        while (slots[cursor].obj)
            cursor = (cursor + 1) % CSP_MAX_HANDLES;
        slots[cursor].obj = o;
        slots[cursor].gen = slots[cursor].gen % GEN_MASK + 1;
        *out = encode(cursor);
        cursor = (cursor + 1) % CSP_MAX_HANDLES;
        live++;
        err = ERROR_SUCCESS;
    }
    ReleaseSRWLockExclusive(&table_lock);
    if (err == (DWORD)NTE_NO_MEMORY)
        csp_debug("handle table full (%u live handles)", (unsigned)CSP_MAX_HANDLES);
    return err;
}

csp_obj *csp_handle_get(ULONG_PTR h, csp_obj_type type, const csp_obj *parent)
{
    csp_obj *o = NULL;
    long i;
    AcquireSRWLockExclusive(&table_lock);
    i = find(h, type, parent);
    if (i >= 0) {
        o = slots[i].obj;
        o->refs++;
    }
    ReleaseSRWLockExclusive(&table_lock);
    return o;
}

void csp_handle_put(csp_obj *o)
{
    csp_obj *dead = NULL;
    if (!o)
        return;
    AcquireSRWLockExclusive(&table_lock);
    if (--o->refs == 0)
        dead = o; /* closed meanwhile by another thread: this call was the last user */
    ReleaseSRWLockExclusive(&table_lock);
    destroy_all(dead);
}

int csp_handle_close(ULONG_PTR h, csp_obj_type type, const csp_obj *parent)
{
    csp_obj *dead = NULL, *o;
    long i;
    AcquireSRWLockExclusive(&table_lock);
    i = find(h, type, parent);
    if (i >= 0) {
        o = slots[i].obj;
        unlink_slot((size_t)i, &dead);
        /* A context's hashes and keys end with it; only contexts have children. */
        for (size_t j = 0; type == CSP_OBJ_PROV && j < CSP_MAX_HANDLES; j++)
            if (slots[j].obj && slots[j].obj->parent == o)
                unlink_slot(j, &dead);
    }
    ReleaseSRWLockExclusive(&table_lock);
    destroy_all(dead);
    return i >= 0 ? 0 : -1;
}

csp_prov *csp_prov_get(HCRYPTPROV h)
{
    return (csp_prov *)csp_handle_get(h, CSP_OBJ_PROV, NULL);
}

csp_hash *csp_hash_get(const csp_prov *p, HCRYPTHASH h)
{
    return p ? (csp_hash *)csp_handle_get(h, CSP_OBJ_HASH, &p->obj) : NULL;
}

csp_key *csp_key_get(const csp_prov *p, HCRYPTKEY h)
{
    return p ? (csp_key *)csp_handle_get(h, CSP_OBJ_KEY, &p->obj) : NULL;
}
