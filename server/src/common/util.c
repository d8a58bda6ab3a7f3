/* Randomness, clocks, hashing and permission-safe file helpers. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

srv_status srv_random(uint8_t *out, size_t len, srv_error *err)
{
    if (len > (size_t)INT32_MAX || RAND_bytes(out, (int)len) != 1)
        return srv_fail(err, SRV_E_INTERNAL, "random generator failed");
    return SRV_OK;
}

int64_t srv_now(void)
{
    return (int64_t)time(NULL);
}

int64_t srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t srv_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void srv_cond_wait_us(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t us)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(us / 1000000u);
    ts.tv_nsec += (long)(us % 1000000u) * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cond, lock, &ts);
}

void srv_format_time_ms(int64_t ms, char *out, size_t out_len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    gmtime_r(&secs, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, out_len, "%s.%03dZ", base, (int)(ms % 1000));
}

void srv_sha256(const void *data, size_t len, uint8_t out[SRV_SHA256_LEN])
{
    SHA256(data, len, out);
}

int srv_equal_ct(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

srv_status srv_write_file(const char *path, const void *data, size_t len, unsigned mode,
                          srv_error *err)
{
    char tmp[4096];
    const uint8_t *p = data;
    int fd;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return srv_fail(err, SRV_E_IO, "path too long: %s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return srv_fail(err, SRV_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return srv_fail(err, SRV_E_IO, "cannot write %s: %s", tmp, strerror(e));
        }
        p += n;
        len -= (size_t)n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return srv_fail(err, SRV_E_IO, "cannot finish %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return srv_fail(err, SRV_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return SRV_OK;
}

srv_status srv_read_file(const char *path, size_t max, char **out, size_t *out_len, srv_error *err)
{
    FILE *f = fopen(path, "rbe");
    char *buf = NULL;
    size_t n = 0;
    srv_status st = SRV_OK;

    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!f)
        return srv_fail(err, SRV_E_IO, "cannot open %s: %s", path, strerror(errno));
    buf = malloc(max + 1);
    if (!buf) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        st = srv_fail(err, SRV_E_IO, "cannot read %s", path);
        goto out;
    }
    if (n > max) {
        st = srv_fail(err, SRV_E_IO, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (out_len)
        *out_len = n;
out:
    free(buf);
    fclose(f);
    return st;
}

srv_status srv_path_join(char *out, size_t out_len, const char *dir, const char *name,
                         srv_error *err)
{
    int n;
    if (name[0] == '/')
        n = snprintf(out, out_len, "%s", name);
    else
        n = snprintf(out, out_len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= out_len)
        return srv_fail(err, SRV_E_CONFIG, "path too long: %s/%s", dir, name);
    return SRV_OK;
}

int srv_valid_name(const char *name, size_t max)
{
    size_t n = 0;
    if (!name)
        return 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= max;
}

srv_status srv_ossl_fail(srv_error *err, srv_status status, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    srv_status st = srv_fail(err, status, "%s%s%s", what, reason ? ": " : "", reason ? reason : "");
    ERR_clear_error();
    return st;
}

int srv_is_postgresql_url(const char *database)
{
    return strncmp(database, "postgresql://", 13) == 0 || strncmp(database, "postgres://", 11) == 0;
}
