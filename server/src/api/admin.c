/* Admin API: users and API keys, keys in the HSM, certificates (built-in CA, CSR, import),
 * grants, disabling, and reading the audit log. Every change is audited in the same
 * transaction that makes it. */
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/credentials.h"
#include "../ca/ca.h"
#include "../common/b64.h"
#include "../common/util.h"
#include "../store/key_db.h"
#include "../store/project_db.h"
#include "internal.h"

/* ---- shared helpers ----------------------------------------------------------------------- */

static void fail_reply(api_call *c, srv_error *err)
{
    api_reply_error(c, err);
}

/* Splits a PEM bundle into an array of base64 DER strings. */
static cJSON *pem_chain_to_json(const char *pem)
{
    cJSON *arr = cJSON_CreateArray();
    BIO *bio = pem && *pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *x;
    while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        if (len > 0) {
            char *b64 = srv_b64_encode(der, (size_t)len);
            if (b64)
                cJSON_AddItemToArray(arr, cJSON_CreateString(b64));
            free(b64);
        }
        OPENSSL_free(der);
        X509_free(x);
    }
    BIO_free(bio);
    return arr;
}

static void add_previous_cert(const srv_key_version *v, void *ctx)
{
    char *b64;
    if (v->retired_at || !v->cert_der || !v->cert_der_len)
        return;
    b64 = srv_b64_encode(v->cert_der, v->cert_der_len);
    if (b64)
        cJSON_AddItemToArray(ctx, cJSON_CreateString(b64));
    free(b64);
}

cJSON *api_key_json(api_call *c, const srv_key *key, int with_cert)
{
    cJSON *doc = cJSON_CreateObject();
    char id_hex[2 * SRV_CKAID_LEN + 1];
    char *spki = srv_b64_encode(key->spki, key->spki_len);
    srv_cert_record cert;

    srv_hex_encode(key->ckaid, SRV_CKAID_LEN, id_hex);
    cJSON_AddStringToObject(doc, "name", key->name);
    cJSON_AddStringToObject(doc, "id", id_hex);
    cJSON_AddStringToObject(doc, "type", srv_key_type_name(key->type));
    cJSON_AddBoolToObject(doc, "disabled", key->disabled);
    if (key->project[0])
        cJSON_AddStringToObject(doc, "project", key->project);
    else
        cJSON_AddNullToObject(doc, "project");
    cJSON_AddNumberToObject(doc, "created_at", (double)key->created_at);
    cJSON_AddStringToObject(doc, "public_key", spki ? spki : "");
    free(spki);
    if (with_cert && srv_db_cert_get(c->w->db, key->id, &cert, NULL) == SRV_OK) {
        char *b64 = srv_b64_encode(cert.der, cert.der_len);
        cJSON_AddStringToObject(doc, "certificate", b64 ? b64 : "");
        cJSON_AddNumberToObject(doc, "certificate_not_after", (double)cert.not_after);
        cJSON_AddItemToObject(doc, "chain", pem_chain_to_json(cert.chain_pem));
        free(b64);
        srv_cert_record_clear(&cert);
    } else if (with_cert) {
        cJSON_AddNullToObject(doc, "certificate");
        cJSON_AddItemToObject(doc, "chain", cJSON_CreateArray());
    }
    if (with_cert) {
        /* Signatures made before a rotation verify with these. */
        cJSON *prev = cJSON_AddArrayToObject(doc, "previous_certificates");
        srv_db_key_versions(c->w->db, key->id, 0, add_previous_cert, prev, NULL);
    }
    return doc;
}

/* Looks up a key named in the path that admins may work on (never the CA's own key). */
static srv_status path_key(api_call *c, srv_key *key, srv_error *err)
{
    srv_status st = srv_db_key_get(c->w->db, c->params[0], key, err);
    if (st == SRV_OK && key->is_ca) {
        srv_key_clear(key);
        return srv_fail(err, SRV_E_FORBIDDEN, "the CA key cannot be used through this call");
    }
    return st;
}

/* ---- users -------------------------------------------------------------------------------- */

static void add_user(const srv_user *u, int64_t created_at, void *ctx)
{
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "name", u->name);
    cJSON_AddStringToObject(item, "role", srv_role_name(u->role));
    cJSON_AddStringToObject(item, "kind", srv_user_kind_name(u->kind));
    cJSON_AddBoolToObject(item, "disabled", u->disabled);
    cJSON_AddNumberToObject(item, "created_at", (double)created_at);
    cJSON_AddItemToArray(ctx, item);
}

void api_admin_users_list(api_call *c)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "users");
    srv_error err;
    if (srv_db_users_list(c->w->db, add_user, arr, &err) != SRV_OK) {
        cJSON_Delete(doc);
        fail_reply(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

typedef struct {
    const api_call *c;
    const char *name; /* user to create, or to add a key to */
    srv_role role;
    int create;
    char key[SRV_APIKEY_TEXT_MAX + 1];
    char prefix[SRV_APIKEY_PREFIX_LEN + 1];
    uint8_t hash[32];
} user_job;

static srv_status run_user_job(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    user_job *j = ctx;
    int64_t user_id = 0;
    srv_user u;
    cJSON *detail;
    srv_status st;

    if (j->create) {
        st = srv_db_user_insert(db, j->name, j->role, &user_id, err);
        if (st == SRV_E_EXISTS)
            return srv_fail(err, SRV_E_EXISTS, "a user named \"%s\" already exists", j->name);
    } else {
        st = srv_db_user_get(db, j->name, &u, err);
        if (st == SRV_OK && u.kind == SRV_KIND_SERVICE)
            return srv_fail(err, SRV_E_INVALID_FIELD,
                            "\"%s\" is a service account: it authenticates with an enrolled key "
                            "pair or CI OIDC, not an API key",
                            j->name);
        user_id = u.id;
        j->role = u.role;
    }
    if (st == SRV_OK)
        st = srv_db_apikey_insert(db, user_id, j->prefix, j->hash, err);
    if (st != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "user", j->name);
    cJSON_AddStringToObject(detail, "role", srv_role_name(j->role));
    cJSON_AddStringToObject(detail, "api_key_prefix", j->prefix);
    st = api_audit(j->c, db, audit, j->create ? "user.create" : "apikey.create", detail, err);
    cJSON_Delete(detail);
    return st;
}

static void reply_user_key(api_call *c, user_job *job, int status)
{
    cJSON *doc = cJSON_CreateObject(), *u = cJSON_AddObjectToObject(doc, "user");
    cJSON_AddStringToObject(u, "name", job->name);
    cJSON_AddStringToObject(u, "role", srv_role_name(job->role));
    cJSON_AddStringToObject(doc, "api_key", job->key);
    cJSON_AddStringToObject(doc, "api_key_prefix", job->prefix);
    cJSON_AddStringToObject(doc, "note", "the API key is shown only once; store it now");
    api_reply(c, status, doc);
}

void api_admin_users_create(api_call *c)
{
    static const char *const fields[] = {"name", "role", NULL};
    const char *name = NULL, *role = NULL;
    user_job job;
    srv_error err;

    memset(&job, 0, sizeof(job));
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "name", 1, SRV_NAME_MAX, &name, &err) != SRV_OK ||
        srv_json_get_string(c->body, "role", 1, 16, &role, &err) != SRV_OK)
        goto fail;
    if (!srv_valid_name(name, SRV_NAME_MAX)) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "name must be 1-64 characters of [A-Za-z0-9._-]");
        goto fail;
    }
    if (!srv_role_parse(role, &job.role)) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "role must be \"admin\" or \"signer\"");
        goto fail;
    }
    job.c = c;
    job.name = name;
    job.create = 1;
    if (srv_apikey_new(job.key, job.prefix, job.hash, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, run_user_job, &job, &err) != SRV_OK)
        goto fail;
    reply_user_key(c, &job, 201);
    return;
fail:
    fail_reply(c, &err);
}

void api_admin_apikey_create(api_call *c)
{
    user_job job;
    srv_error err;

    memset(&job, 0, sizeof(job));
    job.c = c;
    job.name = c->params[0];
    if (srv_apikey_new(job.key, job.prefix, job.hash, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, run_user_job, &job, &err) != SRV_OK) {
        fail_reply(c, &err);
        return;
    }
    reply_user_key(c, &job, 201);
}

/* ---- keys --------------------------------------------------------------------------------- */

static void add_key(const srv_key *key, void *ctx)
{
    void **args = ctx;
    cJSON_AddItemToArray(args[1], api_key_json(args[0], key, 1));
}

void api_admin_keys_list(api_call *c)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "keys");
    void *args[2] = {c, arr};
    srv_error err;
    if (srv_db_keys_list(c->w->db, -1, add_key, args, &err) != SRV_OK) {
        cJSON_Delete(doc);
        fail_reply(c, &err);
        return;
    }
    api_reply(c, 200, doc);
}

typedef struct {
    const api_call *c;
    srv_key *key;
    const char *certificate; /* "none", "builtin" (der set), "external" (a CSR is returned) */
    uint8_t *der;
    size_t der_len;
    int64_t not_after;
    int adopted; /* the pair was in the token already (hsm_id) */
} key_job;

static srv_status run_key_create(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    key_job *j = ctx;
    char id_hex[2 * SRV_CKAID_LEN + 1];
    cJSON *detail;
    srv_status st = srv_db_key_insert(db, j->key, err);
    if (st == SRV_E_EXISTS)
        return srv_fail(err, SRV_E_EXISTS, "a key named \"%s\" already exists", j->key->name);
    /* The key and its certificate from the built-in CA commit together or not at all. */
    if (st == SRV_OK && j->der)
        st = srv_db_cert_set(db, j->key->id, j->der, j->der_len, j->c->w->app->ca_pem, j->not_after,
                             err);
    /* And into its project, read again here: it may have been deleted meanwhile. */
    if (st == SRV_OK && j->c->project[0]) {
        srv_project p;
        if ((st = srv_db_project_get(db, j->c->project, &p, err)) == SRV_OK &&
            (st = srv_db_key_set_project(db, j->key->id, p.id, err)) == SRV_OK) {
            j->key->project_id = p.id;
            snprintf(j->key->project, sizeof(j->key->project), "%s", p.name);
        }
    }
    if (st != SRV_OK)
        return st;
    srv_hex_encode(j->key->ckaid, SRV_CKAID_LEN, id_hex);
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "key", j->key->name);
    cJSON_AddStringToObject(detail, "type", srv_key_type_name(j->key->type));
    cJSON_AddStringToObject(detail, "id", id_hex);
    cJSON_AddStringToObject(detail, "certificate", j->certificate);
    if (j->adopted)
        cJSON_AddBoolToObject(detail, "adopted", 1);
    st = api_audit(j->c, db, audit, "key.create", detail, err);
    cJSON_Delete(detail);
    return st;
}

srv_status api_issue_codesigning(api_call *c, const uint8_t *spki, size_t spki_len, const char *cn,
                                 const char *org, long long days, X509 **out, srv_error *err)
{
    char crl_url[SRV_PUBLIC_URL_MAX + sizeof(SRV_CRL_PATH)];
    srv_cert_request req;
    memset(&req, 0, sizeof(req));
    req.profile = SRV_CERT_CODESIGNING;
    req.common_name = cn;
    req.organization = org;
    req.validity_days = (unsigned)days;
    snprintf(crl_url, sizeof(crl_url), "%s%s", c->w->app->public_url, SRV_CRL_PATH);
    req.crl_url = crl_url;
    return srv_ca_issue(&c->w->app->ca, spki, spki_len, &req, out, err);
}

/* The certificate the new key gets at once: one from the built-in CA (issued before the key
 * is committed, so both land together), or a CSR for an external CA, or none. */
static srv_status key_certificate(api_call *c, srv_key *key, key_job *job, const char *cn,
                                  const char *org, long long days, char **csr_pem, srv_error *err)
{
    srv_hsm_key hk = {key->type, key->ckaid, SRV_CKAID_LEN, key->spki, key->spki_len};
    X509_REQ *csr = NULL;
    X509 *cert = NULL;
    BIO *bio = NULL;
    BUF_MEM *mem = NULL;
    srv_status st = SRV_OK;

    if (!strcmp(job->certificate, "builtin")) {
        if ((st = api_issue_codesigning(c, key->spki, key->spki_len, cn, org, days, &cert, err)) ==
            SRV_OK)
            st = srv_cert_to_der(cert, &job->der, &job->der_len, err);
        job->not_after = cert ? srv_cert_not_after(cert) : 0;
    } else if (!strcmp(job->certificate, "external")) {
        if ((st = srv_ca_make_csr(c->w->app->hsm, &hk, cn, org, &csr, err)) == SRV_OK) {
            bio = BIO_new(BIO_s_mem());
            if (!bio || !PEM_write_bio_X509_REQ(bio, csr)) {
                st = srv_fail(err, SRV_E_NOMEM, "cannot encode the CSR");
            } else {
                BIO_get_mem_ptr(bio, &mem);
                *csr_pem = strndup(mem->data, mem->length);
                if (!*csr_pem)
                    st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            }
        }
    }
    X509_free(cert);
    X509_REQ_free(csr);
    BIO_free(bio);
    return st;
}

/* POST /api/v1/admin/keys {"name", "type", "certificate": "none"|"builtin"|"external",
 * "common_name", "organization", "validity_days", "project", "hsm_id"}: a global admin, or the
 * admin of the project named. With hsm_id the key pair is not generated but adopted from the
 * token (key_adopt.c). */
void api_admin_keys_create(api_call *c)
{
    static const char *const fields[] = {"name",        "type",         "certificate",
                                         "common_name", "organization", "validity_days",
                                         "project",     "hsm_id",       NULL};
    const char *name = NULL, *type = NULL, *cn = NULL, *org = NULL, *project = NULL;
    const char *hsm_id = NULL;
    char *csr_pem = NULL;
    long long days = 365;
    srv_key key, existing;
    key_job job;
    cJSON *doc;
    srv_error err;
    int generated = 0;

    memset(&key, 0, sizeof(key));
    memset(&job, 0, sizeof(job));
    job.certificate = "none";
    if (srv_json_get_string(c->body, "project", 0, SRV_NAME_MAX, &project, &err) != SRV_OK ||
        (project ? api_project_scope(c, 0, project, &err)
                 : api_require_admin_or_project(c, NULL, &err)) != SRV_OK)
        goto fail;
    if (project && !c->project[0]) {
        srv_fail(&err, SRV_E_PROJECT_NOT_FOUND, "no project named \"%s\"", project);
        goto fail;
    }
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "name", 1, SRV_NAME_MAX, &name, &err) != SRV_OK ||
        srv_json_get_string(c->body, "type", 1, 16, &type, &err) != SRV_OK ||
        srv_json_get_string(c->body, "certificate", 0, 16, &job.certificate, &err) != SRV_OK ||
        srv_json_get_string(c->body, "common_name", 0, 64, &cn, &err) != SRV_OK ||
        srv_json_get_string(c->body, "organization", 0, 64, &org, &err) != SRV_OK ||
        srv_json_get_int(c->body, "validity_days", 0, 1, 3650, &days, &err) != SRV_OK ||
        srv_json_get_string(c->body, "hsm_id", 0, 2 * SRV_CKAID_LEN, &hsm_id, &err) != SRV_OK)
        goto fail;
    if (!srv_valid_name(name, SRV_NAME_MAX)) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "name must be 1-64 characters of [A-Za-z0-9._-]");
        goto fail;
    }
    if (!srv_key_type_parse(type, &key.type)) {
        srv_fail(&err, SRV_E_INVALID_FIELD,
                 "type must be one of rsa2048, rsa3072, rsa4096, ec-p256, ec-p384");
        goto fail;
    }
    if (strcmp(job.certificate, "none") && strcmp(job.certificate, "builtin") &&
        strcmp(job.certificate, "external")) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "certificate must be none, builtin or external");
        goto fail;
    }
    if (strcmp(job.certificate, "none") ? !cn : (cn || org)) {
        srv_fail(&err, SRV_E_INVALID_FIELD,
                 "common_name is needed for a certificate (builtin) or a CSR (external), and "
                 "only then");
        goto fail;
    }
    /* Check the name first so a duplicate does not cost an HSM key generation. */
    if (srv_db_key_get(c->w->db, name, &existing, NULL) == SRV_OK) {
        srv_key_clear(&existing);
        srv_fail(&err, SRV_E_EXISTS, "a key named \"%s\" already exists", name);
        goto fail;
    }
    snprintf(key.name, sizeof(key.name), "%s", name);
    if (hsm_id) {
        /* Not ours to destroy on failure: generated stays 0. */
        if (api_adopt_hsm_key(c, &key, hsm_id, &err) != SRV_OK)
            goto fail;
        job.adopted = 1;
    } else {
        if (srv_random(key.ckaid, SRV_CKAID_LEN, &err) != SRV_OK ||
            srv_hsm_generate_key(c->w->app->hsm, key.type, key.ckaid, SRV_CKAID_LEN, name,
                                 &key.spki, &key.spki_len, &err) != SRV_OK)
            goto fail;
        generated = 1;
    }
    job.c = c;
    job.key = &key;
    if (key_certificate(c, &key, &job, cn, org, days, &csr_pem, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, run_key_create, &job, &err) != SRV_OK)
        goto fail;
    doc = api_key_json(c, &key, job.der != NULL);
    if (csr_pem)
        cJSON_AddStringToObject(doc, "csr_pem", csr_pem);
    api_reply(c, 201, doc);
    goto out;
fail:
    /* A key the database does not know must not linger in the HSM. */
    if (generated)
        srv_hsm_destroy_key(c->w->app->hsm, key.ckaid, SRV_CKAID_LEN, NULL);
    fail_reply(c, &err);
out:
    free(csr_pem);
    free(job.der);
    srv_key_clear(&key);
}

void api_admin_key_get(api_call *c)
{
    srv_key key;
    srv_error err;
    if (path_key(c, &key, &err) != SRV_OK) {
        fail_reply(c, &err);
        return;
    }
    api_reply(c, 200, api_key_json(c, &key, 1));
    srv_key_clear(&key);
}

/* ---- certificates ------------------------------------------------------------------------- */

typedef struct {
    const api_call *c;
    const char *action;
    const srv_key *key;
    const uint8_t *der;
    size_t der_len;
    const char *chain_pem;
    int64_t not_after;
    cJSON *detail;
} cert_job;

static srv_status run_cert_set(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    cert_job *j = ctx;
    srv_status st =
        srv_db_cert_set(db, j->key->id, j->der, j->der_len, j->chain_pem, j->not_after, err);
    if (st == SRV_OK)
        st = api_audit(j->c, db, audit, j->action, j->detail, err);
    return st;
}

static void describe_cert(cJSON *detail, X509 *cert)
{
    char subject[256];
    ASN1_INTEGER *serial = X509_get_serialNumber(cert);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    cJSON_AddStringToObject(detail, "subject", subject);
    cJSON_AddStringToObject(detail, "serial", hex ? hex : "");
    cJSON_AddNumberToObject(detail, "not_after", (double)srv_cert_not_after(cert));
    OPENSSL_free(hex);
    BN_free(bn);
}

static void reply_cert(api_call *c, int status, X509 *leaf, const char *chain_pem)
{
    cJSON *doc = cJSON_CreateObject();
    char *pem = NULL;
    srv_error err;
    if (srv_cert_to_pem(leaf, &pem, &err) != SRV_OK) {
        cJSON_Delete(doc);
        fail_reply(c, &err);
        return;
    }
    cJSON_AddStringToObject(doc, "key", c->params[0]);
    cJSON_AddStringToObject(doc, "certificate_pem", pem);
    cJSON_AddStringToObject(doc, "chain_pem", chain_pem ? chain_pem : "");
    free(pem);
    api_reply(c, status, doc);
}

void api_admin_cert_issue(api_call *c)
{
    static const char *const fields[] = {"common_name", "organization", "validity_days", NULL};
    const char *cn = NULL, *org = NULL;
    long long days = 365;
    srv_key key;
    X509 *cert = NULL;
    uint8_t *der = NULL;
    cert_job job;
    srv_error err;
    int have_key = 0;

    memset(&job, 0, sizeof(job));
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "common_name", 1, 64, &cn, &err) != SRV_OK ||
        srv_json_get_string(c->body, "organization", 0, 64, &org, &err) != SRV_OK ||
        srv_json_get_int(c->body, "validity_days", 0, 1, 3650, &days, &err) != SRV_OK ||
        path_key(c, &key, &err) != SRV_OK)
        goto fail;
    have_key = 1;
    if (key.disabled) {
        srv_fail(&err, SRV_E_KEY_DISABLED, "key \"%s\" is disabled", key.name);
        goto fail;
    }
    if (api_issue_codesigning(c, key.spki, key.spki_len, cn, org, days, &cert, &err) != SRV_OK ||
        srv_cert_to_der(cert, &der, &job.der_len, &err) != SRV_OK)
        goto fail;
    job.c = c;
    job.action = "certificate.issue";
    job.key = &key;
    job.der = der;
    job.chain_pem = c->w->app->ca_pem;
    job.not_after = srv_cert_not_after(cert);
    job.detail = cJSON_CreateObject();
    cJSON_AddStringToObject(job.detail, "key", key.name);
    describe_cert(job.detail, cert);
    if (srv_writer_run(c->w->app->writer, run_cert_set, &job, &err) != SRV_OK)
        goto fail;
    reply_cert(c, 201, cert, c->w->app->ca_pem);
    goto out;
fail:
    fail_reply(c, &err);
out:
    cJSON_Delete(job.detail);
    free(der);
    X509_free(cert);
    if (have_key)
        srv_key_clear(&key);
}

void api_admin_cert_import(api_call *c)
{
    static const char *const fields[] = {"chain_pem", NULL};
    const char *pem = NULL;
    STACK_OF(X509) *chain = NULL;
    char *rest = NULL;
    uint8_t *der = NULL;
    srv_key key;
    cert_job job;
    srv_error err;
    int have_key = 0;

    memset(&job, 0, sizeof(job));
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "chain_pem", 1, API_CHAIN_BODY_CAP, &pem, &err) != SRV_OK ||
        path_key(c, &key, &err) != SRV_OK)
        goto fail;
    have_key = 1;
    if (srv_ca_parse_chain(pem, strlen(pem), key.spki, key.spki_len, &chain, &err) != SRV_OK ||
        srv_cert_to_der(sk_X509_value(chain, 0), &der, &job.der_len, &err) != SRV_OK)
        goto fail;
    {
        /* Keep the rest of the chain as PEM, in order. */
        BIO *bio = BIO_new(BIO_s_mem());
        BUF_MEM *mem = NULL;
        for (int i = 1; bio && i < sk_X509_num(chain); i++)
            PEM_write_bio_X509(bio, sk_X509_value(chain, i));
        if (bio)
            BIO_get_mem_ptr(bio, &mem);
        rest = mem ? strndup(mem->data, mem->length) : NULL;
        BIO_free(bio);
        if (!rest) {
            srv_fail(&err, SRV_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    job.c = c;
    job.action = "certificate.import";
    job.key = &key;
    job.der = der;
    job.chain_pem = rest;
    job.not_after = srv_cert_not_after(sk_X509_value(chain, 0));
    job.detail = cJSON_CreateObject();
    cJSON_AddStringToObject(job.detail, "key", key.name);
    cJSON_AddNumberToObject(job.detail, "chain_length", sk_X509_num(chain));
    describe_cert(job.detail, sk_X509_value(chain, 0));
    if (srv_writer_run(c->w->app->writer, run_cert_set, &job, &err) != SRV_OK)
        goto fail;
    reply_cert(c, 200, sk_X509_value(chain, 0), rest);
    goto out;
fail:
    fail_reply(c, &err);
out:
    cJSON_Delete(job.detail);
    free(rest);
    free(der);
    if (chain)
        sk_X509_pop_free(chain, X509_free);
    if (have_key)
        srv_key_clear(&key);
}

static srv_status run_audit_only(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    cert_job *j = ctx;
    return api_audit(j->c, db, audit, j->action, j->detail, err);
}

void api_admin_csr(api_call *c)
{
    static const char *const fields[] = {"common_name", "organization", NULL};
    const char *cn = NULL, *org = NULL;
    srv_hsm_key hk;
    X509_REQ *req = NULL;
    BIO *bio = NULL;
    BUF_MEM *mem = NULL;
    srv_key key;
    cert_job job;
    srv_error err;
    int have_key = 0;

    memset(&job, 0, sizeof(job));
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "common_name", 1, 64, &cn, &err) != SRV_OK ||
        srv_json_get_string(c->body, "organization", 0, 64, &org, &err) != SRV_OK ||
        path_key(c, &key, &err) != SRV_OK)
        goto fail;
    have_key = 1;
    if (key.disabled) {
        srv_fail(&err, SRV_E_KEY_DISABLED, "key \"%s\" is disabled", key.name);
        goto fail;
    }
    hk.type = key.type;
    hk.ckaid = key.ckaid;
    hk.ckaid_len = SRV_CKAID_LEN;
    hk.spki = key.spki;
    hk.spki_len = key.spki_len;
    if (srv_ca_make_csr(c->w->app->hsm, &hk, cn, org, &req, &err) != SRV_OK)
        goto fail;
    bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_X509_REQ(bio, req)) {
        srv_fail(&err, SRV_E_NOMEM, "cannot encode the CSR");
        goto fail;
    }
    BIO_get_mem_ptr(bio, &mem);
    job.c = c;
    job.action = "csr.create";
    job.detail = cJSON_CreateObject();
    cJSON_AddStringToObject(job.detail, "key", key.name);
    cJSON_AddStringToObject(job.detail, "common_name", cn);
    /* Producing a CSR is a signature by the key: it is audited before the CSR leaves. */
    if (srv_writer_run(c->w->app->writer, run_audit_only, &job, &err) != SRV_OK)
        goto fail;
    {
        cJSON *doc = cJSON_CreateObject();
        char *pem = strndup(mem->data, mem->length);
        cJSON_AddStringToObject(doc, "key", key.name);
        cJSON_AddStringToObject(doc, "csr_pem", pem ? pem : "");
        free(pem);
        api_reply(c, 200, doc);
    }
    goto out;
fail:
    fail_reply(c, &err);
out:
    cJSON_Delete(job.detail);
    BIO_free(bio);
    X509_REQ_free(req);
    if (have_key)
        srv_key_clear(&key);
}

/* ---- disabling ----------------------------------------------------------------------------- */

typedef struct {
    const api_call *c;
    const char *key_name, *reason;
} key_change_job;

static srv_status run_key_disable(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    key_change_job *j = ctx;
    srv_key key;
    cJSON *detail;
    srv_status st = srv_db_key_get(db, j->key_name, &key, err);

    if (st != SRV_OK)
        return st;
    if (key.is_ca) {
        srv_key_clear(&key);
        return srv_fail(err, SRV_E_FORBIDDEN, "the CA key cannot be used through this call");
    }
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "key", key.name);
    cJSON_AddStringToObject(detail, "reason", j->reason);
    st = srv_db_key_disable(db, key.id, err);
    if (st == SRV_OK)
        st = api_audit(j->c, db, audit, "key.disable", detail, err);
    cJSON_Delete(detail);
    srv_key_clear(&key);
    return st;
}

void api_admin_disable(api_call *c)
{
    key_change_job job = {c, c->params[0], NULL};
    srv_key key;
    srv_error err;

    if (api_reason_only(c->body, &job.reason, &err) != SRV_OK ||
        srv_writer_run(c->w->app->writer, run_key_disable, &job, &err) != SRV_OK ||
        srv_db_key_get(c->w->db, c->params[0], &key, &err) != SRV_OK) {
        fail_reply(c, &err);
        return;
    }
    api_reply(c, 200, api_key_json(c, &key, 0));
    srv_key_clear(&key);
}
