/* Key handles: the container's signature key (CPGetUserKey, its parameters, its certificate,
 * PUBLICKEYBLOB export, duplicate and destroy). The refusals of what a signing-only CSP does
 * not do with keys are csp_unsupported.c's. */
#include <stdlib.h>

#include "csp.h"

/* The handle table's destructor (the key holds nothing but its spec). */
static void key_destroy(csp_obj *o)
{
    free(o);
}

/* A new key handle of `p` for `spec`. */
static DWORD key_new(csp_prov *p, DWORD spec, HCRYPTKEY *out)
{
    csp_key *k = calloc(1, sizeof(*k));
    ULONG_PTR handle;
    DWORD err;
    if (!k)
        return (DWORD)NTE_NO_MEMORY;
    k->spec = spec;
    err = csp_handle_open(&k->obj, CSP_OBJ_KEY, &p->obj, key_destroy, &handle);
    if (err != ERROR_SUCCESS)
        free(k);
    else
        *out = handle;
    return err;
}

BOOL WINAPI CPGetUserKey(HCRYPTPROV hProv, DWORD dwKeySpec, HCRYPTKEY *phUserKey)
{
    csp_prov *p = csp_prov_get(hProv);
    const sg_key *key;
    sg_status st;
    DWORD err = ERROR_SUCCESS;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!phUserKey)
        err = ERROR_INVALID_PARAMETER;
    /* Every container holds one signature key; there is no key-exchange pair. */
    else if (dwKeySpec != AT_SIGNATURE || p->verify_only)
        err = (DWORD)NTE_NO_KEY;
    else if ((st = csp_resolve(p, &key, NULL)) != SG_OK)
        err = csp_map_status(st, CSP_CTX_OTHER);
    else
        err = key_new(p, AT_SIGNATURE, phUserKey);
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

/* Ends the handle: a second destroy of the same value, or any later use, is NTE_BAD_KEY. */
BOOL WINAPI CPDestroyKey(HCRYPTPROV hProv, HCRYPTKEY hKey)
{
    csp_prov *p = csp_prov_get(hProv);
    DWORD err = ERROR_SUCCESS;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (csp_handle_close(hKey, CSP_OBJ_KEY, &p->obj) != 0)
        err = (DWORD)NTE_BAD_KEY;
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

BOOL WINAPI CPDuplicateKey(HCRYPTPROV hUID, HCRYPTKEY hKey, DWORD *pdwReserved, DWORD dwFlags,
                           HCRYPTKEY *phKey)
{
    csp_prov *p = csp_prov_get(hUID);
    csp_key *k = csp_key_get(p, hKey);
    DWORD err;

    if (!p)
        err = (DWORD)NTE_BAD_UID;
    else if (!k)
        err = (DWORD)NTE_BAD_KEY;
    else if (pdwReserved || !phKey)
        err = ERROR_INVALID_PARAMETER;
    else if (dwFlags)
        err = (DWORD)NTE_BAD_FLAGS;
    else
        err = key_new(p, k->spec, phKey);
    csp_put(k);
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

/* A key parameter of the container's key. */
static BOOL key_param(csp_prov *p, DWORD param, BYTE *out, DWORD *out_len)
{
    const sg_key *key;
    sg_pubkey_info pub;
    sg_status st;
    DWORD v;

    st = csp_resolve(p, &key, &pub);
    if (st != SG_OK)
        return csp_fail(csp_map_status(st, CSP_CTX_OTHER));
    switch (param) {
    case KP_ALGID: v = CALG_RSA_SIGN; break;
    case KP_KEYLEN:
    case KP_BLOCKLEN: v = pub.bits; break;
    case KP_PERMISSIONS: v = CRYPT_READ; break; /* no CRYPT_EXPORT: the private key never leaves */
    case KP_CERTIFICATE:
        if (!key->cert)
            return csp_fail((DWORD)SCARD_E_NO_SUCH_CERTIFICATE);
        return csp_output(key->cert, (DWORD)key->cert_len, out, out_len);
    default: return csp_fail((DWORD)NTE_BAD_TYPE);
    }
    return csp_output(&v, sizeof(v), out, out_len);
}

BOOL WINAPI CPGetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, BYTE *pbData,
                          DWORD *pcbDataLen, DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_key *k = csp_key_get(p, hKey);
    BOOL ok;

    if (!p)
        ok = csp_fail((DWORD)NTE_BAD_UID);
    else if (!k)
        ok = csp_fail((DWORD)NTE_BAD_KEY);
    else if (dwFlags)
        ok = csp_fail((DWORD)NTE_BAD_FLAGS);
    else if (!pcbDataLen)
        ok = csp_fail(ERROR_INVALID_PARAMETER);
    else
        ok = key_param(p, dwParam, pbData, pcbDataLen);
    csp_put(k);
    csp_put(p);
    return ok;
}

BOOL WINAPI CPSetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, const BYTE *pbData,
                          DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    csp_key *k = csp_key_get(p, hKey);
    DWORD err;

    (void)pbData;
    (void)dwFlags;
    if (!p)
        err = (DWORD)NTE_BAD_UID;
    else if (!k)
        err = (DWORD)NTE_BAD_KEY;
    /* The certificate is the server's (its CA issues it); nothing about the key is settable. */
    else
        err = dwParam == KP_CERTIFICATE ? (DWORD)NTE_PERM : (DWORD)NTE_BAD_TYPE;
    csp_put(k);
    csp_put(p);
    return csp_fail(err);
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
    csp_prov *p = csp_prov_get(hProv);
    csp_key *k = csp_key_get(p, hKey);
    const sg_key *key;
    sg_pubkey_info pub;
    sg_status st;
    BOOL ok;

    if (!p)
        ok = csp_fail((DWORD)NTE_BAD_UID);
    else if (!k)
        ok = csp_fail((DWORD)NTE_BAD_KEY);
    else if (!pcbDataLen)
        ok = csp_fail(ERROR_INVALID_PARAMETER);
    /* The private key stays in the server's HSM: not exportable, wrapped or not. */
    else if (dwBlobType == PRIVATEKEYBLOB || dwBlobType == PLAINTEXTKEYBLOB ||
             dwBlobType == OPAQUEKEYBLOB)
        ok = csp_fail((DWORD)NTE_BAD_KEY_STATE);
    else if (dwBlobType != PUBLICKEYBLOB)
        ok = csp_fail((DWORD)NTE_BAD_TYPE);
    else if (hPubKey)
        ok = csp_fail((DWORD)NTE_BAD_KEY);
    else if (dwFlags)
        ok = csp_fail((DWORD)NTE_BAD_FLAGS);
    else if ((st = csp_resolve(p, &key, &pub)) != SG_OK)
        ok = csp_fail(csp_map_status(st, CSP_CTX_OTHER));
    else
        ok = export_public(&pub, pbData, pcbDataLen);
    csp_put(k);
    csp_put(p);
    return ok;
}
