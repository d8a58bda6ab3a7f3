/* Rate-limited logging: a token bucket per message class, so a flood of identical events
 * (accept() failing at the descriptor limit, thousands of slow clients timing out) writes a
 * bounded number of lines: at most `burst` at once and `per_sec` a second after that, then
 * one "suppressed K similar messages" line when the class may speak again. */
#ifndef SRV_HTTP_RATELOG_H
#define SRV_HTTP_RATELOG_H

#include <pthread.h>
#include <stdint.h>

#include "../common/log.h"

typedef struct {
    const char *subsystem;
    double per_sec, burst;
    /* state, guarded by lock (libevent may log from any thread) */
    pthread_mutex_t lock;
    double tokens;
    uint64_t last_ns;
    unsigned long suppressed;
} srv_ratelog_bucket;

#define SRV_RATELOG_INIT(subsys, rate, burst_)                                                     \
    {                                                                                              \
        (subsys), (rate), (burst_), PTHREAD_MUTEX_INITIALIZER, (burst_), 0, 0                      \
    }

void srv_ratelog(srv_ratelog_bucket *rl, srv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Lines suppressed since start, over every class (for /metrics). */
unsigned long srv_ratelog_suppressed_total(void);

#endif
