/* The client library on POSIX: the agent's Unix socket, and posix_spawn to start it. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client_os.h"
#include "signum/client.h"

#ifndef SG_AGENT_PATH
#define SG_AGENT_PATH "signum-agent"
#endif

extern char **environ;

int sg_default_socket(char *out, size_t out_len)
{
    const char *explicit_path = secure_getenv("SIGNUM_AGENT_SOCKET");
    const char *runtime = secure_getenv("XDG_RUNTIME_DIR");
    int n;
    if (explicit_path && *explicit_path)
        n = snprintf(out, out_len, "%s", explicit_path);
    else if (runtime && *runtime)
        n = snprintf(out, out_len, "%s/signum/agent.sock", runtime);
    else
        n = snprintf(out, out_len, "/tmp/signum-%lu/agent.sock", (unsigned long)getuid());
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

int sg_os_connect(const char *path, ipc_fd *out, int *absent, char *why, size_t why_len)
{
    struct sockaddr_un addr;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e;
    *absent = 0;
    if (fd < 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
        *out = fd;
        return 0;
    }
    e = errno;
    close(fd);
    *absent = e == ENOENT || e == ECONNREFUSED;
    snprintf(why, why_len, "%s", strerror(e));
    return -1;
}

/* Starts `signum-agent --daemon`; it returns once its socket is listening. */
int sg_os_start_agent(const char *socket_path, char *why, size_t why_len)
{
    const char *bin = secure_getenv("SIGNUM_AGENT");
    char *argv[5];
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc, status;

    if (!bin || !*bin)
        bin = SG_AGENT_PATH;
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
    return secure_getenv(name);
}

long sg_os_pid(void)
{
    return (long)getpid();
}

int sg_os_random(void *buf, size_t len)
{
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

void sg_os_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
