/* Provider contexts: CPAcquireContext/CPReleaseContext (containers are the agent's RSA keys),
 * provider parameters (name, containers, algorithms, PIN = API key) and random numbers. */
#include <stdio.h>
#include <stdlib.h>

#include "csp.h"

#include <bcrypt.h>

/* The first RSA key named `name` ("" = the first RSA key) in the listing, with its public key. */
static const sg_key *find_key(const sg_key_list *list, const char *name, sg_pubkey_info *pub)
{
    for (size_t i = 0; i < list->count; i++) {
        const sg_key *k = &list->keys[i];
        if (name[0] && strcmp(k->name, name) != 0)
            continue;
        if (sg_pubkey_parse(k->public_key, k->public_key_len, pub) == SG_OK && pub->is_rsa)
            return k;
        if (name[0])
            return NULL; /* the named key is not RSA: not a container of this CSP */
    }
    return NULL;
}

/* Fetches the listing once (under the lock). */
static sg_status load_list(csp_prov *p)
{
    sg_status st = SG_OK;
    if (!p->list)
        st = sg_list_keys(p->client, &p->list);
    return st;
}

sg_status csp_resolve(csp_prov *p, const sg_key **key, sg_pubkey_info *pub)
{
    sg_status st;
    EnterCriticalSection(&p->lock);
    if (p->verify_only) {
        st = SG_ERR_KEY_NOT_FOUND;
        goto out;
    }
    if (!p->key) {
        st = load_list(p);
        if (st != SG_OK)
            goto out;
        p->key = find_key(p->list, p->container, &p->pub);
    }
    st = p->key ? SG_OK : SG_ERR_KEY_NOT_FOUND;
    if (st == SG_OK) {
        *key = p->key;
        if (pub)
            *pub = p->pub;
    }
out:
    LeaveCriticalSection(&p->lock);
    return st;
}

/* Also the destructor the handle table calls once the context's last user is done. */
static void prov_free(csp_prov *p)
{
    if (!p)
        return;
    sg_key_list_free(p->list);
    sg_client_free(p->client);
    DeleteCriticalSection(&p->lock);
    free(p);
}

/* "\\.\reader\name" (the smart-card form) names the container "name". */
static void prov_destroy(csp_obj *o)
{
    prov_free((csp_prov *)o);
}

static const char *container_part(const char *s)
{
    if (strncmp(s, "\\\\.\\", 4) == 0) {
        const char *sep = strchr(s + 4, '\\');
        return sep ? sep + 1 : "";
    }
    return s;
}

BOOL WINAPI CPAcquireContext(HCRYPTPROV *phProv, LPCSTR szContainer, DWORD dwFlags,
                             csp_vtable *pVTable)
{
    const DWORD known = CRYPT_VERIFYCONTEXT | CRYPT_NEWKEYSET | CRYPT_DELETEKEYSET |
                        CRYPT_MACHINE_KEYSET | CRYPT_SILENT | CRYPT_DEFAULT_CONTAINER_OPTIONAL;
    sg_client_options opts = {0};
    csp_prov *p = NULL;
    const char *name = szContainer ? container_part(szContainer) : "";
    const sg_key *key;
    DWORD err = ERROR_SUCCESS;
    sg_status st;
    ULONG_PTR handle;

    (void)pVTable;
    if (!phProv)
        return csp_fail(ERROR_INVALID_PARAMETER);
    if (dwFlags & ~known)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    /* Keys are made and removed on the server by its administrators, never by a caller. */
    if (dwFlags & CRYPT_NEWKEYSET)
        return csp_fail((DWORD)NTE_NOT_SUPPORTED);
    if (dwFlags & CRYPT_DELETEKEYSET)
        return csp_fail((DWORD)NTE_PERM);
    if ((dwFlags & CRYPT_VERIFYCONTEXT) && name[0])
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    if (strlen(name) >= sizeof(p->container))
        return csp_fail((DWORD)NTE_BAD_KEYSET);

    p = calloc(1, sizeof(*p));
    if (!p)
        return csp_fail((DWORD)NTE_NO_MEMORY);
    InitializeCriticalSection(&p->lock);
    p->verify_only = (dwFlags & CRYPT_VERIFYCONTEXT) != 0;
    snprintf(p->container, sizeof(p->container), "%s", name);
    opts.application = "signumcsp";
    st = sg_client_new(&opts, &p->client);
    if (st != SG_OK) {
        err = csp_map_status(st, CSP_CTX_ACQUIRE);
        goto out;
    }
    if (!p->verify_only) {
        /* The container must exist now; without credentials it is resolved after the PIN. */
        st = csp_resolve(p, &key, NULL);
        if (st != SG_OK && st != SG_ERR_NOT_LOGGED_IN && st != SG_ERR_AUTH_FAILED) {
            err = csp_map_status(st, CSP_CTX_ACQUIRE);
            goto out;
        }
    }
    csp_debug("CPAcquireContext: %s%s%s, flags 0x%lx",
              p->verify_only ? "verify context" : "container \"",
              p->verify_only ? "" : (p->key ? p->key->name : p->container),
              p->verify_only ? "" : (p->key ? "\"" : "\" (resolved after the PIN)"),
              (unsigned long)dwFlags);
    err = csp_handle_open(&p->obj, CSP_OBJ_PROV, NULL, prov_destroy, &handle);
    if (err != ERROR_SUCCESS)
        goto out;
    *phProv = handle;
    p = NULL; /* the table's now */
out:
    prov_free(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

/* Ends the handle and, with it, the context's hashes and keys; a second release of the same
 * value (or one racing it on another thread) finds nothing: NTE_BAD_UID. */
BOOL WINAPI CPReleaseContext(HCRYPTPROV hProv, DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    csp_put(p);
    if (dwFlags)
        return csp_fail((DWORD)NTE_BAD_FLAGS);
    if (csp_handle_close(hProv, CSP_OBJ_PROV, NULL) != 0)
        return csp_fail((DWORD)NTE_BAD_UID);
    return TRUE;
}

/* The algorithms PP_ENUMALGS(_EX) report: the SHA-2 hashes and RSA signing. */
static const struct {
    ALG_ID alg;
    DWORD bits, min, max, protocols;
    const char *name, *long_name;
} algs[] = {
    {CALG_SHA_256, 256, 256, 256, 0, "SHA-256", "Secure Hash Algorithm SHA-256"},
    {CALG_SHA_384, 384, 384, 384, 0, "SHA-384", "Secure Hash Algorithm SHA-384"},
    {CALG_SHA_512, 512, 512, 512, 0, "SHA-512", "Secure Hash Algorithm SHA-512"},
    {CALG_RSA_SIGN, 2048, 2048, 4096, CRYPT_FLAG_SIGNING, "RSA_SIGN", "RSA Signature"},
};
#define NALGS (sizeof(algs) / sizeof(algs[0]))

/* One step of an enumeration: CRYPT_FIRST restarts; a size query or a short buffer does not
 * move the cursor. */
static BOOL enum_alg(csp_prov *p, int ex, BYTE *out, DWORD *out_len, DWORD flags)
{
    size_t *cursor = ex ? &p->enum_algs_ex : &p->enum_algs;
    BOOL ok;
    if (flags & CRYPT_FIRST)
        *cursor = 0;
    if (*cursor >= NALGS)
        return csp_fail(ERROR_NO_MORE_ITEMS);
    if (ex) {
        PROV_ENUMALGS_EX e = {0};
        e.aiAlgid = algs[*cursor].alg;
        e.dwDefaultLen = algs[*cursor].bits;
        e.dwMinLen = algs[*cursor].min;
        e.dwMaxLen = algs[*cursor].max;
        e.dwProtocols = algs[*cursor].protocols;
        e.dwNameLen = (DWORD)strlen(algs[*cursor].name) + 1;
        snprintf(e.szName, sizeof(e.szName), "%s", algs[*cursor].name);
        e.dwLongNameLen = (DWORD)strlen(algs[*cursor].long_name) + 1;
        snprintf(e.szLongName, sizeof(e.szLongName), "%s", algs[*cursor].long_name);
        ok = csp_output(&e, sizeof(e), out, out_len);
    } else {
        PROV_ENUMALGS e = {0};
        e.aiAlgid = algs[*cursor].alg;
        e.dwBitLen = algs[*cursor].bits;
        e.dwNameLen = (DWORD)strlen(algs[*cursor].name) + 1;
        snprintf(e.szName, sizeof(e.szName), "%s", algs[*cursor].name);
        ok = csp_output(&e, sizeof(e), out, out_len);
    }
    if (ok && out)
        (*cursor)++;
    return ok;
}

/* PP_ENUMCONTAINERS: the RSA keys' names; a size query answers the longest. */
static BOOL enum_containers(csp_prov *p, BYTE *out, DWORD *out_len, DWORD flags)
{
    DWORD err = ERROR_SUCCESS, longest = 1;
    sg_status st;
    BOOL ok = FALSE;
    sg_pubkey_info pub;

    EnterCriticalSection(&p->lock);
    st = load_list(p);
    if (st != SG_OK) {
        err = csp_map_status(st, CSP_CTX_OTHER);
        goto out;
    }
    if (flags & CRYPT_FIRST)
        p->enum_containers = 0;
    if (!out) {
        for (size_t i = 0; i < p->list->count; i++)
            if (strlen(p->list->keys[i].name) + 1 > longest)
                longest = (DWORD)strlen(p->list->keys[i].name) + 1;
        ok = csp_output(NULL, longest, NULL, out_len);
        goto out;
    }
    while (p->enum_containers < p->list->count) {
        const sg_key *k = &p->list->keys[p->enum_containers];
        if (sg_pubkey_parse(k->public_key, k->public_key_len, &pub) == SG_OK && pub.is_rsa)
            break;
        p->enum_containers++;
    }
    if (p->enum_containers >= p->list->count) {
        err = ERROR_NO_MORE_ITEMS;
        goto out;
    }
    {
        const char *name = p->list->keys[p->enum_containers].name;
        ok = csp_output(name, (DWORD)strlen(name) + 1, out, out_len);
    }
    if (ok)
        p->enum_containers++;
out:
    LeaveCriticalSection(&p->lock);
    return err == ERROR_SUCCESS ? ok : csp_fail(err);
}

BOOL WINAPI CPGetProvParam(HCRYPTPROV hProv, DWORD dwParam, BYTE *pbData, DWORD *pcbDataLen,
                           DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    DWORD v;
    const sg_key *key;
    sg_status st;
    BOOL ok;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!pcbDataLen) {
        ok = csp_fail(ERROR_INVALID_PARAMETER);
        goto out;
    }
    switch (dwParam) {
    case PP_NAME:
        ok = csp_output(CSP_PROVIDER_NAME, sizeof(CSP_PROVIDER_NAME), pbData, pcbDataLen);
        goto out;
    case PP_CONTAINER:
    case PP_UNIQUE_CONTAINER:
        st = csp_resolve(p, &key, NULL);
        if (st != SG_OK)
            ok = csp_fail(p->verify_only ? (DWORD)NTE_BAD_KEYSET
                                         : csp_map_status(st, CSP_CTX_ACQUIRE));
        else
            ok = csp_output(key->name, (DWORD)strlen(key->name) + 1, pbData, pcbDataLen);
        goto out;
    case PP_ENUMCONTAINERS: ok = enum_containers(p, pbData, pcbDataLen, dwFlags); goto out;
    case PP_ENUMALGS: ok = enum_alg(p, 0, pbData, pcbDataLen, dwFlags); goto out;
    case PP_ENUMALGS_EX: ok = enum_alg(p, 1, pbData, pcbDataLen, dwFlags); goto out;
    case PP_IMPTYPE: v = CRYPT_IMPL_HARDWARE; break; /* the key lives in the server's HSM */
    case PP_VERSION: v = CSP_VERSION; break;
    case PP_PROVTYPE: v = CSP_PROVIDER_TYPE; break;
    case PP_KEYSPEC: v = AT_SIGNATURE; break;
    case PP_SIG_KEYSIZE_INC: v = 1024; break;
    default: ok = csp_fail((DWORD)NTE_BAD_TYPE); goto out;
    }
    ok = csp_output(&v, sizeof(v), pbData, pcbDataLen);
out:
    csp_put(p);
    return ok;
}

BOOL WINAPI CPSetProvParam(HCRYPTPROV hProv, DWORD dwParam, const BYTE *pbData, DWORD dwFlags)
{
    csp_prov *p = csp_prov_get(hProv);
    const sg_key *key;
    sg_status st;
    DWORD err = ERROR_SUCCESS;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (dwFlags) {
        err = (DWORD)NTE_BAD_FLAGS;
        goto out;
    }
    switch (dwParam) {
    case PP_CLIENT_HWND: break; /* we never show a window */
    case PP_KEYEXCHANGE_PIN:
    case PP_SIGNATURE_PIN:
        /* The PIN is an API key, as for the PKCS#11 module: the agent logs in with it. */
        if (!pbData) {
            err = ERROR_INVALID_PARAMETER;
            break;
        }
        st = sg_login(p->client, (const char *)pbData);
        if (st != SG_OK) {
            err = csp_map_status(st, CSP_CTX_LOGIN);
            break;
        }
        if (!p->verify_only) {
            st = csp_resolve(p, &key, NULL);
            if (st != SG_OK)
                err = csp_map_status(st, CSP_CTX_ACQUIRE);
        }
        break;
    default: err = (DWORD)NTE_BAD_TYPE; break;
    }
out:
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}

BOOL WINAPI CPGenRandom(HCRYPTPROV hProv, DWORD cbLen, BYTE *pbBuffer)
{
    csp_prov *p = csp_prov_get(hProv);
    DWORD err = ERROR_SUCCESS;

    if (!p)
        return csp_fail((DWORD)NTE_BAD_UID);
    if (!pbBuffer && cbLen)
        err = ERROR_INVALID_PARAMETER;
    else if (cbLen && !BCRYPT_SUCCESS(
                          BCryptGenRandom(NULL, pbBuffer, cbLen, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
        err = (DWORD)NTE_FAIL;
    csp_put(p);
    return err == ERROR_SUCCESS ? TRUE : csp_fail(err);
}
