/* signumcsp.dll internals: the CSP entry points' prototypes and VTableProvStruc (declared here
 * from Microsoft's public CSP reference: mingw ships no CSP headers), the typed handles behind
 * HCRYPTPROV/HCRYPTHASH/HCRYPTKEY, and the one error map. */
#ifndef SIGNUM_CSP_H
#define SIGNUM_CSP_H

#include <windows.h>
#include <wincrypt.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "signum/client.h"
#include "signum/crypto.h"

#define CSP_PROVIDER_NAME "Signum Cryptographic Service Provider"
#define CSP_PROVIDER_TYPE PROV_RSA_AES
#define CSP_VERSION       0x0200 /* PP_VERSION: major 2, minor 0 (as CryptoAPI callers expect) */

/* What CryptoAPI hands CPAcquireContext (Microsoft: "VTableProvStruc"). */
typedef struct {
    DWORD Version;
    FARPROC FuncVerifyImage;
    FARPROC FuncReturnhWnd;
    DWORD dwProvType;
    BYTE *pbContextInfo;
    DWORD cbContextInfo;
    LPSTR pszProvName;
} csp_vtable;

/* Handle magics: every entry point checks the one its handle must carry. */
#define CSP_MAGIC_PROV 0x53475043u /* "CPGS" */
#define CSP_MAGIC_HASH 0x53474843u
#define CSP_MAGIC_KEY  0x53474B43u

/* A provider context (HCRYPTPROV): one client of the agent, its key listing, and the chosen
 * container. The listing is fetched once; if the agent has no credentials yet the container is
 * resolved after PP_SIGNATURE_PIN. `lock` guards the listing and the enumeration cursors. */
typedef struct {
    uint32_t magic;
    CRITICAL_SECTION lock;
    sg_client *client;
    int verify_only;    /* CRYPT_VERIFYCONTEXT: no container */
    char container[65]; /* asked name; "" = the default (first RSA key) */
    sg_key_list *list;  /* NULL until fetched */
    const sg_key *key;  /* the container, once resolved */
    sg_pubkey_info pub; /* its public key */
    size_t enum_containers, enum_algs, enum_algs_ex;
} csp_prov;

/* A hash object (HCRYPTHASH): local SHA-2, finished by HP_HASHVAL, a sign or a read. */
typedef struct {
    uint32_t magic;
    CRITICAL_SECTION lock;
    csp_prov *prov;
    ALG_ID alg;
    sg_hash hash;
    sg_digest_ctx ctx;
    int final;
    uint8_t value[SG_MAX_DIGEST];
    size_t value_len;
} csp_hash;

/* A key handle (HCRYPTKEY): the container's signature key pair (never its private part). */
typedef struct {
    uint32_t magic;
    csp_prov *prov;
    DWORD spec;
} csp_key;

/* Where a status arises, for the few statuses whose NTE_* code depends on it. */
typedef enum { CSP_CTX_ACQUIRE, CSP_CTX_LOGIN, CSP_CTX_SIGN, CSP_CTX_OTHER } csp_ctx;

DWORD csp_map_status(sg_status st, csp_ctx ctx);
/* SetLastError(err) and FALSE: how every CSP entry point fails (logged with the function). */
BOOL csp_fail_at(const char *func, DWORD err);
#define csp_fail(err) csp_fail_at(__func__, (err))

/* The debug log: SIGNUM_DEBUG=csp (or all); lines go to the file named by SIGNUM_CSP_LOG
 * (appended) or to OutputDebugString. Never a secret (no PIN, no API key). */
void csp_debug(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));

/* Handle checks (NULL when the handle is not one of ours of that kind). */
csp_prov *csp_prov_of(HCRYPTPROV h);
csp_hash *csp_hash_of(csp_prov *p, HCRYPTHASH h);
csp_key *csp_key_of(csp_prov *p, HCRYPTKEY h);

/* The container's key, fetching the listing if needed; SG_ERR_KEY_NOT_FOUND if there is none. */
sg_status csp_resolve(csp_prov *p, const sg_key **key, sg_pubkey_info *pub);

/* The usual CryptoAPI output: size query (out NULL), ERROR_MORE_DATA, or a copy. */
BOOL csp_output(const void *src, DWORD len, BYTE *out, DWORD *out_len);

/* The hash's value, finishing it if needed (the caller holds h->lock). */
sg_status csp_hash_finish(csp_hash *h);

/* The entry points (the names the .def exports). */
BOOL WINAPI CPAcquireContext(HCRYPTPROV *phProv, LPCSTR szContainer, DWORD dwFlags,
                             csp_vtable *pVTable);
BOOL WINAPI CPReleaseContext(HCRYPTPROV hProv, DWORD dwFlags);
BOOL WINAPI CPGenKey(HCRYPTPROV hProv, ALG_ID Algid, DWORD dwFlags, HCRYPTKEY *phKey);
BOOL WINAPI CPDeriveKey(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTHASH hBaseData, DWORD dwFlags,
                        HCRYPTKEY *phKey);
BOOL WINAPI CPDestroyKey(HCRYPTPROV hProv, HCRYPTKEY hKey);
BOOL WINAPI CPSetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, const BYTE *pbData,
                          DWORD dwFlags);
BOOL WINAPI CPGetKeyParam(HCRYPTPROV hProv, HCRYPTKEY hKey, DWORD dwParam, BYTE *pbData,
                          DWORD *pcbDataLen, DWORD dwFlags);
BOOL WINAPI CPSetProvParam(HCRYPTPROV hProv, DWORD dwParam, const BYTE *pbData, DWORD dwFlags);
BOOL WINAPI CPGetProvParam(HCRYPTPROV hProv, DWORD dwParam, BYTE *pbData, DWORD *pcbDataLen,
                           DWORD dwFlags);
BOOL WINAPI CPGenRandom(HCRYPTPROV hProv, DWORD cbLen, BYTE *pbBuffer);
BOOL WINAPI CPGetUserKey(HCRYPTPROV hProv, DWORD dwKeySpec, HCRYPTKEY *phUserKey);
BOOL WINAPI CPExportKey(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTKEY hPubKey, DWORD dwBlobType,
                        DWORD dwFlags, BYTE *pbData, DWORD *pcbDataLen);
BOOL WINAPI CPImportKey(HCRYPTPROV hProv, const BYTE *pbData, DWORD cbDataLen, HCRYPTKEY hPubKey,
                        DWORD dwFlags, HCRYPTKEY *phKey);
BOOL WINAPI CPEncrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH hHash, BOOL fFinal,
                      DWORD dwFlags, BYTE *pbData, DWORD *pcbDataLen, DWORD cbBufLen);
BOOL WINAPI CPDecrypt(HCRYPTPROV hProv, HCRYPTKEY hKey, HCRYPTHASH hHash, BOOL fFinal,
                      DWORD dwFlags, BYTE *pbData, DWORD *pcbDataLen);
BOOL WINAPI CPCreateHash(HCRYPTPROV hProv, ALG_ID Algid, HCRYPTKEY hKey, DWORD dwFlags,
                         HCRYPTHASH *phHash);
BOOL WINAPI CPHashData(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE *pbData, DWORD cbDataLen,
                       DWORD dwFlags);
BOOL WINAPI CPHashSessionKey(HCRYPTPROV hProv, HCRYPTHASH hHash, HCRYPTKEY hKey, DWORD dwFlags);
BOOL WINAPI CPSignHash(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwKeySpec, LPCWSTR szDescription,
                       DWORD dwFlags, BYTE *pbSignature, DWORD *pcbSigLen);
BOOL WINAPI CPDestroyHash(HCRYPTPROV hProv, HCRYPTHASH hHash);
BOOL WINAPI CPSetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, const BYTE *pbData,
                           DWORD dwFlags);
BOOL WINAPI CPGetHashParam(HCRYPTPROV hProv, HCRYPTHASH hHash, DWORD dwParam, BYTE *pbData,
                           DWORD *pcbDataLen, DWORD dwFlags);
BOOL WINAPI CPVerifySignature(HCRYPTPROV hProv, HCRYPTHASH hHash, const BYTE *pbSignature,
                              DWORD cbSigLen, HCRYPTKEY hPubKey, LPCWSTR szDescription,
                              DWORD dwFlags);
BOOL WINAPI CPDuplicateHash(HCRYPTPROV hUID, HCRYPTHASH hHash, DWORD *pdwReserved, DWORD dwFlags,
                            HCRYPTHASH *phHash);
BOOL WINAPI CPDuplicateKey(HCRYPTPROV hUID, HCRYPTKEY hKey, DWORD *pdwReserved, DWORD dwFlags,
                           HCRYPTKEY *phKey);
HRESULT WINAPI DllRegisterServer(void);
HRESULT WINAPI DllUnregisterServer(void);

#endif
