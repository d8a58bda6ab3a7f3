/* The module's debug log: SIGNUM_DEBUG=p11 (or all) turns it on; lines go to the file named by
 * SIGNUM_P11_LOG (appended) or to stderr. One write per line, never a secret. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p11.h"
#include "signum/common/debug.h"
#include "signum/os.h"

static int enabled;
static int fd = -1;

void p11_log_init(void)
{
    const char *path = sg_os_getenv("SIGNUM_P11_LOG");
    enabled = sgc_debug_has(sg_os_getenv("SIGNUM_DEBUG"), "p11");
    if (fd >= 0 && fd != STDERR_FILENO)
        close(fd);
    fd = STDERR_FILENO;
    if (enabled && path && *path) {
        int f = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (f >= 0)
            fd = f;
    }
}

int p11_log_enabled(void)
{
    return enabled;
}

void p11_debug(const char *fmt, ...)
{
    char line[1200];
    struct timespec ts;
    va_list ap;
    int n;

    if (!enabled)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    n = snprintf(line, sizeof(line), "signum-p11[%ld] %lld.%03ld ", (long)getpid(),
                 (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(fd, line, (size_t)n) < 0)
        return; /* nowhere left to say so */
}
