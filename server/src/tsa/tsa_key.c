/* The TSA's key and certificate, its serial numbers and its clock check. */
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ca/ca_internal.h"
#include "../common/b64.h"
#include "../common/util.h"
#include "tsa.h"

#define TSA_VALIDITY_MAX_DAYS 3650

/* The certificate lives as long as the CA allows (up to ten years): a token must stay
 * verifiable long after the signature it dates, which is its whole point. */
static unsigned validity_days(const srv_ca *ca)
{
    int64_t left = srv_cert_not_after(ca->cert) - srv_now();
    int64_t days = left / 86400 - 1;
    if (days > TSA_VALIDITY_MAX_DAYS)
        days = TSA_VALIDITY_MAX_DAYS;
    return days < 1 ? 0 : (unsigned)days;
}

srv_status srv_tsa_key_create(srv_hsm *hsm, const srv_ca *ca, srv_db *db, srv_key_type type,
                              const char *common_name, srv_tsa_key_row *out, srv_error *err)
{
    srv_cert_request req;
    X509 *cert = NULL;
    int generated = 0;
    srv_status st;

    memset(out, 0, sizeof(*out));
    out->type = type;
    if (type != SRV_KEY_EC_P256 && type != SRV_KEY_EC_P384 && type != SRV_KEY_RSA_3072 &&
        type != SRV_KEY_RSA_4096)
        return srv_fail(err, SRV_E_CONFIG,
                        "tsa_key_type must be ec-p256, ec-p384, rsa3072 or rsa4096");
    memset(&req, 0, sizeof(req));
    req.profile = SRV_CERT_TIMESTAMPING;
    req.common_name = common_name;
    req.validity_days = validity_days(ca);
    if (req.validity_days == 0)
        return srv_fail(err, SRV_E_CERTIFICATE, "the CA certificate expires within two days");
    if ((st = srv_random(out->ckaid, SRV_CKAID_LEN, err)) != SRV_OK ||
        (st = srv_hsm_generate_key(hsm, type, out->ckaid, SRV_CKAID_LEN, SRV_TSA_KEY_LABEL,
                                   &out->spki, &out->spki_len, err)) != SRV_OK)
        goto fail;
    generated = 1;
    if ((st = srv_ca_issue(ca, out->spki, out->spki_len, &req, &cert, err)) != SRV_OK ||
        (st = srv_cert_to_der(cert, &out->cert_der, &out->cert_der_len, err)) != SRV_OK ||
        (st = srv_db_tsa_key_insert(db, out, err)) != SRV_OK)
        goto fail;
    X509_free(cert);
    return SRV_OK;
fail:
    X509_free(cert);
    if (generated)
        srv_hsm_destroy_key(hsm, out->ckaid, SRV_CKAID_LEN, NULL);
    srv_tsa_key_row_clear(out);
    return st;
}

srv_status srv_tsa_open(srv_hsm *hsm, srv_tsa_key_row *row, const srv_tsa_options *opts,
                        srv_tsa **out, srv_error *err)
{
    srv_tsa *tsa = calloc(1, sizeof(*tsa));
    uint8_t hash[SRV_SHA256_LEN];
    srv_status st = SRV_OK;

    *out = NULL;
    if (!tsa)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    tsa->hsm = hsm;
    tsa->row = *row;
    memset(row, 0, sizeof(*row));
    tsa->key.type = tsa->row.type;
    tsa->key.ckaid = tsa->row.ckaid;
    tsa->key.ckaid_len = SRV_CKAID_LEN;
    tsa->key.spki = tsa->row.spki;
    tsa->key.spki_len = tsa->row.spki_len;
    tsa->accuracy_ms = opts->accuracy_ms;
    tsa->max_skew_ms = opts->max_skew_ms;
    if ((st = srv_cert_from_der(tsa->row.cert_der, tsa->row.cert_der_len, &tsa->cert, err)) !=
        SRV_OK)
        goto out;
    /* The certificate must be the key's: it names the key relying parties check against. */
    if (!srv_ca_spki_equals(X509_get_X509_PUBKEY(tsa->cert), tsa->row.spki, tsa->row.spki_len)) {
        st = srv_fail(err, SRV_E_CERTIFICATE, "the TSA certificate is not for the TSA key");
        goto out;
    }
    if (!opts->policy || strlen(opts->policy) >= sizeof(tsa->policy_text) ||
        !(tsa->policy = OBJ_txt2obj(opts->policy, 1))) {
        ERR_clear_error();
        st = srv_fail(err, SRV_E_CONFIG, "tsa_policy must be a dotted object identifier");
        goto out;
    }
    snprintf(tsa->policy_text, sizeof(tsa->policy_text), "%s", opts->policy);
    srv_sha256(tsa->row.cert_der, tsa->row.cert_der_len, hash);
    srv_hex_encode(hash, sizeof(hash), tsa->cert_sha256);
out:
    if (st != SRV_OK)
        srv_tsa_free(tsa);
    else
        *out = tsa;
    return st;
}

void srv_tsa_free(srv_tsa *tsa)
{
    if (!tsa)
        return;
    X509_free(tsa->cert);
    ASN1_OBJECT_free(tsa->policy);
    srv_tsa_key_row_clear(&tsa->row);
    free(tsa);
}

srv_status srv_tsa_reserve(const srv_tsa *tsa, srv_db *db, const srv_tsa_request *req,
                           const char *purpose, const char *actor, int64_t *serial,
                           int64_t *gen_time_ms, int *clock_bad, srv_error *err)
{
    srv_tsa_token_row row;
    int64_t last = 0, now = srv_now_ms();
    const ASN1_OCTET_STRING *msg = TS_MSG_IMPRINT_get_msg(req->imprint);
    srv_status st;

    *clock_bad = 0;
    /* Inside the writer's transaction, so no token is issued between the check and ours. A
     * clock that went back would date this token before one already issued: refuse until
     * the time is right again. */
    if ((st = srv_db_tsa_last_time(db, &last, err)) != SRV_OK)
        return st;
    if (now + tsa->max_skew_ms < last) {
        *clock_bad = 1;
        return srv_fail(err, SRV_E_UNAVAILABLE,
                        "the clock is not trusted: it reads %lld ms before the newest token's "
                        "genTime (tsa_max_skew_seconds allows %lld ms)",
                        (long long)(last - now), (long long)tsa->max_skew_ms);
    }
    memset(&row, 0, sizeof(row));
    row.key_id = tsa->row.id;
    row.gen_time_ms = now;
    row.hash_alg = req->hash_name;
    row.imprint = ASN1_STRING_get0_data(msg);
    row.imprint_len = (size_t)ASN1_STRING_length(msg);
    row.purpose = purpose;
    row.actor = actor;
    if ((st = srv_db_tsa_token_insert(db, &row, serial, err)) != SRV_OK)
        return st;
    *gen_time_ms = now;
    return SRV_OK;
}

srv_status srv_tsa_stamp(const srv_tsa *tsa, srv_db *db, const uint8_t *data, size_t len,
                         const char *purpose, uint8_t **token, size_t *token_len, srv_error *err)
{
    srv_tsa_request req;
    int64_t serial = 0, when = 0;
    int clock_bad = 0;
    srv_status st = srv_tsa_request_for(data, len, &req, err);

    if (st == SRV_OK)
        st = srv_tsa_reserve(tsa, db, &req, purpose, "system", &serial, &when, &clock_bad, err);
    if (st == SRV_OK)
        st = srv_tsa_make_token(tsa, &req, serial, when, token, token_len, err);
    srv_tsa_request_clear(&req);
    return st;
}
