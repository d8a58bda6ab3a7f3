/* The agent's IPC listener on Windows: the per-user named pipe (a DACL granting only the
 * user, remote clients rejected, the first instance ours alone), a client SID check per
 * connection (impersonation at identification level), and a thread per connection with a
 * bounded count, so a stalled client holds only its own thread. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "ipcserver.h"
#include "../common/win_acl.h"

#define MAX_CONNECTIONS 128
#define PIPE_BUFFER     65536
#define ACCEPT_POLL_MS  500

static volatile LONG active_connections;
static volatile LONG got_signal;

/* Open connections, so shutdown can cancel reads blocked on idle clients. */
static CRITICAL_SECTION registry_lock;
static HANDLE registry[MAX_CONNECTIONS];

static void registry_set(HANDLE h, int add)
{
    EnterCriticalSection(&registry_lock);
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        if (add && registry[i] == NULL) {
            registry[i] = h;
            break;
        }
        if (!add && registry[i] == h) {
            registry[i] = NULL;
            break;
        }
    }
    LeaveCriticalSection(&registry_lock);
}

static void registry_cancel_all(void)
{
    EnterCriticalSection(&registry_lock);
    for (int i = 0; i < MAX_CONNECTIONS; i++)
        if (registry[i])
            CancelIoEx(registry[i], NULL);
    LeaveCriticalSection(&registry_lock);
}

ipc_fd ag_pipe_instance(const char *name, int first)
{
    wchar_t wname[256];
    SECURITY_ATTRIBUTES sa;
    HANDLE h;
    DWORD e;

    if (ag_win_widen(name, wname, 256) != 0) {
        SetLastError(ERROR_INVALID_NAME);
        return -1;
    }
    if (ag_win_private_sa(&sa, "") != 0)
        return -1;
    h = CreateNamedPipeW(
        wname,
        PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
        PIPE_UNLIMITED_INSTANCES, PIPE_BUFFER, PIPE_BUFFER, 0, &sa);
    e = GetLastError();
    ag_win_private_sa_free(&sa);
    SetLastError(e);
    return h == INVALID_HANDLE_VALUE ? -1 : (ipc_fd)h;
}

/* The first frame has arrived: only now can the client be impersonated. Its token must be our
 * user's; then the kernel tells us its pid and image. */
static int check_client(ipc_fd fd, ag_caller *caller, void *ctx)
{
    HANDLE token = NULL;
    ag_win_user me, them;
    DWORD n = 0;
    int same = 0;

    (void)ctx;
    if (ag_win_current_user(&me) != 0)
        return -1;
    if (!ImpersonateNamedPipeClient((HANDLE)fd)) {
        ag_log("ipc", "cannot identify a pipe client (error %lu); refused", GetLastError());
        return -1;
    }
    if (OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token) &&
        GetTokenInformation(token, TokenUser, &them, sizeof(them), &n))
        same = EqualSid(me.tu.User.Sid, them.tu.User.Sid);
    if (!RevertToSelf()) {
        /* Never go on running as somebody else. */
        ag_log("ipc", "RevertToSelf failed (error %lu); exiting", GetLastError());
        ExitProcess(1);
    }
    if (token)
        CloseHandle(token);
    ag_caller_identify(fd, caller);
    if (!same) {
        ag_log("ipc", "refused a connection from another user (pid %ld, %s)", caller->pid,
               caller->exe);
        return -1;
    }
    return 0;
}

typedef struct {
    ag_server *srv;
    HANDLE h;
} conn;

static DWORD WINAPI serve_connection(void *arg)
{
    conn *c = arg;
    ag_caller caller;

    memset(&caller, 0, sizeof(caller));
    caller.uid = -1;
    ag_conn_serve(c->srv, (ipc_fd)c->h, &caller, check_client, NULL);
    registry_set(c->h, 0);
    CloseHandle(c->h);
    free(c);
    InterlockedDecrement(&active_connections);
    ag_activity_touch();
    return 0;
}

static BOOL WINAPI on_console_event(DWORD event)
{
    InterlockedExchange(&got_signal, (LONG)event + 1);
    return TRUE;
}

/* Hands a connected instance to a thread of its own; refuses it when too many are open. */
static void dispatch(ag_server *srv, HANDLE h)
{
    conn *c;
    HANDLE th;

    if (InterlockedCompareExchange(&active_connections, 0, 0) >= MAX_CONNECTIONS ||
        !(c = malloc(sizeof(*c)))) {
        ag_conn_refuse((ipc_fd)h, SG_ERR_SERVER, "agent busy: too many connections");
        CloseHandle(h);
        return;
    }
    c->srv = srv;
    c->h = h;
    InterlockedIncrement(&active_connections);
    registry_set(h, 1);
    ag_activity_touch();
    th = CreateThread(NULL, 256 * 1024, serve_connection, c, STACK_SIZE_PARAM_IS_A_RESERVATION,
                      NULL);
    if (!th) {
        registry_set(h, 0);
        InterlockedDecrement(&active_connections);
        CloseHandle(h);
        free(c);
        return;
    }
    CloseHandle(th);
}

int ag_serve(ag_server *srv)
{
    HANDLE inst = (HANDLE)srv->listen_fd;
    OVERLAPPED ov;
    int pending = 0;

    InitializeCriticalSection(&registry_lock);
    SetConsoleCtrlHandler(on_console_event, TRUE);
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ov.hEvent)
        return 1;
    ag_activity_touch();

    while (!InterlockedCompareExchange(&got_signal, 0, 0) && !ag_stop_requested()) {
        int connected = 0;
        DWORD n;
        if (!pending) {
            ResetEvent(ov.hEvent);
            if (ConnectNamedPipe(inst, &ov)) {
                connected = 1;
            } else {
                DWORD e = GetLastError();
                if (e == ERROR_IO_PENDING) {
                    pending = 1;
                } else if (e == ERROR_PIPE_CONNECTED) {
                    connected = 1;
                } else {
                    /* A client that came and went already (ERROR_NO_DATA), or worse. */
                    DisconnectNamedPipe(inst);
                    Sleep(10);
                    continue;
                }
            }
        }
        if (pending) {
            DWORD w = WaitForSingleObject(ov.hEvent, ACCEPT_POLL_MS);
            if (w == WAIT_OBJECT_0) {
                pending = 0;
                if (GetOverlappedResult(inst, &ov, &n, FALSE)) {
                    connected = 1;
                } else {
                    DisconnectNamedPipe(inst);
                    continue;
                }
            }
        }
        if (connected) {
            /* A new listening instance before this one is handed off, so the name never
             * disappears while we run. */
            ipc_fd next = ag_pipe_instance(srv->socket_path, 0);
            if (next == -1) {
                ag_log("ipc", "cannot create a pipe instance (error %lu)", GetLastError());
                ag_conn_refuse((ipc_fd)inst, SG_ERR_SERVER, "agent busy: no pipe instance");
                DisconnectNamedPipe(inst);
                Sleep(100);
                continue;
            }
            dispatch(srv, inst);
            inst = (HANDLE)next;
            continue;
        }
        if (srv->cfg->idle_timeout > 0 &&
            InterlockedCompareExchange(&active_connections, 0, 0) == 0 &&
            (long)time(NULL) - ag_activity_last() >= srv->cfg->idle_timeout) {
            ag_log("agent", "idle for %d s with no clients; exiting", srv->cfg->idle_timeout);
            break;
        }
    }
    if (got_signal)
        ag_log("agent", "console event %ld; exiting", (long)got_signal - 1);
    /* Give up the listening instance first, so a tool arriving now starts a new agent once
     * the connections below are gone; they are woken and given 5 s to finish. */
    if (pending) {
        CancelIoEx(inst, &ov);
        GetOverlappedResult(inst, &ov, &(DWORD){0}, TRUE);
    }
    CloseHandle(inst);
    CloseHandle(ov.hEvent);
    srv->listen_fd = -1;
    ag_request_stop();
    registry_cancel_all();
    for (int i = 0; i < 500 && InterlockedCompareExchange(&active_connections, 0, 0) > 0; i++)
        Sleep(10);
    return InterlockedCompareExchange(&active_connections, 0, 0) > 0 ? 1 : 0;
}
