/* Group commit: one thread, one connection, one transaction for every batch of queued jobs. */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/util.h"

#define MAX_BATCH 512

typedef struct job {
    struct job *next;
    srv_write_fn fn;
    void *ctx;
    srv_error *err;
    srv_status status;
    int done;
} job;

struct srv_writer {
    srv_db *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake, finished;
    job *head, *tail;
    int stopping;
    srv_audit_head audit;
    unsigned long commits, jobs;
    /* Checkpoints; touched only by the writer thread (set up by a job). */
    const srv_audit_signer *signer;
    unsigned cp_records, cp_seconds;
    srv_checkpoint_state cp_last;
    uint64_t cp_last_us;  /* monotonic time of the last checkpoint (or of enabling them) */
    uint64_t cp_retry_us; /* after a failed checkpoint, no new attempt before this */
};

static int checkpoint_due(const srv_writer *w, uint64_t now_us)
{
    if (!w->signer || w->audit.seq <= w->cp_last.seq || now_us < w->cp_retry_us)
        return 0;
    return w->audit.seq - w->cp_last.seq >= (int64_t)w->cp_records ||
           now_us - w->cp_last_us >= (uint64_t)w->cp_seconds * 1000000u;
}

/* Signs the head inside the open transaction, in a savepoint: a failed checkpoint (HSM down)
 * never costs the batch its commit. *next is adopted by the caller after the commit. */
static int checkpoint_in_tx(srv_writer *w, const char *reason, srv_checkpoint_state *next)
{
    srv_error err;
    srv_status st = srv_db_exec(w->db, "SAVEPOINT checkpoint", &err);
    if (st == SRV_OK) {
        st = srv_checkpoint_write(w->db, w->signer, &w->audit, reason, &w->cp_last, next, &err);
        if (st != SRV_OK)
            srv_db_exec(w->db, "ROLLBACK TO checkpoint", NULL);
        srv_db_exec(w->db, "RELEASE checkpoint", NULL);
    }
    if (st != SRV_OK) {
        srv_log(SRV_LOG_ERROR, "audit", "checkpoint at record %lld failed: %s",
                (long long)w->audit.seq, err.message);
        w->cp_retry_us = srv_monotonic_us() + 5000000u;
        return 0;
    }
    return 1;
}

/* After the commit: the checkpoint is durable; remember it, here and in the HSM. */
static void checkpoint_adopt(srv_writer *w, const srv_checkpoint_state *next)
{
    srv_error err;
    w->cp_last = *next;
    w->cp_last_us = srv_monotonic_us();
    if (srv_checkpoint_mark(w->signer, next, &err) != SRV_OK)
        srv_log(SRV_LOG_ERROR, "audit", "cannot store the checkpoint mark in the HSM: %s",
                err.message);
}

/* A transaction holding only a checkpoint (timer or shutdown). */
static void checkpoint_alone(srv_writer *w, const char *reason)
{
    srv_checkpoint_state next;
    srv_error err;
    if (srv_db_exec(w->db, "BEGIN IMMEDIATE", &err) != SRV_OK) {
        srv_log(SRV_LOG_ERROR, "audit", "checkpoint: %s", err.message);
        w->cp_retry_us = srv_monotonic_us() + 5000000u;
        return;
    }
    if (!checkpoint_in_tx(w, reason, &next)) {
        srv_db_exec(w->db, "ROLLBACK", NULL);
        return;
    }
    if (srv_db_exec(w->db, "COMMIT", &err) != SRV_OK) {
        srv_db_exec(w->db, "ROLLBACK", NULL);
        srv_log(SRV_LOG_ERROR, "audit", "checkpoint commit failed: %s", err.message);
        w->cp_retry_us = srv_monotonic_us() + 5000000u;
        return;
    }
    checkpoint_adopt(w, &next);
}

/* Waits for jobs; returns 0 with the lock held when jobs or a stop are pending, 1 (lock
 * released) when a timed checkpoint is due with nothing else to do. */
static int wait_for_work(srv_writer *w)
{
    while (!w->head && !w->stopping) {
        uint64_t now = srv_monotonic_us(), due;
        struct timespec ts;
        if (!w->signer || w->audit.seq <= w->cp_last.seq) {
            pthread_cond_wait(&w->wake, &w->lock);
            continue;
        }
        due = w->cp_last_us + (uint64_t)w->cp_seconds * 1000000u;
        if (due < w->cp_retry_us)
            due = w->cp_retry_us;
        if (now >= due) {
            pthread_mutex_unlock(&w->lock);
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        due -= now;
        ts.tv_sec += (time_t)(due / 1000000u);
        ts.tv_nsec += (long)(due % 1000000u) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->wake, &w->lock, &ts);
    }
    return 0;
}

/* Runs one job in its own savepoint so a failure rolls back only that job. */
static void run_job(srv_writer *w, job *j)
{
    srv_audit_head before = w->audit;

    j->status = srv_db_exec(w->db, "SAVEPOINT job", j->err);
    if (j->status != SRV_OK)
        return;
    j->status = j->fn(w->db, &w->audit, j->ctx, j->err);
    if (j->status != SRV_OK) {
        srv_db_exec(w->db, "ROLLBACK TO job", NULL);
        w->audit = before;
    }
    srv_db_exec(w->db, "RELEASE job", NULL);
}

static void finish(srv_writer *w, job *batch)
{
    pthread_mutex_lock(&w->lock);
    for (job *j = batch; j; j = j->next)
        j->done = 1;
    pthread_cond_broadcast(&w->finished);
    pthread_mutex_unlock(&w->lock);
}

static void *writer_main(void *arg)
{
    srv_writer *w = arg;
    for (;;) {
        job *batch, *j, *last = NULL;
        srv_audit_head before;
        srv_error err;
        unsigned n = 0, ok = 0;
        int commit_ok;

        srv_checkpoint_state next;
        int checkpointed = 0;

        pthread_mutex_lock(&w->lock);
        if (wait_for_work(w)) {
            checkpoint_alone(w, "interval");
            continue;
        }
        if (!w->head && w->stopping) {
            pthread_mutex_unlock(&w->lock);
            if (w->signer && w->audit.seq > w->cp_last.seq) {
                w->cp_retry_us = 0;
                checkpoint_alone(w, "shutdown");
            }
            break;
        }
        batch = w->head;
        for (j = batch; j && n < MAX_BATCH; j = j->next, n++)
            last = j;
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->lock);

        before = w->audit;
        commit_ok = srv_db_exec(w->db, "BEGIN IMMEDIATE", &err) == SRV_OK;
        if (commit_ok) {
            for (j = batch; j; j = j->next) {
                run_job(w, j);
                ok += j->status == SRV_OK;
            }
            if (checkpoint_due(w, srv_monotonic_us()))
                checkpointed = checkpoint_in_tx(
                    w,
                    w->audit.seq - w->cp_last.seq >= (int64_t)w->cp_records ? "records"
                                                                            : "interval",
                    &next);
            commit_ok = srv_db_exec(w->db, "COMMIT", &err) == SRV_OK;
            if (!commit_ok)
                srv_db_exec(w->db, "ROLLBACK", NULL);
        }
        if (!commit_ok) {
            /* Nothing of this batch is durable: every job fails, the chain head rolls back. */
            srv_log(SRV_LOG_ERROR, "db", "group commit failed: %s", err.message);
            w->audit = before;
            for (j = batch; j; j = j->next)
                if (j->status == SRV_OK || j->status == SRV_E_DATABASE)
                    j->status = srv_fail(j->err, SRV_E_AUDIT,
                                         "the audit log could not be written; nothing was done");
        } else {
            if (checkpointed)
                checkpoint_adopt(w, &next);
            pthread_mutex_lock(&w->lock);
            w->commits++;
            w->jobs += ok;
            pthread_mutex_unlock(&w->lock);
        }
        finish(w, batch);
    }
    return NULL;
}

srv_status srv_writer_start(const char *db_path, srv_writer **out, srv_error *err)
{
    srv_writer *w = calloc(1, sizeof(*w));
    pthread_condattr_t attr;
    srv_status st;

    *out = NULL;
    if (!w)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    pthread_mutex_init(&w->lock, NULL);
    /* The checkpoint timer waits on the monotonic clock. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&w->finished, NULL);
    st = srv_db_open(db_path, 1, &w->db, err);
    if (st == SRV_OK)
        st = srv_db_audit_head(w->db, &w->audit.seq, w->audit.hash, err);
    if (st == SRV_OK && pthread_create(&w->thread, NULL, writer_main, w) != 0)
        st = srv_fail(err, SRV_E_INTERNAL, "cannot start the writer thread");
    if (st != SRV_OK) {
        srv_db_close(w->db);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->finished);
        free(w);
        return st;
    }
    *out = w;
    return SRV_OK;
}

void srv_writer_stop(srv_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    srv_db_close(w->db);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->finished);
    free(w);
}

srv_status srv_writer_run(srv_writer *w, srv_write_fn fn, void *ctx, srv_error *err)
{
    srv_error local;
    job j;

    memset(&j, 0, sizeof(j));
    j.fn = fn;
    j.ctx = ctx;
    j.err = err ? err : &local;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        return srv_fail(err, SRV_E_UNAVAILABLE, "server is shutting down");
    }
    if (w->tail)
        w->tail->next = &j;
    else
        w->head = &j;
    w->tail = &j;
    pthread_cond_signal(&w->wake);
    while (!j.done)
        pthread_cond_wait(&w->finished, &w->lock);
    pthread_mutex_unlock(&w->lock);
    return j.status;
}

typedef struct {
    const srv_audit_event *ev;
    int64_t seq;
} audit_only;

static srv_status append_only(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    audit_only *a = ctx;
    srv_status st = srv_audit_append(db, audit, a->ev, err);
    a->seq = audit->seq;
    return st;
}

srv_status srv_writer_audit(srv_writer *w, const srv_audit_event *ev, int64_t *seq, srv_error *err)
{
    audit_only a = {ev, 0};
    srv_status st = srv_writer_run(w, append_only, &a, err);
    if (st == SRV_OK && seq)
        *seq = a.seq;
    return st;
}

void srv_writer_stats(srv_writer *w, unsigned long *commits, unsigned long *jobs)
{
    pthread_mutex_lock(&w->lock);
    *commits = w->commits;
    *jobs = w->jobs;
    pthread_mutex_unlock(&w->lock);
}

typedef struct {
    srv_writer *w;
    const srv_audit_signer *signer;
    unsigned records, seconds;
} checkpoint_setup;

/* Runs on the writer thread, so the checkpoint fields need no lock. */
static srv_status enable_checkpoints(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    checkpoint_setup *c = ctx;
    srv_checkpoint_state last;
    srv_status st = srv_checkpoint_last(db, &last, err);
    (void)audit;
    if (st != SRV_OK)
        return st;
    c->w->signer = c->signer;
    c->w->cp_records = c->records ? c->records : 1;
    c->w->cp_seconds = c->seconds ? c->seconds : 1;
    c->w->cp_last = last;
    c->w->cp_last_us = srv_monotonic_us();
    c->w->cp_retry_us = 0;
    return SRV_OK;
}

srv_status srv_writer_checkpoints(srv_writer *w, const srv_audit_signer *signer, unsigned records,
                                  unsigned seconds, srv_error *err)
{
    checkpoint_setup c = {w, signer, records, seconds};
    return srv_writer_run(w, enable_checkpoints, &c, err);
}
