/* Signature encodings for keys in the HSM: the DigestInfo an RSA PKCS#1 v1.5 signature
 * covers, ECDSA r||s to DER, and signing a whole message with the algorithm X.509 (and the
 * audit checkpoints) expect for the key's type. */
#include "sig_encoding.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <string.h>

#include "../common/util.h"

#define DIGESTINFO_MAX (19 + 64) /* SHA-512 prefix and digest */

/* The X.509 signature algorithm for an HSM key type: the hash follows the key's strength. */
int srv_hsm_sig_alg(srv_key_type type, srv_hash *hash, int *nid)
{
    switch (type) {
    case SRV_KEY_RSA_2048:
    case SRV_KEY_RSA_3072:
    case SRV_KEY_RSA_4096:
        *hash = SRV_HASH_SHA256;
        *nid = NID_sha256WithRSAEncryption;
        return 1;
    case SRV_KEY_EC_P256:
        *hash = SRV_HASH_SHA256;
        *nid = NID_ecdsa_with_SHA256;
        return 1;
    case SRV_KEY_EC_P384:
        *hash = SRV_HASH_SHA384;
        *nid = NID_ecdsa_with_SHA384;
        return 1;
    default: return 0;
    }
}

static const EVP_MD *hash_md(srv_hash hash)
{
    switch (hash) {
    case SRV_HASH_SHA256: return EVP_sha256();
    case SRV_HASH_SHA384: return EVP_sha384();
    case SRV_HASH_SHA512: return EVP_sha512();
    default: return NULL;
    }
}

/* Longest DER ECDSA-Sig-Value for a curve whose r and s are `half` bytes: each INTEGER may
 * need a leading zero byte. */
static size_t ecdsa_der_max(size_t half)
{
    size_t body = 2 * (2 + half + 1);
    return body + (body < 0x80 ? 2 : 3);
}

/* DER DigestInfo prefixes (RFC 8017 section 9.2, note 1): SEQUENCE { AlgorithmIdentifier
 * { OID, NULL }, OCTET STRING header }, to which the digest is appended. */
static const uint8_t digestinfo_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t digestinfo_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t digestinfo_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x03, 0x05, 0x00, 0x04, 0x40};

/* As with srv_hsm_sign, *out_len is the buffer size on entry and the length on return; a NULL
 * out only asks for the length. The same holds for the two signature functions below. */
srv_status srv_digestinfo(srv_hash hash, const uint8_t *digest, size_t digest_len, uint8_t *out,
                          size_t *out_len, srv_error *err)
{
    const uint8_t *prefix;
    size_t prefix_len;

    switch (hash) {
    case SRV_HASH_SHA256:
        prefix = digestinfo_sha256;
        prefix_len = sizeof(digestinfo_sha256);
        break;
    case SRV_HASH_SHA384:
        prefix = digestinfo_sha384;
        prefix_len = sizeof(digestinfo_sha384);
        break;
    case SRV_HASH_SHA512:
        prefix = digestinfo_sha512;
        prefix_len = sizeof(digestinfo_sha512);
        break;
    default: return srv_fail(err, SRV_E_INVALID_FIELD, "unknown hash algorithm");
    }
    if (digest_len != srv_hash_len(hash))
        return srv_fail(err, SRV_E_DIGEST_LENGTH, "a %s digest is %zu bytes, not %zu",
                        srv_hash_name(hash), srv_hash_len(hash), digest_len);
    if (!out) {
        *out_len = prefix_len + digest_len;
        return SRV_OK;
    }
    if (*out_len < prefix_len + digest_len)
        return srv_fail(err, SRV_E_INTERNAL, "DigestInfo buffer of %zu bytes is too small",
                        *out_len);
    memcpy(out, prefix, prefix_len);
    memcpy(out + prefix_len, digest, digest_len);
    *out_len = prefix_len + digest_len;
    return SRV_OK;
}

srv_status srv_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der, size_t *der_len,
                                srv_error *err)
{
    BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG *sig = NULL;
    unsigned char *p;
    size_t half = raw_len / 2;
    int len;
    srv_status st = SRV_OK;

    if (!raw || (raw_len != 64 && raw_len != 96))
        return srv_fail(err, SRV_E_INVALID_FIELD,
                        "raw ECDSA signature of %zu bytes; expected 64 (P-256) or 96 (P-384)",
                        raw_len);
    r = BN_bin2bn(raw, (int)half, NULL);
    s = BN_bin2bn(raw + half, (int)half, NULL);
    sig = ECDSA_SIG_new();
    if (!r || !s || !sig) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    if (BN_is_zero(r) || BN_is_zero(s)) {
        st = srv_fail(err, SRV_E_INVALID_FIELD, "raw ECDSA signature has a zero r or s");
        goto out;
    }
    if (!ECDSA_SIG_set0(sig, r, s)) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot build ECDSA signature");
        goto out;
    }
    r = s = NULL; /* owned by sig now */
    len = i2d_ECDSA_SIG(sig, NULL);
    if (len <= 0) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot encode ECDSA signature");
        goto out;
    }
    if (!der) {
        *der_len = (size_t)len;
        goto out;
    }
    if (*der_len < (size_t)len) {
        st = srv_fail(err, SRV_E_INTERNAL, "DER signature buffer of %zu bytes is too small",
                      *der_len);
        goto out;
    }
    p = der;
    *der_len = (size_t)i2d_ECDSA_SIG(sig, &p);
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return st;
}

srv_status srv_hsm_sign_message(srv_hsm *hsm, const srv_hsm_key *key, const uint8_t *tbs,
                                size_t tbs_len, uint8_t *sig, size_t *sig_len, int *sig_nid,
                                srv_error *err)
{
    uint8_t md[EVP_MAX_MD_SIZE], digestinfo[DIGESTINFO_MAX], raw[SRV_MAX_SIG_LEN];
    size_t digestinfo_len = sizeof(digestinfo), raw_len = sizeof(raw), key_sig_len, need;
    unsigned md_len = 0;
    srv_hash hash;
    int nid;
    srv_status st;

    if (!key || !srv_hsm_sig_alg(key->type, &hash, &nid))
        return srv_fail(err, SRV_E_INVALID_FIELD, "unsupported HSM key type");
    if (!key->ckaid || key->ckaid_len == 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "HSM key has no CKA_ID");
    if (!tbs && tbs_len > 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "no data to sign");
    key_sig_len = srv_key_type_sig_len(key->type);
    /* The DER length of an ECDSA signature is known only once it exists: answer the bound. */
    need = srv_key_type_is_rsa(key->type) ? key_sig_len : ecdsa_der_max(key_sig_len / 2);
    if (sig_nid)
        *sig_nid = nid;
    if (!sig) {
        *sig_len = need;
        return SRV_OK;
    }
    if (*sig_len < need)
        return srv_fail(err, SRV_E_INTERNAL, "signature buffer of %zu bytes is too small",
                        *sig_len);
    if (!EVP_Digest(tbs, tbs_len, md, &md_len, hash_md(hash), NULL))
        return srv_ossl_fail(err, SRV_E_INTERNAL, "cannot hash the to-be-signed data");

    if (srv_key_type_is_rsa(key->type)) {
        st = srv_digestinfo(hash, md, md_len, digestinfo, &digestinfo_len, err);
        if (st != SRV_OK)
            return st;
        st = srv_hsm_sign(hsm, key->ckaid, key->ckaid_len, SRV_MECH_RSA_PKCS1, hash, 0, digestinfo,
                          digestinfo_len, sig, sig_len, err);
        if (st == SRV_OK && *sig_len != key_sig_len)
            st = srv_fail(err, SRV_E_HSM, "HSM returned a %zu-byte signature for a %s key",
                          *sig_len, srv_key_type_name(key->type));
        return st;
    }
    st = srv_hsm_sign(hsm, key->ckaid, key->ckaid_len, SRV_MECH_ECDSA, hash, 0, md, md_len, raw,
                      &raw_len, err);
    if (st != SRV_OK)
        return st;
    if (raw_len != key_sig_len)
        return srv_fail(err, SRV_E_HSM, "HSM returned a %zu-byte signature for a %s key", raw_len,
                        srv_key_type_name(key->type));
    return srv_ecdsa_raw_to_der(raw, raw_len, sig, sig_len, err);
}
