/* Hash objects: SHA-2 hashed locally with the client library's mbedTLS, or a value the caller
 * sets (HP_HASHVAL); CPCreateHash, CPHashData, CPSetHashParam, CPGetHashParam,
 * CPDuplicateHash, CPDestroyHash. Signing a hash is csp_sign.c's. */
#include <stdlib.h>

#include "csp.h"

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

/* The handle table's destructor: once the handle is destroyed (or its context released) and
 * no call uses the hash any more. */
static void hash_destroy(csp_obj *o)
{
    csp_hash *h = (csp_hash *)o;
    sg_digest_free(&h->ctx);
    DeleteCriticalSection(&h->lock);
    SecureZeroMemory(h, sizeof(*h));
    free(h);
}

/* Registers `h` (its lock initialised) as a hash of `p`; frees it if the table refuses. */
static DWORD hash_register(csp_prov *p, csp_hash *h, HCRYPTHASH *out)
{
    ULONG_PTR handle;
    DWORD err = csp_handle_open(&h->obj, CSP_OBJ_HASH, &p->obj, hash_destroy, &handle);
    if (err != ERROR_SUCCESS)
        hash_destroy(&h->obj);
    else
        *out = handle;
    return err;
}

BOOL WINAPI CPCreateHash(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTKEY hKey, DWORD dwFlags,
                         HCRYPTHASH *phHash)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_hash *h;
    sg_hash hash;
    DWORD err = ERROR_SUCCESS;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!phHash)
        err = ERROR_INVALID_PARAMETER;
    else if (!hash_of_alg(Algid, &hash))
        err = (DWORD)NTE_BAD_ALGID;
    else if (hKey) /* keyed hashes (HMAC, MAC) need a session key, which this CSP has not */
        err = (DWORD)NTE_BAD_KEY;
    else if (dwFlags)
        err = (DWORD)NTE_BAD_FLAGS;
    if (err != ERROR_SUCCESS)
        goto out;
    h = calloc(1, sizeof(*h));
    if (!h) {
        err = (DWORD)NTE_NO_MEMORY;
        goto out;
    }
    if (sg_digest_init(&h->ctx, hash) != SG_OK) {
        free(h);
        err = (DWORD)NTE_FAIL;
        goto out;
    }
    InitializeCriticalSection(&h->lock);
    h->alg = Algid;
    h->hash = hash;
    err = hash_register(p, h, phHash);
out:
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

BOOL WINAPI CPHashData(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE *pbData, DWORD cbDataLen,
                       DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_hash *h = csp_hash_get(p, hHash);
    DWORD err = ERROR_SUCCESS;

    if (!p)
        err = (DWORD)NTE_BAD_UID;
    else if (!h)
        err = (DWORD)NTE_BAD_HASH;
    else if (dwFlags)
        err = (DWORD)NTE_BAD_FLAGS;
    else if (!pbData && cbDataLen)
        err = ERROR_INVALID_PARAMETER;
    if (err != ERROR_SUCCESS)
        goto out;
    EnterCriticalSection(&h->lock);
    if (h->final)
        err = (DWORD)NTE_BAD_HASH_STATE;
    else if (cbDataLen && sg_digest_update(&h->ctx, pbData, cbDataLen) != SG_OK)
        err = (DWORD)NTE_FAIL;
    LeaveCriticalSection(&h->lock);
out:
    csp_put(h);
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

BOOL WINAPI CPSetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, const BYTE *pbData,
                           DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_hash *h = csp_hash_get(p, hHash);
    DWORD err = ERROR_SUCCESS;

    if (!p)
        err = (DWORD)NTE_BAD_UID;
    else if (!h)
        err = (DWORD)NTE_BAD_HASH;
    else if (dwFlags)
        err = (DWORD)NTE_BAD_FLAGS;
    else if (dwParam != HP_HASHVAL)
        err = (DWORD)NTE_BAD_TYPE;
    else if (!pbData)
        err = ERROR_INVALID_PARAMETER;
    if (err != ERROR_SUCCESS)
        goto out;
    /* The caller's digest, of the hash's own length, replaces whatever was hashed so far. */
    EnterCriticalSection(&h->lock);
    h->value_len = sg_hash_len(h->hash);
    memcpy(h->value, pbData, h->value_len);
    h->final = 1;
    LeaveCriticalSection(&h->lock);
out:
    csp_put(h);
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

/* HP_HASHVAL into the caller's buffer, finishing the hash (the caller holds no lock). */
static BOOL read_value(csp_hash *h, BYTE *out, DWORD *out_len)
{
    const DWORD need = (DWORD)sg_hash_len(h->hash);
    BOOL ok;
    if (!out) /* a size query does not finish the hash */
        return csp_output(NULL, need, NULL, out_len);
    if (*out_len < need) {
        *out_len = need;
        return csp_fail(ERROR_MORE_DATA);
    }
    EnterCriticalSection(&h->lock);
    if (csp_hash_finish(h) != SG_OK)
        ok = csp_fail((DWORD)NTE_FAIL);
    else
        ok = csp_output(h->value, (DWORD)h->value_len, out, out_len);
    LeaveCriticalSection(&h->lock);
    return ok;
}

BOOL WINAPI CPGetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, BYTE *pbData,
                           DWORD *pcbDataLen, DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_hash *h = csp_hash_get(p, hHash);
    DWORD v;
    BOOL ok;

    if (!p)
        ok = csp_fail((DWORD)NTE_BAD_UID);
    else if (!h)
        ok = csp_fail((DWORD)NTE_BAD_HASH);
    else if (dwFlags)
        ok = csp_fail((DWORD)NTE_BAD_FLAGS);
    else if (!pcbDataLen)
        ok = csp_fail(ERROR_INVALID_PARAMETER);
    else {
        switch (dwParam) {
        case HP_ALGID:
            v = h->alg;
            ok = csp_output(&v, sizeof(v), pbData, pcbDataLen);
            break;
        case HP_HASHSIZE:
            v = (DWORD)sg_hash_len(h->hash);
            ok = csp_output(&v, sizeof(v), pbData, pcbDataLen);
            break;
        case HP_HASHVAL: ok = read_value(h, pbData, pcbDataLen); break;
        default: ok = csp_fail((DWORD)NTE_BAD_TYPE); break;
        }
    }
    csp_put(h);
    csp_put(p);
    return ok;
}

BOOL WINAPI CPDuplicateHash(HCRYPTPROV hUID, HCRYPTHASH hHash, DWORD *pdwReserved, DWORD dwFlags,
                            HCRYPTHASH *phHash)
{
    csp_prov *p = csp_prov_get(hUID);
    csp_hash *h = csp_hash_get(p, hHash), *copy;
    DWORD err = ERROR_SUCCESS;

    if (!p)
        err = (DWORD)NTE_BAD_UID;
    else if (!h)
        err = (DWORD)NTE_BAD_HASH;
    else if (pdwReserved || !phHash)
        err = ERROR_INVALID_PARAMETER;
    else if (dwFlags)
        err = (DWORD)NTE_BAD_FLAGS;
    if (err != ERROR_SUCCESS)
        goto out;
    copy = malloc(sizeof(*copy));
    if (!copy) {
        err = (DWORD)NTE_NO_MEMORY;
        goto out;
    }
    /* mbedTLS's SHA-2 contexts are plain data: a byte copy is a clone (the header and the lock
     * are the copy's own, set below). */
    EnterCriticalSection(&h->lock);
    *copy = *h;
    LeaveCriticalSection(&h->lock);
    InitializeCriticalSection(&copy->lock);
    err = hash_register(p, copy, phHash);
out:
    csp_put(h);
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

/* Ends the handle: a second destroy of the same value, or any later use, is NTE_BAD_HASH. */
BOOL WINAPI CPDestroyHash(HCRYPTPROV hProv, HCRYPTHASH hHash)
{
    csp_prov *p = csp_prov_get(hProv);
    DWORD err = ERROR_SUCCESS;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (csp_handle_close(hHash, CSP_OBJ_HASH, &p->obj) != 0)
        err = (DWORD)NTE_BAD_HASH;
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}
