/* The agent's IPC listener on POSIX: a Unix socket, a thread per connection (a stalled client
 * holds only its own thread), peers of another uid refused (SO_PEERCRED). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/posix_os.h"
#include "agent.h"
#include "ipcserver.h"

#define MAX_CONNECTIONS 512

static atomic_int active_connections;

/* Open connections, so shutdown can wake threads blocked reading from idle clients. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static int registry[MAX_CONNECTIONS];

static void registry_set(int fd, int add)
{
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        if (add && registry[i] == 0) {
            registry[i] = fd + 1;
            break;
        }
        if (!add && registry[i] == fd + 1) {
            registry[i] = 0;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

static void registry_shutdown_all(void)
{
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < MAX_CONNECTIONS; i++)
        if (registry[i])
            shutdown(registry[i] - 1, SHUT_RDWR);
    pthread_mutex_unlock(&registry_lock);
}

typedef struct {
    ag_server *srv;
    int fd;
} conn;

static void *serve_connection(void *arg)
{
    conn *c = arg;
    ag_server *srv = c->srv;
    ag_caller caller;
    int fd = c->fd;

    free(c);
    if (ag_caller_identify(fd, &caller) != 0 || caller.uid != (long)geteuid()) {
        /* Only our own user may use our session. */
        ag_log("ipc", "refused a connection from uid %ld (pid %ld)", caller.uid, caller.pid);
        ag_conn_refuse(fd, SG_ERR_DENIED, "this agent serves only its own user");
        goto out;
    }
    ag_debug("ipc", "connection from pid %ld (%s)", caller.pid, caller.exe);
    ag_conn_serve(srv, fd, &caller, NULL, NULL);
out:
    registry_set(fd, 0);
    close(fd);
    atomic_fetch_sub(&active_connections, 1);
    ag_activity_touch();
    return NULL;
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

int ag_serve(ag_server *srv)
{
    struct sigaction sa;
    pthread_attr_t attr;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    ag_activity_touch();

    while (!got_signal && !ag_stop_requested()) {
        struct pollfd p = {srv->listen_fd, POLLIN, 0};
        int rc = poll(&p, 1, 500);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0) {
            int fd = sg_px_accept(srv->listen_fd);
            conn *c;
            pthread_t th;
            if (fd < 0)
                continue;
            if (atomic_load(&active_connections) >= MAX_CONNECTIONS) {
                ag_conn_refuse(fd, SG_ERR_SERVER, "agent busy: too many connections");
                close(fd);
                continue;
            }
            c = malloc(sizeof(*c));
            if (!c) {
                close(fd);
                continue;
            }
            c->srv = srv;
            c->fd = fd;
            atomic_fetch_add(&active_connections, 1);
            registry_set(fd, 1);
            ag_activity_touch();
            if (pthread_create(&th, &attr, serve_connection, c) != 0) {
                registry_set(fd, 0);
                atomic_fetch_sub(&active_connections, 1);
                close(fd);
                free(c);
            }
            continue;
        }
        if (srv->cfg->idle_timeout > 0 && atomic_load(&active_connections) == 0 &&
            time(NULL) - ag_activity_last() >= srv->cfg->idle_timeout) {
            ag_log("agent", "idle for %d s with no clients; exiting", srv->cfg->idle_timeout);
            break;
        }
    }
    pthread_attr_destroy(&attr);
    if (got_signal)
        ag_log("agent", "signal %d; exiting", (int)got_signal);
    /* Give up the socket path and the lock first, so a tool arriving now starts (or finds) a
     * new agent instead of a dying one; connections already accepted still finish. */
    if (!srv->activated)
        unlink(srv->socket_path);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    if (srv->lock_fd >= 0) {
        close(srv->lock_fd);
        srv->lock_fd = -1;
    }
    /* Wake every connection thread and let it finish before the session goes away. */
    ag_request_stop();
    registry_shutdown_all();
    for (int i = 0; i < 500 && atomic_load(&active_connections) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&active_connections) > 0 ? 1 : 0;
}
