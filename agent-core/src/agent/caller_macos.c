/* Who is calling on macOS: the kernel's answer, not what the client claims. The uid from
 * getpeereid, the pid from LOCAL_PEERPID, the executable from proc_pidpath and the arguments
 * from sysctl KERN_PROCARGS2 (argc, the exec path, then the NUL-separated arguments). Compiled
 * only on macOS (syntax-checked on Linux by tests/macos). */
#include <libproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysctl.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"

int ag_hostname(char *out, size_t len)
{
    if (len == 0 || gethostname(out, len - 1) != 0)
        return -1;
    out[len - 1] = '\0';
    return 0;
}

/* The arguments (after the exec path and its padding), NUL-separated as on Linux. The area
 * is read whole (KERN_ARGMAX bytes, the environment follows the arguments) into a buffer of
 * this thread's own: connections are served in parallel. */
static size_t process_args(pid_t pid, char *out, size_t cap)
{
    int mib[3] = {CTL_KERN, KERN_ARGMAX, 0}, argmax = 0, argc;
    size_t len = sizeof(argmax), pos, n = 0;
    char *buf;

    if (sysctl(mib, 2, &argmax, &len, NULL, 0) != 0 || argmax <= 0 || argmax > (1 << 24))
        return 0;
    buf = malloc((size_t)argmax);
    if (!buf)
        return 0;
    mib[1] = KERN_PROCARGS2;
    mib[2] = (int)pid;
    len = (size_t)argmax;
    if (sysctl(mib, 3, buf, &len, NULL, 0) != 0 || len < sizeof(argc))
        goto out;
    memcpy(&argc, buf, sizeof(argc));
    pos = sizeof(argc);
    while (pos < len && buf[pos])
        pos++; /* the exec path */
    while (pos < len && !buf[pos])
        pos++; /* its padding */
    for (; argc > 0 && pos < len && n < cap; argc--) {
        size_t a = strnlen(buf + pos, len - pos);
        size_t take = a + 1 <= cap - n ? a + 1 : cap - n;
        memcpy(out + n, buf + pos, take);
        n += take;
        pos += a + 1;
    }
out:
    ag_wipe(buf, (size_t)argmax);
    free(buf);
    return n;
}

int ag_caller_identify(int fd, ag_caller *out)
{
    char path[PROC_PIDPATHINFO_MAXSIZE], raw[AG_CTX_COMMAND_LINE_MAX];
    pid_t pid = 0;
    socklen_t len = sizeof(pid);
    uid_t uid;
    gid_t gid;
    size_t n;
    int plen;

    memset(out, 0, sizeof(*out));
    if (getpeereid(fd, &uid, &gid) != 0 ||
        getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &pid, &len) != 0 || len != sizeof(pid))
        return -1;
    out->pid = pid;
    out->uid = uid;
    plen = proc_pidpath(pid, path, sizeof(path));
    if (plen > 0)
        ag_ctx_escape(path, (size_t)plen, out->exe, AG_CTX_APPLICATION_MAX);
    n = process_args(pid, raw, sizeof(raw));
    if (n > 0)
        ag_caller_command_line(raw, n, out);
    return 0;
}
