/* The one map from the client library's status to the codes a CSP sets with SetLastError, the
 * debug log, and the shared output helper. The table is documented in windows-csp/README.md;
 * change both. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "csp.h"
#include "signum/common/debug.h"

/* SIGNUM_DEBUG names "csp" or "all" (signum/common/debug.h). Read on each call: the log is
 * only written on failures and a few milestones. */
static int debug_enabled(void)
{
    char buf[256];
    DWORD n = GetEnvironmentVariableA("SIGNUM_DEBUG", buf, sizeof(buf));
    if (n == 0 || n >= sizeof(buf))
        return 0;
    return sgc_debug_has(buf, "csp");
}

void csp_debug(const char *fmt, ...)
{
    char line[1024], path[MAX_PATH];
    va_list ap;
    int n;
    DWORD len, written;
    HANDLE f;

    if (!debug_enabled())
        return;
    n = snprintf(line, sizeof(line), "signumcsp[%lu:%lu] ", (unsigned long)GetCurrentProcessId(),
                 (unsigned long)GetCurrentThreadId());
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    len = GetEnvironmentVariableA("SIGNUM_CSP_LOG", path, sizeof(path));
    if (len == 0 || len >= sizeof(path)) {
        OutputDebugStringA(line);
        return;
    }
    f = CreateFileA(path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_ALWAYS,
                    FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return;
    WriteFile(f, line, (DWORD)strlen(line), &written, NULL);
    CloseHandle(f);
}

DWORD csp_map_status(sg_status st, csp_ctx ctx)
{
    if (st != SG_OK)
        csp_debug("client: %s: %s", sg_status_name(st), sg_last_error());
    switch (st) {
    case SG_OK: return ERROR_SUCCESS;
    /* The agent is our device: absent and not startable, or cut off from every server. */
    case SG_ERR_AGENT_UNAVAILABLE:
    case SG_ERR_NETWORK: return (DWORD)NTE_DEVICE_NOT_READY;
    /* No credentials: what a smart-card CSP says before its PIN is given; in a login, a
     * refused API key is a wrong PIN. */
    case SG_ERR_NOT_LOGGED_IN: return (DWORD)SCARD_W_CARD_NOT_AUTHENTICATED;
    case SG_ERR_AUTH_FAILED:
        return ctx == CSP_CTX_LOGIN ? (DWORD)SCARD_W_WRONG_CHV
                                    : (DWORD)SCARD_W_CARD_NOT_AUTHENTICATED;
    /* Policy, a missing grant or a disabled key: the server refused this signature. */
    case SG_ERR_DENIED: return (DWORD)NTE_PERM;
    /* A spent policy quota: refused, like a denial. */
    case SG_ERR_QUOTA_EXCEEDED: return (DWORD)NTE_PERM;
    /* No such container, or the key left the listing after we fetched it. */
    case SG_ERR_KEY_NOT_FOUND:
        return ctx == CSP_CTX_ACQUIRE ? (DWORD)NTE_BAD_KEYSET : (DWORD)NTE_NO_KEY;
    case SG_ERR_BAD_INPUT: return ctx == CSP_CTX_SIGN ? (DWORD)NTE_BAD_HASH : (DWORD)NTE_BAD_DATA;
    case SG_ERR_NOMEM: return (DWORD)NTE_NO_MEMORY;
    case SG_ERR_BUFFER_TOO_SMALL: return ERROR_MORE_DATA;
    case SG_ERR_UNSUPPORTED:
        return ctx == CSP_CTX_SIGN ? (DWORD)NTE_BAD_ALGID : (DWORD)NTE_NOT_SUPPORTED;
    case SG_ERR_TIMEOUT:
    case SG_ERR_SERVER:
    case SG_ERR_HSM:
    case SG_ERR_PROTOCOL:
    case SG_ERR_INTERNAL:
    case SG_STATUS_COUNT: break;
    }
    return (DWORD)NTE_FAIL;
}

BOOL csp_fail_at(const char *func, DWORD err)
{
    csp_debug("%s: 0x%08lx", func, (unsigned long)err);
    SetLastError(err);
    return FALSE;
}

BOOL csp_output(const void *src, DWORD len, BYTE *out, DWORD *out_len)
{
    if (!out_len)
        return csp_fail(ERROR_INVALID_PARAMETER);
    if (!out) {
        *out_len = len;
        return TRUE;
    }
    if (*out_len < len) {
        *out_len = len;
        return csp_fail(ERROR_MORE_DATA);
    }
    memcpy(out, src, len);
    *out_len = len;
    return TRUE;
}
