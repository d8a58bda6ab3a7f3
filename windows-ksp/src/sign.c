/* SignHash through the agent (PKCS#1 v1.5, PSS, ECDSA raw r||s), answering size queries from
 * the key handle alone, and VerifySignature locally through Windows' own bcrypt. */
#include <stdlib.h>
#include <string.h>

#include "ksp.h"
#include "signum/common/names.h"

#define KSP_SIGN_FLAGS (NCRYPT_SILENT_FLAG | BCRYPT_PAD_PKCS1 | BCRYPT_PAD_PSS)

/* The hash CNG names in a padding structure; 0 if it is none we sign with. */
static int hash_of_alg(LPCWSTR alg, sg_hash *out)
{
    if (!alg)
        return 0;
    if (wcscmp(alg, BCRYPT_SHA256_ALGORITHM) == 0)
        *out = SG_HASH_SHA256;
    else if (wcscmp(alg, BCRYPT_SHA384_ALGORITHM) == 0)
        *out = SG_HASH_SHA384;
    else if (wcscmp(alg, BCRYPT_SHA512_ALGORITHM) == 0)
        *out = SG_HASH_SHA512;
    else
        return 0; /* SHA-1, MD5: the server signs SHA-2 digests only */
    return 1;
}

/* What the server is asked to sign: the mechanism, the hash, the digest and the salt. */
typedef struct {
    sg_mech mech;
    sg_hash hash;
    const uint8_t *digest;
    size_t digest_len;
    unsigned salt;
} sign_plan;

/* Validates the padding and the input against the key, without any round trip. */
static SECURITY_STATUS plan_sign(const ksp_key *k, const void *padding, const uint8_t *in,
                                 DWORD in_len, DWORD flags, sign_plan *plan)
{
    DWORD pad = flags & (BCRYPT_PAD_PKCS1 | BCRYPT_PAD_PSS);

    memset(plan, 0, sizeof(*plan));
    if (!k->pub.is_rsa) {
        if (pad)
            return NTE_BAD_FLAGS; /* ECDSA has no padding */
        plan->mech = SG_MECH_ECDSA;
        /* The server needs the hash that made the digest: known by its length. */
        int h = sgc_hash_for_digest_len(in_len);
        if (h < 0)
            return NTE_NOT_SUPPORTED; /* a SHA-1 or truncated digest: not signed by the server */
        plan->hash = (sg_hash)h;
        plan->digest = in;
        plan->digest_len = in_len;
        return ERROR_SUCCESS;
    }
    if (pad != BCRYPT_PAD_PKCS1 && pad != BCRYPT_PAD_PSS)
        return NTE_BAD_FLAGS; /* an RSA key signs with exactly one padding */
    if (!padding)
        return NTE_INVALID_PARAMETER;
    if (pad == BCRYPT_PAD_PKCS1) {
        const BCRYPT_PKCS1_PADDING_INFO *pi = padding;
        plan->mech = SG_MECH_RSA_PKCS1;
        if (!pi->pszAlgId) {
            /* No algorithm: the input is signed as given. The server signs digests, so only
             * an exact SHA-2 DigestInfo can be signed, and the signature is then the same
             * bytes PKCS#1 v1.5 over that DigestInfo gives. Anything else is refused. */
            const uint8_t *d;
            size_t dlen;
            if (sg_digestinfo_parse(in, in_len, &plan->hash, &d, &dlen) != SG_OK)
                return NTE_NOT_SUPPORTED;
            plan->digest = d;
            plan->digest_len = dlen;
            return ERROR_SUCCESS;
        }
        if (!hash_of_alg(pi->pszAlgId, &plan->hash))
            return NTE_NOT_SUPPORTED;
    } else {
        const BCRYPT_PSS_PADDING_INFO *pi = padding;
        plan->mech = SG_MECH_RSA_PSS;
        if (!hash_of_alg(pi->pszAlgId, &plan->hash))
            return NTE_NOT_SUPPORTED;
        /* RFC 8017 9.1.1: the salt must fit the encoded message. */
        if (k->pub.modulus_len < sg_hash_len(plan->hash) + 2 ||
            pi->cbSalt > k->pub.modulus_len - sg_hash_len(plan->hash) - 2)
            return NTE_INVALID_PARAMETER;
        plan->salt = pi->cbSalt;
    }
    if (in_len != sg_hash_len(plan->hash))
        return NTE_INVALID_PARAMETER; /* not a digest of the hash the padding names */
    plan->digest = in;
    plan->digest_len = in_len;
    return ERROR_SUCCESS;
}

SECURITY_STATUS WINAPI ksp_sign_hash(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, VOID *padding,
                                     PBYTE hash, DWORD hash_len, PBYTE sig, DWORD sig_cb,
                                     DWORD *res, DWORD flags)
{
    ksp_key *k = ksp_key_get(hp, hk);
    uint8_t buf[1024];
    size_t got = sizeof(buf);
    sign_plan plan;
    SECURITY_STATUS ss;
    sg_status st;

    if (!k)
        return NTE_INVALID_HANDLE;
    if (!res || (!hash && hash_len)) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    if (flags & ~(DWORD)KSP_SIGN_FLAGS) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    ss = plan_sign(k, padding, hash, hash_len, flags, &plan);
    if (ss != ERROR_SUCCESS)
        goto out;
    /* Size query and short buffer: answered from the key, before any round trip. */
    *res = (DWORD)k->sig_len;
    if (!sig)
        goto out;
    if (sig_cb < k->sig_len) {
        ss = NTE_BUFFER_TOO_SMALL;
        goto out;
    }
    st = sg_sign_one(k->prov->client, k->name, plan.mech, plan.hash, plan.salt, plan.digest, buf,
                     &got);
    if (st != SG_OK) {
        ss = ksp_map_status(st, KSP_CTX_SIGN);
        ksp_debug("SignHash with %s (%s, %s): %s: %s -> 0x%08lx", k->name, sg_mech_name(plan.mech),
                  sg_hash_name(plan.hash), sg_status_name(st), sg_last_error(), (unsigned long)ss);
        goto out;
    }
    if (got != k->sig_len) {
        ss = NTE_INTERNAL_ERROR; /* not the size the key promised */
        goto out;
    }
    memcpy(sig, buf, got);
    *res = (DWORD)got;
out:
    ksp_key_put(k);
    return ss;
}

/* Verifies with bcrypt's own implementation over the public blob we export: no private key
 * and no agent involved. */
SECURITY_STATUS WINAPI ksp_verify_signature(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                            VOID *padding, PBYTE hash, DWORD hash_len, PBYTE sig,
                                            DWORD sig_len, DWORD flags)
{
    ksp_key *k = ksp_key_get(hp, hk);
    BCRYPT_ALG_HANDLE alg = NULL;
    BCRYPT_KEY_HANDLE key = NULL;
    uint8_t blob[sizeof(BCRYPT_RSAKEY_BLOB) + 8 + 512];
    DWORD blob_len = 0;
    SECURITY_STATUS ss;
    NTSTATUS nt;

    if (!k)
        return NTE_INVALID_HANDLE;
    if ((!hash && hash_len) || !sig) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    if (flags & ~(DWORD)KSP_SIGN_FLAGS) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    if (k->pub.is_rsa ? !(flags & (BCRYPT_PAD_PKCS1 | BCRYPT_PAD_PSS)) || !padding
                      : (flags & (BCRYPT_PAD_PKCS1 | BCRYPT_PAD_PSS)) != 0) {
        ss = k->pub.is_rsa && !padding && (flags & (BCRYPT_PAD_PKCS1 | BCRYPT_PAD_PSS))
                 ? NTE_INVALID_PARAMETER
                 : NTE_BAD_FLAGS;
        goto out;
    }
    ss = ksp_public_blob(k, blob, sizeof(blob), &blob_len);
    if (ss != ERROR_SUCCESS)
        goto out;
    nt = BCryptOpenAlgorithmProvider(&alg, k->alg, NULL, 0);
    if (nt == 0)
        nt = BCryptImportKeyPair(alg, NULL,
                                 k->pub.is_rsa ? BCRYPT_RSAPUBLIC_BLOB : BCRYPT_ECCPUBLIC_BLOB,
                                 &key, blob, blob_len, 0);
    if (nt != 0) {
        ksp_debug("VerifySignature: bcrypt cannot load the public key: 0x%08lx", (unsigned long)nt);
        ss = NTE_INTERNAL_ERROR;
        goto out;
    }
    nt = BCryptVerifySignature(key, padding, hash, hash_len, sig, sig_len,
                               flags & (BCRYPT_PAD_PKCS1 | BCRYPT_PAD_PSS));
    ss = nt == 0 ? ERROR_SUCCESS : NTE_BAD_SIGNATURE;
out:
    if (key)
        BCryptDestroyKey(key);
    if (alg)
        BCryptCloseAlgorithmProvider(alg, 0);
    ksp_key_put(k);
    return ss;
}
