/* signum-agent internals shared across its files: credentials, the cache, the session, caller
 * identity and the IPC server. Configuration, errors and logging (signum/agent_config.h) and
 * the HTTPS transport (signum/https.h) are public: signum-util uses them too. */
#ifndef AG_AGENT_H
#define AG_AGENT_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/ipc.h"
#include "signum/agent_config.h"
#include "signum/client.h"
#include "signum/https.h"

/* ---- credentials -------------------------------------------------------------------------- */

/* A signed JWT assertion (RFC 7523, ES256) for the configured service account; caller frees. */
sg_status ag_jwt_assertion(const ag_config *cfg, char **out, ag_error *err);
/* ES256 over input with the P-256 key in key_file (PEM, private to us): raw r||s. */
sg_status ag_es256_sign(const char *key_file, const char *input, size_t len, uint8_t raw[64],
                        ag_error *err);
/* The OIDC ID token from the environment or the token file; caller frees. */
sg_status ag_oidc_token(const ag_config *cfg, char **out, ag_error *err);

/* ---- persisted cache (cache_posix.c, cache_win.c) -------------------------------------- */

/* A cache file's contents (malloc'd, NUL-terminated, *len bytes), or NULL if it is absent or
 * not a file we trust (wrong owner, permissions, type or size). */
char *ag_cache_load(const ag_config *cfg, const char *name, size_t *len);
/* Replaces a cache file atomically, readable only by us. */
void ag_cache_store(const ag_config *cfg, const char *name, const char *text, size_t len);
void ag_cache_remove(const ag_config *cfg, const char *name);
/* Wipes a secret in a way the compiler keeps. */
void ag_wipe(void *p, size_t len);

/* ---- session ------------------------------------------------------------------------------ */

typedef struct ag_session ag_session;

sg_status ag_session_new(const ag_config *cfg, ag_transport *t, ag_session **out, ag_error *err);
void ag_session_free(ag_session *s);
/* An authenticated API call: logs in if needed (one login shared by all callers), refreshes
 * the token before it expires, and on a 401 re-authenticates exactly once and retries. */
sg_status ag_session_call(ag_session *s, const char *method, const char *path,
                          const char *json_body, const char *if_none_match, ag_response *resp,
                          ag_error *err);
sg_status ag_session_login(ag_session *s, const char *api_key, ag_error *err);
void ag_session_logout(ag_session *s);
/* The key listing JSON body, from memory when fresh, revalidated with its ETag otherwise.
 * The caller frees *json. */
sg_status ag_session_keys(ag_session *s, char **json, ag_error *err);

typedef struct {
    int logged_in;
    char identity[129];
    char auth_method[33];
    uint64_t expires;
} ag_session_info;
void ag_session_info_get(ag_session *s, ag_session_info *out);

/* ---- caller identity ---------------------------------------------------------------------- */

/* Caps of the sign request's context fields, in bytes. They must stay within the server's
 * (SIGN_CTX_*_MAX in server/src/api/sign.c), which refuses a longer field with 400. */
#define AG_CTX_APPLICATION_MAX  1024
#define AG_CTX_COMMAND_LINE_MAX 4096
#define AG_CTX_HOST_MAX         255

/* Bytes from the OS as UTF-8 text for the context (ctxtext.c): each byte that is not part of a
 * well-formed UTF-8 character becomes the text \xNN, a backslash becomes \\; at most cap bytes
 * are written (plus a NUL, so out holds cap + 1), never cutting a character or an escape.
 * Returns the length written. */
size_t ag_ctx_escape(const void *bytes, size_t len, char *out, size_t cap);
/* A command line (arguments separated by sep) with its secrets replaced by "***": the argument
 * after an option such as --pin, -passin, -storepass or /p, the value of --pin=..., and the
 * pin-value of a PKCS#11 URI. At most cap bytes are written (no NUL); returns the length.
 * The caller's context is audited, and an audit record must never hold a PIN or an API key. */
size_t ag_ctx_redact(const char *in, size_t len, char sep, char *out, size_t cap);
/* The length of the longest prefix of the UTF-8 string s that fits in cap bytes and ends on a
 * character boundary. */
size_t ag_ctx_fit(const char *s, size_t cap);

typedef struct {
    long pid;
    long uid;              /* POSIX uid; -1 on Windows, where the transport compares SIDs */
    char exe[AG_PATH_MAX]; /* UTF-8 (POSIX: escaped, see ag_ctx_escape) */
    char cmdline[AG_CTX_COMMAND_LINE_MAX + 1]; /* the same; empty if the OS would not tell */
} ag_caller;

/* Reads the peer's identity from the kernel: SO_PEERCRED and /proc (caller.c), getpeereid,
 * LOCAL_PEERPID, proc_pidpath and KERN_PROCARGS2 (caller_macos.c), or
 * GetNamedPipeClientProcessId and the process's image and command line (caller_win.c). */
int ag_caller_identify(ipc_fd fd, ag_caller *out);
#ifndef _WIN32
/* POSIX: the caller's NUL-separated arguments (len bytes) as out->cmdline, redacted and
 * escaped; args is wiped (caller_args.c). */
void ag_caller_command_line(char *args, size_t len, ag_caller *out);
#endif
/* This machine's name for the audit context; 0 or -1. */
int ag_hostname(char *out, size_t len);

/* ---- the IPC server ----------------------------------------------------------------------- */

typedef struct {
    ag_config *cfg;
    ag_session *session;
    ipc_fd listen_fd;        /* POSIX: the listening socket; Windows: the first pipe instance */
    const char *socket_path; /* or the pipe name */
    int lock_fd;             /* POSIX: held while we own the socket path */
    int activated;           /* POSIX: the socket is systemd's: never unlink it */
} ag_server;

/* Serves until SHUTDOWN, SIGTERM/SIGINT (Ctrl-C on Windows), or idle_timeout without clients
 * (ipcserver_posix.c, ipcserver_win.c). */
int ag_serve(ag_server *srv);

/* Parses --foreground/--daemon/--socket/--help/--version into *daemon_mode and endpoint
 * (empty: the default). Returns -1 to go on, or the exit code (0 after --help/--version, 2 on
 * a usage error, with usage printed). */
int ag_cli_parse(int argc, char **argv, void (*usage)(FILE *), int *daemon_mode, char *endpoint,
                 size_t endpoint_len);

#endif
