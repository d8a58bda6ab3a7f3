/* enroll's platform part on Windows: mbedTLS key pairs (P-256 for service accounts, RSA 2048
 * for a machine's TLS client certificate) and CSRs, files
 * under %APPDATA%\Signum whose DACL grants only the current user (win_acl.h, shared with the
 * agent, which refuses a key file that is not private), and the machine key imported, not
 * exportable, into the user's CryptoAPI key store (win_clientcert.h), never into a file. */
#include <windows.h>
#include <bcrypt.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wincrypt.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_csr.h>

#include "../common/win_acl.h"
#include "signum/common/b64.h"
#include "../common/win_clientcert.h"
#include "enroll_backend.h"

struct enroll_key {
    mbedtls_pk_context pk;
};

static int os_random(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    return len <= ULONG_MAX && BCRYPT_SUCCESS(BCryptGenRandom(NULL, out, (ULONG)len,
                                                              BCRYPT_USE_SYSTEM_PREFERRED_RNG))
               ? 0
               : -1;
}

enroll_key *enroll_key_new(void)
{
    enroll_key *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    mbedtls_pk_init(&k->pk);
    if (mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(k->pk), os_random, NULL) != 0) {
        enroll_key_free(k);
        return NULL;
    }
    return k;
}

void enroll_key_free(enroll_key *k)
{
    if (k) {
        mbedtls_pk_free(&k->pk);
        free(k);
    }
}

char *enroll_key_spki_b64(enroll_key *k)
{
    uint8_t der[256];
    int n = mbedtls_pk_write_pubkey_der(&k->pk, der, sizeof(der));
    /* mbedTLS writes at the end of the buffer. */
    return n > 0 ? sgc_b64_encode(der + sizeof(der) - (size_t)n, (size_t)n) : NULL;
}

char *enroll_key_pem(enroll_key *k)
{
    char *pem = calloc(1, 1024);
    if (pem && mbedtls_pk_write_key_pem(&k->pk, (unsigned char *)pem, 1024) != 0) {
        mbedtls_platform_zeroize(pem, 1024);
        free(pem);
        pem = NULL;
    }
    return pem;
}

enroll_key *enroll_machine_key_new(void)
{
    enroll_key *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    mbedtls_pk_init(&k->pk);
    if (mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0 ||
        mbedtls_rsa_gen_key(mbedtls_pk_rsa(k->pk), os_random, NULL, 2048, 65537) != 0) {
        enroll_key_free(k);
        return NULL;
    }
    return k;
}

char *enroll_key_csr(enroll_key *k, const char *cn)
{
    mbedtls_x509write_csr csr;
    char subject[300], *pem = calloc(1, 4096);
    size_t n = 0;

    /* The server names the certificate itself; the CN only has to be a valid name. */
    n += (size_t)snprintf(subject, sizeof(subject), "CN=");
    for (const char *c = cn; *c && n < 70; c++)
        if (isalnum((unsigned char)*c) || *c == '-' || *c == '.' || *c == '_')
            subject[n++] = *c;
    subject[n] = '\0';
    if (n == 3)
        snprintf(subject, sizeof(subject), "CN=machine");
    mbedtls_x509write_csr_init(&csr);
    mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&csr, &k->pk);
    if (!pem || mbedtls_x509write_csr_set_subject_name(&csr, subject) != 0 ||
        mbedtls_x509write_csr_pem(&csr, (unsigned char *)pem, 4096, os_random, NULL) != 0) {
        free(pem);
        pem = NULL;
    }
    mbedtls_x509write_csr_free(&csr);
    return pem;
}

/* The RSA key as a CryptoAPI PRIVATEKEYBLOB: the headers, then modulus, prime1, prime2,
 * exponent1, exponent2, coefficient and the private exponent, little-endian. malloc'd, *len
 * set; the caller wipes and frees it. NULL if the key is not RSA 2048. */
static BYTE *private_key_blob(enroll_key *k, DWORD *len)
{
    enum { N, P, Q, D, E, DP, DQ, QP, COUNT };
    static const struct {
        int which;
        size_t len;
    } layout[] = {{N, 256}, {P, 128}, {Q, 128}, {DP, 128}, {DQ, 128}, {QP, 128}, {D, 256}};
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(k->pk);
    mbedtls_mpi m[COUNT];
    BYTE *blob = NULL, *w;
    BLOBHEADER *bh;
    RSAPUBKEY *rp;
    uint8_t e_le[4] = {0};
    int ok = 0;

    for (int i = 0; i < COUNT; i++)
        mbedtls_mpi_init(&m[i]);
    *len = (DWORD)(sizeof(BLOBHEADER) + sizeof(RSAPUBKEY) + 2 * 256 + 5 * 128);
    if (mbedtls_pk_get_type(&k->pk) != MBEDTLS_PK_RSA || mbedtls_rsa_get_len(rsa) != 256 ||
        mbedtls_rsa_export(rsa, &m[N], &m[P], &m[Q], &m[D], &m[E]) != 0 ||
        mbedtls_rsa_export_crt(rsa, &m[DP], &m[DQ], &m[QP]) != 0 ||
        mbedtls_mpi_write_binary_le(&m[E], e_le, sizeof(e_le)) != 0 || !(blob = calloc(1, *len)))
        goto out;
    bh = (BLOBHEADER *)blob;
    bh->bType = PRIVATEKEYBLOB;
    bh->bVersion = CUR_BLOB_VERSION;
    bh->aiKeyAlg = CALG_RSA_KEYX;
    rp = (RSAPUBKEY *)(blob + sizeof(BLOBHEADER));
    rp->magic = 0x32415352; /* "RSA2" */
    rp->bitlen = 2048;
    rp->pubexp = (DWORD)e_le[0] | (DWORD)e_le[1] << 8 | (DWORD)e_le[2] << 16 | (DWORD)e_le[3] << 24;
    w = blob + sizeof(BLOBHEADER) + sizeof(RSAPUBKEY);
    for (size_t i = 0; i < sizeof(layout) / sizeof(layout[0]); i++) {
        if (mbedtls_mpi_write_binary_le(&m[layout[i].which], w, layout[i].len) != 0)
            goto out;
        w += layout[i].len;
    }
    ok = 1;
out:
    for (int i = 0; i < COUNT; i++)
        mbedtls_mpi_free(&m[i]);
    if (!ok && blob) {
        mbedtls_platform_zeroize(blob, *len);
        free(blob);
        blob = NULL;
    }
    return blob;
}

#define CONTAINER_PREFIX "Signum machine "

int enroll_machine_key_store(enroll_key *k, const char *dir, const char *label, char *ref,
                             size_t ref_len)
{
    wchar_t container[SG_WIN_CONTAINER_MAX];
    char why[300];
    HCRYPTPROV prov = 0;
    HCRYPTKEY key = 0;
    DWORD blob_len = 0;
    BYTE *blob = NULL;
    int rc = -1;

    (void)dir; /* no file: the key goes to the user's key store */
    if ((size_t)snprintf(ref, ref_len, SG_WIN_KEY_REF_PREFIX CONTAINER_PREFIX "%s", label) >=
            ref_len ||
        sg_win_key_ref_parse(ref, container, SG_WIN_CONTAINER_MAX, why, sizeof(why)) != 0) {
        fprintf(stderr, "signum-util enroll: cannot name the key container for %s\n", label);
        return -1;
    }
    /* A container of that name left by an earlier attempt is replaced. */
    CryptAcquireContextW(&prov, container, SG_WIN_KEY_PROVIDER, SG_WIN_KEY_PROV_TYPE,
                         CRYPT_DELETEKEYSET | CRYPT_SILENT);
    prov = 0;
    if (!CryptAcquireContextW(&prov, container, SG_WIN_KEY_PROVIDER, SG_WIN_KEY_PROV_TYPE,
                              CRYPT_NEWKEYSET | CRYPT_SILENT)) {
        fprintf(stderr, "signum-util enroll: cannot create the key container %s (error 0x%lx)\n",
                ref, (unsigned long)GetLastError());
        return -1;
    }
    if (!(blob = private_key_blob(k, &blob_len))) {
        fprintf(stderr, "signum-util enroll: the machine key is not an RSA 2048 key\n");
        goto out;
    }
    /* No CRYPT_EXPORTABLE: the key cannot be read back out through CryptoAPI. */
    if (!CryptImportKey(prov, blob, blob_len, 0, 0, &key)) {
        fprintf(stderr, "signum-util enroll: cannot import the machine key (error 0x%lx)\n",
                (unsigned long)GetLastError());
        goto out;
    }
    rc = 0;
out:
    if (blob) {
        mbedtls_platform_zeroize(blob, blob_len);
        free(blob);
    }
    if (key)
        CryptDestroyKey(key);
    CryptReleaseContext(prov, 0);
    if (rc != 0)
        CryptAcquireContextW(&prov, container, SG_WIN_KEY_PROVIDER, SG_WIN_KEY_PROV_TYPE,
                             CRYPT_DELETEKEYSET | CRYPT_SILENT);
    return rc;
}

void enroll_machine_key_forget(const char *old_ref)
{
    wchar_t container[SG_WIN_CONTAINER_MAX];
    char why[300];
    HCRYPTPROV prov = 0;
    /* Only a container enroll made: client_key could name one the user keeps otherwise. */
    if (strncmp(old_ref, SG_WIN_KEY_REF_PREFIX CONTAINER_PREFIX,
                strlen(SG_WIN_KEY_REF_PREFIX CONTAINER_PREFIX)) != 0 ||
        sg_win_key_ref_parse(old_ref, container, SG_WIN_CONTAINER_MAX, why, sizeof(why)) != 0)
        return;
    if (CryptAcquireContextW(&prov, container, SG_WIN_KEY_PROVIDER, SG_WIN_KEY_PROV_TYPE,
                             CRYPT_DELETEKEYSET | CRYPT_SILENT))
        printf("removed the replaced machine key %s\n", old_ref);
}

/* Creates (or replaces) path with text: through a temporary file created with the private
 * DACL (or the default one), then renamed over the target. */
int enroll_write_file(const char *path, const char *text, int private_)
{
    wchar_t wpath[AG_PATH_MAX], wtmp[AG_PATH_MAX + 8];
    SECURITY_ATTRIBUTES sa;
    DWORD len = (DWORD)strlen(text), wrote = 0;
    HANDLE h = INVALID_HANDLE_VALUE;
    int rc = -1;

    memset(&sa, 0, sizeof(sa));
    if (ag_win_widen(path, wpath, AG_PATH_MAX) != 0) {
        fprintf(stderr, "signum-util enroll: %s: not a usable path\n", path);
        return -1;
    }
    swprintf(wtmp, AG_PATH_MAX + 8, L"%ls.tmp", wpath);
    if (private_ && ag_win_private_sa(&sa, "") != 0) {
        fprintf(stderr, "signum-util enroll: cannot make a private security descriptor\n");
        return -1;
    }
    DeleteFileW(wtmp); /* CREATE_ALWAYS would keep an existing file's DACL */
    h = CreateFileW(wtmp, GENERIC_WRITE, 0, private_ ? &sa : NULL, CREATE_NEW,
                    FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE || !WriteFile(h, text, len, &wrote, NULL) || wrote != len ||
        !FlushFileBuffers(h))
        goto out;
    CloseHandle(h);
    h = INVALID_HANDLE_VALUE;
    if (!MoveFileExW(wtmp, wpath, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        fprintf(stderr, "signum-util enroll: cannot write %s (error %lu)\n", path,
                (unsigned long)GetLastError());
        if (h != INVALID_HANDLE_VALUE)
            CloseHandle(h);
        DeleteFileW(wtmp);
    }
    ag_win_private_sa_free(&sa);
    return rc;
}

void enroll_make_private_dir(const char *path)
{
    wchar_t w[AG_PATH_MAX];
    SECURITY_ATTRIBUTES sa;
    if (ag_win_widen(path, w, AG_PATH_MAX) != 0)
        return;
    /* Parents first (they normally exist: %APPDATA%). */
    for (wchar_t *p = w + 3; *p; p++) {
        if (*p != L'\\' && *p != L'/')
            continue;
        *p = L'\0';
        CreateDirectoryW(w, NULL);
        *p = L'\\';
    }
    if (ag_win_private_sa(&sa, "OICI") == 0) {
        CreateDirectoryW(w, &sa);
        ag_win_private_sa_free(&sa);
    }
}

/* %APPDATA%\Signum (where the agent looks for the user's agent.conf). */
int enroll_default_dir(char *out, size_t len)
{
    const wchar_t *appdata = _wgetenv(L"APPDATA");
    char dir[AG_PATH_MAX];
    if (!appdata || !*appdata || ag_win_narrow(appdata, dir, sizeof(dir)) != 0)
        return -1;
    if ((size_t)snprintf(out, len, "%s\\Signum", dir) >= len)
        return -1;
    enroll_make_private_dir(out);
    return 0;
}

int enroll_config_path(char *out, size_t len)
{
    char dir[AG_PATH_MAX];
    const char *explicit_path = getenv("SIGNUM_CONFIG");
    if (explicit_path && *explicit_path)
        return (size_t)snprintf(out, len, "%s", explicit_path) < len ? 0 : -1;
    if (enroll_default_dir(dir, sizeof(dir)) != 0)
        return -1;
    return (size_t)snprintf(out, len, "%s\\agent.conf", dir) < len ? 0 : -1;
}

void enroll_hostname(char *out, size_t len)
{
    DWORD n = (DWORD)len;
    if (!GetComputerNameA(out, &n))
        snprintf(out, len, "machine");
}

void enroll_wipe(void *p, size_t len)
{
    mbedtls_platform_zeroize(p, len);
}
