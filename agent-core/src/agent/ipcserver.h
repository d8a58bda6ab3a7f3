/* What the OS-specific IPC listeners (ipcserver_posix.c, ipcserver_win.c) share with the
 * OS-neutral request dispatch in ipcserver.c: serving one accepted connection, activity and
 * stop bookkeeping. */
#ifndef AG_IPCSERVER_H
#define AG_IPCSERVER_H

#include "agent.h"

#define AG_IDLE_CONNECTION_MS (10 * 60 * 1000) /* a connection silent this long is closed */
#define AG_FRAME_REST_MS      5000             /* a begun frame must be complete this fast */

/* Runs once, after the first frame of a connection has arrived and before it is handled:
 * fills caller and returns 0 if this peer may use the agent (Windows can only impersonate a
 * pipe client once it has written). */
typedef int (*ag_conn_check)(ipc_fd fd, ag_caller *caller, void *ctx);

/* Serves one connection until the peer closes it, stalls, sends a malformed frame (which is
 * answered with an error first), or the agent stops. caller is filled already, or by check. */
void ag_conn_serve(ag_server *srv, ipc_fd fd, ag_caller *caller, ag_conn_check check, void *ctx);
/* An error reply (request id 0) to a connection that is about to be closed. */
void ag_conn_refuse(ipc_fd fd, sg_status st, const char *msg);

/* Activity (for the idle timeout) and the stop flag (SHUTDOWN or a signal). */
void ag_activity_touch(void);
long ag_activity_last(void);
int ag_stop_requested(void);
void ag_request_stop(void);

/* Windows (ipcserver_win.c): creates an instance of the agent's pipe, with a DACL granting
 * only the current user and no remote clients; the first one with FILE_FLAG_FIRST_PIPE_INSTANCE
 * so that nobody else (a second agent, a squatter) holds the name. -1 with GetLastError. */
ipc_fd ag_pipe_instance(const char *name, int first);

#endif
