/* signumcsp.dll through Wine's own CryptoAPI (advapi32 routes CryptAcquireContext to the CSP
 * registered by regsvr32), driven by tests/wine/test_csp_wine.py. Subcommands:
 *   offline <dll>   what needs no agent: registry entry, provider parameters, local hashing,
 *                   refusals, errors with the agent unreachable, and (by calling the DLL's
 *                   CP* functions directly) the typed-handle checks advapi32 hides
 *   enum            the containers (PP_ENUMCONTAINERS), one "container <name>" line each
 *   sign <container|-> <sha256|sha384|sha512> <data file> <digest hex> <out dir>
 *                   signs the file (CryptHashData) and the digest (HP_HASHVAL), writes the
 *                   signatures as CryptoAPI returns them (little-endian), the PUBLICKEYBLOB and
 *                   the certificate (KP_CERTIFICATE), and checks the error cases
 *   acquire <name>  prints "acquire 0x<GetLastError>" (0 on success)
 *   pin <container> <wrong key> <api key> <out dir>
 *                   with an agent that has no credentials: PP_SIGNATURE_PIN (PIN = API key)
 *   threads <container>  4 threads signing through one context at once
 *   handles <dll> <container>
 *                   the CSP's key-handle checks (calling the exports directly): double destroy,
 *                   a hash where a key is expected and back, stale, forged and released handles
 * Every check prints "ok: ..." or "FAIL: ..."; the exit status is the number of failures. */
#include <windows.h>
#include <wincrypt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROV "Signum Cryptographic Service Provider"

static int failures;

static void check(int cond, const char *what, DWORD err)
{
    if (cond)
        printf("ok: %s\n", what);
    else {
        printf("FAIL: %s (last error 0x%08lx)\n", what, (unsigned long)err);
        failures++;
    }
}

/* `call` failed with exactly `want`. */
static void check_err(BOOL ret, DWORD want, const char *what)
{
    DWORD err = ret ? 0 : GetLastError();
    char msg[256];
    snprintf(msg, sizeof(msg), "%s -> 0x%08lx", what, (unsigned long)want);
    check(!ret && err == want, msg, err);
}

static int write_file(const char *dir, const char *name, const BYTE *data, DWORD len)
{
    char path[MAX_PATH];
    FILE *f;
    snprintf(path, sizeof(path), "%s\\%s", dir, name);
    f = fopen(path, "wb");
    if (!f)
        return -1;
    if (fwrite(data, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

static BYTE *read_file(const char *path, DWORD *len)
{
    FILE *f = fopen(path, "rb");
    BYTE *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < 64 * 1024 * 1024 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL &&
        fread(buf, 1, (size_t)n, f) == (size_t)n)
        *len = (DWORD)n;
    else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int unhex(const char *hex, BYTE *out, DWORD cap, DWORD *len)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (BYTE)v;
    }
    *len = (DWORD)(n / 2);
    return 0;
}

/* The SHA-2 of "abc" (FIPS 180-2 examples), to check the CSP's local hashing. */
static const struct {
    ALG_ID alg;
    const char *hex;
} abc[] = {
    {CALG_SHA_256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {CALG_SHA_384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                   "8086072ba1e7cc2358baeca134c825a7"},
    {CALG_SHA_512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                   "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
};

static void offline_hashing(HCRYPTPROV prov)
{
    for (size_t i = 0; i < sizeof(abc) / sizeof(abc[0]); i++) {
        HCRYPTHASH h = 0, dup = 0;
        BYTE want[64], got[64], got2[64];
        DWORD want_len, got_len = sizeof(got), got2_len = sizeof(got2), v, vlen = sizeof(v);
        char what[96];
        unhex(abc[i].hex, want, sizeof(want), &want_len);
        snprintf(what, sizeof(what), "hash alg 0x%x of \"abc\" (and a duplicate)", abc[i].alg);
        check(CryptCreateHash(prov, abc[i].alg, 0, 0, &h) &&
                  CryptHashData(h, (const BYTE *)"ab", 2, 0) &&
                  CryptDuplicateHash(h, NULL, 0, &dup) &&
                  CryptHashData(h, (const BYTE *)"c", 1, 0) &&
                  CryptHashData(dup, (const BYTE *)"c", 1, 0) &&
                  CryptGetHashParam(h, HP_HASHVAL, got, &got_len, 0) &&
                  CryptGetHashParam(dup, HP_HASHVAL, got2, &got2_len, 0) && got_len == want_len &&
                  memcmp(got, want, want_len) == 0 && got2_len == want_len &&
                  memcmp(got2, want, want_len) == 0,
              what, GetLastError());
        check(CryptGetHashParam(h, HP_HASHSIZE, (BYTE *)&v, &vlen, 0) && v == want_len,
              "HP_HASHSIZE", GetLastError());
        vlen = sizeof(v);
        check(CryptGetHashParam(h, HP_ALGID, (BYTE *)&v, &vlen, 0) && v == abc[i].alg, "HP_ALGID",
              GetLastError());
        check_err(CryptHashData(h, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH_STATE,
                  "CryptHashData after the value was read");
        if (dup)
            CryptDestroyHash(dup);
        if (h)
            CryptDestroyHash(h);
    }
    {
        HCRYPTHASH h = 0;
        BYTE v[32], got[32];
        DWORD got_len = 1;
        memset(v, 0x5A, sizeof(v));
        check(CryptCreateHash(prov, CALG_SHA_256, 0, 0, &h) &&
                  CryptSetHashParam(h, HP_HASHVAL, v, 0),
              "CryptSetHashParam(HP_HASHVAL)", GetLastError());
        check_err(CryptGetHashParam(h, HP_HASHVAL, got, &got_len, 0), ERROR_MORE_DATA,
                  "HP_HASHVAL into 1 byte");
        check(got_len == 32, "HP_HASHVAL size answered with ERROR_MORE_DATA", 0);
        got_len = sizeof(got);
        check(CryptGetHashParam(h, HP_HASHVAL, got, &got_len, 0) && got_len == 32 &&
                  memcmp(got, v, 32) == 0,
              "HP_HASHVAL reads back what was set", GetLastError());
        CryptDestroyHash(h);
    }
    {
        HCRYPTHASH h = 0;
        check_err(CryptCreateHash(prov, CALG_SHA1, 0, 0, &h), (DWORD)NTE_BAD_ALGID,
                  "CryptCreateHash(CALG_SHA1)");
        check_err(CryptCreateHash(prov, CALG_MD5, 0, 0, &h), (DWORD)NTE_BAD_ALGID,
                  "CryptCreateHash(CALG_MD5)");
    }
}

static void offline_params(HCRYPTPROV prov)
{
    char name[128];
    DWORD len = sizeof(name), v, vlen = sizeof(v), n = 0;
    PROV_ENUMALGS_EX ex;
    BYTE rnd[32] = {0}, zero[32] = {0};

    check(CryptGetProvParam(prov, PP_NAME, (BYTE *)name, &len, 0) && strcmp(name, PROV) == 0,
          "PP_NAME", GetLastError());
    check(CryptGetProvParam(prov, PP_PROVTYPE, (BYTE *)&v, &vlen, 0) && v == PROV_RSA_AES,
          "PP_PROVTYPE", GetLastError());
    vlen = sizeof(v);
    check(CryptGetProvParam(prov, PP_IMPTYPE, (BYTE *)&v, &vlen, 0) && v == CRYPT_IMPL_HARDWARE,
          "PP_IMPTYPE", GetLastError());
    vlen = sizeof(v);
    check(CryptGetProvParam(prov, PP_VERSION, (BYTE *)&v, &vlen, 0) && v == 0x200, "PP_VERSION",
          GetLastError());
    vlen = sizeof(v);
    check(CryptGetProvParam(prov, PP_KEYSPEC, (BYTE *)&v, &vlen, 0) && v == AT_SIGNATURE,
          "PP_KEYSPEC", GetLastError());
    for (DWORD flags = CRYPT_FIRST; n < 10; flags = CRYPT_NEXT) {
        len = sizeof(ex);
        if (!CryptGetProvParam(prov, PP_ENUMALGS_EX, (BYTE *)&ex, &len, flags))
            break;
        n++;
    }
    check(n == 4 && GetLastError() == ERROR_NO_MORE_ITEMS,
          "PP_ENUMALGS_EX: SHA-256/384/512 and RSA_SIGN, then ERROR_NO_MORE_ITEMS", GetLastError());
    {
        PROV_ENUMALGS e;
        len = sizeof(e);
        check(CryptGetProvParam(prov, PP_ENUMALGS, (BYTE *)&e, &len, CRYPT_FIRST) &&
                  e.aiAlgid == CALG_SHA_256 && strcmp(e.szName, "SHA-256") == 0,
              "PP_ENUMALGS first", GetLastError());
    }
    check(CryptGenRandom(prov, sizeof(rnd), rnd) && memcmp(rnd, zero, sizeof(rnd)) != 0,
          "CryptGenRandom", GetLastError());
    {
        HCRYPTKEY k = 0;
        check_err(CryptGetUserKey(prov, AT_SIGNATURE, &k), (DWORD)NTE_NO_KEY,
                  "CryptGetUserKey in a CRYPT_VERIFYCONTEXT context");
        check_err(CryptGenKey(prov, CALG_AES_256, 0, &k), (DWORD)NTE_BAD_ALGID,
                  "CryptGenKey(CALG_AES_256)");
        check_err(CryptGenKey(prov, AT_SIGNATURE, 0, &k), (DWORD)NTE_PERM,
                  "CryptGenKey(AT_SIGNATURE)");
    }
}

/* The registry entry regsvr32 made, as CryptoAPI reads it. */
static void offline_registry(const char *dll)
{
    HKEY key;
    char path[MAX_PATH + 1];
    DWORD len = sizeof(path) - 1, type, v, vlen = sizeof(v);
    LONG rc = RegOpenKeyExA(HKEY_LOCAL_MACHINE,
                            "SOFTWARE\\Microsoft\\Cryptography\\Defaults\\Provider\\" PROV, 0,
                            KEY_READ, &key);
    check(rc == ERROR_SUCCESS, "provider key registered", (DWORD)rc);
    if (rc != ERROR_SUCCESS)
        return;
    memset(path, 0, sizeof(path));
    rc = RegQueryValueExA(key, "Image Path", NULL, &type, (BYTE *)path, &len);
    check(rc == ERROR_SUCCESS && type == REG_SZ && _stricmp(path, dll) == 0,
          "\"Image Path\" is the DLL's full path", (DWORD)rc);
    if (rc == ERROR_SUCCESS)
        printf("image path: %s\n", path);
    rc = RegQueryValueExA(key, "Type", NULL, &type, (BYTE *)&v, &vlen);
    check(rc == ERROR_SUCCESS && type == REG_DWORD && v == PROV_RSA_AES, "\"Type\" is 24",
          (DWORD)rc);
    vlen = sizeof(v);
    rc = RegQueryValueExA(key, "SigInFile", NULL, &type, (BYTE *)&v, &vlen);
    check(rc == ERROR_SUCCESS && type == REG_DWORD && v == 0, "\"SigInFile\" is 0", (DWORD)rc);
    RegCloseKey(key);
}

/* The DLL's CP* exports, called directly: advapi32 wraps every handle in its own, so a foreign,
 * stale or wrong-type handle never reaches the CSP through it. */
typedef struct {
    HMODULE m;
    BOOL(WINAPI *acquire)(HCRYPTPROV *, LPCSTR, DWORD, void *);
    BOOL(WINAPI *release)(HCRYPTPROV, DWORD);
    BOOL(WINAPI *gen_random)(HCRYPTPROV, DWORD, BYTE *);
    BOOL(WINAPI *create_hash)(HCRYPTPROV, ALG_ID, HCRYPTKEY, DWORD, HCRYPTHASH *);
    BOOL(WINAPI *hash_data)(HCRYPTPROV, HCRYPTHASH, const BYTE *, DWORD, DWORD);
    BOOL(WINAPI *get_hash_param)(HCRYPTPROV, HCRYPTHASH, DWORD, BYTE *, DWORD *, DWORD);
    BOOL(WINAPI *duplicate_hash)(HCRYPTPROV, HCRYPTHASH, DWORD *, DWORD, HCRYPTHASH *);
    BOOL(WINAPI *destroy_hash)(HCRYPTPROV, HCRYPTHASH);
    BOOL(WINAPI *get_user_key)(HCRYPTPROV, DWORD, HCRYPTKEY *);
    BOOL(WINAPI *get_key_param)(HCRYPTPROV, HCRYPTKEY, DWORD, BYTE *, DWORD *, DWORD);
    BOOL(WINAPI *duplicate_key)(HCRYPTPROV, HCRYPTKEY, DWORD *, DWORD, HCRYPTKEY *);
    BOOL(WINAPI *destroy_key)(HCRYPTPROV, HCRYPTKEY);
    BOOL(WINAPI *sign)(HCRYPTPROV, HCRYPTHASH, DWORD, LPCWSTR, DWORD, BYTE *, DWORD *);
    BOOL(WINAPI *verify)(HCRYPTPROV, HCRYPTHASH, const BYTE *, DWORD, HCRYPTKEY, LPCWSTR, DWORD);
} cp_api;

#define CP_LOAD(api, field, name)                                                                  \
    ((api)->field = (void *)GetProcAddress((api)->m, name), (api)->field != NULL)

static int cp_load(cp_api *api, const char *dll)
{
    int ok;
    memset(api, 0, sizeof(*api));
    api->m = LoadLibraryA(dll);
    check(api->m != NULL, "LoadLibrary(signumcsp.dll)", GetLastError());
    if (!api->m)
        return -1;
    ok = CP_LOAD(api, acquire, "CPAcquireContext") & CP_LOAD(api, release, "CPReleaseContext") &
         CP_LOAD(api, gen_random, "CPGenRandom") & CP_LOAD(api, create_hash, "CPCreateHash") &
         CP_LOAD(api, hash_data, "CPHashData") & CP_LOAD(api, get_hash_param, "CPGetHashParam") &
         CP_LOAD(api, duplicate_hash, "CPDuplicateHash") &
         CP_LOAD(api, destroy_hash, "CPDestroyHash") & CP_LOAD(api, get_user_key, "CPGetUserKey") &
         CP_LOAD(api, get_key_param, "CPGetKeyParam") &
         CP_LOAD(api, duplicate_key, "CPDuplicateKey") & CP_LOAD(api, destroy_key, "CPDestroyKey") &
         CP_LOAD(api, sign, "CPSignHash") & CP_LOAD(api, verify, "CPVerifySignature");
    check(ok, "the CP* exports", GetLastError());
    if (!ok) {
        FreeLibrary(api->m);
        api->m = NULL;
        return -1;
    }
    return 0;
}

/* A handle value no CSP call ever returned (deterministic, not a pointer to anything mapped). */
#define FORGED ((ULONG_PTR)0x12345678)
/* How many hashes the cap test may try before it calls the cap missing (the CSP's cap is 4096
 * live handles per process; bounded so a CSP without a cap cannot run the test away). */
#define CAP_PROBE 10000

/* A freed hash's handle value stays dead, even once a new hash took its memory or slot. */
static void stale_hash(const cp_api *api, HCRYPTPROV p)
{
    HCRYPTHASH h = 0, h2 = 0;
    check(api->create_hash(p, CALG_SHA_256, 0, 0, &h), "CPCreateHash", GetLastError());
    check(api->destroy_hash(p, h), "CPDestroyHash", GetLastError());
    check_err(api->destroy_hash(p, h), (DWORD)NTE_BAD_HASH, "CPDestroyHash twice");
    check(api->create_hash(p, CALG_SHA_256, 0, 0, &h2), "CPCreateHash after a destroy",
          GetLastError());
    check(h2 != h, "a new hash does not get a freed hash's handle value", 0);
    check_err(api->hash_data(p, h, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH,
              "CPHashData with a freed hash (a new hash is live)");
    check_err(api->destroy_hash(p, h), (DWORD)NTE_BAD_HASH,
              "CPDestroyHash of a freed hash (a new hash is live)");
    check(api->hash_data(p, h2, (const BYTE *)"x", 1, 0) && api->destroy_hash(p, h2),
          "the new hash is untouched by the stale calls", GetLastError());
}

/* CPReleaseContext twice, and a released context's value once a new context exists. */
static void stale_context(const cp_api *api)
{
    HCRYPTPROV p = 0, p2 = 0;
    HCRYPTHASH h = 0;
    check(api->acquire(&p, NULL, CRYPT_VERIFYCONTEXT, NULL) && api->release(p, 0),
          "CPAcquireContext + CPReleaseContext", GetLastError());
    check_err(api->release(p, 0), (DWORD)NTE_BAD_UID, "CPReleaseContext twice");
    check(api->acquire(&p2, NULL, CRYPT_VERIFYCONTEXT, NULL), "CPAcquireContext after a release",
          GetLastError());
    check(p2 != p, "a new context does not get a released context's handle value", 0);
    check_err(api->release(p, 0), (DWORD)NTE_BAD_UID,
              "CPReleaseContext of a released context (a new context is live)");
    check_err(api->create_hash(p, CALG_SHA_256, 0, 0, &h), (DWORD)NTE_BAD_UID,
              "CPCreateHash in a released context");
    check(api->create_hash(p2, CALG_SHA_256, 0, 0, &h) && api->destroy_hash(p2, h),
          "the new context is untouched by the stale calls", GetLastError());
    check(api->release(p2, 0), "CPReleaseContext", GetLastError());
}

/* Releasing a context ends its hashes: their values are dead for any other context. */
static void children_die_with_context(const cp_api *api)
{
    HCRYPTPROV p = 0, p2 = 0;
    HCRYPTHASH h = 0;
    check(api->acquire(&p, NULL, CRYPT_VERIFYCONTEXT, NULL) &&
              api->create_hash(p, CALG_SHA_256, 0, 0, &h) && api->release(p, 0),
          "CPReleaseContext with a live hash", GetLastError());
    check(api->acquire(&p2, NULL, CRYPT_VERIFYCONTEXT, NULL), "CPAcquireContext", GetLastError());
    check_err(api->hash_data(p2, h, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH,
              "CPHashData with a hash of a released context");
    check_err(api->destroy_hash(p2, h), (DWORD)NTE_BAD_HASH,
              "CPDestroyHash of a hash of a released context");
    api->release(p2, 0);
}

/* Live handles are capped (NTE_NO_MEMORY past the cap), and a context's release frees its
 * hashes: a full table has room again. */
static void handle_cap(const cp_api *api)
{
    HCRYPTPROV p = 0, p2 = 0;
    HCRYPTHASH h = 0;
    DWORD err = 0;
    int n = 0;
    char what[128];
    if (!api->acquire(&p, NULL, CRYPT_VERIFYCONTEXT, NULL)) {
        check(0, "CPAcquireContext", GetLastError());
        return;
    }
    for (; n < CAP_PROBE; n++) {
        if (!api->create_hash(p, CALG_SHA_256, 0, 0, &h)) {
            err = GetLastError();
            break;
        }
    }
    snprintf(what, sizeof(what), "live handles are capped (%d hashes, then NTE_NO_MEMORY)", n);
    check(n >= 1000 && n < CAP_PROBE && err == (DWORD)NTE_NO_MEMORY, what, err);
    check(api->release(p, 0), "CPReleaseContext of a context holding every hash", GetLastError());
    check(api->acquire(&p2, NULL, CRYPT_VERIFYCONTEXT, NULL) &&
              api->create_hash(p2, CALG_SHA_256, 0, 0, &h) && api->destroy_hash(p2, h),
          "after the release the released hashes' room is free again", GetLastError());
    if (p2)
        api->release(p2, 0);
}

/* Handle values no call returned, one kind used as another; last: on a CSP that reads a magic
 * through the value as a pointer these crash the process. */
static void forged_handles(const cp_api *api, HCRYPTPROV p, HCRYPTHASH h)
{
    HCRYPTHASH h2 = 0;
    BYTE buf[64];
    DWORD len = sizeof(buf);
    check_err(api->get_key_param(p, h, KP_ALGID, buf, &len, 0), (DWORD)NTE_BAD_KEY,
              "CPGetKeyParam with a hash handle");
    check_err(api->destroy_key(p, h), (DWORD)NTE_BAD_KEY, "CPDestroyKey with a hash handle");
    check(api->hash_data(p, h, (const BYTE *)"x", 1, 0),
          "the hash survives CPDestroyKey of its handle", GetLastError());
    check_err(api->hash_data(p, (HCRYPTHASH)p, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH,
              "CPHashData with a provider handle");
    check_err(api->create_hash((HCRYPTPROV)h, CALG_SHA_256, 0, 0, &h2), (DWORD)NTE_BAD_UID,
              "CPCreateHash with a hash handle as the provider");
    check_err(api->create_hash(FORGED, CALG_SHA_256, 0, 0, &h2), (DWORD)NTE_BAD_UID,
              "CPCreateHash with provider handle 0x12345678");
    check_err(api->gen_random(FORGED, sizeof(buf), buf), (DWORD)NTE_BAD_UID,
              "CPGenRandom with provider handle 0x12345678");
    check_err(api->release(FORGED, 0), (DWORD)NTE_BAD_UID,
              "CPReleaseContext with provider handle 0x12345678");
    check_err(api->hash_data(p, FORGED, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH,
              "CPHashData with hash handle 0x12345678");
    check_err(api->destroy_hash(p, FORGED), (DWORD)NTE_BAD_HASH,
              "CPDestroyHash with hash handle 0x12345678");
    len = sizeof(buf);
    check_err(api->get_key_param(p, FORGED, KP_ALGID, buf, &len, 0), (DWORD)NTE_BAD_KEY,
              "CPGetKeyParam with key handle 0x12345678");
    check_err(api->destroy_key(p, FORGED), (DWORD)NTE_BAD_KEY,
              "CPDestroyKey with key handle 0x12345678");
}

/* The CSP's own handle checks (NTE_BAD_UID/HASH/KEY) in CRYPT_VERIFYCONTEXT contexts. */
static void offline_handles(const char *dll)
{
    cp_api api;
    HCRYPTPROV p1 = 0, p2 = 0;
    HCRYPTHASH h = 0;
    DWORD fake[64] = {0}, len = 0;

    if (cp_load(&api, dll) != 0)
        return;
    check(api.acquire(&p1, NULL, CRYPT_VERIFYCONTEXT, NULL) &&
              api.acquire(&p2, NULL, CRYPT_VERIFYCONTEXT, NULL),
          "CPAcquireContext(CRYPT_VERIFYCONTEXT) twice", GetLastError());
    check_err(api.create_hash((HCRYPTPROV)fake, CALG_SHA_256, 0, 0, &h), (DWORD)NTE_BAD_UID,
              "CPCreateHash with a foreign provider handle");
    check_err(api.create_hash(0, CALG_SHA_256, 0, 0, &h), (DWORD)NTE_BAD_UID,
              "CPCreateHash with a NULL provider handle");
    check_err(api.hash_data(p1, (HCRYPTHASH)fake, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH,
              "CPHashData with a foreign hash handle");
    check_err(api.destroy_key(p1, (ULONG_PTR)fake), (DWORD)NTE_BAD_KEY,
              "CPDestroyKey with a foreign key handle");
    check(api.create_hash(p1, CALG_SHA_256, 0, 0, &h), "CPCreateHash", GetLastError());
    check_err(api.hash_data(p2, h, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH,
              "CPHashData with another context's hash");
    len = 0;
    check_err(api.sign(p1, h, AT_SIGNATURE, NULL, 0, NULL, &len), (DWORD)NTE_NO_KEY,
              "CPSignHash in a CRYPT_VERIFYCONTEXT context");
    check(api.destroy_hash(p1, h), "CPDestroyHash", GetLastError());
    check_err(api.destroy_hash(p1, h), (DWORD)NTE_BAD_HASH, "CPDestroyHash twice");
    stale_hash(&api, p1);
    stale_context(&api);
    children_die_with_context(&api);
    handle_cap(&api);
    check(api.create_hash(p1, CALG_SHA_256, 0, 0, &h), "CPCreateHash", GetLastError());
    forged_handles(&api, p1, h);
    check(api.destroy_hash(p1, h), "CPDestroyHash", GetLastError());
    check(api.release(p1, 0) && api.release(p2, 0), "CPReleaseContext", GetLastError());
    FreeLibrary(api.m);
}

/* The same checks for key handles, which need a container (an agent with credentials). */
static int cmd_handles(const char *dll, const char *container)
{
    cp_api api;
    HCRYPTPROV p = 0, q = 0, p2 = 0;
    HCRYPTHASH h = 0;
    HCRYPTKEY k = 0, k2 = 0, k3 = 0;
    BYTE buf[512];
    DWORD len, v;

    memset(buf, 0, sizeof(buf));
    if (cp_load(&api, dll) != 0)
        return failures;
    if (!api.acquire(&p, container, 0, NULL) || !api.acquire(&q, NULL, CRYPT_VERIFYCONTEXT, NULL)) {
        check(0, "CPAcquireContext(container) + CPAcquireContext(CRYPT_VERIFYCONTEXT)",
              GetLastError());
        goto out;
    }
    len = sizeof(v);
    check(api.get_user_key(p, AT_SIGNATURE, &k) &&
              api.get_key_param(p, k, KP_ALGID, (BYTE *)&v, &len, 0) && v == CALG_RSA_SIGN,
          "CPGetUserKey + CPGetKeyParam(KP_ALGID)", GetLastError());
    check(api.create_hash(p, CALG_SHA_256, 0, 0, &h), "CPCreateHash", GetLastError());

    /* One kind where another is expected. */
    len = sizeof(buf);
    check_err(api.get_key_param(p, h, KP_ALGID, buf, &len, 0), (DWORD)NTE_BAD_KEY,
              "CPGetKeyParam with a hash handle");
    check_err(api.verify(p, h, buf, 256, h, NULL, 0), (DWORD)NTE_BAD_KEY,
              "CPVerifySignature with a hash handle as the key");
    check_err(api.hash_data(p, k, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH,
              "CPHashData with a key handle");
    len = sizeof(buf);
    check_err(api.sign(p, k, AT_SIGNATURE, NULL, 0, buf, &len), (DWORD)NTE_BAD_HASH,
              "CPSignHash with a key handle");
    check_err(api.destroy_hash(p, k), (DWORD)NTE_BAD_HASH, "CPDestroyHash with a key handle");
    len = sizeof(v);
    check(api.get_key_param(p, k, KP_ALGID, (BYTE *)&v, &len, 0),
          "the key survives CPDestroyHash of its handle", GetLastError());
    len = sizeof(v);
    check_err(api.get_key_param(q, k, KP_ALGID, (BYTE *)&v, &len, 0), (DWORD)NTE_BAD_KEY,
              "CPGetKeyParam with another context's key");

    /* Destroyed keys stay dead. */
    check(api.duplicate_key(p, k, NULL, 0, &k2), "CPDuplicateKey", GetLastError());
    check(api.destroy_key(p, k), "CPDestroyKey", GetLastError());
    check_err(api.destroy_key(p, k), (DWORD)NTE_BAD_KEY, "CPDestroyKey twice");
    check(api.get_user_key(p, AT_SIGNATURE, &k3), "CPGetUserKey after a destroy", GetLastError());
    check(k3 != k, "a new key does not get a destroyed key's handle value", 0);
    len = sizeof(v);
    check_err(api.get_key_param(p, k, KP_ALGID, (BYTE *)&v, &len, 0), (DWORD)NTE_BAD_KEY,
              "CPGetKeyParam with a destroyed key (a new key is live)");
    check_err(api.destroy_key(p, k), (DWORD)NTE_BAD_KEY,
              "CPDestroyKey of a destroyed key (a new key is live)");
    len = sizeof(v);
    check(api.get_key_param(p, k2, KP_ALGID, (BYTE *)&v, &len, 0) && api.destroy_key(p, k2),
          "the duplicate outlives the original", GetLastError());

    /* Releasing the context ends its keys and hashes. */
    check(api.release(p, 0), "CPReleaseContext with a live key and hash", GetLastError());
    check_err(api.release(p, 0), (DWORD)NTE_BAD_UID, "CPReleaseContext twice");
    p = 0;
    if (!api.acquire(&p2, container, 0, NULL)) {
        check(0, "CPAcquireContext(container) again", GetLastError());
        goto out;
    }
    len = sizeof(v);
    check_err(api.get_key_param(p2, k3, KP_ALGID, (BYTE *)&v, &len, 0), (DWORD)NTE_BAD_KEY,
              "CPGetKeyParam with a key of a released context");
    check_err(api.destroy_key(p2, k3), (DWORD)NTE_BAD_KEY,
              "CPDestroyKey of a key of a released context");
    check_err(api.hash_data(p2, h, (const BYTE *)"x", 1, 0), (DWORD)NTE_BAD_HASH,
              "CPHashData with a hash of a released context");

    /* Forged values, last: a CSP that dereferences them crashes here. */
    len = sizeof(v);
    check_err(api.get_key_param(p2, FORGED, KP_ALGID, (BYTE *)&v, &len, 0), (DWORD)NTE_BAD_KEY,
              "CPGetKeyParam with key handle 0x12345678");
    check_err(api.destroy_key(p2, FORGED), (DWORD)NTE_BAD_KEY,
              "CPDestroyKey with key handle 0x12345678");
    check_err(api.verify(p2, FORGED, buf, 256, FORGED, NULL, 0), (DWORD)NTE_BAD_HASH,
              "CPVerifySignature with hash and key handle 0x12345678");
    check_err(api.get_user_key(FORGED, AT_SIGNATURE, &k), (DWORD)NTE_BAD_UID,
              "CPGetUserKey with provider handle 0x12345678");
out:
    if (p2)
        api.release(p2, 0);
    if (q)
        api.release(q, 0);
    if (p)
        api.release(p, 0);
    FreeLibrary(api.m);
    return failures;
}

/* With SIGNUM_NO_AUTOSTART=1 and a pipe no agent serves. */
static void offline_unreachable(void)
{
    HCRYPTPROV prov = 0;
    char name[128];
    DWORD len = sizeof(name);
    check_err(CryptAcquireContextA(&prov, "any-key", PROV, PROV_RSA_AES, 0),
              (DWORD)NTE_DEVICE_NOT_READY, "CryptAcquireContext(container) without an agent");
    check_err(CryptAcquireContextA(&prov, NULL, PROV, PROV_RSA_AES, 0), (DWORD)NTE_DEVICE_NOT_READY,
              "CryptAcquireContext(default) without an agent");
    check_err(CryptAcquireContextA(&prov, "k", PROV, PROV_RSA_AES, CRYPT_NEWKEYSET),
              (DWORD)NTE_NOT_SUPPORTED, "CRYPT_NEWKEYSET");
    check_err(CryptAcquireContextA(&prov, "k", PROV, PROV_RSA_AES, CRYPT_DELETEKEYSET),
              (DWORD)NTE_PERM, "CRYPT_DELETEKEYSET");
    check_err(CryptAcquireContextA(&prov, "k", PROV, PROV_RSA_AES, CRYPT_VERIFYCONTEXT),
              (DWORD)NTE_BAD_FLAGS, "CRYPT_VERIFYCONTEXT with a container name");
    check_err(CryptAcquireContextA(&prov, NULL, PROV, PROV_RSA_FULL, CRYPT_VERIFYCONTEXT),
              (DWORD)NTE_PROV_TYPE_NO_MATCH, "PROV_RSA_FULL (the provider is PROV_RSA_AES)");
    if (CryptAcquireContextA(&prov, NULL, PROV, PROV_RSA_AES, CRYPT_VERIFYCONTEXT)) {
        check_err(CryptGetProvParam(prov, PP_ENUMCONTAINERS, (BYTE *)name, &len, CRYPT_FIRST),
                  (DWORD)NTE_DEVICE_NOT_READY, "PP_ENUMCONTAINERS without an agent");
        CryptReleaseContext(prov, 0);
    }
}

static int cmd_offline(const char *dll)
{
    HCRYPTPROV prov = 0;
    offline_registry(dll);
    check(CryptAcquireContextA(&prov, NULL, PROV, PROV_RSA_AES, CRYPT_VERIFYCONTEXT),
          "CryptAcquireContext(CRYPT_VERIFYCONTEXT)", GetLastError());
    if (prov) {
        offline_params(prov);
        offline_hashing(prov);
        check(CryptReleaseContext(prov, 0), "CryptReleaseContext", GetLastError());
    }
    offline_unreachable();
    offline_handles(dll);
    return failures;
}

static int cmd_enum(void)
{
    HCRYPTPROV prov = 0;
    char name[256];
    DWORD len, longest = 0, flags = CRYPT_FIRST;
    int n = 0;
    if (!CryptAcquireContextA(&prov, NULL, PROV, PROV_RSA_AES, CRYPT_VERIFYCONTEXT)) {
        check(0, "CryptAcquireContext(CRYPT_VERIFYCONTEXT)", GetLastError());
        return failures;
    }
    len = 0;
    check(CryptGetProvParam(prov, PP_ENUMCONTAINERS, NULL, &longest, CRYPT_FIRST) && longest > 1,
          "PP_ENUMCONTAINERS size query", GetLastError());
    for (; n < 1000; flags = CRYPT_NEXT, n++) {
        len = sizeof(name);
        if (!CryptGetProvParam(prov, PP_ENUMCONTAINERS, (BYTE *)name, &len, flags))
            break;
        check(len <= longest, "container name within the size query's answer", 0);
        printf("container %s\n", name);
    }
    check(GetLastError() == ERROR_NO_MORE_ITEMS, "PP_ENUMCONTAINERS ends with ERROR_NO_MORE_ITEMS",
          GetLastError());
    CryptReleaseContext(prov, 0);
    return failures;
}

static int cmd_acquire(const char *name)
{
    HCRYPTPROV prov = 0;
    if (CryptAcquireContextA(&prov, name, PROV, PROV_RSA_AES, 0)) {
        printf("acquire 0x00000000\n");
        CryptReleaseContext(prov, 0);
    } else
        printf("acquire 0x%08lx\n", (unsigned long)GetLastError());
    return 0;
}

/* Signs with the hash `h` into out/<name>; checks the size query, a short buffer and a local
 * verify, then a corrupted signature. Returns the signature length (0 on failure). */
static DWORD sign_one(HCRYPTPROV prov, HCRYPTHASH h, HCRYPTKEY user, const char *out,
                      const char *name)
{
    BYTE sig[1024];
    DWORD size = 0, len;
    char what[128];

    snprintf(what, sizeof(what), "%s: CryptSignHash size query", name);
    check(CryptSignHash(h, AT_SIGNATURE, NULL, 0, NULL, &size) && size >= 256 && size <= 512, what,
          GetLastError());
    len = size - 1;
    snprintf(what, sizeof(what), "%s: CryptSignHash into a short buffer", name);
    check_err(CryptSignHash(h, AT_SIGNATURE, NULL, 0, sig, &len), ERROR_MORE_DATA, what);
    check(len == size, "the short buffer's answer is the size", 0);
    len = sizeof(sig);
    snprintf(what, sizeof(what), "%s: CryptSignHash", name);
    if (!CryptSignHash(h, AT_SIGNATURE, NULL, 0, sig, &len)) {
        check(0, what, GetLastError());
        return 0;
    }
    check(len == size, what, 0);
    check(write_file(out, name, sig, len) == 0, "signature written", GetLastError());
    snprintf(what, sizeof(what), "%s: CryptVerifySignature", name);
    check(CryptVerifySignature(h, sig, len, user, NULL, 0), what, GetLastError());
    sig[len / 2] ^= 0x01;
    snprintf(what, sizeof(what), "%s: CryptVerifySignature of a corrupted signature", name);
    check_err(CryptVerifySignature(h, sig, len, user, NULL, 0), (DWORD)NTE_BAD_SIGNATURE, what);
    (void)prov;
    return len;
}

static int cmd_sign(const char *container, const char *alg_name, const char *data_path,
                    const char *digest_hex, const char *out)
{
    HCRYPTPROV prov = 0;
    HCRYPTHASH h = 0, hv = 0;
    HCRYPTKEY user = 0, kx = 0;
    ALG_ID alg = strcmp(alg_name, "sha384") == 0   ? CALG_SHA_384
                 : strcmp(alg_name, "sha512") == 0 ? CALG_SHA_512
                                                   : CALG_SHA_256;
    BYTE digest[64], blob[1024], *data = NULL, *cert = NULL;
    DWORD digest_len = 0, data_len = 0, len, cert_len = 0;
    char name[256];

    if (unhex(digest_hex, digest, sizeof(digest), &digest_len) != 0 ||
        !(data = read_file(data_path, &data_len))) {
        check(0, "arguments", 0);
        goto out;
    }
    if (!CryptAcquireContextA(&prov, strcmp(container, "-") == 0 ? NULL : container, PROV,
                              PROV_RSA_AES, 0)) {
        check(0, "CryptAcquireContext(container)", GetLastError());
        goto out;
    }
    len = sizeof(name);
    check(CryptGetProvParam(prov, PP_CONTAINER, (BYTE *)name, &len, 0), "PP_CONTAINER",
          GetLastError());
    printf("container %s\n", name);
    check(CryptGetUserKey(prov, AT_SIGNATURE, &user), "CryptGetUserKey(AT_SIGNATURE)",
          GetLastError());
    check_err(CryptGetUserKey(prov, AT_KEYEXCHANGE, &kx), (DWORD)NTE_NO_KEY,
              "CryptGetUserKey(AT_KEYEXCHANGE)");
    len = 0;
    check(CryptExportKey(user, 0, PUBLICKEYBLOB, 0, NULL, &len) && len > 20 && len <= sizeof(blob),
          "CryptExportKey(PUBLICKEYBLOB) size", GetLastError());
    len = sizeof(blob);
    check(CryptExportKey(user, 0, PUBLICKEYBLOB, 0, blob, &len) &&
              write_file(out, "pub.blob", blob, len) == 0,
          "CryptExportKey(PUBLICKEYBLOB)", GetLastError());
    len = sizeof(blob);
    check_err(CryptExportKey(user, 0, PRIVATEKEYBLOB, 0, blob, &len), (DWORD)NTE_BAD_KEY_STATE,
              "CryptExportKey(PRIVATEKEYBLOB)");
    if (CryptGetKeyParam(user, KP_CERTIFICATE, NULL, &cert_len, 0) &&
        (cert = malloc(cert_len)) != NULL &&
        CryptGetKeyParam(user, KP_CERTIFICATE, cert, &cert_len, 0))
        check(write_file(out, "cert.der", cert, cert_len) == 0, "KP_CERTIFICATE", 0);
    else
        check(0, "KP_CERTIFICATE", GetLastError());

    check(CryptCreateHash(prov, alg, 0, 0, &h) && CryptHashData(h, data, data_len, 0),
          "CryptCreateHash + CryptHashData", GetLastError());
    {
        DWORD sz = 0;
        check_err(CryptSignHash(h, AT_KEYEXCHANGE, NULL, 0, NULL, &sz), (DWORD)NTE_NO_KEY,
                  "CryptSignHash(AT_KEYEXCHANGE)");
    }
    sign_one(prov, h, user, out, "sig-data.bin");
    check(CryptCreateHash(prov, alg, 0, 0, &hv) && CryptSetHashParam(hv, HP_HASHVAL, digest, 0),
          "CryptSetHashParam(HP_HASHVAL)", GetLastError());
    sign_one(prov, hv, user, out, "sig-hashval.bin");
out:
    if (hv)
        CryptDestroyHash(hv);
    if (h)
        CryptDestroyHash(h);
    if (user)
        CryptDestroyKey(user);
    if (prov)
        CryptReleaseContext(prov, 0);
    free(data);
    free(cert);
    return failures;
}

/* With an agent that has no credentials: the container opens, signing asks for the PIN
 * (SCARD_W_CARD_NOT_AUTHENTICATED), a wrong API key is a wrong PIN, the right one signs. */
static int cmd_pin(const char *container, const char *wrong, const char *right, const char *out)
{
    HCRYPTPROV prov = 0;
    HCRYPTHASH h = 0;
    HCRYPTKEY user = 0;
    BYTE digest[32], sig[1024];
    DWORD len = sizeof(sig);

    memset(digest, 0x42, sizeof(digest));
    if (!CryptAcquireContextA(&prov, container, PROV, PROV_RSA_AES, 0)) {
        check(0, "CryptAcquireContext before the PIN", GetLastError());
        return failures;
    }
    check(1, "CryptAcquireContext before the PIN", 0);
    check(CryptCreateHash(prov, CALG_SHA_256, 0, 0, &h) &&
              CryptSetHashParam(h, HP_HASHVAL, digest, 0),
          "hash", GetLastError());
    check_err(CryptSignHash(h, AT_SIGNATURE, NULL, 0, sig, &len),
              (DWORD)SCARD_W_CARD_NOT_AUTHENTICATED, "CryptSignHash before the PIN");
    check_err(CryptSetProvParam(prov, PP_SIGNATURE_PIN, (const BYTE *)wrong, 0),
              (DWORD)SCARD_W_WRONG_CHV, "PP_SIGNATURE_PIN with a wrong API key");
    check(CryptSetProvParam(prov, PP_SIGNATURE_PIN, (const BYTE *)right, 0),
          "PP_SIGNATURE_PIN with the API key", GetLastError());
    len = sizeof(sig);
    check(CryptSignHash(h, AT_SIGNATURE, NULL, 0, sig, &len) &&
              write_file(out, "sig-pin.bin", sig, len) == 0,
          "CryptSignHash after the PIN", GetLastError());
    check(CryptGetUserKey(prov, AT_SIGNATURE, &user) &&
              CryptVerifySignature(h, sig, len, user, NULL, 0),
          "CryptVerifySignature after the PIN", GetLastError());
    if (user)
        CryptDestroyKey(user);
    CryptDestroyHash(h);
    CryptReleaseContext(prov, 0);
    return failures;
}

/* Several threads signing through one provider context at once. */
#define THREADS    4
#define PER_THREAD 6
static HCRYPTPROV shared_prov;
static HCRYPTKEY shared_key;
static volatile LONG thread_failures, thread_signs;

static DWORD WINAPI sign_thread(LPVOID arg)
{
    for (int i = 0; i < PER_THREAD; i++) {
        HCRYPTHASH h = 0;
        BYTE digest[32], sig[1024];
        DWORD len = sizeof(sig);
        memset(digest, (int)(INT_PTR)arg * 16 + i, sizeof(digest));
        if (CryptCreateHash(shared_prov, CALG_SHA_256, 0, 0, &h) &&
            CryptSetHashParam(h, HP_HASHVAL, digest, 0) &&
            CryptSignHash(h, AT_SIGNATURE, NULL, 0, sig, &len) &&
            CryptVerifySignature(h, sig, len, shared_key, NULL, 0))
            InterlockedIncrement(&thread_signs);
        else {
            printf("thread %d sign %d: 0x%08lx\n", (int)(INT_PTR)arg, i,
                   (unsigned long)GetLastError());
            InterlockedIncrement(&thread_failures);
        }
        if (h)
            CryptDestroyHash(h);
    }
    return 0;
}

static int cmd_threads(const char *container)
{
    HANDLE t[THREADS];
    int started = 0;
    if (!CryptAcquireContextA(&shared_prov, container, PROV, PROV_RSA_AES, 0) ||
        !CryptGetUserKey(shared_prov, AT_SIGNATURE, &shared_key)) {
        check(0, "CryptAcquireContext + CryptGetUserKey", GetLastError());
        return failures;
    }
    for (int i = 0; i < THREADS; i++) {
        t[i] = CreateThread(NULL, 0, sign_thread, (LPVOID)(INT_PTR)i, 0, NULL);
        if (t[i])
            started++;
    }
    check(started == THREADS, "threads started", GetLastError());
    check(WaitForMultipleObjects((DWORD)started, t, TRUE, 90000) == WAIT_OBJECT_0,
          "threads finished within 90 s", GetLastError());
    for (int i = 0; i < started; i++)
        CloseHandle(t[i]);
    check(thread_failures == 0 && thread_signs == THREADS * PER_THREAD,
          "every concurrent signature made and verified", 0);
    CryptDestroyKey(shared_key);
    CryptReleaseContext(shared_prov, 0);
    return failures;
}

int main(int argc, char **argv)
{
    int rc = 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "offline") == 0)
        rc = cmd_offline(argv[2]);
    else if (argc == 2 && strcmp(argv[1], "enum") == 0)
        rc = cmd_enum();
    else if (argc == 3 && strcmp(argv[1], "acquire") == 0)
        rc = cmd_acquire(argv[2]);
    else if (argc == 6 && strcmp(argv[1], "pin") == 0)
        rc = cmd_pin(argv[2], argv[3], argv[4], argv[5]);
    else if (argc == 3 && strcmp(argv[1], "threads") == 0)
        rc = cmd_threads(argv[2]);
    else if (argc == 4 && strcmp(argv[1], "handles") == 0)
        rc = cmd_handles(argv[2], argv[3]);
    else if (argc == 7 && strcmp(argv[1], "sign") == 0)
        rc = cmd_sign(argv[2], argv[3], argv[4], argv[5], argv[6]);
    else
        fprintf(stderr, "usage: test_csp offline <dll> | enum | acquire <name> | "
                        "sign <container|-> <sha256|sha384|sha512> <data> <digest hex> <dir> | "
                        "pin <container> <wrong key> <api key> <dir> | threads <container> | "
                        "handles <dll> <container>\n");
    printf("%d failure(s)\n", failures);
    return rc;
}
