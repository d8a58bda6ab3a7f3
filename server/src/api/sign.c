/* The signer API: list usable keys, and sign one digest or a batch. A signature is made in the
 * HSM, then its audit record and the idempotency record commit together, and only then does
 * the response leave: a signature whose record cannot be written is discarded. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ca/ca.h"
#include "../common/b64.h"
#include "../common/util.h"
#include "internal.h"

static void add_key(const srv_key *key, void *ctx)
{
    void **args = ctx;
    cJSON_AddItemToArray(args[1], api_key_json(args[0], key, 1));
}

void api_keys_list(api_call *c)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "keys");
    void *args[2] = {c, arr};
    srv_error err;
    /* Every key a grant or policy rule could let the caller use; each signature is still
     * decided by policy. */
    if (api_policy_listed_keys(c->w->db, &c->user, add_key, args, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    /* Agents cache the listing and revalidate it with If-None-Match. */
    api_reply_cacheable(c, doc);
}

typedef struct {
    const char *key_name;
    srv_mech mech;
    srv_hash hash;
    long long salt_len;
    int der_format;
    const char *request_id;
    uint8_t *digests[API_MAX_BATCH];
    size_t ndigests;
    int batch;
    cJSON *client; /* advisory context reported by the client */
} sign_input;

static void sign_input_free(sign_input *in)
{
    for (size_t i = 0; i < in->ndigests; i++)
        free(in->digests[i]);
}

static srv_status decode_digest(const cJSON *item, srv_hash hash, const char *field, uint8_t **out,
                                srv_error *err)
{
    size_t len = 0;
    srv_error inner;
    srv_status st;
    if (!cJSON_IsString(item) || !item->valuestring)
        return srv_fail(err, SRV_E_INVALID_FIELD, "%s must be a base64 string", field);
    /* Decode anything the body cap lets through, so a wrong length is reported as such. */
    st = srv_b64_decode(item->valuestring, strlen(item->valuestring), API_BODY_CAP, out, &len,
                        &inner);
    if (st != SRV_OK)
        return srv_fail(err, st, "%s: %s", field, inner.message);
    if (len != srv_hash_len(hash)) {
        free(*out);
        *out = NULL;
        return srv_fail(err, SRV_E_DIGEST_LENGTH, "%s is %zu bytes; %s digests are %zu bytes",
                        field, len, srv_hash_name(hash), srv_hash_len(hash));
    }
    return SRV_OK;
}

/* Caps of the advisory context's text fields, in bytes. The agent keeps within them
 * (AG_CTX_*_MAX in agent-core/src/agent/agent.h); change both together. */
#define SIGN_CTX_APPLICATION_MAX  1024
#define SIGN_CTX_COMMAND_LINE_MAX 4096
#define SIGN_CTX_HOST_MAX         255

static srv_status parse_input(const cJSON *body, sign_input *in, srv_error *err)
{
    static const char *const fields[] = {"key",     "mechanism",  "hash",        "digest",
                                         "digests", "request_id", "salt_length", "signature_format",
                                         "context", NULL};
    static const char *const ctx_fields[] = {"application", "command_line", "host", "pid",
                                             "uid",         "agent",        NULL};
    const char *mech = NULL, *hash = NULL, *fmt = NULL;
    const cJSON *one, *many, *ctx;
    srv_status st;

    memset(in, 0, sizeof(*in));
    in->salt_len = -1;
    if ((st = srv_json_check_fields(body, fields, err)) != SRV_OK ||
        (st = srv_json_get_string(body, "key", 1, SRV_NAME_MAX, &in->key_name, err)) != SRV_OK ||
        (st = srv_json_get_string(body, "mechanism", 1, 16, &mech, err)) != SRV_OK ||
        (st = srv_json_get_string(body, "hash", 1, 16, &hash, err)) != SRV_OK ||
        (st = srv_json_get_string(body, "request_id", 0, SRV_REQUEST_ID_MAX, &in->request_id,
                                  err)) != SRV_OK ||
        (st = srv_json_get_int(body, "salt_length", 0, 0, 512, &in->salt_len, err)) != SRV_OK ||
        (st = srv_json_get_string(body, "signature_format", 0, 8, &fmt, err)) != SRV_OK)
        return st;
    if (!srv_valid_name(in->key_name, SRV_NAME_MAX))
        return srv_fail(err, SRV_E_INVALID_FIELD, "key must be 1-64 characters of [A-Za-z0-9._-]");
    if (!srv_mech_parse(mech, &in->mech))
        return srv_fail(err, SRV_E_INVALID_FIELD, "mechanism must be rsa-pkcs1, rsa-pss or ecdsa");
    if (!srv_hash_parse(hash, &in->hash))
        return srv_fail(err, SRV_E_INVALID_FIELD, "hash must be sha256, sha384 or sha512");
    if (in->request_id &&
        (!*in->request_id ||
         strspn(in->request_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                                "opqrstuvwxyz0123456789._:-") != strlen(in->request_id)))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "request_id must be 1-128 characters of [A-Za-z0-9._:-]");
    if (fmt) {
        if (strcmp(fmt, "der") != 0 && strcmp(fmt, "raw") != 0)
            return srv_fail(err, SRV_E_INVALID_FIELD, "signature_format must be raw or der");
        if (in->mech != SRV_MECH_ECDSA)
            return srv_fail(err, SRV_E_INVALID_FIELD, "signature_format applies to ecdsa only");
        in->der_format = strcmp(fmt, "der") == 0;
    }
    if (in->salt_len >= 0 && in->mech != SRV_MECH_RSA_PSS)
        return srv_fail(err, SRV_E_INVALID_FIELD, "salt_length applies to rsa-pss only");

    ctx = cJSON_GetObjectItemCaseSensitive(body, "context");
    if (ctx) {
        const char *s = NULL;
        long long pid = 0, uid = 0;
        if (!cJSON_IsObject(ctx))
            return srv_fail(err, SRV_E_INVALID_FIELD, "context must be an object");
        /* uid is what the agent read from the kernel for the calling process; agent is the
         * agent's version. Both are advisory, like the rest of the context. */
        if ((st = srv_json_check_fields(ctx, ctx_fields, err)) != SRV_OK ||
            (st = srv_json_get_string(ctx, "application", 0, SIGN_CTX_APPLICATION_MAX, &s, err)) !=
                SRV_OK ||
            (st = srv_json_get_string(ctx, "command_line", 0, SIGN_CTX_COMMAND_LINE_MAX, &s,
                                      err)) != SRV_OK ||
            (st = srv_json_get_string(ctx, "host", 0, SIGN_CTX_HOST_MAX, &s, err)) != SRV_OK ||
            (st = srv_json_get_int(ctx, "pid", 0, 0, 4194304, &pid, err)) != SRV_OK ||
            (st = srv_json_get_int(ctx, "uid", 0, 0, 4294967295LL, &uid, err)) != SRV_OK ||
            (st = srv_json_get_string(ctx, "agent", 0, 64, &s, err)) != SRV_OK)
            return st;
        in->client = (cJSON *)ctx;
    }

    one = cJSON_GetObjectItemCaseSensitive(body, "digest");
    many = cJSON_GetObjectItemCaseSensitive(body, "digests");
    if ((one != NULL) == (many != NULL))
        return srv_fail(err, SRV_E_INVALID_FIELD, "give exactly one of digest or digests");
    if (one) {
        in->ndigests = 1;
        return decode_digest(one, in->hash, "digest", &in->digests[0], err);
    }
    in->batch = 1;
    if (!cJSON_IsArray(many) || cJSON_GetArraySize(many) < 1 ||
        cJSON_GetArraySize(many) > API_MAX_BATCH)
        return srv_fail(err, SRV_E_INVALID_FIELD, "digests must be an array of 1-%d digests",
                        API_MAX_BATCH);
    for (const cJSON *d = many->child; d; d = d->next) {
        char field[32];
        snprintf(field, sizeof(field), "digests[%zu]", in->ndigests);
        st = decode_digest(d, in->hash, field, &in->digests[in->ndigests], err);
        if (st != SRV_OK)
            return st;
        in->ndigests++;
    }

    return SRV_OK;
}

/* A fingerprint of everything that determines the result, to spot a reused request id. */
static void fingerprint(const sign_input *in, uint8_t out[32])
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
    for (size_t i = 0; i < in->ndigests; i++)
        EVP_DigestUpdate(md, in->digests[i], srv_hash_len(in->hash));
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

/* Checks the mechanism against the key and returns the PSS salt length to use. */
static srv_status check_mechanism(const srv_key *key, sign_input *in, unsigned *salt,
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
    sign_input *in;
    const srv_key *key;
    uint8_t fp[32];
    cJSON *detail;
    const char *outcome;
    cJSON *response;              /* built here, so it can name the audit record */
    char *replayed;               /* set when a concurrent twin already finished */
    api_policy_eval *policy;      /* the allowing decision (quotas re-checked at commit) */
    const srv_approval *approval; /* set when signing an approved request */
} sign_job;

static cJSON *make_detail(api_call *c, const sign_input *in, const srv_key *key, unsigned salt)
{
    cJSON *d = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(d, "digests");
    for (size_t i = 0; i < in->ndigests; i++) {
        char hex[129];
        srv_hex_encode(in->digests[i], srv_hash_len(in->hash), hex);
        cJSON_AddItemToArray(arr, cJSON_CreateString(hex));
    }
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
    api_add_request_detail(c, d);
    return d;
}

static srv_status run_sign_record(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    sign_job *j = ctx;
    srv_audit_event ev = {0, j->c->actor, "sign", j->outcome, j->detail};
    srv_status st;

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
        /* A twin request with the same id may have committed since our first look. */
        srv_sign_request prior;
        st = srv_db_signreq_get(db, j->c->user.id, j->in->request_id, &prior, err);
        if (st == SRV_OK) {
            int same = memcmp(prior.fingerprint, j->fp, 32) == 0;
            j->replayed = same ? prior.response : NULL;
            if (!same) {
                srv_sign_request_clear(&prior);
                return srv_fail(err, SRV_E_REQUEST_ID_CONFLICT,
                                "request_id was already used for a different request");
            }
            prior.response = NULL;
            return SRV_OK; /* our signature is discarded; the committed one is returned */
        }
        if (st != SRV_E_NOT_FOUND)
            return st;
    }
    /* Quotas are checked again here, where commits are serialised, so concurrent requests
     * cannot overrun them; only signatures that are handed out count. */
    if (j->response && j->policy && (st = api_policy_recheck_quota(j->policy, db, err)) != SRV_OK)
        return st;
    st = srv_audit_append(db, audit, &ev, err);
    if (st != SRV_OK || !j->response)
        return st;
    cJSON_AddNumberToObject(j->response, "audit_id", (double)audit->seq);
    if ((st = srv_db_usage_add(db, j->c->user.id, j->key->id, srv_now(), (long long)j->in->ndigests,
                               err)) != SRV_OK)
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

static void reply_error_detail(api_call *c, const sign_input *in, const srv_error *err,
                               const char *rule)
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
    api_deny(c, err, detail);
}

/* Signs every digest in the HSM, then commits the audit record (with the idempotency record,
 * the quota count and, for an approved request, its new state) and replies. */
static void sign_execute(api_call *c, sign_input *in, const srv_key *key, unsigned salt,
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
        reply_error_detail(c, in, &err,
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
    sign_input *in;
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
    if (j->in->request_id) {
        srv_sign_request prior;
        st = srv_db_signreq_get(db, j->c->user.id, j->in->request_id, &prior, err);
        if (st == SRV_OK) {
            int same = memcmp(prior.fingerprint, j->fp, 32) == 0;
            j->replayed = same ? prior.response : NULL;
            if (!same) {
                srv_sign_request_clear(&prior);
                return srv_fail(err, SRV_E_REQUEST_ID_CONFLICT,
                                "request_id was already used for a different request");
            }
            return SRV_OK;
        }
        if (st != SRV_E_NOT_FOUND)
            return st;
    }
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
static void sign_pending(api_call *c, sign_input *in, const srv_key *key, const policy_rule *rule,
                         const uint8_t fp[32])
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
    who = cJSON_CreateObject();
    cJSON_AddItemToObject(who, "approvers", names_json(&rule->approvers));
    cJSON_AddItemToObject(who, "groups", names_json(&rule->approver_groups));
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
    reply_error_detail(c, in, &err, rule->name);
}

void api_sign(api_call *c)
{
    sign_input in;
    srv_key key;
    srv_sign_request prior;
    sign_job job;
    api_policy_eval ev;
    policy_request preq;
    unsigned salt = 0;
    srv_error err;
    int have_key = 0;
    const char *rule = NULL;
    uint64_t t0, t1;
    srv_status st;

    memset(&job, 0, sizeof(job));
    memset(&key, 0, sizeof(key));
    memset(&ev, 0, sizeof(ev));
    t0 = srv_phase_now();
    st = parse_input(c->body, &in, &err);
    t1 = srv_phase_now();
    c->ex->phase_ns[SRV_PHASE_PARSE] += t1 - t0;
    if (st != SRV_OK)
        goto deny;
    if (srv_db_key_get(c->w->db, in.key_name, &key, &err) != SRV_OK)
        goto deny;
    have_key = 1;
    if (key.is_ca) {
        srv_fail(&err, SRV_E_KEY_NOT_GRANTED, "the CA key signs certificates only");
        goto deny;
    }
    if (key.disabled) {
        srv_fail(&err, SRV_E_KEY_DISABLED, "key \"%s\" is disabled", key.name);
        goto deny;
    }
    /* Deny by default: a grant (an allow rule at priority 0) or a policy rule must allow it,
     * whatever the caller's role. */
    memset(&preq, 0, sizeof(preq));
    preq.machine = c->machine_id ? c->machine : NULL;
    preq.ip = c->ex->peer;
    if (in.client) {
        const cJSON *app = cJSON_GetObjectItemCaseSensitive(in.client, "application");
        preq.application = cJSON_IsString(app) ? app->valuestring : NULL;
    }
    preq.time = srv_now();
    preq.mechanism = srv_mech_name(in.mech);
    preq.hash = srv_hash_name(in.hash);
    preq.signatures = (long long)in.ndigests;
    if (api_policy_decide(c->w->db, &c->user, &key, &preq, &ev, &err) != SRV_OK)
        goto deny;
    rule = policy_decision_rule(&ev.decision);
    if (ev.decision.outcome != POLICY_ALLOWED && ev.decision.outcome != POLICY_APPROVAL_REQUIRED) {
        srv_fail(&err, api_policy_status(ev.decision.outcome), "%s", ev.decision.message);
        goto deny;
    }
    if (check_mechanism(&key, &in, &salt, &err) != SRV_OK)
        goto deny;

    fingerprint(&in, job.fp);
    if (in.request_id) {
        st = srv_db_signreq_get(c->w->db, c->user.id, in.request_id, &prior, &err);
        if (st == SRV_OK) {
            int same = memcmp(prior.fingerprint, job.fp, 32) == 0;
            if (same) {
                /* A retry: the same answer, no second signature (or the same pending id). */
                reply_text(c, strstr(prior.response, "\"status\":\"pending\"") ? 202 : 200,
                           prior.response);
                goto out;
            }
            srv_sign_request_clear(&prior);
            srv_fail(&err, SRV_E_REQUEST_ID_CONFLICT,
                     "request_id was already used for a different request");
            goto deny;
        }
        if (st != SRV_E_NOT_FOUND)
            goto deny;
    }
    /* The lookups are done: no snapshot held through the HSM and the commit. */
    srv_db_read_end(c->w->db);
    if (ev.decision.outcome == POLICY_APPROVAL_REQUIRED) {
        sign_pending(c, &in, &key, ev.decision.rule, job.fp);
        goto out;
    }
    job.policy = &ev;
    c->ex->phase_ns[SRV_PHASE_POLICY] += srv_phase_now() - t1;
    sign_execute(c, &in, &key, salt, &job);
    goto out;

deny:
    reply_error_detail(c, &in, &err, rule);
out:
    cJSON_Delete(job.detail);
    api_policy_eval_clear(&ev);
    sign_input_free(&in);
    if (have_key)
        srv_key_clear(&key);
}

void api_sign_approved(api_call *c, const srv_approval *a)
{
    sign_input in;
    srv_key key;
    sign_job job;
    cJSON *body = cJSON_Parse(a->request);
    unsigned salt = 0;
    srv_error err;
    int have_key = 0;

    memset(&job, 0, sizeof(job));
    memset(&key, 0, sizeof(key));
    memset(&in, 0, sizeof(in));
    if (!body) {
        srv_fail(&err, SRV_E_DATABASE, "stored request of approval %s is not JSON", a->id);
        goto deny;
    }
    if (parse_input(body, &in, &err) != SRV_OK ||
        srv_db_key_get(c->w->db, in.key_name, &key, &err) != SRV_OK)
        goto deny;
    have_key = 1;
    if (key.id != a->key_id || key.is_ca) {
        srv_fail(&err, SRV_E_KEY_NOT_FOUND, "the key of approval %s no longer exists", a->id);
        goto deny;
    }
    if (key.disabled) {
        srv_fail(&err, SRV_E_KEY_DISABLED, "key \"%s\" is disabled", key.name);
        goto deny;
    }
    if (check_mechanism(&key, &in, &salt, &err) != SRV_OK)
        goto deny;
    job.approval = a;
    sign_execute(c, &in, &key, salt, &job);
    goto out;
deny:
    reply_error_detail(c, &in, &err, a->rule);
out:
    cJSON_Delete(job.detail);
    sign_input_free(&in);
    cJSON_Delete(body);
    if (have_key)
        srv_key_clear(&key);
}
