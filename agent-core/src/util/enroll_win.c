/* enroll's platform part on Windows: mbedTLS P-256 key pairs, the POST over WinHTTP
 * (https_win.c), and files under %APPDATA%\Signum whose DACL grants only the current user
 * (win_acl.h, shared with the agent, which refuses a key file that is not private). */
#include <windows.h>
#include <bcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>

#include "../agent/win_acl.h"
#include "../common/b64.h"
#include "enroll_backend.h"
#include "https_win.h"

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
    return n > 0 ? b64_encode(der + sizeof(der) - (size_t)n, (size_t)n) : NULL;
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

char *enroll_key_csr(enroll_key *k, const char *cn)
{
    (void)k;
    (void)cn;
    return NULL; /* machine enrollment is not offered on Windows yet */
}

int enroll_machine_supported(void)
{
    return 0;
}

char *enroll_post(const ag_config *cfg, const char *path, const char *body, long *status)
{
    https_answer ans;
    char why[400];
    https_stage stage =
        util_https(cfg, 0, "POST", path, body, ENROLL_ANSWER_MAX, &ans, why, sizeof(why));
    *status = 0;
    if (stage != HTTPS_OK) {
        fprintf(stderr, "signum-util enroll: %s%s: %s\n", cfg->servers[0], path, why);
        return NULL;
    }
    *status = ans.status;
    return ans.body;
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
