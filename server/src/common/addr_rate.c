/* Per-address token buckets (addr_rate.h). */
#include "addr_rate.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SLOTS         1024 /* buckets; a power of two */
#define BURST_SECONDS 2    /* a full bucket holds this many seconds of the rate */

typedef struct {
    double tokens;
    uint64_t last_us;
} bucket;

struct srv_addr_rate {
    pthread_mutex_t lock;
    double per_addr, total;
    bucket all;
    bucket slots[SLOTS];
};

srv_addr_rate *srv_addr_rate_new(double per_addr, double total)
{
    srv_addr_rate *r = calloc(1, sizeof(*r));
    uint64_t now = srv_monotonic_us();
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->per_addr = per_addr;
    r->total = total;
    r->all.tokens = total * BURST_SECONDS;
    r->all.last_us = now;
    for (size_t i = 0; i < SLOTS; i++) {
        r->slots[i].tokens = per_addr * BURST_SECONDS;
        r->slots[i].last_us = now;
    }
    return r;
}

void srv_addr_rate_free(srv_addr_rate *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void refill(bucket *b, double rate, uint64_t now)
{
    double cap = rate * BURST_SECONDS;
    if (now > b->last_us)
        b->tokens += rate * (double)(now - b->last_us) / 1e6;
    if (b->tokens > cap)
        b->tokens = cap;
    b->last_us = now;
}

/* FNV-1a over the address text. */
static size_t slot_of(const char *peer)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)peer; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (SLOTS - 1);
}

int srv_addr_rate_take(srv_addr_rate *r, const char *peer)
{
    uint64_t now = srv_monotonic_us();
    bucket *b = &r->slots[slot_of(peer ? peer : "")];
    int ok = 1;

    pthread_mutex_lock(&r->lock);
    if (r->per_addr > 0) {
        refill(b, r->per_addr, now);
        ok = b->tokens >= 1.0;
    }
    if (ok && r->total > 0) {
        refill(&r->all, r->total, now);
        ok = r->all.tokens >= 1.0;
    }
    if (ok) {
        if (r->per_addr > 0)
            b->tokens -= 1.0;
        if (r->total > 0)
            r->all.tokens -= 1.0;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}
