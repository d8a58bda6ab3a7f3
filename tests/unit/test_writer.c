/* Unit tests of the group-commit writer: concurrent jobs share commits, a failing job rolls
 * back only itself, a commit that cannot happen fails every job in it, and so does a batch
 * whose transaction SQLite rolled back by itself. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>

#include "audit/writer.h"
#include "test_util.h"

static char db_path[PATH_MAX + 32];

typedef struct {
    const char *user; /* created by the job, or NULL */
    int fail_after_insert;
} job_ctx;

static srv_status job_fn(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    job_ctx *j = ctx;
    srv_audit_event ev = {0, "test", "user.create", "ok", NULL};
    srv_status st = SRV_OK;
    if (j->user)
        st = srv_db_user_insert(db, j->user, SRV_ROLE_SIGNER, NULL, err);
    if (st == SRV_OK)
        st = srv_audit_append(db, audit, &ev, err);
    if (st == SRV_OK && j->fail_after_insert)
        st = srv_fail(err, SRV_E_INVALID_FIELD, "job refused after writing");
    return st;
}

typedef struct {
    srv_writer *w;
    int id;
    int failures;
} thread_arg;

static void *thread_main(void *arg)
{
    thread_arg *t = arg;
    for (int i = 0; i < 50; i++) {
        char name[32];
        job_ctx j = {name, 0};
        snprintf(name, sizeof(name), "u%d-%d", t->id, i);
        if (srv_writer_run(t->w, job_fn, &j, NULL) != SRV_OK)
            t->failures++;
    }
    return NULL;
}

static srv_db *fresh(void)
{
    srv_db *db;
    char wal[PATH_MAX + 40];
    remove(db_path);
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    remove(wal);
    assert_int_equal(srv_db_open(db_path, 0, &db, NULL), SRV_E_DATABASE); /* no schema yet */
    return NULL;
}

static void verify_chain(int64_t want_records)
{
    srv_db *db;
    srv_audit_report rep;
    assert_int_equal(srv_db_open(db_path, 0, &db, NULL), SRV_OK);
    assert_int_equal(srv_audit_verify(db, &rep, NULL), SRV_OK);
    assert_int_equal(rep.first_bad, 0);
    assert_int_equal(rep.records, want_records);
    srv_db_close(db);
}

static void test_concurrent_jobs_share_commits(void **state)
{
    pthread_t threads[8];
    thread_arg args[8];
    unsigned long commits = 0, jobs = 0;
    srv_writer *w;
    (void)state;

    fresh();
    assert_int_equal(srv_writer_start(db_path, &w, NULL), SRV_OK);
    for (int i = 0; i < 8; i++) {
        args[i] = (thread_arg){w, i, 0};
        pthread_create(&threads[i], NULL, thread_main, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    srv_writer_stats(w, &commits, &jobs);
    assert_int_equal(jobs, 400);
    /* With 8 writers waiting on fsync, batches must form: fewer commits than jobs. */
    assert_true(commits < jobs);
    print_message("400 jobs in %lu commits\n", commits);
    srv_writer_stop(w);
    verify_chain(400);
}

static void test_failed_job_rolls_back_alone(void **state)
{
    job_ctx good = {"good", 0}, bad = {"bad", 1};
    srv_writer *w;
    srv_db *db;
    srv_user u;
    srv_error err;
    (void)state;

    fresh();
    assert_int_equal(srv_writer_start(db_path, &w, NULL), SRV_OK);
    assert_int_equal(srv_writer_run(w, job_fn, &bad, &err), SRV_E_INVALID_FIELD);
    assert_string_equal(err.message, "job refused after writing");
    assert_int_equal(srv_writer_run(w, job_fn, &good, &err), SRV_OK);
    /* The duplicate rolls back its savepoint; the chain head must not advance. */
    assert_int_equal(srv_writer_run(w, job_fn, &good, &err), SRV_E_EXISTS);
    srv_writer_stop(w);

    assert_int_equal(srv_db_open(db_path, 0, &db, NULL), SRV_OK);
    assert_int_equal(srv_db_user_get(db, "bad", &u, NULL), SRV_E_USER_NOT_FOUND);
    assert_int_equal(srv_db_user_get(db, "good", &u, NULL), SRV_OK);
    srv_db_close(db);
    verify_chain(1);
}

static void test_commit_failure_fails_everything(void **state)
{
    job_ctx j = {"locked-out", 0};
    srv_audit_event ev = {0, "test", "probe", "ok", NULL};
    srv_writer *w;
    sqlite3 *locker;
    srv_error err;
    (void)state;

    fresh();
    assert_int_equal(srv_writer_start(db_path, &w, NULL), SRV_OK);
    assert_int_equal(srv_writer_audit(w, &ev, NULL, NULL), SRV_OK);
    /* Another process holding the write lock: the writer cannot begin or commit. */
    assert_int_equal(sqlite3_open(db_path, &locker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(locker, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(srv_writer_run(w, job_fn, &j, &err), SRV_E_AUDIT);
    assert_non_null(strstr(err.message, "audit"));
    sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(locker);
    /* Once the lock is gone the same job succeeds and the chain is whole. */
    assert_int_equal(srv_writer_run(w, job_fn, &j, &err), SRV_OK);
    srv_writer_stop(w);
    verify_chain(2);
}

/* ---- a batch whose whole transaction SQLite rolled back -------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running, open;
} gate;

/* Holds the committer role until the test opens the gate, so later jobs queue into one batch. */
static srv_status gate_fn(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    gate *g = ctx;
    srv_audit_event ev = {0, "test", "gate", "ok", NULL};
    pthread_mutex_lock(&g->lock);
    g->running = 1;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return srv_audit_append(db, audit, &ev, err);
}

/* What SQLite does on SQLITE_FULL, SQLITE_IOERR or an interrupt inside a transaction: the
 * whole transaction is rolled back, and the statement fails. */
static srv_status full_rollback_fn(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    srv_audit_event ev = {0, "test", "doomed", "ok", NULL};
    (void)ctx;
    if (srv_audit_append(db, audit, &ev, err) != SRV_OK)
        return SRV_E_DATABASE;
    srv_db_exec(db, "ROLLBACK", NULL);
    return srv_fail(err, SRV_E_DATABASE, "database or disk is full");
}

typedef struct {
    srv_writer *w;
    srv_write_fn fn;
    void *ctx;
    srv_status st;
    srv_error err;
} run_arg;

static void *run_main(void *arg)
{
    run_arg *r = arg;
    r->st = srv_writer_run(r->w, r->fn, r->ctx, &r->err);
    return NULL;
}

/* Waits (bounded) until n jobs are queued behind the committer. */
static void wait_queued(srv_writer *w, unsigned n)
{
    for (int i = 0; i < 100000 && srv_writer_queued(w) < n; i++)
        sched_yield();
    assert_int_equal(srv_writer_queued(w), n);
}

static void test_rolled_back_transaction_fails_the_batch(void **state)
{
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    job_ctx after = {"after-rollback", 0}, later = {"later", 0};
    run_arg r0, r1, r2;
    pthread_t t0, t1, t2;
    srv_writer *w;
    srv_db *db;
    srv_user u;
    srv_error err;
    (void)state;

    fresh();
    assert_int_equal(srv_writer_start(db_path, &w, NULL), SRV_OK);
    r0 = (run_arg){w, gate_fn, &g, SRV_OK, {0}};
    pthread_create(&t0, NULL, run_main, &r0);
    pthread_mutex_lock(&g.lock);
    while (!g.running)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
    /* Queued in this order behind the gate: the doomed job, then a good one. */
    r1 = (run_arg){w, full_rollback_fn, NULL, SRV_OK, {0}};
    pthread_create(&t1, NULL, run_main, &r1);
    wait_queued(w, 1);
    r2 = (run_arg){w, job_fn, &after, SRV_OK, {0}};
    pthread_create(&t2, NULL, run_main, &r2);
    wait_queued(w, 2);
    pthread_mutex_lock(&g.lock);
    g.open = 1;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);

    assert_int_equal(r0.st, SRV_OK);
    /* Both jobs of the rolled-back batch fail: the good one must not have committed on its
     * own after the rollback (as it did in autocommit mode), nor be reported done. */
    assert_int_equal(r1.st, SRV_E_AUDIT);
    assert_int_equal(r2.st, SRV_E_AUDIT);
    /* The writer goes on from the right chain head. */
    assert_int_equal(srv_writer_run(w, job_fn, &later, &err), SRV_OK);
    srv_writer_stop(w);

    assert_int_equal(srv_db_open(db_path, 0, &db, NULL), SRV_OK);
    assert_int_equal(srv_db_user_get(db, "after-rollback", &u, NULL), SRV_E_USER_NOT_FOUND);
    assert_int_equal(srv_db_user_get(db, "later", &u, NULL), SRV_OK);
    srv_db_close(db);
    verify_chain(2); /* the gate's record and the later one */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_jobs_share_commits),
        cmocka_unit_test(test_failed_job_rolls_back_alone),
        cmocka_unit_test(test_commit_failure_fails_everything),
        cmocka_unit_test(test_rolled_back_transaction_fails_the_batch),
    };
    snprintf(db_path, sizeof(db_path), "%s/writer.db", test_dir_make());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
