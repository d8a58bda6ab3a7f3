/* Key handles: the container's signature key (parameters, its certificate, PUBLICKEYBLOB
 * export), and the refusals for everything a signing-only CSP does not do (key generation,
 * import, derivation, symmetric encryption). */
#include <stdlib.h>

#include "csp.h"

csp_key *csp_key_of(csp_prov *p, HCRYPTKEY h)
{
    csp_key *k = (csp_key *)h;
    return k && k->magic == CSP_MAGIC_KEY && k->prov == p ? k : NULL;
}

BOOL WINAPI CPDestroyKey(HCRYPTPROV hProv, HCRYPTKEY hKey)
{
    csp_prov *p = csp_prov_of(hProv);
    csp_key *k;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    k = csp_key_of(p, hKey);
    if (!k)
        return csp_fail((DWORD)NTE_BAD_KEY);
    k->magic = 0;
    free(k);
    return TRUE;
}

BOOL WINAPI CPDuplicateKey(HCRYPTPROV hUID, HCRYPTKEY hKey, DWORD *pdwReserved, DWORD dwFlags,
                           HCRYPTKEY *phKey)
{
    csp_prov *p = csp_prov_of(hUID);
    csp_key *k, *copy;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    k = csp_key_of(p, hKey);
    if (!k)
        return csp_fail((DWORD)NTE_BAD_KEY);
    if (pdwReserved || !phKey)
        return csp_fail(ERROR_INVALID_PARAMETER);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    copy = malloc(sizeof(*copy));
    if (!copy)
        return csp_fail((DWORD)NTE_NO_MEMORY);
    *copy = *k;
    *phKey = (HCRYPTKEY)copy;
    return TRUE;
}

BOOL WINAPI CPGetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, BYTE *pbData,
                          DWORD *pcbDataLen, DWORD dwFlags)
{
    csp_prov *p = csp_prov_of(hProv);
    const sg_key *key;
    sg_pubkey_info pub;
    sg_status st;
    DWORD v;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!csp_key_of(p, hKey))
        return csp_fail((DWORD)NTE_BAD_KEY);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    if (!pcbDataLen)
        return csp_fail(ERROR_INVALID_PARAMETER);
    st = csp_resolve(p, &key, &pub);
    if (st != SG_OK)
        return csp_fail(csp_map_status(st, CSP_CTX_OTHER));
    switch (dwParam) {
    case KP_ALGID: v = CALG_RSA_SIGN; break;
    case KP_KEYLEN:
    case KP_BLOCKLEN: v = pub.bits; break;
    case KP_PERMISSIONS: v = CRYPT_READ; break; /* no CRYPT_EXPORT: the private key never leaves */
    case KP_CERTIFICATE:
        if (!key->cert)
            return csp_fail((DWORD)SCARD_E_NO_SUCH_CERTIFICATE);
        return csp_output(key->cert, (DWORD)key->cert_len, pbData, pcbDataLen);
    default: return csp_fail((DWORD)NTE_BAD_TYPE);
    }
    return csp_output(&v, sizeof(v), pbData, pcbDataLen);
}

BOOL WINAPI CPSetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, const BYTE *pbData,
                          DWORD dwFlags)
{
    csp_prov *p = csp_prov_of(hProv);
    (void)pbData;
    (void)dwFlags;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!csp_key_of(p, hKey))
        return csp_fail((DWORD)NTE_BAD_KEY);
    /* The certificate is the server's (its CA issues it); nothing about the key is settable. */
    return csp_fail(dwParam == KP_CERTIFICATE ? (DWORD)NTE_PERM : (DWORD)NTE_BAD_TYPE);
}

/* PUBLICKEYBLOB: BLOBHEADER, RSAPUBKEY ("RSA1", bits, exponent), modulus little-endian. */
static BOOL export_public(const sg_pubkey_info *pub, BYTE *out, DWORD *out_len)
{
    const DWORD mod_bytes = (pub->bits + 7) / 8;
    const DWORD need = (DWORD)(sizeof(BLOBHEADER) + sizeof(RSAPUBKEY)) + mod_bytes;
    BLOBHEADER bh = {0};
    RSAPUBKEY rk = {0};
    DWORD exp = 0;
    BYTE *m;

    if (pub->modulus_len > mod_bytes)
        return csp_fail((DWORD)NTE_BAD_KEY);
    for (size_t i = 0; i < pub->exponent_len; i++) {
        if (exp >> 24)
            return csp_fail((DWORD)NTE_BAD_KEY); /* an exponent wider than a DWORD */
        exp = (exp << 8) | pub->exponent[i];
    }
    if (!out) {
        *out_len = need;
        return TRUE;
    }
    if (*out_len < need) {
        *out_len = need;
        return csp_fail(ERROR_MORE_DATA);
    }
    bh.bType = PUBLICKEYBLOB;
    bh.bVersion = CUR_BLOB_VERSION;
    bh.aiKeyAlg = CALG_RSA_SIGN;
    rk.magic = 0x31415352; /* "RSA1" */
    rk.bitlen = pub->bits;
    rk.pubexp = exp;
    memcpy(out, &bh, sizeof(bh));
    memcpy(out + sizeof(bh), &rk, sizeof(rk));
    m = out + sizeof(bh) + sizeof(rk);
    memset(m, 0, mod_bytes);
    for (size_t i = 0; i < pub->modulus_len; i++)
        m[i] = pub->modulus[pub->modulus_len - 1 - i];
    *out_len = need;
    return TRUE;
}

BOOL WINAPI CPExportKey(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTKEY hPubKey, DWORD dwBlobType,
                        DWORD dwFlags, BYTE *pbData, DWORD *pcbDataLen)
{
    csp_prov *p = csp_prov_of(hProv);
    const sg_key *key;
    sg_pubkey_info pub;
    sg_status st;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!csp_key_of(p, hKey))
        return csp_fail((DWORD)NTE_BAD_KEY);
    if (!pcbDataLen)
        return csp_fail(ERROR_INVALID_PARAMETER);
    switch (dwBlobType) {
    case PUBLICKEYBLOB: break;
    /* The private key stays in the server's HSM: not exportable, wrapped or not. */
    case PRIVATEKEYBLOB:
    case PLAINTEXTKEYBLOB:
    case OPAQUEKEYBLOB: return csp_fail((DWORD)NTE_BAD_KEY_STATE);
    default: return csp_fail((DWORD)NTE_BAD_TYPE);
    }
    if (hPubKey)
        return csp_fail((DWORD)NTE_BAD_KEY);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    st = csp_resolve(p, &key, &pub);
    if (st != SG_OK)
        return csp_fail(csp_map_status(st, CSP_CTX_OTHER));
    return export_public(&pub, pbData, pcbDataLen);
}

BOOL WINAPI CPGenKey(HCRYPTPROV hProv, ALG_ID Algid, DWORD dwFlags, HCRYPTKEY *phKey)
{
    (void)dwFlags;
    (void)phKey;
    if (!csp_prov_of(hProv))
        return csp_fail((DWORD)NTE_BAD_UID);
    /* Key pairs are made on the server by its administrators; no session keys here. */
    if (Algid == AT_SIGNATURE || Algid == AT_KEYEXCHANGE || Algid == CALG_RSA_SIGN ||
        Algid == CALG_RSA_KEYX)
        return csp_fail((DWORD)NTE_PERM);
    return csp_fail((DWORD)NTE_BAD_ALGID);
}

BOOL WINAPI CPDeriveKey(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTHASH hBaseData, DWORD dwFlags,
                        HCRYPTKEY *phKey)
{
    (void)Algid;
    (void)hBaseData;
    (void)dwFlags;
    (void)phKey;
    if (!csp_prov_of(hProv))
        return csp_fail((DWORD)NTE_BAD_UID);
    return csp_fail((DWORD)NTE_BAD_ALGID); /* no symmetric algorithm at all */
}

BOOL WINAPI CPImportKey(HCRYPTPROV hProv, const BYTE *pbData, DWORD cbDataLen, HCRYPTKEY hPubKey,
                        DWORD dwFlags, HCRYPTKEY *phKey)
{
    (void)pbData;
    (void)cbDataLen;
    (void)hPubKey;
    (void)dwFlags;
    (void)phKey;
    if (!csp_prov_of(hProv))
        return csp_fail((DWORD)NTE_BAD_UID);
    return csp_fail((DWORD)NTE_NOT_SUPPORTED);
}

BOOL WINAPI CPEncrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH hHash, BOOL fFinal,
                      DWORD dwFlags, BYTE *pbData, DWORD *pcbDataLen, DWORD cbBufLen)
{
    csp_prov *p = csp_prov_of(hProv);
    (void)hHash;
    (void)fFinal;
    (void)dwFlags;
    (void)pbData;
    (void)pcbDataLen;
    (void)cbBufLen;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!csp_key_of(p, hKey))
        return csp_fail((DWORD)NTE_BAD_KEY);
    return csp_fail((DWORD)NTE_NOT_SUPPORTED); /* a signature key does not encrypt */
}

BOOL WINAPI CPDecrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH hHash, BOOL fFinal,
                      DWORD dwFlags, BYTE *pbData, DWORD *pcbDataLen)
{
    csp_prov *p = csp_prov_of(hProv);
    (void)hHash;
    (void)fFinal;
    (void)dwFlags;
    (void)pbData;
    (void)pcbDataLen;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!csp_key_of(p, hKey))
        return csp_fail((DWORD)NTE_BAD_KEY);
    return csp_fail((DWORD)NTE_NOT_SUPPORTED);
}

BOOL WINAPI CPHashSessionKey(HCRYPTPROV hProv, HCRYPTHASH hHash, HCRYPTKEY hKey, DWORD dwFlags)
{
    csp_prov *p = csp_prov_of(hProv);
    (void)hKey;
    (void)dwFlags;
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!csp_hash_of(p, hHash))
        return csp_fail((DWORD)NTE_BAD_HASH);
    return csp_fail((DWORD)NTE_BAD_KEY); /* there are no session keys to hash */
}
