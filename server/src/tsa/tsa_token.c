/* The TimeStampToken: a TSTInfo (encoded by OpenSSL), wrapped in a CMS SignedData that this
 * file assembles in DER itself, because its signature comes from the HSM: the signed
 * attributes (contentType, messageDigest, signingCertificateV2) are encoded, the HSM signs
 * them with the TSA key, and the result is checked against the certificate before it leaves.
 * Also the TimeStampResp around it (RFC 3161 section 2.4.2). */
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ca/ca_internal.h"
#include "../common/util.h"
#include "signum/common/buf.h"
#include "tsa.h"

/* ---- a small DER writer ------------------------------------------------------------------- */

/* A token is a few kilobytes (the TSA certificate is the largest part): anything near this
 * cap is a bug, not a token. */
#define DER_MAX (256u * 1024u)

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int failed; /* out of memory, past DER_MAX, or an OpenSSL encoder failed */
} dbuf;

static void put(dbuf *b, const void *data, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (n > DER_MAX - b->n ||
        sgc_array_grow((void **)&b->p, &b->cap, b->n + n, 1, DER_MAX) != SGC_OK) {
        b->failed = 1;
        return;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put_header(dbuf *b, uint8_t tag, size_t len)
{
    uint8_t h[10];
    size_t n = 0, bytes = 0;
    h[n++] = tag;
    if (len < 0x80) {
        h[n++] = (uint8_t)len;
    } else {
        for (size_t l = len; l; l >>= 8)
            bytes++;
        h[n++] = (uint8_t)(0x80 | bytes);
        for (size_t i = bytes; i > 0; i--)
            h[n++] = (uint8_t)(len >> (8 * (i - 1)));
    }
    put(b, h, n);
}

static void put_tlv(dbuf *b, uint8_t tag, const void *v, size_t n)
{
    put_header(b, tag, n);
    put(b, v, n);
}

/* Wraps inner's bytes as one element of `tag` into b, and frees inner. */
static void put_wrapped(dbuf *b, uint8_t tag, dbuf *inner)
{
    if (inner->failed)
        b->failed = 1;
    put_tlv(b, tag, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof(*inner));
}

/* Appends an OpenSSL object's DER (i2d), or marks b failed. */
#define PUT_I2D(b, fn, obj)                                                                        \
    do {                                                                                           \
        unsigned char *der_ = NULL;                                                                \
        int len_ = (fn)((obj), &der_);                                                             \
        if (len_ <= 0)                                                                             \
            (b)->failed = 1;                                                                       \
        else                                                                                       \
            put((b), der_, (size_t)len_);                                                          \
        OPENSSL_free(der_);                                                                        \
    } while (0)

#define SEQ  0x30
#define SET  0x31
#define CTX0 0xa0 /* [0], constructed */
#define CTX4 0xa4 /* [4], constructed: GeneralName directoryName */

static const uint8_t oid_signed_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                          0xf7, 0x0d, 0x01, 0x07, 0x02};
static const uint8_t oid_tst_info[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                       0x0d, 0x01, 0x09, 0x10, 0x01, 0x04};
static const uint8_t oid_content_type[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                           0xf7, 0x0d, 0x01, 0x09, 0x03};
static const uint8_t oid_message_digest[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                             0xf7, 0x0d, 0x01, 0x09, 0x04};
static const uint8_t oid_signing_cert_v2[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                              0x0d, 0x01, 0x09, 0x10, 0x02, 0x2f};
static const uint8_t int_one[] = {0x02, 0x01, 0x01};
static const uint8_t int_three[] = {0x02, 0x01, 0x03};

/* ---- TSTInfo ------------------------------------------------------------------------------ */

/* GeneralizedTime YYYYMMDDHHMMSS[.f*]Z: milliseconds only when the accuracy is finer than a
 * second, without trailing zeros (RFC 3161 section 2.4.2). */
static int set_gen_time(TS_TST_INFO *ti, int64_t ms, unsigned accuracy_ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char text[96], frac[8] = "";
    ASN1_GENERALIZEDTIME *t = ASN1_GENERALIZEDTIME_new();
    int ok;

    gmtime_r(&secs, &tm);
    if (accuracy_ms < 1000 && ms % 1000) {
        snprintf(frac, sizeof(frac), ".%03d", (int)(ms % 1000));
        for (size_t n = strlen(frac); n > 1 && frac[n - 1] == '0'; n--)
            frac[n - 1] = '\0';
    }
    snprintf(text, sizeof(text), "%04d%02d%02d%02d%02d%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    ok = t && ASN1_GENERALIZEDTIME_set_string(t, text) && TS_TST_INFO_set_time(ti, t);
    ASN1_GENERALIZEDTIME_free(t);
    return ok;
}

static int set_accuracy(TS_TST_INFO *ti, unsigned accuracy_ms)
{
    TS_ACCURACY *acc = TS_ACCURACY_new();
    ASN1_INTEGER *secs = ASN1_INTEGER_new(), *millis = ASN1_INTEGER_new();
    int ok = acc && secs && millis;

    if (ok && accuracy_ms >= 1000)
        ok = ASN1_INTEGER_set(secs, accuracy_ms / 1000) && TS_ACCURACY_set_seconds(acc, secs);
    if (ok && accuracy_ms % 1000)
        ok = ASN1_INTEGER_set(millis, accuracy_ms % 1000) && TS_ACCURACY_set_millis(acc, millis);
    ok = ok && TS_TST_INFO_set_accuracy(ti, acc);
    ASN1_INTEGER_free(secs);
    ASN1_INTEGER_free(millis);
    TS_ACCURACY_free(acc);
    return ok;
}

static srv_status encode_tst_info(const srv_tsa *tsa, const srv_tsa_request *req, int64_t serial,
                                  int64_t gen_time_ms, unsigned char **der, int *der_len,
                                  srv_error *err)
{
    TS_TST_INFO *ti = TS_TST_INFO_new();
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    GENERAL_NAME *name = GENERAL_NAME_new();
    X509_NAME *subject = X509_NAME_dup(X509_get_subject_name(tsa->cert));
    srv_status st = SRV_OK;

    *der = NULL;
    if (!ti || !sn || !name || !subject || !TS_TST_INFO_set_version(ti, 1) ||
        !TS_TST_INFO_set_policy_id(ti, tsa->policy) ||
        !TS_TST_INFO_set_msg_imprint(ti, req->imprint) || !ASN1_INTEGER_set_int64(sn, serial) ||
        !TS_TST_INFO_set_serial(ti, sn) || !set_gen_time(ti, gen_time_ms, tsa->accuracy_ms) ||
        !set_accuracy(ti, tsa->accuracy_ms) ||
        (req->nonce && !TS_TST_INFO_set_nonce(ti, req->nonce))) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot build the TSTInfo");
        goto out;
    }
    /* tsa: the certificate's subject, which verifiers may match against the signer. */
    GENERAL_NAME_set0_value(name, GEN_DIRNAME, subject);
    subject = NULL;
    if (!TS_TST_INFO_set_tsa(ti, name) || (*der_len = i2d_TS_TST_INFO(ti, der)) <= 0)
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot encode the TSTInfo");
out:
    X509_NAME_free(subject);
    GENERAL_NAME_free(name);
    ASN1_INTEGER_free(sn);
    TS_TST_INFO_free(ti);
    return st;
}

/* ---- SignedData --------------------------------------------------------------------------- */

static void put_attribute(dbuf *b, const uint8_t *oid, size_t oid_len, dbuf *value)
{
    dbuf attr = {0};
    put(&attr, oid, oid_len);
    put_wrapped(&attr, SET, value); /* attrValues: SET OF one value */
    put_wrapped(b, SEQ, &attr);
}

/* SET OF in DER: elements in ascending order of their encodings (X.690 section 11.6). */
static int cmp_der(const dbuf *a, const dbuf *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->p, b->p, n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* SigningCertificateV2 { certs SEQUENCE OF ESSCertIDv2 { certHash (SHA-256, the default
 * algorithm, so omitted), issuerSerial { GeneralNames { directoryName }, serialNumber } } }. */
static void put_signing_cert(dbuf *b, X509 *cert, const uint8_t *cert_der, size_t cert_der_len)
{
    uint8_t hash[SRV_SHA256_LEN];
    dbuf id = {0}, issuer_serial = {0}, names = {0}, dirname = {0}, certs = {0}, v2 = {0};

    srv_sha256(cert_der, cert_der_len, hash);
    put_tlv(&id, V_ASN1_OCTET_STRING, hash, sizeof(hash));
    PUT_I2D(&dirname, i2d_X509_NAME, X509_get_issuer_name(cert));
    put_wrapped(&names, CTX4, &dirname);
    put_wrapped(&issuer_serial, SEQ, &names);
    PUT_I2D(&issuer_serial, i2d_ASN1_INTEGER, X509_get0_serialNumber(cert));
    put_wrapped(&id, SEQ, &issuer_serial);
    put_wrapped(&certs, SEQ, &id);
    put_wrapped(&v2, SEQ, &certs);
    put_wrapped(b, SEQ, &v2);
}

/* The signed attributes' contents, sorted (the caller tags them SET to sign, [0] to store). */
static void put_signed_attrs(dbuf *b, const uint8_t *digest, size_t digest_len, X509 *cert,
                             const uint8_t *cert_der, size_t cert_der_len)
{
    dbuf attrs[3] = {{0}}, v = {0};

    put(&v, oid_tst_info, sizeof(oid_tst_info));
    put_attribute(&attrs[0], oid_content_type, sizeof(oid_content_type), &v);
    put_tlv(&v, V_ASN1_OCTET_STRING, digest, digest_len);
    put_attribute(&attrs[1], oid_message_digest, sizeof(oid_message_digest), &v);
    put_signing_cert(&v, cert, cert_der, cert_der_len);
    put_attribute(&attrs[2], oid_signing_cert_v2, sizeof(oid_signing_cert_v2), &v);
    for (int i = 0; i < 3; i++)
        if (attrs[i].failed)
            b->failed = 1;
    /* Three elements: a tiny insertion sort. */
    for (int i = 1; i < 3 && !b->failed; i++)
        for (int j = i; j > 0 && cmp_der(&attrs[j - 1], &attrs[j]) > 0; j--) {
            dbuf t = attrs[j];
            attrs[j] = attrs[j - 1];
            attrs[j - 1] = t;
        }
    for (int i = 0; i < 3; i++) {
        put(b, attrs[i].p, attrs[i].n);
        free(attrs[i].p);
    }
}

static int put_algorithm(dbuf *b, int nid, int is_signature)
{
    X509_ALGOR *alg = X509_ALGOR_new();
    int ok = alg && (is_signature ? srv_ca_set_sig_alg(alg, nid)
                                  : X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_UNDEF, NULL));
    if (ok)
        PUT_I2D(b, i2d_X509_ALGOR, alg);
    else
        b->failed = 1;
    X509_ALGOR_free(alg);
    return ok;
}

/* The HSM's signature must verify with the certificate's key: a CKA_ID naming another key
 * must not yield a token that fails only at the relying party. */
static srv_status check_signature(const srv_tsa *tsa, const EVP_MD *md, const uint8_t *msg,
                                  size_t msg_len, const uint8_t *sig, size_t sig_len,
                                  srv_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, X509_get0_pubkey(tsa->cert)) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok ? SRV_OK
              : srv_fail(err, SRV_E_HSM,
                         "the HSM's signature does not verify with the TSA certificate's key");
}

srv_status srv_tsa_make_token(const srv_tsa *tsa, const srv_tsa_request *req, int64_t serial,
                              int64_t gen_time_ms, uint8_t **der, size_t *der_len, srv_error *err)
{
    unsigned char *tst = NULL;
    int tst_len = 0, sig_nid;
    srv_hash hash;
    const EVP_MD *md;
    uint8_t digest[EVP_MAX_MD_SIZE], sig[SRV_MAX_SIG_LEN + 16];
    unsigned digest_len = 0;
    size_t sig_len = sizeof(sig);
    dbuf attrs = {0}, signed_set = {0}, si = {0}, sid = {0}, sd = {0}, set = {0}, eci = {0},
         content = {0}, ci = {0}, inner = {0};
    srv_status st;

    *der = NULL;
    if (!srv_hsm_sig_alg(tsa->key.type, &hash, &sig_nid))
        return srv_fail(err, SRV_E_INTERNAL, "unsupported TSA key type");
    /* The hash the HSM signs with is the one the SignerInfo must name. */
    md = hash == SRV_HASH_SHA384 ? EVP_sha384() : EVP_sha256();
    st = encode_tst_info(tsa, req, serial, gen_time_ms, &tst, &tst_len, err);
    if (st != SRV_OK)
        return st;
    if (!EVP_Digest(tst, (size_t)tst_len, digest, &digest_len, md, NULL)) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot hash the TSTInfo");
        goto out;
    }
    put_signed_attrs(&attrs, digest, digest_len, tsa->cert, tsa->row.cert_der,
                     tsa->row.cert_der_len);
    /* Signed as an explicit SET OF (RFC 5652 section 5.4), stored as [0] IMPLICIT. */
    put_tlv(&signed_set, SET, attrs.p, attrs.n);
    if (attrs.failed || signed_set.failed) {
        st = srv_fail(err, SRV_E_NOMEM, "cannot encode the token (out of memory or too large)");
        goto out;
    }
    st = srv_hsm_sign_message(tsa->hsm, &tsa->key, signed_set.p, signed_set.n, sig, &sig_len, NULL,
                              err);
    if (st == SRV_OK)
        st = check_signature(tsa, md, signed_set.p, signed_set.n, sig, sig_len, err);
    if (st != SRV_OK)
        goto out;

    /* SignerInfo { 1, IssuerAndSerialNumber, digestAlgorithm, [0] signedAttrs,
     * signatureAlgorithm, signature } */
    put(&si, int_one, sizeof(int_one));
    PUT_I2D(&sid, i2d_X509_NAME, X509_get_issuer_name(tsa->cert));
    PUT_I2D(&sid, i2d_ASN1_INTEGER, X509_get0_serialNumber(tsa->cert));
    put_wrapped(&si, SEQ, &sid);
    put_algorithm(&si, EVP_MD_get_type(md), 0);
    put_tlv(&si, CTX0, attrs.p, attrs.n);
    put_algorithm(&si, sig_nid, 1);
    put_tlv(&si, V_ASN1_OCTET_STRING, sig, sig_len);

    /* SignedData { 3, {digestAlgorithm}, {id-ct-TSTInfo, [0] OCTET STRING}, [0] certificates,
     * {SignerInfo} }: version 3 because the content is not id-data (RFC 5652 section 5.1). */
    put(&sd, int_three, sizeof(int_three));
    put_algorithm(&set, EVP_MD_get_type(md), 0);
    put_wrapped(&sd, SET, &set);
    put(&eci, oid_tst_info, sizeof(oid_tst_info));
    put_tlv(&content, V_ASN1_OCTET_STRING, tst, (size_t)tst_len);
    put_wrapped(&eci, CTX0, &content);
    put_wrapped(&sd, SEQ, &eci);
    if (req->cert_req) {
        put(&inner, tsa->row.cert_der, tsa->row.cert_der_len);
        put_wrapped(&sd, CTX0, &inner);
    }
    put_wrapped(&set, SEQ, &si);
    put_wrapped(&sd, SET, &set);

    put(&ci, oid_signed_data, sizeof(oid_signed_data));
    put_wrapped(&inner, SEQ, &sd);
    put_wrapped(&ci, CTX0, &inner);
    put_wrapped(&content, SEQ, &ci);
    if (content.failed) {
        st = srv_fail(err, SRV_E_NOMEM, "cannot encode the token (out of memory or too large)");
        goto out;
    }
    *der = content.p;
    *der_len = content.n;
    content.p = NULL;
out:
    OPENSSL_free(tst);
    free(attrs.p);
    free(signed_set.p);
    free(si.p);
    free(sid.p);
    free(sd.p);
    free(set.p);
    free(eci.p);
    free(content.p);
    free(ci.p);
    free(inner.p);
    return st;
}

/* ---- TimeStampResp ------------------------------------------------------------------------ */

srv_status srv_tsa_response(int status, int fail_bit, const char *text, const uint8_t *token,
                            size_t token_len, uint8_t **der, size_t *der_len, srv_error *err)
{
    dbuf resp = {0}, info = {0}, free_text = {0};
    uint8_t st_int[3] = {0x02, 0x01, (uint8_t)status};

    *der = NULL;
    put(&info, st_int, sizeof(st_int));
    if (text && *text) {
        put_tlv(&free_text, V_ASN1_UTF8STRING, text, strlen(text));
        put_wrapped(&info, SEQ, &free_text);
    }
    if (fail_bit >= 0) {
        /* A named-bit BIT STRING in DER ends at its last set bit. */
        uint8_t bits[5] = {0};
        size_t nbytes = (size_t)fail_bit / 8 + 1;
        bits[0] = (uint8_t)(7 - fail_bit % 8);
        bits[nbytes] = (uint8_t)(0x80 >> (fail_bit % 8));
        put_tlv(&info, V_ASN1_BIT_STRING, bits, nbytes + 1);
    }
    put_wrapped(&resp, SEQ, &info);
    if (token)
        put(&resp, token, token_len);
    put_wrapped(&free_text, SEQ, &resp);
    if (free_text.failed) {
        free(free_text.p);
        return srv_fail(err, SRV_E_NOMEM,
                        "cannot encode the response (out of memory or too large)");
    }
    *der = free_text.p;
    *der_len = free_text.n;
    return SRV_OK;
}
