/* wakebench: what one hand-off between two threads of different processes costs on this
 * machine, the floor under every hop of a remote signature (module -> agent -> server loop ->
 * worker and back). Two processes pass one byte back and forth ROUNDS times (bounded by
 * SECONDS) over a Unix socket pair and over TCP on 127.0.0.1; one round trip is two wake-ups.
 * Prints one JSON line: the median and p99 round trip in microseconds for each transport.
 * Usage: wakebench [ROUNDS] [SECONDS] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 200000

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Echoes bytes until the peer closes. */
static void echo(int fd)
{
    char c;
    while (read(fd, &c, 1) == 1)
        if (write(fd, &c, 1) != 1)
            break;
    _exit(0);
}

/* Runs the ping side on fd; returns the number of rounds measured (0 on failure). */
static long ping(int fd, long rounds, double seconds, double *rtt)
{
    double start = now_us();
    long n = 0;
    char c = 'x';
    for (; n < rounds && now_us() - start < seconds * 1e6; n++) {
        double t0 = now_us();
        if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1)
            return 0;
        rtt[n] = now_us() - t0;
    }
    return n;
}

static int report(const char *name, double *rtt, long n, int last)
{
    if (n <= 0) {
        fprintf(stderr, "wakebench: %s: no round trip completed\n", name);
        return 1;
    }
    qsort(rtt, (size_t)n, sizeof(*rtt), cmp);
    printf("\"%s\":{\"rounds\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f}%s", name, n, rtt[n / 2],
           rtt[(long)((double)n * 0.99)], last ? "" : ",");
    return 0;
}

static long unix_pair(long rounds, double seconds, double *rtt)
{
    int sv[2];
    pid_t pid;
    long n;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 0;
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        echo(sv[1]);
    }
    close(sv[1]);
    n = pid > 0 ? ping(sv[0], rounds, seconds, rtt) : 0;
    close(sv[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return n;
}

static long tcp_loopback(long rounds, double seconds, double *rtt)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), fd = -1;
    pid_t pid = -1;
    long n = 0;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
        goto out;
    pid = fork();
    if (pid == 0) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            _exit(1);
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        echo(c);
    }
    if (pid < 0 || (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        goto out;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    n = ping(fd, rounds, seconds, rtt);
out:
    if (fd >= 0)
        close(fd);
    if (ls >= 0)
        close(ls);
    if (pid > 0) {
        if (n == 0)
            kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return n;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 20000;
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    double *rtt;
    int rc = 0;

    if (argc > 3 || rounds < 1 || rounds > MAX_ROUNDS || seconds <= 0 || seconds > 60) {
        fprintf(stderr, "usage: wakebench [ROUNDS 1-%d] [SECONDS (0-60]]\n", MAX_ROUNDS);
        return 2;
    }
    rtt = calloc((size_t)rounds, sizeof(*rtt));
    if (!rtt)
        return 1;
    printf("{");
    rc |= report("unix_socket", rtt, unix_pair(rounds, seconds, rtt), 0);
    rc |= report("tcp_loopback", rtt, tcp_loopback(rounds, seconds, rtt), 1);
    printf("}\n");
    free(rtt);
    return rc;
}
