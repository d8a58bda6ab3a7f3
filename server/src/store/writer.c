/* Group commit: one thread, one connection, one transaction for every batch of queued jobs. */
#include "writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

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
};

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

        pthread_mutex_lock(&w->lock);
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        if (!w->head && w->stopping) {
            pthread_mutex_unlock(&w->lock);
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
    srv_status st;

    *out = NULL;
    if (!w)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
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
