/* The function table GetKeyStorageInterface hands out, and what the provider does not do, each
 * refused with NTE_NOT_SUPPORTED after the handle check: keys are created, imported and
 * deleted on the server; a signing key never decrypts, agrees secrets, derives keys or makes
 * attestation claims; no UI is ever shown. */
#include "ksp.h"

/* The handle checks every entry point makes first: a bad handle is NTE_INVALID_HANDLE. */
static SECURITY_STATUS check_prov(NCRYPT_PROV_HANDLE hp)
{
    ksp_prov *p = ksp_prov_get(hp);
    if (!p)
        return NTE_INVALID_HANDLE;
    ksp_prov_put(p);
    return NTE_NOT_SUPPORTED;
}

static SECURITY_STATUS check_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk)
{
    ksp_key *k = ksp_key_get(hp, hk);
    if (!k)
        return NTE_INVALID_HANDLE;
    ksp_key_put(k);
    return NTE_NOT_SUPPORTED;
}

static SECURITY_STATUS WINAPI create_persisted_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE *phk,
                                                   LPCWSTR alg, LPCWSTR name, DWORD spec,
                                                   DWORD flags)
{
    (void)alg, (void)name, (void)spec, (void)flags;
    if (phk)
        *phk = 0;
    return check_prov(hp); /* keys are created on the server (signum-util, the console) */
}

static SECURITY_STATUS WINAPI finalize_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, DWORD flags)
{
    (void)flags;
    return check_key(hp, hk);
}

static SECURITY_STATUS WINAPI delete_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, DWORD flags)
{
    (void)flags;
    return check_key(hp, hk);
}

static SECURITY_STATUS WINAPI crypt_op(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, PBYTE in,
                                       DWORD in_len, VOID *padding, PBYTE out, DWORD out_len,
                                       DWORD *res, DWORD flags)
{
    (void)in, (void)in_len, (void)padding, (void)out, (void)out_len, (void)flags;
    if (res)
        *res = 0;
    return check_key(hp, hk); /* NCRYPT_KEY_USAGE_PROPERTY says signing only */
}

static SECURITY_STATUS WINAPI import_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE himp,
                                         LPCWSTR type, NCryptBufferDesc *params,
                                         NCRYPT_KEY_HANDLE *phk, PBYTE data, DWORD len, DWORD flags)
{
    (void)himp, (void)type, (void)params, (void)data, (void)len, (void)flags;
    if (phk)
        *phk = 0;
    return check_prov(hp);
}

static SECURITY_STATUS WINAPI prompt_user(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, LPCWSTR op,
                                          DWORD flags)
{
    (void)op, (void)flags;
    return check_key(hp, hk);
}

static SECURITY_STATUS WINAPI notify_change_key(NCRYPT_PROV_HANDLE hp, HANDLE *ev, DWORD flags)
{
    (void)ev, (void)flags;
    return check_prov(hp);
}

static SECURITY_STATUS WINAPI secret_agreement(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE priv,
                                               NCRYPT_KEY_HANDLE pub, NCRYPT_SECRET_HANDLE *out,
                                               DWORD flags)
{
    (void)pub, (void)flags;
    if (out)
        *out = 0;
    return check_key(hp, priv);
}

static SECURITY_STATUS WINAPI derive_key(NCRYPT_PROV_HANDLE hp, NCRYPT_SECRET_HANDLE secret,
                                         LPCWSTR kdf, NCryptBufferDesc *params, PBYTE out,
                                         DWORD out_len, DWORD *res, ULONG flags)
{
    (void)secret, (void)kdf, (void)params, (void)out, (void)out_len, (void)flags;
    if (res)
        *res = 0;
    return check_prov(hp); /* no secret handle can exist */
}

static SECURITY_STATUS WINAPI free_secret(NCRYPT_PROV_HANDLE hp, NCRYPT_SECRET_HANDLE secret)
{
    (void)hp, (void)secret;
    return NTE_INVALID_HANDLE; /* SecretAgreement never makes one */
}

static SECURITY_STATUS WINAPI key_derivation(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                             NCryptBufferDesc *params, PUCHAR out, DWORD out_len,
                                             DWORD *res, ULONG flags)
{
    (void)params, (void)out, (void)out_len, (void)flags;
    if (res)
        *res = 0;
    return check_key(hp, hk);
}

static SECURITY_STATUS WINAPI create_claim(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE subject,
                                           NCRYPT_KEY_HANDLE authority, DWORD type,
                                           NCryptBufferDesc *params, PBYTE out, DWORD out_len,
                                           DWORD *res, DWORD flags)
{
    (void)authority, (void)type, (void)params, (void)out, (void)out_len, (void)flags;
    if (res)
        *res = 0;
    return check_key(hp, subject);
}

static SECURITY_STATUS WINAPI verify_claim(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE subject,
                                           NCRYPT_KEY_HANDLE authority, DWORD type,
                                           NCryptBufferDesc *params, PBYTE blob, DWORD len,
                                           NCryptBufferDesc *out, DWORD flags)
{
    (void)authority, (void)type, (void)params, (void)blob, (void)len, (void)out, (void)flags;
    return check_key(hp, subject);
}

const NCRYPT_KEY_STORAGE_FUNCTION_TABLE ksp_function_table = {
    /* Version 1 ends with FreeSecret, 2 adds KeyDerivation, 3 (Windows 10) adds CreateClaim
     * and VerifyClaim: this table has every member. */
    {3, 0},
    ksp_open_provider,
    ksp_open_key,
    create_persisted_key,
    ksp_get_provider_property,
    ksp_get_key_property,
    ksp_set_provider_property,
    ksp_set_key_property,
    finalize_key,
    delete_key,
    ksp_free_provider,
    ksp_free_key,
    ksp_free_buffer,
    crypt_op, /* Encrypt */
    crypt_op, /* Decrypt */
    ksp_is_alg_supported,
    ksp_enum_algorithms,
    ksp_enum_keys,
    import_key,
    ksp_export_key,
    ksp_sign_hash,
    ksp_verify_signature,
    prompt_user,
    notify_change_key,
    secret_agreement,
    derive_key,
    free_secret,
    key_derivation,
    create_claim,
    verify_claim,
};
