/* signumcsp.dll's private header, shared by its function families (one file each):
 *   csp_prov.c         contexts, provider parameters, random
 *   csp_hash.c         hash objects
 *   csp_key.c          the container's key handle, its parameters and PUBLICKEYBLOB
 *   csp_sign.c         CPSignHash, CPVerifySignature (a hash and a key together)
 *   csp_unsupported.c  the refusals (key generation, import, derivation, encryption)
 *   csp_handles.c      the typed handle table behind HCRYPTPROV/HCRYPTHASH/HCRYPTKEY
 *   csp_errors.c       the one error map, the debug log, the output helper
 *   csp_register.c     DllRegisterServer/DllUnregisterServer
 * The entry points' prototypes and VTableProvStruc are declared here from Microsoft's public
 * CSP reference (mingw ships no CSP headers). No .c file includes another's internals: what
 * two families share is declared here. */
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

/* Every object behind a handle starts with this header; the handle itself is a value of the
 * table in csp_handles.c (never a pointer), looked up with its type and its context. */
typedef enum { CSP_OBJ_PROV = 1, CSP_OBJ_HASH, CSP_OBJ_KEY } csp_obj_type;

typedef struct csp_obj {
    csp_obj_type type;
    struct csp_obj *parent; /* a hash's or key's provider context; NULL for a context */
    void (*destroy)(struct csp_obj *o);
    /* Guarded by the table's lock: */
    unsigned refs;             /* the table's (while the handle is live) + one per call using it */
    int closed;                /* the handle was destroyed or released */
    struct csp_obj *next_dead; /* while being destroyed */
} csp_obj;

/* Live handles (contexts, hashes and keys together) per process; past it, NTE_NO_MEMORY. */
#define CSP_MAX_HANDLES 4096u

/* A provider context (HCRYPTPROV): one client of the agent, its key listing, and the chosen
 * container. The listing is fetched once; if the agent has no credentials yet the container is
 * resolved after PP_SIGNATURE_PIN. `lock` guards the listing and the enumeration cursors. */
typedef struct {
    csp_obj obj;
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
    csp_obj obj;
    CRITICAL_SECTION lock;
    ALG_ID alg;
    sg_hash hash;
    sg_digest_ctx ctx;
    int final;
    uint8_t value[SG_MAX_DIGEST];
    size_t value_len;
} csp_hash;

/* A key handle (HCRYPTKEY): the container's signature key pair (never its private part). */
typedef struct {
    csp_obj obj;
    DWORD spec;
} csp_key;

/* The handle table (csp_handles.c). csp_handle_open registers `o` (the table takes the first
 * reference) and answers its new handle, or NTE_NO_MEMORY (table full) / NTE_BAD_UID (the
 * parent context was released meanwhile); on failure `o` is the caller's to free.
 * csp_handle_get answers the live object of that handle, type and parent with a reference the
 * caller drops with csp_handle_put, else NULL. csp_handle_close ends the handle (and, for a
 * context, its hashes and keys): 0, or -1 if it was not live; the objects are destroyed once
 * the calls still using them are done. */
DWORD csp_handle_open(csp_obj *o, csp_obj_type type, csp_obj *parent, void (*destroy)(csp_obj *o),
                      ULONG_PTR *out);
csp_obj *csp_handle_get(ULONG_PTR h, csp_obj_type type, const csp_obj *parent);
void csp_handle_put(csp_obj *o);
int csp_handle_close(ULONG_PTR h, csp_obj_type type, const csp_obj *parent);

/* Typed lookups (NULL when the handle is not a live one of that kind, or of another context
 * or of none, p NULL); every non-NULL answer is dropped with csp_put. */
csp_prov *csp_prov_get(HCRYPTPROV h);
csp_hash *csp_hash_get(const csp_prov *p, HCRYPTHASH h);
csp_key *csp_key_get(const csp_prov *p, HCRYPTKEY h);
#define csp_put(x) csp_handle_put((x) ? &(x)->obj : NULL)

/* Where a status arises, for the few statuses whose NTE_* code depends on it. */
typedef enum { CSP_CTX_ACQUIRE, CSP_CTX_LOGIN, CSP_CTX_SIGN, CSP_CTX_OTHER } csp_ctx;

DWORD csp_map_status(sg_status st, csp_ctx ctx);
/* SetLastError(err) and FALSE: how every CSP entry point fails (logged with the function). */
BOOL csp_fail_at(const char *func, DWORD err);
#define csp_fail(err) csp_fail_at(__func__, (err))

/* The debug log: SIGNUM_DEBUG=csp (or all); lines go to the file named by SIGNUM_CSP_LOG
 * (appended) or to OutputDebugString. Never a secret (no PIN, no API key). */
void csp_debug(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));

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
