/* Signing jobs over HTTP: POST /api/v1/sign/jobs goes through the signing service's checks
 * (signing.c: the same key lookup, policy decision and refusal record as POST /api/v1/sign)
 * and is then stored here instead of signed; GET /api/v1/sign/jobs/{id} reports its state
 * and, once done, its signatures, optionally after waiting for it (a long poll). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/util.h"
#include "../store/job_db.h"
#include "jobs.h"
#include "signing.h"

#define JOB_PAGE_MAX 1000
#define JOB_WAIT_MAX 30

typedef struct {
    api_call *c;
    api_sign_input *in;
    srv_sign_job *job;
    const uint8_t *digests;
    size_t dlen;
    const uint8_t *fp;
    const char *rule;
    cJSON *response;
    char *replayed;
} submit_ctx;

static srv_status run_submit(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    submit_ctx *x = ctx;
    api_call *c = x->c;
    long long pending = 0;
    srv_status st;
    cJSON *d;

    if ((st = api_caller_current(c, db, err)) != SRV_OK)
        return st;
    if (x->in->request_id) {
        /* A retry of the same submission (or its concurrent twin): the job it made. */
        srv_sign_request prior;
        st = srv_db_signreq_get(db, c->user.id, x->in->request_id, &prior, err);
        if (st == SRV_OK) {
            int same = memcmp(prior.fingerprint, x->fp, 32) == 0;
            if (same) {
                x->replayed = prior.response;
                prior.response = NULL;
            }
            srv_sign_request_clear(&prior);
            return same ? SRV_OK
                        : srv_fail(err, SRV_E_REQUEST_ID_CONFLICT,
                                   "request_id was already used for a different request");
        }
        if (st != SRV_E_NOT_FOUND)
            return st;
    }
    /* Bounded resource use: what one user may have waiting. */
    if ((st = srv_db_job_pending_digests(db, c->user.id, &pending, err)) != SRV_OK)
        return st;
    if (pending + (long long)x->in->ndigests > c->w->app->cfg.job_user_max_pending)
        return srv_fail(err, SRV_E_JOB_QUEUE_FULL,
                        "%lld digests of yours wait in signing jobs; %zu more would pass the "
                        "limit of %ld: wait for them to finish",
                        pending, x->in->ndigests, c->w->app->cfg.job_user_max_pending);
    if ((st = srv_db_job_insert(db, x->job, x->digests, x->in->ndigests, x->dlen, err)) != SRV_OK)
        return st;
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "job_id", x->job->id);
    cJSON_AddStringToObject(d, "key", x->job->key_name);
    cJSON_AddStringToObject(d, "mechanism", x->job->mechanism);
    cJSON_AddStringToObject(d, "hash", x->job->hash);
    cJSON_AddNumberToObject(d, "digests", (double)x->in->ndigests);
    if (x->in->request_id)
        cJSON_AddStringToObject(d, "request_id", x->in->request_id);
    if (x->rule)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "policy"), "rule", x->rule);
    api_add_request_detail(c, d);
    {
        srv_audit_event ev = {0, c->actor, "sign.job.submit", "allowed", d};
        st = srv_audit_append(db, audit, &ev, err);
    }
    cJSON_Delete(d);
    if (st != SRV_OK)
        return st;
    cJSON_AddNumberToObject(x->response, "audit_id", (double)audit->seq);
    if (x->in->request_id) {
        char *text = cJSON_PrintUnformatted(x->response);
        if (!text)
            return srv_fail(err, SRV_E_NOMEM, "out of memory");
        st = srv_db_signreq_insert(db, c->user.id, x->in->request_id, x->fp, text, err);
        free(text);
    }
    return st;
}

/* What every signature's audit record of the job says besides its digest: as a direct
 * sign request's record would (key, mechanism, client, request, machine, policy rule). */
static char *signature_detail(api_call *c, const api_sign_input *in, const srv_key *key,
                              unsigned salt, const char *rule)
{
    cJSON *d = cJSON_CreateObject();
    char *text;
    cJSON *p;
    api_sign_describe(c, d, in, key, salt);
    p = cJSON_AddObjectToObject(d, "policy");
    cJSON_AddStringToObject(p, "rule", rule ? rule : "");
    if (in->gates)
        cJSON_AddItemToObject(p, "provenance_gates", cJSON_Duplicate(in->gates, 1));
    text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return text;
}

/* The service's hand-off once policy allowed the job (api_job_submit_fn). */
static void job_submit(api_call *c, api_sign_input *in, const srv_key *key, unsigned salt,
                       const char *rule, const uint8_t fp[32])
{
    srv_sign_job job;
    submit_ctx x;
    uint8_t rnd[SRV_JOB_ID_LEN / 2], *digests = NULL;
    size_t dlen = srv_hash_len(in->hash);
    char location[64];
    srv_error err;

    memset(&job, 0, sizeof(job));
    memset(&x, 0, sizeof(x));
    if (srv_random(rnd, sizeof(rnd), &err) != SRV_OK)
        goto fail;
    srv_hex_encode(rnd, sizeof(rnd), job.id);
    job.user_id = c->user.id;
    job.key_id = key->id;
    job.machine_id = c->machine_id;
    snprintf(job.key_name, sizeof(job.key_name), "%s", key->name);
    snprintf(job.key_type, sizeof(job.key_type), "%s", srv_key_type_name(key->type));
    memcpy(job.ckaid, key->ckaid, SRV_CKAID_LEN);
    snprintf(job.mechanism, sizeof(job.mechanism), "%s", srv_mech_name(in->mech));
    snprintf(job.hash, sizeof(job.hash), "%s", srv_hash_name(in->hash));
    job.salt = salt;
    job.der_format = in->der_format;
    snprintf(job.actor, sizeof(job.actor), "%s", c->actor);
    job.created_at = srv_now();
    job.total = (long long)in->ndigests;
    if (!(job.detail = signature_detail(c, in, key, salt, rule)) ||
        !(digests = malloc(in->ndigests * dlen))) {
        srv_fail(&err, SRV_E_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < in->ndigests; i++)
        memcpy(digests + i * dlen, in->digests[i], dlen);

    snprintf(location, sizeof(location), "/api/v1/sign/jobs/%s", job.id);
    x.response = cJSON_CreateObject();
    cJSON_AddStringToObject(x.response, "job_id", job.id);
    cJSON_AddStringToObject(x.response, "status", "queued");
    cJSON_AddNumberToObject(x.response, "total", (double)job.total);
    cJSON_AddStringToObject(x.response, "key", key->name);
    cJSON_AddStringToObject(x.response, "mechanism", job.mechanism);
    cJSON_AddStringToObject(x.response, "hash", job.hash);
    if (in->request_id)
        cJSON_AddStringToObject(x.response, "request_id", in->request_id);
    cJSON_AddStringToObject(x.response, "location", location);
    x.c = c;
    x.in = in;
    x.job = &job;
    x.digests = digests;
    x.dlen = dlen;
    x.fp = fp;
    x.rule = rule;
    if (srv_writer_run(c->w->app->writer, run_submit, &x, &err) != SRV_OK) {
        cJSON_Delete(x.response);
        goto fail;
    }
    if (x.replayed) {
        c->ex->status = 202;
        c->ex->response = x.replayed;
        c->ex->response_len = strlen(x.replayed);
        cJSON_Delete(x.response);
    } else {
        srv_jobs_notify(c->w->app->jobs);
        api_reply(c, 202, x.response);
    }
    free(digests);
    srv_sign_job_clear(&job);
    return;
fail:
    free(digests);
    srv_sign_job_clear(&job);
    api_sign_refuse(c, in, &err, rule);
}

void api_sign_job_create(api_call *c)
{
    api_sign_handle(c, api_sign_parse_job, job_submit);
}

/* ---- GET /api/v1/sign/jobs/{id} ----------------------------------------------------------- */

static void add_signature(int64_t idx, const uint8_t *sig, size_t sig_len, void *ctx)
{
    cJSON *arr = ctx;
    char *b64 = sig ? srv_b64_encode(sig, sig_len) : NULL;
    (void)idx;
    cJSON_AddItemToArray(arr, b64 ? cJSON_CreateString(b64) : cJSON_CreateNull());
    free(b64);
}

static int finished(const srv_sign_job *job)
{
    return strcmp(job->status, "done") == 0 || strcmp(job->status, "failed") == 0;
}

void api_sign_job_get(api_call *c)
{
    const char *id = c->params[0], *q = c->ex->query;
    long long offset, limit, wait;
    uint64_t until;
    srv_sign_job job;
    cJSON *doc;
    srv_error err;
    srv_status st;

    memset(&job, 0, sizeof(job));
    if ((st = api_query_int(q, "offset", 0, 0, API_JOB_MAX_DIGESTS, API_JOB_MAX_DIGESTS, &offset,
                            &err)) != SRV_OK ||
        (st = api_query_int(q, "limit", JOB_PAGE_MAX, 1, 1000000, JOB_PAGE_MAX, &limit, &err)) !=
            SRV_OK ||
        (st = api_query_int(q, "wait", 0, 0, 1000000, JOB_WAIT_MAX, &wait, &err)) != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    until = srv_monotonic_us() + (uint64_t)wait * 1000000u;
    for (;;) {
        st = srv_db_job_get(c->w->db, id, &job, &err);
        /* Another user's job is not there for the caller: the same answer as an unknown id,
         * so that ids cannot be probed. Admins may read every job. */
        if (st == SRV_OK && job.user_id != c->user.id && c->user.role != SRV_ROLE_ADMIN) {
            srv_sign_job_clear(&job);
            st = srv_fail(&err, SRV_E_NOT_FOUND, "no signing job %s", id);
        }
        if (st != SRV_OK) {
            api_reply_error(c, &err);
            return;
        }
        if (finished(&job) || srv_monotonic_us() >= until)
            break;
        srv_sign_job_clear(&job);
        {
            uint64_t left = (until - srv_monotonic_us()) / 1000;
            /* Other nodes' progress is seen at the next look, within half a second. */
            srv_jobs_wait(c->w->app->jobs, left > 500 ? 500 : (unsigned)left + 1);
        }
    }
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "job_id", job.id);
    cJSON_AddStringToObject(doc, "status", job.status);
    cJSON_AddNumberToObject(doc, "total", (double)job.total);
    cJSON_AddNumberToObject(doc, "done", (double)job.done);
    cJSON_AddStringToObject(doc, "key", job.key_name);
    cJSON_AddStringToObject(doc, "mechanism", job.mechanism);
    cJSON_AddStringToObject(doc, "hash", job.hash);
    if (strcmp(job.mechanism, "ecdsa") == 0)
        cJSON_AddStringToObject(doc, "signature_format", job.der_format ? "der" : "raw");
    cJSON_AddNumberToObject(doc, "attempts", (double)job.attempts);
    cJSON_AddNumberToObject(doc, "created_at", (double)job.created_at);
    cJSON_AddNumberToObject(doc, "updated_at", (double)job.updated_at);
    if (job.finished_at)
        cJSON_AddNumberToObject(doc, "finished_at", (double)job.finished_at);
    if (strcmp(job.status, "failed") == 0) {
        cJSON *e = cJSON_AddObjectToObject(doc, "error");
        cJSON_AddStringToObject(e, "code", job.error_code);
        cJSON_AddStringToObject(e, "message", job.error);
    }
    if (strcmp(job.status, "done") == 0) {
        cJSON *arr = cJSON_AddArrayToObject(doc, "signatures");
        if (srv_db_job_signatures(c->w->db, job.id, offset, limit, add_signature, arr, &err) !=
            SRV_OK) {
            cJSON_Delete(doc);
            srv_sign_job_clear(&job);
            api_reply_error(c, &err);
            return;
        }
        cJSON_AddNumberToObject(doc, "offset", (double)offset);
        if (offset + cJSON_GetArraySize(arr) < job.total)
            cJSON_AddNumberToObject(doc, "next_offset", (double)(offset + cJSON_GetArraySize(arr)));
    }
    srv_sign_job_clear(&job);
    api_reply(c, 200, doc);
}
