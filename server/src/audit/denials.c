/* Aggregation and rate limits for the audit records of unauthenticated refusals (denials.h). */
#include "denials.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/util.h"
#include "signum/common/buf.h"

#define BUCKETS       512
#define PEER_FACTOR   4  /* individual records per source address and window: 4 x burst */
#define GLOBAL_FACTOR 16 /* ... for all sources together */

typedef struct {
    int used;
    char peer[64];
    char code[48];
    char action[48];
    char path[SRV_AUDIT_ANON_FIELD_MAX + 4]; /* the first counted request's (truncated) */
    size_t path_length;                      /* its length before truncation */
    unsigned written;                        /* individual records in this window */
    unsigned long counted;                   /* refusals counted into the aggregate */
    int64_t first_ms, last_ms;               /* of the counted refusals */
    uint64_t window_end;                     /* monotonic us */
} bucket;

struct srv_denials {
    srv_writer *writer;
    unsigned window, burst;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int stopping;
    bucket b[BUCKETS];
    bucket overflow; /* every source once the table is full */
    unsigned global_written;
    uint64_t global_end;
};

/* Length of the longest prefix of s (at most max bytes) that ends on a character boundary. */
static size_t utf8_prefix(const char *s, size_t len, size_t max)
{
    size_t n = len < max ? len : max;
    /* Back off continuation bytes (10xxxxxx) so the cut falls before a lead byte. */
    while (n > 0 && n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static void truncate_item(cJSON *parent, cJSON *item, size_t max)
{
    size_t len = strlen(item->valuestring), keep;
    char *cut, name[96];
    if (len <= max)
        return;
    keep = utf8_prefix(item->valuestring, len, max - 3);
    cut = malloc(keep + 4);
    if (!cut)
        return;
    memcpy(cut, item->valuestring, keep);
    memcpy(cut + keep, "...", 4);
    if (item->string && parent && cJSON_IsObject(parent)) {
        snprintf(name, sizeof(name), "%s_length", item->string);
        if (!cJSON_HasObjectItem(parent, name))
            cJSON_AddNumberToObject(parent, name, (double)len);
    }
    /* cJSON_SetValuestring refuses a longer string but takes a shorter one in place. */
    cJSON_SetValuestring(item, cut);
    free(cut);
}

void srv_audit_truncate_strings(cJSON *detail, size_t max)
{
    cJSON *c, *next;
    if (!detail || max < 4)
        return;
    for (c = detail->child; c; c = next) {
        next = c->next;
        if (cJSON_IsString(c) && c->valuestring)
            truncate_item(detail, c, max);
        else if (cJSON_IsObject(c) || cJSON_IsArray(c))
            srv_audit_truncate_strings(c, max);
    }
}

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* Writes one aggregated record (outside the lock). */
static void write_aggregate(srv_denials *d, const bucket *b)
{
    cJSON *detail = cJSON_CreateObject();
    char first[32], last[32];
    srv_audit_event ev = {0, "anonymous", "audit.denials", "denied", detail};
    srv_error err;
    if (!detail)
        return;
    srv_format_time_ms(b->first_ms, first, sizeof(first));
    srv_format_time_ms(b->last_ms, last, sizeof(last));
    cJSON_AddStringToObject(detail, "peer", b->peer);
    cJSON_AddStringToObject(detail, "code", b->code);
    cJSON_AddStringToObject(detail, "action", b->action);
    cJSON_AddNumberToObject(detail, "count", (double)b->counted);
    cJSON_AddStringToObject(detail, "first", first);
    cJSON_AddStringToObject(detail, "last", last);
    cJSON_AddNumberToObject(detail, "window_seconds", d->window);
    cJSON_AddStringToObject(detail, "path", b->path);
    if (b->path_length > strlen(b->path))
        cJSON_AddNumberToObject(detail, "path_length", (double)b->path_length);
    if (srv_writer_audit(d->writer, &ev, NULL, &err) != SRV_OK)
        srv_log(SRV_LOG_ERROR, "audit", "cannot record %lu aggregated denials of %s: %s",
                b->counted, b->peer, err.message);
    cJSON_Delete(detail);
}

/* Takes the aggregates of buckets whose window ended (all with force) out of the table (lock
 * held); returns them in a malloc'd array for writing after the lock is released. */
static bucket *take_due(srv_denials *d, uint64_t now, int force, size_t *n)
{
    bucket *out = NULL;
    size_t cap = 0;
    *n = 0;
    for (size_t i = 0; i <= BUCKETS; i++) {
        bucket *b = i < BUCKETS ? &d->b[i] : &d->overflow;
        if (!b->used || (!force && now < b->window_end))
            continue;
        if (b->counted) {
            void *items = out;
            if (sgc_array_grow(&items, &cap, *n + 1, sizeof(*out), BUCKETS + 1) != SGC_OK)
                break; /* the rest waits for the next tick */
            out = items;
            out[(*n)++] = *b;
        }
        memset(b, 0, sizeof(*b));
    }
    return out;
}

static void flush(srv_denials *d, int force)
{
    size_t n;
    bucket *due;
    pthread_mutex_lock(&d->lock);
    due = take_due(d, srv_monotonic_us(), force, &n);
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < n; i++)
        write_aggregate(d, &due[i]);
    free(due);
}

/* Flushes by time: each aggregate is written within a second of its window's end. */
static void *flush_main(void *arg)
{
    srv_denials *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        srv_cond_wait_us(&d->wake, &d->lock, 1000000u);
        if (d->stopping)
            break;
        pthread_mutex_unlock(&d->lock);
        flush(d, 0);
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

srv_status srv_denials_start(srv_writer *w, unsigned window_seconds, unsigned burst,
                             srv_denials **out, srv_error *err)
{
    srv_denials *d = calloc(1, sizeof(*d));
    pthread_condattr_t attr;
    *out = NULL;
    if (!d)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    d->writer = w;
    d->window = window_seconds ? window_seconds : 1;
    d->burst = burst ? burst : 1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&d->thread, NULL, flush_main, d) != 0) {
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->wake);
        free(d);
        return srv_fail(err, SRV_E_INTERNAL, "cannot start the audit denial flusher");
    }
    *out = d;
    return SRV_OK;
}

void srv_denials_stop(srv_denials *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    flush(d, 1);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d);
}

static bucket *find(srv_denials *d, const char *peer, const char *code, uint64_t now)
{
    bucket *free_slot = NULL;
    for (size_t i = 0; i < BUCKETS; i++) {
        bucket *b = &d->b[i];
        if (!b->used) {
            if (!free_slot)
                free_slot = b;
        } else if (strcmp(b->peer, peer) == 0 && strcmp(b->code, code) == 0) {
            return b;
        }
    }
    if (!free_slot) {
        free_slot = &d->overflow;
        if (free_slot->used)
            return free_slot;
        peer = "*";
        code = "*";
    }
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = 1;
    copy(free_slot->peer, sizeof(free_slot->peer), peer);
    copy(free_slot->code, sizeof(free_slot->code), code);
    free_slot->window_end = now + (uint64_t)d->window * 1000000u;
    return free_slot;
}

static unsigned peer_written(const srv_denials *d, const char *peer)
{
    unsigned n = 0;
    for (size_t i = 0; i < BUCKETS; i++)
        if (d->b[i].used && strcmp(d->b[i].peer, peer) == 0)
            n += d->b[i].written;
    return n;
}

int srv_denials_admit(srv_denials *d, const char *peer, const char *code, const char *action,
                      const char *path)
{
    uint64_t now = srv_monotonic_us();
    bucket *b, ended;
    int individual = 0, flush_ended = 0;

    if (!d)
        return 1;
    memset(&ended, 0, sizeof(ended));
    pthread_mutex_lock(&d->lock);
    if (now >= d->global_end) {
        d->global_written = 0;
        d->global_end = now + (uint64_t)d->window * 1000000u;
    }
    b = find(d, peer ? peer : "", code ? code : "", now);
    if (now >= b->window_end) {
        /* Its window ended before the flusher came by: write its aggregate here. */
        ended = *b;
        flush_ended = ended.counted > 0;
        b->written = 0;
        b->counted = 0;
        b->window_end = now + (uint64_t)d->window * 1000000u;
    }
    if (b != &d->overflow && b->written < d->burst &&
        d->global_written < GLOBAL_FACTOR * d->burst &&
        peer_written(d, b->peer) < PEER_FACTOR * d->burst) {
        b->written++;
        d->global_written++;
        individual = 1;
    } else {
        int64_t ms = srv_now_ms();
        if (!b->counted) {
            size_t len = path ? strlen(path) : 0;
            size_t keep = utf8_prefix(path ? path : "", len, SRV_AUDIT_ANON_FIELD_MAX - 3);
            snprintf(b->path, sizeof(b->path), "%.*s%s", (int)keep, path ? path : "",
                     keep < len ? "..." : "");
            b->path_length = len;
            copy(b->action, sizeof(b->action), action);
            b->first_ms = ms;
        }
        b->counted++;
        b->last_ms = ms;
    }
    pthread_mutex_unlock(&d->lock);
    if (flush_ended)
        write_aggregate(d, &ended);
    return individual;
}
