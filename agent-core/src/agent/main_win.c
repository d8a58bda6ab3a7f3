/* signum-agent.exe: the per-user process that holds the Signum session for every signing tool
 * on Windows. The client library starts it detached (DETACHED_PROCESS) with
 * --daemon --socket <pipe>; it then logs to %LOCALAPPDATA%\Signum\agent.log. One agent per
 * pipe: the first pipe instance is ours alone (FILE_FLAG_FIRST_PIPE_INSTANCE). */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/client_os.h"
#include "agent.h"
#include "ipcserver.h"
#include "../common/win_acl.h"

#define PIPE_PREFIX "\\\\.\\pipe\\"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: signum-agent.exe [--foreground | --daemon] [--socket PIPE]\n"
            "\n"
            "The per-user Signum Agent: holds the login and the HTTPS connection to the\n"
            "signing server for every signing tool of this user. Tools start it on demand;\n"
            "it exits after idle_timeout seconds without clients.\n"
            "\n"
            "  --foreground     run attached, logging to stderr (the default)\n"
            "  --daemon         already detached by the starter: log to\n"
            "                   %%LOCALAPPDATA%%\\Signum\\agent.log\n"
            "  --socket PIPE    serve this named pipe (default:\n"
            "                   \\\\.\\pipe\\signum-agent-<user SID>, or SIGNUM_AGENT_SOCKET)\n"
            "\n"
            "Configuration: %%PROGRAMDATA%%\\Signum\\agent.conf, then SIGNUM_CONFIG or\n"
            "%%APPDATA%%\\Signum\\agent.conf, then the environment (SIGNUM_SERVER,\n"
            "SIGNUM_API_KEY, SIGNUM_CA_FILE, SIGNUM_IDLE_TIMEOUT, ...; see agent-core/README.md).\n"
            "SIGNUM_DEBUG=agent,http,ipc,auth,cache (or all) adds debug logs.\n");
}

/* Detached: stderr goes to agent.log in a directory private to the user. */
static void log_to_file(void)
{
    wchar_t *base = _wgetenv(L"LOCALAPPDATA"), dir[MAX_PATH], path[MAX_PATH + 16];
    SECURITY_ATTRIBUTES sa;
    HANDLE h;

    if (!base || !*base || _snwprintf(dir, MAX_PATH, L"%ls\\Signum", base) < 0)
        return;
    dir[MAX_PATH - 1] = L'\0';
    _snwprintf(path, MAX_PATH + 16, L"%ls\\agent.log", dir);
    path[MAX_PATH + 15] = L'\0';
    if (ag_win_private_sa(&sa, "OICI") == 0) {
        CreateDirectoryW(dir, &sa);
        ag_win_private_sa_free(&sa);
    }
    /* Created private if new; then appended to through the C runtime. */
    if (ag_win_private_sa(&sa, "") == 0) {
        h = CreateFileW(path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                        OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
        ag_win_private_sa_free(&sa);
        if (h != INVALID_HANDLE_VALUE)
            CloseHandle(h);
    }
    /* Not stderr: a detached process's C runtime may have no usable stream 2. */
    {
        FILE *f = _wfopen(path, L"a");
        if (f)
            ag_log_to(f);
    }
}

/* Does no instance of this pipe exist yet? FILE_FLAG_FIRST_PIPE_INSTANCE is the real guard;
 * Wine 8 ignores it, hence this look first (which a racing creator could still beat). */
static int pipe_is_free(const char *name)
{
    wchar_t w[SG_ENDPOINT_MAX];
    if (ag_win_widen(name, w, SG_ENDPOINT_MAX) != 0)
        return 1; /* ag_pipe_instance reports it */
    if (WaitNamedPipeW(w, 1) || GetLastError() != ERROR_FILE_NOT_FOUND) {
        SetLastError(ERROR_ACCESS_DENIED);
        return 0;
    }
    SetLastError(0);
    return 1;
}

int main(int argc, char **argv)
{
    char pipe_name[SG_ENDPOINT_MAX];
    int daemon_mode = 0, c, rc = 1;
    ag_config cfg;
    ag_error err;
    ag_transport *t = NULL;
    ag_session *session = NULL;
    ag_server srv;
    ipc_fd first;

    ag_log_init(getenv("SIGNUM_DEBUG"));
    if ((c = ag_cli_parse(argc, argv, usage, &daemon_mode, pipe_name, sizeof(pipe_name))) >= 0)
        return c;
    if (daemon_mode)
        log_to_file();
    if (!pipe_name[0] && sg_default_socket(pipe_name, sizeof(pipe_name)) != 0) {
        ag_log("agent", "cannot compute the default pipe name (user SID unavailable)");
        return 2;
    }
    if (_strnicmp(pipe_name, PIPE_PREFIX, strlen(PIPE_PREFIX)) != 0 ||
        strlen(pipe_name) == strlen(PIPE_PREFIX) || strchr(pipe_name + strlen(PIPE_PREFIX), '\\')) {
        ag_log("agent", "%s is not a local pipe name (\\\\.\\pipe\\NAME)", pipe_name);
        return 2;
    }
    if (ag_config_load(&cfg, &err) != SG_OK) {
        ag_log("agent", "configuration: %s", err.message);
        return 1;
    }
    first = pipe_is_free(pipe_name) ? ag_pipe_instance(pipe_name, 1) : -1;
    if (first == -1) {
        DWORD e = GetLastError();
        if (e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY)
            ag_log("agent",
                   "%s already exists: another signum-agent serves it, or another program "
                   "holds the name; not starting a second one",
                   pipe_name);
        else
            ag_log("agent", "cannot create the pipe %s (error %lu)", pipe_name, e);
        return 1;
    }
    if (ag_transport_new(&cfg, "signum-agent/" SIGNUM_VERSION, &t, &err) != SG_OK ||
        ag_session_new(&cfg, t, &session, &err) != SG_OK) {
        ag_log("agent", "%s", err.message);
        CloseHandle((HANDLE)first);
        goto out;
    }
    memset(&srv, 0, sizeof(srv));
    srv.cfg = &cfg;
    srv.session = session;
    srv.listen_fd = first;
    srv.socket_path = pipe_name;
    srv.lock_fd = -1;
    ag_log("agent", "listening on %s (servers: %u, config: %s)", pipe_name, cfg.server_count,
           cfg.sources[0] ? cfg.sources : "environment only");
    rc = ag_serve(&srv);
    if (rc != 0) {
        /* A connection thread is still inside a server call: leave without freeing what it
         * uses; Windows reclaims everything. */
        ag_log("agent", "exiting with a request still in flight");
        ExitProcess(1);
    }
out:
    ag_session_free(session);
    ag_transport_free(t);
    SecureZeroMemory(&cfg, sizeof(cfg)); /* holds the API key, if configured */
    return rc;
}
