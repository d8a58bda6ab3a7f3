/* Hash objects (SHA-2, hashed locally with the client library's mbedTLS), CPSignHash (RSA
 * PKCS#1 v1.5 by the agent, answered in CryptoAPI's little-endian byte order) and
 * CPVerifySignature (a local RSA verify against the container's public key). */
#include <stdlib.h>

#include <mbedtls/md.h>
#include <mbedtls/pk.h>

#include "csp.h"

csp_hash *csp_hash_of(csp_prov *p, HCRYPTHASH h)
{
    csp_hash *x = (csp_hash *)h;
    return x && x->magic == CSP_MAGIC_HASH && x->prov == p ? x : NULL;
}

/* CALG_SHA_* to the client library's hash; SHA-1, MD5 and the rest are not signable here. */
static int hash_of_alg(ALG_ID alg, sg_hash *out)
{
    switch (alg) {
    case CALG_SHA_256: *out = SG_HASH_SHA256; return 1;
    case CALG_SHA_384: *out = SG_HASH_SHA384; return 1;
    case CALG_SHA_512: *out = SG_HASH_SHA512; return 1;
    default: return 0;
    }
}

sg_status csp_hash_finish(csp_hash *h)
{
    sg_status st;
    size_t len = sizeof(h->value);
    if (h->final)
        return SG_OK;
    st = sg_digest_final(&h->ctx, h->value, &len);
    if (st != SG_OK)
        return st;
    h->value_len = len;
    h->final = 1;
    return SG_OK;
}

BOOL WINAPI CPCreateHash(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTKEY hKey, DWORD dwFlags,
                         HCRYPTHASH *phHash)
{
    csp_prov *p = csp_prov_of(hProv);
    csp_hash *h;
    sg_hash hash;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!phHash)
        return csp_fail(ERROR_INVALID_PARAMETER);
    if (!hash_of_alg(Algid, &hash))
        return csp_fail((DWORD)NTE_BAD_ALGID);
    if (hKey) /* keyed hashes (HMAC, MAC) need a session key, which this CSP has not */
        return csp_fail((DWORD)NTE_BAD_KEY);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    h = calloc(1, sizeof(*h));
    if (!h)
        return csp_fail((DWORD)NTE_NO_MEMORY);
    if (sg_digest_init(&h->ctx, hash) != SG_OK) {
        free(h);
        return csp_fail((DWORD)NTE_FAIL);
    }
    InitializeCriticalSection(&h->lock);
    h->magic = CSP_MAGIC_HASH;
    h->prov = p;
    h->alg = Algid;
    h->hash = hash;
    *phHash = (HCRYPTHASH)h;
    return TRUE;
}

BOOL WINAPI CPHashData(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE *pbData, DWORD cbDataLen,
                       DWORD dwFlags)
{
    csp_prov *p = csp_prov_of(hProv);
    csp_hash *h;
    DWORD err = ERROR_SUCCESS;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    h = csp_hash_of(p, hHash);
    if (!h)
        return csp_fail((DWORD)NTE_BAD_HASH);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    if (!pbData && cbDataLen)
        return csp_fail(ERROR_INVALID_PARAMETER);
    EnterCriticalSection(&h->lock);
    if (h->final)
        err = (DWORD)NTE_BAD_HASH_STATE;
    else if (cbDataLen && sg_digest_update(&h->ctx, pbData, cbDataLen) != SG_OK)
        err = (DWORD)NTE_FAIL;
    LeaveCriticalSection(&h->lock);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

BOOL WINAPI CPSetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, const BYTE *pbData,
                           DWORD dwFlags)
{
    csp_prov *p = csp_prov_of(hProv);
    csp_hash *h;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    h = csp_hash_of(p, hHash);
    if (!h)
        return csp_fail((DWORD)NTE_BAD_HASH);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    if (dwParam != HP_HASHVAL)
        return csp_fail((DWORD)NTE_BAD_TYPE);
    if (!pbData)
        return csp_fail(ERROR_INVALID_PARAMETER);
    /* The caller's digest, of the hash's own length, replaces whatever was hashed so far. */
    EnterCriticalSection(&h->lock);
    h->value_len = sg_hash_len(h->hash);
    memcpy(h->value, pbData, h->value_len);
    h->final = 1;
    LeaveCriticalSection(&h->lock);
    return TRUE;
}

BOOL WINAPI CPGetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, BYTE *pbData,
                           DWORD *pcbDataLen, DWORD dwFlags)
{
    csp_prov *p = csp_prov_of(hProv);
    csp_hash *h;
    DWORD v;
    BOOL ok;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    h = csp_hash_of(p, hHash);
    if (!h)
        return csp_fail((DWORD)NTE_BAD_HASH);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    if (!pcbDataLen)
        return csp_fail(ERROR_INVALID_PARAMETER);
    switch (dwParam) {
    case HP_ALGID: v = h->alg; return csp_output(&v, sizeof(v), pbData, pcbDataLen);
    case HP_HASHSIZE:
        v = (DWORD)sg_hash_len(h->hash);
        return csp_output(&v, sizeof(v), pbData, pcbDataLen);
    case HP_HASHVAL:
        if (!pbData) /* a size query does not finish the hash */
            return csp_output(NULL, (DWORD)sg_hash_len(h->hash), NULL, pcbDataLen);
        EnterCriticalSection(&h->lock);
        if (*pcbDataLen < sg_hash_len(h->hash)) {
            *pcbDataLen = (DWORD)sg_hash_len(h->hash);
            LeaveCriticalSection(&h->lock);
            return csp_fail(ERROR_MORE_DATA);
        }
        if (csp_hash_finish(h) != SG_OK) {
            LeaveCriticalSection(&h->lock);
            return csp_fail((DWORD)NTE_FAIL);
        }
        ok = csp_output(h->value, (DWORD)h->value_len, pbData, pcbDataLen);
        LeaveCriticalSection(&h->lock);
        return ok;
    default: return csp_fail((DWORD)NTE_BAD_TYPE);
    }
}

BOOL WINAPI CPDuplicateHash(HCRYPTPROV hUID, HCRYPTHASH hHash, DWORD *pdwReserved, DWORD dwFlags,
                            HCRYPTHASH *phHash)
{
    csp_prov *p = csp_prov_of(hUID);
    csp_hash *h, *copy;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    h = csp_hash_of(p, hHash);
    if (!h)
        return csp_fail((DWORD)NTE_BAD_HASH);
    if (pdwReserved || !phHash)
        return csp_fail(ERROR_INVALID_PARAMETER);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    copy = malloc(sizeof(*copy));
    if (!copy)
        return csp_fail((DWORD)NTE_NO_MEMORY);
    /* mbedTLS's SHA-2 contexts are plain data: a byte copy is a clone. */
    EnterCriticalSection(&h->lock);
    *copy = *h;
    LeaveCriticalSection(&h->lock);
    InitializeCriticalSection(&copy->lock);
    *phHash = (HCRYPTHASH)copy;
    return TRUE;
}

BOOL WINAPI CPDestroyHash(HCRYPTPROV hProv, HCRYPTHASH hHash)
{
    csp_prov *p = csp_prov_of(hProv);
    csp_hash *h;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    h = csp_hash_of(p, hHash);
    if (!h)
        return csp_fail((DWORD)NTE_BAD_HASH);
    h->magic = 0;
    sg_digest_free(&h->ctx);
    DeleteCriticalSection(&h->lock);
    SecureZeroMemory(h, sizeof(*h));
    free(h);
    return TRUE;
}

static void reverse(uint8_t *dst, const uint8_t *src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = src[len - 1 - i];
}

BOOL WINAPI CPSignHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwKeySpec, LPCWSTR szDescription,
                       DWORD dwFlags, BYTE *pbSignature, DWORD *pcbSigLen)
{
    csp_prov *p = csp_prov_of(hProv);
    csp_hash *h;
    const sg_key *key;
    sg_pubkey_info pub;
    sg_sign_request req = {0};
    uint8_t digest[SG_MAX_DIGEST], sig[512];
    const uint8_t *digests[1] = {digest};
    uint8_t *sigs[1] = {sig};
    size_t sig_len = sizeof(sig);
    sg_status st;
    DWORD err = ERROR_SUCCESS;

    (void)szDescription; /* obsolete; Microsoft says callers pass NULL */
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    h = csp_hash_of(p, hHash);
    if (!h)
        return csp_fail((DWORD)NTE_BAD_HASH);
    if (!pcbSigLen)
        return csp_fail(ERROR_INVALID_PARAMETER);
    if (dwKeySpec == AT_KEYEXCHANGE)
        return csp_fail((DWORD)NTE_NO_KEY);
    if (dwKeySpec != AT_SIGNATURE)
        return csp_fail((DWORD)NTE_BAD_ALGID);
    /* CRYPT_NOHASHOID and CRYPT_X931_FORMAT: the agent signs a DigestInfo, nothing else. */
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    st = csp_resolve(p, &key, &pub);
    if (st != SG_OK)
        return csp_fail(p->verify_only ? (DWORD)NTE_NO_KEY : csp_map_status(st, CSP_CTX_SIGN));
    /* The size is the modulus length: answered from the listing, without a round trip. */
    if (!pbSignature) {
        *pcbSigLen = (DWORD)pub.modulus_len;
        return TRUE;
    }
    if (*pcbSigLen < pub.modulus_len) {
        *pcbSigLen = (DWORD)pub.modulus_len;
        return csp_fail(ERROR_MORE_DATA);
    }
    EnterCriticalSection(&h->lock);
    st = csp_hash_finish(h);
    if (st == SG_OK)
        memcpy(digest, h->value, h->value_len);
    LeaveCriticalSection(&h->lock);
    if (st != SG_OK)
        return csp_fail((DWORD)NTE_FAIL);

    req.key = key->name;
    req.mech = SG_MECH_RSA_PKCS1;
    req.hash = h->hash;
    req.count = 1;
    req.digests = digests;
    st = sg_sign(p->client, &req, sigs, &sig_len);
    if (st != SG_OK) {
        err = csp_map_status(st, CSP_CTX_SIGN);
        goto out;
    }
    if (sig_len != pub.modulus_len || sig_len > *pcbSigLen) {
        err = (DWORD)NTE_FAIL; /* the agent answered a signature of the wrong size */
        goto out;
    }
    reverse(pbSignature, sig, sig_len);
    *pcbSigLen = (DWORD)sig_len;
    csp_debug("CPSignHash: key \"%s\", %s, %zu bytes", key->name, sg_hash_name(h->hash), sig_len);
out:
    SecureZeroMemory(digest, sizeof(digest));
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

BOOL WINAPI CPVerifySignature(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE *pbSignature,
                              DWORD cbSigLen, HCRYPTKEY hPubKey, LPCWSTR szDescription,
                              DWORD dwFlags)
{
    csp_prov *p = csp_prov_of(hProv);
    csp_hash *h;
    csp_key *k;
    const sg_key *key;
    sg_pubkey_info pub;
    mbedtls_pk_context pk;
    uint8_t digest[SG_MAX_DIGEST], sig[512];
    size_t digest_len = 0;
    sg_status st;
    DWORD err = ERROR_SUCCESS;

    (void)szDescription;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    h = csp_hash_of(p, hHash);
    if (!h)
        return csp_fail((DWORD)NTE_BAD_HASH);
    k = csp_key_of(p, hPubKey);
    if (!k)
        return csp_fail((DWORD)NTE_BAD_KEY);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    if (!pbSignature)
        return csp_fail(ERROR_INVALID_PARAMETER);
    st = csp_resolve(p, &key, &pub);
    if (st != SG_OK)
        return csp_fail(csp_map_status(st, CSP_CTX_OTHER));
    if (cbSigLen != pub.modulus_len)
        return csp_fail((DWORD)NTE_BAD_SIGNATURE);
    EnterCriticalSection(&h->lock);
    st = csp_hash_finish(h);
    if (st == SG_OK) {
        digest_len = h->value_len;
        memcpy(digest, h->value, digest_len);
    }
    LeaveCriticalSection(&h->lock);
    if (st != SG_OK)
        return csp_fail((DWORD)NTE_FAIL);

    reverse(sig, pbSignature, cbSigLen);
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, key->public_key, key->public_key_len) != 0 ||
        mbedtls_pk_get_type(&pk) != MBEDTLS_PK_RSA) {
        err = (DWORD)NTE_BAD_KEY;
        goto out;
    }
    if (mbedtls_pk_verify(&pk, md_of(h->hash), digest, digest_len, sig, cbSigLen) != 0)
        err = (DWORD)NTE_BAD_SIGNATURE;
out:
    mbedtls_pk_free(&pk);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}
