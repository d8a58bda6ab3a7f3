/* The few POSIX calls that differ between Linux and macOS, one file each: posix_linux.c and
 * posix_macos.c (CMake picks one). Everything else in the client library and the agent is the
 * same POSIX code on both. */
#ifndef SG_POSIX_OS_H
#define SG_POSIX_OS_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* send() flags: no SIGPIPE for a peer that went away (macOS: SO_NOSIGPIPE on the socket). */
#ifdef MSG_NOSIGNAL
#define SG_PX_SEND_FLAGS MSG_NOSIGNAL
#else
#define SG_PX_SEND_FLAGS 0
#endif

/* Environment that decides security-relevant behaviour: NULL in a set-id process. */
const char *sg_px_getenv(const char *name);
/* 0 on success: len bytes from the kernel's CSPRNG. */
int sg_px_random(void *buf, size_t len);
/* An AF_UNIX stream socket, close-on-exec, that raises no SIGPIPE; -1 with errno. */
int sg_px_socket(void);
/* accept() with the same properties; -1 with errno. */
int sg_px_accept(int listen_fd);
/* A close-on-exec pipe; 0 or -1 with errno. */
int sg_px_pipe(int fds[2]);
/* The uid of the process at the other end of a connected Unix socket, from the kernel. */
int sg_px_peer_uid(int fd, uid_t *uid);
/* The platform's default agent socket when SIGNUM_AGENT_SOCKET is not set. 0, or -1 if the
 * path does not fit out_len. */
int sg_px_default_socket(char *out, size_t out_len);
/* Makes the missing parents of the agent's socket directory dir (not dir itself), each 0700
 * and checked ours, a directory, not a link, 0700, like dir. Linux: nothing (the runtime
 * directory or /tmp exists). macOS: the app group's container may not exist yet. 0, or -1 with
 * why. */
int sg_px_make_socket_parents(const char *dir, char *why, size_t why_len);
/* The platform's default cache directory of the agent ("" if there is no home). */
void sg_px_cache_dir(char *out, size_t out_len);

#endif
