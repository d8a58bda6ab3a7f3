/* Enrollment, unauthenticated but guarded by a one-time token an admin created: a service
 * account registers a P-256 public key for JWT assertions; a machine sends a CSR and gets a
 * TLS client certificate from the built-in CA. The token is used up in the transaction that
 * records the key or certificate, together with its audit record. */
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/credentials.h"
#include "../auth/jwt.h"
#include "../ca/ca.h"
#include "../common/b64.h"
#include "../common/util.h"
#include "internal.h"

#define PUBLIC_KEY_MAX    4096 /* bytes of DER; a P-256 SPKI is 91 */
#define CSR_PEM_MAX       (16 * 1024)
#define KID_BYTES         16
#define MACHINE_CERT_DAYS 365

/* Checks a presented enrollment token without using it up: the writer job does that. */
static srv_status check_token(api_call *c, const char *text, int for_machine, uint8_t hash[32],
                              srv_enroll_token *tok, srv_error *err)
{
    int64_t now = srv_now();
    srv_status st;

    if (!srv_enroll_token_parse(text, hash))
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "malformed enrollment token");
    st = srv_db_enroll_token_get(c->w->db, hash, tok, err);
    if (st == SRV_E_NOT_FOUND)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS, "unknown enrollment token");
    if (st != SRV_OK)
        return st;
    if (tok->used_at)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "enrollment token was already used (at %lld); ask an admin for a new one",
                        (long long)tok->used_at);
    if (tok->expires_at <= now)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "enrollment token expired at %lld; ask an admin for a new one",
                        (long long)tok->expires_at);
    if (for_machine && !tok->machine_id)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "this enrollment token is for a service account: use "
                        "/api/v1/enroll/service-account");
    if (!for_machine && !tok->user_id)
        return srv_fail(err, SRV_E_BAD_CREDENTIALS,
                        "this enrollment token is for a machine: use /api/v1/enroll/machine");
    return SRV_OK;
}

/* ---- service accounts ----------------------------------------------------------------------- */

typedef struct {
    api_call *c;
    uint8_t token_hash[32];
    char kid[2 * KID_BYTES + 1];
    const uint8_t *spki;
    size_t spki_len;
} key_enroll_job;

static srv_status run_key_enroll(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    key_enroll_job *j = ctx;
    cJSON *detail;
    srv_status st = srv_db_enroll_token_use(db, j->token_hash, srv_now(), err);
    if (st == SRV_OK)
        st = srv_db_sa_key_insert(db, j->kid, j->c->user.id, j->spki, j->spki_len, err);
    if (st == SRV_E_EXISTS)
        return srv_fail(err, SRV_E_EXISTS, "this public key is already enrolled (kid %s)", j->kid);
    if (st != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "service_account", j->c->user.name);
    cJSON_AddStringToObject(detail, "kid", j->kid);
    st = api_audit(j->c, db, audit, "service_account.enroll", detail, err);
    cJSON_Delete(detail);
    return st;
}

void api_enroll_service_account(api_call *c)
{
    static const char *const fields[] = {"enrollment_token", "public_key", NULL};
    const char *text = NULL, *pub = NULL;
    uint8_t *spki = NULL, digest[SRV_SHA256_LEN];
    EVP_PKEY *key = NULL;
    srv_enroll_token tok;
    key_enroll_job job;
    cJSON *doc;
    srv_error err, inner;
    srv_status st;

    memset(&job, 0, sizeof(job));
    job.c = c;
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "enrollment_token", 1, SRV_TOKEN_TEXT_MAX, &text, &err) !=
            SRV_OK ||
        srv_json_get_string(c->body, "public_key", 1, PUBLIC_KEY_MAX * 2, &pub, &err) != SRV_OK ||
        check_token(c, text, 0, job.token_hash, &tok, &err) != SRV_OK ||
        srv_db_user_get_by_id(c->w->db, tok.user_id, &c->user, &err) != SRV_OK)
        goto fail;
    if (c->user.kind != SRV_KIND_SERVICE || c->user.disabled) {
        srv_fail(&err, SRV_E_BAD_CREDENTIALS, "\"%s\" is not an enabled service account",
                 c->user.name);
        goto fail;
    }
    api_set_actor(c);
    st = srv_b64_decode(pub, strlen(pub), PUBLIC_KEY_MAX, &spki, &job.spki_len, &inner);
    if (st != SRV_OK) {
        srv_fail(&err, st, "public_key: %s", inner.message);
        goto fail;
    }
    if (!(key = srv_jwt_p256_from_spki(spki, job.spki_len, &err)))
        goto fail;
    /* kid: the first 16 bytes of the SHA-256 of the SPKI, so agent and server agree on it. */
    srv_sha256(spki, job.spki_len, digest);
    srv_hex_encode(digest, KID_BYTES, job.kid);
    job.spki = spki;
    if (srv_writer_run(c->w->app->writer, run_key_enroll, &job, &err) != SRV_OK)
        goto fail;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "service_account", c->user.name);
    cJSON_AddStringToObject(doc, "kid", job.kid);
    api_reply(c, 201, doc);
    goto out;
fail:
    api_reply_error(c, &err);
out:
    EVP_PKEY_free(key);
    free(spki);
}

/* ---- machines ------------------------------------------------------------------------------- */

typedef struct {
    api_call *c;
    uint8_t token_hash[32];
    const srv_machine *machine;
    uint8_t cert_sha256[SRV_SHA256_LEN];
    char serial[72];
    int64_t not_after;
} machine_enroll_job;

static srv_status run_machine_enroll(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    machine_enroll_job *j = ctx;
    char hex[2 * SRV_SHA256_LEN + 1];
    cJSON *detail;
    srv_status st = srv_db_enroll_token_use(db, j->token_hash, srv_now(), err);
    if (st == SRV_OK)
        st = srv_db_machine_set_cert(db, j->machine->id, j->cert_sha256, j->serial, j->not_after,
                                     err);
    if (st != SRV_OK)
        return st;
    srv_hex_encode(j->cert_sha256, SRV_SHA256_LEN, hex);
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "target_machine", j->machine->name);
    cJSON_AddStringToObject(detail, "serial", j->serial);
    cJSON_AddStringToObject(detail, "certificate_sha256", hex);
    cJSON_AddNumberToObject(detail, "not_after", (double)j->not_after);
    if (j->machine->enrolled) {
        srv_hex_encode(j->machine->cert_sha256, SRV_SHA256_LEN, hex);
        cJSON_AddStringToObject(detail, "replaced_certificate_sha256", hex);
    }
    st = api_audit(j->c, db, audit, "machine.enroll", detail, err);
    cJSON_Delete(detail);
    return st;
}

/* Parses one PEM CSR and checks that it is signed by the key it carries. */
static srv_status parse_csr(const char *pem, X509_REQ **out, srv_error *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;
    srv_status st = SRV_OK;

    BIO_free(bio);
    if (!req || !pub)
        st = srv_fail(err, SRV_E_INVALID_FIELD,
                      "csr_pem is not a PEM certificate request (BEGIN CERTIFICATE REQUEST)");
    else if (X509_REQ_verify(req, pub) != 1)
        st = srv_fail(err, SRV_E_INVALID_FIELD,
                      "the certificate request's signature does not verify with its own key");
    ERR_clear_error();
    if (st != SRV_OK) {
        X509_REQ_free(req);
        return st;
    }
    *out = req;
    return SRV_OK;
}

static void serial_hex(X509 *cert, char *out, size_t out_len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, out_len, "%s", hex ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
}

void api_enroll_machine(api_call *c)
{
    static const char *const fields[] = {"enrollment_token", "csr_pem", NULL};
    const char *text = NULL, *csr_pem = NULL;
    X509_REQ *csr = NULL;
    X509 *cert = NULL;
    unsigned char *spki = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    char *pem = NULL, hex[2 * SRV_SHA256_LEN + 1];
    int spki_len;
    srv_enroll_token tok;
    srv_cert_request req;
    srv_machine machine;
    machine_enroll_job job;
    cJSON *doc;
    srv_error err;

    memset(&job, 0, sizeof(job));
    job.c = c;
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "enrollment_token", 1, SRV_TOKEN_TEXT_MAX, &text, &err) !=
            SRV_OK ||
        srv_json_get_string(c->body, "csr_pem", 1, CSR_PEM_MAX, &csr_pem, &err) != SRV_OK ||
        check_token(c, text, 1, job.token_hash, &tok, &err) != SRV_OK ||
        srv_db_machine_get_by_id(c->w->db, tok.machine_id, &machine, &err) != SRV_OK)
        goto fail;
    snprintf(c->actor, sizeof(c->actor), "machine:%s", machine.name);
    if (machine.revoked) {
        srv_fail(&err, SRV_E_BAD_CREDENTIALS, "machine \"%s\" is revoked", machine.name);
        goto fail;
    }
    if (parse_csr(csr_pem, &csr, &err) != SRV_OK)
        goto fail;
    /* Only the key comes from the CSR; the subject is the name the admin gave the machine. */
    spki_len = i2d_PUBKEY(X509_REQ_get0_pubkey(csr), &spki);
    if (spki_len <= 0) {
        srv_fail(&err, SRV_E_INVALID_FIELD, "the certificate request's key cannot be encoded");
        goto fail;
    }
    memset(&req, 0, sizeof(req));
    req.profile = SRV_CERT_TLS_CLIENT;
    req.common_name = machine.name;
    req.validity_days = MACHINE_CERT_DAYS;
    if (srv_ca_issue(&c->w->app->ca, spki, (size_t)spki_len, &req, &cert, &err) != SRV_OK ||
        srv_cert_to_der(cert, &der, &der_len, &err) != SRV_OK ||
        srv_cert_to_pem(cert, &pem, &err) != SRV_OK)
        goto fail;
    srv_sha256(der, der_len, job.cert_sha256);
    serial_hex(cert, job.serial, sizeof(job.serial));
    job.not_after = srv_cert_not_after(cert);
    job.machine = &machine;
    /* Until this commits, the certificate exists only here: on failure it never leaves. */
    if (srv_writer_run(c->w->app->writer, run_machine_enroll, &job, &err) != SRV_OK)
        goto fail;
    srv_hex_encode(job.cert_sha256, SRV_SHA256_LEN, hex);
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "machine", machine.name);
    cJSON_AddStringToObject(doc, "certificate_pem", pem);
    cJSON_AddStringToObject(doc, "chain_pem", c->w->app->ca_pem);
    cJSON_AddStringToObject(doc, "certificate_sha256", hex);
    cJSON_AddNumberToObject(doc, "not_after", (double)job.not_after);
    api_reply(c, 201, doc);
    goto out;
fail:
    api_reply_error(c, &err);
out:
    free(pem);
    free(der);
    OPENSSL_free(spki);
    X509_free(cert);
    X509_REQ_free(csr);
}
