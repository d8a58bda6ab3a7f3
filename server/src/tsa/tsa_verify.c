/* Offline check of a TimeStampToken over data the server made itself (an audit checkpoint's
 * signature), by OpenSSL's RFC 3161 verifier: an independent reading of what tsa_token.c
 * assembled. */
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/ts.h>
#include <openssl/x509_vfy.h>
#include <string.h>
#include <time.h>

#include "../common/b64.h"
#include "../common/util.h"
#include "tsa.h"

static int64_t gen_time_ms_of(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    const char *s = (const char *)ASN1_STRING_get0_data(t);
    const char *dot = strchr(s, '.');
    int64_t ms = 0, scale = 100;

    if (!ASN1_TIME_to_tm(t, &tm))
        return 0;
    for (const char *p = dot ? dot + 1 : NULL; p && *p >= '0' && *p <= '9' && scale; p++) {
        ms += (*p - '0') * scale;
        scale /= 10;
    }
    return (int64_t)timegm(&tm) * 1000 + ms;
}

const char *srv_tsa_check_token(const uint8_t *token, size_t token_len, const uint8_t *data,
                                size_t data_len, X509 *ca, int64_t *gen_time_ms,
                                char signer_sha256[65])
{
    const unsigned char *p = token;
    PKCS7 *p7 = NULL;
    TS_TST_INFO *info = NULL;
    TS_VERIFY_CTX *ctx = NULL;
    X509_STORE *store = NULL;
    STACK_OF(X509) *signers = NULL;
    uint8_t digest[SRV_SHA256_LEN], *imprint = NULL, *der = NULL;
    int der_len;
    const char *why = NULL;

    if (!token || token_len == 0 || token_len > 64 * 1024 ||
        !(p7 = d2i_PKCS7(NULL, &p, (long)token_len)) || p != token + token_len) {
        why = "the timestamp token does not parse";
        goto out;
    }
    srv_sha256(data, data_len, digest);
    ctx = TS_VERIFY_CTX_new();
    store = X509_STORE_new();
    imprint = OPENSSL_malloc(sizeof(digest));
    if (!ctx || !store || !imprint || !X509_STORE_add_cert(store, ca)) {
        why = "out of memory";
        goto out;
    }
    memcpy(imprint, digest, sizeof(digest));
    /* The context owns the imprint and the store from here on. */
    TS_VERIFY_CTX_set_imprint(ctx, imprint, (long)sizeof(digest));
    imprint = NULL;
    TS_VERIFY_CTX_set_store(ctx, store);
    store = NULL;
    /* TS_VFY_SIGNER: the TSTInfo's tsa name must be the signer's subject. */
    TS_VERIFY_CTX_set_flags(ctx,
                            TS_VFY_SIGNATURE | TS_VFY_VERSION | TS_VFY_IMPRINT | TS_VFY_SIGNER);
    if (TS_RESP_verify_token(ctx, p7) != 1) {
        unsigned long e = ERR_peek_last_error();
        why = e && ERR_GET_REASON(e) == TS_R_MESSAGE_IMPRINT_MISMATCH
                  ? "the timestamp token's messageImprint does not match the checkpoint"
                  : "the timestamp token does not verify (signature, TSA certificate chain or "
                    "signingCertificate)";
        goto out;
    }
    if (!(info = PKCS7_to_TS_TST_INFO(p7)) ||
        !(*gen_time_ms = gen_time_ms_of(TS_TST_INFO_get_time(info)))) {
        why = "the timestamp token has no readable genTime";
        goto out;
    }
    signers = PKCS7_get0_signers(p7, NULL, 0);
    if (!signers || sk_X509_num(signers) != 1 ||
        (der_len = i2d_X509(sk_X509_value(signers, 0), &der)) <= 0) {
        why = "the timestamp token names no signer certificate";
        goto out;
    }
    srv_sha256(der, (size_t)der_len, digest);
    srv_hex_encode(digest, sizeof(digest), signer_sha256);
out:
    ERR_clear_error();
    OPENSSL_free(der);
    OPENSSL_free(imprint);
    sk_X509_free(signers);
    X509_STORE_free(store);
    TS_VERIFY_CTX_free(ctx);
    TS_TST_INFO_free(info);
    PKCS7_free(p7);
    return why;
}
