/* The caller's command line on POSIX, from the kernel's NUL-separated arguments (/proc on
 * Linux, KERN_PROCARGS2 on macOS): secrets out, then shown space-separated, escaped. */
#include "agent.h"

void ag_caller_command_line(char *args, size_t len, ag_caller *out)
{
    char shown[AG_CTX_COMMAND_LINE_MAX];
    size_t m = ag_ctx_redact(args, len, '\0', shown, sizeof(shown));
    for (size_t i = 0; i < m; i++)
        if (shown[i] == '\0')
            shown[i] = ' ';
    while (m > 0 && shown[m - 1] == ' ')
        m--;
    ag_ctx_escape(shown, m, out->cmdline, AG_CTX_COMMAND_LINE_MAX);
    ag_wipe(shown, sizeof(shown));
    ag_wipe(args, len);
}
