/* CPSignHash (RSA PKCS#1 v1.5 by the agent, answered in CryptoAPI's little-endian byte order)
 * and CPVerifySignature (a local RSA verify against the container's public key): the two
 * entry points that take a hash and the container's key together. */
#include <stdlib.h>

#include <mbedtls/md.h>
#include <mbedtls/pk.h>

#include "csp.h"

static void reverse(uint8_t *dst, const uint8_t *src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = src[len - 1 - i];
}

/* The hash's value (finishing it) into digest; 0 or -1. */
static int hash_value(csp_hash *h, uint8_t *digest, size_t *digest_len)
{
    sg_status st;
    EnterCriticalSection(&h->lock);
    st = csp_hash_finish(h);
    if (st == SG_OK) {
        *digest_len = h->value_len;
        memcpy(digest, h->value, h->value_len);
    }
    LeaveCriticalSection(&h->lock);
    return st == SG_OK ? 0 : -1;
}

/* The container's signature of the hash's value into out, little-endian; a size query (out
 * NULL) and a short buffer are answered from the listing, without a round trip. */
static DWORD sign_digest(csp_prov *p, csp_hash *h, BYTE *out, DWORD *out_len)
{
    const sg_key *key;
    sg_pubkey_info pub;
    uint8_t digest[SG_MAX_DIGEST], sig[512];
    size_t sig_len = sizeof(sig), digest_len = 0;
    sg_status st;
    DWORD err = ERROR_SUCCESS;

    st = csp_resolve(p, &key, &pub);
    if (st != SG_OK)
        return p->verify_only ? (DWORD)NTE_NO_KEY : csp_map_status(st, CSP_CTX_SIGN);
    if (!out) {
        *out_len = (DWORD)pub.modulus_len;
        return ERROR_SUCCESS;
    }
    if (*out_len < pub.modulus_len) {
        *out_len = (DWORD)pub.modulus_len;
        return ERROR_MORE_DATA;
    }
    if (hash_value(h, digest, &digest_len) != 0)
        return (DWORD)NTE_FAIL;

    st = sg_sign_one(p->client, key->name, SG_MECH_RSA_PKCS1, h->hash, 0, digest, sig, &sig_len);
    if (st != SG_OK) {
        err = csp_map_status(st, CSP_CTX_SIGN);
        goto out;
    }
    if (sig_len != pub.modulus_len || sig_len > *out_len) {
        err = (DWORD)NTE_FAIL; /* the agent answered a signature of the wrong size */
        goto out;
    }
    reverse(out, sig, sig_len);
    *out_len = (DWORD)sig_len;
    csp_debug("CPSignHash: key \"%s\", %s, %zu bytes", key->name, sg_hash_name(h->hash), sig_len);
out:
    SecureZeroMemory(digest, sizeof(digest));
    return err;
}

BOOL WINAPI CPSignHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwKeySpec, LPCWSTR szDescription,
                       DWORD dwFlags, BYTE *pbSignature, DWORD *pcbSigLen)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_hash *h = csp_hash_get(p, hHash);
    DWORD err;

    (void)szDescription; /* obsolete; Microsoft says callers pass NULL */
    if (!p)
        err = (DWORD)NTE_BAD_UID;
    else if (!h)
        err = (DWORD)NTE_BAD_HASH;
    else if (!pcbSigLen)
        err = ERROR_INVALID_PARAMETER;
    else if (dwKeySpec == AT_KEYEXCHANGE)
        err = (DWORD)NTE_NO_KEY;
    else if (dwKeySpec != AT_SIGNATURE)
        err = (DWORD)NTE_BAD_ALGID;
    /* CRYPT_NOHASHOID and CRYPT_X931_FORMAT: the agent signs a DigestInfo, nothing else. */
    else if (dwFlags)
        err = (DWORD)NTE_BAD_FLAGS;
    else
        err = sign_digest(p, h, pbSignature, pcbSigLen);
    csp_put(h);
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

static mbedtls_md_type_t md_of(sg_hash hash)
{
    switch (hash) {
    case SG_HASH_SHA256: return MBEDTLS_MD_SHA256;
    case SG_HASH_SHA384: return MBEDTLS_MD_SHA384;
    case SG_HASH_SHA512: return MBEDTLS_MD_SHA512;
    }
    return MBEDTLS_MD_NONE;
}

/* A little-endian signature of the hash's value against the container's public key. */
static DWORD verify_digest(csp_prov *p, csp_hash *h, const BYTE *signature, DWORD sig_len)
{
    const sg_key *key;
    sg_pubkey_info pub;
    mbedtls_pk_context pk;
    uint8_t digest[SG_MAX_DIGEST], sig[512];
    size_t digest_len = 0;
    sg_status st;
    DWORD err = ERROR_SUCCESS;

    st = csp_resolve(p, &key, &pub);
    if (st != SG_OK)
        return csp_map_status(st, CSP_CTX_OTHER);
    if (sig_len != pub.modulus_len || sig_len > sizeof(sig))
        return (DWORD)NTE_BAD_SIGNATURE;
    if (hash_value(h, digest, &digest_len) != 0)
        return (DWORD)NTE_FAIL;

    reverse(sig, signature, sig_len);
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, key->public_key, key->public_key_len) != 0 ||
        mbedtls_pk_get_type(&pk) != MBEDTLS_PK_RSA) {
        err = (DWORD)NTE_BAD_KEY;
        goto out;
    }
    if (mbedtls_pk_verify(&pk, md_of(h->hash), digest, digest_len, sig, sig_len) != 0)
        err = (DWORD)NTE_BAD_SIGNATURE;
out:
    mbedtls_pk_free(&pk);
    return err;
}

BOOL WINAPI CPVerifySignature(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE *pbSignature,
                              DWORD cbSigLen, HCRYPTKEY hPubKey, LPCWSTR szDescription,
                              DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_hash *h = csp_hash_get(p, hHash);
    csp_key *k = csp_key_get(p, hPubKey);
    DWORD err;

    (void)szDescription;
    if (!p)
        err = (DWORD)NTE_BAD_UID;
    else if (!h)
        err = (DWORD)NTE_BAD_HASH;
    else if (!k)
        err = (DWORD)NTE_BAD_KEY;
    else if (dwFlags)
        err = (DWORD)NTE_BAD_FLAGS;
    else if (!pbSignature)
        err = ERROR_INVALID_PARAMETER;
    else
        err = verify_digest(p, h, pbSignature, cbSigLen);
    csp_put(k);
    csp_put(h);
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}
