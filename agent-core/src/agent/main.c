/* signum-agent on POSIX: the per-user process that holds the Signum session for every signing
 * tool (start-up, daemonising, the socket and its lock; main_win.c is the Windows one). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "signum/os.h"
#include "../common/posix_os.h"
#include "agent.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: signum-agent [--foreground | --daemon] [--socket PATH]\n"
            "\n"
            "The per-user Signum Agent: holds the login and the HTTPS connection to the\n"
            "signing server for every signing tool of this user. Tools start it on demand;\n"
            "it exits after idle_timeout seconds without clients.\n"
            "\n"
            "  --foreground     run attached, logging to stderr (the default)\n"
            "  --daemon         detach; the first process exits 0 once the socket is ready\n"
            "  --socket PATH    listen here (default: $XDG_RUNTIME_DIR/signum/agent.sock)\n"
            "\n"
            "Configuration: /etc/signum/agent.conf, then $SIGNUM_CONFIG or\n"
            "$XDG_CONFIG_HOME/signum/agent.conf, then the environment (SIGNUM_SERVER,\n"
            "SIGNUM_API_KEY, SIGNUM_CA_FILE, SIGNUM_IDLE_TIMEOUT, ...; see agent-core/README.md).\n"
            "SIGNUM_DEBUG=agent,http,ipc,auth,cache (or all) adds debug logs.\n");
}

/* Creates the socket's directory 0700 (and on macOS its missing parents) and checks it is ours and
 * private (the same check as the client library's, client_posix.c): a directory another user made,
 * a link, or one others may write would let them take the socket over. */
static int prepare_dir(const char *socket_path, char *dir, size_t dir_len)
{
    char why[512];
    char *slash;
    snprintf(dir, dir_len, "%s", socket_path);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        fprintf(stderr, "signum-agent: socket path %s needs a directory\n", socket_path);
        return -1;
    }
    *slash = '\0';
    if (sg_px_make_socket_parents(dir, why, sizeof(why)) != 0) {
        fprintf(stderr, "signum-agent: %s\n", why);
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "signum-agent: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (sg_os_check_socket_dir(socket_path, why, sizeof(why)) != 0) {
        fprintf(stderr, "signum-agent: %s; refusing to listen there\n", why);
        return -1;
    }
    return 0;
}

static int listen_on(const char *path)
{
    struct sockaddr_un addr;
    int fd = sg_px_socket();
    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    unlink(path); /* a stale socket: we hold the lock, so no live agent owns it */
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || chmod(path, 0600) != 0 ||
        listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* A listening socket handed over by systemd socket activation (LISTEN_FDS), or -1. */
static int systemd_socket(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    struct stat sb;
    if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid() || strcmp(fds, "1") != 0)
        return -1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (fstat(3, &sb) != 0 || !S_ISSOCK(sb.st_mode))
        return -1;
    fcntl(3, F_SETFD, FD_CLOEXEC);
    return 3;
}

int main(int argc, char **argv)
{
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)], dir[PATH_MAX];
    char lock_path[PATH_MAX + 16], log_path[PATH_MAX + 16];
    const char *dbg = sg_os_getenv("SIGNUM_DEBUG");
    int daemon_mode = 0, ready_pipe[2] = {-1, -1}, lock_fd, c, rc = 1, activated = 0;
    ag_config cfg;
    ag_error err;
    ag_transport *t = NULL;
    ag_session *session = NULL;
    ag_server srv;

    umask(077);
    ag_log_init(dbg);
    if ((c = ag_cli_parse(argc, argv, usage, &daemon_mode, socket_path, sizeof(socket_path))) >= 0)
        return c;
    if (!socket_path[0] && sg_default_socket(socket_path, sizeof(socket_path)) != 0) {
        fprintf(stderr, "signum-agent: default socket path too long\n");
        return 2;
    }
    if (prepare_dir(socket_path, dir, sizeof(dir)) != 0)
        return 1;
    if (ag_config_load(&cfg, &err) != SG_OK) {
        fprintf(stderr, "signum-agent: configuration: %s\n", err.message);
        return 1;
    }

    if (daemon_mode) {
        pid_t pid;
        char status = 1;
        if (sg_px_pipe(ready_pipe) != 0 || (pid = fork()) < 0) {
            perror("signum-agent: fork");
            return 1;
        }
        if (pid > 0) {
            /* The starter waits until the child says it listens (or failed). */
            close(ready_pipe[1]);
            if (read(ready_pipe[0], &status, 1) != 1)
                status = 1;
            return status;
        }
        close(ready_pipe[0]);
        setsid();
        snprintf(log_path, sizeof(log_path), "%s/agent.log", dir);
        {
            int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
            int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (nul >= 0) {
                dup2(nul, 0);
                dup2(logfd >= 0 ? logfd : nul, 1);
                dup2(logfd >= 0 ? logfd : nul, 2);
            }
            if (nul > 2)
                close(nul);
            if (logfd > 2)
                close(logfd);
        }
        /* Nothing of the tool that started us stays open here but the ready pipe. */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != ready_pipe[1])
                close(fd);
        if (chdir("/") != 0)
            ag_log("agent", "chdir /: %s", strerror(errno));
    }

    /* One agent per socket: the lock is held for the agent's whole life. */
    snprintf(lock_path, sizeof(lock_path), "%s.lock", socket_path);
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        ag_log("agent", "cannot open %s: %s", lock_path, strerror(errno));
        goto out;
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        /* Another agent got there first; it serves this user. */
        ag_log("agent", "another agent already serves %s", socket_path);
        rc = 0;
        goto out;
    }
    memset(&srv, 0, sizeof(srv));
    srv.listen_fd = systemd_socket();
    activated = srv.listen_fd >= 0;
    if (srv.listen_fd < 0)
        srv.listen_fd = listen_on(socket_path);
    if (srv.listen_fd < 0) {
        ag_log("agent", "cannot listen on %s: %s", socket_path, strerror(errno));
        goto out;
    }
    if (ag_transport_new(&cfg, "signum-agent/" SIGNUM_VERSION, &t, &err) != SG_OK ||
        ag_session_new(&cfg, t, &session, &err) != SG_OK) {
        ag_log("agent", "%s", err.message);
        goto out;
    }
    srv.cfg = &cfg;
    srv.session = session;
    srv.socket_path = socket_path;
    ag_log("agent", "listening on %s (servers: %u, config: %s)", socket_path, cfg.server_count,
           cfg.sources[0] ? cfg.sources : "environment only");
    if (ready_pipe[1] >= 0) {
        char ok = 0;
        if (write(ready_pipe[1], &ok, 1) != 1)
            ag_log("agent", "cannot report readiness");
        close(ready_pipe[1]);
        ready_pipe[1] = -1;
    }
    srv.lock_fd = lock_fd;
    srv.activated = activated;
    rc = ag_serve(&srv); /* releases the socket path and the lock itself */
    lock_fd = -1;
    if (rc != 0) {
        /* A connection thread is still inside a server call: leave without freeing what it
         * uses; the kernel reclaims everything. */
        ag_log("agent", "exiting with a request still in flight");
        _exit(1);
    }
out:
    if (ready_pipe[1] >= 0) {
        char status = (char)(rc == 0 ? 0 : 1);
        if (write(ready_pipe[1], &status, 1) != 1)
            rc = 1;
        close(ready_pipe[1]);
    }
    if (lock_fd >= 0)
        close(lock_fd);
    ag_session_free(session);
    ag_transport_free(t);
    memset(&cfg, 0, sizeof(cfg)); /* holds the API key, if configured */
    return rc;
}
