/* Compile-time checks of what CryptoAPI (advapi32.dll) and signumcsp.dll share: the
 * VTableProvStruc CPAcquireContext receives, the handle types, the blobs and enumeration
 * records the CSP writes, and the calling convention of its exports. The expected sizes and
 * offsets are Microsoft's documented layouts on x64 and x86, written out as numbers, so a
 * wrong member in csp.h or a mingw header that differs from Windows stops the build of that
 * architecture. On x86 advapi32 calls every CP* export as __stdcall (WINAPI); a __cdecl one
 * would leave the stack unbalanced. Included by csp_register.c (once per DLL is enough). */
#ifndef SIGNUM_CSP_ABI_H
#define SIGNUM_CSP_ABI_H

#include "csp.h"

#if defined(_WIN64)
#define CSP_ABI(x64, x86) (x64)
#elif defined(__i386__)
#define CSP_ABI(x64, x86) (x86)
#else
#error "signumcsp is built for x64 (x86_64-w64-mingw32) or x86 (i686-w64-mingw32) only"
#endif
#define CSP_ABI_SIZE(T, x64, x86) _Static_assert(sizeof(T) == CSP_ABI(x64, x86), "sizeof " #T)
#define CSP_ABI_AT(T, m, x64, x86)                                                                 \
    _Static_assert(offsetof(T, m) == CSP_ABI(x64, x86), "offsetof " #T "." #m)

_Static_assert(sizeof(void *) == CSP_ABI(8, 4), "pointer size");
CSP_ABI_SIZE(HCRYPTPROV, 8, 4); /* ULONG_PTR */
CSP_ABI_SIZE(HCRYPTHASH, 8, 4);
CSP_ABI_SIZE(HCRYPTKEY, 8, 4);
CSP_ABI_SIZE(ALG_ID, 4, 4);

/* VTableProvStruc: DWORD Version, FARPROC FuncVerifyImage, FARPROC FuncReturnhWnd, DWORD
 * dwProvType, BYTE *pbContextInfo, DWORD cbContextInfo, LPSTR pszProvName. */
CSP_ABI_SIZE(csp_vtable, 56, 28);
CSP_ABI_AT(csp_vtable, FuncVerifyImage, 8, 4);
CSP_ABI_AT(csp_vtable, FuncReturnhWnd, 16, 8);
CSP_ABI_AT(csp_vtable, dwProvType, 24, 12);
CSP_ABI_AT(csp_vtable, pbContextInfo, 32, 16);
CSP_ABI_AT(csp_vtable, cbContextInfo, 40, 20);
CSP_ABI_AT(csp_vtable, pszProvName, 48, 24);

/* PUBLICKEYBLOB (BLOBHEADER + RSAPUBKEY + modulus) and PP_ENUMALGS(_EX) records. */
CSP_ABI_SIZE(BLOBHEADER, 8, 8);
CSP_ABI_AT(BLOBHEADER, aiKeyAlg, 4, 4);
CSP_ABI_SIZE(RSAPUBKEY, 12, 12);
CSP_ABI_SIZE(PROV_ENUMALGS, 32, 32);
CSP_ABI_AT(PROV_ENUMALGS, szName, 12, 12);
CSP_ABI_SIZE(PROV_ENUMALGS_EX, 88, 88);
CSP_ABI_AT(PROV_ENUMALGS_EX, szName, 24, 24);
CSP_ABI_AT(PROV_ENUMALGS_EX, szLongName, 48, 48);

/* The calling convention (on x64 there is one: nothing to check). */
#if defined(__i386__)
/* f is WINAPI with exactly these parameters, and not the same function as __cdecl. */
#define CSP_ABI_STDCALL(f, ret, params)                                                            \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&f), ret(WINAPI *) params), #f);        \
    _Static_assert(!__builtin_types_compatible_p(__typeof__(&f), ret(*) params), #f " is WINAPI")
CSP_ABI_STDCALL(CPAcquireContext, BOOL, (HCRYPTPROV *, LPCSTR, DWORD, csp_vtable *));
CSP_ABI_STDCALL(CPReleaseContext, BOOL, (HCRYPTPROV, DWORD));
CSP_ABI_STDCALL(CPGetProvParam, BOOL, (HCRYPTPROV, DWORD, BYTE *, DWORD *, DWORD));
CSP_ABI_STDCALL(CPGetUserKey, BOOL, (HCRYPTPROV, DWORD, HCRYPTKEY *));
CSP_ABI_STDCALL(CPExportKey, BOOL,
                (HCRYPTPROV, HCRYPTKEY, HCRYPTKEY, DWORD, DWORD, BYTE *, DWORD *));
CSP_ABI_STDCALL(CPCreateHash, BOOL, (HCRYPTPROV, ALG_ID, HCRYPTKEY, DWORD, HCRYPTHASH *));
CSP_ABI_STDCALL(CPHashData, BOOL, (HCRYPTPROV, HCRYPTHASH, const BYTE *, DWORD, DWORD));
CSP_ABI_STDCALL(CPSignHash, BOOL, (HCRYPTPROV, HCRYPTHASH, DWORD, LPCWSTR, DWORD, BYTE *, DWORD *));
CSP_ABI_STDCALL(CPSetHashParam, BOOL, (HCRYPTPROV, HCRYPTHASH, DWORD, const BYTE *, DWORD));
CSP_ABI_STDCALL(CPGetHashParam, BOOL, (HCRYPTPROV, HCRYPTHASH, DWORD, BYTE *, DWORD *, DWORD));
CSP_ABI_STDCALL(CPDestroyHash, BOOL, (HCRYPTPROV, HCRYPTHASH));
CSP_ABI_STDCALL(CPDestroyKey, BOOL, (HCRYPTPROV, HCRYPTKEY));
CSP_ABI_STDCALL(DllRegisterServer, HRESULT, (void));
#endif

#endif
