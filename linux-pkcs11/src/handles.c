/* Typed handles: one table for sessions and objects. A handle is (generation << 16) | (index+1),
 * so it is never 0, a closed session's handle is not valid again when its slot is reused, and a
 * lookup with the wrong kind (an object handle used as a session) fails. Never a pointer. */
#include <stdlib.h>
#include <string.h>

#include "p11.h"
#include "signum/common/buf.h"

#define MAX_ENTRIES 0xFFFF
#define GEN_MASK    0x7FFF

CK_RV p11_handle_add(p11_handle_table *t, p11_handle_kind kind, void *ptr, CK_ULONG *out)
{
    size_t i;
    for (i = 0; i < t->count; i++)
        if (t->entries[i].kind == P11_H_FREE)
            break;
    if (i == t->count) {
        if (t->count == MAX_ENTRIES)
            return CKR_HOST_MEMORY;
        if (t->count == t->cap) {
            void *items = t->entries;
            size_t old = t->cap;
            if (sgc_array_grow(&items, &t->cap, t->count + 1, sizeof(*t->entries), MAX_ENTRIES) !=
                SGC_OK)
                return CKR_HOST_MEMORY;
            t->entries = items;
            memset(t->entries + old, 0, (t->cap - old) * sizeof(*t->entries));
        }
        t->count++;
    }
    t->entries[i].gen = (uint16_t)((t->entries[i].gen + 1) & GEN_MASK);
    if (t->entries[i].gen == 0)
        t->entries[i].gen = 1;
    t->entries[i].kind = kind;
    t->entries[i].ptr = ptr;
    *out = ((CK_ULONG)t->entries[i].gen << 16) | (CK_ULONG)(i + 1);
    return CKR_OK;
}

void *p11_handle_get(const p11_handle_table *t, CK_ULONG handle, p11_handle_kind kind)
{
    size_t i = (size_t)(handle & 0xFFFF);
    CK_ULONG gen = handle >> 16;
    if (i == 0 || i > t->count || gen == 0 || gen > GEN_MASK)
        return NULL;
    i--;
    if (t->entries[i].kind != kind || t->entries[i].gen != gen)
        return NULL;
    return t->entries[i].ptr;
}

void p11_handle_remove(p11_handle_table *t, CK_ULONG handle)
{
    size_t i = (size_t)(handle & 0xFFFF);
    if (i == 0 || i > t->count || t->entries[i - 1].gen != (handle >> 16))
        return;
    t->entries[i - 1].kind = P11_H_FREE;
    t->entries[i - 1].ptr = NULL;
}

void p11_handle_table_free(p11_handle_table *t)
{
    free(t->entries);
    memset(t, 0, sizeof(*t));
}
