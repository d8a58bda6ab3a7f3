/* Key rotation, centrally: a new key generated in the HSM takes over the key's name (with a
 * new certificate from the built-in CA when asked or when the old one came from it); the
 * earlier version stays, listed and with its certificate served for verification, until it is
 * retired, which destroys it in the HSM. Each step is audited with its reason. */
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ca/ca.h"
#include "../common/b64.h"
#include "../common/util.h"
#include "../store/key_db.h"
#include "internal.h"

#define ROTATE_VALIDITY_DAYS 365

/* The subject of the key's certificate if the built-in CA issued it. */
static int builtin_subject(const srv_app *app, const srv_cert_record *rec, char *cn, size_t cn_len,
                           char *org, size_t org_len)
{
    const unsigned char *p = rec->der;
    X509 *cert = rec->der ? d2i_X509(NULL, &p, (long)rec->der_len) : NULL;
    int ok =
        cert && X509_check_issued(app->ca.cert, cert) == X509_V_OK &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, (int)cn_len) > 0;
    if (ok && X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName, org,
                                        (int)org_len) <= 0)
        org[0] = '\0';
    X509_free(cert);
    return ok;
}

typedef struct {
    const api_call *c;
    const char *reason;
    srv_key *old, *new_key;
    uint8_t *der;
    size_t der_len;
    char *chain_pem;
    int64_t not_after, version;
} rotate_job;

static srv_status run_rotate(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    rotate_job *j = ctx;
    char old_hex[2 * SRV_CKAID_LEN + 1], new_hex[2 * SRV_CKAID_LEN + 1];
    int64_t now = srv_now();
    cJSON *detail;
    srv_status st = srv_db_key_rotate(db, j->old->id, j->old->ckaid, j->new_key->ckaid,
                                      j->new_key->spki, j->new_key->spki_len, now, err);
    if (st == SRV_OK && j->der)
        st = srv_db_cert_set(db, j->old->id, j->der, j->der_len, j->chain_pem, j->not_after, err);
    if (st != SRV_OK)
        return st;
    srv_hex_encode(j->old->ckaid, SRV_CKAID_LEN, old_hex);
    srv_hex_encode(j->new_key->ckaid, SRV_CKAID_LEN, new_hex);
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "key", j->old->name);
    cJSON_AddStringToObject(detail, "reason", j->reason);
    cJSON_AddStringToObject(detail, "previous_id", old_hex);
    cJSON_AddStringToObject(detail, "id", new_hex);
    cJSON_AddBoolToObject(detail, "certificate", j->der != NULL);
    st = api_audit(j->c, db, audit, "key.rotate", detail, err);
    cJSON_Delete(detail);
    return st;
}

/* POST /api/v1/admin/keys/{name}/rotate {"reason", "common_name"?, "organization"?,
 * "validity_days"?} */
void api_admin_key_rotate(api_call *c)
{
    static const char *const fields[] = {"reason", "common_name", "organization", "validity_days",
                                         NULL};
    const char *reason = NULL, *cn = NULL, *org = NULL;
    char cn_buf[80] = "", org_buf[80] = "";
    long long days = ROTATE_VALIDITY_DAYS;
    srv_key old, new_key;
    srv_cert_record rec;
    rotate_job job;
    X509 *cert = NULL;
    char *pem = NULL;
    int generated = 0;
    srv_error err;

    memset(&old, 0, sizeof(old));
    memset(&new_key, 0, sizeof(new_key));
    memset(&rec, 0, sizeof(rec));
    memset(&job, 0, sizeof(job));
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        api_get_reason(c->body, &reason, &err) != SRV_OK ||
        srv_json_get_string(c->body, "common_name", 0, 64, &cn, &err) != SRV_OK ||
        srv_json_get_string(c->body, "organization", 0, 64, &org, &err) != SRV_OK ||
        srv_json_get_int(c->body, "validity_days", 0, 1, 3650, &days, &err) != SRV_OK)
        goto fail;
    if (srv_db_key_get(c->w->db, c->params[0], &old, &err) != SRV_OK)
        goto fail;
    if (old.is_ca) {
        srv_fail(&err, SRV_E_FORBIDDEN, "the CA key cannot be used through this call");
        goto fail;
    }
    /* A new certificate: asked for by name, or the old one's subject if the CA issued it. */
    if (!cn && srv_db_cert_get(c->w->db, old.id, &rec, NULL) == SRV_OK &&
        builtin_subject(c->w->app, &rec, cn_buf, sizeof(cn_buf), org_buf, sizeof(org_buf))) {
        cn = cn_buf;
        org = org_buf[0] ? org_buf : NULL;
    }
    new_key.type = old.type;
    snprintf(new_key.name, sizeof(new_key.name), "%s", old.name);
    if (srv_random(new_key.ckaid, SRV_CKAID_LEN, &err) != SRV_OK ||
        srv_hsm_generate_key(c->w->app->hsm, new_key.type, new_key.ckaid, SRV_CKAID_LEN, old.name,
                             &new_key.spki, &new_key.spki_len, &err) != SRV_OK)
        goto fail;
    generated = 1;
    if (cn) {
        if (api_issue_codesigning(c, new_key.spki, new_key.spki_len, cn, org, days, &cert, &err) !=
                SRV_OK ||
            srv_cert_to_der(cert, &job.der, &job.der_len, &err) != SRV_OK ||
            srv_cert_to_pem(cert, &pem, &err) != SRV_OK)
            goto fail;
        job.chain_pem = c->w->app->ca_pem;
        job.not_after = srv_cert_not_after(cert);
    }
    job.c = c;
    job.reason = reason;
    job.old = &old;
    job.new_key = &new_key;
    if (srv_writer_run(c->w->app->writer, run_rotate, &job, &err) != SRV_OK)
        goto fail;
    generated = 0;
    new_key.id = old.id;
    api_reply(c, 200, api_key_json(c, &new_key, 1));
    goto out;
fail:
    /* A key the database does not know must not linger in the HSM. */
    if (generated)
        srv_hsm_destroy_key(c->w->app->hsm, new_key.ckaid, SRV_CKAID_LEN, NULL);
    api_reply_error(c, &err);
out:
    X509_free(cert);
    free(pem);
    free(job.der);
    srv_cert_record_clear(&rec);
    srv_key_clear(&old);
    srv_key_clear(&new_key);
}

/* ---- earlier versions ------------------------------------------------------------------ */

static void add_version(const srv_key_version *v, void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    char hex[2 * SRV_CKAID_LEN + 1];
    srv_hex_encode(v->ckaid, SRV_CKAID_LEN, hex);
    cJSON_AddNumberToObject(o, "version", (double)v->version);
    cJSON_AddStringToObject(o, "id", hex);
    cJSON_AddNumberToObject(o, "created_at", (double)v->created_at);
    cJSON_AddNumberToObject(o, "rotated_at", (double)v->rotated_at);
    if (v->retired_at)
        cJSON_AddNumberToObject(o, "retired_at", (double)v->retired_at);
    if (v->cert_der && v->cert_der_len) {
        char *b64 = srv_b64_encode(v->cert_der, v->cert_der_len);
        cJSON_AddStringToObject(o, "certificate", b64 ? b64 : "");
        cJSON_AddNumberToObject(o, "certificate_not_after", (double)v->cert_not_after);
        free(b64);
    }
    cJSON_AddItemToArray(ctx, o);
}

/* GET /api/v1/admin/keys/{name}/versions */
void api_admin_key_versions(api_call *c)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "versions");
    srv_key key;
    srv_error err;
    memset(&key, 0, sizeof(key));
    if (srv_db_key_get(c->w->db, c->params[0], &key, &err) != SRV_OK ||
        srv_db_key_versions(c->w->db, key.id, 0, add_version, arr, &err) != SRV_OK) {
        cJSON_Delete(doc);
        srv_key_clear(&key);
        api_reply_error(c, &err);
        return;
    }
    cJSON_AddNumberToObject(doc, "current_version", (double)(cJSON_GetArraySize(arr) + 1));
    srv_key_clear(&key);
    api_reply(c, 200, doc);
}

typedef struct {
    const api_call *c;
    const char *reason;
    int64_t version;
    uint8_t ckaid[SRV_CKAID_LEN];
    int found;
} retire_job;

static void find_version(const srv_key_version *v, void *ctx)
{
    retire_job *j = ctx;
    memcpy(j->ckaid, v->ckaid, SRV_CKAID_LEN);
    j->found = 1;
}

static srv_status run_retire(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    retire_job *j = ctx;
    char hex[2 * SRV_CKAID_LEN + 1];
    srv_key key;
    cJSON *detail;
    srv_status st;

    memset(&key, 0, sizeof(key));
    if ((st = srv_db_key_get(db, j->c->params[0], &key, err)) != SRV_OK)
        return st;
    st = srv_db_key_versions(db, key.id, j->version, find_version, j, err);
    if (st == SRV_OK)
        st = srv_db_key_version_retire(db, key.id, j->version, srv_now(), err);
    if (st == SRV_OK) {
        srv_hex_encode(j->ckaid, SRV_CKAID_LEN, hex);
        detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "key", key.name);
        cJSON_AddNumberToObject(detail, "version", (double)j->version);
        cJSON_AddStringToObject(detail, "id", hex);
        cJSON_AddStringToObject(detail, "reason", j->reason);
        st = api_audit(j->c, db, audit, "key.retire", detail, err);
        cJSON_Delete(detail);
    }
    srv_key_clear(&key);
    return st;
}

/* POST /api/v1/admin/keys/{name}/versions/{version}/retire {"reason"} */
void api_admin_key_retire(api_call *c)
{
    retire_job job;
    cJSON *doc;
    char *end;
    srv_error err;

    memset(&job, 0, sizeof(job));
    job.c = c;
    job.version = strtoll(c->params[1], &end, 10);
    if (*end || job.version < 1) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "the version in the path must be a number");
        goto fail;
    }
    if (api_reason_only(c->body, &job.reason, &err) != SRV_OK)
        goto fail;
    if (srv_writer_run(c->w->app->writer, run_retire, &job, &err) != SRV_OK)
        goto fail;
    /* Recorded as retired first: a failure here leaves an unused object, never a key the
     * database still counts on. */
    if (srv_hsm_destroy_key(c->w->app->hsm, job.ckaid, SRV_CKAID_LEN, &err) != SRV_OK)
        goto fail;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "key", c->params[0]);
    cJSON_AddNumberToObject(doc, "version", (double)job.version);
    cJSON_AddBoolToObject(doc, "retired", 1);
    api_reply(c, 200, doc);
    return;
fail:
    api_reply_error(c, &err);
}
