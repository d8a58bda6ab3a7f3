/* What the client library needs from the operating system: the agent's endpoint (a Unix
 * socket, or a per-user named pipe on Windows), connecting to it and starting the agent; the
 * services the agent shares are in signum/os.h. client_posix.c and client_win.c implement it. */
#ifndef SG_CLIENT_OS_H
#define SG_CLIENT_OS_H

#include <stddef.h>

#include "../common/ipc.h"
#include "signum/os.h"

/* 0 and *fd on success; -1 with a reason, and *absent = 1 when no agent listens there
 * (so one may be started). */
int sg_os_connect(const char *endpoint, ipc_fd *fd, int *absent, char *why, size_t why_len);
/* Starts the agent for this endpoint; returns once it has been launched (the caller then
 * waits for the endpoint to appear). 0, or -1 with a reason. */
int sg_os_start_agent(const char *endpoint, char *why, size_t why_len);

#endif
