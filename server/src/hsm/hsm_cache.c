/* The CKA_ID -> object handle cache of the HSM layer. Below the session pool (whose recovery
 * clears it) and the key and sign operations (which fill and read it): it calls neither. */
#include <stdlib.h>
#include <string.h>

#include "hsm_internal.h"

/* ---- key handles -------------------------------------------------------------------------- */

static unsigned id_bucket(const uint8_t *id, size_t len)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ id[i]) * 16777619u;
    return h % KEY_CACHE_BUCKETS;
}

int hsm_cache_get(srv_hsm *hsm, const uint8_t *id, size_t len, CK_OBJECT_HANDLE *out)
{
    key_entry *e;
    int found = 0;
    pthread_mutex_lock(&hsm->lock);
    for (e = hsm->keys[id_bucket(id, len)]; e; e = e->next)
        if (e->id_len == len && memcmp(e->id, id, len) == 0) {
            *out = e->handle;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&hsm->lock);
    return found;
}

void hsm_cache_put(srv_hsm *hsm, const uint8_t *id, size_t len, CK_OBJECT_HANDLE handle)
{
    unsigned b = id_bucket(id, len);
    key_entry *e;
    pthread_mutex_lock(&hsm->lock);
    for (e = hsm->keys[b]; e; e = e->next)
        if (e->id_len == len && memcmp(e->id, id, len) == 0) {
            e->handle = handle;
            goto out;
        }
    e = calloc(1, sizeof(*e));
    if (e) {
        memcpy(e->id, id, len);
        e->id_len = len;
        e->handle = handle;
        e->next = hsm->keys[b];
        hsm->keys[b] = e;
    }
out:
    pthread_mutex_unlock(&hsm->lock);
}

void hsm_cache_forget(srv_hsm *hsm, const uint8_t *id, size_t len)
{
    key_entry **p, *e;
    pthread_mutex_lock(&hsm->lock);
    for (p = &hsm->keys[id_bucket(id, len)]; (e = *p); p = &e->next)
        if (e->id_len == len && memcmp(e->id, id, len) == 0) {
            *p = e->next;
            free(e);
            break;
        }
    pthread_mutex_unlock(&hsm->lock);
}

void hsm_cache_clear_locked(srv_hsm *hsm)
{
    for (unsigned i = 0; i < KEY_CACHE_BUCKETS; i++) {
        key_entry *e = hsm->keys[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
        hsm->keys[i] = NULL;
    }
}
