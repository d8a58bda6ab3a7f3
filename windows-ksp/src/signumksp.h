/* The exports of signumksp.dll beyond GetKeyStorageInterface (for the installer and
 * signum-util, which LoadLibrary the DLL and call them). */
#ifndef SIGNUM_SIGNUMKSP_H
#define SIGNUM_SIGNUMKSP_H

#include <windows.h>

/* Registers (install TRUE) or unregisters the provider with CNG: BCryptRegisterProvider +
 * BCryptAddContextFunctionProvider(CRYPT_LOCAL, NULL, NCRYPT_KEY_STORAGE_INTERFACE,
 * NCRYPT_KEY_STORAGE_ALGORITHM, name, CRYPT_PRIORITY_BOTTOM), or their undoing. The two
 * NTSTATUS values come back as they are (either pointer may be NULL); the result is S_OK or
 * HRESULT_FROM_NT of the first failure. DllRegisterServer/DllUnregisterServer call it. */
HRESULT WINAPI SignumKspRegister(BOOL install, LONG *nt_provider, LONG *nt_context);
typedef HRESULT(WINAPI *SignumKspRegisterFn)(BOOL install, LONG *nt_provider, LONG *nt_context);

HRESULT WINAPI DllRegisterServer(void);
HRESULT WINAPI DllUnregisterServer(void);

#endif
