/* What the client library needs from the operating system: the agent's endpoint (a Unix
 * socket, or a per-user named pipe on Windows), connecting to it, starting the agent,
 * randomness and the process id. client_posix.c and client_win.c implement it. */
#ifndef SG_CLIENT_OS_H
#define SG_CLIENT_OS_H

#include <stddef.h>

#include "../common/ipc.h"

#ifdef _WIN32
#define SG_ENDPOINT_MAX 256
#else
#define SG_ENDPOINT_MAX 108 /* sizeof(struct sockaddr_un.sun_path) */
#endif

/* 0 and *fd on success; -1 with a reason, and *absent = 1 when no agent listens there
 * (so one may be started). */
int sg_os_connect(const char *endpoint, ipc_fd *fd, int *absent, char *why, size_t why_len);
#ifndef _WIN32
/* The directory of a socket path must be a real directory (not a link), owned by our euid,
 * with permissions exactly 0700. 0, or -1 with errno (ENOENT: it does not exist) and a reason
 * naming the path and the problem. Both the client and the agent check it. */
int sg_os_check_socket_dir(const char *socket_path, char *why, size_t why_len);
#endif
/* Starts the agent for this endpoint; returns once it has been launched (the caller then
 * waits for the endpoint to appear). 0, or -1 with a reason. */
int sg_os_start_agent(const char *endpoint, char *why, size_t why_len);
/* Environment that decides security-relevant behaviour (secure_getenv on POSIX). */
const char *sg_os_getenv(const char *name);
long sg_os_pid(void);
int sg_os_random(void *buf, size_t len);
void sg_os_sleep_ms(int ms);

#endif
