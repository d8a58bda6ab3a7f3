/* Outbound connections and back-off; see net.h. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

int srv_net_connect(const char *host, const char *port, int type, unsigned connect_ms,
                    unsigned io_ms, char *why, size_t why_len)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct timeval tv = {(time_t)(io_ms / 1000), (suseconds_t)(io_ms % 1000) * 1000};
    int rc, fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = type;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, why_len, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd p;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            p.fd = fd;
            p.events = POLLOUT;
            rc = poll(&p, 1, (int)connect_ms) == 1 &&
                         getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0
                     ? 0
                     : -1;
            errno = soerr ? soerr : rc ? ETIMEDOUT : 0;
        }
        if (rc == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(why, why_len, "cannot connect: %s", strerror(errno));
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    }
    return fd;
}

unsigned srv_backoff_ms(unsigned failures, unsigned base_ms, unsigned cap_s)
{
    uint64_t ms = base_ms, cap = (uint64_t)cap_s * 1000u;
    uint8_t r[2] = {0, 0};
    for (unsigned i = 1; i < failures && ms < cap; i++)
        ms *= 2;
    if (ms > cap)
        ms = cap;
    srv_random(r, sizeof(r), NULL);
    return (unsigned)(ms / 2 + (ms / 2) * (((unsigned)r[0] << 8) | r[1]) / 65535u);
}
