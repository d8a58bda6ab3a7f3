/* CSRs for keys in the HSM, for an external CA: PKCS#10 signed by the key itself. */
#include <openssl/err.h>
#include <openssl/x509.h>

#include "../common/util.h"
#include "ca_internal.h"

srv_status srv_ca_make_csr(srv_hsm *hsm, const srv_hsm_key *key, const char *common_name,
                           const char *organization, X509_REQ **out, srv_error *err)
{
    EVP_PKEY *pub = NULL;
    X509_REQ *req = NULL;
    X509_NAME *subject = NULL;
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *bits = NULL;
    unsigned char *tbs = NULL;
    uint8_t sig[SRV_MAX_SIG_LEN];
    size_t sig_len = sizeof(sig);
    int tbs_len, nid;
    srv_status st;

    *out = NULL;
    st = srv_ca_check_subject(common_name, organization, err);
    if (st != SRV_OK)
        return st;
    st = srv_ca_check_hsm_key(key, &pub, &nid, err);
    if (st != SRV_OK)
        return st;
    req = X509_REQ_new();
    subject = srv_ca_make_name(common_name, organization);
    alg = X509_ALGOR_new();
    bits = ASN1_BIT_STRING_new();
    if (!req || !subject || !alg || !bits || !srv_ca_set_sig_alg(alg, nid) ||
        !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_REQ_set_subject_name(req, subject) || !X509_REQ_set_pubkey(req, pub) ||
        !X509_REQ_set1_signature_algo(req, alg)) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot build the certificate request");
        goto out;
    }
    tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbs_len <= 0) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot encode the certificate request");
        goto out;
    }
    st = srv_hsm_sign_message(hsm, key, tbs, (size_t)tbs_len, sig, &sig_len, NULL, err);
    if (st != SRV_OK)
        goto out;
    if (!ASN1_BIT_STRING_set(bits, sig, (int)sig_len)) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    /* Without BITS_LEFT, DER encoding would trim trailing zero bytes of the signature. */
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    if (X509_REQ_verify(req, pub) != 1) {
        st = srv_ossl_fail(err, SRV_E_HSM,
                           "the HSM's signature does not verify with the key's public key");
        goto out;
    }
    *out = req;
    req = NULL;
out:
    OPENSSL_free(tbs);
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    EVP_PKEY_free(pub);
    return st;
}
