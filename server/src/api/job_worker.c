/* The signing job workers; see jobs.h. A chunk is claimed, signed and committed in three
 * steps: the claim and the commit each go through the audit writer (group commit), the HSM
 * work happens between them with no transaction open. At the commit the key's usability and
 * the owner's standing are checked again, and the signatures are kept only if the claim
 * still holds every item, so a chunk claimed again after its lease ran out is signed and
 * recorded once: by whichever claim commits. */
#include "jobs.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/b64.h"
#include "../common/log.h"
#include "../common/util.h"
#include "../hsm/sig_encoding.h"
#include "../store/job_db.h"
#include "../store/usage_db.h"
#include "internal.h"
#include "signing.h"

struct srv_jobs {
    srv_app *app;
    pthread_mutex_t mu;
    pthread_cond_t wake;     /* workers: a job was queued, or stop */
    pthread_cond_t progress; /* long polls: a chunk committed here */
    unsigned long generation;
    int stop;
    unsigned nthreads;
    pthread_t *threads;
    char node[24]; /* this process's part of every claim name */
};

typedef struct {
    srv_jobs *jobs;
    unsigned index;
    unsigned long claims;
    char claim[64];
    srv_sign_job job;
    srv_job_item items[SRV_JOB_CHUNK];
    size_t n;
    uint8_t sig[SRV_JOB_CHUNK][SRV_MAX_SIG_LEN + 16];
    size_t sig_len[SRV_JOB_CHUNK];
    srv_error hsm_err; /* why the HSM failed the chunk */
    int done_now;      /* the commit finished the job */
    int failed_now;    /* the commit failed the job */
    srv_db *peek;      /* a read connection: is anything due, before the writer is asked */
} worker;

static void deadline_in(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void srv_jobs_notify(srv_jobs *jobs)
{
    if (!jobs)
        return;
    pthread_mutex_lock(&jobs->mu);
    pthread_cond_broadcast(&jobs->wake);
    pthread_mutex_unlock(&jobs->mu);
}

void srv_jobs_wait(srv_jobs *jobs, unsigned ms)
{
    struct timespec ts;
    if (!jobs) {
        usleep(ms * 1000u);
        return;
    }
    deadline_in(&ts, ms);
    pthread_mutex_lock(&jobs->mu);
    unsigned long gen = jobs->generation;
    while (gen == jobs->generation && !jobs->stop)
        if (pthread_cond_timedwait(&jobs->progress, &jobs->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&jobs->mu);
}

static void progressed(srv_jobs *jobs)
{
    pthread_mutex_lock(&jobs->mu);
    jobs->generation++;
    pthread_cond_broadcast(&jobs->progress);
    pthread_mutex_unlock(&jobs->mu);
}

/* ---- writer jobs -------------------------------------------------------------------------- */

static srv_status run_claim(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    worker *w = ctx;
    int64_t now = srv_now();
    (void)audit;
    return srv_db_job_claim(db, w->claim, now, now + w->jobs->app->cfg.job_lease_seconds,
                            SRV_JOB_CHUNK, &w->job, w->items, &w->n, err);
}

/* A record about the job as a whole (failed, retried, done), by its owner's actor. */
static srv_status job_record(srv_db *db, srv_audit_head *audit, const srv_sign_job *job,
                             const char *action, const char *outcome, const char *code,
                             const char *message, srv_error *err)
{
    cJSON *d = cJSON_CreateObject();
    srv_audit_event ev = {0, job->actor, action, outcome, d};
    srv_status st;
    cJSON_AddStringToObject(d, "job_id", job->id);
    cJSON_AddStringToObject(d, "key", job->key_name);
    cJSON_AddNumberToObject(d, "total", (double)job->total);
    if (code)
        cJSON_AddStringToObject(d, "error", code);
    if (message)
        cJSON_AddStringToObject(d, "message", message);
    st = srv_audit_append(db, audit, &ev, err);
    cJSON_Delete(d);
    return st;
}

/* Fails the job visibly (status failed, the reason, an audit record) and gives back the
 * items this claim holds. */
static srv_status fail_job(srv_db *db, srv_audit_head *audit, worker *w, const srv_error *why,
                           srv_error *err)
{
    const char *code = srv_status_code(why->status);
    srv_status st = srv_db_job_fail(db, w->job.id, code, why->message, srv_now(), err);
    if (st == SRV_E_NOT_FOUND)
        return srv_db_job_release(db, w->claim, err); /* failed or finished meanwhile */
    if (st != SRV_OK || (st = srv_db_job_release(db, w->claim, err)) != SRV_OK)
        return st;
    w->failed_now = 1;
    return job_record(db, audit, &w->job, "sign.job.fail", "error", code, why->message, err);
}

static srv_status run_commit(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    worker *w = ctx;
    srv_sign_job *job = &w->job;
    srv_key key;
    srv_error why;
    cJSON *base = NULL;
    int64_t now = srv_now();
    srv_status st;

    w->done_now = w->failed_now = 0;
    /* The owner and the key as they are now: a suspension, revocation or disable that
     * committed since the claim stops the job here, with nothing of this chunk kept. */
    memset(&key, 0, sizeof(key));
    key.id = job->key_id;
    snprintf(key.name, sizeof(key.name), "%s", job->key_name);
    if ((st = api_principal_current(db, job->user_id, job->machine_id, &why)) != SRV_OK ||
        (st = api_sign_key_usable(db, &key, now, w->n, &why)) != SRV_OK) {
        if (st == SRV_E_DATABASE)
            return srv_fail(err, st, "%s", why.message);
        return fail_job(db, audit, w, &why, err);
    }
    if (!(base = cJSON_Parse(job->detail)))
        return srv_fail(err, SRV_E_DATABASE, "signing job %s: stored detail is not JSON", job->id);
    for (size_t i = 0; i < w->n; i++) {
        cJSON *d = cJSON_Duplicate(base, 1), *arr;
        char hex[129];
        srv_audit_event ev = {0, job->actor, "sign", "allowed", d};
        if (!d) {
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            break;
        }
        srv_hex_encode(w->items[i].digest, w->items[i].digest_len, hex);
        arr = cJSON_AddArrayToObject(d, "digests");
        cJSON_AddItemToArray(arr, cJSON_CreateString(hex));
        cJSON_AddStringToObject(d, "job_id", job->id);
        cJSON_AddNumberToObject(d, "job_index", (double)w->items[i].idx);
        st = srv_audit_append(db, audit, &ev, err);
        cJSON_Delete(d);
        /* Not this claim's any more (its lease ran out and another claim has the item):
         * the whole chunk is rolled back, records included. */
        if (st != SRV_OK || (st = srv_db_job_item_sign(db, w->items[i].id, w->claim, w->sig[i],
                                                       w->sig_len[i], audit->seq, err)) != SRV_OK)
            break;
    }
    cJSON_Delete(base);
    if (st != SRV_OK)
        return st;
    if ((st = srv_db_usage_add(db, job->user_id, job->key_id, now, (long long)w->n, err)) !=
            SRV_OK ||
        (st = srv_db_usage_record(db, now, job->key_id, job->user_id, (long long)w->n, 0, err)) !=
            SRV_OK)
        return st;
    if ((st = srv_db_key_total_add(db, job->key_id, (long long)w->n, err)) != SRV_OK) {
        if (st != SRV_E_KEY_USAGE_LIMIT)
            return st;
        /* Nothing of this chunk is kept: the job stops at the key's limit. */
        return srv_fail(err, st, "%s", err->message);
    }
    if ((st = srv_db_job_progress(db, job->id, (long long)w->n, now, err)) != SRV_OK)
        return st;
    {
        /* Read back: other claims of the job (other workers, other nodes) commit too. */
        srv_sign_job cur;
        if ((st = srv_db_job_get(db, job->id, &cur, err)) != SRV_OK)
            return st;
        w->done_now = strcmp(cur.status, "done") == 0;
        srv_sign_job_clear(&cur);
    }
    if (w->done_now)
        st = job_record(db, audit, job, "sign.job.done", "ok", NULL, NULL, err);
    return st;
}

/* After a commit the key's usage limit refused: fail the job in a transaction of its own. */
static srv_status run_fail(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    worker *w = ctx;
    return fail_job(db, audit, w, &w->hsm_err, err);
}

/* The HSM failed the chunk: give it back, retry after a back-off, or after
 * job_max_attempts consecutive failed rounds fail the job. The chunks of one job that fail
 * together (several workers, several nodes) are one round: only the first to get here
 * counts it; the others, finding the count moved since their claim, give their items back
 * to wait for the same retry. */
static srv_status run_retry(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    worker *w = ctx;
    srv_sign_job cur;
    long long attempts, counted;
    int64_t now = srv_now(), delay;
    srv_status st;

    if ((st = srv_db_job_get(db, w->job.id, &cur, err)) != SRV_OK)
        return st;
    counted = cur.attempts;
    srv_sign_job_clear(&cur);
    if (counted > w->job.attempts)
        return srv_db_job_release(db, w->claim, err);
    attempts = counted + 1;
    if (attempts >= w->jobs->app->cfg.job_max_attempts) {
        srv_error why;
        srv_fail(&why, w->hsm_err.status, "the HSM failed %lld times in a row: %s", attempts,
                 w->hsm_err.message);
        /* The job shows every attempt it made, the last one included. */
        st = srv_db_job_retry_at(db, w->job.id, attempts, now, now, err);
        if (st != SRV_OK && st != SRV_E_NOT_FOUND)
            return st;
        return fail_job(db, audit, w, &why, err);
    }
    /* 1, 2, 4, ... 60 s; the job is due once the clock's whole second is past now + delay,
     * so the wait is never shorter than delay. */
    delay = attempts >= 7 ? 60 : (int64_t)1 << (attempts - 1);
    if ((st = srv_db_job_release(db, w->claim, err)) != SRV_OK)
        return st;
    st = srv_db_job_retry_at(db, w->job.id, attempts, now + delay, now, err);
    if (st == SRV_E_NOT_FOUND)
        return SRV_OK;
    if (st == SRV_OK)
        st = job_record(db, audit, &w->job, "sign.job.retry", "error",
                        srv_status_code(w->hsm_err.status), w->hsm_err.message, err);
    return st;
}

/* ---- the worker --------------------------------------------------------------------------- */

static srv_status sign_chunk(worker *w)
{
    srv_app *app = w->jobs->app;
    srv_mech mech;
    srv_hash hash;
    srv_error *err = &w->hsm_err;

    if (!srv_mech_parse(w->job.mechanism, &mech) || !srv_hash_parse(w->job.hash, &hash))
        return srv_fail(err, SRV_E_INTERNAL, "signing job %s: unknown mechanism or hash",
                        w->job.id);
    for (size_t i = 0; i < w->n; i++) {
        uint8_t di[128], raw[SRV_MAX_SIG_LEN];
        size_t di_len = sizeof(di), raw_len = sizeof(raw);
        const uint8_t *data = w->items[i].digest;
        size_t data_len = w->items[i].digest_len;
        srv_status st;

        if (mech == SRV_MECH_RSA_PKCS1) {
            if ((st = srv_digestinfo(hash, data, data_len, di, &di_len, err)) != SRV_OK)
                return st;
            data = di;
            data_len = di_len;
        }
        if ((st = srv_hsm_sign(app->hsm, w->job.ckaid, SRV_CKAID_LEN, mech, hash,
                               (unsigned)w->job.salt, data, data_len, raw, &raw_len, err)) !=
            SRV_OK)
            return st;
        if (mech == SRV_MECH_ECDSA && w->job.der_format) {
            w->sig_len[i] = sizeof(w->sig[i]);
            st = srv_ecdsa_raw_to_der(raw, raw_len, w->sig[i], &w->sig_len[i], err);
            OPENSSL_cleanse(raw, sizeof(raw));
            if (st != SRV_OK)
                return st;
        } else {
            memcpy(w->sig[i], raw, raw_len);
            w->sig_len[i] = raw_len;
        }
    }
    return SRV_OK;
}

static int stopping(srv_jobs *jobs)
{
    int stop;
    pthread_mutex_lock(&jobs->mu);
    stop = jobs->stop;
    pthread_mutex_unlock(&jobs->mu);
    return stop;
}

/* Sleeps until woken (a job queued here, stop) or ms passed: other nodes' jobs and retries
 * that came due are found at the next look. */
static void idle(srv_jobs *jobs, unsigned ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_mutex_lock(&jobs->mu);
    if (!jobs->stop)
        pthread_cond_timedwait(&jobs->wake, &jobs->mu, &ts);
    pthread_mutex_unlock(&jobs->mu);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    srv_app *app = w->jobs->app;
    srv_error err;

    if (srv_db_open(app->cfg.database, 0, &w->peek, &err) != SRV_OK)
        srv_log(SRV_LOG_WARN, "jobs", "worker %u reads through the writer: %s", w->index,
                err.message);
    while (!stopping(w->jobs)) {
        int due = 1;
        /* An idle node asks the writer (the cluster's writer lock on PostgreSQL) for nothing. */
        if (w->peek && srv_db_job_any_due(w->peek, srv_now(), &due, &err) == SRV_OK && !due) {
            idle(w->jobs, 500);
            continue;
        }
        snprintf(w->claim, sizeof(w->claim), "%s.%u.%lu", w->jobs->node, w->index, ++w->claims);
        w->n = 0;
        if (srv_writer_run(app->writer, run_claim, w, &err) != SRV_OK) {
            srv_log(SRV_LOG_WARN, "jobs", "claim failed: %s", err.message);
            srv_sign_job_clear(&w->job);
            idle(w->jobs, 1000);
            continue;
        }
        if (w->n == 0) {
            srv_sign_job_clear(&w->job);
            idle(w->jobs, 500);
            continue;
        }
        if (sign_chunk(w) != SRV_OK) {
            srv_log(SRV_LOG_WARN, "jobs", "job %s: %s", w->job.id, w->hsm_err.message);
            if (srv_writer_run(app->writer, run_retry, w, &err) != SRV_OK)
                srv_log(SRV_LOG_WARN, "jobs", "job %s: %s", w->job.id, err.message);
        } else {
            srv_status st = srv_writer_run(app->writer, run_commit, w, &err);
            if (st == SRV_E_KEY_USAGE_LIMIT) {
                w->hsm_err = err;
                st = srv_writer_run(app->writer, run_fail, w, &err);
            }
            if (st != SRV_OK)
                /* The items stay claimed until their lease runs out; then they are claimed
                 * again (the signatures made here were never handed out). */
                srv_log(SRV_LOG_WARN, "jobs", "job %s: chunk not committed: %s", w->job.id,
                        err.message);
            else if (w->done_now)
                srv_log(SRV_LOG_INFO, "jobs", "job %s done (%lld signatures)", w->job.id,
                        w->job.total);
        }
        OPENSSL_cleanse(w->sig, sizeof(w->sig));
        srv_sign_job_clear(&w->job);
        progressed(w->jobs);
    }
    srv_db_close(w->peek);
    free(w);
    return NULL;
}

srv_status srv_jobs_start(srv_app *app, srv_jobs **out, srv_error *err)
{
    srv_jobs *jobs = calloc(1, sizeof(*jobs));
    uint8_t rnd[6];
    char hex[13];

    *out = NULL;
    if (!jobs)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    if (srv_random(rnd, sizeof(rnd), err) != SRV_OK) {
        free(jobs);
        return SRV_E_INTERNAL;
    }
    srv_hex_encode(rnd, sizeof(rnd), hex);
    snprintf(jobs->node, sizeof(jobs->node), "%s", hex);
    jobs->app = app;
    pthread_mutex_init(&jobs->mu, NULL);
    pthread_cond_init(&jobs->wake, NULL);
    pthread_cond_init(&jobs->progress, NULL);
    if (app->cfg.job_workers &&
        !(jobs->threads = calloc(app->cfg.job_workers, sizeof(*jobs->threads)))) {
        srv_jobs_stop(jobs);
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    }
    for (unsigned i = 0; i < app->cfg.job_workers; i++) {
        worker *w = calloc(1, sizeof(*w));
        if (w) {
            w->jobs = jobs;
            w->index = i;
        }
        if (!w || pthread_create(&jobs->threads[i], NULL, worker_main, w) != 0) {
            free(w);
            srv_jobs_stop(jobs);
            return srv_fail(err, SRV_E_INTERNAL, "cannot start signing job worker %u", i);
        }
        jobs->nthreads++;
    }
    *out = jobs;
    return SRV_OK;
}

void srv_jobs_stop(srv_jobs *jobs)
{
    if (!jobs)
        return;
    pthread_mutex_lock(&jobs->mu);
    jobs->stop = 1;
    pthread_cond_broadcast(&jobs->wake);
    pthread_cond_broadcast(&jobs->progress);
    pthread_mutex_unlock(&jobs->mu);
    for (unsigned i = 0; i < jobs->nthreads; i++)
        pthread_join(jobs->threads[i], NULL);
    free(jobs->threads);
    pthread_cond_destroy(&jobs->wake);
    pthread_cond_destroy(&jobs->progress);
    pthread_mutex_destroy(&jobs->mu);
    free(jobs);
}
