/* The client library on Windows: the agent's per-user named pipe
 * (\\.\pipe\signum-agent-<user SID>), and CreateProcess to start signum-agent.exe. */
#include <windows.h>
#include <bcrypt.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_os.h"
#include "signum/client.h"
#include "win_sid.h"

#define PIPE_BUSY_WAIT_MS 2000

int sg_win_current_sid(char *out, size_t out_len)
{
    return sg_win_process_sid(GetCurrentProcessId(), out, out_len);
}

int sg_win_process_sid(unsigned long pid, char *out, size_t out_len)
{
    HANDLE proc = pid == GetCurrentProcessId()
                      ? GetCurrentProcess()
                      : OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    HANDLE token = NULL;
    union {
        TOKEN_USER user;
        BYTE raw[256];
    } info;
    DWORD len = 0;
    char *text = NULL;
    int rc = -1;

    if (!proc)
        return -1;
    if (OpenProcessToken(proc, TOKEN_QUERY, &token) &&
        GetTokenInformation(token, TokenUser, &info, sizeof(info), &len) &&
        ConvertSidToStringSidA(info.user.User.Sid, &text) && strlen(text) < out_len) {
        memcpy(out, text, strlen(text) + 1);
        rc = 0;
    }
    if (text)
        LocalFree(text);
    if (token)
        CloseHandle(token);
    if (proc != GetCurrentProcess())
        CloseHandle(proc);
    return rc;
}

int sg_default_socket(char *out, size_t out_len)
{
    const char *explicit_path = getenv("SIGNUM_AGENT_SOCKET");
    char sid[184];
    int n;
    if (explicit_path && *explicit_path)
        n = snprintf(out, out_len, "%s", explicit_path);
    else if (sg_win_current_sid(sid, sizeof(sid)) == 0)
        n = snprintf(out, out_len, "\\\\.\\pipe\\signum-agent-%s", sid);
    else
        return -1;
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

static int widen(const char *in, wchar_t *out, int out_len)
{
    return MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, in, -1, out, out_len) > 0 ? 0 : -1;
}

int sg_os_connect(const char *endpoint, ipc_fd *out, int *absent, char *why, size_t why_len)
{
    wchar_t name[SG_ENDPOINT_MAX];
    char mine[184], theirs[184];
    ULONG server_pid = 0;
    HANDLE h;
    int busy = 0;

    *absent = 0;
    if (widen(endpoint, name, SG_ENDPOINT_MAX) != 0) {
        snprintf(why, why_len, "the pipe name is not valid UTF-8");
        return -1;
    }
    for (;;) {
        /* SECURITY_IDENTIFICATION: the agent may learn who we are, never act as us. */
        h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                        NULL);
        if (h != INVALID_HANDLE_VALUE)
            break;
        if (GetLastError() == ERROR_PIPE_BUSY && busy++ < 5) {
            /* Every instance is taken: the agent makes a new one as it accepts. */
            WaitNamedPipeW(name, PIPE_BUSY_WAIT_MS);
            continue;
        }
        *absent = GetLastError() == ERROR_FILE_NOT_FOUND;
        snprintf(why, why_len, "CreateFile on the pipe failed (error %lu)", GetLastError());
        return -1;
    }
    /* Whoever created the pipe must be our own user: a squatter under another account
     * would otherwise receive our API key and digests. */
    if (!GetNamedPipeServerProcessId(h, &server_pid) ||
        sg_win_process_sid(server_pid, theirs, sizeof(theirs)) != 0 ||
        sg_win_current_sid(mine, sizeof(mine)) != 0 || strcmp(mine, theirs) != 0) {
        CloseHandle(h);
        snprintf(why, why_len, "the process serving %s (pid %lu) is not running as this user",
                 endpoint, (unsigned long)server_pid);
        return -1;
    }
    *out = (ipc_fd)h;
    return 0;
}

/* Where the installer records the agent (a provider registered in System32, such as the KSP,
 * does not sit beside it). */
#define SG_INSTALL_KEY   L"SOFTWARE\\Signum"
#define SG_INSTALL_VALUE L"AgentPath"

/* The installed agent's path from HKLM\SOFTWARE\Signum\AgentPath; 0 or -1. Always the 64-bit
 * registry view: the x64 installer writes it there, and inside a 32-bit host (an x86 provider)
 * HKLM\SOFTWARE would otherwise be redirected to WOW6432Node. */
static int installed_agent(wchar_t *out, DWORD out_len)
{
    DWORD type = 0, size = (out_len - 1) * sizeof(wchar_t);
    HKEY key;
    LSTATUS st;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, SG_INSTALL_KEY, 0, KEY_QUERY_VALUE | KEY_WOW64_64KEY,
                      &key) != ERROR_SUCCESS)
        return -1;
    st = RegGetValueW(key, NULL, SG_INSTALL_VALUE, RRF_RT_REG_SZ, &type, out, &size);
    RegCloseKey(key);
    if (st != ERROR_SUCCESS || size < 2 * sizeof(wchar_t))
        return -1;
    out[out_len - 1] = L'\0';
    return GetFileAttributesW(out) == INVALID_FILE_ATTRIBUTES ? -1 : 0;
}

/* The agent binary: SIGNUM_AGENT, else the installed one (the registry), else
 * signum-agent.exe beside the module (DLL or EXE) this library is linked into. */
static int agent_path(wchar_t *out, DWORD out_len)
{
    const char *bin = getenv("SIGNUM_AGENT");
    HMODULE self = NULL;
    DWORD n;
    wchar_t *slash;

    if (bin && *bin)
        return widen(bin, out, (int)out_len);
    if (installed_agent(out, out_len) == 0)
        return 0;
    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCWSTR)(void *)agent_path, &self))
        return -1;
    n = GetModuleFileNameW(self, out, out_len);
    if (n == 0 || n >= out_len)
        return -1;
    slash = wcsrchr(out, L'\\');
    if (!slash || (size_t)(slash + 1 - out) + 17 > out_len)
        return -1;
    wcscpy(slash + 1, L"signum-agent.exe");
    return 0;
}

int sg_os_start_agent(const char *endpoint, char *why, size_t why_len)
{
    wchar_t exe[MAX_PATH + 1], pipe[SG_ENDPOINT_MAX], cmd[MAX_PATH + SG_ENDPOINT_MAX + 64];
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;

    if (agent_path(exe, MAX_PATH + 1) != 0 || widen(endpoint, pipe, SG_ENDPOINT_MAX) != 0) {
        snprintf(why, why_len,
                 "cannot locate signum-agent.exe (reinstall Signum or set SIGNUM_AGENT)");
        return -1;
    }
    _snwprintf(cmd, sizeof(cmd) / sizeof(cmd[0]), L"\"%ls\" --daemon --socket \"%ls\"", exe, pipe);
    cmd[sizeof(cmd) / sizeof(cmd[0]) - 1] = L'\0';
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    if (!CreateProcessW(exe, cmd, NULL, NULL, FALSE,
                        DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_UNICODE_ENVIRONMENT,
                        NULL, NULL, &si, &pi)) {
        snprintf(why, why_len, "cannot start signum-agent.exe (error %lu)", GetLastError());
        return -1;
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return 0;
}

const char *sg_os_getenv(const char *name)
{
    return getenv(name);
}

long sg_os_pid(void)
{
    return (long)GetCurrentProcessId();
}

int sg_os_random(void *buf, size_t len)
{
    return BCryptGenRandom(NULL, buf, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0 ? 0 : -1;
}

void sg_os_sleep_ms(int ms)
{
    Sleep((DWORD)ms);
}
