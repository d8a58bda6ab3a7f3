/* Compile-time checks of every structure whose layout Windows fixes and this provider shares
 * with ncrypt.dll: the function table GetKeyStorageInterface returns, the NCrypt buffers and
 * names it fills or reads, the padding structures SignHash reads and the registration records.
 * The expected sizes and offsets are those of Microsoft's documented declarations on x64 and
 * x86, written out as numbers (not recomputed from our own declarations), so a wrong member in
 * ksp_table.h or a mingw header that differs from Windows stops the build of that
 * architecture. On x86 every entry point must also be __stdcall (WINAPI): ncrypt.dll calls
 * them so, and a __cdecl one would leave the stack unbalanced on return. Included by ksp.h. */
#ifndef SIGNUM_KSP_ABI_H
#define SIGNUM_KSP_ABI_H

#include <stddef.h>

#include "ksp_table.h"

#if defined(_WIN64)
#define KSP_ABI(x64, x86) (x64)
#elif defined(__i386__)
#define KSP_ABI(x64, x86) (x86)
#else
#error "signumksp is built for x64 (x86_64-w64-mingw32) or x86 (i686-w64-mingw32) only"
#endif
#define KSP_ABI_SIZE(T, x64, x86) _Static_assert(sizeof(T) == KSP_ABI(x64, x86), "sizeof " #T)
#define KSP_ABI_AT(T, m, x64, x86)                                                                 \
    _Static_assert(offsetof(T, m) == KSP_ABI(x64, x86), "offsetof " #T "." #m)

_Static_assert(sizeof(void *) == KSP_ABI(8, 4), "pointer size");
KSP_ABI_SIZE(NCRYPT_PROV_HANDLE, 8, 4); /* ULONG_PTR */
KSP_ABI_SIZE(NCRYPT_KEY_HANDLE, 8, 4);
KSP_ABI_SIZE(SECURITY_STATUS, 4, 4);
KSP_ABI_SIZE(NTSTATUS, 4, 4);

/* NCRYPT_KEY_STORAGE_FUNCTION_TABLE: BCRYPT_INTERFACE_VERSION (two USHORTs) and 29 pointers,
 * in Microsoft's order (version 1 ends with FreeSecret, 2 adds KeyDerivation, 3 the claims). */
KSP_ABI_SIZE(BCRYPT_INTERFACE_VERSION, 4, 4);
KSP_ABI_SIZE(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, 240, 120);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, OpenProvider, 8, 4);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, OpenKey, 16, 8);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, GetProviderProperty, 32, 16);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, GetKeyProperty, 40, 20);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, FreeProvider, 80, 40);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, FreeKey, 88, 44);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, FreeBuffer, 96, 48);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, EnumAlgorithms, 128, 64);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, EnumKeys, 136, 68);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, ExportKey, 152, 76);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, SignHash, 160, 80);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, VerifySignature, 168, 84);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, FreeSecret, 208, 104);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, KeyDerivation, 216, 108);
KSP_ABI_AT(NCRYPT_KEY_STORAGE_FUNCTION_TABLE, VerifyClaim, 232, 116);

/* What EnumKeys, EnumAlgorithms, ExportKey and the parameter lists exchange. */
KSP_ABI_SIZE(NCryptBuffer, 16, 12);
KSP_ABI_AT(NCryptBuffer, BufferType, 4, 4);
KSP_ABI_AT(NCryptBuffer, pvBuffer, 8, 8);
KSP_ABI_SIZE(NCryptBufferDesc, 16, 12);
KSP_ABI_AT(NCryptBufferDesc, cBuffers, 4, 4);
KSP_ABI_AT(NCryptBufferDesc, pBuffers, 8, 8);
KSP_ABI_SIZE(NCryptKeyName, 24, 16);
KSP_ABI_AT(NCryptKeyName, pszAlgid, 8, 4);
KSP_ABI_AT(NCryptKeyName, dwLegacyKeySpec, 16, 8);
KSP_ABI_AT(NCryptKeyName, dwFlags, 20, 12);
KSP_ABI_SIZE(NCryptAlgorithmName, 24, 16);
KSP_ABI_AT(NCryptAlgorithmName, dwClass, 8, 4);
KSP_ABI_AT(NCryptAlgorithmName, dwAlgOperations, 12, 8);
KSP_ABI_AT(NCryptAlgorithmName, dwFlags, 16, 12);

/* Key properties with a structure (NCRYPT_UI_POLICY_PROPERTY, NCRYPT_LENGTHS_PROPERTY). */
KSP_ABI_SIZE(NCRYPT_UI_POLICY, 32, 20);
KSP_ABI_AT(NCRYPT_UI_POLICY, pszCreationTitle, 8, 8);
KSP_ABI_AT(NCRYPT_UI_POLICY, pszDescription, 24, 16);
KSP_ABI_SIZE(NCRYPT_SUPPORTED_LENGTHS, 16, 16);

/* SignHash's padding information and the public key blobs ExportKey writes. */
KSP_ABI_SIZE(BCRYPT_PKCS1_PADDING_INFO, 8, 4);
KSP_ABI_SIZE(BCRYPT_PSS_PADDING_INFO, 16, 8);
KSP_ABI_AT(BCRYPT_PSS_PADDING_INFO, cbSalt, 8, 4);
KSP_ABI_SIZE(BCRYPT_RSAKEY_BLOB, 24, 24);
KSP_ABI_AT(BCRYPT_RSAKEY_BLOB, cbModulus, 12, 12);
KSP_ABI_SIZE(BCRYPT_ECCKEY_BLOB, 8, 8);

/* BCryptRegisterProvider's records (dllmain.c). */
KSP_ABI_SIZE(CRYPT_INTERFACE_REG, 24, 16);
KSP_ABI_AT(CRYPT_INTERFACE_REG, rgpszFunctions, 16, 12);
KSP_ABI_SIZE(CRYPT_IMAGE_REG, 24, 12);
KSP_ABI_AT(CRYPT_IMAGE_REG, rgpInterfaces, 16, 8);
KSP_ABI_SIZE(CRYPT_PROVIDER_REG, 32, 16);
KSP_ABI_AT(CRYPT_PROVIDER_REG, pUM, 16, 8);

/* The calling convention: on x86 a __cdecl pointer type is not compatible with a WINAPI one,
 * so these fail if a typedef of ksp_table.h lost its WINAPI (on x64 there is one convention
 * and the check is void). The table's initialiser in table.c then rejects any function not
 * declared WINAPI (-Werror=incompatible-pointer-types). */
#if defined(__i386__)
/* T is a WINAPI pointer with exactly these parameters, and not the same one as __cdecl. */
#define KSP_ABI_STDCALL(T, ret, params)                                                            \
    _Static_assert(__builtin_types_compatible_p(T, ret(WINAPI *) params), #T);                     \
    _Static_assert(!__builtin_types_compatible_p(T, ret(*) params), #T " is WINAPI")
KSP_ABI_STDCALL(NCryptOpenStorageProviderFn, SECURITY_STATUS,
                (NCRYPT_PROV_HANDLE *, LPCWSTR, DWORD));
KSP_ABI_STDCALL(NCryptOpenKeyFn, SECURITY_STATUS,
                (NCRYPT_PROV_HANDLE, NCRYPT_KEY_HANDLE *, LPCWSTR, DWORD, DWORD));
KSP_ABI_STDCALL(NCryptFreeProviderFn, SECURITY_STATUS, (NCRYPT_PROV_HANDLE));
KSP_ABI_STDCALL(NCryptFreeBufferFn, SECURITY_STATUS, (PVOID));
KSP_ABI_STDCALL(NCryptEnumKeysFn, SECURITY_STATUS,
                (NCRYPT_PROV_HANDLE, LPCWSTR, NCryptKeyName **, PVOID *, DWORD));
KSP_ABI_STDCALL(NCryptSignHashFn, SECURITY_STATUS,
                (NCRYPT_PROV_HANDLE, NCRYPT_KEY_HANDLE, VOID *, PBYTE, DWORD, PBYTE, DWORD, DWORD *,
                 DWORD));
KSP_ABI_STDCALL(GetKeyStorageInterfaceFn, NTSTATUS,
                (LPCWSTR, NCRYPT_KEY_STORAGE_FUNCTION_TABLE **, DWORD));
_Static_assert(__builtin_types_compatible_p(__typeof__(&GetKeyStorageInterface),
                                            GetKeyStorageInterfaceFn),
               "GetKeyStorageInterface is WINAPI");
#endif

#endif
