/* Asynchronous signing jobs (api/sign_jobs.c, api/job_worker.c): a job row with what every
 * signature of it is made with, and one item per digest. Workers on any node claim items in
 * chunks for a lease; an item whose lease ran out (its node died) is claimed again, and a
 * signature is stored only by the claim that still holds the item. */
#ifndef SRV_JOB_DB_H
#define SRV_JOB_DB_H

#include "db.h"

#define SRV_JOB_ID_LEN 32 /* hex characters */

typedef struct {
    char id[SRV_JOB_ID_LEN + 1];
    int64_t user_id, key_id, machine_id;
    char key_name[SRV_NAME_MAX + 1];
    char key_type[32];
    uint8_t ckaid[SRV_CKAID_LEN];
    char mechanism[16], hash[16];
    long long salt;
    int der_format;
    char actor[160];
    char *detail; /* JSON object text every signature's audit record starts from; owned */
    char status[16];
    long long total, done, attempts;
    int64_t next_attempt_at, created_at, updated_at, finished_at;
    char error_code[48];
    char error[256];
} srv_sign_job;

void srv_sign_job_clear(srv_sign_job *job);

/* Stores job (status queued) and its n digests, each dlen bytes, back to back. */
srv_status srv_db_job_insert(srv_db *db, const srv_sign_job *job, const uint8_t *digests, size_t n,
                             size_t dlen, srv_error *err);
/* SRV_E_NOT_FOUND if there is no such job. */
srv_status srv_db_job_get(srv_db *db, const char *id, srv_sign_job *out, srv_error *err);
/* Digests of the user's queued and running jobs not signed yet. */
srv_status srv_db_job_pending_digests(srv_db *db, int64_t user_id, long long *n, srv_error *err);

typedef struct {
    int64_t id; /* the item's row */
    int64_t idx;
    uint8_t digest[64];
    size_t digest_len;
} srv_job_item;

/* Claims up to max unsigned items of the oldest job that is due (queued or running, not
 * waiting for a retry) whose items are free or whose lease expired before now: they are
 * claim's until lease_until. *n 0 when there is nothing to do; else *job is the job. */
/* Whether some job has work due now (a read: no claim, no write). */
srv_status srv_db_job_any_due(srv_db *db, int64_t now, int *due, srv_error *err);
srv_status srv_db_job_claim(srv_db *db, const char *claim, int64_t now, int64_t lease_until,
                            size_t max, srv_sign_job *job, srv_job_item *items, size_t *n,
                            srv_error *err);
/* Stores an item's signature and the seq of its audit record, if claim still holds it:
 * SRV_E_NOT_FOUND otherwise (it was claimed again, or signed). */
srv_status srv_db_job_item_sign(srv_db *db, int64_t item_id, const char *claim, const uint8_t *sig,
                                size_t sig_len, int64_t audit_seq, srv_error *err);
/* Gives back the unsigned items claim holds. */
srv_status srv_db_job_release(srv_db *db, const char *claim, srv_error *err);
/* Counts n more signatures of a running job (done once all are), one more failed attempt
 * (attempts, next_attempt_at), or fails it with a reason. SRV_E_NOT_FOUND when the job is no
 * longer queued or running. */
srv_status srv_db_job_progress(srv_db *db, const char *id, long long n, int64_t now,
                               srv_error *err);
srv_status srv_db_job_retry_at(srv_db *db, const char *id, long long attempts, int64_t at,
                               int64_t now, srv_error *err);
srv_status srv_db_job_fail(srv_db *db, const char *id, const char *code, const char *reason,
                           int64_t now, srv_error *err);

/* The signatures of items offset .. offset+limit-1 in order (unsigned items give NULL). */
typedef void (*srv_job_sig_cb)(int64_t idx, const uint8_t *sig, size_t sig_len, void *ctx);
srv_status srv_db_job_signatures(srv_db *db, const char *id, long long offset, long long limit,
                                 srv_job_sig_cb cb, void *ctx, srv_error *err);

#endif
