/* Blocking I/O on a Unix stream socket with a deadline per call, for ipc.c. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "posix_os.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int timeout = deadline < 0 ? -1 : (int)(deadline - now_ms());
        int rc;
        if (deadline >= 0 && timeout <= 0)
            return -2;
        rc = poll(&p, 1, timeout);
        if (rc > 0)
            return 0;
        if (rc == 0)
            return -2;
        if (errno != EINTR)
            return -1;
    }
}

int ipc_write_all(ipc_fd fd, const void *buf, size_t len, int timeout_ms)
{
    const uint8_t *p = buf;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    while (len > 0) {
        ssize_t n = send(fd, p, len, SG_PX_SEND_FLAGS | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc != 0)
                return rc;
            continue;
        }
        return -1;
    }
    return 0;
}

int ipc_read_all(ipc_fd fd, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    while (len > 0) {
        ssize_t n;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc != 0)
            return rc;
        n = recv(fd, p, len, MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        return -1; /* EOF or error */
    }
    return 0;
}

void ipc_close(ipc_fd fd)
{
    close(fd);
}
