/* Queries of asynchronous signing jobs; see job_db.h. The claim is written per engine: on
 * PostgreSQL the items are locked with FOR UPDATE SKIP LOCKED, so that nodes claiming at
 * once never wait on (nor take) each other's items; SQLite's single writer serialises
 * claims by itself. */
#include "job_db.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "db_internal.h"

enum {
    S_INSERT,
    S_ITEMS_LITE,
    S_ITEMS_PG,
    S_GET,
    S_PENDING,
    S_DUE,
    S_CLAIM_LITE,
    S_CLAIM_PG,
    S_RUNNING,
    S_ITEM_SIGN,
    S_RELEASE,
    S_PROGRESS,
    S_RETRY,
    S_FAIL,
    S_SIGS,
    S_COUNT
};
_Static_assert(SRV_DB_SLOT_JOB + S_COUNT <= SRV_DB_SLOT_TSA, "job_db.c passes the slots");

#define JOB_COLUMNS                                                                                \
    "id, user_id, key_id, coalesce(machine_id, 0), key_name, key_type, ckaid, mechanism, hash,"    \
    " salt, der_format, actor, detail, status, total, done, attempts, next_attempt_at,"            \
    " created_at, updated_at, coalesce(finished_at, 0), coalesce(error_code, ''),"                 \
    " coalesce(error, '')"
#define CLAIMABLE "signature IS NULL AND (lease_until IS NULL OR lease_until < ?4)"

static const char *const sql[S_COUNT] = {
    [S_INSERT] = "INSERT INTO sign_jobs(id, user_id, key_id, key_name, key_type, ckaid, mechanism,"
                 " hash, salt, der_format, actor, machine_id, detail, total, created_at,"
                 " updated_at, status) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                 " ?13, ?14, ?15, ?15, 'queued')",
    /* One statement for all digests: they arrive as one blob, cut in SQL. */
    [S_ITEMS_LITE] = "INSERT INTO sign_job_items(job_id, idx, digest) WITH RECURSIVE s(g) AS"
                     " (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g + 1 < ?4)"
                     " SELECT ?1, g, substr(?2, g * ?3 + 1, ?3) FROM s",
    [S_ITEMS_PG] = "INSERT INTO sign_job_items(job_id, idx, digest) SELECT ?1, g,"
                   " substring(?2 FROM CAST(g * ?3 + 1 AS INTEGER) FOR CAST(?3 AS INTEGER))"
                   " FROM generate_series(0, CAST(?4 AS INTEGER) - 1) AS g",
    [S_GET] = "SELECT " JOB_COLUMNS " FROM sign_jobs WHERE id = ?1",
    [S_PENDING] = "SELECT coalesce(sum(total - done), 0) FROM sign_jobs WHERE user_id = ?1"
                  " AND status IN ('queued', 'running')",
    [S_DUE] = "SELECT " JOB_COLUMNS " FROM sign_jobs j WHERE status IN ('queued', 'running')"
              " AND next_attempt_at < ?1 AND EXISTS (SELECT 1 FROM sign_job_items i"
              " WHERE i.job_id = j.id AND i.signature IS NULL"
              " AND (i.lease_until IS NULL OR i.lease_until < ?1))"
              " ORDER BY created_at, id LIMIT 1",
    [S_CLAIM_LITE] = "UPDATE sign_job_items SET claimed_by = ?2, lease_until = ?3 WHERE id IN"
                     " (SELECT id FROM sign_job_items WHERE job_id = ?1 AND " CLAIMABLE
                     " ORDER BY idx LIMIT ?5) RETURNING id, idx, digest",
    [S_CLAIM_PG] = "UPDATE sign_job_items SET claimed_by = ?2, lease_until = ?3 WHERE id IN"
                   " (SELECT id FROM sign_job_items WHERE job_id = ?1 AND " CLAIMABLE
                   " ORDER BY idx LIMIT ?5 FOR UPDATE SKIP LOCKED) RETURNING id, idx, digest",
    [S_RUNNING] = "UPDATE sign_jobs SET status = 'running', updated_at = ?2 WHERE id = ?1"
                  " AND status = 'queued'",
    [S_ITEM_SIGN] = "UPDATE sign_job_items SET signature = ?3, audit_seq = ?4, claimed_by = NULL,"
                    " lease_until = NULL WHERE id = ?1 AND claimed_by = ?2 AND signature IS NULL",
    [S_RELEASE] = "UPDATE sign_job_items SET claimed_by = NULL, lease_until = NULL"
                  " WHERE claimed_by = ?1 AND signature IS NULL",
    [S_PROGRESS] = "UPDATE sign_jobs SET done = done + ?2, attempts = 0, updated_at = ?3,"
                   " status = CASE WHEN done + ?2 >= total THEN 'done' ELSE 'running' END,"
                   " finished_at = CASE WHEN done + ?2 >= total THEN ?3 ELSE NULL END"
                   " WHERE id = ?1 AND status IN ('queued', 'running')",
    [S_RETRY] = "UPDATE sign_jobs SET attempts = ?2, next_attempt_at = ?3, updated_at = ?4"
                " WHERE id = ?1 AND status IN ('queued', 'running')",
    [S_FAIL] = "UPDATE sign_jobs SET status = 'failed', error_code = ?2, error = ?3,"
               " updated_at = ?4, finished_at = ?4 WHERE id = ?1"
               " AND status IN ('queued', 'running')",
    [S_SIGS] = "SELECT idx, signature FROM sign_job_items WHERE job_id = ?1 AND idx >= ?2"
               " ORDER BY idx LIMIT ?3",
};

static srv_stmt *stmt(srv_db *db, int q, srv_error *err)
{
    return srv_db_stmt_ext(db, SRV_DB_SLOT_JOB + q, sql[q], err);
}

static int pg(const srv_db *db)
{
    return db->engine == SRV_ENGINE_POSTGRESQL;
}

void srv_sign_job_clear(srv_sign_job *job)
{
    free(job->detail);
    job->detail = NULL;
}

srv_status srv_db_job_insert(srv_db *db, const srv_sign_job *job, const uint8_t *digests, size_t n,
                             size_t dlen, srv_error *err)
{
    srv_stmt *s = stmt(db, S_INSERT, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, job->id, -1);
    srv_bind_int64(s, 2, job->user_id);
    srv_bind_int64(s, 3, job->key_id);
    srv_bind_text(s, 4, job->key_name, -1);
    srv_bind_text(s, 5, job->key_type, -1);
    srv_bind_blob(s, 6, job->ckaid, SRV_CKAID_LEN);
    srv_bind_text(s, 7, job->mechanism, -1);
    srv_bind_text(s, 8, job->hash, -1);
    srv_bind_int64(s, 9, job->salt);
    srv_bind_int(s, 10, job->der_format);
    srv_bind_text(s, 11, job->actor, -1);
    if (job->machine_id)
        srv_bind_int64(s, 12, job->machine_id);
    else
        srv_bind_null(s, 12);
    srv_bind_text(s, 13, job->detail, -1);
    srv_bind_int64(s, 14, (int64_t)n);
    srv_bind_int64(s, 15, job->created_at);
    if ((st = srv_db_step_done(db, s, err, "sign job")) != SRV_OK)
        return st;
    if (!(s = stmt(db, pg(db) ? S_ITEMS_PG : S_ITEMS_LITE, err)))
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, job->id, -1);
    srv_bind_blob(s, 2, digests, (int)(n * dlen));
    srv_bind_int64(s, 3, (int64_t)dlen);
    srv_bind_int64(s, 4, (int64_t)n);
    if ((st = srv_db_step_done(db, s, err, "sign job items")) != SRV_OK)
        return st;
    if ((size_t)srv_db_changes(db) != n)
        return srv_fail(err, SRV_E_DATABASE, "sign job items: %d of %zu stored", srv_db_changes(db),
                        n);
    return SRV_OK;
}

static void read_job(srv_stmt *s, srv_sign_job *j)
{
    const void *ck;
    memset(j, 0, sizeof(*j));
    srv_db_copy_text(j->id, sizeof(j->id), srv_col_text(s, 0));
    j->user_id = srv_col_int64(s, 1);
    j->key_id = srv_col_int64(s, 2);
    j->machine_id = srv_col_int64(s, 3);
    srv_db_copy_text(j->key_name, sizeof(j->key_name), srv_col_text(s, 4));
    srv_db_copy_text(j->key_type, sizeof(j->key_type), srv_col_text(s, 5));
    ck = srv_col_blob(s, 6);
    if (ck && srv_col_bytes(s, 6) == SRV_CKAID_LEN)
        memcpy(j->ckaid, ck, SRV_CKAID_LEN);
    srv_db_copy_text(j->mechanism, sizeof(j->mechanism), srv_col_text(s, 7));
    srv_db_copy_text(j->hash, sizeof(j->hash), srv_col_text(s, 8));
    j->salt = srv_col_int64(s, 9);
    j->der_format = srv_col_int(s, 10);
    srv_db_copy_text(j->actor, sizeof(j->actor), srv_col_text(s, 11));
    j->detail = strdup(srv_col_text(s, 12) ? (const char *)srv_col_text(s, 12) : "{}");
    srv_db_copy_text(j->status, sizeof(j->status), srv_col_text(s, 13));
    j->total = srv_col_int64(s, 14);
    j->done = srv_col_int64(s, 15);
    j->attempts = srv_col_int64(s, 16);
    j->next_attempt_at = srv_col_int64(s, 17);
    j->created_at = srv_col_int64(s, 18);
    j->updated_at = srv_col_int64(s, 19);
    j->finished_at = srv_col_int64(s, 20);
    srv_db_copy_text(j->error_code, sizeof(j->error_code), srv_col_text(s, 21));
    srv_db_copy_text(j->error, sizeof(j->error), srv_col_text(s, 22));
}

srv_status srv_db_job_get(srv_db *db, const char *id, srv_sign_job *out, srv_error *err)
{
    srv_stmt *s = stmt(db, S_GET, err);
    srv_status st = SRV_OK;
    int rc;
    memset(out, 0, sizeof(*out));
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW) {
        read_job(s, out);
        if (!out->detail)
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
    } else if (rc == SRV_DB_DONE) {
        st = srv_fail(err, SRV_E_NOT_FOUND, "no signing job %s", id);
    } else {
        st = srv_db_fail(db, err, "sign job");
    }
    srv_reset(s);
    return st;
}

srv_status srv_db_job_pending_digests(srv_db *db, int64_t user_id, long long *n, srv_error *err)
{
    srv_stmt *s = stmt(db, S_PENDING, err);
    int rc;
    *n = 0;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, user_id);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        *n = srv_col_int64(s, 0);
    srv_reset(s);
    return rc == SRV_DB_ROW ? SRV_OK : srv_db_fail(db, err, "pending job digests");
}

srv_status srv_db_job_any_due(srv_db *db, int64_t now, int *due, srv_error *err)
{
    srv_stmt *s = stmt(db, S_DUE, err);
    int rc;
    *due = 0;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, now);
    rc = srv_step(s);
    srv_reset(s);
    if (rc != SRV_DB_ROW && rc != SRV_DB_DONE)
        return srv_db_fail(db, err, "due sign job");
    *due = rc == SRV_DB_ROW;
    return SRV_OK;
}

srv_status srv_db_job_claim(srv_db *db, const char *claim, int64_t now, int64_t lease_until,
                            size_t max, srv_sign_job *job, srv_job_item *items, size_t *n,
                            srv_error *err)
{
    srv_stmt *s = stmt(db, S_DUE, err);
    srv_status st = SRV_OK;
    int rc;

    *n = 0;
    memset(job, 0, sizeof(*job));
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, now);
    rc = srv_step(s);
    if (rc == SRV_DB_ROW)
        read_job(s, job);
    srv_reset(s);
    if (rc == SRV_DB_DONE)
        return SRV_OK;
    if (rc != SRV_DB_ROW)
        return srv_db_fail(db, err, "due sign job");
    if (!job->detail)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    if (!(s = stmt(db, pg(db) ? S_CLAIM_PG : S_CLAIM_LITE, err)))
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, job->id, -1);
    srv_bind_text(s, 2, claim, -1);
    srv_bind_int64(s, 3, lease_until);
    srv_bind_int64(s, 4, now);
    srv_bind_int64(s, 5, (int64_t)max);
    while ((rc = srv_step(s)) == SRV_DB_ROW && *n < max) {
        srv_job_item *it = &items[*n];
        int len = srv_col_bytes(s, 2);
        it->id = srv_col_int64(s, 0);
        it->idx = srv_col_int64(s, 1);
        if (len <= 0 || len > (int)sizeof(it->digest)) {
            st = srv_fail(err, SRV_E_DATABASE, "sign job %s item %lld: bad digest", job->id,
                          (long long)it->idx);
            break;
        }
        memcpy(it->digest, srv_col_blob(s, 2), (size_t)len);
        it->digest_len = (size_t)len;
        (*n)++;
    }
    if (st == SRV_OK && rc != SRV_DB_ROW && rc != SRV_DB_DONE)
        st = srv_db_fail(db, err, "claim sign job items");
    srv_reset(s);
    if (st != SRV_OK || *n == 0 || strcmp(job->status, "queued") != 0)
        return st;
    if (!(s = stmt(db, S_RUNNING, err)))
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, job->id, -1);
    srv_bind_int64(s, 2, now);
    return srv_db_step_done(db, s, err, "sign job running");
}

srv_status srv_db_job_item_sign(srv_db *db, int64_t item_id, const char *claim, const uint8_t *sig,
                                size_t sig_len, int64_t audit_seq, srv_error *err)
{
    srv_stmt *s = stmt(db, S_ITEM_SIGN, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_int64(s, 1, item_id);
    srv_bind_text(s, 2, claim, -1);
    srv_bind_blob(s, 3, sig, (int)sig_len);
    srv_bind_int64(s, 4, audit_seq);
    if ((st = srv_db_step_done(db, s, err, "sign job item")) != SRV_OK)
        return st;
    return srv_db_changes(db) == 1
               ? SRV_OK
               : srv_fail(err, SRV_E_NOT_FOUND, "sign job item %lld is no longer this claim's",
                          (long long)item_id);
}

srv_status srv_db_job_release(srv_db *db, const char *claim, srv_error *err)
{
    srv_stmt *s = stmt(db, S_RELEASE, err);
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, claim, -1);
    return srv_db_step_done(db, s, err, "release sign job items");
}

static srv_status changed_one(srv_db *db, const char *id, srv_error *err)
{
    return srv_db_changes(db) == 1
               ? SRV_OK
               : srv_fail(err, SRV_E_NOT_FOUND, "signing job %s is no longer open", id);
}

srv_status srv_db_job_progress(srv_db *db, const char *id, long long n, int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_PROGRESS, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    srv_bind_int64(s, 2, n);
    srv_bind_int64(s, 3, now);
    if ((st = srv_db_step_done(db, s, err, "sign job progress")) != SRV_OK)
        return st;
    return changed_one(db, id, err);
}

srv_status srv_db_job_retry_at(srv_db *db, const char *id, long long attempts, int64_t at,
                               int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_RETRY, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    srv_bind_int64(s, 2, attempts);
    srv_bind_int64(s, 3, at);
    srv_bind_int64(s, 4, now);
    if ((st = srv_db_step_done(db, s, err, "sign job retry")) != SRV_OK)
        return st;
    return changed_one(db, id, err);
}

srv_status srv_db_job_fail(srv_db *db, const char *id, const char *code, const char *reason,
                           int64_t now, srv_error *err)
{
    srv_stmt *s = stmt(db, S_FAIL, err);
    srv_status st;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    srv_bind_text(s, 2, code, -1);
    srv_bind_text(s, 3, reason, -1);
    srv_bind_int64(s, 4, now);
    if ((st = srv_db_step_done(db, s, err, "sign job failure")) != SRV_OK)
        return st;
    return changed_one(db, id, err);
}

srv_status srv_db_job_signatures(srv_db *db, const char *id, long long offset, long long limit,
                                 srv_job_sig_cb cb, void *ctx, srv_error *err)
{
    srv_stmt *s = stmt(db, S_SIGS, err);
    int rc;
    if (!s)
        return SRV_E_DATABASE;
    srv_bind_text(s, 1, id, -1);
    srv_bind_int64(s, 2, offset);
    srv_bind_int64(s, 3, limit);
    while ((rc = srv_step(s)) == SRV_DB_ROW)
        cb(srv_col_int64(s, 0), srv_col_blob(s, 1), (size_t)srv_col_bytes(s, 1), ctx);
    srv_reset(s);
    return rc == SRV_DB_DONE ? SRV_OK : srv_db_fail(db, err, "sign job signatures");
}
