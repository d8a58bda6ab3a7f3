/* signumksp.dll internals: typed handles, the provider and key objects, the one status map.
 * The DLL is a thin client of the Signum agent through the client library: no TLS, JSON or
 * credentials of its own. */
#ifndef SIGNUM_KSP_H
#define SIGNUM_KSP_H

#include <stddef.h>
#include <stdint.h>

#include "ksp_abi.h" /* ksp_table.h and its layout checks */
#include "signum/client.h"
#include "signum/crypto.h"

/* Every handle the DLL gives out is a pointer to one of these, registered in a table of live
 * objects: a handle is used only after it is found in that table with the right magic, and
 * the reference taken then keeps the object alive until the call ends (a FreeKey racing a
 * SignHash frees the key after the signature). */
typedef enum {
    KSP_MAGIC_PROV = 0x53475056, /* "SGPV" */
    KSP_MAGIC_KEY = 0x53474b59,  /* "SGKY" */
    KSP_MAGIC_ENUM = 0x5347454e  /* "SGEN" */
} ksp_magic;

typedef struct ksp_obj {
    uint32_t magic;
    LONG refs; /* guarded by the table's lock */
    int closed;
    struct ksp_obj *next;
    void (*destroy)(struct ksp_obj *o);
} ksp_obj;

void ksp_obj_register(ksp_obj *o, ksp_magic magic, void (*destroy)(ksp_obj *o));
/* Finds a live object with this magic and takes a reference; NULL if there is none. */
ksp_obj *ksp_obj_acquire(ULONG_PTR handle, ksp_magic magic);
void ksp_obj_release(ksp_obj *o);
/* Drops the handle's own reference: later lookups fail; the object goes with its last use.
 * Returns 0, or -1 if the handle was not live. */
int ksp_obj_close(ULONG_PTR handle, ksp_magic magic);

/* A provider handle: one client (connections are pooled inside it) and the agent's listing. */
typedef struct {
    ksp_obj hdr;
    sg_client *client;
    SRWLOCK lock; /* guards list */
    sg_key_list *list;
    HWND hwnd;
} ksp_prov;

/* A key handle: everything its properties, export and size queries need, copied at OpenKey so
 * that none of them costs a round trip to the agent. */
typedef struct {
    ksp_obj hdr;
    ksp_prov *prov; /* holds a reference */
    char name[sizeof(((sg_key *)0)->name)];
    WCHAR wname[sizeof(((sg_key *)0)->name)];
    const WCHAR *alg;   /* "RSA", "ECDSA_P256", "ECDSA_P384" */
    const WCHAR *group; /* "RSA", "ECDSA" */
    sg_pubkey_info pub;
    size_t sig_len; /* modulus bytes, or 2 x the coordinate size */
    uint8_t *cert;  /* DER, may be NULL */
    size_t cert_len;
    HWND hwnd;
} ksp_key;

ksp_prov *ksp_prov_get(NCRYPT_PROV_HANDLE h);
/* The key of hKey, which must belong to the provider hProvider; releases nothing itself. */
ksp_key *ksp_key_get(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk);
static inline void ksp_prov_put(ksp_prov *p)
{
    if (p)
        ksp_obj_release(&p->hdr);
}
static inline void ksp_key_put(ksp_key *k)
{
    if (k)
        ksp_obj_release(&k->hdr);
}

/* The listing, fetched from the agent when there is none yet (or `refresh`); the caller holds
 * prov->lock exclusively. */
SECURITY_STATUS ksp_prov_listing(ksp_prov *p, int refresh);

/* The one map from the client library's status to SECURITY_STATUS (windows-ksp/README.md). */
typedef enum { KSP_CTX_ANY, KSP_CTX_LOGIN, KSP_CTX_SIGN } ksp_context;
SECURITY_STATUS ksp_map_status(sg_status st, ksp_context ctx);

/* Copies a property value out, answering size queries (out NULL) and NTE_BUFFER_TOO_SMALL. */
SECURITY_STATUS ksp_put(const void *val, DWORD len, PBYTE out, DWORD cb, DWORD *res);
/* NUL-terminated UTF-16 property value. */
SECURITY_STATUS ksp_put_wstr(const WCHAR *s, PBYTE out, DWORD cb, DWORD *res);
/* UTF-8 <-> UTF-16 with bounds; return 0 on success. */
int ksp_utf8_to_w(const char *in, WCHAR *out, size_t out_len);
int ksp_w_to_utf8(const WCHAR *in, size_t in_len, char *out, size_t out_len);

/* SIGNUM_DEBUG=ksp (or "all"): one line per failure on stderr, never a secret. */
void ksp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Entry points in the function table (one file per family). */
SECURITY_STATUS WINAPI ksp_open_provider(NCRYPT_PROV_HANDLE *ph, LPCWSTR name, DWORD flags);
SECURITY_STATUS WINAPI ksp_free_provider(NCRYPT_PROV_HANDLE hp);
SECURITY_STATUS WINAPI ksp_get_provider_property(NCRYPT_PROV_HANDLE hp, LPCWSTR prop, PBYTE out,
                                                 DWORD cb, DWORD *res, DWORD flags);
SECURITY_STATUS WINAPI ksp_set_provider_property(NCRYPT_PROV_HANDLE hp, LPCWSTR prop, PBYTE in,
                                                 DWORD cb, DWORD flags);
SECURITY_STATUS WINAPI ksp_is_alg_supported(NCRYPT_PROV_HANDLE hp, LPCWSTR alg, DWORD flags);
SECURITY_STATUS WINAPI ksp_enum_algorithms(NCRYPT_PROV_HANDLE hp, DWORD ops, DWORD *count,
                                           NCryptAlgorithmName **list, DWORD flags);
SECURITY_STATUS WINAPI ksp_enum_keys(NCRYPT_PROV_HANDLE hp, LPCWSTR scope, NCryptKeyName **name,
                                     PVOID *state, DWORD flags);
SECURITY_STATUS WINAPI ksp_free_buffer(PVOID p);
SECURITY_STATUS WINAPI ksp_open_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE *phk, LPCWSTR name,
                                    DWORD spec, DWORD flags);
SECURITY_STATUS WINAPI ksp_free_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk);
SECURITY_STATUS WINAPI ksp_get_key_property(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                            LPCWSTR prop, PBYTE out, DWORD cb, DWORD *res,
                                            DWORD flags);
SECURITY_STATUS WINAPI ksp_set_key_property(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                            LPCWSTR prop, PBYTE in, DWORD cb, DWORD flags);
SECURITY_STATUS WINAPI ksp_export_key(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                      NCRYPT_KEY_HANDLE hexp, LPCWSTR type,
                                      NCryptBufferDesc *params, PBYTE out, DWORD cb, DWORD *res,
                                      DWORD flags);
SECURITY_STATUS WINAPI ksp_sign_hash(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk, VOID *padding,
                                     PBYTE hash, DWORD hash_len, PBYTE sig, DWORD sig_cb,
                                     DWORD *res, DWORD flags);
SECURITY_STATUS WINAPI ksp_verify_signature(NCRYPT_PROV_HANDLE hp, NCRYPT_KEY_HANDLE hk,
                                            VOID *padding, PBYTE hash, DWORD hash_len, PBYTE sig,
                                            DWORD sig_len, DWORD flags);
/* The public key as a BCRYPT_RSAPUBLIC_BLOB or BCRYPT_ECCPUBLIC_BLOB (size query with out
 * NULL); also what VerifySignature imports into bcrypt. */
SECURITY_STATUS ksp_public_blob(const ksp_key *k, PBYTE out, DWORD cb, DWORD *res);
/* The PIN property: the agent takes it as an API key (sg_login), as the PKCS#11 module does. */
SECURITY_STATUS ksp_login_with_pin(ksp_prov *p, const BYTE *pin, DWORD cb);

extern const NCRYPT_KEY_STORAGE_FUNCTION_TABLE ksp_function_table;

#endif
