/* The persisted cache on POSIX: a 0700 directory of ours; files used only if they are regular
 * files we own with mode 0600; replaced atomically (0600 temporary, fsync, rename). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

#define CACHE_FILE_MAX (2 * 1024 * 1024)

void ag_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}

static int ensure_cache_dir(const ag_config *cfg)
{
    struct stat sb;
    if (!cfg->cache_dir[0])
        return -1;
    if (mkdir(cfg->cache_dir, 0700) != 0 && errno != EEXIST) {
        char parent[PATH_MAX], *slash;
        snprintf(parent, sizeof(parent), "%s", cfg->cache_dir);
        slash = strrchr(parent, '/');
        if (!slash || slash == parent)
            return -1;
        *slash = '\0';
        if (mkdir(parent, 0700) != 0 && errno != EEXIST)
            return -1;
        if (mkdir(cfg->cache_dir, 0700) != 0 && errno != EEXIST)
            return -1;
    }
    /* Only a directory that is ours and private is used at all. */
    if (lstat(cfg->cache_dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != getuid() ||
        (sb.st_mode & 077)) {
        ag_log("cache", "ignoring cache directory %s: not a private directory owned by us",
               cfg->cache_dir);
        return -1;
    }
    return 0;
}

char *ag_cache_load(const ag_config *cfg, const char *name, size_t *len)
{
    char path[PATH_MAX + 64], *buf = NULL;
    struct stat sb;
    ssize_t n;
    int fd;

    if (ensure_cache_dir(cfg) != 0)
        return NULL;
    snprintf(path, sizeof(path), "%s/%s", cfg->cache_dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != getuid() ||
        (sb.st_mode & 0777) != 0600 || sb.st_size <= 0 || sb.st_size > CACHE_FILE_MAX) {
        ag_log("cache", "ignoring %s: wrong owner, mode, type or size", path);
        close(fd);
        return NULL;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf) {
        n = read(fd, buf, (size_t)sb.st_size);
        if (n != sb.st_size) {
            ag_log("cache", "ignoring %s: short read", path);
            ag_wipe(buf, (size_t)sb.st_size);
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            *len = (size_t)n;
        }
    }
    close(fd);
    return buf;
}

void ag_cache_store(const ag_config *cfg, const char *name, const char *text, size_t len)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 96];
    int fd;

    if (ensure_cache_dir(cfg) != 0)
        return;
    snprintf(path, sizeof(path), "%s/%s", cfg->cache_dir, name);
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 && write(fd, text, len) == (ssize_t)len && fchmod(fd, 0600) == 0 &&
        fsync(fd) == 0 && close(fd) == 0) {
        if (rename(tmp, path) != 0)
            unlink(tmp);
    } else {
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        ag_log("cache", "cannot write %s", path);
    }
}

void ag_cache_remove(const ag_config *cfg, const char *name)
{
    char path[PATH_MAX + 64];
    if (!cfg->cache_dir[0])
        return;
    snprintf(path, sizeof(path), "%s/%s", cfg->cache_dir, name);
    unlink(path);
}
