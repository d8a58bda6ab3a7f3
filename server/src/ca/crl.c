/* The built-in CA's certificate revocation list, signed by the CA key in the HSM. */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "ca.h"

static srv_status add_entry(X509_CRL *crl, const srv_crl_entry *e, srv_error *err)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)e->revoked_at);
    ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    srv_status st = SRV_OK;

    if (!rev || !when || !reason || !BN_hex2bn(&bn, e->serial_hex) ||
        !(serial = BN_to_ASN1_INTEGER(bn, NULL)) || !X509_REVOKED_set_serialNumber(rev, serial) ||
        !X509_REVOKED_set_revocationDate(rev, when) || !ASN1_ENUMERATED_set(reason, e->reason) ||
        /* "unspecified" is expressed by leaving the reason out (RFC 5280 section 5.3.1). */
        (e->reason != 0 && !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0)) ||
        !X509_CRL_add0_revoked(crl, rev)) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot add a revoked certificate to the CRL");
        X509_REVOKED_free(rev);
    }
    ASN1_TIME_free(when);
    ASN1_ENUMERATED_free(reason);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return st;
}

static srv_status add_crl_extensions(X509_CRL *crl, X509 *ca_cert, int64_t number, srv_error *err)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca_cert);
    AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    srv_status st = SRV_OK;

    if (!aki || !num || !ski || !(aki->keyid = ASN1_OCTET_STRING_dup(ski)) ||
        !X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, aki, 0, 0) ||
        !ASN1_INTEGER_set_int64(num, number) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot add the CRL's extensions");
    AUTHORITY_KEYID_free(aki);
    ASN1_INTEGER_free(num);
    return st;
}

/* OpenSSL 3.0 has no setter for a CRL's inner signature AlgorithmIdentifier; signing with a
 * throwaway key of the CA key's algorithm fills both fields in, and the HSM's signature then
 * replaces the throwaway one. */
static srv_status set_algorithms(X509_CRL *crl, srv_key_type type, srv_error *err)
{
    srv_hash hash;
    int nid;
    const EVP_MD *md;
    EVP_PKEY *tmp;
    srv_status st = SRV_OK;

    if (!srv_hsm_sig_alg(type, &hash, &nid))
        return srv_fail(err, SRV_E_INTERNAL, "unsupported CA key type");
    md = hash == SRV_HASH_SHA384 ? EVP_sha384() : EVP_sha256();
    tmp = srv_key_type_is_rsa(type) ? EVP_RSA_gen(1024) : EVP_EC_gen("P-256");
    if (!tmp || X509_CRL_sign(crl, tmp, md) <= 0)
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot prepare the CRL's signature algorithm");
    EVP_PKEY_free(tmp);
    return st;
}

srv_status srv_ca_make_crl(const srv_ca *ca, const srv_crl_entry *entries, size_t n, int64_t number,
                           int64_t this_update, int64_t next_update, uint8_t **der, size_t *der_len,
                           srv_error *err)
{
    X509_CRL *crl = X509_CRL_new(), *signed_crl = NULL;
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)this_update);
    ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)next_update);
    unsigned char *tbs = NULL, *alg = NULL;
    const X509_ALGOR *palg = NULL;
    uint8_t sig[SRV_MAX_SIG_LEN], *out = NULL;
    size_t sig_len = sizeof(sig), out_len = 0;
    const unsigned char *p;
    int tbs_len, alg_len;
    srv_status st;

    *der = NULL;
    if (!crl || !last || !next || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
        !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next)) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot build the CRL");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if ((st = add_entry(crl, &entries[i], err)) != SRV_OK)
            goto out;
    X509_CRL_sort(crl);
    if ((st = add_crl_extensions(crl, ca->cert, number, err)) != SRV_OK ||
        (st = set_algorithms(crl, ca->key.type, err)) != SRV_OK)
        goto out;
    X509_CRL_get0_signature(crl, NULL, &palg);
    tbs_len = i2d_re_X509_CRL_tbs(crl, &tbs);
    alg_len = i2d_X509_ALGOR(palg, &alg);
    if (tbs_len <= 0 || alg_len <= 0) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot encode the CRL");
        goto out;
    }
    st = srv_hsm_sign_message(ca->hsm, &ca->key, tbs, (size_t)tbs_len, sig, &sig_len, NULL, err);
    if (st != SRV_OK)
        goto out;
    out = srv_x509_assemble_signed(tbs, (size_t)tbs_len, alg, (size_t)alg_len, sig, sig_len,
                                   &out_len);
    if (!out) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    p = out;
    signed_crl = d2i_X509_CRL(NULL, &p, (long)out_len);
    if (!signed_crl || p != out + out_len ||
        X509_CRL_verify(signed_crl, X509_get0_pubkey(ca->cert)) != 1) {
        st = srv_ossl_fail(err, SRV_E_HSM,
                           "the HSM's CRL signature does not verify with the CA "
                           "certificate's key");
        goto out;
    }
    *der = out;
    *der_len = out_len;
    out = NULL;
out:
    X509_CRL_free(crl);
    X509_CRL_free(signed_crl);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    OPENSSL_free(tbs);
    OPENSSL_free(alg);
    free(out);
    return st;
}
