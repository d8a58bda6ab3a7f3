/* Per-request phase timers for the sign path, exported at /metrics as Prometheus summaries
 * (signum_phase_seconds_sum/_count{phase="..."}). Each timed request carries its own array of
 * nanoseconds through the layers and adds it to the process totals once, when its reply is
 * handed to TLS: the hot path costs a few clock_gettime(CLOCK_MONOTONIC) calls and relaxed
 * atomic adds, no locks. Only requests that hand out a signature are timed, so every request
 * phase counts exactly one per signing request. */
#ifndef SRV_PHASE_H
#define SRV_PHASE_H

#include <stdint.h>
#include <time.h>

typedef enum {
    SRV_PHASE_HTTP_READ,      /* loop thread: copy the parsed request out of evhttp */
    SRV_PHASE_QUEUE_WAIT,     /* dispatch queue: queued -> a worker takes it */
    SRV_PHASE_AUTH,           /* bearer token check (read-connection lookups) */
    SRV_PHASE_PARSE,          /* JSON parse and field checks, base64 digest decode */
    SRV_PHASE_POLICY,         /* key lookup, policy decision, idempotency lookup */
    SRV_PHASE_AUDIT_BUILD,    /* audit detail and response objects, before the HSM */
    SRV_PHASE_HSM_SIGN,       /* srv_hsm_sign (session pool, C_SignInit, C_Sign), base64 */
    SRV_PHASE_WRITER_WAIT,    /* writer queue: queued -> this job runs in a transaction */
    SRV_PHASE_AUDIT_WRITE,    /* the job: quota re-check, hash chain, INSERTs */
    SRV_PHASE_DB_COMMIT,      /* job done -> COMMIT returned (other jobs of the batch, SQLite) */
    SRV_PHASE_DB_SYNC,        /* of which fsync/fdatasync (the batch's commit) */
    SRV_PHASE_WRITER_WAKE,    /* commit done -> the worker runs again */
    SRV_PHASE_RESPONSE_BUILD, /* response JSON text */
    SRV_PHASE_REPLY_WAIT,     /* worker done -> the loop thread sends (event_base_once) */
    SRV_PHASE_REPLY_SEND,     /* evhttp_send_reply: headers, body into the TLS buffer */
    SRV_PHASE_TOTAL,          /* request copied in -> reply handed to TLS (sum of the above
                                 plus the small untimed gaps between them) */
    SRV_PHASE_REQUEST_COUNT,  /* phases above are per request; below, per event */
    SRV_PHASE_TLS_HANDSHAKE = SRV_PHASE_REQUEST_COUNT, /* per new connection: accept -> done */
    SRV_PHASE_FSYNC, /* every fsync/fdatasync of the writer's connection (per call) */
    SRV_PHASE_COUNT
} srv_phase;

/* Monotonic nanoseconds. */
static inline uint64_t srv_phase_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Adds ns[0..SRV_PHASE_REQUEST_COUNT) as one request. */
void srv_phase_add_request(const uint64_t ns[SRV_PHASE_REQUEST_COUNT]);
/* Adds one event of a per-event phase. */
void srv_phase_add(srv_phase phase, uint64_t ns);
/* The Prometheus text of every phase, malloc'd (NULL when out of memory). */
char *srv_phase_metrics(void);

#endif
