/* The client library on POSIX: the agent's Unix socket, and posix_spawn to start it. What
 * differs between Linux and macOS is in ../common/posix_os.h. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/posix_os.h"
#include "client_os.h"
#include "signum/client.h"

#ifndef SG_AGENT_PATH
#define SG_AGENT_PATH "signum-agent"
#endif

extern char **environ;

int sg_default_socket(char *out, size_t out_len)
{
    const char *explicit_path = sg_px_getenv("SIGNUM_AGENT_SOCKET");
    int n;
    if (!explicit_path || !*explicit_path)
        return sg_px_default_socket(out, out_len);
    n = snprintf(out, out_len, "%s", explicit_path);
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

int sg_os_check_socket_dir(const char *socket_path, char *why, size_t why_len)
{
    char dir[SG_ENDPOINT_MAX];
    const char *slash = strrchr(socket_path, '/');
    struct stat sb;
    uid_t me = geteuid();

    if (!slash || slash == socket_path || (size_t)(slash - socket_path) >= sizeof(dir)) {
        snprintf(why, why_len, "the socket path %s names no directory", socket_path);
        errno = EINVAL;
        return -1;
    }
    memcpy(dir, socket_path, (size_t)(slash - socket_path));
    dir[slash - socket_path] = '\0';
    /* lstat: a symbolic link is refused, not followed (it could point into another user's
     * directory). The parent of a fallback directory is /tmp, whose sticky bit keeps others
     * from renaming or replacing a directory we own. */
    if (lstat(dir, &sb) != 0) {
        int e = errno;
        snprintf(why, why_len, "the agent's directory %s: %s", dir, strerror(e));
        errno = e;
        return -1;
    }
    if (S_ISLNK(sb.st_mode))
        snprintf(why, why_len,
                 "the agent's directory %s is a symbolic link; refusing it (remove it, or set "
                 "XDG_RUNTIME_DIR)",
                 dir);
    else if (!S_ISDIR(sb.st_mode))
        snprintf(why, why_len, "the agent's directory %s is not a directory; refusing it", dir);
    else if (sb.st_uid != me)
        snprintf(why, why_len,
                 "the agent's directory %s is owned by uid %lu, not by us (uid %lu): another user "
                 "may have planted it; refusing it (remove it, or set XDG_RUNTIME_DIR)",
                 dir, (unsigned long)sb.st_uid, (unsigned long)me);
    else if ((sb.st_mode & 0777) != 0700)
        snprintf(why, why_len,
                 "the agent's directory %s has mode %04o, not 0700: others could reach or replace "
                 "the socket; refusing it (chmod 700 it, or remove it)",
                 dir, (unsigned)(sb.st_mode & 07777));
    else
        return 0;
    errno = EPERM;
    return -1;
}

int sg_os_connect(const char *path, ipc_fd *out, int *absent, char *why, size_t why_len)
{
    struct sockaddr_un addr;
    uid_t uid;
    int fd, e;

    *absent = 0;
    /* Whoever can write the socket's directory can put a listener there that collects API
     * keys, PINs and digests: the directory must be ours and private before we connect. A
     * directory that does not exist yet is the agent's to create (it checks the same). */
    if (sg_os_check_socket_dir(path, why, why_len) != 0) {
        *absent = errno == ENOENT;
        return -1;
    }
    fd = sg_px_socket();
    if (fd < 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        e = errno;
        close(fd);
        *absent = e == ENOENT || e == ECONNREFUSED;
        snprintf(why, why_len, "%s", strerror(e));
        return -1;
    }
    /* And the listener must run as us, checked before a single byte is sent: the directory
     * check alone leaves a window (and root may be tricked into a user's directory). */
    if (sg_px_peer_uid(fd, &uid) != 0) {
        e = errno;
        close(fd);
        snprintf(why, why_len, "cannot tell who listens at %s: %s; refusing to talk to it", path,
                 strerror(e));
        return -1;
    }
    if (uid != geteuid()) {
        close(fd);
        snprintf(why, why_len,
                 "the process listening at %s runs as uid %lu, not as us (uid %lu); refusing to "
                 "send it anything",
                 path, (unsigned long)uid, (unsigned long)geteuid());
        return -1;
    }
    *out = fd;
    return 0;
}

/* Starts `signum-agent --daemon`; it returns once its socket is listening. */
int sg_os_start_agent(const char *socket_path, char *why, size_t why_len)
{
    const char *bin = sg_px_getenv("SIGNUM_AGENT");
    char *argv[5];
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc, status;

    if (!bin || !*bin)
        bin = SG_AGENT_PATH;
    /* Never start an agent into a directory another user controls (the agent checks this
     * too; refusing here gives the reason to the tool instead of the agent's log). */
    if (sg_os_check_socket_dir(socket_path, why, why_len) != 0 && errno != ENOENT)
        return -1;
    argv[0] = (char *)bin;
    argv[1] = (char *)"--daemon";
    argv[2] = (char *)"--socket";
    argv[3] = (char *)socket_path;
    argv[4] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    rc = strchr(bin, '/') ? posix_spawn(&pid, bin, &fa, NULL, argv, environ)
                          : posix_spawnp(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(why, why_len, "cannot start %s: %s", bin, strerror(rc));
        return -1;
    }
    /* The daemon's first process exits when the agent is ready (or failed). A host that
     * ignores SIGCHLD gets ECHILD here; the caller's connect loop still finds out. */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

const char *sg_os_getenv(const char *name)
{
    return sg_px_getenv(name);
}

long sg_os_pid(void)
{
    return (long)getpid();
}

int sg_os_random(void *buf, size_t len)
{
    return sg_px_random(buf, len);
}

void sg_os_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
