/* Drives signumksp.dll the way ncrypt.dll would: LoadLibrary + GetKeyStorageInterface, then
 * the function table (Wine's NCryptOpenStorageProvider ignores the provider name, so the
 * router cannot be used). tests/wine/test_ksp_wine.py runs it and checks what it writes.
 *   test_ksp.exe offline                  no agent needed (the pipe must be unserved)
 *   test_ksp.exe register                 DllRegisterServer/DllUnregisterServer statuses
 *   test_ksp.exe online OUTDIR RSA EC     against the agent: listing, properties, export,
 *                                         signatures (files in OUTDIR for openssl)
 * Output: "ok ..." / "FAIL ..." lines and "value NAME TEXT" lines; exit 1 on any failure.
 * The DLL is $SIGNUM_KSP_DLL. */
#include <windows.h>
#include <bcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ksp_table.h"
#include "signum/crypto.h"
#include "signumksp.h"

static const NCRYPT_KEY_STORAGE_FUNCTION_TABLE *t;
static HMODULE dll;
static int failures;

#define CHECK_SS(what, got, want)                                                                  \
    check_ss(what, (SECURITY_STATUS)(got), (SECURITY_STATUS)(want), __LINE__)
#define CHECK(what, cond) check_true(what, (cond), __LINE__)

static void check_ss(const char *what, SECURITY_STATUS got, SECURITY_STATUS want, int line)
{
    if (got == want) {
        printf("ok %s\n", what);
    } else {
        printf("FAIL %s (line %d): got 0x%08lx, want 0x%08lx\n", what, line, (unsigned long)got,
               (unsigned long)want);
        failures++;
    }
}

static void check_true(const char *what, int cond, int line)
{
    if (cond) {
        printf("ok %s\n", what);
    } else {
        printf("FAIL %s (line %d)\n", what, line);
        failures++;
    }
}

static int load(void)
{
    const char *path = getenv("SIGNUM_KSP_DLL");
    GetKeyStorageInterfaceFn get;
    NCRYPT_KEY_STORAGE_FUNCTION_TABLE *table = NULL;
    NTSTATUS st;

    dll = LoadLibraryA(path && *path ? path : "signumksp.dll");
    if (!dll) {
        printf("FAIL LoadLibrary(%s): error %lu\n", path ? path : "signumksp.dll",
               (unsigned long)GetLastError());
        return -1;
    }
    get = (GetKeyStorageInterfaceFn)(void (*)(void))GetProcAddress(dll, "GetKeyStorageInterface");
    if (!get) {
        printf("FAIL GetProcAddress(GetKeyStorageInterface)\n");
        return -1;
    }
    st = get(SIGNUM_KSP_NAME, &table, 0);
    if (st != 0 || !table) {
        printf("FAIL GetKeyStorageInterface: 0x%08lx\n", (unsigned long)st);
        return -1;
    }
    t = table;
    printf("ok GetKeyStorageInterface\n");
    return 0;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[MAX_PATH];
    FILE *f;
    snprintf(path, sizeof(path), "%s\\%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        printf("FAIL writing %s\n", path);
        failures++;
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static NCRYPT_PROV_HANDLE open_prov(void)
{
    NCRYPT_PROV_HANDLE hp = 0;
    CHECK_SS("OpenProvider", t->OpenProvider(&hp, SIGNUM_KSP_NAME, 0), ERROR_SUCCESS);
    return hp;
}

/* ---- offline: the table, flags, handles, provider properties, an unreachable agent ---- */

static void test_table(void)
{
    void *const *fns = (void *const *)&t->OpenProvider;
    size_t n =
        (sizeof(*t) - offsetof(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, OpenProvider)) / sizeof(void *);
    int all = 1;
    GetKeyStorageInterfaceFn get =
        (GetKeyStorageInterfaceFn)(void (*)(void))GetProcAddress(dll, "GetKeyStorageInterface");
    NCRYPT_KEY_STORAGE_FUNCTION_TABLE *other = NULL;

    CHECK("table version 3.0", t->Version.MajorVersion == 3 && t->Version.MinorVersion == 0);
    for (size_t i = 0; i < n; i++)
        all &= fns[i] != NULL;
    CHECK("29 table entries, none NULL", n == 29 && all);
    CHECK("GetKeyStorageInterface refuses another provider's name",
          get(L"Microsoft Software Key Storage Provider", &other, 0) != 0);
    CHECK("exports DllRegisterServer and DllUnregisterServer",
          GetProcAddress(dll, "DllRegisterServer") && GetProcAddress(dll, "DllUnregisterServer"));
}

static void test_provider_offline(void)
{
    NCRYPT_PROV_HANDLE hp = 0, bad;
    NCRYPT_KEY_HANDLE hk = 0;
    NCryptKeyName *kn = NULL;
    NCryptAlgorithmName *algs = NULL;
    PVOID state = NULL;
    WCHAR name[64];
    BYTE buf[256];
    DWORD len = 0, count = 0, dw = 0;
    HWND hwnd = (HWND)(ULONG_PTR)0x1234;
    const WCHAR pin[] = L"not-an-api-key";
    int stack_obj[16] = {0};
    DWORD start;

    CHECK_SS("OpenProvider bad flags", t->OpenProvider(&hp, SIGNUM_KSP_NAME, 0x1), NTE_BAD_FLAGS);
    CHECK_SS("OpenProvider another name", t->OpenProvider(&hp, L"Other", 0), NTE_INVALID_PARAMETER);
    hp = open_prov();

    /* Provider properties: size query, short buffer, value. */
    CHECK_SS("provider Name size query",
             t->GetProviderProperty(hp, NCRYPT_NAME_PROPERTY, NULL, 0, &len, 0), ERROR_SUCCESS);
    CHECK("provider Name size", len == sizeof(SIGNUM_KSP_NAME));
    CHECK_SS("provider Name short buffer",
             t->GetProviderProperty(hp, NCRYPT_NAME_PROPERTY, buf, len - 1, &len, 0),
             NTE_BUFFER_TOO_SMALL);
    CHECK_SS("provider Name",
             t->GetProviderProperty(hp, NCRYPT_NAME_PROPERTY, buf, sizeof(buf), &len, 0),
             ERROR_SUCCESS);
    CHECK("provider Name value", wcscmp((WCHAR *)buf, SIGNUM_KSP_NAME) == 0);
    CHECK_SS("provider Impl Type",
             t->GetProviderProperty(hp, NCRYPT_IMPL_TYPE_PROPERTY, (PBYTE)&dw, sizeof(dw), &len, 0),
             ERROR_SUCCESS);
    CHECK("provider Impl Type is hardware", dw == NCRYPT_IMPL_HARDWARE_FLAG);
    CHECK_SS("provider Security Descr Support not supported",
             t->GetProviderProperty(hp, NCRYPT_SECURITY_DESCR_SUPPORT_PROPERTY, buf, sizeof(buf),
                                    &len, 0),
             NTE_NOT_SUPPORTED);
    CHECK_SS("provider property bad flags",
             t->GetProviderProperty(hp, NCRYPT_NAME_PROPERTY, buf, sizeof(buf), &len, 0x1000),
             NTE_BAD_FLAGS);
    CHECK_SS(
        "set provider HWND",
        t->SetProviderProperty(hp, NCRYPT_WINDOW_HANDLE_PROPERTY, (PBYTE)&hwnd, sizeof(hwnd), 0),
        ERROR_SUCCESS);
    CHECK_SS("set provider Export Policy refused",
             t->SetProviderProperty(hp, NCRYPT_EXPORT_POLICY_PROPERTY, (PBYTE)&dw, sizeof(dw), 0),
             NTE_NOT_SUPPORTED);

    /* Algorithms. */
    CHECK_SS("IsAlgSupported RSA", t->IsAlgSupported(hp, BCRYPT_RSA_ALGORITHM, 0), ERROR_SUCCESS);
    CHECK_SS("IsAlgSupported ECDSA_P256", t->IsAlgSupported(hp, BCRYPT_ECDSA_P256_ALGORITHM, 0),
             ERROR_SUCCESS);
    CHECK_SS("IsAlgSupported ECDSA_P384", t->IsAlgSupported(hp, BCRYPT_ECDSA_P384_ALGORITHM, 0),
             ERROR_SUCCESS);
    CHECK_SS("IsAlgSupported AES", t->IsAlgSupported(hp, BCRYPT_AES_ALGORITHM, 0),
             NTE_NOT_SUPPORTED);
    CHECK_SS("EnumAlgorithms signature",
             t->EnumAlgorithms(hp, NCRYPT_SIGNATURE_OPERATION, &count, &algs, 0), ERROR_SUCCESS);
    CHECK("EnumAlgorithms: RSA, ECDSA_P256, ECDSA_P384",
          count == 3 && algs && wcscmp(algs[0].pszName, L"RSA") == 0 &&
              wcscmp(algs[1].pszName, L"ECDSA_P256") == 0 &&
              wcscmp(algs[2].pszName, L"ECDSA_P384") == 0);
    t->FreeBuffer(algs);
    algs = NULL;
    CHECK_SS("EnumAlgorithms cipher",
             t->EnumAlgorithms(hp, NCRYPT_CIPHER_OPERATION, &count, &algs, 0), ERROR_SUCCESS);
    CHECK("EnumAlgorithms cipher: none", count == 0 && algs == NULL);

    /* Handles: NULL, forged, a readable object that is not ours, the wrong type, freed. */
    CHECK_SS("NULL provider handle",
             t->GetProviderProperty(0, NCRYPT_NAME_PROPERTY, buf, sizeof(buf), &len, 0),
             NTE_INVALID_HANDLE);
    CHECK_SS("forged provider handle",
             t->GetProviderProperty(0x1234, NCRYPT_NAME_PROPERTY, buf, sizeof(buf), &len, 0),
             NTE_INVALID_HANDLE);
    bad = (NCRYPT_PROV_HANDLE)stack_obj;
    CHECK_SS("foreign object as provider", t->OpenKey(bad, &hk, L"x", 0, 0), NTE_INVALID_HANDLE);
    CHECK_SS("provider handle as key",
             t->GetKeyProperty(hp, (NCRYPT_KEY_HANDLE)hp, NCRYPT_NAME_PROPERTY, buf, sizeof(buf),
                               &len, 0),
             NTE_INVALID_HANDLE);
    CHECK_SS("forged key in SignHash",
             t->SignHash(hp, 0x5678, NULL, buf, 32, buf, sizeof(buf), &len, 0), NTE_INVALID_HANDLE);
    CHECK_SS("forged key in FreeKey", t->FreeKey(hp, 0x5678), NTE_INVALID_HANDLE);
    CHECK_SS("FreeBuffer(NULL)", t->FreeBuffer(NULL), ERROR_SUCCESS);

    /* Keys are made on the server. */
    CHECK_SS("CreatePersistedKey",
             t->CreatePersistedKey(hp, &hk, BCRYPT_RSA_ALGORITHM, L"new", 0, 0), NTE_NOT_SUPPORTED);
    CHECK_SS("ImportKey", t->ImportKey(hp, 0, BCRYPT_RSAPUBLIC_BLOB, NULL, &hk, buf, 16, 0),
             NTE_NOT_SUPPORTED);
    CHECK_SS("CreatePersistedKey with a forged provider",
             t->CreatePersistedKey(0x99, &hk, BCRYPT_RSA_ALGORITHM, L"new", 0, 0),
             NTE_INVALID_HANDLE);

    /* The agent is unreachable: every call that needs it says so, quickly. */
    start = GetTickCount();
    CHECK_SS("EnumKeys without an agent", t->EnumKeys(hp, NULL, &kn, &state, 0),
             NTE_DEVICE_NOT_READY);
    CHECK("EnumKeys without an agent: no state, no name", state == NULL && kn == NULL);
    CHECK_SS("OpenKey without an agent", t->OpenKey(hp, &hk, L"rsa", 0, 0), NTE_DEVICE_NOT_READY);
    CHECK_SS("PIN without an agent",
             t->SetProviderProperty(hp, NCRYPT_PIN_PROPERTY, (PBYTE)pin, sizeof(pin), 0),
             NTE_DEVICE_NOT_READY);
    CHECK("an unreachable agent costs under 10 s", GetTickCount() - start < 10000);
    printf("value unreachable_ms %lu\n", (unsigned long)(GetTickCount() - start));
    CHECK_SS("EnumKeys machine scope", t->EnumKeys(hp, NULL, &kn, &state, NCRYPT_MACHINE_KEY_FLAG),
             NTE_NO_MORE_ITEMS);
    CHECK_SS("EnumKeys bad flags", t->EnumKeys(hp, NULL, &kn, &state, 0x1000), NTE_BAD_FLAGS);
    CHECK_SS("OpenKey bad flags", t->OpenKey(hp, &hk, L"rsa", 0, 0x1000), NTE_BAD_FLAGS);
    CHECK_SS("OpenKey machine key", t->OpenKey(hp, &hk, L"rsa", 0, NCRYPT_MACHINE_KEY_FLAG),
             NTE_BAD_KEYSET);
    CHECK_SS("OpenKey AT_KEYEXCHANGE", t->OpenKey(hp, &hk, L"rsa", AT_KEYEXCHANGE, 0),
             NTE_BAD_KEYSET);

    CHECK_SS("FreeProvider", t->FreeProvider(hp), ERROR_SUCCESS);
    CHECK_SS("freed provider handle",
             t->GetProviderProperty(hp, NCRYPT_NAME_PROPERTY, buf, sizeof(buf), &len, 0),
             NTE_INVALID_HANDLE);
    CHECK_SS("FreeProvider twice", t->FreeProvider(hp), NTE_INVALID_HANDLE);
    (void)name;
}

/* ---- register: what CNG's registration functions say (Wine may not implement them) ---- */

static void test_register(void)
{
    SignumKspRegisterFn reg =
        (SignumKspRegisterFn)(void (*)(void))GetProcAddress(dll, "SignumKspRegister");
    HRESULT(WINAPI * drs)
    (void) = (HRESULT(WINAPI *)(void))(void (*)(void))GetProcAddress(dll, "DllRegisterServer");
    LONG prov = -1, ctx = -1;
    HRESULT hr;

    CHECK("SignumKspRegister exported", reg != NULL && drs != NULL);
    if (!reg || !drs)
        return;
    hr = reg(TRUE, &prov, &ctx);
    printf("value register hr=0x%08lx BCryptRegisterProvider=0x%08lx "
           "BCryptAddContextFunctionProvider=0x%08lx\n",
           (unsigned long)hr, (unsigned long)prov, (unsigned long)ctx);
    CHECK("register: hr follows the statuses", hr == (prov  ? (HRESULT)(prov | 0x10000000)
                                                      : ctx ? (HRESULT)(ctx | 0x10000000)
                                                            : S_OK));
    hr = drs();
    printf("value DllRegisterServer hr=0x%08lx\n", (unsigned long)hr);
    hr = reg(FALSE, &prov, &ctx);
    printf("value unregister hr=0x%08lx BCryptUnregisterProvider=0x%08lx "
           "BCryptRemoveContextFunctionProvider=0x%08lx\n",
           (unsigned long)hr, (unsigned long)prov, (unsigned long)ctx);
}

/* ---- online: against the agent and the server ---- */

static const char message[] = "Signum KSP test message\n";

static void get_prop_dword(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, const WCHAR *prop,
                           const char *label)
{
    DWORD v = 0, len = 0;
    SECURITY_STATUS ss = t->GetKeyProperty(hp, hk, prop, (PBYTE)&v, sizeof(v), &len, 0);
    CHECK_SS(label, ss, ERROR_SUCCESS);
    printf("value %s %lu\n", label, (unsigned long)v);
}

static void get_prop_str(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, const WCHAR *prop,
                         const char *label)
{
    WCHAR v[128] = {0};
    DWORD len = 0;
    SECURITY_STATUS ss = t->GetKeyProperty(hp, hk, prop, (PBYTE)v, sizeof(v) - 2, &len, 0);
    CHECK_SS(label, ss, ERROR_SUCCESS);
    printf("value %s %ls\n", label, v);
}

static void key_properties(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, const char *tag,
                           const char *dir)
{
    char label[64];
    BYTE cert[8192];
    DWORD len = 0, need = 0;
    NCRYPT_PROV_HANDLE back = 0;
    NCRYPT_SUPPORTED_LENGTHS lengths;
    NCRYPT_UI_POLICY ui;

#define L(x) (snprintf(label, sizeof(label), "%s.%s", tag, x), label)
    get_prop_str(hp, hk, NCRYPT_ALGORITHM_GROUP_PROPERTY, L("algorithm_group"));
    get_prop_str(hp, hk, NCRYPT_ALGORITHM_PROPERTY, L("algorithm"));
    get_prop_str(hp, hk, NCRYPT_NAME_PROPERTY, L("name"));
    get_prop_str(hp, hk, NCRYPT_UNIQUE_NAME_PROPERTY, L("unique_name"));
    get_prop_dword(hp, hk, NCRYPT_LENGTH_PROPERTY, L("length"));
    get_prop_dword(hp, hk, NCRYPT_KEY_USAGE_PROPERTY, L("key_usage"));
    get_prop_dword(hp, hk, NCRYPT_EXPORT_POLICY_PROPERTY, L("export_policy"));
    get_prop_dword(hp, hk, NCRYPT_IMPL_TYPE_PROPERTY, L("impl_type"));
    get_prop_dword(hp, hk, NCRYPT_KEY_TYPE_PROPERTY, L("key_type"));
    CHECK_SS(L("lengths"),
             t->GetKeyProperty(hp, hk, NCRYPT_LENGTHS_PROPERTY, (PBYTE)&lengths, sizeof(lengths),
                               &len, 0),
             ERROR_SUCCESS);
    printf("value %s %lu %lu %lu %lu\n", label, (unsigned long)lengths.dwMinLength,
           (unsigned long)lengths.dwMaxLength, (unsigned long)lengths.dwIncrement,
           (unsigned long)lengths.dwDefaultLength);
    CHECK_SS(L("provider_handle"),
             t->GetKeyProperty(hp, hk, NCRYPT_PROVIDER_HANDLE_PROPERTY, (PBYTE)&back, sizeof(back),
                               &len, 0),
             ERROR_SUCCESS);
    CHECK(L("provider_handle is the provider"), back == hp);
    CHECK_SS(L("ui_policy"),
             t->GetKeyProperty(hp, hk, NCRYPT_UI_POLICY_PROPERTY, (PBYTE)&ui, sizeof(ui), &len, 0),
             ERROR_SUCCESS);
    CHECK(L("ui_policy: no protection"), ui.dwFlags == 0);
    CHECK_SS(L("security_descr not supported"),
             t->GetKeyProperty(hp, hk, NCRYPT_SECURITY_DESCR_PROPERTY, cert, sizeof(cert), &len,
                               DACL_SECURITY_INFORMATION),
             NTE_NOT_SUPPORTED);
    CHECK_SS(
        L("property bad flags"),
        t->GetKeyProperty(hp, hk, NCRYPT_LENGTH_PROPERTY, cert, sizeof(cert), &len, 0x10000000),
        NTE_BAD_FLAGS);
    /* The certificate: size query, short buffer, value. */
    CHECK_SS(L("certificate size query"),
             t->GetKeyProperty(hp, hk, NCRYPT_CERTIFICATE_PROPERTY, NULL, 0, &need, 0),
             ERROR_SUCCESS);
    CHECK_SS(L("certificate short buffer"),
             t->GetKeyProperty(hp, hk, NCRYPT_CERTIFICATE_PROPERTY, cert, need - 1, &len, 0),
             NTE_BUFFER_TOO_SMALL);
    CHECK(L("short buffer still says the size"), len == need);
    CHECK_SS(L("certificate"),
             t->GetKeyProperty(hp, hk, NCRYPT_CERTIFICATE_PROPERTY, cert, sizeof(cert), &len, 0),
             ERROR_SUCCESS);
    snprintf(label, sizeof(label), "%s.cert.der", tag);
    write_file(dir, label, cert, len);
#undef L
}

static void export_blob(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, const WCHAR *type,
                        const WCHAR *other, const WCHAR *priv, const char *file, const char *dir)
{
    BYTE blob[2048];
    DWORD need = 0, len = 0;

    CHECK_SS("export size query", t->ExportKey(hp, hk, 0, type, NULL, NULL, 0, &need, 0),
             ERROR_SUCCESS);
    CHECK_SS("export short buffer", t->ExportKey(hp, hk, 0, type, NULL, blob, need - 1, &len, 0),
             NTE_BUFFER_TOO_SMALL);
    CHECK_SS("export public blob", t->ExportKey(hp, hk, 0, type, NULL, blob, sizeof(blob), &len, 0),
             ERROR_SUCCESS);
    CHECK("export length is the size query's", len == need);
    write_file(dir, file, blob, len);
    CHECK_SS("export generic PUBLICBLOB",
             t->ExportKey(hp, hk, 0, BCRYPT_PUBLIC_KEY_BLOB, NULL, blob, sizeof(blob), &len, 0),
             ERROR_SUCCESS);
    CHECK_SS("export the other type's blob",
             t->ExportKey(hp, hk, 0, other, NULL, blob, sizeof(blob), &len, 0), NTE_NOT_SUPPORTED);
    CHECK_SS("export private blob refused",
             t->ExportKey(hp, hk, 0, priv, NULL, blob, sizeof(blob), &len, 0), NTE_PERM);
    CHECK_SS(
        "export PKCS8 refused",
        t->ExportKey(hp, hk, 0, NCRYPT_PKCS8_PRIVATE_KEY_BLOB, NULL, blob, sizeof(blob), &len, 0),
        NTE_PERM);
}

static void test_rsa(NCRYPT_PROV_HANDLE hp, const WCHAR *name, const char *dir)
{
    NCRYPT_KEY_HANDLE hk = 0;
    BCRYPT_PKCS1_PADDING_INFO pkcs1 = {BCRYPT_SHA256_ALGORITHM};
    BCRYPT_PKCS1_PADDING_INFO pkcs1_raw = {NULL};
    BCRYPT_PKCS1_PADDING_INFO pkcs1_sha1 = {BCRYPT_SHA1_ALGORITHM};
    BCRYPT_PSS_PADDING_INFO pss = {BCRYPT_SHA256_ALGORITHM, 32};
    uint8_t digest[SG_MAX_DIGEST], di[SG_MAX_DIGESTINFO];
    size_t dlen = sizeof(digest), dilen = sizeof(di);
    BYTE sig[1024], sig2[1024], pss_sig[1024];
    DWORD len = 0, need = 0, len2 = 0, pss_len = 0;

    CHECK_SS("OpenKey RSA", t->OpenKey(hp, &hk, name, 0, 0), ERROR_SUCCESS);
    if (!hk)
        return;
    key_properties(hp, hk, "rsa", dir);
    export_blob(hp, hk, BCRYPT_RSAPUBLIC_BLOB, BCRYPT_ECCPUBLIC_BLOB, BCRYPT_RSAPRIVATE_BLOB,
                "rsa.blob", dir);

    sg_digest(SG_HASH_SHA256, message, strlen(message), digest, &dlen);
    /* PKCS#1 v1.5: size query, short buffer (no signature is made for either), signature. */
    CHECK_SS("RSA sign size query",
             t->SignHash(hp, hk, &pkcs1, digest, 32, NULL, 0, &need, BCRYPT_PAD_PKCS1),
             ERROR_SUCCESS);
    printf("value rsa.sig_len %lu\n", (unsigned long)need);
    CHECK_SS("RSA sign short buffer",
             t->SignHash(hp, hk, &pkcs1, digest, 32, sig, need - 1, &len, BCRYPT_PAD_PKCS1),
             NTE_BUFFER_TOO_SMALL);
    CHECK("RSA short buffer says the size", len == need);
    CHECK_SS("RSA PKCS#1 SHA-256",
             t->SignHash(hp, hk, &pkcs1, digest, 32, sig, sizeof(sig), &len, BCRYPT_PAD_PKCS1),
             ERROR_SUCCESS);
    CHECK("RSA signature length", len == need);
    write_file(dir, "rsa-pkcs1.sig", sig, len);
    CHECK_SS("RSA PKCS#1 verifies locally",
             t->VerifySignature(hp, hk, &pkcs1, digest, 32, sig, len, BCRYPT_PAD_PKCS1),
             ERROR_SUCCESS);
    sig[len / 2] ^= 1;
    CHECK_SS("RSA PKCS#1 tampered fails locally",
             t->VerifySignature(hp, hk, &pkcs1, digest, 32, sig, len, BCRYPT_PAD_PKCS1),
             NTE_BAD_SIGNATURE);
    sig[len / 2] ^= 1;
    /* No algorithm: a SHA-256 DigestInfo is signed, giving the same (deterministic) bytes. */
    sg_digestinfo_build(SG_HASH_SHA256, digest, 32, di, &dilen);
    CHECK_SS("RSA PKCS#1 raw DigestInfo",
             t->SignHash(hp, hk, &pkcs1_raw, di, (DWORD)dilen, sig2, sizeof(sig2), &len2,
                         BCRYPT_PAD_PKCS1),
             ERROR_SUCCESS);
    CHECK("raw DigestInfo signature equals the SHA-256 one",
          len2 == len && !memcmp(sig, sig2, len));
    CHECK_SS(
        "RSA PKCS#1 raw non-DigestInfo refused",
        t->SignHash(hp, hk, &pkcs1_raw, digest, 32, sig2, sizeof(sig2), &len2, BCRYPT_PAD_PKCS1),
        NTE_NOT_SUPPORTED);
    CHECK_SS(
        "RSA PKCS#1 SHA-1 refused",
        t->SignHash(hp, hk, &pkcs1_sha1, digest, 20, sig2, sizeof(sig2), &len2, BCRYPT_PAD_PKCS1),
        NTE_NOT_SUPPORTED);
    CHECK_SS("RSA wrong digest length",
             t->SignHash(hp, hk, &pkcs1, digest, 31, sig2, sizeof(sig2), &len2, BCRYPT_PAD_PKCS1),
             NTE_INVALID_PARAMETER);
    CHECK_SS("RSA both paddings",
             t->SignHash(hp, hk, &pkcs1, digest, 32, sig2, sizeof(sig2), &len2,
                         BCRYPT_PAD_PKCS1 | BCRYPT_PAD_PSS),
             NTE_BAD_FLAGS);
    CHECK_SS("RSA no padding", t->SignHash(hp, hk, NULL, digest, 32, sig2, sizeof(sig2), &len2, 0),
             NTE_BAD_FLAGS);
    CHECK_SS("RSA unknown flag",
             t->SignHash(hp, hk, &pkcs1, digest, 32, sig2, sizeof(sig2), &len2,
                         BCRYPT_PAD_PKCS1 | 0x1000),
             NTE_BAD_FLAGS);
    /* PSS SHA-256, salt 32. */
    CHECK_SS(
        "RSA PSS SHA-256",
        t->SignHash(hp, hk, &pss, digest, 32, pss_sig, sizeof(pss_sig), &pss_len, BCRYPT_PAD_PSS),
        ERROR_SUCCESS);
    write_file(dir, "rsa-pss.sig", pss_sig, pss_len);
    CHECK_SS("RSA PSS verifies locally",
             t->VerifySignature(hp, hk, &pss, digest, 32, pss_sig, pss_len, BCRYPT_PAD_PSS),
             ERROR_SUCCESS);
    pss.cbSalt = 4096;
    CHECK_SS("RSA PSS salt too long",
             t->SignHash(hp, hk, &pss, digest, 32, sig2, sizeof(sig2), &len2, BCRYPT_PAD_PSS),
             NTE_INVALID_PARAMETER);
    /* What a signing key refuses. */
    CHECK_SS("Decrypt refused",
             t->Decrypt(hp, hk, sig, len, NULL, sig2, sizeof(sig2), &len2, BCRYPT_PAD_PKCS1),
             NTE_NOT_SUPPORTED);
    CHECK_SS("DeleteKey refused", t->DeleteKey(hp, hk, 0), NTE_NOT_SUPPORTED);
    CHECK_SS("FinalizeKey refused", t->FinalizeKey(hp, hk, 0), NTE_NOT_SUPPORTED);
    CHECK_SS("set key Export Policy refused",
             t->SetKeyProperty(hp, hk, NCRYPT_EXPORT_POLICY_PROPERTY, (PBYTE)&len, sizeof(len), 0),
             NTE_NOT_SUPPORTED);
    CHECK_SS("FreeKey RSA", t->FreeKey(hp, hk), ERROR_SUCCESS);
    CHECK_SS("freed key handle",
             t->GetKeyProperty(hp, hk, NCRYPT_LENGTH_PROPERTY, (PBYTE)&len, sizeof(len), &len2, 0),
             NTE_INVALID_HANDLE);
}

static void test_ec(NCRYPT_PROV_HANDLE hp, NCRYPT_PROV_HANDLE other, const WCHAR *name,
                    const char *dir)
{
    NCRYPT_KEY_HANDLE hk = 0;
    uint8_t digest[SG_MAX_DIGEST];
    size_t dlen = sizeof(digest);
    BCRYPT_PKCS1_PADDING_INFO pkcs1 = {BCRYPT_SHA256_ALGORITHM};
    BYTE sig[256];
    DWORD len = 0, need = 0;

    CHECK_SS("OpenKey EC", t->OpenKey(hp, &hk, name, 0, 0), ERROR_SUCCESS);
    if (!hk)
        return;
    key_properties(hp, hk, "ec", dir);
    export_blob(hp, hk, BCRYPT_ECCPUBLIC_BLOB, BCRYPT_RSAPUBLIC_BLOB, BCRYPT_ECCPRIVATE_BLOB,
                "ec.blob", dir);
    CHECK_SS(
        "EC key used with another provider handle",
        t->GetKeyProperty(other, hk, NCRYPT_LENGTH_PROPERTY, (PBYTE)&len, sizeof(len), &need, 0),
        NTE_INVALID_HANDLE);
    sg_digest(SG_HASH_SHA256, message, strlen(message), digest, &dlen);
    CHECK_SS("ECDSA size query", t->SignHash(hp, hk, NULL, digest, 32, NULL, 0, &need, 0),
             ERROR_SUCCESS);
    printf("value ec.sig_len %lu\n", (unsigned long)need);
    CHECK_SS("ECDSA P-256 SHA-256",
             t->SignHash(hp, hk, NULL, digest, 32, sig, sizeof(sig), &len, 0), ERROR_SUCCESS);
    CHECK("ECDSA signature is raw r||s", len == need);
    write_file(dir, "ec.sig", sig, len);
    CHECK_SS("ECDSA verifies locally", t->VerifySignature(hp, hk, NULL, digest, 32, sig, len, 0),
             ERROR_SUCCESS);
    CHECK_SS("ECDSA with a padding flag",
             t->SignHash(hp, hk, &pkcs1, digest, 32, sig, sizeof(sig), &len, BCRYPT_PAD_PKCS1),
             NTE_BAD_FLAGS);
    CHECK_SS("ECDSA SHA-1-sized digest refused",
             t->SignHash(hp, hk, NULL, digest, 20, sig, sizeof(sig), &len, 0), NTE_NOT_SUPPORTED);
    CHECK_SS("FreeKey EC", t->FreeKey(hp, hk), ERROR_SUCCESS);
}

/* The PIN property: the agent takes it as an API key. A refused one is a wrong PIN; the
 * right one ($SIGNUM_TEST_PIN) logs in again and the listing follows. */
static void test_pin(NCRYPT_PROV_HANDLE hp, const WCHAR *rsa)
{
    const char *good = getenv("SIGNUM_TEST_PIN");
    const WCHAR bad[] = L"sgk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    WCHAR wgood[256];
    NCRYPT_KEY_HANDLE hk = 0;
    int n;

    if (!good || !*good) {
        printf("FAIL SIGNUM_TEST_PIN is not set\n");
        failures++;
        return;
    }
    n = MultiByteToWideChar(CP_UTF8, 0, good, -1, wgood, 256);
    CHECK_SS("PIN refused by the server",
             t->SetProviderProperty(hp, NCRYPT_PIN_PROPERTY, (PBYTE)bad, sizeof(bad), 0),
             NTE_INCORRECT_PASSWORD);
    CHECK_SS("PIN empty", t->SetProviderProperty(hp, NCRYPT_PIN_PROPERTY, (PBYTE)L"", 2, 0),
             NTE_INCORRECT_PASSWORD);
    CHECK_SS("PIN accepted (API key)",
             t->SetProviderProperty(hp, NCRYPT_PIN_PROPERTY, (PBYTE)wgood,
                                    (DWORD)(n > 0 ? n : 1) * sizeof(WCHAR), 0),
             ERROR_SUCCESS);
    SecureZeroMemory(wgood, sizeof(wgood));
    CHECK_SS("OpenKey after the PIN", t->OpenKey(hp, &hk, rsa, AT_SIGNATURE, 0), ERROR_SUCCESS);
    if (hk)
        t->FreeKey(hp, hk);
    hk = 0;
    CHECK_SS("OpenKey with CERT_NCRYPT_KEY_SPEC",
             t->OpenKey(hp, &hk, rsa, CERT_NCRYPT_KEY_SPEC, NCRYPT_SILENT_FLAG), ERROR_SUCCESS);
    if (hk)
        t->FreeKey(hp, hk);
}

static int test_online(const char *dir, const char *rsa, const char *ec)
{
    NCRYPT_PROV_HANDLE hp = open_prov(), other = open_prov();
    NCRYPT_KEY_HANDLE hk = 0;
    NCryptKeyName *kn = NULL;
    PVOID state = NULL;
    WCHAR wrsa[80], wec[80];
    SECURITY_STATUS ss = ERROR_SUCCESS;
    int n = 0;

    if (!hp || !other)
        return -1;
    MultiByteToWideChar(CP_UTF8, 0, rsa, -1, wrsa, 80);
    MultiByteToWideChar(CP_UTF8, 0, ec, -1, wec, 80);
    write_file(dir, "data.bin", message, strlen(message));
    /* The listing, one key per call (bounded). */
    while (n < 1000 && (ss = t->EnumKeys(hp, NULL, &kn, &state, 0)) == ERROR_SUCCESS) {
        printf("value key %ls %ls %lu %lu\n", kn->pszName, kn->pszAlgid,
               (unsigned long)kn->dwLegacyKeySpec, (unsigned long)kn->dwFlags);
        t->FreeBuffer(kn);
        n++;
    }
    CHECK_SS("EnumKeys ends with NTE_NO_MORE_ITEMS", ss, NTE_NO_MORE_ITEMS);
    CHECK_SS("FreeBuffer(enum state)", t->FreeBuffer(state), ERROR_SUCCESS);
    CHECK_SS("OpenKey unknown name", t->OpenKey(hp, &hk, L"no-such-key", 0, 0), NTE_BAD_KEYSET);
    test_rsa(hp, wrsa, dir);
    test_ec(hp, other, wec, dir);
    test_pin(other, wrsa);
    CHECK_SS("FreeProvider", t->FreeProvider(hp), ERROR_SUCCESS);
    CHECK_SS("FreeProvider (other)", t->FreeProvider(other), ERROR_SUCCESS);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2 || load() != 0)
        return 2;
    if (strcmp(argv[1], "offline") == 0) {
        test_table();
        test_provider_offline();
    } else if (strcmp(argv[1], "register") == 0) {
        test_register();
    } else if (strcmp(argv[1], "online") == 0 && argc == 5) {
        test_online(argv[2], argv[3], argv[4]);
    } else {
        printf("usage: test_ksp.exe offline | register | online OUTDIR RSA_KEY EC_KEY\n");
        return 2;
    }
    printf("%s: %d failure(s)\n", argv[1], failures);
    return failures ? 1 : 0;
}
