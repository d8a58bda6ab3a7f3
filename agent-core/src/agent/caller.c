/* Who is calling on POSIX: the kernel's answer (SO_PEERCRED, /proc), not what the client
 * claims; and the host name for the audit context. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

int ag_hostname(char *out, size_t len)
{
    if (len == 0 || gethostname(out, len - 1) != 0)
        return -1;
    out[len - 1] = '\0';
    return 0;
}

int ag_caller_identify(int fd, ag_caller *out)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    char path[64];
    ssize_t n;
    int cfd;

    memset(out, 0, sizeof(*out));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return -1;
    out->pid = cred.pid;
    out->uid = cred.uid;
    snprintf(path, sizeof(path), "/proc/%ld/exe", (long)cred.pid);
    n = readlink(path, out->exe, sizeof(out->exe) - 1);
    out->exe[n > 0 ? n : 0] = '\0';
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)cred.pid);
    cfd = open(path, O_RDONLY | O_CLOEXEC);
    if (cfd >= 0) {
        n = read(cfd, out->cmdline, sizeof(out->cmdline) - 1);
        close(cfd);
        if (n > 0) {
            /* Arguments are NUL-separated; show them space-separated, without a trailer. */
            for (ssize_t i = 0; i < n; i++)
                if (out->cmdline[i] == '\0')
                    out->cmdline[i] = ' ';
            while (n > 0 && out->cmdline[n - 1] == ' ')
                n--;
            out->cmdline[n] = '\0';
        }
    }
    return 0;
}
