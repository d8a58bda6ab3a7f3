/* The small operating-system services of the client library that the agent uses too: the
 * security-relevant environment, the process id, randomness, sleeping, and the check of a
 * socket's directory. Implemented by the client library (client_posix.c, client_win.c). */
#ifndef SIGNUM_OS_H
#define SIGNUM_OS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest agent endpoint: a Unix socket path, or a named pipe's name on Windows. */
#ifdef _WIN32
#define SG_ENDPOINT_MAX 256
#elif defined(__APPLE__)
#define SG_ENDPOINT_MAX 104 /* macOS's sun_path */
#else
#define SG_ENDPOINT_MAX 108 /* sizeof(struct sockaddr_un.sun_path) */
#endif

/* Environment that decides security-relevant behaviour (secure_getenv on POSIX). */
const char *sg_os_getenv(const char *name);
long sg_os_pid(void);
/* 0 on success: len bytes from the system's CSPRNG. */
int sg_os_random(void *buf, size_t len);
void sg_os_sleep_ms(int ms);
#ifndef _WIN32
/* The directory of a socket path must be a real directory (not a link), owned by our euid,
 * with permissions exactly 0700. 0, or -1 with errno (ENOENT: it does not exist) and a reason
 * naming the path and the problem. Both the client and the agent check it. */
int sg_os_check_socket_dir(const char *socket_path, char *why, size_t why_len);
#endif

#ifdef __cplusplus
}
#endif

#endif
