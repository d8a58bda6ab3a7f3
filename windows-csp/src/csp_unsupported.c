/* The refusals of a signing-only CSP: no key generation, derivation or import, no symmetric
 * encryption, no session keys to hash. Each still checks its handles first, so a caller learns
 * of a bad handle before the refusal (as from a full provider). */
#include "csp.h"

BOOL WINAPI CPGenKey(HCRYPTPROV hProv, ALG_ID Algid, DWORD dwFlags, HCRYPTKEY *phKey)
{
    csp_prov *p = csp_prov_get(hProv);
    (void)dwFlags;
    (void)phKey;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    csp_put(p);
    /* Key pairs are made on the server by its administrators; no session keys here. */
    if (Algid == AT_SIGNATURE || Algid == AT_KEYEXCHANGE || Algid == CALG_RSA_SIGN ||
        Algid == CALG_RSA_KEYX)
        return csp_fail((DWORD)NTE_PERM);
    return csp_fail((DWORD)NTE_BAD_ALGID);
}

BOOL WINAPI CPDeriveKey(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTHASH hBaseData, DWORD dwFlags,
                        HCRYPTKEY *phKey)
{
    csp_prov *p = csp_prov_get(hProv);
    (void)Algid;
    (void)hBaseData;
    (void)dwFlags;
    (void)phKey;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    csp_put(p);
    return csp_fail((DWORD)NTE_BAD_ALGID); /* no symmetric algorithm at all */
}

BOOL WINAPI CPImportKey(HCRYPTPROV hProv, const BYTE *pbData, DWORD cbDataLen, HCRYPTKEY hPubKey,
                        DWORD dwFlags, HCRYPTKEY *phKey)
{
    csp_prov *p = csp_prov_get(hProv);
    (void)pbData;
    (void)cbDataLen;
    (void)hPubKey;
    (void)dwFlags;
    (void)phKey;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    csp_put(p);
    return csp_fail((DWORD)NTE_NOT_SUPPORTED);
}

/* NTE_BAD_UID or NTE_BAD_KEY for the handles, else `refusal`. */
static BOOL refuse_with_key(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD refusal)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_key *k = csp_key_get(p, hKey);
    DWORD err = !p ? (DWORD)NTE_BAD_UID : !k ? (DWORD)NTE_BAD_KEY : refusal;
    csp_put(k);
    csp_put(p);
    return csp_fail(err);
}

BOOL WINAPI CPEncrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH hHash, BOOL fFinal,
                      DWORD dwFlags, BYTE *pbData, DWORD *pcbDataLen, DWORD cbBufLen)
{
    (void)hHash;
    (void)fFinal;
    (void)dwFlags;
    (void)pbData;
    (void)pcbDataLen;
    (void)cbBufLen;
    /* a signature key does not encrypt */
    return refuse_with_key(hProv, hKey, (DWORD)NTE_NOT_SUPPORTED);
}

BOOL WINAPI CPDecrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH hHash, BOOL fFinal,
                      DWORD dwFlags, BYTE *pbData, DWORD *pcbDataLen)
{
    (void)hHash;
    (void)fFinal;
    (void)dwFlags;
    (void)pbData;
    (void)pcbDataLen;
    return refuse_with_key(hProv, hKey, (DWORD)NTE_NOT_SUPPORTED);
}

BOOL WINAPI CPHashSessionKey(HCRYPTPROV hProv, HCRYPTHASH hHash, HCRYPTKEY hKey, DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_hash *h = csp_hash_get(p, hHash);
    DWORD err = !p ? (DWORD)NTE_BAD_UID : !h ? (DWORD)NTE_BAD_HASH : (DWORD)NTE_BAD_KEY;
    (void)hKey;
    (void)dwFlags;
    csp_put(h);
    csp_put(p);
    return csp_fail(err); /* there are no session keys to hash */
}
