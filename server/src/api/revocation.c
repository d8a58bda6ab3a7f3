/* Certificate revocation on the built-in CA and its CRL: revoking a key's certificate with an
 * RFC 5280 reason (audited, the CRL re-signed in the same transaction), and GET /api/v1/crl,
 * the DER CRL that each issued certificate's CRL distribution point names. An anonymous
 * client only ever reads the stored CRL: it is re-signed when it comes within a day of its
 * nextUpdate, at most one refresh at a time, so no request can make the HSM sign at will. */
#include <openssl/bn.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../ca/ca.h"
#include "../common/util.h"
#include "../store/ca_db.h"
#include "../store/key_db.h"
#include "internal.h"
#include "signum/common/buf.h"

#define CRL_VALIDITY  (7 * 86400) /* nextUpdate - thisUpdate */
#define CRL_REFRESH   86400       /* re-sign once less than this is left */
#define COMMENT_MAX   512
#define CRL_ENTRY_CAP 100000

static pthread_mutex_t crl_refresh_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct {
    const char *name;
    int code; /* CRLReason, RFC 5280 section 5.3.1 */
} reasons[] = {
    {"unspecified", 0}, {"key_compromise", 1},         {"affiliation_changed", 3},
    {"superseded", 4},  {"cessation_of_operation", 5}, {"privilege_withdrawn", 9},
};

static const char *reason_name(int code)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].code == code)
            return reasons[i].name;
    return "unspecified";
}

/* ---- the CRL ------------------------------------------------------------------------------ */

typedef struct {
    srv_crl_entry *entries;
    size_t n, cap;
    srv_status st;
} entry_list;

static void collect(const srv_revocation *r, void *ctx)
{
    entry_list *l = ctx;
    if (l->st != SRV_OK)
        return;
    {
        void *items = l->entries;
        if (sgc_array_grow(&items, &l->cap, l->n + 1, sizeof(*l->entries), CRL_ENTRY_CAP) !=
            SGC_OK) {
            l->st = SRV_E_NOMEM;
            return;
        }
        l->entries = items;
    }
    l->entries[l->n].serial_hex = strdup(r->serial);
    l->entries[l->n].revoked_at = r->revoked_at;
    l->entries[l->n].reason = r->reason;
    if (!l->entries[l->n].serial_hex)
        l->st = SRV_E_NOMEM;
    else
        l->n++;
}

static void entry_list_free(entry_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->entries[i].serial_hex);
    free(l->entries);
}

/* Signs a new CRL from every revocation and stores it (inside a writer transaction). */
static srv_status crl_rebuild(srv_db *db, const srv_app *app, int64_t *number, srv_error *err)
{
    entry_list l = {NULL, 0, 0, SRV_OK};
    int64_t now = srv_now(), old = 0, next = 0;
    uint8_t *der = NULL;
    size_t der_len = 0;
    srv_status st = srv_db_crl_get(db, &old, &der, &der_len, &next, err);

    free(der);
    der = NULL;
    if (st == SRV_E_NOT_FOUND)
        old = 0;
    else if (st != SRV_OK)
        return st;
    if ((st = srv_db_revocations_list(db, collect, &l, err)) == SRV_OK && l.st != SRV_OK)
        st = srv_fail(err, l.st, "too many revocations for one CRL");
    if (st == SRV_OK)
        st = srv_ca_make_crl(&app->ca, l.entries, l.n, old + 1, now, now + CRL_VALIDITY, &der,
                             &der_len, err);
    if (st == SRV_OK)
        st = srv_db_crl_put(db, old + 1, der, der_len, now, now + CRL_VALIDITY, err);
    if (st == SRV_OK)
        *number = old + 1;
    free(der);
    entry_list_free(&l);
    return st;
}

typedef struct {
    const api_call *c;
    int64_t number;
} crl_job;

/* Re-signs the CRL if it is missing or near its nextUpdate (checked again in the transaction,
 * so concurrent refreshes sign once). */
static srv_status run_crl_refresh(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    crl_job *j = ctx;
    int64_t number = 0, next = 0;
    uint8_t *der = NULL;
    size_t der_len = 0;
    srv_audit_event ev;
    cJSON *detail;
    srv_status st = srv_db_crl_get(db, &number, &der, &der_len, &next, err);

    free(der);
    if (st == SRV_OK && next - srv_now() > CRL_REFRESH)
        return SRV_OK;
    if (st != SRV_OK && st != SRV_E_NOT_FOUND)
        return st;
    if ((st = crl_rebuild(db, j->c->w->app, &j->number, err)) != SRV_OK)
        return st;
    detail = cJSON_CreateObject();
    cJSON_AddNumberToObject(detail, "crl_number", (double)j->number);
    memset(&ev, 0, sizeof(ev));
    ev.actor = "system";
    ev.action = "ca.crl";
    ev.outcome = "ok";
    ev.detail = detail;
    st = srv_audit_append(db, audit, &ev, err);
    cJSON_Delete(detail);
    return st;
}

void api_crl(api_call *c)
{
    int64_t number = 0, next = 0;
    uint8_t *der = NULL;
    size_t der_len = 0;
    srv_error err;
    srv_status st = srv_db_crl_get(c->w->db, &number, &der, &der_len, &next, &err);

    if (st == SRV_E_NOT_FOUND || (st == SRV_OK && next - srv_now() <= CRL_REFRESH)) {
        crl_job job = {c, 0};
        free(der);
        der = NULL;
        pthread_mutex_lock(&crl_refresh_lock);
        st = srv_writer_run(c->w->app->writer, run_crl_refresh, &job, &err);
        pthread_mutex_unlock(&crl_refresh_lock);
        if (st == SRV_OK)
            st = srv_db_crl_get(c->w->db, &number, &der, &der_len, &next, &err);
    }
    if (st != SRV_OK) {
        api_reply_error(c, &err);
        return;
    }
    c->ex->status = 200;
    c->ex->response = (char *)der;
    c->ex->response_len = der_len;
    c->ex->response_type = "application/pkix-crl";
}

/* ---- revoking a key's certificate -------------------------------------------------------- */

typedef struct {
    const api_call *c;
    int reason;
    const char *comment;
    srv_revocation rev;
    char key_name[SRV_NAME_MAX + 1];
    int64_t crl_number;
} revoke_job;

/* The serial of the key's current certificate, if the built-in CA issued it. */
static srv_status issued_here(const srv_app *app, const srv_cert_record *rec, revoke_job *j,
                              srv_error *err)
{
    const unsigned char *p = rec->der;
    X509 *cert = d2i_X509(NULL, &p, (long)rec->der_len);
    BIGNUM *bn = NULL;
    char *hex = NULL;
    srv_status st = SRV_OK;

    if (!cert)
        return srv_fail(err, SRV_E_CERTIFICATE, "the key's certificate does not parse");
    if (X509_check_issued(app->ca.cert, cert) != X509_V_OK ||
        X509_verify(cert, X509_get0_pubkey(app->ca.cert)) != 1) {
        st = srv_fail(err, SRV_E_CERTIFICATE,
                      "the key's certificate was not issued by the built-in CA: revoke it at "
                      "the CA that issued it");
        goto out;
    }
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    if (!hex || strlen(hex) > SRV_SERIAL_HEX_MAX) {
        st = srv_fail(err, SRV_E_CERTIFICATE, "the certificate's serial number is unusable");
        goto out;
    }
    snprintf(j->rev.serial, sizeof(j->rev.serial), "%s", hex);
    j->rev.not_after = srv_cert_not_after(cert);
out:
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(cert);
    return st;
}

static srv_status run_revoke(srv_db *db, srv_audit_head *audit, void *ctx, srv_error *err)
{
    revoke_job *j = ctx;
    srv_cert_record rec;
    srv_key key;
    cJSON *detail;
    srv_status st;

    memset(&rec, 0, sizeof(rec));
    memset(&key, 0, sizeof(key));
    if ((st = srv_db_key_get(db, j->key_name, &key, err)) != SRV_OK)
        goto out;
    if (key.is_ca) {
        st = srv_fail(err, SRV_E_FORBIDDEN, "the CA key cannot be used through this call");
        goto out;
    }
    st = srv_db_cert_get(db, key.id, &rec, err);
    if (st == SRV_E_NOT_FOUND)
        st = srv_fail(err, SRV_E_NOT_FOUND, "key \"%s\" has no certificate", j->key_name);
    if (st != SRV_OK || (st = issued_here(j->c->w->app, &rec, j, err)) != SRV_OK)
        goto out;
    j->rev.key_id = key.id;
    j->rev.reason = j->reason;
    j->rev.revoked_at = srv_now();
    st = srv_db_revocation_insert(db, &j->rev, err);
    if (st == SRV_E_EXISTS)
        st = srv_fail(err, SRV_E_EXISTS, "certificate %s is already revoked", j->rev.serial);
    if (st == SRV_OK)
        st = srv_db_cert_mark_revoked(db, key.id, j->rev.revoked_at, err);
    if (st != SRV_OK || (st = crl_rebuild(db, j->c->w->app, &j->crl_number, err)) != SRV_OK)
        goto out;
    detail = cJSON_CreateObject();
    cJSON_AddStringToObject(detail, "key", j->key_name);
    cJSON_AddStringToObject(detail, "serial", j->rev.serial);
    cJSON_AddStringToObject(detail, "reason", reason_name(j->reason));
    cJSON_AddStringToObject(detail, "comment", j->comment);
    cJSON_AddNumberToObject(detail, "crl_number", (double)j->crl_number);
    st = api_audit(j->c, db, audit, "certificate.revoke", detail, err);
    cJSON_Delete(detail);
out:
    srv_cert_record_clear(&rec);
    srv_key_clear(&key);
    return st;
}

/* POST /api/v1/admin/keys/{name}/certificate/revoke {"reason": "key_compromise",
 * "comment": "why"} */
void api_admin_cert_revoke(api_call *c)
{
    static const char *const fields[] = {"reason", "comment", NULL};
    const char *reason = NULL;
    revoke_job job;
    cJSON *doc;
    srv_error err;
    size_t i;

    memset(&job, 0, sizeof(job));
    job.c = c;
    snprintf(job.key_name, sizeof(job.key_name), "%s", c->params[0]);
    if (srv_json_check_fields(c->body, fields, &err) != SRV_OK ||
        srv_json_get_string(c->body, "reason", 1, 64, &reason, &err) != SRV_OK ||
        srv_json_get_string(c->body, "comment", 1, COMMENT_MAX, &job.comment, &err) != SRV_OK)
        goto fail;
    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (!strcmp(reasons[i].name, reason))
            break;
    if (i == sizeof(reasons) / sizeof(reasons[0]) || !*job.comment) {
        srv_fail(&err, SRV_E_INVALID_FIELD,
                 "reason must be unspecified, key_compromise, affiliation_changed, superseded, "
                 "cessation_of_operation or privilege_withdrawn, and comment must say why");
        goto fail;
    }
    job.reason = reasons[i].code;
    if (srv_writer_run(c->w->app->writer, run_revoke, &job, &err) != SRV_OK)
        goto fail;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "key", job.key_name);
    cJSON_AddStringToObject(doc, "serial", job.rev.serial);
    cJSON_AddStringToObject(doc, "reason", reason);
    cJSON_AddNumberToObject(doc, "revoked_at", (double)job.rev.revoked_at);
    cJSON_AddNumberToObject(doc, "crl_number", (double)job.crl_number);
    api_reply(c, 200, doc);
    return;
fail:
    api_reply_error(c, &err);
}
