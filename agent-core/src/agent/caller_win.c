/* Who is calling on Windows: the pipe's client process id from the kernel
 * (GetNamedPipeClientProcessId), its image path (QueryFullProcessImageNameW) and, where the
 * OS tells, its command line (NtQueryInformationProcess, ProcessCommandLineInformation, looked
 * up in ntdll at run time; left empty when unavailable). All UTF-8. */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "../common/win_acl.h"

#define PROCESS_COMMAND_LINE_INFORMATION 60 /* PROCESSINFOCLASS, Windows 8.1 and later */

typedef LONG(WINAPI *nt_query_fn)(HANDLE, ULONG, PVOID, ULONG, PULONG);

typedef struct {
    USHORT length, maximum_length;
    PWSTR buffer;
} ag_unicode_string;

int ag_hostname(char *out, size_t len)
{
    wchar_t w[256];
    DWORD n = 256;
    if (!GetComputerNameExW(ComputerNameDnsHostname, w, &n) || n == 0)
        return -1;
    return ag_win_narrow(w, out, (int)len);
}

/* The command line of proc into out (UTF-8), or "" if the OS does not say. */
static void command_line(HANDLE proc, char *out, size_t len)
{
    static nt_query_fn query;
    union {
        ag_unicode_string us;
        BYTE raw[8192 * sizeof(wchar_t) + sizeof(ag_unicode_string)];
    } *buf = NULL;
    ULONG got = 0;
    wchar_t *w;
    size_t chars;

    out[0] = '\0';
    if (!query) {
        HMODULE nt = GetModuleHandleW(L"ntdll.dll");
        query = nt ? (nt_query_fn)(void *)GetProcAddress(nt, "NtQueryInformationProcess") : NULL;
        if (!query)
            return;
    }
    buf = malloc(sizeof(*buf));
    if (!buf)
        return;
    {
        LONG ns = query(proc, PROCESS_COMMAND_LINE_INFORMATION, buf, sizeof(*buf), &got);
        if (ns != 0 || got < sizeof(ag_unicode_string) || !buf->us.buffer) {
            ag_debug("ipc", "no command line for the caller (NTSTATUS 0x%lx)", (unsigned long)ns);
            goto out;
        }
    }
    w = buf->us.buffer;
    chars = buf->us.length / sizeof(wchar_t);
    /* The string must lie inside what we were given. */
    if ((BYTE *)w < buf->raw || (BYTE *)(w + chars) > buf->raw + got)
        goto out;
    {
        wchar_t tmp[4097];
        if (chars >= sizeof(tmp) / sizeof(tmp[0]))
            chars = sizeof(tmp) / sizeof(tmp[0]) - 1;
        memcpy(tmp, w, chars * sizeof(wchar_t));
        tmp[chars] = L'\0';
        int n = WideCharToMultiByte(CP_UTF8, 0, tmp, -1, out, (int)len, NULL, NULL);
        if (n <= 1) {
            out[0] = '\0';
        } else {
            /* Secrets out before the command line goes anywhere (see ag_ctx_redact). */
            char *shown = malloc(len);
            if (shown) {
                size_t m = ag_ctx_redact(out, (size_t)(n - 1), ' ', shown, len - 1);
                memcpy(out, shown, m);
                out[m] = '\0';
                SecureZeroMemory(shown, len);
                free(shown);
            } else {
                out[0] = '\0';
            }
        }
    }
out:
    free(buf);
}

int ag_caller_identify(ipc_fd fd, ag_caller *out)
{
    ULONG pid = 0;
    HANDLE proc;
    wchar_t image[AG_PATH_MAX];
    DWORD n = AG_PATH_MAX;

    memset(out, 0, sizeof(*out));
    out->uid = -1;
    if (!GetNamedPipeClientProcessId((HANDLE)fd, &pid))
        return -1;
    out->pid = (long)pid;
    proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (!proc)
        return 0; /* gone already: the pid is all we know */
    if (QueryFullProcessImageNameW(proc, 0, image, &n) && n > 0 &&
        ag_win_narrow(image, out->exe, sizeof(out->exe)) != 0)
        out->exe[0] = '\0';
    command_line(proc, out->cmdline, sizeof(out->cmdline));
    CloseHandle(proc);
    return 0;
}
