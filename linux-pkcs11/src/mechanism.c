/* The mechanisms the module offers, their key sizes, and the checks on their parameters.
 * Every signing mechanism ends as one digest sent to the server: hash-and-sign mechanisms hash
 * here; CKM_RSA_PKCS takes a DigestInfo, CKM_RSA_PKCS_PSS and CKM_ECDSA take the digest. */
#include <string.h>

#include "p11.h"

#define EC_FLAGS (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)

static const p11_mech mechs[] = {
    {CKM_RSA_PKCS, "CKM_RSA_PKCS", P11_FAM_RSA_PKCS, 0, SG_HASH_SHA256, CKK_RSA, CKF_SIGN},
    {CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS", P11_FAM_RSA_PKCS, 1, SG_HASH_SHA256, CKK_RSA,
     CKF_SIGN},
    {CKM_SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS", P11_FAM_RSA_PKCS, 1, SG_HASH_SHA384, CKK_RSA,
     CKF_SIGN},
    {CKM_SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS", P11_FAM_RSA_PKCS, 1, SG_HASH_SHA512, CKK_RSA,
     CKF_SIGN},
    {CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS", P11_FAM_RSA_PSS, 0, SG_HASH_SHA256, CKK_RSA, CKF_SIGN},
    {CKM_SHA256_RSA_PKCS_PSS, "CKM_SHA256_RSA_PKCS_PSS", P11_FAM_RSA_PSS, 1, SG_HASH_SHA256,
     CKK_RSA, CKF_SIGN},
    {CKM_SHA384_RSA_PKCS_PSS, "CKM_SHA384_RSA_PKCS_PSS", P11_FAM_RSA_PSS, 1, SG_HASH_SHA384,
     CKK_RSA, CKF_SIGN},
    {CKM_SHA512_RSA_PKCS_PSS, "CKM_SHA512_RSA_PKCS_PSS", P11_FAM_RSA_PSS, 1, SG_HASH_SHA512,
     CKK_RSA, CKF_SIGN},
    {CKM_ECDSA, "CKM_ECDSA", P11_FAM_ECDSA, 0, SG_HASH_SHA256, CKK_EC, CKF_SIGN | EC_FLAGS},
    {CKM_ECDSA_SHA256, "CKM_ECDSA_SHA256", P11_FAM_ECDSA, 1, SG_HASH_SHA256, CKK_EC,
     CKF_SIGN | EC_FLAGS},
    {CKM_ECDSA_SHA384, "CKM_ECDSA_SHA384", P11_FAM_ECDSA, 1, SG_HASH_SHA384, CKK_EC,
     CKF_SIGN | EC_FLAGS},
    {CKM_ECDSA_SHA512, "CKM_ECDSA_SHA512", P11_FAM_ECDSA, 1, SG_HASH_SHA512, CKK_EC,
     CKF_SIGN | EC_FLAGS},
    {CKM_SHA256, "CKM_SHA256", P11_FAM_DIGEST, 1, SG_HASH_SHA256, 0, CKF_DIGEST},
    {CKM_SHA384, "CKM_SHA384", P11_FAM_DIGEST, 1, SG_HASH_SHA384, 0, CKF_DIGEST},
    {CKM_SHA512, "CKM_SHA512", P11_FAM_DIGEST, 1, SG_HASH_SHA512, 0, CKF_DIGEST},
};

#define N_MECHS (sizeof(mechs) / sizeof(mechs[0]))

/* What the server generates (server/API.md): RSA 2048-4096, ECDSA P-256 and P-384. */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 4096
#define EC_MIN_BITS  256
#define EC_MAX_BITS  384

const p11_mech *p11_mech_find(CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < N_MECHS; i++)
        if (mechs[i].type == type)
            return &mechs[i];
    return NULL;
}

size_t p11_mech_count(void)
{
    return N_MECHS;
}

const p11_mech *p11_mech_at(size_t i)
{
    return i < N_MECHS ? &mechs[i] : NULL;
}

CK_RV p11_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    const p11_mech *m = p11_mech_find(type);
    if (!m)
        return CKR_MECHANISM_INVALID;
    memset(info, 0, sizeof(*info));
    info->flags = m->flags;
    if (m->key_type == CKK_RSA) {
        info->ulMinKeySize = RSA_MIN_BITS;
        info->ulMaxKeySize = RSA_MAX_BITS;
    } else if (m->key_type == CKK_EC) {
        info->ulMinKeySize = EC_MIN_BITS;
        info->ulMaxKeySize = EC_MAX_BITS;
    }
    return CKR_OK;
}

size_t p11_mech_for_key(CK_KEY_TYPE kt, CK_MECHANISM_TYPE *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < N_MECHS; i++)
        if (mechs[i].family != P11_FAM_DIGEST && mechs[i].key_type == kt && n < cap)
            out[n++] = mechs[i].type;
    return n;
}

static int hash_of_mech(CK_MECHANISM_TYPE t, sg_hash *out)
{
    switch (t) {
    case CKM_SHA256: *out = SG_HASH_SHA256; return 1;
    case CKM_SHA384: *out = SG_HASH_SHA384; return 1;
    case CKM_SHA512: *out = SG_HASH_SHA512; return 1;
    default: return 0;
    }
}

static CK_ULONG mgf_of_hash(sg_hash h)
{
    switch (h) {
    case SG_HASH_SHA256: return CKG_MGF1_SHA256;
    case SG_HASH_SHA384: return CKG_MGF1_SHA384;
    case SG_HASH_SHA512: return CKG_MGF1_SHA512;
    }
    return 0;
}

/* PSS: the server uses MGF1 with the message hash, so the parameters must say exactly that;
 * the salt must fit the modulus (RFC 8017 section 9.1.1). */
static CK_RV check_pss(const p11_mech *m, const CK_MECHANISM *mech, const p11_key *key,
                       sg_hash *hash, unsigned *salt)
{
    const CK_RSA_PKCS_PSS_PARAMS *p = mech->pParameter;
    sg_hash h;
    if (!p || mech->ulParameterLen != sizeof(*p))
        return CKR_MECHANISM_PARAM_INVALID;
    if (!hash_of_mech(p->hashAlg, &h) || (m->hashes && h != m->hash) || p->mgf != mgf_of_hash(h))
        return CKR_MECHANISM_PARAM_INVALID;
    if (key->pub.modulus_len < sg_hash_len(h) + 2 ||
        p->sLen > key->pub.modulus_len - sg_hash_len(h) - 2)
        return CKR_MECHANISM_PARAM_INVALID;
    *hash = h;
    *salt = (unsigned)p->sLen;
    return CKR_OK;
}

CK_RV p11_mech_check(const p11_mech *m, const CK_MECHANISM *mech, const p11_key *key, sg_hash *hash,
                     unsigned *salt)
{
    if (m->family == P11_FAM_DIGEST)
        return CKR_MECHANISM_INVALID;
    if (m->key_type != key->type)
        return CKR_KEY_TYPE_INCONSISTENT;
    *hash = m->hash;
    *salt = 0;
    if (m->family == P11_FAM_RSA_PSS)
        return check_pss(m, mech, key, hash, salt);
    if (mech->ulParameterLen) /* a stray pointer with length 0 is harmless */
        return CKR_MECHANISM_PARAM_INVALID;
    return CKR_OK;
}
