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
#include "signing.h"

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
    if (srv_policy_listed_keys(c->w->db, &c->user, add_key, args, &err) != SRV_OK) {
        cJSON_Delete(doc);
        api_reply_error(c, &err);
        return;
    }
    /* Agents cache the listing and revalidate it with If-None-Match. */
    api_reply_cacheable(c, doc);
}

void api_sign_input_free(api_sign_input *in)
{
    for (size_t i = 0; in->digests && i < in->ndigests; i++)
        free(in->digests[i]);
    free(in->digests);
    in->digests = NULL;
    srv_prov_clear(&in->prov);
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

static srv_status sign_parse(const cJSON *body, api_sign_input *in, int job, srv_error *err)
{
    static const char *const fields[] = {"key",     "mechanism",  "hash",        "digest",
                                         "digests", "request_id", "salt_length", "signature_format",
                                         "context", "provenance", NULL};
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
    if ((st = srv_prov_parse(cJSON_GetObjectItemCaseSensitive(body, "provenance"), &in->prov,
                             err)) != SRV_OK)
        return st;

    one = cJSON_GetObjectItemCaseSensitive(body, "digest");
    many = cJSON_GetObjectItemCaseSensitive(body, "digests");
    if (job && one)
        return srv_fail(err, SRV_E_INVALID_FIELD, "a signing job takes digests, an array");
    if ((one != NULL) == (many != NULL))
        return srv_fail(err, SRV_E_INVALID_FIELD, "give exactly one of digest or digests");
    if (one) {
        if (!(in->digests = calloc(1, sizeof(*in->digests))))
            return srv_fail(err, SRV_E_NOMEM, "out of memory");
        in->ndigests = 1;
        return decode_digest(one, in->hash, "digest", &in->digests[0], err);
    }
    in->batch = 1;
    in->async = job;
    if (job && cJSON_IsArray(many) && cJSON_GetArraySize(many) > API_JOB_MAX_DIGESTS)
        return srv_fail(err, SRV_E_TOO_MANY_DIGESTS,
                        "a signing job takes at most %d digests; this one has %d",
                        API_JOB_MAX_DIGESTS, cJSON_GetArraySize(many));
    if (!cJSON_IsArray(many) || cJSON_GetArraySize(many) < 1 ||
        cJSON_GetArraySize(many) > (job ? API_JOB_MAX_DIGESTS : API_MAX_BATCH))
        return srv_fail(err, SRV_E_INVALID_FIELD, "digests must be an array of 1-%d digests",
                        job ? API_JOB_MAX_DIGESTS : API_MAX_BATCH);
    if (!(in->digests = calloc((size_t)cJSON_GetArraySize(many), sizeof(*in->digests))))
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
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

srv_status api_sign_parse(const cJSON *body, api_sign_input *in, srv_error *err)
{
    return sign_parse(body, in, 0, err);
}

srv_status api_sign_parse_job(const cJSON *body, api_sign_input *in, srv_error *err)
{
    return sign_parse(body, in, 1, err);
}

void api_sign_handle(api_call *c, api_sign_parse_fn parse, api_job_submit_fn submit)
{
    api_sign_input in;
    srv_error err;
    uint64_t t0 = srv_phase_now();
    srv_status st = parse(c->body, &in, &err);

    in.submit = submit;
    /* The sign route's body cap makes room for a provenance envelope; the rest of the request
     * keeps the cap of every other call. */
    if (st == SRV_OK && parse == api_sign_parse && c->ex->body_len > API_BODY_CAP) {
        const cJSON *env = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(c->body, "provenance"), "envelope");
        size_t env_len = cJSON_IsString(env) ? strlen(env->valuestring) : 0;
        if (c->ex->body_len - env_len > API_BODY_CAP)
            st = srv_fail(&err, SRV_E_BODY_TOO_LARGE,
                          "the request is %zu bytes besides its provenance envelope; at most %d",
                          c->ex->body_len - env_len, API_BODY_CAP);
    }
    c->ex->phase_ns[SRV_PHASE_PARSE] += srv_phase_now() - t0;
    if (st != SRV_OK)
        api_sign_refuse(c, &in, &err, NULL);
    else
        api_sign_service(c, &in, NULL);
    api_sign_input_free(&in);
}

void api_sign(api_call *c)
{
    api_sign_handle(c, api_sign_parse, NULL);
}

void api_sign_approved(api_call *c, const srv_approval *a)
{
    api_sign_input in;
    cJSON *body = cJSON_Parse(a->request);
    srv_error err;

    memset(&in, 0, sizeof(in));
    if (!body) {
        srv_fail(&err, SRV_E_DATABASE, "stored request of approval %s is not JSON", a->id);
        api_sign_refuse(c, &in, &err, a->rule);
    } else if (api_sign_parse(body, &in, &err) != SRV_OK) {
        api_sign_refuse(c, &in, &err, a->rule);
    } else {
        api_sign_service(c, &in, a);
    }
    api_sign_input_free(&in);
    cJSON_Delete(body);
}
