/* The DLL's exports: DllMain, GetKeyStorageInterface (what ncrypt.dll calls), and the
 * registration that makes ncrypt.dll route L"Signum Key Storage Provider" here. */
#include <stdio.h>

#include "ksp.h"
#include "signumksp.h"

#define KSP_STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000DL)
#ifndef HRESULT_FROM_NT
#define HRESULT_FROM_NT(x) ((HRESULT)((x) | 0x10000000L))
#endif

static HMODULE self;

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved);

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)reserved;
    if (reason == DLL_PROCESS_ATTACH) {
        self = inst;
        DisableThreadLibraryCalls(inst);
    }
    return TRUE;
}

NTSTATUS WINAPI GetKeyStorageInterface(LPCWSTR name, NCRYPT_KEY_STORAGE_FUNCTION_TABLE **table,
                                       DWORD flags)
{
    (void)flags;
    if (!table)
        return KSP_STATUS_INVALID_PARAMETER;
    if (name && _wcsicmp(name, SIGNUM_KSP_NAME) != 0)
        return KSP_STATUS_INVALID_PARAMETER;
    /* ncrypt.dll reads the table and never writes it. */
    *table = (NCRYPT_KEY_STORAGE_FUNCTION_TABLE *)&ksp_function_table;
    return 0;
}

/* The image name CNG loads: this DLL's file name (the installer puts it in System32, where
 * ncrypt.dll looks for a provider registered without a path). */
static int image_name(WCHAR *out, size_t out_len)
{
    WCHAR path[MAX_PATH];
    const WCHAR *base;
    DWORD n = GetModuleFileNameW(self, path, MAX_PATH);
    if (n == 0 || n >= MAX_PATH)
        return -1;
    base = wcsrchr(path, L'\\');
    base = base ? base + 1 : path;
    if (wcslen(base) >= out_len)
        return -1;
    wcscpy(out, base);
    return 0;
}

HRESULT WINAPI SignumKspRegister(BOOL install, LONG *nt_provider, LONG *nt_context)
{
    WCHAR image[MAX_PATH];
    PWSTR functions[1] = {(PWSTR)NCRYPT_KEY_STORAGE_ALGORITHM};
    CRYPT_INTERFACE_REG iface = {NCRYPT_KEY_STORAGE_INTERFACE, CRYPT_LOCAL, 1, functions};
    PCRYPT_INTERFACE_REG ifaces[1] = {&iface};
    CRYPT_IMAGE_REG um = {image, 1, ifaces};
    CRYPT_PROVIDER_REG reg = {0, NULL, &um, NULL};
    NTSTATUS prov_st = 0, ctx_st = 0;

    if (install) {
        if (image_name(image, MAX_PATH))
            return HRESULT_FROM_WIN32(ERROR_BAD_PATHNAME);
        prov_st = BCryptRegisterProvider(SIGNUM_KSP_NAME, CRYPT_OVERWRITE, &reg);
        if (prov_st == 0)
            ctx_st = BCryptAddContextFunctionProvider(
                CRYPT_LOCAL, NULL, NCRYPT_KEY_STORAGE_INTERFACE, NCRYPT_KEY_STORAGE_ALGORITHM,
                SIGNUM_KSP_NAME, CRYPT_PRIORITY_BOTTOM);
    } else {
        /* Both undone even if the first fails: a half registration must not stay behind. */
        ctx_st =
            BCryptRemoveContextFunctionProvider(CRYPT_LOCAL, NULL, NCRYPT_KEY_STORAGE_INTERFACE,
                                                NCRYPT_KEY_STORAGE_ALGORITHM, SIGNUM_KSP_NAME);
        prov_st = BCryptUnregisterProvider(SIGNUM_KSP_NAME);
    }
    if (nt_provider)
        *nt_provider = prov_st;
    if (nt_context)
        *nt_context = ctx_st;
    if (prov_st != 0)
        return HRESULT_FROM_NT(prov_st);
    if (ctx_st != 0)
        return HRESULT_FROM_NT(ctx_st);
    return S_OK;
}

HRESULT WINAPI DllRegisterServer(void)
{
    return SignumKspRegister(TRUE, NULL, NULL);
}

HRESULT WINAPI DllUnregisterServer(void)
{
    return SignumKspRegister(FALSE, NULL, NULL);
}
