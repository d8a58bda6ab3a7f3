/* Linux: secure_getenv, getrandom, SOCK_CLOEXEC, SO_PEERCRED and the XDG directories. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "posix_os.h"

const char *sg_px_getenv(const char *name)
{
    return secure_getenv(name);
}

int sg_px_random(void *buf, size_t len)
{
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

int sg_px_socket(void)
{
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

int sg_px_accept(int listen_fd)
{
    return accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

int sg_px_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC);
}

int sg_px_peer_uid(int fd, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return -1;
    *uid = cred.uid;
    return 0;
}

/* $XDG_RUNTIME_DIR/signum/agent.sock, else /tmp/signum-<uid>/agent.sock. */
int sg_px_default_socket(char *out, size_t out_len)
{
    const char *runtime = secure_getenv("XDG_RUNTIME_DIR");
    int n;
    if (runtime && *runtime)
        n = snprintf(out, out_len, "%s/signum/agent.sock", runtime);
    else
        n = snprintf(out, out_len, "/tmp/signum-%lu/agent.sock", (unsigned long)getuid());
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

/* $XDG_RUNTIME_DIR (made by the login manager) or /tmp: no parent to make. A socket set
 * elsewhere (SIGNUM_AGENT_SOCKET, --socket) needs its directory's parent to exist. */
int sg_px_make_socket_parents(const char *dir, char *why, size_t why_len)
{
    (void)dir;
    (void)why;
    (void)why_len;
    return 0;
}

/* $XDG_CACHE_HOME/signum, else ~/.cache/signum. */
void sg_px_cache_dir(char *out, size_t out_len)
{
    const char *xdg_cache = secure_getenv("XDG_CACHE_HOME"), *home = secure_getenv("HOME");
    out[0] = '\0';
    if (xdg_cache && *xdg_cache)
        snprintf(out, out_len, "%s/signum", xdg_cache);
    else if (home && *home)
        snprintf(out, out_len, "%s/.cache/signum", home);
}
