/* The provider handle: OpenProvider/FreeProvider, provider properties, the algorithms the
 * provider signs with, EnumKeys over the agent's listing, FreeBuffer, and the PIN login. */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ksp.h"

#define KSP_VERSION   0x00000001 /* 0.1: major in the high word */
#define KSP_MAX_PIN   512        /* bytes of UTF-8 (API keys are far shorter) */
#define KSP_GET_FLAGS (NCRYPT_SILENT_FLAG)
#define KSP_SET_FLAGS (NCRYPT_SILENT_FLAG)

static void prov_destroy(ksp_obj *o)
{
    ksp_prov *p = (ksp_prov *)o;
    sg_key_list_free(p->list);
    sg_client_free(p->client);
    free(p);
}

SECURITY_STATUS WINAPI ksp_open_provider(NCRYPT_PROV_HANDLE *ph, LPCWSTR name, DWORD flags)
{
    sg_client_options opts;
    ksp_prov *p;
    sg_status st;

    if (!ph)
        return NTE_INVALID_PARAMETER;
    *ph = 0;
    if (flags & ~(DWORD)NCRYPT_SILENT_FLAG)
        return NTE_BAD_FLAGS;
    if (name && _wcsicmp(name, SIGNUM_KSP_NAME) != 0)
        return NTE_INVALID_PARAMETER; /* ncrypt.dll passes the name it routed on */
    p = calloc(1, sizeof(*p));
    if (!p)
        return NTE_NO_MEMORY;
    memset(&opts, 0, sizeof(opts));
    opts.application = "signumksp";
    /* Connections are made lazily: opening the provider never waits for the agent. */
    st = sg_client_new(&opts, &p->client);
    if (st != SG_OK) {
        ksp_debug("OpenProvider: %s: %s", sg_status_name(st), sg_last_error());
        free(p);
        return ksp_map_status(st, KSP_CTX_ANY);
    }
    InitializeSRWLock(&p->lock);
    ksp_obj_register(&p->hdr, KSP_MAGIC_PROV, prov_destroy);
    *ph = (NCRYPT_PROV_HANDLE)p;
    return ERROR_SUCCESS;
}

SECURITY_STATUS WINAPI ksp_free_provider(NCRYPT_PROV_HANDLE hp)
{
    /* Keys hold a reference: the client goes with the last key of this provider. */
    return ksp_obj_close(hp, KSP_MAGIC_PROV) == 0 ? ERROR_SUCCESS : NTE_INVALID_HANDLE;
}

SECURITY_STATUS ksp_prov_listing(ksp_prov *p, int refresh)
{
    sg_key_list *list = NULL;
    sg_status st;

    if (p->list && !refresh)
        return ERROR_SUCCESS;
    st = sg_list_keys(p->client, &list);
    if (st != SG_OK) {
        ksp_debug("listing keys: %s: %s", sg_status_name(st), sg_last_error());
        return ksp_map_status(st, KSP_CTX_ANY);
    }
    sg_key_list_free(p->list);
    p->list = list;
    return ERROR_SUCCESS;
}

SECURITY_STATUS WINAPI ksp_get_provider_property(NCRYPT_PROV_HANDLE hp, LPCWSTR prop, PBYTE out,
                                                 DWORD cb, DWORD *res, DWORD flags)
{
    ksp_prov *p = ksp_prov_get(hp);
    SECURITY_STATUS ss;
    DWORD dw;

    if (!p)
        return NTE_INVALID_HANDLE;
    if (!prop || !res) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    if (flags & ~(DWORD)KSP_GET_FLAGS) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    if (wcscmp(prop, NCRYPT_NAME_PROPERTY) == 0) {
        ss = ksp_put_wstr(SIGNUM_KSP_NAME, out, cb, res);
    } else if (wcscmp(prop, NCRYPT_IMPL_TYPE_PROPERTY) == 0) {
        dw = NCRYPT_IMPL_HARDWARE_FLAG; /* keys live in the server's HSM */
        ss = ksp_put(&dw, sizeof(dw), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_VERSION_PROPERTY) == 0) {
        dw = KSP_VERSION;
        ss = ksp_put(&dw, sizeof(dw), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_MAX_NAME_LENGTH_PROPERTY) == 0) {
        dw = (DWORD)sizeof(((sg_key *)0)->name) - 1;
        ss = ksp_put(&dw, sizeof(dw), out, cb, res);
    } else if (wcscmp(prop, NCRYPT_WINDOW_HANDLE_PROPERTY) == 0) {
        ss = p->hwnd ? ksp_put(&p->hwnd, sizeof(p->hwnd), out, cb, res) : NTE_NOT_FOUND;
    } else {
        /* Security descriptors, smart card stores, use counts...: not something we have. */
        ss = NTE_NOT_SUPPORTED;
    }
out:
    ksp_prov_put(p);
    return ss;
}

SECURITY_STATUS ksp_login_with_pin(ksp_prov *p, const BYTE *pin, DWORD cb)
{
    WCHAR wide[KSP_MAX_PIN + 1];
    char secret[KSP_MAX_PIN + 1];
    size_t chars = cb / sizeof(WCHAR);
    SECURITY_STATUS ss = ERROR_SUCCESS;
    sg_status st;

    if (!pin || cb == 0 || cb % sizeof(WCHAR) != 0 || chars > KSP_MAX_PIN)
        return NTE_INVALID_PARAMETER;
    memcpy(wide, pin, cb);
    while (chars > 0 && wide[chars - 1] == 0) /* with or without its terminator */
        chars--;
    if (chars == 0 || wmemchr(wide, 0, chars) ||
        ksp_w_to_utf8(wide, chars, secret, sizeof(secret))) {
        ss = NTE_INCORRECT_PASSWORD; /* empty, a NUL inside, or not text: not an API key */
        goto out;
    }
    st = sg_login(p->client, secret);
    if (st != SG_OK) {
        ksp_debug("PIN: the agent refused it as an API key: %s", sg_last_error());
        ss = ksp_map_status(st, KSP_CTX_LOGIN);
        goto out;
    }
    /* Another identity may see other keys. */
    AcquireSRWLockExclusive(&p->lock);
    sg_key_list_free(p->list);
    p->list = NULL;
    ReleaseSRWLockExclusive(&p->lock);
out:
    SecureZeroMemory(wide, sizeof(wide));
    SecureZeroMemory(secret, sizeof(secret));
    return ss;
}

SECURITY_STATUS WINAPI ksp_set_provider_property(NCRYPT_PROV_HANDLE hp, LPCWSTR prop, PBYTE in,
                                                 DWORD cb, DWORD flags)
{
    ksp_prov *p = ksp_prov_get(hp);
    SECURITY_STATUS ss = ERROR_SUCCESS;

    if (!p)
        return NTE_INVALID_HANDLE;
    if (!prop || (!in && cb)) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    if (flags & ~(DWORD)KSP_SET_FLAGS) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    if (wcscmp(prop, NCRYPT_WINDOW_HANDLE_PROPERTY) == 0) {
        if (cb != sizeof(HWND))
            ss = NTE_INVALID_PARAMETER;
        else
            memcpy(&p->hwnd, in, sizeof(HWND)); /* kept, never used: we show no UI */
    } else if (wcscmp(prop, NCRYPT_USE_CONTEXT_PROPERTY) == 0) {
        /* A description for UI we never show: accepted and ignored. */
    } else if (wcscmp(prop, NCRYPT_PIN_PROPERTY) == 0) {
        ss = ksp_login_with_pin(p, in, cb);
    } else {
        ss = NTE_NOT_SUPPORTED;
    }
out:
    ksp_prov_put(p);
    return ss;
}

/* The algorithms: the names CNG uses for what the server's keys are. */
static const struct {
    const WCHAR *name;
    DWORD klass;
} algs[] = {
    {BCRYPT_RSA_ALGORITHM, NCRYPT_ASYMMETRIC_ENCRYPTION_INTERFACE},
    {BCRYPT_ECDSA_P256_ALGORITHM, NCRYPT_SIGNATURE_INTERFACE},
    {BCRYPT_ECDSA_P384_ALGORITHM, NCRYPT_SIGNATURE_INTERFACE},
};

SECURITY_STATUS WINAPI ksp_is_alg_supported(NCRYPT_PROV_HANDLE hp, LPCWSTR alg, DWORD flags)
{
    ksp_prov *p = ksp_prov_get(hp);
    SECURITY_STATUS ss = NTE_NOT_SUPPORTED;

    if (!p)
        return NTE_INVALID_HANDLE;
    if (!alg)
        ss = NTE_INVALID_PARAMETER;
    else if (flags & ~(DWORD)NCRYPT_SILENT_FLAG)
        ss = NTE_BAD_FLAGS;
    else
        for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
            if (wcscmp(alg, algs[i].name) == 0)
                ss = ERROR_SUCCESS;
    ksp_prov_put(p);
    return ss;
}

SECURITY_STATUS WINAPI ksp_enum_algorithms(NCRYPT_PROV_HANDLE hp, DWORD ops, DWORD *count,
                                           NCryptAlgorithmName **list, DWORD flags)
{
    const DWORD known = NCRYPT_CIPHER_OPERATION | NCRYPT_HASH_OPERATION |
                        NCRYPT_ASYMMETRIC_ENCRYPTION_OPERATION | NCRYPT_SECRET_AGREEMENT_OPERATION |
                        NCRYPT_SIGNATURE_OPERATION;
    const size_t n = sizeof(algs) / sizeof(algs[0]);
    ksp_prov *p = ksp_prov_get(hp);
    NCryptAlgorithmName *out = NULL;
    SECURITY_STATUS ss = ERROR_SUCCESS;
    size_t size = n * sizeof(*out), used = 0;
    WCHAR *strings;

    if (!p)
        return NTE_INVALID_HANDLE;
    if (!count || !list) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    *count = 0;
    *list = NULL;
    if ((flags & ~(DWORD)NCRYPT_SILENT_FLAG) || (ops & ~known)) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    /* We sign only; 0 asks for every class. */
    if (ops && !(ops & NCRYPT_SIGNATURE_OPERATION))
        goto out;
    for (size_t i = 0; i < n; i++)
        size += (wcslen(algs[i].name) + 1) * sizeof(WCHAR);
    out = malloc(size);
    if (!out) {
        ss = NTE_NO_MEMORY;
        goto out;
    }
    strings = (WCHAR *)(out + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = wcslen(algs[i].name) + 1;
        memcpy(strings + used, algs[i].name, len * sizeof(WCHAR));
        out[i].pszName = strings + used;
        out[i].dwClass = algs[i].klass;
        out[i].dwAlgOperations = NCRYPT_SIGNATURE_OPERATION;
        out[i].dwFlags = 0;
        used += len;
    }
    *count = (DWORD)n;
    *list = out;
out:
    ksp_prov_put(p);
    return ss;
}

/* EnumKeys' state: a registered object, so FreeBuffer can tell it from a plain buffer. */
typedef struct {
    ksp_obj hdr;
    size_t next;
} ksp_enum;

static void enum_destroy(ksp_obj *o)
{
    free(o);
}

/* One NCryptKeyName and its strings in one block (FreeBuffer frees it with free()). */
static SECURITY_STATUS key_name_of(const sg_key *key, NCryptKeyName **out)
{
    sg_pubkey_info pub;
    const WCHAR *alg;
    NCryptKeyName *kn;
    WCHAR *name;
    size_t alg_len, name_len = sizeof(key->name);

    if (sg_pubkey_parse(key->public_key, key->public_key_len, &pub) != SG_OK)
        return NTE_INTERNAL_ERROR;
    alg = pub.is_rsa        ? BCRYPT_RSA_ALGORITHM
          : pub.bits == 256 ? BCRYPT_ECDSA_P256_ALGORITHM
                            : BCRYPT_ECDSA_P384_ALGORITHM;
    alg_len = wcslen(alg) + 1;
    kn = malloc(sizeof(*kn) + (name_len + alg_len) * sizeof(WCHAR));
    if (!kn)
        return NTE_NO_MEMORY;
    name = (WCHAR *)(kn + 1);
    if (ksp_utf8_to_w(key->name, name, name_len)) {
        free(kn);
        return NTE_INTERNAL_ERROR;
    }
    kn->pszName = name;
    kn->pszAlgid = name + name_len;
    memcpy(kn->pszAlgid, alg, alg_len * sizeof(WCHAR));
    kn->dwLegacyKeySpec = pub.is_rsa ? AT_SIGNATURE : 0;
    kn->dwFlags = 0; /* a user key: the agent is per user */
    *out = kn;
    return ERROR_SUCCESS;
}

SECURITY_STATUS WINAPI ksp_enum_keys(NCRYPT_PROV_HANDLE hp, LPCWSTR scope, NCryptKeyName **name,
                                     PVOID *state, DWORD flags)
{
    ksp_prov *p = ksp_prov_get(hp);
    ksp_enum *e = NULL;
    ksp_obj *eo = NULL;
    SECURITY_STATUS ss;

    if (!p)
        return NTE_INVALID_HANDLE;
    if (!name || !state) {
        ss = NTE_INVALID_PARAMETER;
        goto out;
    }
    *name = NULL;
    if (flags & ~(DWORD)(NCRYPT_SILENT_FLAG | NCRYPT_MACHINE_KEY_FLAG)) {
        ss = NTE_BAD_FLAGS;
        goto out;
    }
    if (scope && *scope) { /* a smart card reader scope: we have no readers */
        ss = NTE_NOT_SUPPORTED;
        goto out;
    }
    if (flags & NCRYPT_MACHINE_KEY_FLAG) { /* the agent holds per-user keys only */
        ss = NTE_NO_MORE_ITEMS;
        goto out;
    }
    if (*state) {
        eo = ksp_obj_acquire((ULONG_PTR)*state, KSP_MAGIC_ENUM);
        if (!eo) {
            ss = NTE_INVALID_PARAMETER;
            goto out;
        }
        e = (ksp_enum *)eo;
    }
    AcquireSRWLockExclusive(&p->lock);
    /* A new enumeration asks the agent again: keys may have been granted meanwhile. */
    ss = ksp_prov_listing(p, !e);
    if (ss == ERROR_SUCCESS) {
        size_t i = e ? e->next : 0;
        if (i >= p->list->count)
            ss = NTE_NO_MORE_ITEMS;
        else
            ss = key_name_of(&p->list->keys[i], name);
    }
    ReleaseSRWLockExclusive(&p->lock);
    if (ss != ERROR_SUCCESS)
        goto out;
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e) {
            free(*name);
            *name = NULL;
            ss = NTE_NO_MEMORY;
            goto out;
        }
        ksp_obj_register(&e->hdr, KSP_MAGIC_ENUM, enum_destroy);
        *state = e;
    }
    e->next++;
out:
    if (eo)
        ksp_obj_release(eo);
    ksp_prov_put(p);
    return ss;
}

SECURITY_STATUS WINAPI ksp_free_buffer(PVOID buf)
{
    if (!buf)
        return ERROR_SUCCESS;
    if (ksp_obj_close((ULONG_PTR)buf, KSP_MAGIC_ENUM) == 0)
        return ERROR_SUCCESS; /* an EnumKeys state */
    free(buf);                /* a key name or algorithm list: all made with malloc */
    return ERROR_SUCCESS;
}
