/* macOS: no secure_getenv, getrandom, SOCK_CLOEXEC, accept4, pipe2 or SO_PEERCRED. The agent's
 * socket is in the app group's container, the one place the sandboxed token extension may
 * reach; the cache is ~/Library/Caches/Signum. Compiled only on macOS (syntax-checked on Linux
 * by tests/macos, which declares the few Darwin calls). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix_os.h"

/* The app group of the host app and its token extension (entitlements in macos-ctk/): the team
 * id, then the group name. Set at build time (cmake -DSIGNUM_MACOS_APP_GROUP=...). */
#ifndef SIGNUM_APP_GROUP
#define SIGNUM_APP_GROUP "SIGNUMTEAM.com.signum"
#endif

const char *sg_px_getenv(const char *name)
{
    /* secure_getenv's rule: nothing from the environment in a set-id process. */
    return issetugid() ? NULL : getenv(name);
}

/* getentropy gives at most 256 bytes a call. */
int sg_px_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        size_t n = len > 256 ? 256 : len;
        if (getentropy(p, n) != 0)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

/* Close-on-exec and no SIGPIPE, set right after creation (no SOCK_CLOEXEC here: a fork in
 * another thread in between is the one window, and the agent and its hosts do not exec then). */
static int prepare(int fd)
{
    int one = 1;
    if (fd < 0)
        return -1;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int sg_px_socket(void)
{
    return prepare(socket(AF_UNIX, SOCK_STREAM, 0));
}

int sg_px_accept(int listen_fd)
{
    return prepare(accept(listen_fd, NULL, NULL));
}

int sg_px_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return 0;
}

int sg_px_peer_uid(int fd, uid_t *uid)
{
    gid_t gid;
    return getpeereid(fd, uid, &gid);
}

/* The user's real home: in a sandboxed process HOME is the app's own container. */
static const char *real_home(void)
{
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

/* ~/Library/Group Containers/<group>/signum/agent.sock: signum/ is the agent's 0700 directory
 * (checked by sg_os_check_socket_dir like any other). */
int sg_px_default_socket(char *out, size_t out_len)
{
    const char *home = real_home();
    int n;
    if (!home)
        return -1;
    n = snprintf(out, out_len, "%s/Library/Group Containers/%s/signum/agent.sock", home,
                 SIGNUM_APP_GROUP);
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

/* The group's container (~/Library/Group Containers/<group>) exists once the app or the
 * extension ran, not necessarily when launchd first starts the agent: the agent makes each
 * missing folder of the path. One it made must then be ours, a directory, not a link, 0700 (a
 * folder another user planted between mkdir and lstat is refused, as the socket's own folder
 * would be); folders that were there (the home, ~/Library) are left as they are. */
int sg_px_make_socket_parents(const char *dir, char *why, size_t why_len)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    struct stat sb;

    if (n >= sizeof(path)) {
        snprintf(why, why_len, "the agent's directory %.64s... is too long", dir);
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (lstat(path, &sb) != 0) {
            if (errno != ENOENT || (mkdir(path, 0700) != 0 && errno != EEXIST) ||
                lstat(path, &sb) != 0) {
                snprintf(why, why_len, "cannot create %s: %s", path, strerror(errno));
                return -1;
            }
            if (S_ISLNK(sb.st_mode) || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() ||
                (sb.st_mode & 0777) != 0700) {
                snprintf(why, why_len,
                         "%s is not a private directory of ours (uid %lu, mode %04o) right after "
                         "we created it; refusing it",
                         path, (unsigned long)sb.st_uid, (unsigned)(sb.st_mode & 07777));
                return -1;
            }
        }
        *p = '/';
    }
    return 0;
}

void sg_px_cache_dir(char *out, size_t out_len)
{
    const char *home = real_home();
    out[0] = '\0';
    if (home)
        snprintf(out, out_len, "%s/Library/Caches/Signum", home);
}
