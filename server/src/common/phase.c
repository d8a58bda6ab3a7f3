/* Process-wide phase totals (see phase.h): relaxed atomics, read only by /metrics. */
#include "phase.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_ullong sums[SRV_PHASE_COUNT], counts[SRV_PHASE_COUNT];

static const char *const names[SRV_PHASE_COUNT] = {
    [SRV_PHASE_HTTP_READ] = "http_read",
    [SRV_PHASE_QUEUE_WAIT] = "queue_wait",
    [SRV_PHASE_AUTH] = "auth",
    [SRV_PHASE_PARSE] = "parse",
    [SRV_PHASE_POLICY] = "policy",
    [SRV_PHASE_AUDIT_BUILD] = "audit_build",
    [SRV_PHASE_HSM_SIGN] = "hsm_sign",
    [SRV_PHASE_WRITER_WAIT] = "writer_wait",
    [SRV_PHASE_AUDIT_WRITE] = "audit_write",
    [SRV_PHASE_DB_COMMIT] = "db_commit",
    [SRV_PHASE_DB_SYNC] = "db_sync",
    [SRV_PHASE_WRITER_WAKE] = "writer_wake",
    [SRV_PHASE_RESPONSE_BUILD] = "response_build",
    [SRV_PHASE_REPLY_WAIT] = "reply_wait",
    [SRV_PHASE_REPLY_SEND] = "reply_send",
    [SRV_PHASE_TOTAL] = "total",
    [SRV_PHASE_TLS_HANDSHAKE] = "tls_handshake",
    [SRV_PHASE_FSYNC] = "fsync",
};

void srv_phase_add_request(const uint64_t ns[SRV_PHASE_REQUEST_COUNT])
{
    for (int i = 0; i < SRV_PHASE_REQUEST_COUNT; i++) {
        atomic_fetch_add_explicit(&sums[i], ns[i], memory_order_relaxed);
        atomic_fetch_add_explicit(&counts[i], 1, memory_order_relaxed);
    }
}

void srv_phase_add(srv_phase phase, uint64_t ns)
{
    if ((unsigned)phase >= SRV_PHASE_COUNT)
        return;
    atomic_fetch_add_explicit(&sums[phase], ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&counts[phase], 1, memory_order_relaxed);
}

char *srv_phase_metrics(void)
{
    /* Per phase: two lines of at most ~90 characters. */
    size_t cap = 256 + (size_t)SRV_PHASE_COUNT * 200, len = 0;
    char *out = malloc(cap);
    int n;

    if (!out)
        return NULL;
    n = snprintf(out, cap,
                 "# HELP signum_phase_seconds Server time per phase of signing requests that "
                 "handed out a signature (count: requests), of TLS handshakes and of fsyncs.\n"
                 "# TYPE signum_phase_seconds summary\n");
    len = (size_t)n;
    for (int i = 0; i < SRV_PHASE_COUNT && n >= 0 && len < cap; i++) {
        unsigned long long s = atomic_load_explicit(&sums[i], memory_order_relaxed);
        unsigned long long c = atomic_load_explicit(&counts[i], memory_order_relaxed);
        n = snprintf(out + len, cap - len,
                     "signum_phase_seconds_sum{phase=\"%s\"} %llu.%09llu\n"
                     "signum_phase_seconds_count{phase=\"%s\"} %llu\n",
                     names[i], s / 1000000000ull, s % 1000000000ull, names[i], c);
        len += n > 0 ? (size_t)n : 0;
    }
    if (n < 0 || len >= cap) {
        free(out);
        return NULL;
    }
    return out;
}
