/* Token-bucket rate limit in front of srv_log (see ratelog.h). */
#include "ratelog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_ulong suppressed_total;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned long srv_ratelog_suppressed_total(void)
{
    return atomic_load(&suppressed_total);
}

void srv_ratelog(srv_ratelog_bucket *rl, srv_log_level level, const char *fmt, ...)
{
    char msg[512];
    unsigned long dropped = 0;
    uint64_t now = mono_ns();
    int speak = 0;
    va_list ap;

    pthread_mutex_lock(&rl->lock);
    if (rl->last_ns) {
        rl->tokens += (double)(now - rl->last_ns) / 1e9 * rl->per_sec;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
    }
    rl->last_ns = now;
    if (rl->tokens >= 1.0) {
        rl->tokens -= 1.0;
        speak = 1;
        dropped = rl->suppressed;
        rl->suppressed = 0;
    } else {
        rl->suppressed++;
        atomic_fetch_add(&suppressed_total, 1);
    }
    pthread_mutex_unlock(&rl->lock);
    if (!speak)
        return;
    if (dropped)
        srv_log(level, rl->subsystem, "suppressed %lu similar messages", dropped);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    srv_log(level, rl->subsystem, "%s", msg);
}
