/* The one map from the client library's status to SECURITY_STATUS (documented in
 * windows-ksp/README.md: change both together), and the small helpers every entry point uses
 * to hand values out. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ksp.h"
#include "signum/common/debug.h"

SECURITY_STATUS ksp_map_status(sg_status st, ksp_context ctx)
{
    switch (st) {
    case SG_OK: return ERROR_SUCCESS;
    /* The agent is our device: not running and not startable, or cut off from every server.
     * NTE_DEVICE_NOT_READY says "try again later"; NTE_PROVIDER_DLL_FAIL would blame the DLL. */
    case SG_ERR_AGENT_UNAVAILABLE:
    case SG_ERR_NETWORK: return NTE_DEVICE_NOT_READY;
    case SG_ERR_TIMEOUT: return HRESULT_FROM_WIN32(ERROR_TIMEOUT);
    /* No credentials: a smart card KSP's "no PIN was presented"; a refused PIN is wrong. */
    case SG_ERR_NOT_LOGGED_IN:
    case SG_ERR_AUTH_FAILED:
        return ctx == KSP_CTX_LOGIN ? NTE_INCORRECT_PASSWORD : SCARD_W_CARD_NOT_AUTHENTICATED;
    /* Policy, a missing grant or a disabled key: the server said no to this signature. */
    case SG_ERR_DENIED: return NTE_PERM;
    /* A spent policy quota: refused, like a denial. */
    case SG_ERR_QUOTA_EXCEEDED: return NTE_PERM;
    /* The key left the listing after the handle was opened. */
    case SG_ERR_KEY_NOT_FOUND: return NTE_BAD_KEYSET;
    case SG_ERR_SERVER:
    case SG_ERR_HSM:
    case SG_ERR_PROTOCOL:
    case SG_ERR_INTERNAL: return NTE_INTERNAL_ERROR;
    case SG_ERR_BAD_INPUT: return ctx == KSP_CTX_SIGN ? NTE_BAD_DATA : NTE_INVALID_PARAMETER;
    case SG_ERR_NOMEM: return NTE_NO_MEMORY;
    case SG_ERR_BUFFER_TOO_SMALL: return NTE_BUFFER_TOO_SMALL;
    case SG_ERR_UNSUPPORTED: return NTE_NOT_SUPPORTED;
    case SG_STATUS_COUNT: break;
    }
    return NTE_INTERNAL_ERROR;
}

SECURITY_STATUS ksp_put(const void *val, DWORD len, PBYTE out, DWORD cb, DWORD *res)
{
    if (!res)
        return NTE_INVALID_PARAMETER;
    *res = len;
    if (!out)
        return ERROR_SUCCESS; /* a size query */
    if (cb < len)
        return NTE_BUFFER_TOO_SMALL;
    memcpy(out, val, len);
    return ERROR_SUCCESS;
}

SECURITY_STATUS ksp_put_wstr(const WCHAR *s, PBYTE out, DWORD cb, DWORD *res)
{
    return ksp_put(s, (DWORD)((wcslen(s) + 1) * sizeof(WCHAR)), out, cb, res);
}

int ksp_utf8_to_w(const char *in, WCHAR *out, size_t out_len)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, in, -1, out, (int)out_len);
    return n > 0 ? 0 : -1;
}

int ksp_w_to_utf8(const WCHAR *in, size_t in_len, char *out, size_t out_len)
{
    int n;
    if (out_len == 0 || in_len > INT_MAX)
        return -1;
    if (in_len == 0) {
        out[0] = '\0';
        return 0;
    }
    n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, in, (int)in_len, out, (int)out_len - 1,
                            NULL, NULL);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    return 0;
}

static int debug_on(void)
{
    static volatile LONG state; /* 0 unknown, 1 off, 2 on */
    if (state == 0) {
        const char *v = getenv("SIGNUM_DEBUG");
        InterlockedExchange(&state, sgc_debug_has(v, "ksp") ? 2 : 1);
    }
    return state == 2;
}

void ksp_debug(const char *fmt, ...)
{
    va_list ap;
    if (!debug_on())
        return;
    va_start(ap, fmt);
    fputs("signumksp: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
