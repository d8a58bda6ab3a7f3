/* Who is calling on POSIX: the kernel's answer (SO_PEERCRED, /proc), not what the client
 * claims; and the host name for the audit context. */
#include <fcntl.h>
#include <limits.h>
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
    /* Raw bytes from /proc. Escaping never shortens, so more than the cap is never needed. */
    char raw[PATH_MAX > AG_CTX_COMMAND_LINE_MAX ? PATH_MAX : AG_CTX_COMMAND_LINE_MAX];
    ssize_t n;
    int cfd;

    memset(out, 0, sizeof(*out));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return -1;
    out->pid = cred.pid;
    out->uid = cred.uid;
    /* A path or an argument is bytes, not necessarily UTF-8 (a Latin-1 file name): escaped
     * losslessly into text the server's JSON parser takes, within the server's caps. */
    snprintf(path, sizeof(path), "/proc/%ld/exe", (long)cred.pid);
    n = readlink(path, raw, sizeof(raw));
    if (n > 0)
        ag_ctx_escape(raw, (size_t)n, out->exe, AG_CTX_APPLICATION_MAX);
    snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)cred.pid);
    cfd = open(path, O_RDONLY | O_CLOEXEC);
    if (cfd >= 0) {
        n = read(cfd, raw, AG_CTX_COMMAND_LINE_MAX);
        close(cfd);
        /* A PIN given on the command line is the API key: redacted there. */
        if (n > 0)
            ag_caller_command_line(raw, (size_t)n, out);
        explicit_bzero(raw, sizeof(raw));
    }
    return 0;
}
