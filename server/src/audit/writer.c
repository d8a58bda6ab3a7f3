/* Group commit: one thread, one connection, one transaction for every batch of queued jobs. */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/phase.h"
#include "../common/util.h"
#include "../store/syncvfs.h"

#define MAX_BATCH 512

typedef struct job {
    struct job *next;
    srv_write_fn fn;
    void *ctx;
    srv_error *err;
    srv_status status;
    srv_writer_timing *timing; /* optional */
    int done;
} job;

struct srv_writer {
    srv_db *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake, finished;
    job *head, *tail;
    int stopping;
    /* One thread at a time is the committer (busy): it alone uses db and the fields below
     * the lock's; taking and giving up the role goes through the lock. */
    int busy;
    uint64_t timer_due; /* next timed checkpoint (monotonic us), 0 if none; under the lock */
    unsigned long commits, jobs;
    srv_writer_commit_state last; /* under the lock */
    srv_audit_head audit;
    /* Checkpoints; touched only by the committer (set up by a job). */
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
    srv_status st = srv_db_tx(w->db, SRV_TX_SAVEPOINT_CHECKPOINT, &err);
    if (st == SRV_OK) {
        st = srv_checkpoint_write(w->db, w->signer, &w->audit, reason, &w->cp_last, next, &err);
        if (st != SRV_OK)
            srv_db_tx(w->db, SRV_TX_ROLLBACK_TO_CHECKPOINT, NULL);
        srv_db_tx(w->db, SRV_TX_RELEASE_CHECKPOINT, NULL);
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

/* On a database other nodes write too (PostgreSQL), the chain's head and its last checkpoint
 * are read again once the writer lock is held: the nodes' records form one chain in one
 * order, and a checkpoint another node signed restarts this node's interval, so the cluster
 * signs about one per interval. */
static srv_status refresh_shared(srv_writer *w, srv_error *err)
{
    srv_checkpoint_state cp;
    srv_status st;
    if (!srv_db_shared(w->db))
        return SRV_OK;
    if ((st = srv_db_audit_head(w->db, &w->audit.seq, w->audit.hash, err)) != SRV_OK ||
        !w->signer || (st = srv_checkpoint_last(w->db, &cp, err)) != SRV_OK)
        return st;
    if (cp.seq != w->cp_last.seq) {
        w->cp_last = cp;
        w->cp_last_us = srv_monotonic_us();
    }
    return SRV_OK;
}

/* A transaction holding only a checkpoint (timer or shutdown). */
static void checkpoint_alone(srv_writer *w, const char *reason)
{
    srv_checkpoint_state next;
    srv_error err;
    if (srv_db_tx(w->db, SRV_TX_BEGIN_IMMEDIATE, &err) != SRV_OK ||
        refresh_shared(w, &err) != SRV_OK) {
        srv_db_tx(w->db, SRV_TX_ROLLBACK, NULL);
        srv_log(SRV_LOG_ERROR, "audit", "checkpoint: %s", err.message);
        w->cp_retry_us = srv_monotonic_us() + 5000000u;
        return;
    }
    /* Another node may have signed the head meanwhile. */
    if (srv_db_shared(w->db) &&
        (w->audit.seq <= w->cp_last.seq ||
         (strcmp(reason, "shutdown") != 0 && !checkpoint_due(w, srv_monotonic_us())))) {
        srv_db_tx(w->db, SRV_TX_ROLLBACK, NULL);
        return;
    }
    if (!checkpoint_in_tx(w, reason, &next)) {
        srv_db_tx(w->db, SRV_TX_ROLLBACK, NULL);
        return;
    }
    if (srv_db_tx(w->db, SRV_TX_COMMIT, &err) != SRV_OK) {
        srv_db_tx(w->db, SRV_TX_ROLLBACK, NULL);
        srv_log(SRV_LOG_ERROR, "audit", "checkpoint commit failed: %s", err.message);
        w->cp_retry_us = srv_monotonic_us() + 5000000u;
        return;
    }
    checkpoint_adopt(w, &next);
}

/* When the next timed checkpoint is due (monotonic us), 0 if none; by the committer only. */
static uint64_t next_timer(const srv_writer *w)
{
    uint64_t due;
    if (!w->signer || w->audit.seq <= w->cp_last.seq)
        return 0;
    due = w->cp_last_us + (uint64_t)w->cp_seconds * 1000000u;
    return due < w->cp_retry_us ? w->cp_retry_us : due;
}

/* Runs one job in its own savepoint so a failure rolls back only that job. */
static void run_job(srv_writer *w, job *j)
{
    srv_audit_head before = w->audit;

    if (j->timing)
        j->timing->started = srv_phase_now();
    j->status = srv_db_tx(w->db, SRV_TX_SAVEPOINT_JOB, j->err);
    if (j->status != SRV_OK)
        return;
    j->status = j->fn(w->db, &w->audit, j->ctx, j->err);
    if (j->timing)
        j->timing->ran = srv_phase_now();
    if (j->status != SRV_OK) {
        srv_db_tx(w->db, SRV_TX_ROLLBACK_TO_JOB, NULL);
        w->audit = before;
    }
    srv_db_tx(w->db, SRV_TX_RELEASE_JOB, NULL);
}

/* One group transaction for a batch of jobs (a due checkpoint rides along); by the committer,
 * without the lock. Returns how many jobs committed, -1 if the commit failed. */
static int commit_batch(srv_writer *w, job *batch)
{
    srv_audit_head before = w->audit;
    srv_checkpoint_state next;
    srv_error err;
    uint64_t sync_before, now;
    unsigned ok = 0;
    int checkpointed = 0, commit_ok;
    job *j;

    commit_ok = srv_db_tx(w->db, SRV_TX_BEGIN_IMMEDIATE, &err) == SRV_OK;
    if (commit_ok && refresh_shared(w, &err) != SRV_OK) {
        srv_db_tx(w->db, SRV_TX_ROLLBACK, NULL);
        commit_ok = 0;
    }
    if (commit_ok) {
        for (j = batch; j; j = j->next) {
            run_job(w, j);
            ok += j->status == SRV_OK;
            /* A failed statement may have made SQLite roll the whole transaction back (disk
             * full, I/O error, interrupt): the jobs before are gone, and the jobs after would
             * each commit on their own, outside the group. Stop; the batch fails whole. */
            if (!srv_db_in_transaction(w->db)) {
                commit_ok = 0;
                srv_fail(&err, SRV_E_DATABASE, "SQLite rolled back the group transaction");
                break;
            }
        }
        if (commit_ok && checkpoint_due(w, srv_monotonic_us()))
            checkpointed = checkpoint_in_tx(
                w, w->audit.seq - w->cp_last.seq >= (int64_t)w->cp_records ? "records" : "interval",
                &next);
        if (commit_ok && !srv_db_in_transaction(w->db)) {
            commit_ok = 0;
            srv_fail(&err, SRV_E_DATABASE, "SQLite rolled back the group transaction");
        }
        sync_before = srv_syncvfs_thread_ns();
        if (commit_ok)
            commit_ok = srv_db_tx(w->db, SRV_TX_COMMIT, &err) == SRV_OK;
        if (!commit_ok && srv_db_in_transaction(w->db))
            srv_db_tx(w->db, SRV_TX_ROLLBACK, NULL);
        now = srv_phase_now();
        for (j = batch; j; j = j->next)
            if (j->timing) {
                j->timing->committed = now;
                j->timing->sync_ns = srv_syncvfs_thread_ns() - sync_before;
            }
    }
    if (!commit_ok) {
        /* Nothing of this batch is durable: every job fails, the chain head rolls back. */
        srv_log(SRV_LOG_ERROR, "db", "group commit failed: %s", err.message);
        w->audit = before;
        for (j = batch; j; j = j->next)
            if (j->status == SRV_OK || j->status == SRV_E_DATABASE)
                j->status = srv_fail(j->err, SRV_E_AUDIT,
                                     "the audit log could not be written; nothing was done");
        return -1;
    }
    if (checkpointed)
        checkpoint_adopt(w, &next);
    return (int)ok;
}

/* Gives up the committer role (lock held): wakes the waiting callers and the timer. */
static void release_committer(srv_writer *w, uint64_t timer)
{
    w->busy = 0;
    pthread_cond_broadcast(&w->finished);
    /* The timer thread sleeps until the due time it knows: wake it only for a new one. */
    if (timer != w->timer_due) {
        w->timer_due = timer;
        pthread_cond_signal(&w->wake);
    }
}

/* The writer thread only keeps time: it signs a checkpoint when one falls due with nothing
 * else committing, and the last one at stop. Jobs are committed by the callers themselves
 * (srv_writer_run), so a lone request costs no thread hand-off. */
static void *writer_main(void *arg)
{
    srv_writer *w = arg;

    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        uint64_t now = srv_monotonic_us(), timer;
        if (!w->timer_due) {
            pthread_cond_wait(&w->wake, &w->lock);
            continue;
        }
        if (now < w->timer_due) {
            srv_cond_wait_us(&w->wake, &w->lock, w->timer_due - now);
            continue;
        }
        while (w->busy)
            pthread_cond_wait(&w->finished, &w->lock);
        w->busy = 1;
        pthread_mutex_unlock(&w->lock);
        if (checkpoint_due(w, srv_monotonic_us()))
            checkpoint_alone(w, "interval");
        timer = next_timer(w);
        pthread_mutex_lock(&w->lock);
        release_committer(w, timer);
    }
    /* Stopping: no new jobs are taken; let the queued ones and the committer finish. */
    while (w->busy || w->head)
        pthread_cond_wait(&w->finished, &w->lock);
    w->busy = 1;
    pthread_mutex_unlock(&w->lock);
    if (w->signer && w->audit.seq > w->cp_last.seq) {
        w->cp_retry_us = 0;
        checkpoint_alone(w, "shutdown");
    }
    return NULL;
}

srv_status srv_writer_start(const char *db_path, srv_writer **out, srv_error *err)
{
    return srv_writer_start_sync(db_path, 1, out, err);
}

srv_status srv_writer_start_sync(const char *db_path, int full_sync, srv_writer **out,
                                 srv_error *err)
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
    w->last.ok = 1;
    st = srv_db_open(db_path, 1, &w->db, err);
    /* Outside any transaction: SQLite refuses to change it inside one. */
    if (st == SRV_OK && !full_sync && !srv_db_shared(w->db))
        st = srv_db_exec(w->db, "PRAGMA synchronous = NORMAL", err);
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
    return srv_writer_run_timed(w, fn, ctx, NULL, err);
}

srv_status srv_writer_run_timed(srv_writer *w, srv_write_fn fn, void *ctx,
                                srv_writer_timing *timing, srv_error *err)
{
    srv_error local;
    job j;

    memset(&j, 0, sizeof(j));
    j.fn = fn;
    j.ctx = ctx;
    j.err = err ? err : &local;
    j.timing = timing;
    if (timing) {
        memset(timing, 0, sizeof(*timing));
        timing->queued = srv_phase_now();
    }
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
    /* Leader/follower group commit: with nobody committing, this caller commits everything
     * queued (up to MAX_BATCH, its own job among them); else it waits, and jobs queued meanwhile
     * share the next commit, led by the first of their callers to wake. */
    while (!j.done) {
        job *batch, *last = NULL, *k;
        unsigned n = 0;
        uint64_t timer;
        int ok;
        if (w->busy || !w->head) {
            pthread_cond_wait(&w->finished, &w->lock);
            continue;
        }
        w->busy = 1;
        batch = w->head;
        for (k = batch; k && n < MAX_BATCH; k = k->next, n++)
            last = k;
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->lock);
        ok = commit_batch(w, batch);
        timer = next_timer(w);
        pthread_mutex_lock(&w->lock);
        if (ok >= 0) {
            w->commits++;
            w->jobs += (unsigned)ok;
        }
        w->last.failures = ok >= 0 ? 0 : w->last.failures + 1;
        w->last.ok = ok >= 0;
        w->last.at_us = srv_monotonic_us();
        for (k = batch; k; k = k->next)
            k->done = 1;
        release_committer(w, timer);
    }
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

unsigned srv_writer_queued(srv_writer *w)
{
    unsigned n = 0;
    pthread_mutex_lock(&w->lock);
    for (const job *j = w->head; j; j = j->next)
        n++;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void srv_writer_stats(srv_writer *w, unsigned long *commits, unsigned long *jobs)
{
    pthread_mutex_lock(&w->lock);
    *commits = w->commits;
    *jobs = w->jobs;
    pthread_mutex_unlock(&w->lock);
}

void srv_writer_last_commit(srv_writer *w, srv_writer_commit_state *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->last;
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
