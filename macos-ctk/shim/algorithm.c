/* The token's algorithms: which SecKeyAlgorithm means which server mechanism and hash, and how
 * its data becomes the one digest the server signs. */
#include <stdio.h>
#include <string.h>

#include "sgtk.h"
#include "signum/crypto.h"

typedef struct {
    const char *name; /* the Security framework constant, for the log and the tests */
    sg_mech mech;
    sgtk_key_kind kind;
    int digest_info; /* the data is a DigestInfo, not a digest */
    int any_hash;    /* the hash is told by the digest's length */
    sg_hash hash;
} alg_spec;

static const alg_spec algs[SGTK_ALG_COUNT] = {
    [SGTK_ALG_RSA_PKCS1_DIGESTINFO] = {"RSASignatureDigestPKCS1v15Raw", SG_MECH_RSA_PKCS1,
                                       SGTK_KEY_RSA, 1, 0, SG_HASH_SHA256},
    [SGTK_ALG_RSA_PKCS1_SHA256] = {"RSASignatureDigestPKCS1v15SHA256", SG_MECH_RSA_PKCS1,
                                   SGTK_KEY_RSA, 0, 0, SG_HASH_SHA256},
    [SGTK_ALG_RSA_PKCS1_SHA384] = {"RSASignatureDigestPKCS1v15SHA384", SG_MECH_RSA_PKCS1,
                                   SGTK_KEY_RSA, 0, 0, SG_HASH_SHA384},
    [SGTK_ALG_RSA_PKCS1_SHA512] = {"RSASignatureDigestPKCS1v15SHA512", SG_MECH_RSA_PKCS1,
                                   SGTK_KEY_RSA, 0, 0, SG_HASH_SHA512},
    [SGTK_ALG_RSA_PSS_SHA256] = {"RSASignatureDigestPSSSHA256", SG_MECH_RSA_PSS, SGTK_KEY_RSA, 0, 0,
                                 SG_HASH_SHA256},
    [SGTK_ALG_RSA_PSS_SHA384] = {"RSASignatureDigestPSSSHA384", SG_MECH_RSA_PSS, SGTK_KEY_RSA, 0, 0,
                                 SG_HASH_SHA384},
    [SGTK_ALG_RSA_PSS_SHA512] = {"RSASignatureDigestPSSSHA512", SG_MECH_RSA_PSS, SGTK_KEY_RSA, 0, 0,
                                 SG_HASH_SHA512},
    [SGTK_ALG_ECDSA_X962] = {"ECDSASignatureDigestX962", SG_MECH_ECDSA, SGTK_KEY_EC, 0, 1,
                             SG_HASH_SHA256},
    [SGTK_ALG_ECDSA_X962_SHA256] = {"ECDSASignatureDigestX962SHA256", SG_MECH_ECDSA, SGTK_KEY_EC, 0,
                                    0, SG_HASH_SHA256},
    [SGTK_ALG_ECDSA_X962_SHA384] = {"ECDSASignatureDigestX962SHA384", SG_MECH_ECDSA, SGTK_KEY_EC, 0,
                                    0, SG_HASH_SHA384},
    [SGTK_ALG_ECDSA_X962_SHA512] = {"ECDSASignatureDigestX962SHA512", SG_MECH_ECDSA, SGTK_KEY_EC, 0,
                                    0, SG_HASH_SHA512},
};

const char *sgtk_alg_name(sgtk_alg alg)
{
    return (unsigned)alg < SGTK_ALG_COUNT ? algs[alg].name : "unknown";
}

sgtk_key_kind sgtk_key_kind_of(const char *type)
{
    if (!strncmp(type, "rsa", 3))
        return SGTK_KEY_RSA;
    if (!strncmp(type, "ec-", 3))
        return SGTK_KEY_EC;
    return SGTK_KEY_UNKNOWN;
}

int sgtk_alg_fits(sgtk_alg alg, sgtk_key_kind kind)
{
    return (unsigned)alg < SGTK_ALG_COUNT && kind != SGTK_KEY_UNKNOWN && algs[alg].kind == kind;
}

static int hash_of_length(size_t len, sg_hash *hash)
{
    for (int h = SG_HASH_SHA256; h <= SG_HASH_SHA512; h++) {
        if (sg_hash_len((sg_hash)h) == len) {
            *hash = (sg_hash)h;
            return 0;
        }
    }
    return -1;
}

sgtk_error sgtk_prepare(sgtk_alg alg, const uint8_t *data, size_t len, sgtk_request *out, char *why,
                        size_t why_len)
{
    const alg_spec *a;

    memset(out, 0, sizeof(*out));
    if ((unsigned)alg >= SGTK_ALG_COUNT) {
        snprintf(why, why_len, "algorithm %d is not one the token signs with", (int)alg);
        return SGTK_E_NOT_IMPLEMENTED;
    }
    a = &algs[alg];
    out->mech = a->mech;
    out->hash = a->hash;
    out->der_output = a->mech == SG_MECH_ECDSA;
    if (!data) {
        snprintf(why, why_len, "%s: no data to sign", a->name);
        return SGTK_E_BAD_PARAMETER;
    }
    if (a->digest_info) {
        /* The framework hashed and wrapped; the server wraps again, so unwrap exactly. */
        if (sg_digestinfo_parse(data, len, &out->hash, &out->digest, &out->digest_len) != SG_OK) {
            snprintf(why, why_len,
                     "%s: %zu bytes are not a DigestInfo of SHA-256, SHA-384 or SHA-512", a->name,
                     len);
            return SGTK_E_BAD_PARAMETER;
        }
        return SGTK_OK;
    }
    if (a->any_hash && hash_of_length(len, &out->hash) != 0) {
        snprintf(why, why_len, "%s: a %zu-byte digest is not SHA-256, SHA-384 or SHA-512", a->name,
                 len);
        return SGTK_E_BAD_PARAMETER;
    }
    if (len != sg_hash_len(out->hash)) {
        snprintf(why, why_len, "%s: the digest has %zu bytes, %s has %zu", a->name, len,
                 sg_hash_name(out->hash), sg_hash_len(out->hash));
        return SGTK_E_BAD_PARAMETER;
    }
    out->digest = data;
    out->digest_len = len;
    return SGTK_OK;
}
