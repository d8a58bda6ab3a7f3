/* Key handles: OpenKey over the agent's listing, key properties (all answered from what
 * OpenKey copied, so no property costs a round trip), public-key export as BCrypt blobs. */
#include <stdlib.h>
#include <string.h>

#include "ksp.h"

#define KSP_GET_FLAGS                                                                              \
    (NCRYPT_SILENT_FLAG | OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION |                \
     DACL_SECURITY_INFORMATION | SACL_SECURITY_INFORMATION)

static void key_destroy(ksp_obj *o)
{
    ksp_key *k = (ksp_key *)o;
    ksp_prov_put(k->prov);
    free(k->cert);
    free(k);
}

/* Fills a key object from a listing entry. */
static SECURITY_STATUS key_fill(ksp_key *k, const sg_key *src)
{
    if (sg_pubkey_parse(src->public_key, src->public_key_len, &k->pub) != SG_OK) {
        ksp_debug("OpenKey: %s: the listing's public key does not parse", src->name);
        return NTE_INTERNAL_ERROR;
    }
    if (k->pub.is_rsa) {
        k->alg = BCRYPT_RSA_ALGORITHM;
        k->group = NCRYPT_RSA_ALGORITHM_GROUP;
        k->sig_len = k->pub.modulus_len;
    } else if (k->pub.bits == 256 || k->pub.bits == 384) {
        k->alg = k->pub.bits == 256 ? BCRYPT_ECDSA_P256_ALGORITHM : BCRYPT_ECDSA_P384_ALGORITHM;
        k->group = NCRYPT_ECDSA_ALGORITHM_GROUP;
        k->sig_len = 2 * ((k->pub.bits + 7) / 8);
    } else {
        return NTE_NOT_SUPPORTED;
    }
    memcpy(k->name, src->name, sizeof(k->name));
    if (ksp_utf8_to_w(k->name, k->wname, sizeof(k->wname) / sizeof(WCHAR)))
        return NTE_INTERNAL_ERROR;
    if (src->cert && src->cert_len) {
        k->cert = malloc(src->cert_len);
        if (!k->cert)
            return NTE_NO_MEMORY;
        memcpy(k->cert, src->cert, src->cert_len);
        k->cert_len = src->cert_len;
    }
    return ERROR_SUCCESS;
}

/* The listing entry called `name`, or NULL; the caller holds p->lock. */
static const sg_key *find_key(const ksp_prov *p, const char *name)
{
    for (size_t i = 0; p->list && i < p->list->count; i++)
        if (strcmp(p->list->keys[i].name, name) == 0)
            return &p->list->keys[i];
    return NULL;
}

SECURITY_STATUS WINAPI ksp_open_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE *phk, LPCWSTR name,
                                    DWORD spec, DWORD flags)
{
    ksp_prov *p = ksp_prov_get(hp);
    ksp_key *k = NULL;
    char uname[sizeof(k->name)];
    const sg_key *src;
    SECURITY_STATUS ss;

    if (!p)
        return NTE_INVALID_HANDLE;
    if (!phk || !name) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    *phk = 0;
    if (flags & ~(DWORD)(NCRYPT_SILENT_FLAG | NCRYPT_MACHINE_KEY_FLAG)) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    /* No machine keys (the agent is per user), no key exchange keys (ours only sign; 0 and
     * CERT_NCRYPT_KEY_SPEC mean "a CNG key"), and a name longer than any key's is no key. */
    if ((flags & NCRYPT_MACHINE_KEY_FLAG) ||
        (spec != 0 && spec != AT_SIGNATURE && spec != CERT_NCRYPT_KEY_SPEC) ||
        ksp_w_to_utf8(name, wcslen(name), uname, sizeof(uname))) {
        ss = NTE_BAD_KEYSET;
        goto out;
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        ss = NTE_NO_MEMORY;
        goto out;
    }
    AcquireSRWLockExclusive(&p->lock);
    ss = ksp_prov_listing(p, 0);
    src = ss == ERROR_SUCCESS ? find_key(p, uname) : NULL;
    if (ss == ERROR_SUCCESS && !src) { /* granted since the last listing? ask once more */
        ss = ksp_prov_listing(p, 1);
        src = ss == ERROR_SUCCESS ? find_key(p, uname) : NULL;
    }
    if (ss == ERROR_SUCCESS)
        ss = src ? key_fill(k, src) : NTE_BAD_KEYSET;
    ReleaseSRWLockExclusive(&p->lock);
    if (ss != ERROR_SUCCESS) {
        free(k->cert);
        free(k);
        goto out;
    }
    k->prov = p; /* takes over our reference */
    p = NULL;
    ksp_obj_register(&k->hdr, KSP_MAGIC_KEY, key_destroy);
    *phk = (NCRYPT_KEY_HANDLE)k;
out:
    ksp_prov_put(p);
    return ss;
}

SECURITY_STATUS WINAPI ksp_free_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk)
{
    ksp_key *k = ksp_key_get(hp, hk); /* checks that the key is this provider's */
    if (!k)
        return NTE_INVALID_HANDLE;
    ksp_key_put(k);
    return ksp_obj_close(hk, KSP_MAGIC_KEY) == 0 ? ERROR_SUCCESS : NTE_INVALID_HANDLE;
}

SECURITY_STATUS WINAPI ksp_get_key_property(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                            LPCWSTR prop, PBYTE out, DWORD cb, DWORD *res,
                                            DWORD flags)
{
    ksp_key *k = ksp_key_get(hp, hk);
    SECURITY_STATUS ss;
    DWORD dw;

    if (!k)
        return NTE_INVALID_HANDLE;
    if (!prop || !res) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    if (flags & ~(DWORD)KSP_GET_FLAGS) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    if (wcscmp(prop, NCRYPT_ALGORITHM_GROUP_PROPERTY) == 0) {
        ss = ksp_put_wstr(k->group, out, cb, res);
    } else if (wcscmp(prop, NCRYPT_ALGORITHM_PROPERTY) == 0) {
        ss = ksp_put_wstr(k->alg, out, cb, res);
    } else if (wcscmp(prop, NCRYPT_LENGTH_PROPERTY) == 0) {
        dw = k->pub.bits;
        ss = ksp_put(&dw, sizeof(dw), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_LENGTHS_PROPERTY) == 0) {
        NCRYPT_SUPPORTED_LENGTHS l = {k->pub.bits, k->pub.bits, 0, k->pub.bits};
        ss = ksp_put(&l, sizeof(l), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_KEY_USAGE_PROPERTY) == 0) {
        dw = NCRYPT_ALLOW_SIGNING_FLAG;
        ss = ksp_put(&dw, sizeof(dw), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_EXPORT_POLICY_PROPERTY) == 0) {
        dw = 0; /* the private key never leaves the server's HSM */
        ss = ksp_put(&dw, sizeof(dw), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_CERTIFICATE_PROPERTY) == 0) {
        ss = k->cert ? ksp_put(k->cert, (DWORD)k->cert_len, out, cb, res) : NTE_NOT_FOUND;
    } else if (wcscmp(prop, NCRYPT_NAME_PROPERTY) == 0 ||
               wcscmp(prop, NCRYPT_UNIQUE_NAME_PROPERTY) == 0) {
        ss = ksp_put_wstr(k->wname, out, cb, res); /* key names are unique per server */
    } else if (wcscmp(prop, NCRYPT_PROVIDER_HANDLE_PROPERTY) == 0) {
        NCRYPT_PROV_HANDLE h = (NCRYPT_PROV_HANDLE)k->prov;
        ss = ksp_put(&h, sizeof(h), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_IMPL_TYPE_PROPERTY) == 0) {
        dw = NCRYPT_IMPL_HARDWARE_FLAG;
        ss = ksp_put(&dw, sizeof(dw), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_KEY_TYPE_PROPERTY) == 0) {
        dw = 0; /* a user key, not NCRYPT_MACHINE_KEY_FLAG */
        ss = ksp_put(&dw, sizeof(dw), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_UI_POLICY_PROPERTY) == 0) {
        /* True as stated: no UI protection (the server's policy decides, not a prompt). */
        NCRYPT_UI_POLICY ui;
        memset(&ui, 0, sizeof(ui));
        ui.dwVersion = 1;
        ss = ksp_put(&ui, sizeof(ui), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_WINDOW_HANDLE_PROPERTY) == 0) {
        ss = k->hwnd ? ksp_put(&k->hwnd, sizeof(k->hwnd), out, cb, res) : NTE_NOT_FOUND;
    } else {
        /* NCRYPT_SECURITY_DESCR_PROPERTY and the rest: not something we can answer truly. */
        ss = NTE_NOT_SUPPORTED;
    }
out:
    ksp_key_put(k);
    return ss;
}

SECURITY_STATUS WINAPI ksp_set_key_property(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                            LPCWSTR prop, PBYTE in, DWORD cb, DWORD flags)
{
    ksp_key *k = ksp_key_get(hp, hk);
    SECURITY_STATUS ss = ERROR_SUCCESS;

    if (!k)
        return NTE_INVALID_HANDLE;
    if (!prop || (!in && cb)) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    if (flags & ~(DWORD)NCRYPT_SILENT_FLAG) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    if (wcscmp(prop, NCRYPT_WINDOW_HANDLE_PROPERTY) == 0) {
        if (cb != sizeof(HWND))
            ss = NTE_INVALID_PARAMETER;
        else
            memcpy(&k->hwnd, in, sizeof(HWND));
    } else if (wcscmp(prop, NCRYPT_USE_CONTEXT_PROPERTY) == 0) {
        /* Accepted and ignored: we show no UI to put it in. */
    } else if (wcscmp(prop, NCRYPT_PIN_PROPERTY) == 0) {
        ss = ksp_login_with_pin(k->prov, in, cb);
    } else {
        ss = NTE_NOT_SUPPORTED; /* export policy, usage, lengths...: fixed by the server */
    }
out:
    ksp_key_put(k);
    return ss;
}

SECURITY_STATUS ksp_public_blob(const ksp_key *k, PBYTE out, DWORD cb, DWORD *res)
{
    const sg_pubkey_info *pub = &k->pub;
    DWORD len;

    if (pub->is_rsa) {
        BCRYPT_RSAKEY_BLOB h;
        len = (DWORD)(sizeof(h) + pub->exponent_len + pub->modulus_len);
        *res = len;
        if (!out)
            return ERROR_SUCCESS;
        if (cb < len)
            return NTE_BUFFER_TOO_SMALL;
        memset(&h, 0, sizeof(h));
        h.Magic = BCRYPT_RSAPUBLIC_MAGIC;
        h.BitLength = pub->bits;
        h.cbPublicExp = (ULONG)pub->exponent_len;
        h.cbModulus = (ULONG)pub->modulus_len;
        memcpy(out, &h, sizeof(h));
        memcpy(out + sizeof(h), pub->exponent, pub->exponent_len);
        memcpy(out + sizeof(h) + pub->exponent_len, pub->modulus, pub->modulus_len);
    } else {
        /* ec_point: 04 len 04 X Y (a DER OCTET STRING around the uncompressed point). */
        BCRYPT_ECCKEY_BLOB h;
        size_t coord = (pub->bits + 7) / 8;
        if (pub->ec_point_len != 3 + 2 * coord || pub->ec_point[2] != 0x04)
            return NTE_INTERNAL_ERROR;
        len = (DWORD)(sizeof(h) + 2 * coord);
        *res = len;
        if (!out)
            return ERROR_SUCCESS;
        if (cb < len)
            return NTE_BUFFER_TOO_SMALL;
        h.dwMagic =
            pub->bits == 256 ? BCRYPT_ECDSA_PUBLIC_P256_MAGIC : BCRYPT_ECDSA_PUBLIC_P384_MAGIC;
        h.cbKey = (ULONG)coord;
        memcpy(out, &h, sizeof(h));
        memcpy(out + sizeof(h), pub->ec_point + 3, 2 * coord);
    }
    return ERROR_SUCCESS;
}

/* Blob types that would carry the private key: refused, since it is not ours to give. */
static int is_private_blob(LPCWSTR t)
{
    static const WCHAR *const priv[] = {BCRYPT_PRIVATE_KEY_BLOB,    BCRYPT_RSAPRIVATE_BLOB,
                                        BCRYPT_RSAFULLPRIVATE_BLOB, BCRYPT_ECCPRIVATE_BLOB,
                                        LEGACY_RSAPRIVATE_BLOB,     NCRYPT_PKCS8_PRIVATE_KEY_BLOB,
                                        NCRYPT_PKCS7_ENVELOPE_BLOB, NCRYPT_OPAQUETRANSPORT_BLOB,
                                        L"CipherKeyBlob",           L"ProtectedKeyBlob"};
    for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
        if (wcscmp(t, priv[i]) == 0)
            return 1;
    return 0;
}

SECURITY_STATUS WINAPI ksp_export_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                      NCRYPT_KEY_HANDLE hexp, LPCWSTR type,
                                      NCryptBufferDesc *params, PBYTE out, DWORD cb, DWORD *res,
                                      DWORD flags)
{
    ksp_key *k = ksp_key_get(hp, hk);
    SECURITY_STATUS ss;

    (void)params; /* no public blob takes parameters */
    if (!k)
        return NTE_INVALID_HANDLE;
    if (!type || !res) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    if (flags & ~(DWORD)NCRYPT_SILENT_FLAG) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    if (is_private_blob(type)) {
        ss = NTE_PERM; /* export policy 0: not exportable */
    } else if (hexp) {
        ss = NTE_NOT_SUPPORTED; /* wrapping under another key is for private blobs */
    } else if (wcscmp(type, BCRYPT_PUBLIC_KEY_BLOB) == 0 ||
               wcscmp(type, k->pub.is_rsa ? BCRYPT_RSAPUBLIC_BLOB : BCRYPT_ECCPUBLIC_BLOB) == 0) {
        ss = ksp_public_blob(k, out, cb, res);
    } else {
        ss = NTE_NOT_SUPPORTED; /* another key type's blob, or a legacy CAPI blob */
    }
out:
    ksp_key_put(k);
    return ss;
}
