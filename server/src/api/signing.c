/* The signing service: one path to a signature for direct and approved requests (see
 * signing.h). A signature is made in the HSM, then its audit record and the idempotency
 * record commit together, and only then does the response leave: a signature whose record
 * cannot be written is discarded. */
#include "signing.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ca/ca.h"
#include "../common/b64.h"
#include "../common/util.h"
#include "../store/key_db.h"
#include "../store/usage_db.h"

/* A fingerprint of everything that determines the result, to spot a reused request id. */
static void fingerprint(const api_sign_input *in, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 32;
    char head[160];
    int len = snprintf(head, sizeof(head), "%s|%s|%s|%lld|%d|%d|%zu|", in->key_name,
                       srv_mech_name(in->mech), srv_hash_name(in->hash), in->salt_len,
                       in->der_format, in->batch, in->ndigests);
    memset(out, 0, 32);
    if (!md)
        return;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, head, (size_t)len);
    /* A job and a sync batch of the same digests are different requests. */
    if (in->async)
        EVP_DigestUpdate(md, "job|", 4);
    for (size_t i = 0; i < in->ndigests; i++)
        EVP_DigestUpdate(md, in->digests[i], srv_hash_len(in->hash));
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

/* Checks the mechanism against the key and returns the PSS salt length to use. */
static srv_status check_mechanism(const srv_key *key, api_sign_input *in, unsigned *salt,
                                  srv_error *err)
{
    int rsa = srv_key_type_is_rsa(key->type);
    *salt = 0;
    if (rsa && in->mech == SRV_MECH_ECDSA)
        return srv_fail(err, SRV_E_MECHANISM, "key \"%s\" is %s; ecdsa needs an EC key", key->name,
                        srv_key_type_name(key->type));
    if (!rsa && in->mech != SRV_MECH_ECDSA)
        return srv_fail(err, SRV_E_MECHANISM, "key \"%s\" is %s; use mechanism ecdsa", key->name,
                        srv_key_type_name(key->type));
    if (in->mech == SRV_MECH_RSA_PSS) {
        size_t em_len = srv_key_type_sig_len(key->type), h = srv_hash_len(in->hash);
        long long max = (long long)em_len - (long long)h - 2;
        long long s = in->salt_len < 0 ? (long long)h : in->salt_len;
        if (s > max)
            return srv_fail(err, SRV_E_INVALID_FIELD, "salt_length %lld exceeds %lld for this key",
                            s, max);
        *salt = (unsigned)s;
    }
    return SRV_OK;
}

typedef struct {
    api_call *c;
    api_sign_input *in;
    const srv_key *key;
    uint8_t fp[32];
    cJSON *detail;
    const char *outcome;
    cJSON *response;              /* built here, so it can name the audit record */
    char *replayed;               /* set when a concurrent twin already finished */
    srv_policy_eval *policy;      /* the allowing decision (quotas re-checked at commit) */
    const srv_approval *approval; /* set when signing an approved request */
} sign_job;

static cJSON *make_detail(api_call *c, const api_sign_input *in, const srv_key *key, unsigned salt)
{
    cJSON *d = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(d, "digests");
    for (size_t i = 0; i < in->ndigests; i++) {
        char hex[129];
        srv_hex_encode(in->digests[i], srv_hash_len(in->hash), hex);
        cJSON_AddItemToArray(arr, cJSON_CreateString(hex));
    }
    api_sign_describe(c, d, in, key, salt);
    return d;
}

void api_sign_describe(api_call *c, cJSON *d, const api_sign_input *in, const srv_key *key,
                       unsigned salt)
{
    cJSON_AddStringToObject(d, "key", key ? key->name : in->key_name);
    if (key)
        cJSON_AddStringToObject(d, "key_type", srv_key_type_name(key->type));
    cJSON_AddStringToObject(d, "mechanism", srv_mech_name(in->mech));
    cJSON_AddStringToObject(d, "hash", srv_hash_name(in->hash));
    if (in->mech == SRV_MECH_RSA_PSS)
        cJSON_AddNumberToObject(d, "salt_length", salt);
    if (in->request_id)
        cJSON_AddStringToObject(d, "request_id", in->request_id);
    if (in->client)
        cJSON_AddItemToObject(d, "client", cJSON_Duplicate(in->client, 1));
    srv_prov_describe(&in->prov, d);
    api_add_request_detail(c, d);
}

/* The answer stored for request_id of user: *answer NULL when there is none, the stored
 * answer (malloc'd) when fp matches the request it answered, request_id_conflict when the id
 * was used for another request. The one idempotency check of direct, approved and pending
 * requests, at their first look and again where commits are serialised. */
static srv_status prior_answer(srv_db *db, int64_t user_id, const char *request_id,
                               const uint8_t fp[32], char **answer, srv_error *err)
{
    srv_sign_request prior;
    srv_status st = srv_db_signreq_get(db, user_id, request_id, &prior, err);
    *answer = NULL;
    if (st == SRV_E_NOT_FOUND)
        return SRV_OK;
    if (st != SRV_OK)
        return st;
    if (memcmp(prior.fingerprint, fp, 32) != 0) {
        srv_sign_request_clear(&prior);
        return srv_fail(err, SRV_E_REQUEST_ID_CONFLICT,
                        "request_id was already used for a different request");
    }
    *answer = prior.response;
    return SRV_OK;
}

/* Whether the key may sign now: not disabled or suspended, its certificate (if it has one)
 * neither revoked nor expired. Checked on the request's snapshot before the HSM, and again
 * where commits are serialised, so that once a suspension or revocation has committed no
 * signature made with the key is handed out. */
srv_status api_sign_key_usable(srv_db *db, const srv_key *key, int64_t now, size_t n,
                               srv_error *err)
{
    srv_key_state ks;
    srv_status st = srv_db_key_state(db, key->id, &ks, err);
    if (st != SRV_OK)
        return st;
    if (ks.disabled)
        return srv_fail(err, SRV_E_KEY_DISABLED, "key \"%s\" is disabled%s%s", key->name,
                        ks.reason[0] ? ": " : "", ks.reason);
    if (ks.has_cert && ks.cert_revoked_at)
        return srv_fail(err, SRV_E_CERT_REVOKED,
                        "the certificate of key \"%s\" is revoked; it signs again once it has a "
                        "new certificate",
                        key->name);
    if (ks.has_cert && ks.cert_not_after <= now)
        return srv_fail(err, SRV_E_CERT_EXPIRED,
                        "the certificate of key \"%s\" expired; renew it to sign again", key->name);
    if (ks.usage_limit >= 0 && ks.signatures_total + (long long)n > ks.usage_limit)
        return srv_fail(err, SRV_E_KEY_USAGE_LIMIT,
                        "key \"%s\" reached its usage limit: %lld of %lld signatures made",
                        key->name, ks.signatures_total, ks.usage_limit);
    return SRV_OK;
}

static srv_status run_sign_record(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    sign_job *j = ctx;
    srv_audit_event ev = {0, j->c->actor, "sign", j->outcome, j->detail};
    srv_status st;

    /* A caller disabled, or a token or machine revoked, since the request authenticated gets
     * nothing: not a new signature, nor one a twin request committed. */
    if (j->response && (st = api_caller_current(j->c, db, err)) != SRV_OK)
        return st;
    if (j->approval && j->response) {
        /* A concurrent poll of the same approved request may have signed it already. */
        srv_approval now;
        if ((st = srv_db_approval_get(db, j->approval->id, &now, err)) != SRV_OK)
            return st;
        if (strcmp(now.status, "signed") == 0 && now.response) {
            j->replayed = now.response;
            now.response = NULL;
            srv_approval_clear(&now);
            return SRV_OK;
        }
        st = strcmp(now.status, "approved") == 0
                 ? SRV_OK
                 : srv_fail(err, SRV_E_APPROVAL_CLOSED, "approval request is %s", now.status);
        srv_approval_clear(&now);
        if (st != SRV_OK)
            return st;
    }
    if (j->in->request_id && j->response && !j->approval) {
        /* A twin request with the same id may have committed since our first look: then our
         * signature is discarded and the committed answer returned. */
        if ((st = prior_answer(db, j->c->user.id, j->in->request_id, j->fp, &j->replayed, err)) !=
                SRV_OK ||
            j->replayed)
            return st;
    }
    if (j->response && (st = api_sign_key_usable(db, j->key, srv_now(), 0, err)) != SRV_OK)
        return st;
    /* Quotas are checked again here, where commits are serialised, so concurrent requests
     * cannot overrun them; only signatures that are handed out count. */
    if (j->response && j->policy && (st = srv_policy_recheck_quota(j->policy, db, err)) != SRV_OK)
        return st;
    st = srv_audit_append(db, audit, &ev, err);
    if (st != SRV_OK || !j->response)
        return st;
    cJSON_AddNumberToObject(j->response, "audit_id", (double)audit->seq);
    if ((st = srv_db_usage_add(db, j->c->user.id, j->key->id, srv_now(), (long long)j->in->ndigests,
                               err)) != SRV_OK ||
        (st = srv_db_key_total_add(db, j->key->id, (long long)j->in->ndigests, err)) != SRV_OK ||
        (st = srv_db_usage_record(db, srv_now(), j->key->id, j->c->user.id,
                                  (long long)j->in->ndigests, 0, err)) != SRV_OK)
        return st;
    if (j->approval) {
        char *text = cJSON_PrintUnformatted(j->response);
        if (!text)
            return srv_fail(err, SRV_E_NOMEM, "out of memory");
        st = srv_db_approval_set_status(db, j->approval->id, "signed", text, srv_now(), err);
        free(text);
        return st;
    }
    if (j->in->request_id) {
        char *text = cJSON_PrintUnformatted(j->response);
        if (!text)
            return srv_fail(err, SRV_E_NOMEM, "out of memory");
        st = srv_db_signreq_insert(db, j->c->user.id, j->in->request_id, j->fp, text, err);
        free(text);
    }
    return st;
}

static void reply_text(api_call *c, int status, char *text)
{
    c->ex->status = status;
    c->ex->response = text;
    c->ex->response_len = strlen(text);
}

void api_sign_refuse(api_call *c, const api_sign_input *in, const srv_error *err, const char *rule)
{
    cJSON *detail = cJSON_CreateObject();
    if (in->key_name)
        cJSON_AddStringToObject(detail, "key", in->key_name);
    if (in->request_id)
        cJSON_AddStringToObject(detail, "request_id", in->request_id);
    if (rule)
        cJSON_AddStringToObject(detail, "rule", rule);
    /* What the client says about the calling tool is kept with refusals too. */
    if (in->client)
        cJSON_AddItemToObject(detail, "client", cJSON_Duplicate(in->client, 1));
    srv_prov_describe(&in->prov, detail);
    api_deny(c, err, detail);
}

/* Signs every digest in the HSM, then commits the audit record (with the idempotency record,
 * the quota count and, for an approved request, its new state) and replies. */
static void sign_execute(api_call *c, api_sign_input *in, const srv_key *key, unsigned salt,
                         sign_job *job)
{
    srv_app *app = c->w->app;
    uint8_t sig[SRV_MAX_SIG_LEN], der_buf[SRV_MAX_SIG_LEN + 16];
    cJSON *sigs = NULL;
    srv_writer_timing wt;
    uint64_t t0 = srv_phase_now(), t1;
    uint64_t *ph = c->ex->phase_ns;
    srv_error err;

    job->c = c;
    job->in = in;
    job->key = key;
    job->detail = make_detail(c, in, key, salt);
    if (job->policy || job->approval) {
        cJSON *p = cJSON_AddObjectToObject(job->detail, "policy");
        const char *rule =
            job->approval ? job->approval->rule : policy_decision_rule(&job->policy->decision);
        cJSON_AddStringToObject(p, "rule", rule ? rule : "");
        if (job->approval)
            cJSON_AddStringToObject(p, "approval_id", job->approval->id);
        if (job->policy && job->policy->gates)
            cJSON_AddItemToObject(p, "provenance_gates", cJSON_Duplicate(job->policy->gates, 1));
    }
    job->response = cJSON_CreateObject();
    cJSON_AddStringToObject(job->response, "key", key->name);
    cJSON_AddStringToObject(job->response, "mechanism", srv_mech_name(in->mech));
    cJSON_AddStringToObject(job->response, "hash", srv_hash_name(in->hash));
    if (in->mech == SRV_MECH_ECDSA)
        cJSON_AddStringToObject(job->response, "signature_format", in->der_format ? "der" : "raw");
    if (in->request_id)
        cJSON_AddStringToObject(job->response, "request_id", in->request_id);
    if (job->approval)
        cJSON_AddStringToObject(job->response, "approval_id", job->approval->id);
    if (in->batch)
        sigs = cJSON_AddArrayToObject(job->response, "signatures");
    t1 = srv_phase_now();
    ph[SRV_PHASE_AUDIT_BUILD] += t1 - t0;

    for (size_t i = 0; i < in->ndigests; i++) {
        uint8_t di[128];
        size_t di_len = sizeof(di), sig_len = sizeof(sig);
        const uint8_t *data = in->digests[i];
        size_t data_len = srv_hash_len(in->hash);
        const uint8_t *out = sig;
        size_t out_len;
        char *b64;

        if (in->mech == SRV_MECH_RSA_PKCS1) {
            if (srv_digestinfo(in->hash, data, data_len, di, &di_len, &err) != SRV_OK)
                goto hsm_failed;
            data = di;
            data_len = di_len;
        }
        if (srv_hsm_sign(app->hsm, key->ckaid, SRV_CKAID_LEN, in->mech, in->hash, salt, data,
                         data_len, sig, &sig_len, &err) != SRV_OK)
            goto hsm_failed;
        out_len = sig_len;
        if (in->mech == SRV_MECH_ECDSA && in->der_format) {
            out_len = sizeof(der_buf);
            if (srv_ecdsa_raw_to_der(sig, sig_len, der_buf, &out_len, &err) != SRV_OK)
                goto hsm_failed;
            out = der_buf;
        }
        b64 = srv_b64_encode(out, out_len);
        if (!b64) {
            srv_fail(&err, SRV_E_NOMEM, "out of memory");
            goto hsm_failed;
        }
        if (in->batch)
            cJSON_AddItemToArray(sigs, cJSON_CreateString(b64));
        else
            cJSON_AddStringToObject(job->response, "signature", b64);
        free(b64);
    }
    OPENSSL_cleanse(sig, sizeof(sig));
    t0 = srv_phase_now();
    ph[SRV_PHASE_HSM_SIGN] += t0 - t1;

    job->outcome = "allowed";
    cJSON_AddNumberToObject(job->detail, "signatures", (double)in->ndigests);
    if (srv_writer_run_timed(app->writer, run_sign_record, job, &wt, &err) != SRV_OK) {
        /* No durable record: the signatures we made are dropped here and never leave. */
        cJSON_Delete(job->response);
        job->response = NULL;
        api_sign_refuse(c, in, &err,
                        job->policy ? policy_decision_rule(&job->policy->decision) : NULL);
        return;
    }
    if (job->replayed) {
        reply_text(c, 200, job->replayed);
        cJSON_Delete(job->response);
    } else {
        atomic_fetch_add(&app->signatures, in->ndigests);
        t1 = srv_phase_now();
        ph[SRV_PHASE_WRITER_WAIT] += wt.started - wt.queued;
        ph[SRV_PHASE_AUDIT_WRITE] += wt.ran - wt.started;
        ph[SRV_PHASE_DB_COMMIT] += wt.committed - wt.ran - wt.sync_ns;
        ph[SRV_PHASE_DB_SYNC] += wt.sync_ns;
        ph[SRV_PHASE_WRITER_WAKE] += t1 - wt.committed;
        api_reply(c, 200, job->response);
        ph[SRV_PHASE_RESPONSE_BUILD] += srv_phase_now() - t1;
        /* A signature left: this request is one the phase totals describe. */
        c->ex->timed = 1;
    }
    job->response = NULL;
    return;

hsm_failed:
    /* The attempt is recorded (outcome error); nothing is handed out. */
    OPENSSL_cleanse(sig, sizeof(sig));
    cJSON_Delete(job->response);
    job->response = NULL;
    job->outcome = "error";
    cJSON_AddStringToObject(job->detail, "error", err.message);
    {
        srv_error rerr;
        if (srv_writer_run(app->writer, run_sign_record, job, &rerr) != SRV_OK)
            err = rerr;
    }
    {
        cJSON *doc = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(doc, "error");
        cJSON_AddStringToObject(e, "code", srv_status_code(err.status));
        cJSON_AddStringToObject(e, "message", err.message);
        api_reply(c, srv_status_http(err.status), doc);
    }
}

/* ---- approvals: a sign request that waits for its approvers ------------------------------ */

typedef struct {
    api_call *c;
    api_sign_input *in;
    srv_approval *a;
    uint8_t fp[32];
    cJSON *response;
    char *replayed;
} pending_job;

static srv_status run_pending_record(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    pending_job *j = ctx;
    cJSON *detail;
    srv_status st;
    if (j->in->request_id && ((st = prior_answer(db, j->c->user.id, j->in->request_id, j->fp,
                                                 &j->replayed, err)) != SRV_OK ||
                              j->replayed))
        return st;
    if ((st = srv_db_approval_insert(db, j->a, err)) != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "approval_id", j->a->id);
    cJSON_AddStringToObject(detail, "key", j->in->key_name);
    cJSON_AddStringToObject(detail, "rule", j->a->rule);
    cJSON_AddNumberToObject(detail, "required", (double)j->a->required);
    cJSON_AddNumberToObject(detail, "expires_at", (double)j->a->expires_at);
    cJSON_AddItemToObject(detail, "approvers", cJSON_Parse(j->a->approvers));
    cJSON_AddNumberToObject(detail, "digests", (double)j->in->ndigests);
    if (j->in->request_id)
        cJSON_AddStringToObject(detail, "request_id", j->in->request_id);
    api_add_request_detail(j->c, detail);
    {
        srv_audit_event ev = {0, j->c->actor, "approval.request", "pending", detail};
        st = srv_audit_append(db, audit, &ev, err);
    }
    cJSON_Delete(detail);
    if (st == SRV_OK && j->in->request_id) {
        char *text = cJSON_PrintUnformatted(j->response);
        st = text ? srv_db_signreq_insert(db, j->c->user.id, j->in->request_id, j->fp, text, err)
                  : srv_fail(err, SRV_E_NOMEM, "out of memory");
        free(text);
    }
    return st;
}

static cJSON *names_json(const policy_list *l)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(l->items[i]));
    return arr;
}

/* The deciding rule needs approval: store the request and answer 202 with its id. */
static void sign_pending(api_call *c, api_sign_input *in, const srv_key *key,
                         const policy_rule *rule, const uint8_t fp[32])
{
    pending_job job;
    srv_approval a;
    uint8_t id[SRV_APPROVAL_ID_LEN / 2];
    cJSON *who;
    srv_error err;
    char *approvers = NULL;

    memset(&job, 0, sizeof(job));
    memset(&a, 0, sizeof(a));
    if (srv_random(id, sizeof(id), &err) != SRV_OK)
        goto fail;
    srv_hex_encode(id, sizeof(id), a.id);
    a.user_id = c->user.id;
    a.key_id = key->id;
    snprintf(a.rule, sizeof(a.rule), "%s", rule->name);
    a.request = cJSON_PrintUnformatted(c->body);
    a.required = rule->approvals_required;
    if (c->machine_id)
        snprintf(a.machine, sizeof(a.machine), "%s", c->machine);
    who = cJSON_CreateObject();
    cJSON_AddItemToObject(who, "approvers", names_json(&rule->approvers));
    cJSON_AddItemToObject(who, "groups", names_json(&rule->approver_groups));
    /* The rule lets the approvers of the key's project decide: named now, so that moving the
     * key later changes nothing for a request already waiting. */
    if (rule->project_approvers && key->project[0])
        cJSON_AddStringToObject(who, "project", key->project);
    approvers = cJSON_PrintUnformatted(who);
    cJSON_Delete(who);
    a.approvers = approvers;
    a.created_at = srv_now();
    a.expires_at = a.created_at + rule->approval_ttl;
    if (!a.request || !a.approvers) {
        srv_fail(&err, SRV_E_NOMEM, "out of memory");
        goto fail;
    }
    job.c = c;
    job.in = in;
    job.a = &a;
    memcpy(job.fp, fp, 32);
    job.response = cJSON_CreateObject();
    cJSON_AddStringToObject(job.response, "status", "pending");
    cJSON_AddStringToObject(job.response, "approval_id", a.id);
    cJSON_AddStringToObject(job.response, "rule", a.rule);
    cJSON_AddNumberToObject(job.response, "required", (double)a.required);
    cJSON_AddNumberToObject(job.response, "expires_at", (double)a.expires_at);
    if (in->request_id)
        cJSON_AddStringToObject(job.response, "request_id", in->request_id);
    if (srv_writer_run(c->w->app->writer, run_pending_record, &job, &err) != SRV_OK) {
        cJSON_Delete(job.response);
        goto fail;
    }
    if (job.replayed) {
        /* A retry of a request that already waits (or was answered): the stored answer. */
        reply_text(c, strstr(job.replayed, "\"status\":\"pending\"") ? 202 : 200, job.replayed);
        cJSON_Delete(job.response);
    } else {
        api_reply(c, 202, job.response);
    }
    free(a.request);
    free(approvers);
    return;
fail:
    free(a.request);
    free(approvers);
    api_sign_refuse(c, in, &err, rule->name);
}

/* ---- the service ------------------------------------------------------------------------- */

/* A retry of a request id already answered: the stored answer, whatever quota and policy say
 * now (the signature was made and counted once). Returns 1 when c was answered. */
static int replay_stored(api_call *c, const api_sign_input *in, const uint8_t fp[32],
                         srv_error *err, srv_status *st)
{
    char *answer = NULL;
    *st = prior_answer(c->w->db, c->user.id, in->request_id, fp, &answer, err);
    if (*st != SRV_OK || !answer)
        return 0;
    /* The same answer, no second signature (or the same pending approval or job id). */
    reply_text(
        c, strstr(answer, "\"status\":\"pending\"") || strstr(answer, "\"job_id\":") ? 202 : 200,
        answer);
    return 1;
}

/* Whether the approval `a` still stands for the decision made now: the rule that asked for it
 * must still decide, and still ask for no more approvals than `a` collected. */
static srv_status approval_still_valid(const srv_approval *a, const policy_decision *d,
                                       srv_error *err)
{
    const policy_rule *r = d->rule;
    if (d->outcome == POLICY_ALLOWED)
        return SRV_OK; /* the caller may sign this without an approval now */
    if (!r || strcmp(r->name, a->rule) != 0)
        return srv_fail(err, SRV_E_APPROVAL_POLICY_CHANGED,
                        "request %s was approved under rule \"%s\", which no longer decides it "
                        "(now: %s); request the signature again",
                        a->id, a->rule, r ? r->name : "no rule");
    if (r->approvals_required > a->required)
        return srv_fail(err, SRV_E_APPROVAL_POLICY_CHANGED,
                        "rule \"%s\" now requires %lld approvals; request %s has %lld", r->name,
                        r->approvals_required, a->id, a->required);
    return SRV_OK;
}

void api_sign_service(api_call *c, api_sign_input *in, const srv_approval *approval)
{
    srv_app *app = c->w->app;
    srv_key key;
    sign_job job;
    srv_policy_eval ev;
    policy_request preq;
    unsigned salt = 0;
    srv_error err;
    srv_status st;
    int have_key = 0;
    const char *rule = approval ? approval->rule : NULL;
    int64_t now = srv_now();
    uint64_t t0 = srv_phase_now();

    memset(&job, 0, sizeof(job));
    memset(&key, 0, sizeof(key));
    memset(&ev, 0, sizeof(ev));
    fingerprint(in, job.fp);
    /* Separation of duties: administration and signing are different identities. */
    if (c->user.role == SRV_ROLE_ADMIN) {
        srv_fail(&err, SRV_E_FORBIDDEN,
                 "\"%s\" is an admin identity, and admins cannot sign: sign with a signer "
                 "identity",
                 c->user.name);
        goto deny;
    }
    /* Idempotency first: a retry gets its stored answer even once the quota is spent or the
     * policy changed. An approved request has its own id (the approval's). */
    if (!approval && in->request_id) {
        if (replay_stored(c, in, job.fp, &err, &st))
            goto out;
        if (st != SRV_OK)
            goto deny;
    }
    if (approval) {
        int64_t until = approval->decided_at + app->cfg.approval_collect_ttl;
        if (until <= now) {
            srv_fail(&err, SRV_E_APPROVAL_EXPIRED,
                     "request %s was approved at %lld and not collected within %d s; request "
                     "the signature again",
                     approval->id, (long long)approval->decided_at, app->cfg.approval_collect_ttl);
            goto deny;
        }
    }
    if (srv_db_key_get(c->w->db, in->key_name, &key, &err) != SRV_OK)
        goto deny;
    have_key = 1;
    if (approval && key.id != approval->key_id) {
        srv_fail(&err, SRV_E_KEY_NOT_FOUND, "the key of approval %s no longer exists",
                 approval->id);
        goto deny;
    }
    if (key.is_ca) {
        srv_fail(&err, SRV_E_KEY_NOT_GRANTED, "the CA key signs certificates only");
        goto deny;
    }
    c->usage_key_id = key.id; /* a refusal from here on counts as the key's denial */
    snprintf(c->project, sizeof(c->project), "%s", key.project); /* and names its project */
    if (api_sign_key_usable(c->w->db, &key, now, in->ndigests, &err) != SRV_OK)
        goto deny;
    /* Deny by default: a grant (an allow rule at priority 0) or a policy rule must allow it,
     * whatever the caller's role; decided now, from this request's machine and address. */
    memset(&preq, 0, sizeof(preq));
    preq.machine = c->machine_id ? c->machine : NULL;
    preq.ip = c->ex->peer;
    if (in->client) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(in->client, "application");
        preq.application = cJSON_IsString(a) ? a->valuestring : NULL;
    }
    preq.time = now;
    preq.mechanism = srv_mech_name(in->mech);
    preq.hash = srv_hash_name(in->hash);
    preq.signatures = (long long)in->ndigests;
    in->prov.hash = srv_hash_name(in->hash);
    in->prov.digests = in->digests;
    in->prov.ndigests = in->ndigests;
    srv_prov_check_oidc(app->oidc, &in->prov, now);
    preq.provenance = &in->prov;
    if (srv_policy_decide(c->w->db, &c->user, &key, &preq, &ev, &err) != SRV_OK)
        goto deny;
    if (policy_decision_rule(&ev.decision))
        rule = policy_decision_rule(&ev.decision);
    if (ev.decision.outcome != POLICY_ALLOWED && ev.decision.outcome != POLICY_APPROVAL_REQUIRED) {
        srv_fail(&err, srv_policy_status(ev.decision.outcome), "%s", ev.decision.message);
        goto deny;
    }
    if (approval && approval_still_valid(approval, &ev.decision, &err) != SRV_OK)
        goto deny;
    if (check_mechanism(&key, in, &salt, &err) != SRV_OK)
        goto deny;
    if (in->async && ev.decision.outcome == POLICY_APPROVAL_REQUIRED) {
        srv_fail(&err, SRV_E_APPROVAL_NOT_ASYNC,
                 "rule \"%s\" requires approval for key \"%s\"; a signing job cannot wait for "
                 "approvers: send the digests to /api/v1/sign",
                 rule ? rule : "", key.name);
        goto deny;
    }
    /* The lookups are done: no snapshot held through the HSM and the commit. */
    srv_db_read_end(c->w->db);
    if (in->async) {
        c->ex->phase_ns[SRV_PHASE_POLICY] += srv_phase_now() - t0;
        if (!in->submit) {
            srv_fail(&err, SRV_E_INTERNAL, "signing jobs are not served here");
            goto deny;
        }
        in->gates = ev.gates;
        in->submit(c, in, &key, salt, rule, job.fp);
        goto out;
    }
    if (!approval && ev.decision.outcome == POLICY_APPROVAL_REQUIRED) {
        sign_pending(c, in, &key, ev.decision.rule, job.fp);
        goto out;
    }
    job.policy = &ev;
    job.approval = approval;
    c->ex->phase_ns[SRV_PHASE_POLICY] += srv_phase_now() - t0;
    sign_execute(c, in, &key, salt, &job);
    goto out;

deny:
    api_sign_refuse(c, in, &err, rule);
out:
    cJSON_Delete(job.detail);
    srv_policy_eval_clear(&ev);
    if (have_key)
        srv_key_clear(&key);
}
