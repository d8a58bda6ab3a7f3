/* ES256 with mbedTLS (the Windows agent; no OpenSSL there): the service account's P-256 key
 * signs a JWT assertion. The key file must be ours and private: on Windows its owner is the
 * current user and its DACL grants access to nobody but the user, SYSTEM and Administrators;
 * elsewhere it is a regular file of ours with mode 0600. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#ifdef _WIN32
#include <windows.h>
#include <bcrypt.h>
#else
#include <sys/random.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "agent.h"
#include "../common/win_acl.h"

#define KEY_FILE_MAX (16 * 1024)

#ifdef _WIN32
/* Reads the key file into a NUL-terminated buffer, refusing one that is not private. */
static char *read_key_file(const char *path, size_t *len, ag_error *err)
{
    wchar_t wpath[AG_PATH_MAX];
    HANDLE h = ag_win_widen(path, wpath, AG_PATH_MAX) != 0
                   ? INVALID_HANDLE_VALUE
                   : CreateFileW(wpath, GENERIC_READ | READ_CONTROL, FILE_SHARE_READ, NULL,
                                 OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    LARGE_INTEGER size;
    char *buf = NULL;
    DWORD got = 0;

    if (h == INVALID_HANDLE_VALUE) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "cannot open the service-account key %s", path);
        return NULL;
    }
    if (!ag_win_object_private(h, SE_FILE_OBJECT)) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                "the service-account key %s must be owned by you and readable only by you", path);
        goto fail;
    }
    if (!GetFileSizeEx(h, &size) || size.QuadPart <= 0 || size.QuadPart > KEY_FILE_MAX) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "%s is empty or too large for a key", path);
        goto fail;
    }
    buf = malloc((size_t)size.QuadPart + 1);
    if (!buf || !ReadFile(h, buf, (DWORD)size.QuadPart, &got, NULL) ||
        got != (DWORD)size.QuadPart) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "cannot read the service-account key %s", path);
        goto fail;
    }
    CloseHandle(h);
    buf[got] = '\0';
    *len = got;
    return buf;
fail:
    free(buf);
    CloseHandle(h);
    return NULL;
}
#else
static char *read_key_file(const char *path, size_t *len, ag_error *err)
{
    struct stat sb;
    char *buf = NULL;
    ssize_t got;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "cannot open the service-account key %s", path);
        return NULL;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != getuid() ||
        (sb.st_mode & 077)) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                "the service-account key %s must be a file of ours with mode 0600", path);
        goto fail;
    }
    if (sb.st_size <= 0 || sb.st_size > KEY_FILE_MAX || !(buf = malloc((size_t)sb.st_size + 1)) ||
        (got = read(fd, buf, (size_t)sb.st_size)) != sb.st_size) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "cannot read the service-account key %s", path);
        goto fail;
    }
    close(fd);
    buf[got] = '\0';
    *len = (size_t)got;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}
#endif

/* The blinding source mbedTLS wants for deterministic ECDSA: the OS's RNG. */
static int os_random(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
#ifdef _WIN32
    return len <= ULONG_MAX && BCRYPT_SUCCESS(BCryptGenRandom(NULL, out, (ULONG)len,
                                                              BCRYPT_USE_SYSTEM_PREFERRED_RNG))
               ? 0
               : -1;
#else
    return getrandom(out, len, 0) == (ssize_t)len ? 0 : -1;
#endif
}

sg_status ag_es256_sign(const char *key_file, const char *input, size_t len, uint8_t raw[64],
                        ag_error *err)
{
    mbedtls_pk_context pk;
    mbedtls_ecp_keypair *ec;
    mbedtls_mpi r, s;
    uint8_t hash[32];
    size_t pem_len = 0;
    char *pem = read_key_file(key_file, &pem_len, err);
    sg_status st = SG_ERR_INTERNAL;

    if (!pem)
        return err->status;
    mbedtls_pk_init(&pk);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    /* mbedtls_pk_parse_key wants the terminating NUL counted for PEM. */
    if (mbedtls_pk_parse_key(&pk, (const uint8_t *)pem, pem_len + 1, NULL, 0) != 0 ||
        mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY ||
        mbedtls_pk_ec(pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        st = ag_fail(err, SG_ERR_NOT_LOGGED_IN, "%s is not a P-256 private key in PEM", key_file);
        goto out;
    }
    ec = mbedtls_pk_ec(pk);
    /* Deterministic ECDSA (RFC 6979): no random source needed, same security. */
    if (mbedtls_sha256_ret((const uint8_t *)input, len, hash, 0) != 0 ||
        mbedtls_ecdsa_sign_det_ext(&ec->grp, &r, &s, &ec->d, hash, sizeof(hash), MBEDTLS_MD_SHA256,
                                   os_random, NULL) != 0 ||
        mbedtls_mpi_write_binary(&r, raw, 32) != 0 ||
        mbedtls_mpi_write_binary(&s, raw + 32, 32) != 0) {
        st = ag_fail(err, SG_ERR_INTERNAL, "cannot sign the service-account assertion");
        goto out;
    }
    st = SG_OK;
out:
    mbedtls_platform_zeroize(pem, pem_len);
    free(pem);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_pk_free(&pk);
    return st;
}
