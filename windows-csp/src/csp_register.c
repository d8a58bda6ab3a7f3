/* DllRegisterServer/DllUnregisterServer (regsvr32): the provider's entry under
 * HKLM\SOFTWARE\Microsoft\Cryptography\Defaults\Provider\<name> with "Image Path" (this DLL's
 * full path), "Type" (PROV_RSA_AES) and "SigInFile" (0). Writing HKLM needs an elevated caller
 * on Windows; the error is returned as an HRESULT. */
#include "csp_abi.h" /* csp.h and its layout checks */

#define PROVIDER_KEY    L"SOFTWARE\\Microsoft\\Cryptography\\Defaults\\Provider\\"
#define PROVIDER_NAME_W L"Signum Cryptographic Service Provider"

HRESULT WINAPI DllRegisterServer(void)
{
    WCHAR path[MAX_PATH + 1];
    HMODULE self = NULL;
    HKEY key = NULL;
    DWORD n, type = CSP_PROVIDER_TYPE, sig_in_file = 0;
    LONG rc;

    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCWSTR)(void *)DllRegisterServer, &self))
        return HRESULT_FROM_WIN32(GetLastError());
    n = GetModuleFileNameW(self, path, MAX_PATH);
    if (n == 0 || n >= MAX_PATH)
        return HRESULT_FROM_WIN32(ERROR_FILENAME_EXCED_RANGE);
    path[n] = L'\0';
    rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, PROVIDER_KEY PROVIDER_NAME_W, 0, NULL, 0,
                         KEY_SET_VALUE, NULL, &key, NULL);
    if (rc != ERROR_SUCCESS)
        goto out;
    rc = RegSetValueExW(key, L"Image Path", 0, REG_SZ, (const BYTE *)path, (n + 1) * sizeof(WCHAR));
    if (rc == ERROR_SUCCESS)
        rc = RegSetValueExW(key, L"Type", 0, REG_DWORD, (const BYTE *)&type, sizeof(type));
    if (rc == ERROR_SUCCESS)
        rc = RegSetValueExW(key, L"SigInFile", 0, REG_DWORD, (const BYTE *)&sig_in_file,
                            sizeof(sig_in_file));
out:
    if (key)
        RegCloseKey(key);
    return rc == ERROR_SUCCESS ? S_OK : HRESULT_FROM_WIN32((DWORD)rc);
}

HRESULT WINAPI DllUnregisterServer(void)
{
    LONG rc = RegDeleteKeyW(HKEY_LOCAL_MACHINE, PROVIDER_KEY PROVIDER_NAME_W);
    return rc == ERROR_SUCCESS || rc == ERROR_FILE_NOT_FOUND ? S_OK : HRESULT_FROM_WIN32((DWORD)rc);
}
